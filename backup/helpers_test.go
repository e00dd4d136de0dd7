package backup_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/archive"
	"github.com/callvault/callvault/audit"
	"github.com/callvault/callvault/backup"
	"github.com/callvault/callvault/blob"
	"github.com/callvault/callvault/cvtest"
	"github.com/callvault/callvault/sqldb"
	"github.com/callvault/callvault/vault"
)

// Key epochs of the test calls (London months).
var (
	march = time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC) // epoch 2026-03
	april = time.Date(2026, 4, 10, 9, 0, 0, 0, time.UTC) // epoch 2026-04
)

// deployment is a running callvault on real parts in a temp dir, laid out
// like DATA: callvault.db, blobs/, keys/, kek, audit-signing.key and
// audit-checkpoints.jsonl.
type deployment struct {
	*cvtest.Deployment
	src *callvault.Source
	wav []byte
}

func newDeployment(t *testing.T) *deployment {
	t.Helper()
	d := &deployment{Deployment: cvtest.New(t), wav: cvtest.CallWAV(t, "ulaw", time.Second)}
	d.src = &callvault.Source{Name: "pbx", Kind: callvault.SourceAPI, TokenHash: strings.Repeat("ab", 32)}
	if err := d.Sources.CreateSource(d.Sys, d.src); err != nil {
		t.Fatal(err)
	}
	// An audit trail with a signed, exported checkpoint, as the server
	// keeps one.
	for i := range 3 {
		ev := &callvault.AuditEvent{Action: "test.event", Outcome: callvault.OutcomeAllowed, TargetID: fmt.Sprint(i)}
		ev.SetActor(callvault.SystemActor)
		if err := d.Log.Record(d.Sys, ev); err != nil {
			t.Fatal(err)
		}
	}
	signer, _, err := audit.LoadOrCreateSigner(d.signingKey())
	if err != nil {
		t.Fatal(err)
	}
	seq, hash, err := d.Audit.AuditHead(d.Sys)
	if err != nil {
		t.Fatal(err)
	}
	exp := &audit.FileExporter{Path: d.checkpoints()}
	if err := exp.Export(d.Sys, signer.Sign(seq, hash, time.Now())); err != nil {
		t.Fatal(err)
	}
	return d
}

func (d *deployment) signingKey() string  { return filepath.Join(d.Dir, "audit-signing.key") }
func (d *deployment) checkpoints() string { return filepath.Join(d.Dir, "audit-checkpoints.jsonl") }
func (d *deployment) keyring() string     { return filepath.Join(d.Dir, "keys") }
func (d *deployment) kek() string         { return filepath.Join(d.Dir, "kek") }

// ingest stores one call that started at start.
func (d *deployment) ingest(t testing.TB, ref string, start time.Time) *callvault.Recording {
	t.Helper()
	rec, _, err := d.Archive.Ingest(context.Background(), archive.IngestRequest{Source: d.src,
		Meta: archive.Metadata{SourceRef: ref, StartedAt: start}, Audio: bytes.NewReader(d.wav)})
	if err != nil {
		t.Errorf("Ingest(%s): %v", ref, err)
		return nil
	}
	return rec
}

// options backs up d into dir.
func (d *deployment) options(dir string, keys bool) backup.Options {
	return backup.Options{
		DB: d.DB, Blobs: d.Blobs,
		CheckpointFile: d.checkpoints(),
		AuditPublicKey: "callvault-audit-ed25519:test",
		IncludeKeys:    keys, KeyringDir: d.keyring(), KEKPath: d.kek(),
		Dir: dir,
	}
}

// target is an empty deployment to restore into.
type target struct {
	data  string
	blobs *blob.FileStore
}

func newTarget(t *testing.T) *target {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	blobs, err := blob.NewFileStore(filepath.Join(data, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	return &target{data: data, blobs: blobs}
}

func (tg *target) options(dir string) backup.RestoreOptions {
	return backup.RestoreOptions{Dir: dir, DataDir: tg.data, Blobs: tg.blobs}
}

// open opens the restored deployment the way the server does.
func (tg *target) open(t *testing.T) (*sqldb.DB, *vault.Vault) {
	t.Helper()
	db, err := sqldb.Open(context.Background(), "sqlite:"+filepath.Join(tg.data, "callvault.db"))
	if err != nil {
		t.Fatalf("open restored database: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	kek, _, err := vault.LoadOrCreateKEK(filepath.Join(tg.data, "kek"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(kek, filepath.Join(tg.data, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	return db, v
}

// plainSHA256 decrypts rec's blob from blobs and hashes the plaintext.
func plainSHA256(blobs callvault.BlobStore, v callvault.Vault, rec *callvault.Recording) (string, error) {
	b, err := blobs.Open(context.Background(), rec.BlobKey)
	if err != nil {
		return "", err
	}
	defer b.Close()
	pt, size, err := v.Decrypt(b, b.Size(), rec.ID, rec.KeyEpoch)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(pt, 0, size)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// tree returns every file under dir with its mode and contents, to show
// that something was left alone.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if e.IsDir() {
			out[rel+"/"] = fi.Mode().String()
			return nil
		}
		b, _ := os.ReadFile(p)
		out[rel] = fi.Mode().String() + " " + string(b)
		return nil
	})
	return out
}
