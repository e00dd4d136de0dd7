package sqldb

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/callvault/callvault"
)

func TestUser_create(t *testing.T) {
	db, _ := openTestDB(t)
	north, south := createAcademies(t, db)
	s := NewUserService(db)
	ctx := sysCtx()

	alice := &callvault.User{Login: "Alice.Smith", Name: "Alice Smith", Email: "a@example.org",
		Role: callvault.RolePrincipal, AcademyIDs: []int64{south.ID, north.ID, south.ID},
		PasswordHash: "$argon2id$x", MustChangePassword: true}
	if err := s.CreateUser(ctx, alice); err != nil {
		t.Fatalf("CreateUser(alice): %v", err)
	}
	want := &callvault.User{ID: alice.ID, Login: "alice.smith", Name: "Alice Smith", Email: "a@example.org",
		Role: callvault.RolePrincipal, AcademyIDs: []int64{north.ID, south.ID},
		PasswordHash: "$argon2id$x", MustChangePassword: true, CreatedAt: t0}
	if !reflect.DeepEqual(alice, want) {
		t.Errorf("CreateUser set %+v, want %+v", alice, want)
	}

	tests := []struct {
		name string
		u    callvault.User
		code string
	}{
		{"duplicate login, other case", callvault.User{Login: "ALICE.SMITH", Role: callvault.RoleAdmin}, callvault.ECONFLICT},
		{"bad role", callvault.User{Login: "bob", Role: "root"}, callvault.EINVALID},
		{"empty role", callvault.User{Login: "bob"}, callvault.EINVALID},
		{"short login", callvault.User{Login: "b", Role: callvault.RoleAdmin}, callvault.EINVALID},
		{"long login", callvault.User{Login: strings.Repeat("b", 65), Role: callvault.RoleAdmin}, callvault.EINVALID},
		{"login with space", callvault.User{Login: "bob smith", Role: callvault.RoleAdmin}, callvault.EINVALID},
		{"login with @", callvault.User{Login: "bob@example.org", Role: callvault.RoleAdmin}, callvault.EINVALID},
		{"unknown academy", callvault.User{Login: "bob", Role: callvault.RolePrincipal, AcademyIDs: []int64{999}}, callvault.EINVALID},
		{"ok after failures", callvault.User{Login: "bob_2-x", Role: callvault.RoleListener}, ""},
		{"ok max length", callvault.User{Login: strings.Repeat("c", 64), Role: callvault.RoleDPO}, ""},
	}
	for _, tt := range tests {
		u := tt.u
		wantCode(t, "CreateUser("+tt.name+")", s.CreateUser(ctx, &u), tt.code)
	}
	// The failed unknown-academy insert left nothing behind.
	if u, err := s.FindUserByLogin(ctx, "bob"); err == nil {
		t.Errorf("FindUserByLogin(bob) = %+v after a failed CreateUser", u)
	}
}

func TestUser_find(t *testing.T) {
	db, _ := openTestDB(t)
	north, _ := createAcademies(t, db)
	s := NewUserService(db)
	ctx := sysCtx()
	zed := &callvault.User{Login: "zed", Role: callvault.RoleAdmin}
	amy := &callvault.User{Login: "amy", Role: callvault.RoleListener, AcademyIDs: []int64{north.ID}}
	for _, u := range []*callvault.User{zed, amy} {
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	zed.AcademyIDs = []int64{} // as read back

	got, err := s.FindUserByID(ctx, amy.ID)
	if err != nil || !reflect.DeepEqual(got, amy) {
		t.Errorf("FindUserByID(%d) = %+v, %v; want %+v", amy.ID, got, err, amy)
	}
	got, err = s.FindUserByLogin(ctx, " ZED ")
	if err != nil || !reflect.DeepEqual(got, zed) {
		t.Errorf("FindUserByLogin(ZED) = %+v, %v; want %+v", got, err, zed)
	}
	_, err = s.FindUserByID(ctx, 12345)
	wantCode(t, "FindUserByID(12345)", err, callvault.ENOTFOUND)
	_, err = s.FindUserByLogin(ctx, "nobody")
	wantCode(t, "FindUserByLogin(nobody)", err, callvault.ENOTFOUND)

	all, err := s.FindUsers(ctx)
	if want := []*callvault.User{amy, zed}; err != nil || !reflect.DeepEqual(all, want) {
		t.Errorf("FindUsers() = %+v, %v; want %+v", all, err, want)
	}
}

func TestUser_setPassword(t *testing.T) {
	db, _ := openTestDB(t)
	s := NewUserService(db)
	ctx := sysCtx()
	u := &callvault.User{Login: "amy", Role: callvault.RoleAdmin, PasswordHash: "old", MustChangePassword: true}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		hash     string
		must     bool
		code     string
		wantHash string
		wantMust bool
	}{
		{"new", false, "", "new", false},
		{"reset", true, "", "reset", true},
		{"", false, callvault.EINVALID, "reset", true},
	}
	for _, tt := range tests {
		err := s.SetPassword(ctx, u.ID, tt.hash, tt.must)
		wantCode(t, "SetPassword("+tt.hash+")", err, tt.code)
		got, _ := s.FindUserByID(ctx, u.ID)
		if got.PasswordHash != tt.wantHash || got.MustChangePassword != tt.wantMust {
			t.Errorf("after SetPassword(%q, %v): hash %q must %v, want %q %v",
				tt.hash, tt.must, got.PasswordHash, got.MustChangePassword, tt.wantHash, tt.wantMust)
		}
	}
	wantCode(t, "SetPassword(missing user)", s.SetPassword(ctx, 12345, "x", false), callvault.ENOTFOUND)
}

func TestUser_disable(t *testing.T) {
	db, _ := openTestDB(t)
	s := NewUserService(db)
	ctx := sysCtx()
	u := &callvault.User{Login: "amy", Role: callvault.RoleAdmin}
	other := &callvault.User{Login: "bob", Role: callvault.RoleAdmin}
	for _, x := range []*callvault.User{u, other} {
		if err := s.CreateUser(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	for _, sess := range []*callvault.Session{{TokenHash: "a1", UserID: u.ID}, {TokenHash: "a2", UserID: u.ID}, {TokenHash: "b1", UserID: other.ID}} {
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DisableUser(ctx, u.ID); err != nil {
		t.Fatalf("DisableUser: %v", err)
	}
	if got := countRows(t, db, `SELECT COUNT(*) FROM sessions WHERE user_id = ?`, u.ID); got != 0 {
		t.Errorf("DisableUser left %d sessions", got)
	}
	for _, h := range []string{"a1", "a2"} {
		_, _, err := s.FindSession(ctx, h)
		wantCode(t, "FindSession("+h+") after DisableUser", err, callvault.EUNAUTHORIZED)
	}
	if _, _, err := s.FindSession(ctx, "b1"); err != nil {
		t.Errorf("FindSession(b1) of another user: %v", err)
	}
	if got, _ := s.FindUserByID(ctx, u.ID); !got.Disabled {
		t.Errorf("FindUserByID after DisableUser: Disabled = false")
	}
	err := s.CreateSession(ctx, &callvault.Session{TokenHash: "a3", UserID: u.ID})
	wantCode(t, "CreateSession(disabled user)", err, callvault.EUNAUTHORIZED)
	wantCode(t, "DisableUser(missing)", s.DisableUser(ctx, 12345), callvault.ENOTFOUND)
	wantCode(t, "DisableUser(again)", s.DisableUser(ctx, u.ID), "")
}

func TestSession_lifetime(t *testing.T) {
	db, clk := openTestDB(t)
	s := NewUserService(db)
	ctx := sysCtx()
	u := &callvault.User{Login: "amy", Role: callvault.RoleAdmin}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	sess := &callvault.Session{TokenHash: "tok", UserID: u.ID}
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	if !sess.CreatedAt.Equal(t0) || !sess.LastSeen.Equal(t0) || !sess.ExpiresAt.Equal(t0.Add(callvault.SessionAbsolute)) {
		t.Errorf("CreateSession defaults = %+v", sess)
	}

	lastSeen := func() time.Time {
		var ms int64
		db.reader.QueryRow(`SELECT last_seen FROM sessions WHERE token_hash = 'tok'`).Scan(&ms)
		return time.UnixMilli(ms).UTC()
	}
	// Keep the session alive with a request every 29 minutes until the
	// absolute limit, checking last_seen is written at most once a minute.
	steps := []struct {
		advance      time.Duration
		code         string
		wantLastSeen time.Time
	}{
		{0, "", t0},
		{30 * time.Second, "", t0}, // under a minute: no write
		{30 * time.Second, "", t0.Add(time.Minute)}, // a minute: written
		{29 * time.Minute, "", t0.Add(30 * time.Minute)},
	}
	for i, st := range steps {
		clk.Add(st.advance)
		_, gotU, err := s.FindSession(ctx, "tok")
		wantCode(t, fmt.Sprintf("FindSession at %v", clk.Now().Sub(t0)), err, st.code)
		if err == nil && gotU.ID != u.ID {
			t.Errorf("step %d: FindSession user = %d, want %d", i, gotU.ID, u.ID)
		}
		if got := lastSeen(); !got.Equal(st.wantLastSeen) {
			t.Errorf("step %d (now %v): last_seen = %v, want %v", i, clk.Now(), got, st.wantLastSeen)
		}
	}
	for clk.Now().Before(t0.Add(callvault.SessionAbsolute - 29*time.Minute)) {
		clk.Add(29 * time.Minute)
		if _, _, err := s.FindSession(ctx, "tok"); err != nil {
			t.Fatalf("FindSession at %v (active, within %v): %v", clk.Now(), callvault.SessionAbsolute, err)
		}
	}
	clk.t = t0.Add(callvault.SessionAbsolute)
	_, _, err := s.FindSession(ctx, "tok")
	wantCode(t, "FindSession at the absolute limit", err, callvault.EUNAUTHORIZED)
	if n := countRows(t, db, `SELECT COUNT(*) FROM sessions`); n != 0 {
		t.Errorf("expired session not deleted: %d rows", n)
	}

	// Idle: exactly SessionIdle after last use is too late, a millisecond
	// before is fine.
	clk.t = t0
	for _, tt := range []struct {
		idle time.Duration
		code string
	}{
		{callvault.SessionIdle - time.Millisecond, ""},
		{callvault.SessionIdle, callvault.EUNAUTHORIZED},
	} {
		clk.t = t0
		sess := &callvault.Session{TokenHash: "idle" + tt.idle.String(), UserID: u.ID}
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		clk.Add(tt.idle)
		_, _, err := s.FindSession(ctx, sess.TokenHash)
		wantCode(t, "FindSession after idle "+tt.idle.String(), err, tt.code)
	}

	_, _, err = s.FindSession(ctx, "never-issued")
	wantCode(t, "FindSession(unknown)", err, callvault.EUNAUTHORIZED)
}

func TestSession_createDeletePurge(t *testing.T) {
	db, clk := openTestDB(t)
	s := NewUserService(db)
	ctx := sysCtx()
	u := &callvault.User{Login: "amy", Role: callvault.RoleAdmin}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		sess callvault.Session
		code string
	}{
		{"ok", callvault.Session{TokenHash: "t1", UserID: u.ID}, ""},
		{"duplicate", callvault.Session{TokenHash: "t1", UserID: u.ID}, callvault.ECONFLICT},
		{"no hash", callvault.Session{UserID: u.ID}, callvault.EINVALID},
		{"no user", callvault.Session{TokenHash: "t2", UserID: 12345}, callvault.EINVALID},
		{"short absolute", callvault.Session{TokenHash: "t3", UserID: u.ID, ExpiresAt: t0.Add(time.Hour)}, ""},
	}
	for _, tt := range tests {
		sess := tt.sess
		wantCode(t, "CreateSession("+tt.name+")", s.CreateSession(ctx, &sess), tt.code)
	}
	wantCode(t, "DeleteSession(t1)", s.DeleteSession(ctx, "t1"), "")
	wantCode(t, "DeleteSession(t1) again", s.DeleteSession(ctx, "t1"), "")
	_, _, err := s.FindSession(ctx, "t1")
	wantCode(t, "FindSession(deleted)", err, callvault.EUNAUTHORIZED)

	clk.Add(time.Hour)
	n, err := s.DeleteExpiredSessions(ctx)
	if err != nil || n != 1 {
		t.Errorf("DeleteExpiredSessions() = %d, %v; want 1 (t3 past its ExpiresAt)", n, err)
	}
}

func TestUser_update(t *testing.T) {
	db, _ := openTestDB(t)
	north, south := createAcademies(t, db)
	s := NewUserService(db)
	ctx := sysCtx()
	alice := &callvault.User{Login: "alice", Name: "Alice", Email: "a@example.org", Role: callvault.RolePrincipal,
		AcademyIDs: []int64{north.ID}, PasswordHash: "h"}
	bob := &callvault.User{Login: "bob", Role: callvault.RolePrincipal, AcademyIDs: []int64{north.ID}}
	for _, u := range []*callvault.User{alice, bob} {
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateSession(ctx, &callvault.Session{TokenHash: "b1", UserID: bob.ID}); err != nil {
		t.Fatal(err)
	}

	// Each step starts from the state the previous one left.
	tests := []struct {
		name         string
		u            callvault.User
		code         string
		want         callvault.User // stored afterwards (ID, Login, CreatedAt, PasswordHash filled in below)
		sessionsLeft int
	}{
		{"name and e-mail only",
			callvault.User{ID: alice.ID, Name: "Alice Smith", Email: "alice@example.org", Role: callvault.RolePrincipal, AcademyIDs: []int64{north.ID}},
			"", callvault.User{Name: "Alice Smith", Email: "alice@example.org", Role: callvault.RolePrincipal, AcademyIDs: []int64{north.ID}}, 2},
		{"same scope, repeated",
			callvault.User{ID: alice.ID, Name: "Alice Smith", Email: "alice@example.org", Role: callvault.RolePrincipal, AcademyIDs: []int64{north.ID, north.ID}},
			"", callvault.User{Name: "Alice Smith", Email: "alice@example.org", Role: callvault.RolePrincipal, AcademyIDs: []int64{north.ID}}, 2},
		{"scope widened",
			callvault.User{ID: alice.ID, Name: "Alice Smith", Role: callvault.RolePrincipal, AcademyIDs: []int64{south.ID, north.ID}},
			"", callvault.User{Name: "Alice Smith", Role: callvault.RolePrincipal, AcademyIDs: []int64{north.ID, south.ID}}, 0},
		{"scope narrowed",
			callvault.User{ID: alice.ID, Name: "Alice Smith", Role: callvault.RolePrincipal, AcademyIDs: []int64{south.ID}},
			"", callvault.User{Name: "Alice Smith", Role: callvault.RolePrincipal, AcademyIDs: []int64{south.ID}}, 0},
		{"role changed, same scope",
			callvault.User{ID: alice.ID, Name: "Alice Smith", Role: callvault.RoleListener, AcademyIDs: []int64{south.ID}},
			"", callvault.User{Name: "Alice Smith", Role: callvault.RoleListener, AcademyIDs: []int64{south.ID}}, 0},
		{"scope removed",
			callvault.User{ID: alice.ID, Name: "Alice Smith", Role: callvault.RoleListener},
			"", callvault.User{Name: "Alice Smith", Role: callvault.RoleListener, AcademyIDs: []int64{}}, 0},
		{"bad role",
			callvault.User{ID: alice.ID, Name: "X", Role: "root"},
			callvault.EINVALID, callvault.User{Name: "Alice Smith", Role: callvault.RoleListener, AcademyIDs: []int64{}}, 2},
		{"unknown academy: nothing changes",
			callvault.User{ID: alice.ID, Name: "X", Role: callvault.RoleAdmin, AcademyIDs: []int64{north.ID, 999}},
			callvault.EINVALID, callvault.User{Name: "Alice Smith", Role: callvault.RoleListener, AcademyIDs: []int64{}}, 2},
		{"to admin",
			callvault.User{ID: alice.ID, Name: "Alice Smith", Role: callvault.RoleAdmin},
			"", callvault.User{Name: "Alice Smith", Role: callvault.RoleAdmin, AcademyIDs: []int64{}}, 0},
	}
	for _, tt := range tests {
		if _, err := db.writer.Exec(`DELETE FROM sessions WHERE user_id = ?`, alice.ID); err != nil {
			t.Fatal(err)
		}
		for _, h := range []string{"a1", "a2"} {
			if err := s.CreateSession(ctx, &callvault.Session{TokenHash: h, UserID: alice.ID}); err != nil {
				t.Fatal(err)
			}
		}
		u := tt.u
		err := s.UpdateUser(ctx, &u)
		wantCode(t, "UpdateUser("+tt.name+")", err, tt.code)
		want := tt.want
		want.ID, want.Login, want.PasswordHash, want.CreatedAt = alice.ID, "alice", "h", t0
		got, _ := s.FindUserByID(ctx, alice.ID)
		if !reflect.DeepEqual(got, &want) {
			t.Errorf("%s: stored %+v, want %+v", tt.name, got, &want)
		}
		if err == nil && !reflect.DeepEqual(&u, &want) {
			t.Errorf("%s: UpdateUser set %+v, want the stored user %+v", tt.name, &u, &want)
		}
		if n := countRows(t, db, `SELECT COUNT(*) FROM sessions WHERE user_id = ?`, alice.ID); n != tt.sessionsLeft {
			t.Errorf("%s: %d sessions left, want %d", tt.name, n, tt.sessionsLeft)
		}
		if tt.sessionsLeft == 0 {
			_, _, err := s.FindSession(ctx, "a1")
			wantCode(t, tt.name+": FindSession(a1)", err, callvault.EUNAUTHORIZED)
		}
	}
	if _, _, err := s.FindSession(ctx, "b1"); err != nil {
		t.Errorf("another user's session ended: %v", err)
	}
	wantCode(t, "UpdateUser(missing)", s.UpdateUser(ctx, &callvault.User{ID: 12345, Role: callvault.RoleAdmin}), callvault.ENOTFOUND)
}
