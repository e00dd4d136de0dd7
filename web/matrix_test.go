package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callvault/callvault"
)

// The actors of the matrix.
var matrixActors = []string{"anon", "admin", "ceo", "dpo", "principal", "principal2", "listener", "listener2", "lapsed", "gone"}

// matrix says, for every route, what each actor gets: "ok" (the request is
// authorised: any status but 401/403/404 and below 500 — a 400 for the
// deliberately thin body still means it got past access control), or the
// exact refusal. Actors: anon (signed out), principal (Oakfield, the
// recording's academy), principal2 (Riverside), listener (a grant for the
// recording), listener2 (a grant for another recording), lapsed (a listener
// whose grant has expired), gone (a CEO disabled after signing in).
var matrix = map[string]string{
	"GET /healthz":                              "all=ok",
	"GET /readyz":                               "all=ok",
	"GET /metrics":                              "all=ok",
	"GET /static/{hash}/{name}":                 "all=ok",
	"GET /api/v1/openapi.json":                  "all=ok",
	"GET /login":                                "all=ok",
	"GET /password":                             "anon=303 gone=303 all=ok",
	"GET /mfa":                                  "anon=303 gone=303 all=ok",
	"GET /mfa/enrol":                            "all=303", // everyone here is enrolled: on to /mfa
	"GET /{$}":                                  "anon=303 gone=303 all=ok",
	"/":                                         "all=404",
	"POST /login":                               "all=401", // the matrix sends no credentials
	"POST /logout":                              "all=303", // back to the sign-in page
	"POST /password":                            "anon=303 gone=303 all=ok",
	"POST /mfa":                                 "anon=303 gone=303 all=401", // no code sent
	"POST /mfa/enrol":                           "all=303",                   // already enrolled: to /mfa
	"GET /recordings":                           "anon=303 gone=303 listener=403 listener2=403 lapsed=403 all=ok",
	"GET /recordings/{id}":                      "anon=303 gone=303 principal2=404 listener2=404 lapsed=404 all=ok",
	"POST /api/v1/recordings":                   "all=401", // ingest tokens only
	"GET /api/v1/recordings":                    "anon=401 gone=401 listener=403 listener2=403 lapsed=403 all=ok",
	"GET /api/v1/recordings/{id}":               "anon=401 gone=401 principal2=404 listener2=404 lapsed=404 all=ok",
	"GET /api/v1/recordings/{id}/audio":         "anon=401 gone=401 principal2=404 listener2=404 lapsed=404 listener=ok all=403",
	"GET /academies":                            "anon=303 gone=303 admin=ok all=403",
	"POST /academies":                           "anon=303 gone=303 admin=ok all=403",
	"GET /academies/{slug}/edit":                "anon=303 gone=303 admin=ok all=403",
	"POST /academies/{slug}":                    "anon=303 gone=303 admin=ok all=403",
	"GET /audit":                                "anon=303 gone=303 ceo=ok dpo=ok principal=ok principal2=ok all=403",
	"GET /api/v1/audit":                         "anon=401 gone=401 ceo=ok dpo=ok principal=ok principal2=ok all=403",
	"GET /requests/new":                         "anon=303 gone=303 listener=403 listener2=403 lapsed=403 principal2=404 all=ok",
	"POST /requests":                            "anon=303 gone=303 all=ok",
	"GET /requests":                             "anon=303 gone=303 all=ok",
	"GET /requests/{id}":                        "anon=303 gone=303 principal2=404 listener=404 lapsed=404 all=ok", // listener2 is named in it
	"POST /requests/{id}/decision":              "anon=303 gone=303 principal2=404 listener=404 lapsed=404 admin=403 dpo=403 listener2=403 all=ok",
	"GET /grants":                               "anon=303 gone=303 all=ok",
	"POST /grants/{id}/revoke":                  "anon=303 gone=303 principal2=404 listener2=404 lapsed=404 listener=403 dpo=403 all=ok",
	"POST /grants/{id}/ratify":                  "anon=303 gone=303 principal2=404 listener=404 listener2=404 lapsed=404 admin=403 dpo=403 all=ok",
	"GET /shared":                               "anon=303 gone=303 all=ok",
	"GET /recordings/{id}/break-glass":          "anon=303 gone=303 admin=ok dpo=ok all=403",
	"POST /recordings/{id}/break-glass":         "anon=303 gone=303 admin=ok dpo=ok all=403",
	"POST /api/v1/listen-requests":              "anon=401 gone=401 listener=403 listener2=403 lapsed=403 all=ok",
	"POST /api/v1/listen-requests/{id}/approve": "anon=401 gone=401 principal2=404 listener=404 lapsed=404 admin=403 dpo=403 listener2=403 all=ok",
	"POST /api/v1/listen-requests/{id}/decline": "anon=401 gone=401 principal2=404 listener=404 lapsed=404 admin=403 dpo=403 listener2=403 all=ok",
	"GET /api/v1/grants":                        "anon=401 gone=401 all=ok",
	"POST /api/v1/grants/{id}/revoke":           "anon=401 gone=401 principal2=404 listener2=404 lapsed=404 listener=403 dpo=403 all=ok",
	// Retention: principals and the CEO see it; admins and the DPO change it.
	"GET /retention":                 "anon=303 gone=303 listener=403 listener2=403 lapsed=403 all=ok",
	"POST /retention/preview":        "anon=303 gone=303 admin=ok dpo=ok all=403",
	"POST /retention":                "anon=303 gone=303 admin=ok dpo=ok all=403",
	"POST /retention/remove":         "anon=303 gone=303 admin=ok dpo=ok all=403", // the trust default: 400, past access control
	"POST /retention/categories":     "anon=303 gone=303 admin=ok dpo=ok all=403",
	"GET /retention/upcoming":        "anon=303 gone=303 listener=403 listener2=403 lapsed=403 all=ok",
	"GET /api/v1/retention":          "anon=401 gone=401 listener=403 listener2=403 lapsed=403 all=ok",
	"GET /api/v1/retention/upcoming": "anon=401 gone=401 listener=403 listener2=403 lapsed=403 all=ok",
	// Legal holds (an Oakfield hold on the Oakfield recording, placed by the
	// DPO): admins see them but do not decide what is kept; principal2
	// neither sees the hold nor the recording.
	"GET /holds":                      "anon=303 gone=303 listener=403 listener2=403 lapsed=403 all=ok",
	"GET /holds/new":                  "anon=303 gone=303 admin=403 listener=403 listener2=403 lapsed=403 principal2=404 all=ok",
	"POST /holds":                     "anon=303 gone=303 admin=403 listener=403 listener2=403 lapsed=403 principal2=403 all=ok",
	"GET /holds/{id}":                 "anon=303 gone=303 listener=403 listener2=403 lapsed=403 principal2=404 all=ok",
	"POST /holds/{id}/release":        "anon=303 gone=303 admin=403 listener=403 listener2=403 lapsed=403 principal2=404 all=ok",
	"POST /holds/{id}/recordings":     "anon=303 gone=303 admin=403 listener=403 listener2=403 lapsed=403 principal2=404 all=ok",
	"GET /api/v1/holds":               "anon=401 gone=401 listener=403 listener2=403 lapsed=403 all=ok",
	"POST /api/v1/holds":              "anon=401 gone=401 admin=403 listener=403 listener2=403 lapsed=403 principal2=403 all=ok",
	"GET /api/v1/holds/{id}":          "anon=401 gone=401 listener=403 listener2=403 lapsed=403 principal2=404 all=ok",
	"POST /api/v1/holds/{id}/release": "anon=401 gone=401 admin=403 listener=403 listener2=403 lapsed=403 principal2=404 all=ok",
	// OpenID Connect (configured by withOIDC): start always redirects to the
	// provider; a callback without a valid state is refused.
	"GET /auth/oidc/start":    "all=ok",
	"GET /auth/oidc/callback": "all=401",
	// End OpenID Connect
	// Passkeys: nobody here has one, so sign-in begin is a 400; finish
	// without a ceremony or with a thin body is a 400.
	"POST /mfa/passkey/begin":   "anon=303 gone=303 all=ok",
	"POST /mfa/passkey/finish":  "anon=303 gone=303 all=ok",
	"GET /mfa/passkeys":         "anon=303 gone=303 all=ok",
	"POST /mfa/passkeys/begin":  "anon=303 gone=303 all=ok",
	"POST /mfa/passkeys/finish": "anon=303 gone=303 all=ok",
	// End Passkeys
}

func expected(spec, actor string) string {
	all := ""
	for _, f := range strings.Fields(spec) {
		k, v, _ := strings.Cut(f, "=")
		if k == actor {
			return v
		}
		if k == "all" {
			all = v
		}
	}
	return all
}

// TestRoleRouteMatrix checks every route in the route table as every kind
// of actor. A route missing from the matrix fails the test.
func TestRoleRouteMatrix(t *testing.T) {
	h := newHarness(t)
	// OpenID Connect: its routes exist only with a provider.
	h.withOIDC()
	h.srv.Throttle.Max = 1 << 30 // the matrix signs in and fails on purpose far more than a person would
	oak := h.storeOne("oak", "ulaw", time.Second)
	other := h.storeOne("other", "ulaw", time.Second)
	h.grant("listener", time.Hour, oak)
	h.grant("listener2", time.Hour, other)
	// A grant that has already ended: made with the database clock two hours back.
	h.d.DB.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	h.grant("lapsed", time.Minute, oak)
	h.d.DB.Now = time.Now

	clients := map[string]*http.Client{"anon": h.client("")}
	for _, a := range matrixActors[1:] {
		clients[a] = h.client(a)
	}
	gone, err := h.d.Users.FindUserByLogin(h.d.Sys, "gone")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.d.Users.DisableUser(h.d.Sys, gone.ID); err != nil {
		t.Fatal(err)
	}
	staticPath := ""
	for _, rt := range h.srv.Routes() {
		if rt.Pattern == "GET /static/{hash}/{name}" {
			staticPath = "/static/x/style.css"
		}
	}

	for _, rt := range h.srv.Routes() {
		spec, ok := matrix[rt.Pattern]
		if !ok {
			t.Errorf("route %s is not in the role matrix (web/matrix_test.go): say what every actor gets", rt.Pattern)
			continue
		}
		method, path, found := strings.Cut(rt.Pattern, " ")
		if !found {
			method, path = "GET", "/no/such/page"
		}
		for _, a := range matrixActors {
			// Fresh objects for each call, so one actor's success does not
			// change what the next one meets.
			req := h.pendingRequest(oak)
			grant := h.grant("listener", time.Hour, oak)
			bg := h.breakGlass("dpo", oak)
			p := path
			switch {
			case strings.HasPrefix(p, "/requests/{id}") || strings.HasPrefix(p, "/api/v1/listen-requests/{id}"):
				p = strings.Replace(p, "{id}", strconv.FormatInt(req, 10), 1)
			case strings.HasSuffix(p, "/ratify"):
				p = strings.Replace(p, "{id}", strconv.FormatInt(bg.ID, 10), 1)
			case strings.Contains(p, "grants/{id}"):
				p = strings.Replace(p, "{id}", strconv.FormatInt(grant.ID, 10), 1)
			case strings.Contains(p, "holds/{id}"):
				p = strings.Replace(p, "{id}", strconv.FormatInt(h.hold("dpo", "oakfield", oak).ID, 10), 1)
			}
			p = strings.NewReplacer("{id}", oak, "{slug}", "oakfield", "{$}", "").Replace(p)
			if rt.Pattern == "GET /static/{hash}/{name}" {
				p = staticPath
			}
			if rt.Pattern == "GET /requests/new" || rt.Pattern == "GET /holds/new" {
				p += "?recording=" + oak
			}
			c := clients[a]
			if rt.Pattern == "GET /api/v1/recordings/{id}/audio" && a == "listener" {
				p = h.audioURL(c, oak)
			}
			var body string
			ctype := "application/x-www-form-urlencoded"
			switch {
			case strings.HasPrefix(p, "/api/v1/listen-requests/"):
				body, ctype = `{"note":"matrix test"}`, "application/json"
			case p == "/api/v1/listen-requests":
				body, ctype = `{"recording_ids":["`+oak+`"],"purpose":"training","justification":"a training need here","listeners":["listener2"],"minutes":5}`, "application/json"
			case p == "/api/v1/holds":
				body, ctype = `{"reason":"other","title":"matrix test","academy":"oakfield","recording_ids":["`+oak+`"]}`, "application/json"
			case strings.HasPrefix(p, "/api/v1/holds/"):
				body, ctype = `{"note":"matrix test"}`, "application/json"
			case p == "/holds":
				body = url.Values{"reason": {"other"}, "title": {"matrix test"}, "academy": {"oakfield"}, "recording": {oak},
					"review": {time.Now().AddDate(0, 0, 30).Format(time.DateOnly)}}.Encode()
			case strings.HasPrefix(p, "/holds/"):
				body = url.Values{"note": {"matrix test"}, "recordings": {oak}}.Encode()
			case strings.HasPrefix(p, "/retention"):
				body = "op=set&months=12"
			case method == "POST":
				body = "decision=approve&note=matrix+test&reason=matrix+test+reason"
			}
			r, _ := http.NewRequest(method, h.ts.URL+p, strings.NewReader(body))
			if method == "POST" {
				r.Header.Set("Content-Type", ctype)
			}
			resp, err := c.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := class(resp)
			if want := expected(spec, a); got != want {
				t.Errorf("%s as %s: %d (%s), want %s", rt.Pattern, a, resp.StatusCode, got, want)
			}
			if a == "listener" && rt.Pattern == "POST /logout" {
				clients[a] = h.client("listener")
			}
		}
		if rt.Pattern == "POST /logout" {
			for _, a := range matrixActors[1:] {
				if a != "gone" {
					clients[a] = h.client(a)
				}
			}
		}
	}
}

// class names a response as the matrix does: "303" is a redirect to sign
// in (or to finish signing in); other redirects are "ok".
func class(resp *http.Response) string {
	st := resp.StatusCode
	switch st {
	case 401, 403, 404:
		return strconv.Itoa(st)
	case 303:
		if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, "/login") || strings.HasPrefix(loc, "/mfa") || loc == "/password" {
			return "303"
		}
		return "ok"
	}
	if st >= 500 {
		return fmt.Sprint("server error ", st)
	}
	return "ok"
}

// pendingRequest is a fresh pending request by the DPO for listener2.
func (h *harness) pendingRequest(recording string) int64 {
	h.t.Helper()
	return h.request("listener2", recording).ID
}

// hold is an active hold placed by login on the recordings, for the
// academy (a slug; "" for trust-wide), through the store.
func (h *harness) hold(login, academy string, ids ...string) *callvault.Hold {
	h.t.Helper()
	hd := &callvault.Hold{Reason: callvault.HoldComplaint, Title: "a parent's complaint", ReviewAt: time.Now().Add(callvault.DefaultHoldReview)}
	if academy != "" {
		hd.AcademyID = h.academy[academy].ID
	}
	if err := h.d.Holds.CreateHold(h.as(login), hd, ids); err != nil {
		h.t.Fatalf("placing a hold as %s: %v", login, err)
	}
	return hd
}
