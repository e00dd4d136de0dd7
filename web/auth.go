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
			next.ServeHTTP(w, r)
			return
		}
		_, u, err := s.Users.FindSession(r.Context(), secret.HashToken(c.Value))
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
		ctx := callvault.NewContextWithActor(r.Context(), &callvault.Actor{User: u})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// requireUser wraps a page or API handler that needs a signed-in user who
// has replaced their one-time password.
func (s *Server) requireUser(h http.HandlerFunc) http.HandlerFunc {
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
		if a.User.MustChangePassword && r.URL.Path != "/password" {
			if isAPI(r) {
				s.jsonError(w, r, callvault.Errorf(callvault.EFORBIDDEN, "replace your one-time password first"))
				return
			}
			http.Redirect(w, r, "/password", http.StatusSeeOther)
			return
		}
		h(w, r)
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
