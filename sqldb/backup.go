package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/callvault/callvault"
)

// BackupTo writes a consistent copy of the database to path while the server
// goes on writing. SQLite's VACUUM INTO reads one snapshot on a connection
// of its own (WAL lets writers carry on meanwhile) and writes a compact,
// self-contained database: every transaction committed before it started and
// none after. The copy is fsynced, mode 0600.
//
// It refuses (ECONFLICT) if path exists, and never leaves a partial file at
// path. PostgreSQL databases are EUNSUPPORTED: use pg_dump.
func (db *DB) BackupTo(ctx context.Context, path string) (err error) {
	if db.dialect == dialectPostgres {
		return callvault.Errorf(callvault.EUNSUPPORTED, "backing up a PostgreSQL database is not supported here: use pg_dump")
	}
	// An absolute path can never be read as a "file:" URI with parameters.
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("backup database: %w", err)
	}
	if strings.Contains(abs, "?") {
		return callvault.Errorf(callvault.EINVALID, "backup path must not contain '?'")
	}
	// VACUUM INTO accepts an existing empty file. Creating it ourselves
	// makes the no-overwrite check atomic and sets the mode, which SQLite
	// would otherwise take from the umask.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return callvault.Errorf(callvault.ECONFLICT, "backup file %s already exists", abs)
	} else if err != nil {
		return fmt.Errorf("backup database: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("backup database: close %s: %w", abs, cerr)
		}
		if err != nil {
			os.Remove(abs)
			os.Remove(abs + "-journal")
		}
	}()

	// The reader pool is query_only, which forbids VACUUM INTO (it writes,
	// if only to another file), and the writer must not be held for the
	// length of a copy. A connection of its own reads like a reader: WAL
	// gives it one snapshot and writers carry on.
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	conn, err := sql.Open("sqlite", db.path+"?"+q.Encode())
	if err != nil {
		return fmt.Errorf("backup database: %w", err)
	}
	defer conn.Close()
	conn.SetMaxOpenConns(1)
	if _, err := conn.ExecContext(ctx, `VACUUM INTO ?`, abs); err != nil {
		return fmt.Errorf("backup database to %s: %w", abs, dbError(err))
	}
	// VACUUM INTO does not promise the copy is on disk when it returns.
	if err := f.Sync(); err != nil {
		return fmt.Errorf("backup database: fsync %s: %w", abs, err)
	}
	if err := syncDir(filepath.Dir(abs)); err != nil {
		return fmt.Errorf("backup database: %w", err)
	}
	return nil
}

// SchemaVersion returns the highest migration applied to the database, for
// backup manifests.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := db.reader.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", dbError(err))
	}
	return v, nil
}

// syncDir fsyncs a directory so that a file created in it survives a crash.
// (sqldb imports no other callvault package, so not durable.SyncDir.)
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}
