package sqldb

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/callvault/callvault"
)

func TestTokens(t *testing.T) {
	db, _ := openTestDB(t)
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	ctx := callvault.NewContextWithActor(context.Background(), callvault.SystemActor)
	users := NewUserService(db)
	u := &callvault.User{Login: "script", Role: callvault.RoleDPO, PasswordHash: "x"}
	if err := users.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	ts := NewTokenService(db)
	hash := strings.Repeat("ab", 32)
	tok := &callvault.APIToken{UserID: u.ID, Name: "nightly export", TokenHash: hash, Scopes: []string{callvault.ScopeRead}, ExpiresAt: now.Add(24 * time.Hour)}
	if err := ts.CreateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []*callvault.APIToken{
		{UserID: u.ID, Name: "", TokenHash: strings.Repeat("cd", 32), Scopes: []string{"read"}, ExpiresAt: now.Add(time.Hour)},
		{UserID: u.ID, Name: "x", TokenHash: strings.Repeat("cd", 32), Scopes: []string{"admin"}, ExpiresAt: now.Add(time.Hour)},
		{UserID: u.ID, Name: "x", TokenHash: strings.Repeat("cd", 32), Scopes: []string{"read"}, ExpiresAt: now.Add(400 * 24 * time.Hour)},
		{UserID: u.ID, Name: "x", TokenHash: strings.Repeat("cd", 32), Scopes: []string{"read"}, ExpiresAt: now.Add(-time.Hour)},
		{UserID: 999, Name: "x", TokenHash: strings.Repeat("cd", 32), Scopes: []string{"read"}, ExpiresAt: now.Add(time.Hour)},
	} {
		if err := ts.CreateToken(ctx, bad); err == nil {
			t.Errorf("CreateToken(%+v) succeeded", bad)
		}
	}
	got, gu, err := ts.FindTokenByHash(ctx, hash)
	if err != nil || got.ID != tok.ID || gu.Login != "script" || !got.Allows(callvault.ScopeRead) || got.Allows(callvault.ScopeWrite) {
		t.Fatalf("FindTokenByHash = %+v, %v, %v", got, gu, err)
	}
	if _, _, err := ts.FindTokenByHash(ctx, strings.Repeat("00", 32)); callvault.ErrorCode(err) != callvault.EUNAUTHORIZED {
		t.Errorf("unknown token: %v, want unauthorized", err)
	}
	now = now.Add(24 * time.Hour)
	if _, _, err := ts.FindTokenByHash(ctx, hash); callvault.ErrorCode(err) != callvault.EUNAUTHORIZED {
		t.Errorf("expired token: %v, want unauthorized", err)
	}
	now = now.Add(-time.Hour)
	if err := ts.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ts.FindTokenByHash(ctx, hash); callvault.ErrorCode(err) != callvault.EUNAUTHORIZED {
		t.Errorf("revoked token: %v, want unauthorized", err)
	}
	if err := ts.RevokeToken(ctx, tok.ID); callvault.ErrorCode(err) != callvault.ENOTFOUND {
		t.Errorf("revoking twice: %v, want not found", err)
	}
	list, err := ts.FindTokens(ctx, u.ID)
	if err != nil || len(list) != 1 || list[0].RevokedAt.IsZero() || list[0].LastUsedAt.IsZero() {
		t.Errorf("FindTokens = %+v, %v", list, err)
	}
}
