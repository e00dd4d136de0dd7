package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/callvault/callvault"
)

// UserService implements callvault.UserService: accounts and sessions.
type UserService struct {
	db *DB
}

var _ callvault.UserService = (*UserService)(nil)

// NewUserService returns a UserService backed by db.
func NewUserService(db *DB) *UserService {
	return &UserService{db: db}
}

// lastSeenEvery bounds how often FindSession writes last_seen: at most once
// a minute per session, so browsing does not turn every page view into a
// write (and an fsync). The idle limit is therefore exact to a minute.
const lastSeenEvery = time.Minute

var loginRE = regexp.MustCompile(`^[a-z0-9._-]{2,64}$`)

// normLogin returns the stored form of a login: logins are compared
// case-insensitively and stored in lower case.
func normLogin(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// CreateUser inserts u with its academy scope and sets u.ID and
// u.CreatedAt; u.Login is stored lower-cased. ECONFLICT if the login exists;
// EINVALID for a bad login or role or an unknown academy.
func (s *UserService) CreateUser(ctx context.Context, u *callvault.User) error {
	u.Login = normLogin(u.Login)
	switch {
	case !loginRE.MatchString(u.Login):
		return callvault.Errorf(callvault.EINVALID, "login %q: use 2-64 letters, digits, '.', '_' or '-'", u.Login)
	case !callvault.ValidRole(u.Role):
		return callvault.Errorf(callvault.EINVALID, "unknown role %q", u.Role)
	}
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()

	createdAt := tx.now.Truncate(time.Millisecond)
	err = tx.queryRow(ctx, `INSERT INTO users (login, name, email, role, password_hash,
		must_change_password, disabled, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		u.Login, u.Name, u.Email, u.Role, u.PasswordHash, u.MustChangePassword, u.Disabled,
		createdAt.UnixMilli()).Scan(&u.ID)
	if isUnique(err) {
		return callvault.Wrap(callvault.ECONFLICT, err, "a user with this login already exists")
	} else if err != nil {
		return dbError(err)
	}

	ids := normIDs(u.AcademyIDs)
	if err := insertUserAcademies(ctx, tx, u.ID, ids); err != nil {
		return err
	}
	if err := tx.commit(); err != nil {
		return err
	}
	u.AcademyIDs = ids
	u.CreatedAt = createdAt
	u.MFAEnabled = false
	return nil
}

// normIDs returns ids sorted, without duplicates, never nil.
func normIDs(ids []int64) []int64 {
	ids = append([]int64{}, ids...)
	slices.Sort(ids)
	return slices.Compact(ids)
}

// insertUserAcademies adds academies ids (sorted, unique) to the scope of
// user id. EINVALID for an academy that does not exist.
func insertUserAcademies(ctx context.Context, tx *dbTx, userID int64, ids []int64) error {
	for _, id := range ids {
		var n int
		if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM academies WHERE id = ?`, id).Scan(&n); err != nil {
			return dbError(err)
		} else if n == 0 {
			return callvault.Errorf(callvault.EINVALID, "academy %d does not exist", id)
		}
		if _, err := tx.exec(ctx, `INSERT INTO user_academies (user_id, academy_id) VALUES (?, ?)`, userID, id); err != nil {
			return dbError(err)
		}
	}
	return nil
}

// UpdateUser replaces the name, e-mail, role and academy scope of user u.ID
// (the login, password and flags are left alone) and, on success, sets *u
// to the stored user. If the role or the scope changed, every session of
// the user ends in the same transaction: a session must never carry powers
// its user no longer has, and the next sign-in reads the new ones.
// ENOTFOUND; EINVALID for a bad role or an unknown academy.
func (s *UserService) UpdateUser(ctx context.Context, u *callvault.User) error {
	if !callvault.ValidRole(u.Role) {
		return callvault.Errorf(callvault.EINVALID, "unknown role %q", u.Role)
	}
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()

	old, err := findUser(ctx, tx, "u.id = ?", u.ID)
	if err != nil {
		return err
	}
	ids := normIDs(u.AcademyIDs)
	if err := updateUser(ctx, tx, u.ID, `name = ?, email = ?, role = ?`, u.Name, u.Email, u.Role); err != nil {
		return err
	}
	changed := old.Role != u.Role || !slices.Equal(old.AcademyIDs, ids)
	if !slices.Equal(old.AcademyIDs, ids) {
		if _, err := tx.exec(ctx, `DELETE FROM user_academies WHERE user_id = ?`, u.ID); err != nil {
			return dbError(err)
		}
		if err := insertUserAcademies(ctx, tx, u.ID, ids); err != nil {
			return err
		}
	}
	var ended int64
	if changed {
		if ended, err = deleteSessions(ctx, tx, u.ID); err != nil {
			return err
		}
	}
	noteUser(ctx, u.ID, map[string]string{"role": u.Role, "sessions_ended": strconv.FormatInt(ended, 10)})
	stored, err := findUser(ctx, tx, "u.id = ?", u.ID)
	if err != nil {
		return err
	}
	if err := tx.commit(); err != nil {
		return err
	}
	*u = *stored
	return nil
}

// deleteSessions ends every session of user id and returns how many there
// were.
func deleteSessions(ctx context.Context, tx *dbTx, userID int64) (int64, error) {
	res, err := tx.exec(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID)
	if err != nil {
		return 0, dbError(err)
	}
	n, err := res.RowsAffected()
	return n, dbError(err)
}

// noteUser describes an action on user id in the pending audit entry, if
// any: the target (unless the caller set one) and details, added to the
// caller's.
func noteUser(ctx context.Context, id int64, details map[string]string) {
	callvault.NoteAudit(ctx, func(e *callvault.AuditEvent) {
		if e.TargetType == "" && e.TargetID == "" {
			e.TargetType, e.TargetID = "user", strconv.FormatInt(id, 10)
		}
		if len(details) > 0 && e.Details == nil {
			e.Details = map[string]string{}
		}
		for k, v := range details {
			if _, set := e.Details[k]; !set {
				e.Details[k] = v
			}
		}
	})
}

// FindUserByID returns ENOTFOUND.
func (s *UserService) FindUserByID(ctx context.Context, id int64) (*callvault.User, error) {
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	return findUser(ctx, tx, "u.id = ?", id)
}

// FindUserByLogin matches the login case-insensitively. ENOTFOUND.
func (s *UserService) FindUserByLogin(ctx context.Context, login string) (*callvault.User, error) {
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	return findUser(ctx, tx, "u.login = ?", normLogin(login))
}

// FindUsers lists every user by login.
func (s *UserService) FindUsers(ctx context.Context) ([]*callvault.User, error) {
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	us, err := findUsers(ctx, tx, "1 = 1")
	if err != nil {
		return nil, err
	}
	if us == nil {
		us = []*callvault.User{}
	}
	return us, nil
}

// userColumns are read by every query that returns users; MFA is enabled
// once a TOTP secret is stored (SetTOTP) or a passkey (AddPasskey), and
// until ResetMFA.
const userColumns = `u.id, u.login, u.name, u.email, u.role, u.password_hash,
	u.must_change_password, u.disabled, u.created_at, ` + hasMFASQL

// Passkeys: a user has a second factor with a TOTP secret or a passkey.
const hasMFASQL = `(u.mfa_secret IS NOT NULL OR EXISTS (SELECT 1 FROM passkeys p WHERE p.user_id = u.id))`

func scanUser(sc interface{ Scan(...any) error }, u *callvault.User) error {
	return sc.Scan(&u.ID, &u.Login, &u.Name, &u.Email, &u.Role, &u.PasswordHash,
		&u.MustChangePassword, &u.Disabled, msTime{&u.CreatedAt}, &u.MFAEnabled)
}

func findUser(ctx context.Context, tx *dbTx, cond string, args ...any) (*callvault.User, error) {
	us, err := findUsers(ctx, tx, cond, args...)
	if err != nil {
		return nil, err
	} else if len(us) == 0 {
		return nil, callvault.Errorf(callvault.ENOTFOUND, "user not found")
	}
	return us[0], nil
}

// findUsers returns the users matching cond (on users u), by login, with
// their academy scope.
func findUsers(ctx context.Context, tx *dbTx, cond string, args ...any) ([]*callvault.User, error) {
	rows, err := tx.query(ctx, `SELECT `+userColumns+` FROM users u WHERE `+cond+` ORDER BY u.login`, args...)
	if err != nil {
		return nil, dbError(err)
	}
	defer rows.Close()
	var us []*callvault.User
	byID := map[int64]*callvault.User{}
	for rows.Next() {
		u := &callvault.User{AcademyIDs: []int64{}}
		if err := scanUser(rows, u); err != nil {
			return nil, err
		}
		us = append(us, u)
		byID[u.ID] = u
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(err)
	}
	rows.Close()
	if len(us) == 0 {
		return us, nil
	}

	rows, err = tx.query(ctx, `SELECT ua.user_id, ua.academy_id FROM user_academies ua
		JOIN users u ON u.id = ua.user_id WHERE `+cond+` ORDER BY ua.user_id, ua.academy_id`, args...)
	if err != nil {
		return nil, dbError(err)
	}
	defer rows.Close()
	for rows.Next() {
		var uid, aid int64
		if err := rows.Scan(&uid, &aid); err != nil {
			return nil, err
		}
		if u := byID[uid]; u != nil {
			u.AcademyIDs = append(u.AcademyIDs, aid)
		}
	}
	return us, dbError(rows.Err())
}

// SetPassword stores a new password hash. MustChangePassword becomes must.
// EINVALID for an empty hash; ENOTFOUND.
func (s *UserService) SetPassword(ctx context.Context, id int64, hash string, must bool) error {
	if hash == "" {
		return callvault.Errorf(callvault.EINVALID, "empty password hash")
	}
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := updateUser(ctx, tx, id, `password_hash = ?, must_change_password = ?`, hash, must); err != nil {
		return err
	}
	// A new password ends every session: whoever knew the old one is out.
	if _, err := deleteSessions(ctx, tx, id); err != nil {
		return err
	}
	return tx.commit()
}

// DisableUser disables the account and deletes its sessions in the same
// transaction, so no request is served for it after this returns. ENOTFOUND.
func (s *UserService) DisableUser(ctx context.Context, id int64) error {
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := updateUser(ctx, tx, id, `disabled = 1`); err != nil {
		return err
	}
	if _, err := deleteSessions(ctx, tx, id); err != nil {
		return err
	}
	return tx.commit()
}

// updateUser sets columns of user id; ENOTFOUND if there is no such user.
func updateUser(ctx context.Context, tx *dbTx, id int64, set string, args ...any) error {
	res, err := tx.exec(ctx, `UPDATE users SET `+set+` WHERE id = ?`, append(args, id)...)
	if err != nil {
		return dbError(err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return dbError(err)
	} else if n == 0 {
		return callvault.Errorf(callvault.ENOTFOUND, "user not found")
	}
	return nil
}

// CreateSession stores s. Zero times default to now (CreatedAt, LastSeen)
// and CreatedAt+SessionAbsolute (ExpiresAt); MFAVerified is stored as given
// (false after a password, until MarkSessionMFA). EINVALID for an empty token
// hash or an unknown user, EUNAUTHORIZED for a disabled user, ECONFLICT for a
// token hash in use.
func (s *UserService) CreateSession(ctx context.Context, sess *callvault.Session) error {
	if sess.TokenHash == "" {
		return callvault.Errorf(callvault.EINVALID, "empty session token hash")
	}
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()

	var disabled bool
	err = tx.queryRow(ctx, `SELECT disabled FROM users WHERE id = ?`, sess.UserID).Scan(&disabled)
	if errors.Is(err, sql.ErrNoRows) {
		return callvault.Errorf(callvault.EINVALID, "user %d does not exist", sess.UserID)
	} else if err != nil {
		return dbError(err)
	} else if disabled {
		return callvault.Errorf(callvault.EUNAUTHORIZED, "account disabled")
	}

	if sess.CreatedAt.IsZero() {
		sess.CreatedAt = tx.now
	}
	if sess.LastSeen.IsZero() {
		sess.LastSeen = sess.CreatedAt
	}
	if sess.ExpiresAt.IsZero() {
		sess.ExpiresAt = sess.CreatedAt.Add(callvault.SessionAbsolute)
	}
	sess.CreatedAt = sess.CreatedAt.UTC().Truncate(time.Millisecond)
	sess.LastSeen = sess.LastSeen.UTC().Truncate(time.Millisecond)
	sess.ExpiresAt = sess.ExpiresAt.UTC().Truncate(time.Millisecond)
	_, err = tx.exec(ctx, `INSERT INTO sessions (token_hash, user_id, created_at, last_seen, expires_at, mfa_verified)
		VALUES (?, ?, ?, ?, ?, ?)`, sess.TokenHash, sess.UserID, sess.CreatedAt.UnixMilli(),
		sess.LastSeen.UnixMilli(), sess.ExpiresAt.UnixMilli(), sess.MFAVerified)
	if isUnique(err) {
		return callvault.Wrap(callvault.ECONFLICT, err, "session already exists")
	} else if err != nil {
		return dbError(err)
	}
	return tx.commit()
}

// FindSession returns the session and its user. EUNAUTHORIZED if it is
// missing, past ExpiresAt, idle for SessionIdle or more, or its user is
// disabled; an expired session is deleted. LastSeen is refreshed when it is
// more than a minute old. MFAVerified reports whether the session passed its
// second factor (MarkSessionMFA); the user's MFAEnabled, whether they have
// one.
//
// The check reads from a reader connection; only a refresh or an expiry
// takes the write lock.
func (s *UserService) FindSession(ctx context.Context, tokenHash string) (*callvault.Session, *callvault.User, error) {
	sess, u, err := s.readSession(ctx, tokenHash)
	if err != nil {
		return nil, nil, err
	}
	now := s.db.Now().UTC()
	expired := !now.Before(sess.ExpiresAt) || now.Sub(sess.LastSeen) >= callvault.SessionIdle
	switch {
	case expired:
		if err := s.DeleteSession(ctx, tokenHash); err != nil {
			return nil, nil, err
		}
		return nil, nil, callvault.Errorf(callvault.EUNAUTHORIZED, "session expired")
	case u.Disabled:
		return nil, nil, callvault.Errorf(callvault.EUNAUTHORIZED, "account disabled")
	case now.Sub(sess.LastSeen) >= lastSeenEvery:
		if err := s.touchSession(ctx, sess, now); err != nil {
			return nil, nil, err
		}
	}
	return sess, u, nil
}

func (s *UserService) readSession(ctx context.Context, tokenHash string) (*callvault.Session, *callvault.User, error) {
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer tx.Rollback()
	sess := &callvault.Session{TokenHash: tokenHash}
	err = tx.queryRow(ctx, `SELECT user_id, created_at, last_seen, expires_at, mfa_verified FROM sessions WHERE token_hash = ?`, tokenHash).
		Scan(&sess.UserID, msTime{&sess.CreatedAt}, msTime{&sess.LastSeen}, msTime{&sess.ExpiresAt}, &sess.MFAVerified)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, callvault.Errorf(callvault.EUNAUTHORIZED, "no such session")
	} else if err != nil {
		return nil, nil, dbError(err)
	}
	u, err := findUser(ctx, tx, "u.id = ?", sess.UserID)
	if err != nil {
		return nil, nil, err
	}
	return sess, u, nil
}

// touchSession moves last_seen forward to now. The condition makes
// concurrent refreshes harmless, and a session deleted meanwhile (logout,
// DisableUser) stays deleted.
func (s *UserService) touchSession(ctx context.Context, sess *callvault.Session, now time.Time) error {
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now = now.Truncate(time.Millisecond)
	if _, err := tx.exec(ctx, `UPDATE sessions SET last_seen = ? WHERE token_hash = ? AND last_seen < ?`,
		now.UnixMilli(), sess.TokenHash, now.UnixMilli()); err != nil {
		return dbError(err)
	}
	if err := tx.commit(); err != nil {
		return err
	}
	sess.LastSeen = now
	return nil
}

// DeleteSession deletes a session; deleting a missing one is not an error,
// so signing out twice is harmless.
func (s *UserService) DeleteSession(ctx context.Context, tokenHash string) error {
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.exec(ctx, `DELETE FROM sessions WHERE token_hash = ?`, tokenHash); err != nil {
		return dbError(err)
	}
	return tx.commit()
}

// DeleteExpiredSessions deletes sessions past their absolute or idle limit
// and returns how many. FindSession deletes the ones it meets; this is for a
// periodic job, since an abandoned browser never comes back.
func (s *UserService) DeleteExpiredSessions(ctx context.Context) (int64, error) {
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	res, err := tx.exec(ctx, `DELETE FROM sessions WHERE expires_at <= ? OR last_seen <= ?`,
		tx.now.UnixMilli(), tx.now.Add(-callvault.SessionIdle).UnixMilli())
	if err != nil {
		return 0, dbError(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, dbError(err)
	}
	return n, tx.commit()
}
