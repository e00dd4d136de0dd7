package backup_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/backup"
	"github.com/callvault/callvault/vault"
)

// makeBackup backs up a deployment with one recording in March and one in
// April.
func makeBackup(t *testing.T, keys bool) (d *deployment, dir string, mar, apr *callvault.Recording) {
	t.Helper()
	d = newDeployment(t)
	mar, apr = d.ingest(t, "mar", march), d.ingest(t, "apr", april)
	dir = filepath.Join(t.TempDir(), "b")
	if _, err := backup.Backup(context.Background(), d.options(dir, keys)); err != nil {
		t.Fatalf("Backup: %v", err)
	}
	return d, dir, mar, apr
}

// A month crypto-shredded after the backup stays shredded: its key is not
// brought back from the backup.
func TestRestoreKeepsDestroyedEpochsDestroyed(t *testing.T) {
	_, dir, mar, apr := makeBackup(t, true)
	tg := newTarget(t)
	kek := make([]byte, vault.KeySize)
	rand.Read(kek)
	tv, err := vault.New(kek, filepath.Join(tg.data, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	if err := tv.DestroyEpoch("2026-04"); err != nil {
		t.Fatal(err)
	}

	rep, err := backup.Restore(context.Background(), tg.options(dir))
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if !slices.Equal(rep.KeysDestroyed, []string{"2026-04"}) || !slices.Equal(rep.KeysCopied, []string{"2026-03"}) {
		t.Errorf("report: keys refused %v, copied %v; want 2026-04 refused, 2026-03 copied", rep.KeysDestroyed, rep.KeysCopied)
	}
	if _, err := os.Lstat(filepath.Join(tg.data, "keys", "2026-04.key")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the key of destroyed epoch 2026-04 was restored (%v)", err)
	}
	if slices.Contains(rep.Files, "keys/2026-04.key") {
		t.Errorf("report lists keys/2026-04.key as restored: %v", rep.Files)
	}

	_, v := tg.open(t)
	if got, err := plainSHA256(tg.blobs, v, mar); err != nil || got != mar.SHA256 {
		t.Errorf("March recording: SHA-256 %s, %v; want %s", got, err, mar.SHA256)
	}
	if _, err := plainSHA256(tg.blobs, v, apr); !errors.Is(err, vault.ErrEpochDestroyed) {
		t.Errorf("April recording decrypts after restore (%v); want ErrEpochDestroyed", err)
	}
}

func TestRestoreRefusesExistingDatabase(t *testing.T) {
	_, dir, _, _ := makeBackup(t, true)
	for _, name := range []string{"callvault.db", "callvault.db-wal"} {
		t.Run(name, func(t *testing.T) {
			tg := newTarget(t)
			if err := os.WriteFile(filepath.Join(tg.data, name), []byte("live data"), 0o600); err != nil {
				t.Fatal(err)
			}
			before := tree(t, tg.data)
			_, err := backup.Restore(context.Background(), tg.options(dir))
			if callvault.ErrorCode(err) != callvault.ECONFLICT || !strings.Contains(err.Error(), name) {
				t.Errorf("Restore into a data dir with %s = %v, want ECONFLICT naming it", name, err)
			}
			if after := tree(t, tg.data); !maps.Equal(before, after) {
				t.Errorf("the target changed:\n%v\nwas\n%v", after, before)
			}
		})
	}
}

func TestRestoreRefusesOtherKEK(t *testing.T) {
	_, dir, _, _ := makeBackup(t, true)
	tg := newTarget(t)
	if _, _, err := vault.LoadOrCreateKEK(filepath.Join(tg.data, "kek")); err != nil {
		t.Fatal(err)
	}
	before := tree(t, tg.data)
	_, err := backup.Restore(context.Background(), tg.options(dir))
	if callvault.ErrorCode(err) != callvault.ECONFLICT {
		t.Errorf("Restore with another KEK in the target = %v, want ECONFLICT", err)
	}
	if after := tree(t, tg.data); !maps.Equal(before, after) {
		t.Errorf("the target changed:\n%v\nwas\n%v", after, before)
	}
}

// A restore that fails part-way leaves no database: what it copied before
// is orphaned blobs and keys, never a database that looks whole.
func TestRestoreFailureLeavesNoDatabase(t *testing.T) {
	_, dir, mar, _ := makeBackup(t, true)
	tg := newTarget(t)
	w, _ := tg.blobs.Create(context.Background(), mar.BlobKey)
	w.Write([]byte("another recording's ciphertext"))
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	_, err := backup.Restore(context.Background(), tg.options(dir))
	if callvault.ErrorCode(err) != callvault.ECONFLICT || !strings.Contains(err.Error(), mar.BlobKey) {
		t.Errorf("Restore over a different blob = %v, want ECONFLICT naming %s", err, mar.BlobKey)
	}
	entries, _ := os.ReadDir(tg.data)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "callvault.db") {
			t.Errorf("after a failed restore the data dir holds %s", e.Name())
		}
	}
}

func TestRestoreTwiceIntoSameBlobStore(t *testing.T) {
	_, dir, _, _ := makeBackup(t, true)
	tg := newTarget(t)
	if _, err := backup.Restore(context.Background(), tg.options(dir)); err != nil {
		t.Fatal(err)
	}
	// The database is moved away; the blobs and keys stay.
	os.Rename(filepath.Join(tg.data, "callvault.db"), filepath.Join(t.TempDir(), "old.db"))
	rep, err := backup.Restore(context.Background(), tg.options(dir))
	if err != nil {
		t.Fatalf("second Restore: %v", err)
	}
	if rep.Blobs != 0 || rep.BlobsPresent != 2 || rep.KEKCopied || len(rep.KeysCopied) != 0 ||
		!slices.Equal(rep.KeysPresent, []string{"2026-03", "2026-04"}) || !rep.CheckpointsKept {
		t.Errorf("second restore: %d blobs copied, %d present, KEK copied %v, keys copied %v, present %v, checkpoints kept %v; "+
			"want everything found in place", rep.Blobs, rep.BlobsPresent, rep.KEKCopied, rep.KeysCopied, rep.KeysPresent, rep.CheckpointsKept)
	}
}

// TestVerifyTampered alters a backup in different ways: Verify, and Restore
// before it writes anything, name the first bad file.
func TestVerifyTampered(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(dir string, rec *callvault.Recording) string // returns the file it names
	}{
		{"blob byte flipped", func(dir string, rec *callvault.Recording) string {
			p := filepath.Join(dir, "blobs", rec.BlobKey)
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 1
			os.WriteFile(p, b, 0o600)
			return "blobs/" + rec.BlobKey
		}},
		{"database truncated", func(dir string, _ *callvault.Recording) string {
			os.Truncate(filepath.Join(dir, "callvault.db"), 4096)
			return "callvault.db"
		}},
		{"key file removed", func(dir string, _ *callvault.Recording) string {
			os.Remove(filepath.Join(dir, "keys", "2026-03.key"))
			return "keys/2026-03.key"
		}},
		{"checkpoint altered", func(dir string, _ *callvault.Recording) string {
			p := filepath.Join(dir, "audit-checkpoints.jsonl")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, []byte(strings.Replace(string(b), `"seq":`, `"seq": `, 1)), 0o600)
			return "audit-checkpoints.jsonl"
		}},
		{"manifest removed (interrupted backup)", func(dir string, _ *callvault.Recording) string {
			os.Remove(filepath.Join(dir, "manifest.json"))
			return "manifest.json"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, dir, mar, _ := makeBackup(t, true)
			name := tc.tamper(dir, mar)
			_, err := backup.Verify(dir)
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("Verify = %v, want an error naming %s", err, name)
			}
			tg := newTarget(t)
			before := tree(t, tg.data)
			if _, err := backup.Restore(context.Background(), tg.options(dir)); err == nil {
				t.Fatal("Restore of a tampered backup succeeded")
			}
			if after := tree(t, tg.data); !maps.Equal(before, after) {
				t.Errorf("Restore of a tampered backup changed the target:\n%v", after)
			}
		})
	}
}
