package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"regexp"
	"strconv"

	"github.com/callvault/callvault"
)

// *UserService keeps second factors too: they live in the users table, and
// ResetMFA must end sessions in the same transaction.
var _ callvault.MFAService = (*UserService)(nil)

// recoveryHashRE is the stored form of a recovery code: SHA-256, lower-case
// hex.
var recoveryHashRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// SetTOTP stores the sealed TOTP secret of user userID and the time step of
// the code that confirmed it, which therefore cannot sign in again. MFA is
// then enabled. A user's secret is never replaced: ResetMFA removes it
// first. EINVALID for an empty secret or a negative step; ENOTFOUND;
// ECONFLICT if the user already has one.
func (s *UserService) SetTOTP(ctx context.Context, userID int64, sealed []byte, step int64) error {
	switch {
	case len(sealed) == 0:
		return callvault.Errorf(callvault.EINVALID, "empty TOTP secret")
	case step < 0:
		return callvault.Errorf(callvault.EINVALID, "negative TOTP time step %d", step)
	}
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.exec(ctx, `UPDATE users SET mfa_secret = ?, mfa_last_step = ? WHERE id = ? AND mfa_secret IS NULL`,
		sealed, step, userID)
	if err != nil {
		return dbError(err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return dbError(err)
	} else if n == 0 {
		if _, err := findUser(ctx, tx, "u.id = ?", userID); err != nil {
			return err
		}
		return callvault.Errorf(callvault.ECONFLICT, "a second factor is already set up; reset it first")
	}
	noteUser(ctx, userID, nil)
	return tx.commit()
}

// TOTP returns the sealed TOTP secret of user userID and the last time step
// used. ENOTFOUND if there is no such user or it has no secret.
func (s *UserService) TOTP(ctx context.Context, userID int64) ([]byte, int64, error) {
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback()
	var (
		sealed []byte
		last   sql.NullInt64
	)
	err = tx.queryRow(ctx, `SELECT mfa_secret, mfa_last_step FROM users WHERE id = ? AND mfa_secret IS NOT NULL`, userID).
		Scan(&sealed, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, callvault.Errorf(callvault.ENOTFOUND, "no second factor set up")
	} else if err != nil {
		return nil, 0, dbError(err)
	}
	return sealed, last.Int64, nil
}

// UseTOTPStep records that a code of time step step signed user userID in.
// One conditional UPDATE moves the last step forward, so of any number of
// requests presenting codes of the same step, even at the same instant,
// exactly one succeeds. ECONFLICT if step is not after the last step used
// (a replayed code, or an older one); ENOTFOUND if there is no such user or
// it has no TOTP secret; EINVALID for a negative step.
func (s *UserService) UseTOTPStep(ctx context.Context, userID, step int64) error {
	if step < 0 {
		return callvault.Errorf(callvault.EINVALID, "negative TOTP time step %d", step)
	}
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.exec(ctx, `UPDATE users SET mfa_last_step = ?
		WHERE id = ? AND mfa_secret IS NOT NULL AND (mfa_last_step IS NULL OR mfa_last_step < ?)`,
		step, userID, step)
	if err != nil {
		return dbError(err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return dbError(err)
	} else if n == 0 {
		var has bool
		err := tx.queryRow(ctx, `SELECT mfa_secret IS NOT NULL FROM users WHERE id = ?`, userID).Scan(&has)
		switch {
		case errors.Is(err, sql.ErrNoRows), err == nil && !has:
			return callvault.Errorf(callvault.ENOTFOUND, "no second factor set up")
		case err != nil:
			return dbError(err)
		}
		return callvault.Errorf(callvault.ECONFLICT, "this code has already been used")
	}
	return tx.commit()
}

// SetRecoveryCodes replaces every recovery code of user userID, used or
// not, with hashes (HashRecoveryCode of package totp: SHA-256, lower-case
// hex). EINVALID for a malformed or repeated hash; ENOTFOUND.
func (s *UserService) SetRecoveryCodes(ctx context.Context, userID int64, hashes []string) error {
	seen := make(map[string]bool, len(hashes))
	for _, h := range hashes {
		if !recoveryHashRE.MatchString(h) {
			return callvault.Errorf(callvault.EINVALID, "recovery code hash is not lower-case hex SHA-256")
		} else if seen[h] {
			return callvault.Errorf(callvault.EINVALID, "recovery code repeated")
		}
		seen[h] = true
	}
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := findUser(ctx, tx, "u.id = ?", userID); err != nil {
		return err
	}
	if _, err := tx.exec(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, userID); err != nil {
		return dbError(err)
	}
	if len(hashes) > 0 {
		stmt, err := tx.prepare(ctx, `INSERT INTO recovery_codes (user_id, code_hash) VALUES (?, ?)`)
		if err != nil {
			return dbError(err)
		}
		defer stmt.Close()
		for _, h := range hashes {
			if _, err := stmt.ExecContext(ctx, userID, h); err != nil {
				return dbError(err)
			}
		}
	}
	noteUser(ctx, userID, nil)
	return tx.commit()
}

// UseRecoveryCode consumes the recovery code of user userID whose hash is
// hash, in one conditional UPDATE: of concurrent requests presenting it,
// exactly one succeeds. ENOTFOUND if the user has no such unused code.
func (s *UserService) UseRecoveryCode(ctx context.Context, userID int64, hash string) error {
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.exec(ctx, `UPDATE recovery_codes SET used_at = ?
		WHERE user_id = ? AND code_hash = ? AND used_at IS NULL`, tx.now.UnixMilli(), userID, hash)
	if err != nil {
		return dbError(err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return dbError(err)
	} else if n == 0 {
		return callvault.Errorf(callvault.ENOTFOUND, "unknown or used recovery code")
	}
	return tx.commit()
}

// RecoveryCodesLeft returns how many unused recovery codes user userID has.
func (s *UserService) RecoveryCodesLeft(ctx context.Context, userID int64) (int, error) {
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	var n int
	err = tx.queryRow(ctx, `SELECT COUNT(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL`, userID).Scan(&n)
	return n, dbError(err)
}

// ResetMFA removes the TOTP secret, its last step, the recovery codes and
// the passkeys of user userID and ends the user's sessions, in one
// transaction: the user must sign in and enrol again. ENOTFOUND.
func (s *UserService) ResetMFA(ctx context.Context, userID int64) error {
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := updateUser(ctx, tx, userID, `mfa_secret = NULL, mfa_last_step = NULL`); err != nil {
		return err
	}
	if _, err := tx.exec(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, userID); err != nil {
		return dbError(err)
	}
	// Passkeys are second factors too.
	if _, err := tx.exec(ctx, `DELETE FROM passkeys WHERE user_id = ?`, userID); err != nil {
		return dbError(err)
	}
	ended, err := deleteSessions(ctx, tx, userID)
	if err != nil {
		return err
	}
	noteUser(ctx, userID, map[string]string{"sessions_ended": strconv.FormatInt(ended, 10)})
	return tx.commit()
}

// MarkSessionMFA records that session tokenHash passed its second factor.
// EUNAUTHORIZED if the session is gone, expired or idle too long, or its
// user is disabled (as FindSession); EINVALID if its user has no second
// factor to have passed.
func (s *UserService) MarkSessionMFA(ctx context.Context, tokenHash string) error {
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var (
		expires, lastSeen int64
		disabled, hasMFA  bool
	)
	err = tx.queryRow(ctx, `SELECT s.expires_at, s.last_seen, u.disabled, `+hasMFASQL+` -- Passkeys: either factor
		FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?`, tokenHash).
		Scan(&expires, &lastSeen, &disabled, &hasMFA)
	now := tx.now.UnixMilli()
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return callvault.Errorf(callvault.EUNAUTHORIZED, "no such session")
	case err != nil:
		return dbError(err)
	case now >= expires || now-lastSeen >= callvault.SessionIdle.Milliseconds():
		return callvault.Errorf(callvault.EUNAUTHORIZED, "session expired")
	case disabled:
		return callvault.Errorf(callvault.EUNAUTHORIZED, "account disabled")
	case !hasMFA:
		return callvault.Errorf(callvault.EINVALID, "no second factor set up")
	}
	if _, err := tx.exec(ctx, `UPDATE sessions SET mfa_verified = 1 WHERE token_hash = ?`, tokenHash); err != nil {
		return dbError(err)
	}
	return tx.commit()
}
