package sqldb

import (
	"context"
	"strings"

	"github.com/callvault/callvault"
)

// OpenID Connect

// FindUserByEmail implements callvault.UserService: the one enabled account
// with this e-mail address (compared case-insensitively, ASCII), else a
// disabled one, else ENOTFOUND. ECONFLICT when two or more enabled
// accounts share the address: the schema does not make e-mail unique, and
// signing in by e-mail must then be refused rather than guessed.
func (s *UserService) FindUserByEmail(ctx context.Context, email string) (*callvault.User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" {
		return nil, callvault.Errorf(callvault.ENOTFOUND, "user not found")
	}
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	us, err := findUsers(ctx, tx, "lower(trim(u.email)) = ?", email)
	if err != nil {
		return nil, err
	}
	var enabled, disabled []*callvault.User
	for _, u := range us {
		if u.Disabled {
			disabled = append(disabled, u)
		} else {
			enabled = append(enabled, u)
		}
	}
	switch {
	case len(enabled) > 1:
		return nil, callvault.Errorf(callvault.ECONFLICT, "%d enabled accounts share this e-mail address", len(enabled))
	case len(enabled) == 1:
		return enabled[0], nil
	case len(disabled) > 0:
		return disabled[0], nil
	}
	return nil, callvault.Errorf(callvault.ENOTFOUND, "user not found")
}
