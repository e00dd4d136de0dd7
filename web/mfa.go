package web

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/totp"
)

// Sealer keeps small secrets (TOTP keys) encrypted at rest; purpose binds a
// sealed value to its use and user.
type Sealer interface {
	Seal(plaintext []byte, purpose string) ([]byte, error)
	Open(sealed []byte, purpose string) ([]byte, error)
}

func totpPurpose(uid int64) string    { return "totp:" + strconv.FormatInt(uid, 10) }
func enrolPurpose(uid int64) string   { return "totp-enrol:" + strconv.FormatInt(uid, 10) }
func mfaThrottleKey(uid int64) string { return "mfa:" + strconv.FormatInt(uid, 10) }

// mfaPage asks for the second factor after the password.
func (s *Server) mfaPage(w http.ResponseWriter, r *http.Request) {
	u := actor(r.Context()).User
	if !u.MFAEnabled {
		http.Redirect(w, r, "/mfa/enrol?next="+urlQueryEscape(safeNext(r.URL.Query().Get("next"))), http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, "mfa", map[string]any{"Title": "Second step of sign-in", "Next": safeNext(r.URL.Query().Get("next")),
		"HasPasskey": s.hasPasskey(r, u.ID)})
}

// hasPasskey decides whether the second-step page offers a passkey. An
// error here only hides the option: codes still work.
func (s *Server) hasPasskey(r *http.Request, userID int64) bool {
	if s.Passkeys == nil {
		return false
	}
	pks, err := s.Passkeys.FindPasskeys(r.Context(), userID)
	return err == nil && len(pks) > 0
}

// mfa checks a TOTP code (each time step once only) or a recovery code
// (each once only), throttled per account.
func (s *Server) mfa(w http.ResponseWriter, r *http.Request) {
	a := actor(r.Context())
	u := a.User
	next := safeNext(r.PostFormValue("next"))
	code := strings.TrimSpace(r.PostFormValue("code"))
	fail := func(status int, msg string) {
		callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) {
			e.Action, e.Outcome, e.Reason = "auth.mfa_failed", callvault.OutcomeDenied, msg
		})
		s.render(w, r, status, "mfa", map[string]any{"Title": "Second step of sign-in", "Next": next, "Error": msg,
			"HasPasskey": s.hasPasskey(r, u.ID)})
	}
	key := mfaThrottleKey(u.ID)
	if ok, until := s.Throttle.Allowed(key); !ok {
		fail(http.StatusTooManyRequests, "Too many wrong codes. Try again after "+until.In(callvault.London).Format("15:04")+".")
		return
	}
	sealed, _, err := s.MFA.TOTP(r.Context(), u.ID)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	secretKey, err := s.Secrets.Open(sealed, totpPurpose(u.ID))
	if err != nil {
		s.pageError(w, r, callvault.Wrap(callvault.EINTERNAL, err, "your second factor could not be read; ask Technical Support to reset it"))
		return
	}
	method := "totp"
	if step, ok := totp.Check(string(secretKey), code, s.Now()); ok {
		if err := s.MFA.UseTOTPStep(r.Context(), u.ID, step); err != nil {
			if callvault.ErrorCode(err) == callvault.ECONFLICT {
				s.Throttle.Fail(key)
				fail(http.StatusUnauthorized, "That code has already been used. Wait for the next one.")
				return
			}
			s.pageError(w, r, err)
			return
		}
	} else if err := s.MFA.UseRecoveryCode(r.Context(), u.ID, totp.HashRecoveryCode(code)); err == nil {
		method = "recovery_code"
	} else if callvault.ErrorCode(err) == callvault.ENOTFOUND {
		s.Throttle.Fail(key)
		fail(http.StatusUnauthorized, "That code is not right.")
		return
	} else {
		s.pageError(w, r, err)
		return
	}
	callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) { e.Details = map[string]string{"method": method} })
	if err := s.MFA.MarkSessionMFA(r.Context(), a.Session.TokenHash); err != nil {
		s.pageError(w, r, err)
		return
	}
	s.Throttle.Reset(key)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// mfaEnrolPage shows a new TOTP secret as a QR code and as text. The
// secret travels sealed in the form until a code from it is confirmed.
func (s *Server) mfaEnrolPage(w http.ResponseWriter, r *http.Request) {
	u := actor(r.Context()).User
	if u.MFAEnabled {
		http.Redirect(w, r, "/mfa", http.StatusSeeOther)
		return
	}
	s.renderEnrol(w, r, http.StatusOK, "", "")
}

func (s *Server) renderEnrol(w http.ResponseWriter, r *http.Request, status int, sealedB64, msg string) {
	u := actor(r.Context()).User
	var key string
	if sealedB64 != "" {
		if b, err := s.openEnrolment(u.ID, sealedB64); err == nil {
			key = b
		}
	}
	if key == "" {
		var err error
		if key, _, err = totp.Generate(u.Login); err != nil {
			s.pageError(w, r, err)
			return
		}
		sealed, err := s.Secrets.Seal([]byte(key), enrolPurpose(u.ID))
		if err != nil {
			s.pageError(w, r, err)
			return
		}
		sealedB64 = b64(sealed)
	}
	qr, err := totp.QRDataURL(totp.URI(key, u.Login))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	s.render(w, r, status, "mfa_enrol", map[string]any{"Title": "Set up your second factor", "QR": qrURL(qr), "Secret": groupKey(key),
		"Sealed": sealedB64, "Next": safeNext(r.URL.Query().Get("next")), "Error": msg})
}

func (s *Server) openEnrolment(uid int64, sealedB64 string) (string, error) {
	sealed, err := unb64(sealedB64)
	if err != nil {
		return "", err
	}
	b, err := s.Secrets.Open(sealed, enrolPurpose(uid))
	return string(b), err
}

// mfaEnrol confirms the new secret with a code from it, stores it sealed,
// and shows the recovery codes once.
func (s *Server) mfaEnrol(w http.ResponseWriter, r *http.Request) {
	a := actor(r.Context())
	u := a.User
	if u.MFAEnabled {
		http.Redirect(w, r, "/mfa", http.StatusSeeOther)
		return
	}
	sealedB64 := r.PostFormValue("sealed")
	key, err := s.openEnrolment(u.ID, sealedB64)
	if err != nil {
		s.renderEnrol(w, r, http.StatusBadRequest, "", "The set-up form was altered or is from another account. Scan this new code.")
		return
	}
	step, ok := totp.Check(key, r.PostFormValue("code"), s.Now())
	if !ok {
		callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) { e.Outcome = callvault.OutcomeFailed })
		s.renderEnrol(w, r, http.StatusBadRequest, sealedB64, "That code is not right. Check the time on your phone and try the current code.")
		return
	}
	sealed, err := s.Secrets.Seal([]byte(key), totpPurpose(u.ID))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	codes, hashes := totp.RecoveryCodes(10)
	callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) {
		e.TargetType, e.TargetID = "user", strconv.FormatInt(u.ID, 10)
	})
	if err := s.MFA.SetTOTP(r.Context(), u.ID, sealed, step); err != nil {
		s.pageError(w, r, err)
		return
	}
	if err := s.MFA.SetRecoveryCodes(r.Context(), u.ID, hashes); err != nil {
		s.pageError(w, r, err)
		return
	}
	if err := s.MFA.MarkSessionMFA(r.Context(), a.Session.TokenHash); err != nil {
		s.pageError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "mfa_codes", map[string]any{"Title": "Your recovery codes", "Codes": codes, "Next": safeNext(r.PostFormValue("next"))})
}

// groupKey spaces a base32 key in fours for typing.
func groupKey(k string) string {
	var b strings.Builder
	for i, c := range k {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	return b.String()
}
