package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/retention"
	"github.com/callvault/callvault/vault"
)

// copyDir copies a folder of regular files (a keyring, the key backup).
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	es, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// A backup taken before a purge, restored afterwards with the current keys,
// brings back neither the purged recordings nor a way to read them: they
// are reported as purged, with receipts, and their ciphertext in the backup
// no longer decrypts. Everything else comes back byte for byte.
func TestRestoredBackupCannotResurrectPurgedRecordings(t *testing.T) {
	live := t.TempDir()
	dep := openTest(t, live)
	old := seedCalls(t, dep, "old", 5, time.Now().AddDate(0, -13, 0))
	recent := seedCalls(t, dep, "recent", 3, time.Now().AddDate(0, -2, 0))
	dep.Close()

	data, keys := filepath.Join(t.TempDir(), "data"), filepath.Join(t.TempDir(), "keys")
	if out, _, err := cli(t, "backup", "--data="+live, data); err != nil || !strings.Contains(out, "backed up 8 recordings") {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	if out, _, err := cli(t, "backup", "--data="+live, "--include-keys", keys); err != nil || !strings.Contains(out, "contains the keys") {
		t.Fatalf("key backup: %v\n%s", err, out)
	}
	for _, f := range []string{"kek", "keys"} {
		if _, err := os.Stat(filepath.Join(data, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the data backup holds %s", f)
		}
	}

	// Retention purges the old month and destroys its key (no grace here).
	dep = openTest(t, live)
	p := dep.purger(&env{stdout: io.Discard, stderr: io.Discard, logger: dep.archive.Logger})
	p.CloseGrace = -1
	rep, err := p.Run(system(context.Background()), retention.Options{})
	dep.Close()
	if err != nil || rep.Purged != 5 || len(rep.Destroyed) != 1 || rep.Destroyed[0] != old[0].KeyEpoch {
		t.Fatalf("purge: %s, %v", rep.Summary(), err)
	}

	// Disaster recovery: the current key copy (live kek and keyring, with
	// the tombstone) plus the old data backup; and, worse, an old key
	// backup restored over the current keyring.
	for _, withOldKeys := range []bool{false, true} {
		target := t.TempDir()
		b, _ := os.ReadFile(filepath.Join(live, "kek"))
		os.WriteFile(filepath.Join(target, "kek"), b, 0o600)
		copyDir(t, filepath.Join(live, "keys"), filepath.Join(target, "keys"))
		from := data
		if withOldKeys {
			from = keys
		}
		out, _, err := cli(t, "restore", "--data="+target, from)
		if err != nil {
			t.Fatalf("restore (old keys %v): %v\n%s", withOldKeys, err, out)
		}
		if !strings.Contains(out, "5 recordings of destroyed months ("+old[0].KeyEpoch+") were not brought back") {
			t.Errorf("restore (old keys %v) did not report the purged month:\n%s", withOldKeys, out)
		}
		if withOldKeys && !strings.Contains(out, "keys NOT restored, their months were destroyed: "+old[0].KeyEpoch) {
			t.Errorf("restore with an old key backup did not refuse the destroyed key:\n%s", out)
		}
		checkRestored(t, target, from, old, recent)
	}
}

func checkRestored(t *testing.T, target, backupDir string, old, recent []*callvault.Recording) {
	t.Helper()
	dep := openTest(t, target)
	defer dep.Close()
	ctx := system(context.Background())
	for _, r := range old {
		if _, err := dep.recordings.FindRecordingByID(ctx, r.ID); callvault.ErrorCode(err) != callvault.ENOTFOUND {
			t.Errorf("purged recording %s came back: %v", r.ID, err)
		}
		ct, err := os.ReadFile(filepath.Join(backupDir, "blobs", filepath.FromSlash(r.BlobKey)))
		if err != nil {
			t.Fatalf("the backup lost the ciphertext of %s: %v", r.ID, err)
		}
		if _, _, err := dep.vault.Decrypt(bytes.NewReader(ct), int64(len(ct)), r.ID, r.KeyEpoch); !errors.Is(err, vault.ErrEpochDestroyed) {
			t.Errorf("the backup's copy of %s decrypts after restore: %v", r.ID, err)
		}
	}
	receipts := map[string]string{}
	if err := dep.audit.WalkAudit(ctx, 0, func(e *callvault.AuditEvent) error {
		if e.Action == callvault.ActionPurge {
			receipts[e.TargetID] = e.Details["rule"]
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, r := range old {
		if receipts[r.ID] != retention.WhyRestoredShredded {
			t.Errorf("receipt for %s in the restored trail: %q", r.ID, receipts[r.ID])
		}
	}
	for _, r := range recent {
		got, err := dep.recordings.FindRecordingByID(ctx, r.ID)
		if err != nil {
			t.Fatalf("recent recording %s: %v", r.ID, err)
		}
		b, err := dep.blobs.Open(context.Background(), got.BlobKey)
		if err != nil {
			t.Fatal(err)
		}
		plain, size, err := dep.vault.Decrypt(b, b.Size(), got.ID, got.KeyEpoch)
		if err != nil {
			b.Close()
			t.Fatal(err)
		}
		h := sha256.New()
		io.Copy(h, io.NewSectionReader(plain, 0, size))
		b.Close()
		if hex.EncodeToString(h.Sum(nil)) != r.SHA256 {
			t.Errorf("restored %s does not match its SHA-256", r.ID)
		}
	}
}
