package sqldb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callvault/callvault"
)

// t0 is the test clock's start: a Monday morning in term time.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// clock is a settable DB.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// openTestDB opens a fresh database in t.TempDir() with a clock at t0.
func openTestDB(t testing.TB) (*DB, *clock) {
	t.Helper()
	db, err := Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "callvault.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	c := &clock{t: t0}
	db.Now = c.Now
	return db, c
}

func sysCtx() context.Context {
	return callvault.NewContextWithActor(context.Background(), callvault.SystemActor)
}

// userCtx returns a context acting as an enabled user with role and scope.
func userCtx(role string, academyIDs ...int64) context.Context {
	u := &callvault.User{ID: 99, Login: role, Role: role, AcademyIDs: academyIDs}
	return callvault.NewContextWithActor(context.Background(), &callvault.Actor{User: u})
}

// wantCode fails unless err carries code ("" for no error).
func wantCode(t testing.TB, call string, err error, code string) {
	t.Helper()
	if got := callvault.ErrorCode(err); got != code {
		t.Errorf("%s: error %v (code %q), want code %q", call, err, got, code)
	}
}

func TestParseDSN(t *testing.T) {
	tests := []struct {
		dsn      string
		wantPath string
		wantCode string
	}{
		{"sqlite:/var/lib/callvault/db.sqlite", "/var/lib/callvault/db.sqlite", ""},
		{"sqlite:rel/db", "rel/db", ""},
		{"/bare/path.db", "/bare/path.db", ""},
		{"postgres://u@localhost/callvault", "", callvault.EINVALID},
		{"postgresql://u@localhost/callvault", "", callvault.EINVALID},
		{"", "", callvault.EINVALID},
		{"sqlite:", "", callvault.EINVALID},
		{"sqlite::memory:", "", callvault.EINVALID},
		{"file:x.db?mode=ro", "", callvault.EINVALID},
		{"sqlite:/tmp/x.db?_pragma=foo", "", callvault.EINVALID},
	}
	for _, tt := range tests {
		dialect, path, err := parseDSN(tt.dsn)
		if got := callvault.ErrorCode(err); got != tt.wantCode {
			t.Errorf("parseDSN(%q) error = %v, want code %q", tt.dsn, err, tt.wantCode)
			continue
		}
		if err == nil && (path != tt.wantPath || dialect != dialectSQLite) {
			t.Errorf("parseDSN(%q) = %q, %q, want sqlite, %q", tt.dsn, dialect, path, tt.wantPath)
		}
	}
	_, _, err := parseDSN("postgres://localhost/x")
	if msg := callvault.ErrorMessage(err); !strings.Contains(msg, "postgres is not supported yet") {
		t.Errorf("parseDSN(postgres) message = %q", msg)
	}
}

func TestOpen_pragmas(t *testing.T) {
	db, _ := openTestDB(t)
	ctx := context.Background()
	tests := []struct {
		pool   string
		pragma string
		want   string
	}{
		{"writer", "busy_timeout", "10000"},
		{"writer", "journal_mode", "wal"},
		{"writer", "foreign_keys", "1"},
		{"writer", "synchronous", "2"}, // FULL
		{"writer", "query_only", "0"},
		{"reader", "busy_timeout", "10000"},
		{"reader", "journal_mode", "wal"},
		{"reader", "foreign_keys", "1"},
		{"reader", "query_only", "1"},
	}
	for _, tt := range tests {
		pool := db.writer
		if tt.pool == "reader" {
			pool = db.reader
		}
		var got string
		if err := pool.QueryRowContext(ctx, "PRAGMA "+tt.pragma).Scan(&got); err != nil {
			t.Fatalf("%s: PRAGMA %s: %v", tt.pool, tt.pragma, err)
		}
		if got != tt.want {
			t.Errorf("%s: PRAGMA %s = %s, want %s", tt.pool, tt.pragma, got, tt.want)
		}
	}
	if got := db.writer.Stats().MaxOpenConnections; got != 1 {
		t.Errorf("writer MaxOpenConnections = %d, want 1", got)
	}
	if _, err := db.reader.ExecContext(ctx, "DELETE FROM academies"); err == nil {
		t.Errorf("reader DELETE succeeded, want query_only error")
	}
	if err := db.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func TestOpen_postgres(t *testing.T) {
	_, err := Open(context.Background(), "postgres://localhost/callvault")
	wantCode(t, `Open("postgres://...")`, err, callvault.EINVALID)
}

func countRows(t testing.TB, db *DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.reader.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func TestMigrate_idempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "callvault.db")
	ms, err := migrations(dialectSQLite)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		db, err := Open(context.Background(), path)
		if err != nil {
			t.Fatalf("Open #%d: %v", i+1, err)
		}
		if got := countRows(t, db, `SELECT COUNT(*) FROM schema_migrations`); got != len(ms) {
			t.Errorf("Open #%d: %d migrations recorded, want %d", i+1, got, len(ms))
		}
		if got := countRows(t, db, `SELECT COUNT(*) FROM academies WHERE slug = ?`, callvault.UnassignedSlug); got != 1 {
			t.Errorf("Open #%d: %d unassigned academies, want 1", i+1, got)
		}
		db.Close()
	}
}

func TestMigrate_newerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "callvault.db")
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.writer.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(context.Background(), path)
	wantCode(t, "Open(newer schema)", err, callvault.EINVALID)
}

// Two *DB values (as the CLI and the server) opening a new file at once
// must both succeed and apply each migration exactly once.
func TestOpen_concurrent(t *testing.T) {
	dir := t.TempDir()
	for round := range 10 {
		path := filepath.Join(dir, fmt.Sprintf("race%d.db", round))
		var (
			wg   sync.WaitGroup
			dbs  [2]*DB
			errs [2]error
		)
		for i := range dbs {
			wg.Go(func() { dbs[i], errs[i] = Open(context.Background(), path) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: Open #%d: %v", round, i, err)
			}
			defer dbs[i].Close()
		}
		ms, _ := migrations(dialectSQLite)
		if got := countRows(t, dbs[0], `SELECT COUNT(*) FROM schema_migrations`); got != len(ms) {
			t.Errorf("round %d: %d migrations recorded, want %d", round, got, len(ms))
		}
		if got := countRows(t, dbs[1], `SELECT COUNT(*) FROM academies`); got != 1 {
			t.Errorf("round %d: %d academies, want 1 (unassigned)", round, got)
		}
		// Both can write, one after the other.
		for i, db := range dbs {
			src := &callvault.Source{Name: fmt.Sprintf("pbx%d", i), Kind: callvault.SourceAPI, TokenHash: fmt.Sprintf("h%d", i)}
			if err := NewSourceService(db).CreateSource(context.Background(), src); err != nil {
				t.Errorf("round %d: CreateSource via DB #%d: %v", round, i, err)
			}
		}
	}
}

func TestRebind(t *testing.T) {
	db := &DB{dialect: dialectPostgres}
	got := db.rebind("SELECT a FROM t WHERE b = ? AND c IN (?, ?)")
	if want := "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)"; got != want {
		t.Errorf("rebind = %q, want %q", got, want)
	}
	db.dialect = dialectSQLite
	if got := db.rebind("x = ?"); got != "x = ?" {
		t.Errorf("sqlite rebind = %q", got)
	}
}

func TestDBError(t *testing.T) {
	db, _ := openTestDB(t)
	ctx := context.Background()
	exec := func(q string) error {
		_, err := db.writer.ExecContext(ctx, q)
		return dbError(err)
	}
	tests := []struct {
		sql  string
		code string
	}{
		{`INSERT INTO academies (slug, name, created_at) VALUES ('unassigned', 'x', 0)`, callvault.ECONFLICT},
		{`INSERT INTO user_academies (user_id, academy_id) VALUES (12345, 1)`, callvault.EINVALID},
		{`INSERT INTO users (login, role, created_at) VALUES ('x', 'emperor', 0)`, callvault.EINVALID},
		{`INSERT INTO academies (slug, name, created_at) VALUES ('x', NULL, 0)`, callvault.EINVALID},
		{`SELECT nonsense FROM nowhere`, callvault.EINTERNAL},
	}
	for _, tt := range tests {
		if got := callvault.ErrorCode(exec(tt.sql)); got != tt.code {
			t.Errorf("dbError(exec(%q)) code = %q, want %q", tt.sql, got, tt.code)
		}
	}
	if err := dbError(nil); err != nil {
		t.Errorf("dbError(nil) = %v", err)
	}
	ce := callvault.Errorf(callvault.ENOTFOUND, "x")
	if err := dbError(ce); !errors.Is(err, ce) {
		t.Errorf("dbError(domain error) = %v, want it unchanged", err)
	}
}

// TestOpen_twoProcesses starts two processes that open a new database at
// once, as the CLI and the server may.
func TestOpen_twoProcesses(t *testing.T) {
	if path := os.Getenv("CALLVAULT_TEST_OPEN"); path != "" {
		db, err := Open(context.Background(), path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "open:", err)
			os.Exit(1)
		}
		db.Close()
		return
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := filepath.Join(t.TempDir(), "callvault.db")
	var cmds []*exec.Cmd
	for range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestOpen_twoProcesses$")
		cmd.Env = append(os.Environ(), "CALLVAULT_TEST_OPEN="+path)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("process %d: %v", i, err)
		}
	}
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ms, _ := migrations(dialectSQLite)
	if got := countRows(t, db, `SELECT COUNT(*) FROM schema_migrations`); got != len(ms) {
		t.Errorf("%d migrations recorded, want %d", got, len(ms))
	}
}
