package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/oidc"
	"github.com/callvault/callvault/secret"
)

// OpenID Connect sign-in: an optional alternative to the password for
// people whose account's e-mail address is the one the trust's identity
// provider (Google Workspace, Microsoft Entra) verifies. It never creates
// accounts: an address without exactly one enabled account is refused with
// the same message as a wrong password.

const (
	oidcCookie     = "callvault_oidc"
	oidcAttemptTTL = 10 * time.Minute
	oidcMaxPending = 10000 // attempts in flight; more are refused until some expire
	// oidcGenericError is the password sign-in's message, so the two ways in
	// say nothing more than each other about which accounts exist.
	oidcGenericError = "The login name or password is not right, or the account is disabled."
	oidcStateError   = "That sign-in could not be completed: it was too slow, already used or started in another browser. Please try again."
)

// oidcAttempt is one sign-in in flight, kept server-side under its state.
type oidcAttempt struct {
	flow    oidc.Flow
	binding string // SHA-256 of the browser's oidcCookie: the callback must come from the browser that started
	next    string
	expires time.Time
}

// oidcAttempts holds attempts in flight; each is taken (and so usable) once.
type oidcAttempts struct {
	mu sync.Mutex
	m  map[string]oidcAttempt
}

func (p *oidcAttempts) put(state string, a oidcAttempt, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]oidcAttempt{}
	}
	if len(p.m) >= oidcMaxPending {
		for k, v := range p.m {
			if !now.Before(v.expires) {
				delete(p.m, k)
			}
		}
		if len(p.m) >= oidcMaxPending {
			return false
		}
	}
	p.m[state] = a
	return true
}

func (p *oidcAttempts) take(state string) (oidcAttempt, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.m[state]
	delete(p.m, state)
	return a, ok
}

// initOIDC adds the "Sign in with ..." link to the sign-in page when a
// provider is configured.
func (s *Server) initOIDC() error {
	if s.OIDC == nil {
		return nil
	}
	if s.OIDCName == "" {
		s.OIDCName = "your organisation's account"
	}
	// The name is a Go string literal inside the template, so html/template
	// escapes it like any other value.
	_, err := s.views.t["login"].New("oidc").Parse(`<p class="oidc-signin"><a class="button" href="/auth/oidc/start?next={{.Next}}">Sign in with {{` +
		strconv.Quote(s.OIDCName) + `}}</a></p>`)
	return err
}

// oidcRoutes are the sign-in routes, present only when a provider is configured.
func (s *Server) oidcRoutes() []Route {
	if s.OIDC == nil {
		return nil
	}
	return []Route{
		{Pattern: "GET /auth/oidc/start", Why: "a redirect to the identity provider; the sign-in itself is recorded at the callback", handler: http.HandlerFunc(s.oidcStart)},
		{Pattern: "GET /auth/oidc/callback", Action: "auth.login", handler: http.HandlerFunc(s.oidcCallback)},
	}
}

// oidcStart sends the browser to the provider with a fresh state, nonce and
// PKCE verifier, kept here under the state and bound to this browser by a
// short-lived cookie.
func (s *Server) oidcStart(w http.ResponseWriter, r *http.Request) {
	binding := ""
	if c, err := r.Cookie(oidcCookie); err == nil && len(c.Value) >= 32 && len(c.Value) <= 128 {
		binding = c.Value // keep it, so two tabs signing in at once both work
	} else {
		binding = secret.Token("cvo_")
	}
	f := oidc.NewFlow()
	now := s.Now()
	a := oidcAttempt{flow: f, binding: bindingHash(binding), next: safeNext(r.URL.Query().Get("next")), expires: now.Add(oidcAttemptTTL)}
	if !s.oidcPending.put(f.State, a, now) {
		s.pageError(w, r, callvault.Errorf(callvault.EUNAVAILABLE, "Too many sign-ins are in progress. Please try again in a few minutes."))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: binding, Path: "/auth/oidc/", MaxAge: int(oidcAttemptTTL.Seconds()),
		HttpOnly: true, Secure: s.SecureCookies, SameSite: http.SameSiteLaxMode})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, s.OIDC.AuthURL(f), http.StatusFound)
}

func bindingHash(v string) string {
	sum := sha256.Sum256([]byte("callvault oidc binding\x00" + v))
	return hex.EncodeToString(sum[:])
}

// oidcCallback finishes the sign-in: it checks the state against this
// browser, redeems the code, verifies the ID token and maps its verified
// e-mail address to an existing, enabled account. The second factor then
// follows as after a password, unless the provider says it did MFA.
func (s *Server) oidcCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	addrKey := "ip:" + clientAddr(r)
	email := ""
	refuse := func(status int, reason, msg string, next string) {
		s.Throttle.Fail(addrKey)
		callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) {
			e.Action, e.Outcome, e.Reason = "auth.login_failed", callvault.OutcomeDenied, reason
			e.Details = map[string]string{"method": "oidc"}
			if email != "" {
				e.Details["email"] = trim(email, 128)
			}
		})
		s.Logger.Info("sign-in failed", "method", "oidc", "email", email, "reason", reason, "remote", r.RemoteAddr)
		s.render(w, r, status, "login", map[string]any{"Title": "Sign in", "Next": next, "Error": msg})
	}
	if ok, until := s.Throttle.Allowed(addrKey); !ok {
		callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) {
			e.Action, e.Outcome, e.Reason = "auth.login_failed", callvault.OutcomeDenied, "throttled"
			e.Details = map[string]string{"method": "oidc", "throttled": "ip"}
		})
		w.Header().Set("Retry-After", strconv.Itoa(int(time.Until(until).Seconds())+1))
		s.render(w, r, http.StatusTooManyRequests, "login", map[string]any{"Title": "Sign in", "Next": "/recordings",
			"Error": "Too many failed sign-ins. Try again after " + until.In(callvault.London).Format("15:04") + "."})
		return
	}

	// The state: known, unused, fresh, and from the browser that started.
	a, ok := s.oidcPending.take(q.Get("state"))
	c, cerr := r.Cookie(oidcCookie)
	switch {
	case !ok:
		refuse(http.StatusUnauthorized, "unknown or used state", oidcStateError, "/recordings")
		return
	case !s.Now().Before(a.expires):
		refuse(http.StatusUnauthorized, "expired state", oidcStateError, a.next)
		return
	case cerr != nil || subtle.ConstantTimeCompare([]byte(bindingHash(c.Value)), []byte(a.binding)) != 1:
		refuse(http.StatusUnauthorized, "state from another browser", oidcStateError, a.next)
		return
	}
	if e := q.Get("error"); e != "" {
		refuse(http.StatusUnauthorized, "provider: "+trim(e, 64), "The sign-in with "+s.OIDCName+" did not complete. Please try again.", a.next)
		return
	}
	code := q.Get("code")
	if code == "" {
		refuse(http.StatusUnauthorized, "no code", oidcStateError, a.next)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
	id, err := s.OIDC.Exchange(ctx, code, a.flow)
	cancel()
	if err != nil {
		s.Logger.Warn("OpenID Connect sign-in: token not accepted", "err", err, "remote", r.RemoteAddr)
		refuse(http.StatusUnauthorized, "token not accepted", "The sign-in with "+s.OIDCName+" could not be checked. Please try again.", a.next)
		return
	}
	email = strings.ToLower(strings.TrimSpace(id.Email))
	// Microsoft Entra sends no email_verified; with a single-tenant issuer
	// the trust's own directory owns the addresses, and the operator says so
	// with --oidc-trust-email.
	if email == "" || !(id.EmailVerified || s.OIDCTrustEmail) {
		refuse(http.StatusUnauthorized, "e-mail not verified by the provider", oidcGenericError, a.next)
		return
	}
	u, err := s.Users.FindUserByEmail(r.Context(), email)
	switch callvault.ErrorCode(err) {
	case "":
	case callvault.ENOTFOUND:
		refuse(http.StatusUnauthorized, "no account", oidcGenericError, a.next)
		return
	case callvault.ECONFLICT:
		s.Logger.Warn("OpenID Connect sign-in refused: several enabled accounts share the e-mail address; give each account its own",
			"email", email, "remote", r.RemoteAddr)
		refuse(http.StatusUnauthorized, "several accounts share the e-mail", oidcGenericError, a.next)
		return
	default:
		s.pageError(w, r, err)
		return
	}
	if u.Disabled {
		refuse(http.StatusUnauthorized, "account disabled", oidcGenericError, a.next)
		return
	}

	// The audit entry is written with the session (the first write), so
	// everything it says is decided first.
	providerMFA := id.MFA() && u.MFAEnabled && !u.MustChangePassword
	details := map[string]string{"method": "oidc", "email": trim(email, 128), "subject": trim(id.Subject, 128), "mfa": "callvault"}
	if len(id.AMR) > 0 {
		details["amr"] = trim(strings.Join(id.AMR, " "), 64)
	}
	if providerMFA {
		details["mfa"] = "provider" // the provider's second factor stands for callvault's
	}
	callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) {
		e.SetActor(&callvault.Actor{User: u})
		e.Details = details
	})
	if err := s.startSession(w, r, u); err != nil {
		s.pageError(w, r, err)
		return
	}
	next := a.next
	switch {
	case u.MustChangePassword:
		next = "/password"
	case providerMFA:
		tok := sessionTokenSet(w)
		if tok == "" {
			s.pageError(w, r, callvault.Errorf(callvault.EINTERNAL, "the new session's cookie is missing"))
			return
		}
		if err := s.MFA.MarkSessionMFA(r.Context(), secret.HashToken(tok)); err != nil {
			s.pageError(w, r, err)
			return
		}
	case !u.MFAEnabled:
		next = "/mfa/enrol?next=" + url.QueryEscape(next)
	default:
		next = "/mfa?next=" + url.QueryEscape(next)
	}
	s.Logger.Info("signed in", "user", u.Login, "method", "oidc", "mfa", details["mfa"], "remote", r.RemoteAddr)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// sessionTokenSet is the session token startSession has just put in the
// response's cookie ("" if none).
func sessionTokenSet(w http.ResponseWriter) string {
	for _, line := range w.Header().Values("Set-Cookie") {
		if c, err := http.ParseSetCookie(line); err == nil && c.Name == sessionCookie && c.MaxAge > 0 {
			return c.Value
		}
	}
	return ""
}
