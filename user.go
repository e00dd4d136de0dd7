package callvault

import (
	"context"
	"slices"
	"time"
)

// Roles. See SPEC.md for what each may do.
const (
	RoleAdmin     = "admin"
	RoleCEO       = "ceo"
	RolePrincipal = "principal"
	RoleDPO       = "dpo"
	RoleListener  = "listener"
)

// Roles lists every role, in display order.
var Roles = []string{RoleAdmin, RoleCEO, RolePrincipal, RoleDPO, RoleListener}

// ValidRole reports whether r is a role.
func ValidRole(r string) bool { return slices.Contains(Roles, r) }

// User is a person who signs in.
type User struct {
	ID                 int64     `json:"id"`
	Login              string    `json:"login"`
	Name               string    `json:"name"`
	Email              string    `json:"email"`
	Role               string    `json:"role"`
	AcademyIDs         []int64   `json:"academy_ids"` // scope, for principals and listeners
	PasswordHash       string    `json:"-"`
	MustChangePassword bool      `json:"must_change_password"`
	MFAEnabled         bool      `json:"mfa_enabled"` // a TOTP secret is enrolled
	Disabled           bool      `json:"disabled"`
	CreatedAt          time.Time `json:"created_at"`
}

// Session is a signed-in browser. The token is only ever held by the browser;
// the database keeps its SHA-256.
type Session struct {
	TokenHash string
	UserID    int64
	CreatedAt time.Time
	LastSeen  time.Time
	ExpiresAt time.Time // absolute limit
	// MFAVerified is set once the second factor was checked for this
	// session; until then it only reaches the MFA pages.
	MFAVerified bool
}

// Session limits.
const (
	SessionIdle     = 30 * time.Minute
	SessionAbsolute = 12 * time.Hour
)

// UserService manages accounts and sessions.
type UserService interface {
	// CreateUser returns ECONFLICT if the login exists, EINVALID for a bad role.
	CreateUser(ctx context.Context, u *User) error
	FindUserByID(ctx context.Context, id int64) (*User, error)
	FindUserByLogin(ctx context.Context, login string) (*User, error)
	// OpenID Connect
	// FindUserByEmail returns the account whose e-mail address is email,
	// compared case-insensitively. E-mail addresses are not unique: when
	// several enabled accounts share it, ECONFLICT (sign-in by e-mail is
	// then ambiguous and must be refused). With no enabled account but a
	// disabled one, the disabled account. ENOTFOUND for none or an empty
	// address.
	FindUserByEmail(ctx context.Context, email string) (*User, error)
	// End OpenID Connect
	FindUsers(ctx context.Context) ([]*User, error)
	// SetPassword stores a new hash, sets MustChangePassword to must and ends
	// every session of the user.
	SetPassword(ctx context.Context, id int64, hash string, must bool) error
	// DisableUser disables the account and deletes its sessions.
	DisableUser(ctx context.Context, id int64) error

	// UpdateUser replaces name, e-mail, role and academy scope. Changing the
	// role or the scope ends the user's sessions. ENOTFOUND, EINVALID.
	UpdateUser(ctx context.Context, u *User) error

	CreateSession(ctx context.Context, s *Session) error
	// FindSession returns the session and its user; EUNAUTHORIZED if it is
	// missing, expired, idle too long or its user is disabled. It updates
	// LastSeen.
	FindSession(ctx context.Context, tokenHash string) (*Session, *User, error)
	DeleteSession(ctx context.Context, tokenHash string) error
}

// MFAService keeps second factors. TOTP secrets are stored sealed (by the
// vault); recovery codes as SHA-256 hashes.
type MFAService interface {
	// SetTOTP stores a confirmed TOTP secret, sealed, and the time step
	// that confirmed it, and enables MFA for the user.
	SetTOTP(ctx context.Context, userID int64, sealed []byte, step int64) error
	// TOTP returns the sealed secret and the last time step used.
	// ENOTFOUND when the user has none.
	TOTP(ctx context.Context, userID int64) (sealed []byte, lastStep int64, err error)
	// UseTOTPStep records that step was used to sign in; ECONFLICT when it
	// is not after the last step used (a replayed code).
	UseTOTPStep(ctx context.Context, userID, step int64) error
	// SetRecoveryCodes replaces the user's recovery codes (SHA-256 hex).
	SetRecoveryCodes(ctx context.Context, userID int64, hashes []string) error
	// UseRecoveryCode consumes a code: ENOTFOUND if unknown or already used.
	UseRecoveryCode(ctx context.Context, userID int64, hash string) error
	// ResetMFA removes the user's second factors (an admin's recovery
	// action) and ends their sessions.
	ResetMFA(ctx context.Context, userID int64) error
	// MarkSessionMFA records that the session passed its second factor.
	MarkSessionMFA(ctx context.Context, tokenHash string) error
}

// Passkeys.

// Passkey is a WebAuthn credential registered by a user as a second factor.
type Passkey struct {
	ID           int64
	UserID       int64
	CredentialID []byte // as the authenticator returned it; unique
	PublicKey    []byte // COSE key
	SignCount    uint32
	AAGUID       []byte
	Flags        byte     // authenticator data flags at registration (BE must never change)
	Transports   []string // "internal", "usb", "hybrid", ...
	Name         string   // chosen by the user, for the list
	CreatedAt    time.Time
	LastUsedAt   time.Time // zero until first used
}

// PasskeyService keeps passkeys. A user with a passkey has MFAEnabled set.
type PasskeyService interface {
	// AddPasskey stores a new passkey and sets its ID and CreatedAt.
	// ECONFLICT if the credential ID is already registered (to anyone);
	// EINVALID for a missing credential ID or key; ENOTFOUND for no user.
	AddPasskey(ctx context.Context, p *Passkey) error
	// FindPasskeys returns the user's passkeys, oldest first.
	FindPasskeys(ctx context.Context, userID int64) ([]*Passkey, error)
	// FindPasskeyByCredentialID returns ENOTFOUND for an unknown ID.
	FindPasskeyByCredentialID(ctx context.Context, credentialID []byte) (*Passkey, error)
	// UpdatePasskeyUse records a sign-in with passkey id: its new signature
	// counter and when. ECONFLICT when the counter does not move forward,
	// unless both the stored and the new one are zero (authenticators
	// without a counter): a cloned authenticator or a replay; ENOTFOUND.
	UpdatePasskeyUse(ctx context.Context, id int64, signCount uint32, usedAt time.Time) error
}
