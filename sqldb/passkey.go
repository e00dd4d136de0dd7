package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/callvault/callvault"
)

// Passkeys live beside the other second factors: *UserService keeps them,
// so that ResetMFA and the user's MFAEnabled see them in the same database.
var _ callvault.PasskeyService = (*UserService)(nil)

const passkeyColumns = `id, user_id, credential_id, public_key, sign_count, aaguid, flags, transports, name, created_at, last_used_at`

// AddPasskey stores passkey p of user p.UserID and sets its ID and
// CreatedAt. EINVALID for a missing credential ID or public key, or an
// empty name; ECONFLICT if the credential ID is registered already;
// ENOTFOUND if there is no such user.
func (s *UserService) AddPasskey(ctx context.Context, p *callvault.Passkey) error {
	p.Name = strings.TrimSpace(p.Name)
	switch {
	case len(p.CredentialID) == 0:
		return callvault.Errorf(callvault.EINVALID, "passkey without a credential ID")
	case len(p.PublicKey) == 0:
		return callvault.Errorf(callvault.EINVALID, "passkey without a public key")
	case p.Name == "":
		return callvault.Errorf(callvault.EINVALID, "a passkey needs a name")
	}
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := findUser(ctx, tx, "u.id = ?", p.UserID); err != nil {
		return err
	}
	p.CreatedAt = tx.now.Truncate(time.Millisecond)
	res, err := tx.exec(ctx, `INSERT INTO passkeys (user_id, credential_id, public_key, sign_count, aaguid, flags, transports, name, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.UserID, p.CredentialID, p.PublicKey, int64(p.SignCount), p.AAGUID, int64(p.Flags), strings.Join(p.Transports, ","), p.Name, p.CreatedAt.UnixMilli())
	if err != nil {
		if callvault.ErrorCode(dbError(err)) == callvault.ECONFLICT {
			return callvault.Errorf(callvault.ECONFLICT, "this passkey is already registered")
		}
		return dbError(err)
	}
	if p.ID, err = res.LastInsertId(); err != nil {
		return dbError(err)
	}
	noteUser(ctx, p.UserID, map[string]string{"passkey": p.Name})
	return tx.commit()
}

// FindPasskeys returns the passkeys of user userID, oldest first (none for
// an unknown user).
func (s *UserService) FindPasskeys(ctx context.Context, userID int64) ([]*callvault.Passkey, error) {
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.query(ctx, `SELECT `+passkeyColumns+` FROM passkeys WHERE user_id = ? ORDER BY id`, userID)
	if err != nil {
		return nil, dbError(err)
	}
	defer rows.Close()
	ps := []*callvault.Passkey{}
	for rows.Next() {
		p, err := scanPasskey(rows)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, dbError(rows.Err())
}

// FindPasskeyByCredentialID returns the passkey with credential ID id.
// ENOTFOUND.
func (s *UserService) FindPasskeyByCredentialID(ctx context.Context, id []byte) (*callvault.Passkey, error) {
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	p, err := scanPasskey(tx.queryRow(ctx, `SELECT `+passkeyColumns+` FROM passkeys WHERE credential_id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, callvault.Errorf(callvault.ENOTFOUND, "unknown passkey")
	}
	return p, err
}

// UpdatePasskeyUse records a sign-in with passkey id at usedAt and its new
// signature counter, in one conditional UPDATE: a counter that does not
// move forward, when both it and the stored one are non-zero, means a
// cloned authenticator (or a replay) and is refused with ECONFLICT. Of two
// requests presenting the same counter at once, one succeeds. ENOTFOUND.
func (s *UserService) UpdatePasskeyUse(ctx context.Context, id int64, signCount uint32, usedAt time.Time) error {
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.exec(ctx, `UPDATE passkeys SET sign_count = ?, last_used_at = ?
		WHERE id = ? AND (sign_count < ? OR (sign_count = 0 AND ? = 0))`,
		int64(signCount), usedAt.UnixMilli(), id, int64(signCount), int64(signCount))
	if err != nil {
		return dbError(err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return dbError(err)
	} else if n == 0 {
		var stored int64
		err := tx.queryRow(ctx, `SELECT sign_count FROM passkeys WHERE id = ?`, id).Scan(&stored)
		if errors.Is(err, sql.ErrNoRows) {
			return callvault.Errorf(callvault.ENOTFOUND, "unknown passkey")
		} else if err != nil {
			return dbError(err)
		}
		return callvault.Errorf(callvault.ECONFLICT, "the passkey's signature counter went back (%d after %d): the authenticator may have been cloned", signCount, stored)
	}
	return tx.commit()
}

func scanPasskey(sc interface{ Scan(...any) error }) (*callvault.Passkey, error) {
	var (
		p                 callvault.Passkey
		count, flags      int64
		transports        string
		created, lastUsed sql.NullInt64
	)
	err := sc.Scan(&p.ID, &p.UserID, &p.CredentialID, &p.PublicKey, &count, &p.AAGUID, &flags, &transports, &p.Name, &created, &lastUsed)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
		return nil, dbError(err)
	}
	p.SignCount, p.Flags = uint32(count), byte(flags)
	if transports != "" {
		p.Transports = strings.Split(transports, ",")
	}
	p.CreatedAt, p.LastUsedAt = fromMS(created), fromMS(lastUsed)
	return &p, nil
}
