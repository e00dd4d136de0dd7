package sqldb

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/callvault/callvault"
)

// Schema files are kept per dialect: DDL differs (STRICT tables, identity
// columns, collations), queries do not.
//
//go:embed migrations/sqlite/*.sql
var migrationFS embed.FS

type migration struct {
	version int
	name    string // file name, for the record
	sql     string
}

// migrations returns the dialect's migrations in version order. Files are
// named NNNN_description.sql; versions must be unique.
func migrations(dialect string) ([]migration, error) {
	dir := path.Join("migrations", dialect)
	names, err := fs.Glob(migrationFS, dir+"/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	seen := map[int]string{}
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive version and '_'", base)
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", other, base, v)
		}
		seen[v] = base
		b, err := fs.ReadFile(migrationFS, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: base, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// migrate applies every migration not yet recorded in schema_migrations,
// each in its own write transaction. BEGIN IMMEDIATE serialises concurrent
// starts (the CLI beside the server): whoever waits re-checks the record
// inside its transaction and skips what the other applied. (PostgreSQL will
// need pg_advisory_xact_lock for the same effect.)
func (db *DB) migrate(ctx context.Context) error {
	ms, err := migrations(db.dialect)
	if err != nil {
		return err
	}
	current, err := db.schemaVersion(ctx)
	if err != nil {
		return err
	}
	// An older binary must not run against a schema it does not know.
	if latest := ms[len(ms)-1].version; current > latest {
		return callvault.Errorf(callvault.EINVALID,
			"database schema version %d is newer than this callvault knows (%d); upgrade callvault", current, latest)
	}

	for _, m := range ms {
		if m.version <= current {
			continue
		}
		if err := db.applyMigration(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

// schemaVersion creates schema_migrations if needed and returns the highest
// version applied. It runs in a write transaction: a plain statement would
// take a read lock first, and upgrading it while another process writes
// fails at once with SQLITE_BUSY instead of waiting.
func (db *DB) schemaVersion(ctx context.Context) (int, error) {
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return 0, fmt.Errorf("create schema_migrations: %w", dbError(err))
	}
	var v int
	if err := tx.queryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", dbError(err))
	}
	return v, tx.commit()
}

func (db *DB) applyMigration(ctx context.Context, m migration) error {
	tx, err := db.beginWrite(ctx)
	if err != nil {
		return fmt.Errorf("migration %s: %w", m.name, err)
	}
	defer tx.Rollback()

	var n int
	if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
		return fmt.Errorf("migration %s: %w", m.name, dbError(err))
	}
	if n > 0 {
		return nil // another process got there first
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("migration %s: %w", m.name, err)
	}
	if _, err := tx.exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.version, m.name, tx.now.UnixMilli()); err != nil {
		return fmt.Errorf("migration %s: %w", m.name, dbError(err))
	}
	if err := tx.commit(); err != nil {
		return fmt.Errorf("migration %s: %w", m.name, err)
	}
	return nil
}
