package sqldb

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callvault/callvault"
)

// codeHash is a stand-in for totp.HashRecoveryCode.
func codeHash(code string) string {
	sum := sha256.Sum256([]byte(code))
	return hex.EncodeToString(sum[:])
}

// mfaUsers returns a service with users alice and bob, without second
// factors.
func mfaUsers(t *testing.T) (*DB, *clock, *UserService, *callvault.User, *callvault.User) {
	t.Helper()
	db, clk := openTestDB(t)
	s := NewUserService(db)
	alice := &callvault.User{Login: "alice", Role: callvault.RoleAdmin}
	bob := &callvault.User{Login: "bob", Role: callvault.RoleListener}
	for _, u := range []*callvault.User{alice, bob} {
		if err := s.CreateUser(sysCtx(), u); err != nil {
			t.Fatal(err)
		}
	}
	return db, clk, s, alice, bob
}

func TestMFA_setTOTP(t *testing.T) {
	db, _, s, alice, _ := mfaUsers(t)
	ctx := sysCtx()
	if err := s.CreateSession(ctx, &callvault.Session{TokenHash: "a1", UserID: alice.ID}); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.TOTP(ctx, alice.ID)
	wantCode(t, "TOTP(before)", err, callvault.ENOTFOUND)

	tests := []struct {
		name   string
		userID int64
		sealed []byte
		step   int64
		code   string
	}{
		{"empty secret", alice.ID, nil, 100, callvault.EINVALID},
		{"negative step", alice.ID, []byte("sealed-1"), -1, callvault.EINVALID},
		{"missing user", 12345, []byte("sealed-1"), 100, callvault.ENOTFOUND},
		{"ok", alice.ID, []byte("sealed-1"), 100, ""},
		{"again: never replaced", alice.ID, []byte("sealed-2"), 200, callvault.ECONFLICT},
	}
	for _, tt := range tests {
		wantCode(t, "SetTOTP("+tt.name+")", s.SetTOTP(ctx, tt.userID, tt.sealed, tt.step), tt.code)
	}
	sealed, last, err := s.TOTP(ctx, alice.ID)
	if err != nil || string(sealed) != "sealed-1" || last != 100 {
		t.Errorf("TOTP = %q, %d, %v; want sealed-1, 100", sealed, last, err)
	}
	_, _, err = s.TOTP(ctx, 12345)
	wantCode(t, "TOTP(missing user)", err, callvault.ENOTFOUND)

	// MFAEnabled on every read.
	byID, _ := s.FindUserByID(ctx, alice.ID)
	byLogin, _ := s.FindUserByLogin(ctx, "alice")
	all, _ := s.FindUsers(ctx)
	_, bySession, _ := s.FindSession(ctx, "a1")
	for name, u := range map[string]*callvault.User{"FindUserByID": byID, "FindUserByLogin": byLogin,
		"FindUsers[alice]": all[0], "FindSession": bySession} {
		if u == nil || !u.MFAEnabled {
			t.Errorf("%s: alice MFAEnabled = false after SetTOTP (%+v)", name, u)
		}
	}
	if all[1].MFAEnabled {
		t.Errorf("FindUsers: bob MFAEnabled = true")
	}
	if n := countRows(t, db, `SELECT COUNT(*) FROM sessions WHERE user_id = ?`, alice.ID); n != 1 {
		t.Errorf("SetTOTP ended sessions: %d left", n)
	}
}

func TestMFA_useTOTPStep(t *testing.T) {
	_, _, s, alice, bob := mfaUsers(t)
	ctx := sysCtx()
	if err := s.SetTOTP(ctx, alice.ID, []byte("sealed"), 100); err != nil {
		t.Fatal(err)
	}
	// In order: each step sees what the previous ones recorded.
	tests := []struct {
		name     string
		userID   int64
		step     int64
		code     string
		wantLast int64
	}{
		{"the step that confirmed the secret", alice.ID, 100, callvault.ECONFLICT, 100},
		{"before it", alice.ID, 99, callvault.ECONFLICT, 100},
		{"next step", alice.ID, 101, "", 101},
		{"same step twice", alice.ID, 101, callvault.ECONFLICT, 101},
		{"an older step", alice.ID, 100, callvault.ECONFLICT, 101},
		{"a later step, skipping one", alice.ID, 103, "", 103},
		{"the skipped step, now older", alice.ID, 102, callvault.ECONFLICT, 103},
		{"negative", alice.ID, -1, callvault.EINVALID, 103},
		{"user without TOTP", bob.ID, 104, callvault.ENOTFOUND, 103},
		{"missing user", 12345, 104, callvault.ENOTFOUND, 103},
	}
	for _, tt := range tests {
		wantCode(t, fmt.Sprintf("UseTOTPStep(%s, %d)", tt.name, tt.step), s.UseTOTPStep(ctx, tt.userID, tt.step), tt.code)
		if _, last, err := s.TOTP(ctx, alice.ID); err != nil || last != tt.wantLast {
			t.Errorf("after %s: last step %d, %v; want %d", tt.name, last, err, tt.wantLast)
		}
	}
	if _, _, err := s.TOTP(ctx, bob.ID); callvault.ErrorCode(err) != callvault.ENOTFOUND {
		t.Errorf("UseTOTPStep gave bob a TOTP: %v", err)
	}
}

// TestMFA_useTOTPStepConcurrent: of 8 requests presenting a code of the
// same step at once, through two *DB (the server and the CLI, or two
// servers on one file), exactly one signs in.
func TestMFA_useTOTPStepConcurrent(t *testing.T) {
	db, _, s, alice, _ := mfaUsers(t)
	db2, err := Open(context.Background(), "sqlite:"+db.path)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	services := []*UserService{s, NewUserService(db2)}
	ctx := sysCtx()
	if err := s.SetTOTP(ctx, alice.ID, []byte("sealed"), 1000); err != nil {
		t.Fatal(err)
	}
	for round := range 10 {
		step := int64(1001 + round)
		var (
			wg       sync.WaitGroup
			start    = make(chan struct{})
			mu       sync.Mutex
			ok, conf int
			other    []error
		)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				err := services[i%2].UseTOTPStep(ctx, alice.ID, step)
				mu.Lock()
				defer mu.Unlock()
				switch callvault.ErrorCode(err) {
				case "":
					ok++
				case callvault.ECONFLICT:
					conf++
				default:
					other = append(other, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if ok != 1 || conf != 7 || len(other) > 0 {
			t.Errorf("round %d: %d succeeded, %d replays refused, other errors %v; want 1, 7, none", round, ok, conf, other)
		}
	}
}

func TestMFA_recoveryCodes(t *testing.T) {
	_, _, s, alice, bob := mfaUsers(t)
	ctx := sysCtx()
	h1, h2, h3, hb := codeHash("a1"), codeHash("a2"), codeHash("a3"), codeHash("b1")

	tests := []struct {
		name   string
		userID int64
		hashes []string
		code   string
	}{
		{"upper-case hex", alice.ID, []string{strings.ToUpper(h1)}, callvault.EINVALID},
		{"short", alice.ID, []string{h1[:63]}, callvault.EINVALID},
		{"not hex", alice.ID, []string{strings.Repeat("g", 64)}, callvault.EINVALID},
		{"plain code", alice.ID, []string{"abcd-efgh-jkmn"}, callvault.EINVALID},
		{"repeated", alice.ID, []string{h1, h2, h1}, callvault.EINVALID},
		{"missing user", 12345, []string{h1}, callvault.ENOTFOUND},
		{"ok", alice.ID, []string{h1, h2, h3}, ""},
		{"bob's", bob.ID, []string{hb}, ""},
	}
	for _, tt := range tests {
		wantCode(t, "SetRecoveryCodes("+tt.name+")", s.SetRecoveryCodes(ctx, tt.userID, tt.hashes), tt.code)
	}
	uses := []struct {
		name   string
		userID int64
		hash   string
		code   string
		left   int
	}{
		{"first use", alice.ID, h1, "", 2},
		{"second use", alice.ID, h1, callvault.ENOTFOUND, 2},
		{"unknown", alice.ID, codeHash("nope"), callvault.ENOTFOUND, 2},
		{"another user's code", alice.ID, hb, callvault.ENOTFOUND, 2},
		{"empty", alice.ID, "", callvault.ENOTFOUND, 2},
		{"another code", alice.ID, h3, "", 1},
	}
	for _, u := range uses {
		wantCode(t, "UseRecoveryCode("+u.name+")", s.UseRecoveryCode(ctx, u.userID, u.hash), u.code)
		if n, err := s.RecoveryCodesLeft(ctx, alice.ID); err != nil || n != u.left {
			t.Errorf("after %s: %d codes left, %v; want %d", u.name, n, err, u.left)
		}
	}
	if n, _ := s.RecoveryCodesLeft(ctx, bob.ID); n != 1 {
		t.Errorf("bob has %d codes left, want 1", n)
	}

	// Concurrent use of one code: exactly one succeeds.
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		mu    sync.Mutex
		codes []string
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			err := s.UseRecoveryCode(ctx, alice.ID, h2)
			mu.Lock()
			codes = append(codes, callvault.ErrorCode(err))
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	if n := strings.Count(strings.Join(codes, ","), callvault.ENOTFOUND); n != 7 || len(codes) != 8 {
		t.Errorf("concurrent UseRecoveryCode results %q; want one success and 7 not_found", codes)
	}

	// New codes replace all the old ones, used or not.
	h4 := codeHash("a4")
	if err := s.SetRecoveryCodes(ctx, alice.ID, []string{h4}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "UseRecoveryCode(replaced)", s.UseRecoveryCode(ctx, alice.ID, h3), callvault.ENOTFOUND)
	wantCode(t, "UseRecoveryCode(new)", s.UseRecoveryCode(ctx, alice.ID, h4), "")
	if err := s.SetRecoveryCodes(ctx, alice.ID, nil); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.RecoveryCodesLeft(ctx, alice.ID); n != 0 {
		t.Errorf("%d codes left after SetRecoveryCodes(nil)", n)
	}
}

func TestMFA_reset(t *testing.T) {
	db, _, s, alice, bob := mfaUsers(t)
	ctx := sysCtx()
	for _, u := range []*callvault.User{alice, bob} {
		if err := s.SetTOTP(ctx, u.ID, []byte("sealed"), 100); err != nil {
			t.Fatal(err)
		}
		if err := s.SetRecoveryCodes(ctx, u.ID, []string{codeHash(u.Login + "1"), codeHash(u.Login + "2")}); err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			h := u.Login + strconv.Itoa(i)
			if err := s.CreateSession(ctx, &callvault.Session{TokenHash: h, UserID: u.ID}); err != nil {
				t.Fatal(err)
			}
			if err := s.MarkSessionMFA(ctx, h); err != nil {
				t.Fatal(err)
			}
		}
	}

	p := callvault.NewPendingAudit(callvault.AuditEvent{ActorKind: callvault.ActorSystem, Action: "user.mfa_reset"})
	if err := s.ResetMFA(callvault.WithPendingAudit(ctx, p), alice.ID); err != nil {
		t.Fatalf("ResetMFA: %v", err)
	}
	if done, e := p.Done(); !done || e.TargetType != "user" || e.TargetID != strconv.FormatInt(alice.ID, 10) ||
		e.Details["sessions_ended"] != "2" {
		t.Errorf("pending audit after ResetMFA: written %v, %+v", done, e)
	}
	got, _ := s.FindUserByID(ctx, alice.ID)
	if got.MFAEnabled {
		t.Errorf("MFAEnabled after ResetMFA")
	}
	_, _, err := s.TOTP(ctx, alice.ID)
	wantCode(t, "TOTP after ResetMFA", err, callvault.ENOTFOUND)
	wantCode(t, "UseTOTPStep after ResetMFA", s.UseTOTPStep(ctx, alice.ID, 200), callvault.ENOTFOUND)
	wantCode(t, "UseRecoveryCode after ResetMFA", s.UseRecoveryCode(ctx, alice.ID, codeHash("alice1")), callvault.ENOTFOUND)
	for q, want := range map[string]int{
		`SELECT COUNT(*) FROM sessions WHERE user_id = ?`:                                              0,
		`SELECT COUNT(*) FROM recovery_codes WHERE user_id = ?`:                                        0,
		`SELECT COUNT(*) FROM users WHERE id = ? AND mfa_secret IS NULL AND mfa_last_step IS NULL`:     1,
		`SELECT COUNT(*) FROM audit_events WHERE target_type = 'user' AND target_id = CAST(? AS TEXT)`: 1,
	} {
		if n := countRows(t, db, q, alice.ID); n != want {
			t.Errorf("after ResetMFA: %s = %d, want %d", q, n, want)
		}
	}
	_, _, err = s.FindSession(ctx, "alice0")
	wantCode(t, "FindSession after ResetMFA", err, callvault.EUNAUTHORIZED)

	// Bob keeps everything.
	if _, last, err := s.TOTP(ctx, bob.ID); err != nil || last != 100 {
		t.Errorf("bob's TOTP after alice's reset: %d, %v", last, err)
	}
	if sess, _, err := s.FindSession(ctx, "bob0"); err != nil || !sess.MFAVerified {
		t.Errorf("bob's session after alice's reset: %+v, %v", sess, err)
	}
	if n, _ := s.RecoveryCodesLeft(ctx, bob.ID); n != 2 {
		t.Errorf("bob has %d recovery codes, want 2", n)
	}

	// Alice enrols again; a reset of a user without MFA is harmless.
	wantCode(t, "SetTOTP after ResetMFA", s.SetTOTP(ctx, alice.ID, []byte("sealed-new"), 50), "")
	wantCode(t, "UseTOTPStep(51) after re-enrolment", s.UseTOTPStep(ctx, alice.ID, 51), "")
	wantCode(t, "ResetMFA(again)", s.ResetMFA(ctx, alice.ID), "")
	wantCode(t, "ResetMFA(no MFA)", s.ResetMFA(ctx, alice.ID), "")
	wantCode(t, "ResetMFA(missing)", s.ResetMFA(ctx, 12345), callvault.ENOTFOUND)
}

func TestMFA_markSession(t *testing.T) {
	_, clk, s, alice, bob := mfaUsers(t)
	ctx := sysCtx()
	for _, sess := range []*callvault.Session{{TokenHash: "a1", UserID: alice.ID}, {TokenHash: "a2", UserID: alice.ID},
		{TokenHash: "idle", UserID: alice.ID}, {TokenHash: "b1", UserID: bob.ID}} {
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, "MarkSessionMFA(no second factor yet)", s.MarkSessionMFA(ctx, "a1"), callvault.EINVALID)
	if err := s.SetTOTP(ctx, alice.ID, []byte("sealed"), 1); err != nil {
		t.Fatal(err)
	}
	if err := s.SetTOTP(ctx, bob.ID, []byte("sealed"), 1); err != nil {
		t.Fatal(err)
	}
	verified := func(h string) bool {
		t.Helper()
		sess, _, err := s.FindSession(ctx, h)
		if err != nil {
			t.Fatalf("FindSession(%s): %v", h, err)
		}
		return sess.MFAVerified
	}
	if verified("a1") {
		t.Errorf("new session MFAVerified = true")
	}
	wantCode(t, "MarkSessionMFA(a1)", s.MarkSessionMFA(ctx, "a1"), "")
	wantCode(t, "MarkSessionMFA(a1) again", s.MarkSessionMFA(ctx, "a1"), "")
	if !verified("a1") || verified("a2") {
		t.Errorf("after MarkSessionMFA(a1): a1 %v, a2 %v; want true, false", verified("a1"), verified("a2"))
	}
	wantCode(t, "MarkSessionMFA(unknown)", s.MarkSessionMFA(ctx, "nope"), callvault.EUNAUTHORIZED)
	wantCode(t, "MarkSessionMFA(empty)", s.MarkSessionMFA(ctx, ""), callvault.EUNAUTHORIZED)

	// Idle too long, though not yet swept: refused, as FindSession would.
	clk.Add(callvault.SessionIdle)
	wantCode(t, "MarkSessionMFA(idle)", s.MarkSessionMFA(ctx, "idle"), callvault.EUNAUTHORIZED)
	clk.Add(-callvault.SessionIdle)

	// A disabled user's sessions are gone; so is its standing.
	if err := s.DisableUser(ctx, bob.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "MarkSessionMFA(disabled user)", s.MarkSessionMFA(ctx, "b1"), callvault.EUNAUTHORIZED)
	if _, err := s.db.writer.Exec(`INSERT INTO sessions (token_hash, user_id, created_at, last_seen, expires_at)
		VALUES ('b2', ?, ?, ?, ?)`, bob.ID, t0.UnixMilli(), t0.UnixMilli(), t0.Add(time.Hour).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "MarkSessionMFA(disabled user, stray session)", s.MarkSessionMFA(ctx, "b2"), callvault.EUNAUTHORIZED)

	// A new password ends verified sessions too.
	if err := s.SetPassword(ctx, alice.ID, "new", false); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.FindSession(ctx, "a1")
	wantCode(t, "FindSession(a1) after SetPassword", err, callvault.EUNAUTHORIZED)

	// CreateSession stores MFAVerified as given.
	if err := s.CreateSession(ctx, &callvault.Session{TokenHash: "a3", UserID: alice.ID, MFAVerified: true}); err != nil {
		t.Fatal(err)
	}
	if !verified("a3") {
		t.Errorf("CreateSession(MFAVerified: true) stored false")
	}
}

// TestMigrate_mfaExistingRows upgrades a database made before migration
// 0004 that already holds a user and a session.
func TestMigrate_mfaExistingRows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "callvault.db")
	ms, err := migrations(dialectSQLite)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", path+"?_pragma=foreign_keys(ON)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.version >= 4 {
			break
		}
		if _, err := raw.Exec(m.sql); err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		if _, err := raw.Exec(`INSERT INTO schema_migrations VALUES (?, ?, 0)`, m.version, m.name); err != nil {
			t.Fatal(err)
		}
	}
	ms0 := t0.UnixMilli()
	for _, q := range []string{
		fmt.Sprintf(`INSERT INTO users (id, login, role, created_at) VALUES (7, 'old', 'admin', %d)`, ms0),
		fmt.Sprintf(`INSERT INTO sessions VALUES ('tok', 7, %d, %d, %d)`, ms0, ms0, ms0+time.Hour.Milliseconds()),
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	raw.Close()

	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open (migrating): %v", err)
	}
	defer db.Close()
	db.Now = (&clock{t: t0}).Now
	s := NewUserService(db)
	sess, u, err := s.FindSession(sysCtx(), "tok")
	if err != nil || sess.MFAVerified || u.MFAEnabled || u.Login != "old" {
		t.Fatalf("FindSession after migration = %+v, %+v, %v", sess, u, err)
	}
	if err := s.SetTOTP(sysCtx(), 7, []byte("sealed"), 1); err != nil {
		t.Errorf("SetTOTP after migration: %v", err)
	}
	if err := s.MarkSessionMFA(sysCtx(), "tok"); err != nil {
		t.Errorf("MarkSessionMFA after migration: %v", err)
	}
}

// TestMFA_schemaChecks: the database itself refuses values the service
// never writes.
func TestMFA_schemaChecks(t *testing.T) {
	db, _, _, alice, _ := mfaUsers(t)
	for _, q := range []string{
		`UPDATE users SET mfa_secret = X'' WHERE id = ?`,
		`UPDATE users SET mfa_last_step = -1 WHERE id = ?`,
		`UPDATE users SET mfa_secret = 'text' WHERE id = ?`,
		`INSERT INTO recovery_codes (user_id, code_hash) VALUES (?, 'ABC')`,
		`INSERT INTO recovery_codes (user_id, code_hash) VALUES (?, '` + strings.ToUpper(codeHash("x")) + `')`,
	} {
		if _, err := db.writer.Exec(q, alice.ID); err == nil {
			t.Errorf("%s: accepted", q)
		}
	}
	if _, err := db.writer.Exec(`INSERT INTO sessions (token_hash, user_id, created_at, last_seen, expires_at, mfa_verified)
		VALUES ('x', ?, 0, 0, 0, 2)`, alice.ID); err == nil {
		t.Errorf("mfa_verified = 2 accepted")
	}
}
