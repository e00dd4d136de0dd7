package sqldb

import (
	"testing"

	"github.com/callvault/callvault"
)

// OpenID Connect

func TestUser_findByEmail(t *testing.T) {
	db, _ := openTestDB(t)
	s := NewUserService(db)
	ctx := sysCtx()
	mk := func(login, email string) *callvault.User {
		t.Helper()
		u := &callvault.User{Login: login, Email: email, Role: callvault.RoleListener}
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		return u
	}
	alice := mk("alice", "Alice.Smith@Oakfield.example.org")
	mk("nomail", "")
	// Two enabled accounts with one address: ambiguous.
	mk("bob", "bob@example.org")
	mk("bob2", " BOB@example.org ")
	// One disabled and one enabled: the enabled one.
	old := mk("carol.old", "carol@example.org")
	if err := s.DisableUser(ctx, old.ID); err != nil {
		t.Fatal(err)
	}
	carol := mk("carol", "carol@example.org")
	// Only a disabled one: returned, so the caller can say why it refuses.
	dave := mk("dave", "dave@example.org")
	if err := s.DisableUser(ctx, dave.ID); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		email, login, code string
		disabled           bool
	}{
		{"alice.smith@oakfield.example.org", "alice", "", false},
		{"  ALICE.SMITH@OAKFIELD.EXAMPLE.ORG ", "alice", "", false},
		{"alice.smith@oakfield.example.org.evil", "", callvault.ENOTFOUND, false},
		{"alice%", "", callvault.ENOTFOUND, false},
		{"", "", callvault.ENOTFOUND, false},
		{"   ", "", callvault.ENOTFOUND, false},
		{"bob@example.org", "", callvault.ECONFLICT, false},
		{"carol@example.org", "carol", "", false},
		{"dave@example.org", "dave", "", true},
		{"nobody@example.org", "", callvault.ENOTFOUND, false},
	} {
		u, err := s.FindUserByEmail(ctx, tt.email)
		wantCode(t, "FindUserByEmail("+tt.email+")", err, tt.code)
		if tt.code != "" {
			continue
		}
		if u.Login != tt.login || u.Disabled != tt.disabled {
			t.Errorf("FindUserByEmail(%q) = %s (disabled %v), want %s (disabled %v)", tt.email, u.Login, u.Disabled, tt.login, tt.disabled)
		}
	}
	if u, _ := s.FindUserByEmail(ctx, "alice.smith@oakfield.example.org"); u.ID != alice.ID || u.Name != alice.Name {
		t.Errorf("wrong alice: %+v", u)
	}
	if u, _ := s.FindUserByEmail(ctx, "carol@example.org"); u.ID != carol.ID {
		t.Errorf("carol resolved to %d, want %d", u.ID, carol.ID)
	}
}
