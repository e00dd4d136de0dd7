package backup_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/backup"
	"github.com/callvault/callvault/sqldb"
)

// TestBackupRestoreWhileIngesting backs up a deployment while calls keep
// arriving, verifies the backup, restores it into an empty deployment and
// plays every restored recording back to the audio that was ingested.
func TestBackupRestoreWhileIngesting(t *testing.T) {
	d := newDeployment(t)
	var (
		mu     sync.Mutex
		stored []*callvault.Recording
	)
	for i, start := range []time.Time{march, march.Add(time.Hour), april, april.Add(time.Hour)} {
		stored = append(stored, d.ingest(t, fmt.Sprint("before-", i), start))
	}

	// Calls keep arriving during the backup.
	var (
		stop atomic.Bool
		n    atomic.Int64
		wg   sync.WaitGroup
	)
	wg.Go(func() {
		for i := 0; !stop.Load(); i++ {
			start := march
			if i%2 == 1 {
				start = april
			}
			if rec := d.ingest(t, fmt.Sprint("during-", i), start.Add(time.Duration(i)*time.Minute)); rec != nil {
				mu.Lock()
				stored = append(stored, rec)
				mu.Unlock()
				n.Add(1)
			} else {
				return
			}
		}
	})
	for n.Load() < 2 && !t.Failed() {
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	before := slices.Clone(stored) // committed before the backup started
	mu.Unlock()

	dir := filepath.Join(t.TempDir(), "callvault-2026-05-01")
	m, err := backup.Backup(context.Background(), d.options(dir, true))
	stop.Store(true)
	wg.Wait()
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	mu.Lock()
	t.Logf("%d recordings committed before the backup, %d in it, %d stored by the end", len(before), m.Recordings, len(stored))
	mu.Unlock()
	if m.Recordings < len(before) || m.Blobs != m.Recordings || len(m.Vanished) != 0 {
		t.Errorf("manifest: %d recordings, %d blobs, vanished %v; want at least %d recordings, each with its blob",
			m.Recordings, m.Blobs, m.Vanished, len(before))
	}
	if m.SchemaVersion < 1 || m.AuditSeq < 3 || len(m.AuditHead) != 64 || !m.IncludeKeys {
		t.Errorf("manifest: schema %d, audit %d %q, keys %v; want a schema, the audit head, keys",
			m.SchemaVersion, m.AuditSeq, m.AuditHead, m.IncludeKeys)
	}
	vm, err := backup.Verify(dir)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if len(vm.Files) != len(m.Files) {
		t.Errorf("Verify read %d files, Backup wrote %d", len(vm.Files), len(m.Files))
	}
	checkModes(t, dir)
	checkNoSigningKey(t, d, dir)
	for _, p := range []string{"callvault.db", "audit-checkpoints.jsonl", "kek", "keys/2026-03.key", "keys/2026-04.key", "manifest.json"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("backup lacks %s: %v", p, err)
		}
	}

	tg := newTarget(t)
	rep, err := backup.Restore(context.Background(), tg.options(dir))
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if rep.Blobs != m.Blobs || !rep.KEKCopied || rep.KeysNeeded || len(rep.KeysDestroyed) != 0 ||
		!slices.Equal(rep.KeysCopied, []string{"2026-03", "2026-04"}) {
		t.Errorf("report: %d blobs, KEK copied %v, keys needed %v, keys copied %v, refused %v; want %d blobs, KEK and both epochs copied",
			rep.Blobs, rep.KEKCopied, rep.KeysNeeded, rep.KeysCopied, rep.KeysDestroyed, m.Blobs)
	}
	if rep.AuditSeq != m.AuditSeq || rep.AuditHead != m.AuditHead {
		t.Errorf("report: audit head %d %s, want the manifest's %d %s", rep.AuditSeq, rep.AuditHead, m.AuditSeq, m.AuditHead)
	}

	db, v := tg.open(t)
	recs := sqldb.NewRecordingService(db)
	for _, want := range before {
		if _, err := recs.FindRecordingByID(d.Sys, want.ID); err != nil {
			t.Errorf("recording %s, committed before the backup, is not in the restored database: %v", want.ID, err)
		}
	}
	count := 0
	err = recs.RecordingBlobKeys(d.Sys, func(id, _ string) error {
		count++
		rec, err := recs.FindRecordingByID(d.Sys, id)
		if err != nil {
			return err
		}
		got, err := plainSHA256(tg.blobs, v, rec)
		if err != nil {
			t.Errorf("restored recording %s does not decrypt: %v", id, err)
		} else if got != rec.SHA256 {
			t.Errorf("restored recording %s decrypts to SHA-256 %s, want %s (the ingested audio)", id, got, rec.SHA256)
		}
		return nil
	})
	if err != nil || count != m.Recordings {
		t.Errorf("restored database lists %d recordings (%v), want %d", count, err, m.Recordings)
	}
	seq, hash, err := sqldb.NewAuditStore(db).AuditHead(d.Sys)
	if err != nil || seq != m.AuditSeq || hash != m.AuditHead {
		t.Errorf("restored audit head = %d %s (%v), want %d %s", seq, hash, err, m.AuditSeq, m.AuditHead)
	}
}

// checkModes: a backup holds personal data; only its owner may read it.
func checkModes(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			t.Error(err)
			return err
		}
		fi, _ := e.Info()
		want := fs.FileMode(0o600)
		if e.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", p, fi.Mode().Perm(), want)
		}
		return nil
	})
}

// checkNoSigningKey: the audit signing key stays on the server, whatever
// is backed up.
func checkNoSigningKey(t *testing.T, d *deployment, dir string) {
	t.Helper()
	key, err := os.ReadFile(d.signingKey())
	if err != nil || len(key) == 0 {
		t.Fatalf("the test deployment has no signing key: %v", err)
	}
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		if strings.Contains(e.Name(), "signing") {
			t.Errorf("backup holds %s", p)
		}
		if b, _ := os.ReadFile(p); bytes.Contains(b, key) {
			t.Errorf("backup file %s contains the audit signing key", p)
		}
		return nil
	})
}

func TestBackupWithoutKeys(t *testing.T) {
	d := newDeployment(t)
	rec := d.ingest(t, "a", march)
	dir := filepath.Join(t.TempDir(), "b")
	m, err := backup.Backup(context.Background(), d.options(dir, false))
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if m.IncludeKeys {
		t.Error("manifest says the backup has keys")
	}
	for _, p := range []string{"kek", "keys"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a data backup has %s (%v); keys belong in the key backup only", p, err)
		}
	}
	for _, f := range m.Files {
		if strings.HasPrefix(f.Path, "keys/") || f.Path == "kek" {
			t.Errorf("manifest lists %s in a backup without keys", f.Path)
		}
	}
	checkNoSigningKey(t, d, dir)

	// Restored without keys, the data waits for the key backup.
	tg := newTarget(t)
	rep, err := backup.Restore(context.Background(), tg.options(dir))
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if !rep.KeysNeeded || rep.KEKCopied || len(rep.KeysCopied) != 0 {
		t.Errorf("report: keys needed %v, KEK copied %v, keys %v; want keys needed and none copied", rep.KeysNeeded, rep.KEKCopied, rep.KeysCopied)
	}
	if _, err := os.Stat(filepath.Join(tg.data, "kek")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("restore made a kek: %v", err)
	}
	// With the key backup put back, the recording plays.
	copyFile(t, d.kek(), filepath.Join(tg.data, "kek"))
	copyFile(t, filepath.Join(d.keyring(), "2026-03.key"), filepath.Join(tg.data, "keys", "2026-03.key"))
	_, v := tg.open(t)
	if got, err := plainSHA256(tg.blobs, v, rec); err != nil || got != rec.SHA256 {
		t.Errorf("after restoring the keys: SHA-256 %s, %v; want %s", got, err, rec.SHA256)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(to), 0o700)
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// purging deletes one blob just before the backup copies it, as a
// retention run between the snapshot and the copy would.
type purging struct {
	callvault.BlobStore
	key string
}

func (p purging) Open(ctx context.Context, key string) (callvault.Blob, error) {
	if key == p.key {
		if err := p.BlobStore.Delete(ctx, key); err != nil {
			return nil, err
		}
	}
	return p.BlobStore.Open(ctx, key)
}

func TestBackupVanishedBlob(t *testing.T) {
	d := newDeployment(t)
	kept := d.ingest(t, "kept", march)
	gone := d.ingest(t, "gone", march)
	o := d.options(filepath.Join(t.TempDir(), "b"), false)
	o.Blobs = purging{d.Blobs, gone.BlobKey}
	m, err := backup.Backup(context.Background(), o)
	if err != nil {
		t.Fatalf("Backup with a blob purged meanwhile: %v; want success", err)
	}
	if !slices.Equal(m.Vanished, []string{gone.ID}) || m.Recordings != 2 || m.Blobs != 1 {
		t.Errorf("manifest: vanished %v, %d recordings, %d blobs; want [%s], 2, 1", m.Vanished, m.Recordings, m.Blobs, gone.ID)
	}
	tg := newTarget(t)
	rep, err := backup.Restore(context.Background(), tg.options(o.Dir))
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if !slices.Equal(rep.Vanished, []string{gone.ID}) || rep.Blobs != 1 {
		t.Errorf("report: vanished %v, %d blobs; want [%s], 1", rep.Vanished, rep.Blobs, gone.ID)
	}
	if _, err := tg.blobs.Open(context.Background(), kept.BlobKey); err != nil {
		t.Errorf("kept recording's blob not restored: %v", err)
	}
}

// rewrapping re-encrypts one recording under a hold epoch just before the
// backup copies its blob, as a retention run protecting a held recording
// would: the old blob is gone, the live row points at a new one.
type rewrapping struct {
	callvault.BlobStore
	d   *deployment
	rec *callvault.Recording
}

func (r rewrapping) Open(ctx context.Context, key string) (callvault.Blob, error) {
	if key == r.rec.BlobKey {
		hold := callvault.HoldEpochPrefix + "2026-05"
		err := r.d.Archive.Rewrap(r.d.Sys, r.rec, hold, func(ctx context.Context, newKey string) error {
			return r.d.Purges.MoveRecording(ctx, r.rec.ID, r.rec.BlobKey, newKey, hold)
		})
		if err != nil {
			return nil, err
		}
	}
	return r.BlobStore.Open(ctx, key)
}

// A recording moved to a hold epoch during the backup is backed up under
// its new blob, not reported as purged: a held recording must survive a
// restore.
func TestBackupRewrappedDuringBackup(t *testing.T) {
	d := newDeployment(t)
	held := d.ingest(t, "held", march)
	d.ingest(t, "other", april)
	o := d.options(filepath.Join(t.TempDir(), "b"), true)
	o.Blobs = rewrapping{d.Blobs, d, held}
	m, err := backup.Backup(context.Background(), o)
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if len(m.Vanished) != 0 || m.Recordings != 2 || m.Blobs != 2 {
		t.Errorf("manifest: vanished %v, %d recordings, %d blobs; want none vanished, 2 and 2", m.Vanished, m.Recordings, m.Blobs)
	}
	for _, p := range []string{"blobs/" + held.BlobKey} {
		if _, err := os.Stat(filepath.Join(o.Dir, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("backup holds the old blob %s (%v)", p, err)
		}
	}
	tg := newTarget(t)
	if _, err := backup.Restore(context.Background(), tg.options(o.Dir)); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	db, v := tg.open(t)
	rec, err := sqldb.NewRecordingService(db).FindRecordingByID(d.Sys, held.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rec.KeyEpoch, callvault.HoldEpochPrefix) {
		t.Errorf("restored recording has key epoch %s, want its hold epoch", rec.KeyEpoch)
	}
	if got, err := plainSHA256(tg.blobs, v, rec); err != nil || got != held.SHA256 {
		t.Errorf("restored held recording: SHA-256 %s, %v; want %s", got, err, held.SHA256)
	}
}

// failing fails to open one blob for a reason other than its absence.
type failing struct {
	callvault.BlobStore
	key string
}

func (f failing) Open(ctx context.Context, key string) (callvault.Blob, error) {
	if key == f.key {
		return nil, errors.New("input/output error")
	}
	return f.BlobStore.Open(ctx, key)
}

func TestBackupFailureRemovesWhatItWrote(t *testing.T) {
	d := newDeployment(t)
	d.ingest(t, "a", march)
	bad := d.ingest(t, "b", march)
	for _, exists := range []bool{false, true} {
		t.Run(fmt.Sprintf("folder existed %v", exists), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "b")
			if exists {
				os.Mkdir(dir, 0o700)
			}
			o := d.options(dir, true)
			o.Blobs = failing{d.Blobs, bad.BlobKey}
			if _, err := backup.Backup(context.Background(), o); err == nil {
				t.Fatal("Backup succeeded though a blob could not be read")
			}
			entries, err := os.ReadDir(dir)
			switch {
			case !exists && !errors.Is(err, fs.ErrNotExist):
				t.Errorf("after a failed backup the folder it created is still there (%v)", err)
			case exists && (err != nil || len(entries) != 0):
				t.Errorf("after a failed backup the folder holds %d entries (%v), want it empty again", len(entries), err)
			}
		})
	}
}

func TestBackupRefusesNonEmptyFolder(t *testing.T) {
	d := newDeployment(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "old"), []byte("x"), 0o600)
	before := tree(t, dir)
	_, err := backup.Backup(context.Background(), d.options(dir, false))
	if callvault.ErrorCode(err) != callvault.ECONFLICT {
		t.Errorf("Backup into a non-empty folder = %v, want ECONFLICT", err)
	}
	if after := tree(t, dir); !maps.Equal(before, after) {
		t.Errorf("the folder changed: %v, was %v", after, before)
	}
}

// A checkpoint half-appended while the backup reads the file is left out.
func TestBackupCheckpointsCompleteLines(t *testing.T) {
	d := newDeployment(t)
	whole, err := os.ReadFile(d.checkpoints())
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(d.checkpoints(), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"version":1,"seq":`)
	f.Close()
	dir := filepath.Join(t.TempDir(), "b")
	if _, err := backup.Backup(context.Background(), d.options(dir, false)); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "audit-checkpoints.jsonl"))
	if !bytes.Equal(got, whole) {
		t.Errorf("backed-up checkpoints = %q, want the complete lines %q", got, whole)
	}
}

// An epoch destroyed before the backup is in it as a tombstone only.
func TestBackupDestroyedEpoch(t *testing.T) {
	d := newDeployment(t)
	d.ingest(t, "a", march)
	d.ingest(t, "b", april)
	if err := d.Vault.DestroyEpoch("2026-03"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Vault.CloseEpoch("2026-04"); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "b")
	if _, err := backup.Backup(context.Background(), d.options(dir, true)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "keys", "2026-03.key")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("backup holds the key of destroyed epoch 2026-03 (%v)", err)
	}
	for _, p := range []string{"keys/2026-03.destroyed", "keys/2026-04.key", "keys/2026-04.closing"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("backup lacks %s: %v", p, err)
		}
	}

	// Restored, the month stays destroyed and the closing one closed.
	tg := newTarget(t)
	rep, err := backup.Restore(context.Background(), tg.options(dir))
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if !slices.Equal(rep.TombstonesCopied, []string{"2026-03"}) || !slices.Equal(rep.KeysCopied, []string{"2026-04"}) {
		t.Errorf("report: tombstones %v, keys %v; want 2026-03 and 2026-04", rep.TombstonesCopied, rep.KeysCopied)
	}
	_, v := tg.open(t)
	if open, err := v.EpochOpen("2026-04"); err != nil || open {
		t.Errorf("restored EpochOpen(2026-04) = %v, %v; want closed", open, err)
	}
	if open, err := v.EpochOpen("2026-03"); err != nil || open {
		t.Errorf("restored EpochOpen(2026-03) = %v, %v; want destroyed", open, err)
	}
}
