package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/callvault/callvault"
)

// TokenService implements callvault.TokenService.
type TokenService struct {
	db *DB
}

var _ callvault.TokenService = (*TokenService)(nil)

// NewTokenService returns a TokenService backed by db.
func NewTokenService(db *DB) *TokenService { return &TokenService{db: db} }

// CreateToken stores t and sets its ID and CreatedAt.
func (s *TokenService) CreateToken(ctx context.Context, t *callvault.APIToken) error {
	t.Name = strings.TrimSpace(t.Name)
	if t.Name == "" || len(t.Name) > 100 {
		return callvault.Errorf(callvault.EINVALID, "token name must be 1-100 characters")
	}
	if len(t.TokenHash) != 64 {
		return callvault.Errorf(callvault.EINVALID, "token hash must be a hex SHA-256")
	}
	if len(t.Scopes) == 0 {
		return callvault.Errorf(callvault.EINVALID, "a token needs a scope")
	}
	for _, sc := range t.Scopes {
		if sc != callvault.ScopeRead && sc != callvault.ScopeWrite {
			return callvault.Errorf(callvault.EINVALID, "unknown scope %q (read or write)", sc)
		}
	}
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	t.CreatedAt = tx.now
	if !t.ExpiresAt.After(t.CreatedAt) || t.ExpiresAt.Sub(t.CreatedAt) > callvault.MaxTokenLife {
		return callvault.Errorf(callvault.EINVALID, "a token must expire within a year")
	}
	if _, err := findUser(ctx, tx, "u.id = ?", t.UserID); err != nil {
		return err
	}
	err = tx.queryRow(ctx, `INSERT INTO api_tokens (user_id, name, token_hash, scopes, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
		t.UserID, t.Name, t.TokenHash, strings.Join(t.Scopes, ","), t.CreatedAt.UnixMilli(), t.ExpiresAt.UnixMilli()).Scan(&t.ID)
	if err != nil {
		return dbError(err)
	}
	callvault.NoteAudit(ctx, func(e *callvault.AuditEvent) {
		if e.TargetType == "" {
			e.TargetType = "api_token"
		}
	})
	return tx.commit()
}

const tokenColumns = `id, user_id, name, token_hash, scopes, created_at, expires_at, last_used_at, revoked_at`

func scanToken(sc interface{ Scan(...any) error }) (*callvault.APIToken, error) {
	t := &callvault.APIToken{}
	var scopes string
	if err := sc.Scan(&t.ID, &t.UserID, &t.Name, &t.TokenHash, &scopes, msTime{&t.CreatedAt}, msTime{&t.ExpiresAt},
		msTime{&t.LastUsedAt}, msTime{&t.RevokedAt}); err != nil {
		return nil, err
	}
	t.Scopes = strings.Split(scopes, ",")
	return t, nil
}

// FindTokenByHash returns a usable token and its user, recording its use.
func (s *TokenService) FindTokenByHash(ctx context.Context, hash string) (*callvault.APIToken, *callvault.User, error) {
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return nil, nil, err
	}
	t, err := scanToken(tx.queryRow(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE token_hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		tx.Rollback()
		return nil, nil, callvault.Errorf(callvault.EUNAUTHORIZED, "the API token is not valid")
	} else if err != nil {
		tx.Rollback()
		return nil, nil, dbError(err)
	}
	u, err := findUser(ctx, tx, "u.id = ?", t.UserID)
	tx.Rollback()
	if err != nil {
		return nil, nil, err
	}
	now := s.db.Now().UTC()
	switch {
	case !t.RevokedAt.IsZero():
		return nil, nil, callvault.Errorf(callvault.EUNAUTHORIZED, "the API token was revoked")
	case !now.Before(t.ExpiresAt):
		return nil, nil, callvault.Errorf(callvault.EUNAUTHORIZED, "the API token has expired")
	case u.Disabled:
		return nil, nil, callvault.Errorf(callvault.EUNAUTHORIZED, "account disabled")
	}
	if now.Sub(t.LastUsedAt) >= lastSeenEvery {
		wtx, err := s.db.beginWrite(ctx)
		if err != nil {
			return nil, nil, err
		}
		defer wtx.Rollback()
		if _, err := wtx.exec(ctx, `UPDATE api_tokens SET last_used_at = ? WHERE id = ?`, now.UnixMilli(), t.ID); err != nil {
			return nil, nil, dbError(err)
		}
		// A plain commit: recording use is housekeeping, not the request's action.
		if err := wtx.Commit(); err != nil {
			return nil, nil, dbError(err)
		}
		t.LastUsedAt = now
	}
	return t, u, nil
}

// FindTokens lists a user's tokens, newest first.
func (s *TokenService) FindTokens(ctx context.Context, userID int64) ([]*callvault.APIToken, error) {
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.query(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE user_id = ? ORDER BY id DESC`, userID)
	if err != nil {
		return nil, dbError(err)
	}
	defer rows.Close()
	var out []*callvault.APIToken
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, dbError(err)
		}
		out = append(out, t)
	}
	return out, dbError(rows.Err())
}

// RevokeToken ends a token now.
func (s *TokenService) RevokeToken(ctx context.Context, id int64) error {
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.exec(ctx, `UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, tx.now.UnixMilli(), id)
	if err != nil {
		return dbError(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return callvault.Errorf(callvault.ENOTFOUND, "no such active token")
	}
	return tx.commit()
}
