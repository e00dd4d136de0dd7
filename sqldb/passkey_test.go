package sqldb

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/callvault/callvault"
)

func testPasskey(userID int64, credID string) *callvault.Passkey {
	return &callvault.Passkey{UserID: userID, CredentialID: []byte(credID), PublicKey: []byte("cose-key-" + credID),
		SignCount: 0, AAGUID: bytes.Repeat([]byte{7}, 16), Flags: 0x45, Transports: []string{"internal", "hybrid"}, Name: "Laptop"}
}

func TestPasskey_addFind(t *testing.T) {
	_, _, s, alice, bob := mfaUsers(t)
	ctx := sysCtx()
	if u, _ := s.FindUserByID(ctx, alice.ID); u.MFAEnabled {
		t.Fatal("MFAEnabled before any factor")
	}
	if ps, err := s.FindPasskeys(ctx, alice.ID); err != nil || len(ps) != 0 {
		t.Fatalf("FindPasskeys(none) = %v, %v", ps, err)
	}
	tests := []struct {
		name string
		p    *callvault.Passkey
		code string
	}{
		{"ok", testPasskey(alice.ID, "cred-1"), ""},
		{"second", testPasskey(alice.ID, "cred-2"), ""},
		{"same credential, same user", testPasskey(alice.ID, "cred-1"), callvault.ECONFLICT},
		{"same credential, another user", testPasskey(bob.ID, "cred-1"), callvault.ECONFLICT},
		{"no credential ID", testPasskey(alice.ID, ""), callvault.EINVALID},
		{"no key", &callvault.Passkey{UserID: alice.ID, CredentialID: []byte("x"), Name: "x"}, callvault.EINVALID},
		{"no name", &callvault.Passkey{UserID: alice.ID, CredentialID: []byte("x"), PublicKey: []byte("k"), Name: "  "}, callvault.EINVALID},
		{"no user", testPasskey(12345, "cred-3"), callvault.ENOTFOUND},
	}
	for _, tt := range tests {
		wantCode(t, tt.name, s.AddPasskey(ctx, tt.p), tt.code)
	}
	ps, err := s.FindPasskeys(ctx, alice.ID)
	if err != nil || len(ps) != 2 {
		t.Fatalf("FindPasskeys = %d, %v; want 2", len(ps), err)
	}
	p := ps[0]
	want := testPasskey(alice.ID, "cred-1")
	if p.ID == 0 || !bytes.Equal(p.CredentialID, want.CredentialID) || !bytes.Equal(p.PublicKey, want.PublicKey) ||
		!bytes.Equal(p.AAGUID, want.AAGUID) || p.Flags != want.Flags || len(p.Transports) != 2 || p.Transports[1] != "hybrid" ||
		p.Name != "Laptop" || p.CreatedAt.IsZero() || !p.LastUsedAt.IsZero() {
		t.Errorf("stored passkey = %+v", p)
	}
	got, err := s.FindPasskeyByCredentialID(ctx, []byte("cred-2"))
	if err != nil || got.ID != ps[1].ID || got.UserID != alice.ID {
		t.Errorf("FindPasskeyByCredentialID = %+v, %v", got, err)
	}
	_, err = s.FindPasskeyByCredentialID(ctx, []byte("nope"))
	wantCode(t, "FindPasskeyByCredentialID(unknown)", err, callvault.ENOTFOUND)

	// A passkey is a second factor: MFA is enabled, and a session may be
	// marked as having passed it, without any TOTP secret.
	if u, _ := s.FindUserByID(ctx, alice.ID); !u.MFAEnabled {
		t.Error("MFAEnabled is false for a user with a passkey")
	}
	if u, _ := s.FindUserByID(ctx, bob.ID); u.MFAEnabled {
		t.Error("MFAEnabled is true for bob, who has no factor")
	}
	if err := s.CreateSession(ctx, &callvault.Session{TokenHash: "pk1", UserID: alice.ID}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkSessionMFA(ctx, "pk1"); err != nil {
		t.Errorf("MarkSessionMFA with a passkey only: %v", err)
	}
	if sess, u, err := s.FindSession(ctx, "pk1"); err != nil || !sess.MFAVerified || !u.MFAEnabled {
		t.Errorf("FindSession = %+v, %+v, %v", sess, u, err)
	}

	// ResetMFA removes passkeys too.
	if err := s.ResetMFA(ctx, alice.ID); err != nil {
		t.Fatal(err)
	}
	if ps, _ := s.FindPasskeys(ctx, alice.ID); len(ps) != 0 {
		t.Errorf("%d passkeys left after ResetMFA", len(ps))
	}
	if u, _ := s.FindUserByID(ctx, alice.ID); u.MFAEnabled {
		t.Error("MFAEnabled after ResetMFA")
	}
}

func TestPasskey_updateUse(t *testing.T) {
	_, _, s, alice, _ := mfaUsers(t)
	ctx := sysCtx()
	counting := testPasskey(alice.ID, "counting")
	counting.SignCount = 5
	zero := testPasskey(alice.ID, "zero")
	for _, p := range []*callvault.Passkey{counting, zero} {
		if err := s.AddPasskey(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		id    int64
		count uint32
		code  string
	}{
		{"forward", counting.ID, 6, ""},
		{"same again (replay)", counting.ID, 6, callvault.ECONFLICT},
		{"backwards (clone)", counting.ID, 3, callvault.ECONFLICT},
		{"reset to zero", counting.ID, 0, callvault.ECONFLICT},
		{"jump forward", counting.ID, 100, ""},
		{"no counter", zero.ID, 0, ""},
		{"no counter again", zero.ID, 0, ""},
		{"counter starts", zero.ID, 1, ""},
		{"counter back to zero", zero.ID, 0, callvault.ECONFLICT},
		{"unknown", 12345, 1, callvault.ENOTFOUND},
	}
	for _, tt := range tests {
		wantCode(t, tt.name, s.UpdatePasskeyUse(ctx, tt.id, tt.count, at), tt.code)
	}
	got, err := s.FindPasskeyByCredentialID(ctx, []byte("counting"))
	if err != nil || got.SignCount != 100 || !got.LastUsedAt.Equal(at) {
		t.Errorf("after use: %+v, %v", got, err)
	}
}

// Of concurrent sign-ins presenting the same counter, exactly one wins.
func TestPasskey_updateUseConcurrent(t *testing.T) {
	_, _, s, alice, _ := mfaUsers(t)
	ctx := sysCtx()
	p := testPasskey(alice.ID, "c")
	if err := s.AddPasskey(ctx, p); err != nil {
		t.Fatal(err)
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		ok, conf int
	)
	for range 8 {
		wg.Go(func() {
			err := s.UpdatePasskeyUse(ctx, p.ID, 9, time.Now())
			mu.Lock()
			defer mu.Unlock()
			switch callvault.ErrorCode(err) {
			case "":
				ok++
			case callvault.ECONFLICT:
				conf++
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ok != 1 || conf != 7 {
		t.Errorf("%d succeeded, %d conflicts; want 1 and 7", ok, conf)
	}
}
