package web

import (
	"net"
	"net/http"
	"strconv"

	"github.com/callvault/callvault"
)

// audited is the one audit mechanism for HTTP: every routed request carries
// a pending audit entry for its action (declared in routes.go). The entry is
// written inside the first database write made for the request, or else
// just before the first byte of the response. If it cannot be written, the
// response is replaced by 503 and nothing of the handler's output leaves.
// Handlers only describe the action with callvault.NoteAudit.
func (s *Server) audited(action string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := callvault.AuditEvent{Action: action, ClientAddr: clientAddr(r)}
		e.SetActor(actor(r.Context()))
		p := callvault.NewPendingAudit(e)
		g := &gateWriter{ResponseWriter: w, s: s, r: r, p: p, header: http.Header{}}
		h.ServeHTTP(g, r.WithContext(callvault.WithPendingAudit(r.Context(), p)))
		g.finish()
	})
}

// gateWriter holds back the response until the audit entry is durable.
type gateWriter struct {
	http.ResponseWriter
	s       *Server
	r       *http.Request
	p       *callvault.PendingAudit
	header  http.Header // the handler's headers, applied only once audited
	opened  bool        // the gate has been passed (or refused)
	refused bool        // the audit failed: swallow the handler's output
}

func (g *gateWriter) Header() http.Header { return g.header }

func (g *gateWriter) WriteHeader(status int) {
	if g.open(status) {
		g.ResponseWriter.WriteHeader(status)
	}
}

func (g *gateWriter) Write(b []byte) (int, error) {
	if !g.open(http.StatusOK) {
		return 0, errAuditRefused
	}
	return g.ResponseWriter.Write(b)
}

// open commits the audit entry with the outcome the status implies, then
// lets the handler's headers through. It reports whether the handler's
// response may be sent.
func (g *gateWriter) open(status int) bool {
	if g.opened {
		return !g.refused
	}
	g.opened = true
	err := g.p.Commit(func(e *callvault.AuditEvent) error {
		if e.Outcome == "" {
			e.Outcome = outcomeOf(status)
		}
		if e.Details == nil {
			e.Details = map[string]string{}
		}
		if _, ok := e.Details["status"]; !ok {
			e.Details["status"] = strconv.Itoa(status)
		}
		if a := actor(g.r.Context()); a != nil && a.Token != nil {
			e.Details["api_token"] = strconv.FormatInt(a.Token.ID, 10)
		}
		return g.s.Auditor.Record(g.r.Context(), e)
	})
	if err != nil {
		g.refused = true
		g.s.Logger.Error("audit entry could not be written; request refused", "method", g.r.Method, "path", g.r.URL.Path, "err", err)
		unavailable := callvault.Wrap(callvault.EUNAVAILABLE, err, "The audit trail cannot be written, so this action was not carried out. Please try again later; if it persists, tell Technical Support.")
		if isAPI(g.r) {
			var body apiError
			body.Error.Code, body.Error.Message = callvault.EUNAVAILABLE, callvault.ErrorMessage(unavailable)
			writeJSON(g.ResponseWriter, http.StatusServiceUnavailable, body)
		} else {
			g.ResponseWriter.Header().Set("Content-Type", "text/plain; charset=utf-8")
			g.ResponseWriter.Header().Set("Cache-Control", "no-store")
			g.ResponseWriter.WriteHeader(http.StatusServiceUnavailable)
			_, _ = g.ResponseWriter.Write([]byte(callvault.ErrorMessage(unavailable) + "\n"))
		}
		return false
	}
	dst := g.ResponseWriter.Header()
	for k, v := range g.header {
		dst[k] = v
	}
	return true
}

// finish audits requests whose handler wrote nothing.
func (g *gateWriter) finish() {
	if !g.opened && g.open(http.StatusOK) {
		g.ResponseWriter.WriteHeader(http.StatusOK)
	}
}

func (g *gateWriter) Unwrap() http.ResponseWriter { return g.ResponseWriter }

type auditRefusedError struct{}

func (auditRefusedError) Error() string { return "response withheld: audit entry not written" }

var errAuditRefused error = auditRefusedError{}

// outcomeOf derives an outcome from a status when the handler did not say.
func outcomeOf(status int) string {
	switch {
	case status < 400:
		return callvault.OutcomeAllowed
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return callvault.OutcomeDenied
	}
	return callvault.OutcomeFailed
}

// clientAddr is the peer's IP address. Behind a reverse proxy this is the
// proxy; trusting X-Forwarded-For is a deployment decision not yet offered.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
