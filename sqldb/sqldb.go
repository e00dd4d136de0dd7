// Package sqldb stores callvault's metadata (academies, recordings and their
// participants, users, sessions and ingest sources) in SQL and implements the
// root package's service interfaces on top of it.
//
// SQLite is the embedded default; the SQL is written so that a PostgreSQL
// dialect can follow: integer and text columns only, timestamps as INTEGER
// unix milliseconds (UTC), row values and LIMIT instead of engine-specific
// functions, and schema files kept per dialect under migrations/.
//
// A SQLite database is opened with two pools: a single-connection writer
// (BEGIN IMMEDIATE, synchronous=FULL, so an acknowledged ingest survives a
// power cut and writers never deadlock on lock upgrades) and a small
// read-only reader pool that WAL lets run beside the writer. Access rules
// are applied inside the queries from the actor in the context, through
// callvault.RecordingScope.
package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/callvault/callvault"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialects.
const (
	dialectSQLite   = "sqlite"
	dialectPostgres = "postgres"
)

// readerConns is the size of the reader pool. Searches are short; a few
// connections keep the web UI responsive while the sweeper or an export
// walks the table.
const readerConns = 4

// busyTimeout is how long a connection waits for a lock held by another
// connection (or another process, such as the CLI) before failing.
const busyTimeout = 10 * time.Second

// DB is an open database.
type DB struct {
	dialect string
	path    string
	writer  *sql.DB // exactly one connection: SQLite allows one writer anyway
	reader  *sql.DB // read-only connections

	// Now returns the current time; tests replace it to move time.
	Now func() time.Time
}

// Open opens (creating if needed) the database named by dsn and brings its
// schema up to date. dsn is "sqlite:PATH" or a bare path. PostgreSQL URLs
// are recognised but not supported yet (EINVALID).
func Open(ctx context.Context, dsn string) (*DB, error) {
	dialect, path, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	db := &DB{dialect: dialect, path: path, Now: time.Now}

	// The pragmas are DSN parameters so that every connection a pool opens,
	// now or after a reconnect, gets them. modernc.org/sqlite runs
	// busy_timeout first, so the others wait for locks instead of failing.
	common := url.Values{}
	common.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	common.Add("_pragma", "foreign_keys(ON)")

	// WAL is a property of the file: the writer sets it (ensureWAL) before
	// any reader connects.
	w := cloneValues(common)
	w.Add("_pragma", "synchronous(FULL)") // fsync the WAL on every commit
	w.Set("_txlock", "immediate")         // take the write lock at BEGIN
	if db.writer, err = sql.Open("sqlite", path+"?"+w.Encode()); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.writer.SetMaxOpenConns(1)
	db.writer.SetMaxIdleConns(1)
	db.writer.SetConnMaxLifetime(0)
	db.writer.SetConnMaxIdleTime(0)
	if err := db.ensureWAL(ctx); err != nil {
		db.writer.Close()
		return nil, err
	}

	r := cloneValues(common)
	r.Add("_pragma", "query_only(ON)") // a read path can never write by mistake
	if db.reader, err = sql.Open("sqlite", path+"?"+r.Encode()); err != nil {
		db.writer.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.reader.SetMaxOpenConns(readerConns)
	db.reader.SetMaxIdleConns(readerConns)
	db.reader.SetConnMaxIdleTime(0)

	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	// Long-lived connections should refresh planner statistics at start;
	// this only analyses tables whose size changed a lot. It is an
	// optimisation: a failure (say, another process holding the write lock
	// past the busy timeout) must not stop the server.
	db.writer.ExecContext(ctx, "PRAGMA optimize=0x10002")
	return db, nil
}

// ensureWAL switches the file to WAL. Two processes creating the same new
// file at once can see SQLITE_BUSY here without the busy handler being
// consulted, so it retries for as long as the busy timeout.
func (db *DB) ensureWAL(ctx context.Context) error {
	deadline := time.Now().Add(busyTimeout)
	for {
		var mode string
		err := db.writer.QueryRowContext(ctx, "PRAGMA journal_mode=WAL").Scan(&mode)
		if err == nil && strings.EqualFold(mode, "wal") {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("journal mode is %q, not wal", mode)
		}
		if callvault.ErrorCode(dbError(err)) != callvault.EUNAVAILABLE || time.Now().After(deadline) {
			return fmt.Errorf("open %s: WAL: %w", db.path, dbError(err))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// parseDSN splits dsn into a dialect and a path.
func parseDSN(dsn string) (dialect, path string, err error) {
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return "", "", callvault.Errorf(callvault.EINVALID, "postgres is not supported yet")
	case strings.HasPrefix(dsn, "sqlite:"):
		path = strings.TrimPrefix(dsn, "sqlite:")
	default:
		path = dsn
	}
	switch {
	case path == "":
		return "", "", callvault.Errorf(callvault.EINVALID, "database path is empty")
	case path == ":memory:" || strings.HasPrefix(path, "file:"):
		// Two pools need one shared file; URIs would also smuggle in
		// parameters that fight ours.
		return "", "", callvault.Errorf(callvault.EINVALID, "database must be a file path, not %q", path)
	case strings.Contains(path, "?"):
		return "", "", callvault.Errorf(callvault.EINVALID, "database path must not contain '?'")
	}
	return dialectSQLite, path, nil
}

func cloneValues(v url.Values) url.Values {
	c := url.Values{}
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}

// Close refreshes planner statistics and closes both pools.
func (db *DB) Close() error {
	var errs []error
	if db.writer != nil {
		// Best effort: a busy database must not stop a shutdown.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		db.writer.ExecContext(ctx, "PRAGMA optimize")
		cancel()
	}
	if db.reader != nil {
		errs = append(errs, db.reader.Close())
	}
	if db.writer != nil {
		errs = append(errs, db.writer.Close())
	}
	return errors.Join(errs...)
}

// Ping checks that both pools can reach the database.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.reader.PingContext(ctx); err != nil {
		return callvault.Wrap(callvault.EUNAVAILABLE, err, "database unavailable")
	}
	if err := db.writer.PingContext(ctx); err != nil {
		return callvault.Wrap(callvault.EUNAVAILABLE, err, "database unavailable")
	}
	return nil
}

// dbTx is a transaction with the time it started, so that every row it
// writes carries the same timestamp.
type dbTx struct {
	*sql.Tx
	db    *DB
	now   time.Time
	ctx   context.Context // of a write transaction: may carry a pending audit entry
	write bool
}

// beginWrite starts a transaction on the writer. It holds the write lock
// from BEGIN (IMMEDIATE), so never start one while holding another.
func (db *DB) beginWrite(ctx context.Context) (*dbTx, error) {
	tx, err := db.writer.BeginTx(ctx, nil)
	if err != nil {
		return nil, dbError(err)
	}
	return &dbTx{Tx: tx, db: db, now: db.Now().UTC(), ctx: ctx, write: true}, nil
}

// beginRead starts a read transaction: one consistent snapshot for the
// count, the page and its participants.
func (db *DB) beginRead(ctx context.Context) (*dbTx, error) {
	tx, err := db.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, dbError(err)
	}
	return &dbTx{Tx: tx, db: db, now: db.Now().UTC()}, nil
}

// commit commits and translates the error. A write transaction made on
// behalf of an action with a pending audit entry (callvault.PendingAudit)
// writes that entry first, inside the transaction: the change and its record
// commit together or not at all — if the entry cannot be written, the change
// is rolled back.
func (tx *dbTx) commit() error {
	if tx.write {
		if p := callvault.PendingAuditFrom(tx.ctx); p != nil {
			committed := false
			err := p.Commit(func(e *callvault.AuditEvent) error {
				if e.Outcome == "" {
					e.Outcome = callvault.OutcomeAllowed
				}
				if err := validateAuditEvents([]*callvault.AuditEvent{e}); err != nil {
					return err
				}
				if err := appendAudit(tx.ctx, tx, []*callvault.AuditEvent{e}); err != nil {
					return auditError(err)
				}
				if err := tx.Commit(); err != nil {
					return auditError(err)
				}
				committed = true
				return nil
			})
			if err != nil {
				_ = tx.Rollback()
				return err
			}
			if committed {
				return nil
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return dbError(err)
	}
	return nil
}

// exec, query and queryRow rebind '?' placeholders for the dialect.
func (tx *dbTx) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return tx.ExecContext(ctx, tx.db.rebind(q), args...)
}

func (tx *dbTx) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return tx.QueryContext(ctx, tx.db.rebind(q), args...)
}

func (tx *dbTx) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return tx.QueryRowContext(ctx, tx.db.rebind(q), args...)
}

func (tx *dbTx) prepare(ctx context.Context, q string) (*sql.Stmt, error) {
	return tx.PrepareContext(ctx, tx.db.rebind(q))
}

// rebind turns '?' placeholders into the dialect's form ($1, $2... for
// PostgreSQL). Queries in this package have no '?' inside string literals.
func (db *DB) rebind(q string) string {
	if db.dialect != dialectPostgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// dbError translates driver errors into domain errors at the edge. Callers
// that know what a constraint means check for it first (isUnique) to give a
// better message; this is the backstop.
func dbError(err error) error {
	var se *sqlite.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, new(*callvault.Error)):
		return err
	case errors.Is(err, sql.ErrNoRows):
		return callvault.Wrap(callvault.ENOTFOUND, err, "not found")
	case errors.Is(err, sql.ErrConnDone), isClosedDB(err):
		return callvault.Wrap(callvault.EUNAVAILABLE, err, "database unavailable")
	case !errors.As(err, &se):
		return err
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return callvault.Wrap(callvault.ECONFLICT, err, "already exists")
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return callvault.Wrap(callvault.EINVALID, err, "refers to something that does not exist")
	case sqlite3.SQLITE_CONSTRAINT_CHECK, sqlite3.SQLITE_CONSTRAINT_NOTNULL:
		return callvault.Wrap(callvault.EINVALID, err, "invalid value")
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return callvault.Wrap(callvault.EUNAVAILABLE, err, "database busy, try again")
	case sqlite3.SQLITE_FULL:
		return callvault.Wrap(callvault.EUNAVAILABLE, err, "storage full")
	case sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_NOMEM:
		return callvault.Wrap(callvault.EUNAVAILABLE, err, "database unavailable")
	}
	return err
}

// isUnique reports whether err is a unique-constraint violation.
func isUnique(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// Timestamps are INTEGER unix milliseconds in UTC; the zero time is NULL.

// ceilMS converts a bound for comparison with stored milliseconds:
// "stored >= t" and "stored < t" hold exactly when they hold against
// the next whole millisecond at or after t.
func ceilMS(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.Sub(time.UnixMilli(ms)) > 0 {
		ms++
	}
	return ms
}

// ms converts t for storage.
func ms(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

// fromMS converts a stored value back; NULL becomes the zero time.
func fromMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

// msTime scans a timestamp column into *t.
type msTime struct{ t *time.Time }

func (m msTime) Scan(src any) error {
	var v sql.NullInt64
	if err := v.Scan(src); err != nil {
		return err
	}
	*m.t = fromMS(v)
	return nil
}

// placeholders returns "?, ?, ?" for n values.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// where collects AND-ed conditions and their arguments.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

// String returns " WHERE a AND b", or "" when there are no conditions.
func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}
