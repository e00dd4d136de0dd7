// Package backup makes consistent online backups of a deployment's files and
// restores them, without ever bringing back what retention has destroyed.
//
// A backup is a folder:
//
//	callvault.db              consistent copy of the database (VACUUM INTO)
//	blobs/KEY                 ciphertext of every recording in that copy
//	audit-checkpoints.jsonl   the signed checkpoints (complete lines)
//	kek, keys/EPOCH.key,      only with IncludeKeys: the key-encryption key,
//	keys/EPOCH.closing,         wrapped epoch keys, closing markers and
//	keys/EPOCH.destroyed        tombstones
//	manifest.json             written last: size and SHA-256 of every file
//
// The audit signing key is never part of a backup. Blobs are copied byte
// for byte: a backup holds nothing in the clear but metadata, and a data
// backup without keys cannot play anything. Destroying an epoch key shreds
// that month in every data backup too; a key backup must therefore be kept
// apart and replaced after every retention run (docs/BACKUP.md).
//
// Order matters. The checkpoints are copied before the database, so every
// checkpoint in a backup covers entries in its database. Blobs are listed
// from the database copy, so the backup holds exactly the recordings the
// copy knows; if some blob has gone meanwhile (purged, or moved to a hold
// epoch by retention) a fresh copy of the database is taken and the blobs
// brought in line with it. Keys are copied last, so every epoch the copy
// uses has its key, and a tombstone that appears meanwhile drops its key
// from the backup. A restore writes the database last (temp file, then
// link), so a killed restore never leaves a database that looks whole.
package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/blob"
	"github.com/callvault/callvault/durable"
	"github.com/callvault/callvault/sqldb"
)

// Snapshotter makes a consistent copy of a live database (*sqldb.DB).
type Snapshotter interface {
	// BackupTo writes the copy to path, which must not exist.
	BackupTo(ctx context.Context, path string) error
}

// Options says what to back up and where.
type Options struct {
	DB             Snapshotter         // the live database
	Blobs          callvault.BlobStore // the live blob store
	CheckpointFile string              // DATA/audit-checkpoints.jsonl; "" or missing: none
	AuditPublicKey string              // optional: "callvault-audit-ed25519:..." for the manifest

	// IncludeKeys adds the KEK and the keyring. Keep such a backup apart
	// from data backups (docs/BACKUP.md).
	IncludeKeys bool
	KeyringDir  string // DATA/keys
	KEKPath     string // DATA/kek

	// Dir is the backup folder. It must not exist or be empty; it is
	// created with mode 0700.
	Dir string

	Now callvault.Clock // time.Now when nil
}

// Backup copies a running deployment into o.Dir and returns the manifest.
// A recording whose blob is gone by the time it is copied, even in a fresh
// snapshot (purged by retention meanwhile), is not an error: it is listed
// in Manifest.Vanished. On any other error Backup removes what it wrote and
// returns the error; a folder without manifest.json is never a backup.
func Backup(ctx context.Context, o Options) (m *Manifest, err error) {
	switch {
	case o.DB == nil || o.Blobs == nil || o.Dir == "":
		return nil, callvault.Errorf(callvault.EINVALID, "backup needs a database, a blob store and a folder")
	case o.IncludeKeys && (o.KeyringDir == "" || o.KEKPath == ""):
		return nil, callvault.Errorf(callvault.EINVALID, "a backup with keys needs the keyring folder and the KEK file")
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	created, err := prepareDir(dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			removeContents(dir, created)
		}
	}()

	b := &builder{dir: dir, blobs: map[string]File{}}
	m = &Manifest{Format: FormatVersion, CreatedAt: now().UTC(), IncludeKeys: o.IncludeKeys, AuditPublicKey: o.AuditPublicKey}
	if o.CheckpointFile != "" {
		if err := b.copyCheckpoints(o.CheckpointFile); err != nil {
			return nil, err
		}
	}
	if err := b.snapshot(ctx, o.DB, o.Blobs, m); err != nil {
		return nil, err
	}
	if err := b.hashFile(DatabaseName); err != nil {
		return nil, err
	}
	if o.IncludeKeys {
		if err := b.copyKeys(o.KEKPath, o.KeyringDir); err != nil {
			return nil, err
		}
	}
	if err := durable.SyncDir(dir); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.Files = b.manifestFiles()
	m.Blobs = len(b.blobs)
	if err := writeManifest(dir, m); err != nil {
		return nil, err
	}
	return m, nil
}

// snapshotPasses bounds how often Backup takes a fresh snapshot because
// blobs vanished under the previous one.
const snapshotPasses = 3

// snapshot copies the database and the blobs of its recordings. A blob
// that is gone by the time it is copied was purged by retention, or moved
// to a hold epoch by a re-wrap, after the snapshot: a fresh snapshot no
// longer lists the first and points the second at its new blob. So while
// blobs vanish, snapshot again (a few times at most), copy what the new
// snapshot adds and drop what it no longer references. What still vanishes
// in the last pass is listed in the manifest.
func (b *builder) snapshot(ctx context.Context, db Snapshotter, src callvault.BlobStore, m *Manifest) error {
	root := filepath.Join(b.dir, BlobsDir)
	dst, err := blob.NewFileStore(root)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	final := filepath.Join(b.dir, DatabaseName)
	next := filepath.Join(b.dir, ".next-"+DatabaseName) // a dot name is never part of a backup
	defer os.Remove(next)
	for pass := 1; ; pass++ {
		path := final
		if pass > 1 {
			path = next
			os.Remove(next)
		}
		if err := db.BackupTo(ctx, path); err != nil {
			return fmt.Errorf("backup: database: %w", err)
		}
		recs, err := readSnapshot(ctx, path, m)
		if err != nil {
			return err
		}
		if pass > 1 {
			if err := os.Rename(next, final); err != nil {
				return fmt.Errorf("backup: %w", err)
			}
		}
		m.Recordings = len(recs)
		if m.Vanished, err = b.copyBlobs(ctx, src, dst, recs); err != nil {
			return err
		}
		if len(m.Vanished) == 0 || pass == snapshotPasses {
			break
		}
	}
	// The store's temp folder is empty now; it is no part of the backup.
	os.Remove(filepath.Join(root, ".tmp"))
	return durable.SyncDir(root)
}

// prepareDir creates dir (mode 0700, parents too) or accepts it if it is an
// empty folder, and reports whether it created it.
func prepareDir(dir string) (bool, error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return false, fmt.Errorf("backup: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err == nil {
		return true, nil
	} else if !errors.Is(err, fs.ErrExist) {
		return false, fmt.Errorf("backup: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("backup: %w", err)
	}
	if len(entries) > 0 {
		return false, callvault.Errorf(callvault.ECONFLICT, "backup folder %s is not empty: give a new folder for each backup", dir)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return false, fmt.Errorf("backup: %w", err)
	}
	return false, nil
}

// removeContents undoes a failed backup: the folder if Backup created it,
// else what Backup put in it (it was empty).
func removeContents(dir string, created bool) {
	if created {
		os.RemoveAll(dir)
		return
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

// recording is a row of the database copy.
type recording struct{ id, key string }

// readSnapshot opens the database copy, fills in the manifest's schema
// version and audit head, and lists the recordings' blob keys. Opening with
// sqldb makes the copy a WAL database like the live one; it is hashed only
// after it is closed again.
func readSnapshot(ctx context.Context, path string, m *Manifest) (recs []recording, err error) {
	db, err := sqldb.Open(ctx, "sqlite:"+path)
	if err != nil {
		return nil, fmt.Errorf("backup: open database copy: %w", err)
	}
	defer func() {
		if cerr := db.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("backup: close database copy: %w", cerr)
		}
		// Closing the last connection checkpoints and removes the WAL; a
		// WAL left behind would hold part of the copy.
		if err == nil {
			if fi, serr := os.Stat(path + "-wal"); serr == nil && fi.Size() > 0 {
				err = fmt.Errorf("backup: database copy %s still has a write-ahead log", path)
			}
		}
		os.Remove(path + "-wal")
		os.Remove(path + "-shm")
	}()
	if m.SchemaVersion, err = db.SchemaVersion(ctx); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	sys := callvault.NewContextWithActor(ctx, callvault.SystemActor)
	if m.AuditSeq, m.AuditHead, err = sqldb.NewAuditStore(db).AuditHead(sys); err != nil {
		return nil, fmt.Errorf("backup: audit head: %w", err)
	}
	err = sqldb.NewRecordingService(db).RecordingBlobKeys(sys, func(id, key string) error {
		recs = append(recs, recording{id, key})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("backup: list recordings: %w", err)
	}
	return recs, nil
}

// builder collects the files of a backup as they are written.
type builder struct {
	dir   string
	files []File          // all but blobs
	blobs map[string]File // by blob key
}

func (b *builder) add(f File) { b.files = append(b.files, f) }

func (b *builder) manifestFiles() []File {
	out := slices.Clone(b.files)
	for _, f := range b.blobs {
		out = append(out, f)
	}
	return out
}

// hashFile adds a file already in the backup folder.
func (b *builder) hashFile(rel string) error {
	r, err := os.Open(filepath.Join(b.dir, filepath.FromSlash(rel)))
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer r.Close()
	f, err := hashCopy(context.Background(), io.Discard, r)
	if err != nil {
		return fmt.Errorf("backup: read %s: %w", rel, err)
	}
	f.Path = rel
	b.add(f)
	return nil
}

// writeFile puts data at rel in the backup (new file, mode 0600, fsynced).
func (b *builder) writeFile(rel string, data []byte) error {
	p := filepath.Join(b.dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if created, err := durable.CreateExclusive(p, data); err != nil {
		return fmt.Errorf("backup: write %s: %w", rel, err)
	} else if !created {
		return fmt.Errorf("backup: %s exists already", rel)
	}
	b.add(fileOf(rel, data))
	return nil
}

// copyCheckpoints copies the complete lines of the checkpoint file: the
// server may be appending one as we read.
func (b *builder) copyCheckpoints(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("backup: checkpoints: %w", err)
	}
	data = data[:strings.LastIndexByte(string(data), '\n')+1]
	return b.writeFile(CheckpointsName, data)
}

// copyBlobs brings the backup's blobs in line with recs: it copies, byte
// for byte, each blob not copied yet, drops copied blobs that recs no
// longer reference, and returns the recordings whose blob is gone.
func (b *builder) copyBlobs(ctx context.Context, src callvault.BlobStore, dst callvault.BlobStore, recs []recording) (vanished []string, err error) {
	want := make(map[string]bool, len(recs))
	for _, r := range recs {
		want[r.key] = true
	}
	for key := range b.blobs {
		if !want[key] {
			if err := dst.Delete(ctx, key); err != nil {
				return nil, fmt.Errorf("backup: %w", err)
			}
			delete(b.blobs, key)
		}
	}
	for _, r := range recs {
		if _, done := b.blobs[r.key]; done {
			continue // copied in an earlier pass, or two rows share it
		}
		f, err := copyBlob(ctx, src, dst, r.key)
		if callvault.ErrorCode(err) == callvault.ENOTFOUND {
			vanished = append(vanished, r.id)
			continue
		} else if err != nil {
			return nil, fmt.Errorf("backup: recording %s: %w", r.id, err)
		}
		f.Path = BlobsDir + "/" + r.key
		b.blobs[r.key] = f
	}
	return vanished, nil
}

// copyBlob copies one blob; ENOTFOUND if src has no blob at key.
func copyBlob(ctx context.Context, src callvault.BlobStore, dst callvault.BlobStore, key string) (File, error) {
	in, err := src.Open(ctx, key)
	if err != nil {
		return File{}, err
	}
	defer in.Close()
	w, err := dst.Create(ctx, key)
	if err != nil {
		return File{}, err
	}
	f, err := hashCopy(ctx, w, io.NewSectionReader(in, 0, in.Size()))
	if err == nil && f.Size != in.Size() {
		err = fmt.Errorf("blob %s: copied %d bytes of %d", key, f.Size, in.Size())
	}
	if err == nil {
		err = w.Commit()
	}
	if err != nil {
		w.Abort()
		return File{}, err
	}
	return f, nil
}

// copyKeys copies the KEK and the keyring: key files, closing markers and
// tombstones. The audit signing key is a different file in a different
// place and is never read here.
func (b *builder) copyKeys(kekPath, keyring string) error {
	kek, err := os.ReadFile(kekPath)
	if err != nil {
		return fmt.Errorf("backup: key-encryption key: %w", err)
	}
	if err := b.writeFile(KEKName, kek); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(b.dir, KeysDir), 0o700); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	ring, err := listKeyring(keyring)
	if err != nil {
		return err
	}
	copied := map[string]bool{}
	copyEach := func(epochs []string, suffix string, skip func(string) bool) error {
		for _, epoch := range epochs {
			if skip(epoch) {
				continue
			}
			data, err := os.ReadFile(filepath.Join(keyring, epoch+suffix))
			if errors.Is(err, fs.ErrNotExist) {
				continue // destroyed meanwhile: its tombstone is picked up below
			} else if err != nil {
				return fmt.Errorf("backup: keyring: %w", err)
			}
			if err := b.writeFile(KeysDir+"/"+epoch+suffix, data); err != nil {
				return err
			}
			copied[epoch+suffix] = true
		}
		return nil
	}
	// A key file next to a tombstone is a leftover of a crash during
	// DestroyEpoch; it is never used, and never backed up.
	destroyed := func(epoch string) bool { return slices.Contains(ring.tombs, epoch) }
	if err := copyEach(ring.keys, keySuffix, destroyed); err != nil {
		return err
	}
	if err := copyEach(ring.closing, closingSuffix, destroyed); err != nil {
		return err
	}
	// List the tombstones again: an epoch destroyed while we copied must
	// not survive in the backup.
	if ring, err = listKeyring(keyring); err != nil {
		return err
	}
	if err := copyEach(ring.tombs, tombstoneSuffix, func(string) bool { return false }); err != nil {
		return err
	}
	for _, epoch := range ring.tombs {
		for _, suffix := range []string{keySuffix, closingSuffix} {
			if copied[epoch+suffix] {
				if err := b.drop(KeysDir + "/" + epoch + suffix); err != nil {
					return err
				}
			}
		}
	}
	return durable.SyncDir(filepath.Join(b.dir, KeysDir))
}

// drop removes a file the backup had written.
func (b *builder) drop(rel string) error {
	if err := os.Remove(filepath.Join(b.dir, filepath.FromSlash(rel))); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	b.files = slices.DeleteFunc(b.files, func(f File) bool { return f.Path == rel })
	return nil
}

// keyring lists the epochs of a keyring folder by file kind, in order.
type keyring struct{ keys, closing, tombs []string }

// listKeyring reads a keyring folder. Temp files and anything else are
// ignored.
func listKeyring(dir string) (keyring, error) {
	var k keyring
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return k, nil
	} else if err != nil {
		return k, fmt.Errorf("backup: keyring: %w", err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		for _, c := range []struct {
			suffix string
			list   *[]string
		}{{keySuffix, &k.keys}, {closingSuffix, &k.closing}, {tombstoneSuffix, &k.tombs}} {
			if epoch, ok := strings.CutSuffix(e.Name(), c.suffix); ok && validEpoch(epoch) {
				*c.list = append(*c.list, epoch)
			}
		}
	}
	return k, nil
}
