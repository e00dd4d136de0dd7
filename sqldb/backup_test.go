package sqldb

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callvault/callvault"
)

// TestBackupWhileWriting copies the database while another goroutine keeps
// inserting: the copy opens as a valid database holding every academy
// committed before the backup started.
func TestBackupWhileWriting(t *testing.T) {
	db, _ := openTestDB(t)
	s := NewAcademyService(db)
	create := func(i int) error {
		return s.CreateAcademy(sysCtx(), &callvault.Academy{Slug: fmt.Sprintf("academy-%d", i), Name: fmt.Sprintf("Academy %d", i)})
	}
	const before = 50
	for i := range before {
		if err := create(i); err != nil {
			t.Fatalf("CreateAcademy(%d): %v", i, err)
		}
	}

	var (
		stop    atomic.Bool
		written atomic.Int64
		wg      sync.WaitGroup
	)
	written.Store(before)
	wg.Go(func() {
		for i := before; !stop.Load(); i++ {
			if err := create(i); err != nil {
				t.Errorf("CreateAcademy(%d) during backup: %v", i, err)
				return
			}
			written.Add(1)
		}
	})
	// Let the writer get going, so the backup really runs beside it.
	for written.Load() < before+20 && !t.Failed() {
		time.Sleep(time.Millisecond)
	}
	committed := written.Load()
	path := filepath.Join(t.TempDir(), "copy.db")
	err := db.BackupTo(context.Background(), path)
	stop.Store(true)
	wg.Wait()
	if err != nil {
		t.Fatalf("BackupTo: %v", err)
	}

	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("copy: %v, mode %v; want a 0600 file", err, fi.Mode())
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("backup folder holds %d entries, want only the copy (no journal or temp files)", len(entries))
	}
	cp, err := Open(context.Background(), "sqlite:"+path)
	if err != nil {
		t.Fatalf("Open(copy): %v", err)
	}
	defer cp.Close()
	var check string
	if err := cp.reader.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check of the copy = %q, %v; want ok", check, err)
	}
	all, err := NewAcademyService(cp).FindAcademies(sysCtx())
	if err != nil {
		t.Fatalf("FindAcademies(copy): %v", err)
	}
	slugs := map[string]bool{}
	for _, a := range all {
		slugs[a.Slug] = true
	}
	for i := range int(committed) {
		if !slugs[fmt.Sprintf("academy-%d", i)] {
			t.Fatalf("copy lacks academy-%d, committed before the backup started (%d committed then, %d in the copy)", i, committed, len(all)-1)
		}
	}
	if v, err := cp.SchemaVersion(context.Background()); err != nil || v < 1 {
		t.Errorf("SchemaVersion(copy) = %d, %v; want the migrated version", v, err)
	}
}

func TestBackupRefusesExistingFile(t *testing.T) {
	db, _ := openTestDB(t)
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := db.BackupTo(context.Background(), path)
	if callvault.ErrorCode(err) != callvault.ECONFLICT {
		t.Errorf("BackupTo(existing file) = %v, want ECONFLICT", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "precious" {
		t.Errorf("existing file now holds %q, want it untouched", b)
	}
}

func TestBackupFailureLeavesNothing(t *testing.T) {
	db, _ := openTestDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := db.BackupTo(ctx, path); err == nil {
		t.Fatal("BackupTo with a cancelled context succeeded")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("after a failed backup, Stat(%s) = %v; want no file", path, err)
	}
}

func TestBackupPostgresUnsupported(t *testing.T) {
	db := &DB{dialect: dialectPostgres}
	err := db.BackupTo(context.Background(), filepath.Join(t.TempDir(), "copy.db"))
	if callvault.ErrorCode(err) != callvault.EUNSUPPORTED {
		t.Errorf("BackupTo on PostgreSQL = %v, want EUNSUPPORTED (use pg_dump)", err)
	}
}
