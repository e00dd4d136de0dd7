package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/secret"
)

const sessionCookie = "callvault_session"

// withSession resolves the session cookie into an actor in the context. A
// missing or expired session leaves the request anonymous; handlers then
// decide through requireUser.
func (s *Server) withSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(sessionCookie)
		if err != nil || c.Value == "" {
			s.withToken(next, w, r)
			return
		}
		sess, u, err := s.Users.FindSession(r.Context(), secret.HashToken(c.Value))
		if err != nil {
			if callvault.ErrorCode(err) != callvault.EUNAUTHORIZED {
				// Fail closed: a session store error is not "signed in".
				s.pageOrJSONError(w, r, err)
				return
			}
			s.clearSessionCookie(w)
			next.ServeHTTP(w, r)
			return
		}
		ctx := callvault.NewContextWithActor(r.Context(), &callvault.Actor{User: u, Session: sess})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// withToken resolves a personal API token (Authorization: Bearer cvt_...)
// on API routes. Ingest tokens (cvi_) are left to requireSource.
func (s *Server) withToken(next http.Handler, w http.ResponseWriter, r *http.Request) {
	tok, ok := bearer(r)
	if !ok || !isAPI(r) || !strings.HasPrefix(tok, "cvt_") || s.Tokens == nil {
		next.ServeHTTP(w, r)
		return
	}
	t, u, err := s.Tokens.FindTokenByHash(r.Context(), secret.HashToken(tok))
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	ctx := callvault.NewContextWithActor(r.Context(), &callvault.Actor{User: u, Token: t})
	next.ServeHTTP(w, r.WithContext(ctx))
}

// requireUser wraps a page or API handler that needs a signed-in user who
// has replaced their one-time password and passed their second factor.
func (s *Server) requireUser(h http.HandlerFunc) http.HandlerFunc {
	return s.requireStage(stageDone, h)
}

// Sign-in stages: a session exists after the password; it must then replace
// a one-time password, then enrol or present a second factor.
const (
	stagePassword = iota // only the password change page
	stageMFA             // only the MFA pages
	stageDone            // everything
)

// stage is how far the actor's sign-in has got.
func stage(a *callvault.Actor) int {
	switch {
	case a.Token != nil:
		return stageDone // a personal token is a credential of its own, issued by an administrator
	case a.User.MustChangePassword:
		return stagePassword
	case a.Session == nil || !a.Session.MFAVerified:
		return stageMFA
	}
	return stageDone
}

// requireStage admits signed-in users whose sign-in has reached at least
// want, and sends the others where they must go next.
func (s *Server) requireStage(want int, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a := callvault.ActorFromContext(r.Context())
		if a == nil || a.User == nil {
			if isAPI(r) {
				s.jsonError(w, r, callvault.Errorf(callvault.EUNAUTHORIZED, "sign in first"))
				return
			}
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if a.Token != nil && r.Method != http.MethodGet && r.Method != http.MethodHead && !a.Token.Allows(callvault.ScopeWrite) {
			s.jsonError(w, r, callvault.Errorf(callvault.EFORBIDDEN, "this API token may only read"))
			return
		}
		got := stage(a)
		if got >= want {
			h(w, r)
			return
		}
		next, msg := "/password", "replace your one-time password first"
		if got == stageMFA {
			next, msg = "/mfa", "complete sign-in with your second factor first"
			if !a.User.MFAEnabled {
				next = "/mfa/enrol"
			}
		}
		if isAPI(r) {
			s.jsonError(w, r, callvault.Errorf(callvault.EFORBIDDEN, "%s", msg))
			return
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
	}
}

// requireSource wraps the ingest endpoint: a per-source bearer token.
func (s *Server) requireSource(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearer(r)
		if !ok {
			s.jsonError(w, r, callvault.Errorf(callvault.EUNAUTHORIZED, "an ingest token is required (Authorization: Bearer ...)"))
			return
		}
		src, err := s.Sources.FindSourceByTokenHash(r.Context(), secret.HashToken(tok))
		if err != nil {
			if callvault.ErrorCode(err) == callvault.ENOTFOUND {
				err = callvault.Errorf(callvault.EUNAUTHORIZED, "the ingest token is not valid")
			}
			s.jsonError(w, r, err)
			return
		}
		a := &callvault.Actor{Source: src}
		callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) { e.SetActor(a) })
		h(w, r.WithContext(callvault.NewContextWithActor(r.Context(), a)))
	}
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

func (s *Server) setSessionCookie(w http.ResponseWriter, token string) {
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    token,
		Path:     "/",
		MaxAge:   int(callvault.SessionAbsolute.Seconds()),
		HttpOnly: true,
		Secure:   s.SecureCookies,
		SameSite: http.SameSiteLaxMode,
	})
}

func (s *Server) clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.SecureCookies, SameSite: http.SameSiteLaxMode})
}

func isAPI(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/") }

func (s *Server) pageOrJSONError(w http.ResponseWriter, r *http.Request, err error) {
	if isAPI(r) {
		s.jsonError(w, r, err)
		return
	}
	s.pageError(w, r, err)
}

func actor(ctx context.Context) *callvault.Actor { return callvault.ActorFromContext(ctx) }

// sessionHash is the hash of the request's session token ("" without one).
func sessionHash(r *http.Request) string {
	if a := actor(r.Context()); a != nil && a.Session != nil {
		return a.Session.TokenHash
	}
	return ""
}
