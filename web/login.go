package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/secret"
)

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if a := actor(r.Context()); a != nil && a.User != nil {
		http.Redirect(w, r, "/recordings", http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, "login", map[string]any{"Title": "Sign in", "Next": safeNext(r.URL.Query().Get("next"))})
}

// login checks a password and starts a session. Unknown logins take as long
// as wrong passwords, and both get the same message.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	login := strings.ToLower(strings.TrimSpace(r.PostFormValue("login")))
	pw := r.PostFormValue("password")
	next := safeNext(r.PostFormValue("next"))
	fail := func() {
		callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) {
			e.Action, e.Outcome = "auth.login_failed", callvault.OutcomeDenied
			e.Details = map[string]string{"login": trim(login, 64)}
		})
		s.render(w, r, http.StatusUnauthorized, "login", map[string]any{
			"Title": "Sign in", "Next": next, "Login": login,
			"Error": "The login name or password is not right, or the account is disabled.",
		})
	}
	// At most 10 failures per account and per address in 5 minutes; the
	// refusal says the same whether or not the password would have been right.
	keys := []string{"login:" + login, "ip:" + clientAddr(r)}
	for _, k := range keys {
		if ok, until := s.Throttle.Allowed(k); !ok {
			callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) {
				e.Action, e.Outcome, e.Reason = "auth.login_failed", callvault.OutcomeDenied, "throttled"
				e.Details = map[string]string{"login": trim(login, 64), "throttled": strings.SplitN(k, ":", 2)[0]}
			})
			w.Header().Set("Retry-After", strconv.Itoa(int(time.Until(until).Seconds())+1))
			s.render(w, r, http.StatusTooManyRequests, "login", map[string]any{"Title": "Sign in", "Next": next, "Login": login,
				"Error": "Too many failed sign-ins. Try again after " + until.In(callvault.London).Format("15:04") + "."})
			return
		}
	}
	failed := func() {
		for _, k := range keys {
			s.Throttle.Fail(k)
		}
		fail()
	}
	u, err := s.Users.FindUserByLogin(r.Context(), login)
	switch {
	case callvault.ErrorCode(err) == callvault.ENOTFOUND:
		secret.DummyVerify(pw)
		failed()
		return
	case err != nil:
		s.pageError(w, r, err)
		return
	}
	if !secret.VerifyPassword(u.PasswordHash, pw) || u.Disabled {
		s.Logger.Info("sign-in failed", "login", login, "remote", r.RemoteAddr)
		failed()
		return
	}
	s.Throttle.Reset("login:" + login)
	callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) { e.SetActor(&callvault.Actor{User: u}) })
	if err := s.startSession(w, r, u); err != nil {
		s.pageError(w, r, err)
		return
	}
	s.Logger.Info("signed in", "user", u.Login, "remote", r.RemoteAddr)
	switch {
	case u.MustChangePassword:
		next = "/password"
	case !u.MFAEnabled:
		next = "/mfa/enrol?next=" + url.QueryEscape(next)
	default:
		next = "/mfa?next=" + url.QueryEscape(next)
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// startSession creates a session for u and sets its cookie.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, u *callvault.User) error {
	token := secret.Token("cvs_")
	now := s.Now()
	sess := &callvault.Session{TokenHash: secret.HashToken(token), UserID: u.ID, CreatedAt: now, LastSeen: now,
		ExpiresAt: now.Add(callvault.SessionAbsolute)}
	if err := s.Users.CreateSession(r.Context(), sess); err != nil {
		return err
	}
	s.setSessionCookie(w, token)
	return nil
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
		if err := s.Users.DeleteSession(r.Context(), secret.HashToken(c.Value)); err != nil {
			s.pageError(w, r, err)
			return
		}
	}
	s.clearSessionCookie(w)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// safeNext keeps post-login redirects on this site.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\r\n") {
		return "/recordings"
	}
	return next
}
