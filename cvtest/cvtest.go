// Package cvtest wires a whole callvault on real parts — a SQLite file, a
// blob folder, a key file — in a temporary directory, for tests in any
// package. Like cmd/callvault it may import every adapter; nothing but tests
// imports it.
package cvtest

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/archive"
	"github.com/callvault/callvault/audio"
	"github.com/callvault/callvault/audit"
	"github.com/callvault/callvault/blob"
	"github.com/callvault/callvault/sqldb"
	"github.com/callvault/callvault/vault"
)

// Quiet discards logs: a failing test prints what matters itself.
var Quiet = slog.New(slog.DiscardHandler)

// Deployment is an opened callvault in t.TempDir().
type Deployment struct {
	Dir        string
	DB         *sqldb.DB
	Blobs      *blob.FileStore
	Vault      *vault.Vault
	Archive    *archive.Archive
	Recordings *sqldb.RecordingService
	Academies  *sqldb.AcademyService
	Users      *sqldb.UserService
	Sources    *sqldb.SourceService
	Grants     *sqldb.GrantService
	Tokens     *sqldb.TokenService
	Holds      *sqldb.HoldService
	Retention  *sqldb.RetentionService
	Purges     *sqldb.PurgeStore
	Audit      *sqldb.AuditStore
	Log        *audit.Log // the group-commit writer of the trail
	// Sys is a context acting as the system (command line, jobs).
	Sys context.Context
}

// New opens a fresh deployment, closed when the test ends.
func New(t testing.TB) *Deployment {
	t.Helper()
	dir := t.TempDir()
	db, err := sqldb.Open(context.Background(), "sqlite:"+filepath.Join(dir, "callvault.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	kek, _, err := vault.LoadOrCreateKEK(filepath.Join(dir, "kek"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(kek, filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := blob.NewFileStore(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	d := &Deployment{
		Dir: dir, DB: db, Blobs: blobs, Vault: v,
		Recordings: sqldb.NewRecordingService(db),
		Academies:  sqldb.NewAcademyService(db),
		Users:      sqldb.NewUserService(db),
		Sources:    sqldb.NewSourceService(db),
		Grants:     sqldb.NewGrantService(db),
		Tokens:     sqldb.NewTokenService(db),
		Holds:      sqldb.NewHoldService(db),
		Retention:  sqldb.NewRetentionService(db),
		Purges:     sqldb.NewPurgeStore(db),
		Sys:        callvault.NewContextWithActor(context.Background(), callvault.SystemActor),
	}
	d.Audit = sqldb.NewAuditStore(db)
	d.Log = audit.NewLog(d.Audit, audit.LogOptions{Logger: Quiet})
	t.Cleanup(func() { d.Log.Close() })
	d.Archive = &archive.Archive{Recordings: d.Recordings, Academies: d.Academies, Blobs: blobs, Vault: v, Epochs: v, Logger: Quiet}
	return d
}

// CallWAV returns a stereo 8 kHz WAV of a speech-like conversation.
func CallWAV(t testing.TB, codec string, d time.Duration) []byte {
	t.Helper()
	left, right := audio.Conversation(7, d, 8000)
	var b bytes.Buffer
	if err := audio.WriteWAV(&b, codec, 8000, left, right); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
