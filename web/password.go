package web

import (
	"net/http"
	"strconv"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/secret"
)

func (s *Server) passwordPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "password", map[string]any{"Title": "Choose a new password"})
}

// changePassword replaces the password (the one-time password on first
// sign-in). The current password is required even then.
func (s *Server) changePassword(w http.ResponseWriter, r *http.Request) {
	u := actor(r.Context()).User
	current, pw, again := r.PostFormValue("current"), r.PostFormValue("new"), r.PostFormValue("confirm")
	fail := func(msg string) {
		callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) { e.Outcome, e.Reason = callvault.OutcomeFailed, msg })
		s.render(w, r, http.StatusBadRequest, "password", map[string]any{"Title": "Choose a new password", "Error": msg})
	}
	if !secret.VerifyPassword(u.PasswordHash, current) {
		fail("Your current password is not right.")
		return
	}
	if pw != again {
		fail("The two new passwords are not the same.")
		return
	}
	if pw == current {
		fail("The new password must be different from the current one.")
		return
	}
	if err := secret.CheckPassword(pw, u.Login); err != nil {
		fail(callvault.ErrorMessage(err) + ".")
		return
	}
	callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) {
		e.TargetType, e.TargetID = "user", strconv.FormatInt(u.ID, 10)
	})
	hash, err := secret.HashPassword(pw)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	if err := s.Users.SetPassword(r.Context(), u.ID, hash, false); err != nil {
		s.pageError(w, r, err)
		return
	}
	// Every session ended with the old password; start a fresh one here.
	if err := s.startSession(w, r, u); err != nil {
		s.pageError(w, r, err)
		return
	}
	s.Logger.Info("password changed", "user", u.Login)
	http.Redirect(w, r, "/recordings", http.StatusSeeOther)
}
