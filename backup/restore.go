package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/durable"
)

// RestoreOptions says which backup to restore into which deployment.
type RestoreOptions struct {
	Dir string // the backup folder

	// DataDir is the target deployment's data directory. The other paths
	// default to their places in it.
	DataDir        string
	DBPath         string              // DATA/callvault.db; must not exist
	CheckpointFile string              // DATA/audit-checkpoints.jsonl
	KeyringDir     string              // DATA/keys
	KEKPath        string              // DATA/kek
	Blobs          callvault.BlobStore // the target blob store
}

// RestoreReport says what a restore did.
type RestoreReport struct {
	Manifest *Manifest // of the restored backup
	DBPath   string    // where the database was restored

	Files        []string // backup files restored, but blobs (callvault.db, kek, keys/...)
	Blobs        int      // blobs copied into the target store
	BlobsPresent int      // blobs the target store already held, identical

	CheckpointsKept bool // the target had a checkpoint file; the backup's was not copied

	KEKCopied        bool
	KeysCopied       []string // epochs whose key file was restored
	KeysDestroyed    []string // epochs whose key was refused: destroyed in the target (or the backup)
	KeysPresent      []string // epochs the target keyring already had, with the same key
	KeysDiffer       []string // epochs the target keyring has a different key for: kept, so recordings of the backup in them will not decrypt
	TombstonesCopied []string // epochs whose tombstone was restored

	// KeysNeeded: the target has no key-encryption key and the backup
	// brought none. Restore DATA/kek and DATA/keys from the key backup
	// before starting callvault, or nothing can be played.
	KeysNeeded bool

	// Vanished lists the recordings whose blob was already gone when the
	// backup was made (purged by retention): their rows are restored
	// without audio.
	Vanished []string

	// The audit chain's head as restored. Entries written after the backup
	// are only in exported copies and checkpoints kept elsewhere.
	AuditSeq  int64
	AuditHead string
}

// Restore verifies the backup in o.Dir and restores it into a deployment
// that has no database. It never overwrites: an existing database is
// refused (ECONFLICT) before anything is written, and so is a target KEK
// other than the backup's; existing blobs, key files, tombstones and
// checkpoints are kept.
//
// A key file is never restored for an epoch the target keyring (or the
// backup) holds a tombstone for: crypto-shredded months stay shredded. The
// rows of such recordings are restored; deleting them is the caller's job.
//
// The database is written last, through a temp file linked into place, so
// an interrupted restore leaves no database: only blobs that the sweeper
// removes as orphans, and key files that are harmless without it.
func Restore(ctx context.Context, o RestoreOptions) (*RestoreReport, error) {
	if o.Dir == "" || o.DataDir == "" || o.Blobs == nil {
		return nil, callvault.Errorf(callvault.EINVALID, "restore needs a backup folder, a data directory and a blob store")
	}
	def := func(p *string, name string) {
		if *p == "" {
			*p = filepath.Join(o.DataDir, name)
		}
	}
	def(&o.DBPath, DatabaseName)
	def(&o.CheckpointFile, CheckpointsName)
	def(&o.KeyringDir, KeysDir)
	def(&o.KEKPath, KEKName)

	m, err := Verify(o.Dir)
	if err != nil {
		return nil, err
	}
	r := &RestoreReport{Manifest: m, DBPath: o.DBPath, Vanished: m.Vanished, AuditSeq: m.AuditSeq, AuditHead: m.AuditHead}
	if err := checkTarget(o, m); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}

	var db File
	for _, f := range m.Files {
		kind, key, _ := classify(f.Path)
		switch kind {
		case kindDatabase:
			db = f
		case kindBlob:
			present, err := restoreBlob(ctx, o.Dir, f, key, o.Blobs)
			if err != nil {
				return nil, err
			}
			if present {
				r.BlobsPresent++
			} else {
				r.Blobs++
			}
		}
	}
	// The database file is copied now and published last.
	tmp, err := copyDatabase(ctx, o.Dir, db, o.DBPath)
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp)

	if err := restoreCheckpoints(o, m, r); err != nil {
		return nil, err
	}
	if m.IncludeKeys {
		if err := restoreKeys(o, m, r); err != nil {
			return nil, err
		}
	} else if _, err := os.Stat(o.KEKPath); errors.Is(err, fs.ErrNotExist) {
		r.KeysNeeded = true
	}

	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// link, unlike rename, refuses to replace a database that appeared
	// since the check.
	if err := os.Link(tmp, o.DBPath); errors.Is(err, fs.ErrExist) {
		return nil, callvault.Errorf(callvault.ECONFLICT, "%s appeared during the restore; it was left alone", o.DBPath)
	} else if err != nil {
		return nil, fmt.Errorf("restore: database: %w", err)
	}
	if err := os.Remove(tmp); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if err := durable.SyncDir(filepath.Dir(o.DBPath)); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	r.Files = append([]string{DatabaseName}, r.Files...)
	return r, nil
}

// checkTarget refuses, before anything is written, a target that has a
// database (or its journal files, which SQLite would replay into the
// restored one), or a KEK other than the one in the backup.
func checkTarget(o RestoreOptions, m *Manifest) error {
	for _, p := range []string{o.DBPath, o.DBPath + "-wal", o.DBPath + "-shm", o.DBPath + "-journal"} {
		if _, err := os.Lstat(p); err == nil {
			return callvault.Errorf(callvault.ECONFLICT,
				"%s exists: restore only into a deployment without a database (move the old one away first)", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("restore: %w", err)
		}
	}
	if !m.IncludeKeys {
		return nil
	}
	have, err := os.ReadFile(o.KEKPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("restore: key-encryption key: %w", err)
	}
	want, err := os.ReadFile(filepath.Join(o.Dir, KEKName))
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if !bytes.Equal(have, want) {
		return callvault.Errorf(callvault.ECONFLICT,
			"%s is not the key-encryption key in the backup: the backup's keys would not unwrap under it (move it away to restore the backup's)", o.KEKPath)
	}
	return nil
}

// restoreBlob copies one blob into the target store, checking its hash on
// the way. It reports present if the store already held it, identical.
func restoreBlob(ctx context.Context, dir string, f File, key string, dst callvault.BlobStore) (present bool, err error) {
	in, err := os.Open(filepath.Join(dir, filepath.FromSlash(f.Path)))
	if err != nil {
		return false, fmt.Errorf("restore: %w", err)
	}
	defer in.Close()
	w, err := dst.Create(ctx, key)
	if err != nil {
		return false, fmt.Errorf("restore: blob %s: %w", key, err)
	}
	got, err := hashCopy(ctx, w, in)
	if err == nil {
		got.Path = f.Path
		err = matches(f, got)
	}
	if err == nil {
		err = w.Commit()
	}
	if err == nil {
		return false, nil
	}
	w.Abort()
	if callvault.ErrorCode(err) != callvault.ECONFLICT {
		return false, fmt.Errorf("restore: blob %s: %w", key, err)
	}
	// The target holds a blob at this key: fine if it is the same.
	if err := sameBlob(ctx, dst, key, f); err != nil {
		return false, err
	}
	return true, nil
}

func sameBlob(ctx context.Context, s callvault.BlobStore, key string, want File) error {
	b, err := s.Open(ctx, key)
	if err != nil {
		return fmt.Errorf("restore: blob %s: %w", key, err)
	}
	defer b.Close()
	got, err := hashCopy(ctx, io.Discard, io.NewSectionReader(b, 0, b.Size()))
	if err != nil {
		return fmt.Errorf("restore: blob %s: %w", key, err)
	}
	if got.Size != want.Size || got.SHA256 != want.SHA256 {
		return callvault.Errorf(callvault.ECONFLICT,
			"the target blob store already holds a different blob at %s; it was left alone", key)
	}
	return nil
}

// copyDatabase copies the database to a temp file beside path (fsynced) and
// returns its name; the caller links it into place.
func copyDatabase(ctx context.Context, dir string, f File, path string) (tmp string, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("restore: %w", err)
	}
	in, err := os.Open(filepath.Join(dir, DatabaseName))
	if err != nil {
		return "", fmt.Errorf("restore: %w", err)
	}
	defer in.Close()
	out, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".restore-*")
	if err != nil {
		return "", fmt.Errorf("restore: %w", err)
	}
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("restore: database: %w", cerr)
		}
		if err != nil {
			os.Remove(out.Name())
		}
	}()
	got, err := hashCopy(ctx, out, in)
	if err != nil {
		return "", fmt.Errorf("restore: database: %w", err)
	}
	got.Path = f.Path
	if err := matches(f, got); err != nil {
		return "", err
	}
	if err := out.Sync(); err != nil {
		return "", fmt.Errorf("restore: database: %w", err)
	}
	return out.Name(), nil
}

// readChecked reads a small backup file and checks it against the manifest.
func readChecked(dir string, f File) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f.Path)))
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if err := matches(f, fileOf(f.Path, data)); err != nil {
		return nil, err
	}
	return data, nil
}

// createNew writes data to path unless something is there already, and
// reports whether it did.
func createNew(path string, data []byte) (bool, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, fmt.Errorf("restore: %w", err)
	}
	created, err := durable.CreateExclusive(path, data)
	if err != nil {
		return false, fmt.Errorf("restore: %w", err)
	}
	return created, nil
}

func restoreCheckpoints(o RestoreOptions, m *Manifest, r *RestoreReport) error {
	for _, f := range m.Files {
		if kind, _, _ := classify(f.Path); kind != kindCheckpoints {
			continue
		}
		data, err := readChecked(o.Dir, f)
		if err != nil {
			return err
		}
		created, err := createNew(o.CheckpointFile, data)
		if err != nil {
			return err
		}
		if created {
			r.Files = append(r.Files, f.Path)
		} else {
			r.CheckpointsKept = true
		}
	}
	return nil
}

// restoreKeys copies tombstones and closing markers the target lacks, then
// the KEK if the target has none, then each epoch key the target has
// neither a tombstone nor a key for.
func restoreKeys(o RestoreOptions, m *Manifest, r *RestoreReport) error {
	var keys []File
	backupTombs := map[string]bool{}
	for _, f := range m.Files {
		kind, epoch, _ := classify(f.Path)
		switch kind {
		case kindTombstone:
			backupTombs[epoch] = true
			data, err := readChecked(o.Dir, f)
			if err != nil {
				return err
			}
			created, err := createNew(filepath.Join(o.KeyringDir, epoch+tombstoneSuffix), data)
			if err != nil {
				return err
			}
			if created {
				r.TombstonesCopied = append(r.TombstonesCopied, epoch)
				r.Files = append(r.Files, f.Path)
			}
		case kindClosing:
			data, err := readChecked(o.Dir, f)
			if err != nil {
				return err
			}
			created, err := createNew(filepath.Join(o.KeyringDir, epoch+closingSuffix), data)
			if err != nil {
				return err
			}
			if created {
				r.Files = append(r.Files, f.Path)
			}
		case kindKEK:
			data, err := readChecked(o.Dir, f)
			if err != nil {
				return err
			}
			created, err := createNew(o.KEKPath, data)
			if err != nil {
				return err
			}
			if created {
				r.KEKCopied = true
				r.Files = append(r.Files, f.Path)
			}
		case kindKey:
			keys = append(keys, f)
		}
	}
	if _, err := os.Stat(o.KEKPath); errors.Is(err, fs.ErrNotExist) {
		r.KeysNeeded = true // a key backup without its KEK: should not happen
	}
	for _, f := range keys {
		_, epoch, _ := classify(f.Path)
		tomb := filepath.Join(o.KeyringDir, epoch+tombstoneSuffix)
		if destroyed, err := exists(tomb); err != nil {
			return err
		} else if destroyed || backupTombs[epoch] {
			r.KeysDestroyed = append(r.KeysDestroyed, epoch)
			continue
		}
		data, err := readChecked(o.Dir, f)
		if err != nil {
			return err
		}
		path := filepath.Join(o.KeyringDir, epoch+keySuffix)
		created, err := createNew(path, data)
		if err != nil {
			return err
		}
		if !created {
			if have, err := os.ReadFile(path); err == nil && bytes.Equal(have, data) {
				r.KeysPresent = append(r.KeysPresent, epoch)
			} else {
				r.KeysDiffer = append(r.KeysDiffer, epoch)
			}
			continue
		}
		// An epoch destroyed in the target while we copied stays destroyed
		// (the vault does the same when it creates a key).
		if destroyed, err := exists(tomb); err != nil {
			return err
		} else if destroyed {
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("restore: %w", err)
			}
			r.KeysDestroyed = append(r.KeysDestroyed, epoch)
			continue
		}
		r.KeysCopied = append(r.KeysCopied, epoch)
		r.Files = append(r.Files, f.Path)
	}
	return nil
}

func exists(path string) (bool, error) {
	_, err := os.Lstat(path)
	if err == nil {
		return true, nil
	} else if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, fmt.Errorf("restore: %w", err)
}
