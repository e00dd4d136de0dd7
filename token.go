package callvault

import (
	"context"
	"slices"
	"time"
)

// Token scopes. A read token may only make GET requests to the API; write
// adds requests and decisions. No token can play audio: playback needs a
// signed-in browser session.
const (
	ScopeRead  = "read"
	ScopeWrite = "write"
)

// MaxTokenLife bounds personal API tokens.
const MaxTokenLife = 365 * 24 * time.Hour

// APIToken is a personal token a user's scripts present as
// "Authorization: Bearer cvt_...". Only its SHA-256 is stored.
type APIToken struct {
	ID         int64     `json:"id"`
	UserID     int64     `json:"user_id"`
	Name       string    `json:"name"`
	TokenHash  string    `json:"-"`
	Scopes     []string  `json:"scopes"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
}

// Allows reports whether the token carries scope.
func (t *APIToken) Allows(scope string) bool {
	return t != nil && (slices.Contains(t.Scopes, scope) || (scope == ScopeRead && slices.Contains(t.Scopes, ScopeWrite)))
}

// TokenService stores personal API tokens.
type TokenService interface {
	// CreateToken stores t (TokenHash, UserID, Name, Scopes, ExpiresAt
	// set by the caller). EINVALID for unknown scopes or a life over
	// MaxTokenLife; ENOTFOUND for an unknown user.
	CreateToken(ctx context.Context, t *APIToken) error
	// FindTokenByHash returns the token and its user; EUNAUTHORIZED when
	// unknown, expired, revoked or its user is disabled. It records use.
	FindTokenByHash(ctx context.Context, hash string) (*APIToken, *User, error)
	FindTokens(ctx context.Context, userID int64) ([]*APIToken, error)
	// RevokeToken ends a token at once. ENOTFOUND.
	RevokeToken(ctx context.Context, id int64) error
}
