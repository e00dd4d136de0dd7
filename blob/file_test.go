package blob_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/blob"
	"github.com/callvault/callvault/blob/blobtest"
)

func newFileStore(t testing.TB) *blob.FileStore {
	t.Helper()
	s, err := blob.NewFileStore(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatalf("NewFileStore: %v", err)
	}
	return s
}

func TestFileStoreConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) callvault.BlobStore { return newFileStore(t) })
}

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestFileStoreModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	s := newFileStore(t)
	w, err := s.Create(context.Background(), "2026/11/rec.age")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("ciphertext"))
	tmps, _ := os.ReadDir(filepath.Join(s.Dir(), ".tmp"))
	if len(tmps) != 1 {
		t.Fatalf(".tmp holds %d files while writing, want 1", len(tmps))
	}
	if m := mode(t, filepath.Join(s.Dir(), ".tmp", tmps[0].Name())); m != 0o600 {
		t.Errorf("temp file mode = %v, want 0600", m)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	checks := map[string]os.FileMode{
		"":                0o700,
		".tmp":            0o700,
		"2026":            0o700,
		"2026/11":         0o700,
		"2026/11/rec.age": 0o600,
	}
	for rel, want := range checks {
		if got := mode(t, filepath.Join(s.Dir(), rel)); got != want {
			t.Errorf("mode of %q = %v, want %v", rel, got, want)
		}
	}
	if tmps, _ := os.ReadDir(filepath.Join(s.Dir(), ".tmp")); len(tmps) != 0 {
		t.Errorf(".tmp holds %d files after Commit, want 0", len(tmps))
	}
}

func TestFileStoreAbortLeavesNoTemp(t *testing.T) {
	s := newFileStore(t)
	w, err := s.Create(context.Background(), "x")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("partial"))
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(s.Dir(), ".tmp"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf(".tmp holds %v after Abort", entries)
	}
}

// A process that dies between Create and Commit leaves its temp file. The
// next process sees it in Walk as a temporary and can delete it.
func TestFileStoreCrashLeftover(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blobs")
	if err := os.MkdirAll(filepath.Join(dir, ".tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	leftover := filepath.Join(dir, ".tmp", "blob-123456")
	if err := os.WriteFile(leftover, []byte("half a call"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := blob.NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	blobtest.Put(t, s, "done", []byte("whole call"))

	es := blobtest.WalkAll(t, s)
	if len(es) != 2 || es[0] != (blobtest.Entry{Key: "done", ModTime: es[0].ModTime}) ||
		es[1].Key != ".tmp/blob-123456" || !es[1].Temp || es[1].ModTime.IsZero() {
		t.Fatalf("Walk = %+v, want done then the temp leftover", es)
	}
	// The temp key cannot be opened, only deleted.
	if _, err := s.Open(context.Background(), es[1].Key); callvault.ErrorCode(err) != callvault.EINVALID {
		t.Fatalf("Open(%q) = %v, want EINVALID", es[1].Key, err)
	}
	if err := s.Delete(context.Background(), es[1].Key); err != nil {
		t.Fatalf("Delete(%q): %v", es[1].Key, err)
	}
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Fatalf("leftover still there: %v", err)
	}
	if es := blobtest.WalkAll(t, s); len(es) != 1 {
		t.Fatalf("Walk after Delete = %+v", es)
	}
}

// Files that no key can name (dot names, symlinks) are not reported, and a
// blob cannot be committed under or over another blob.
func TestFileStoreForeignFilesAndNamespaceConflicts(t *testing.T) {
	s := newFileStore(t)
	os.WriteFile(filepath.Join(s.Dir(), ".DS_Store"), []byte("x"), 0o600)
	os.Mkdir(filepath.Join(s.Dir(), ".git"), 0o700)
	os.WriteFile(filepath.Join(s.Dir(), ".git", "HEAD"), []byte("x"), 0o600)
	if runtime.GOOS != "windows" {
		os.Symlink("/etc/passwd", filepath.Join(s.Dir(), "link"))
	}
	if es := blobtest.WalkAll(t, s); len(es) != 0 {
		t.Fatalf("Walk = %+v, want nothing", es)
	}

	blobtest.Put(t, s, "a", []byte("blob a"))
	w, _ := s.Create(context.Background(), "a/b")
	defer w.Abort()
	if err := w.Commit(); callvault.ErrorCode(err) != callvault.ECONFLICT {
		t.Fatalf("Commit(a/b) under blob a = %v, want ECONFLICT", err)
	}
	blobtest.Put(t, s, "d/e", []byte("blob d/e"))
	w2, _ := s.Create(context.Background(), "d")
	defer w2.Abort()
	if err := w2.Commit(); callvault.ErrorCode(err) != callvault.ECONFLICT {
		t.Fatalf("Commit(d) over folder d = %v, want ECONFLICT", err)
	}
}

// A failed Commit keeps the temp file (it may be the only copy) until Abort.
func TestFileStoreFailedCommitKeepsTempUntilAbort(t *testing.T) {
	s := newFileStore(t)
	blobtest.Put(t, s, "k", []byte("first"))
	w, _ := s.Create(context.Background(), "k")
	w.Write([]byte("second"))
	if err := w.Commit(); callvault.ErrorCode(err) != callvault.ECONFLICT {
		t.Fatalf("Commit = %v", err)
	}
	es := blobtest.WalkAll(t, s)
	if len(es) != 2 || !es[1].Temp {
		t.Fatalf("Walk after failed Commit = %+v, want the blob and one temp", es)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if es := blobtest.WalkAll(t, s); len(es) != 1 {
		t.Fatalf("Walk after Abort = %+v", es)
	}
}

func TestNewFileStoreOnFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "file")
	os.WriteFile(p, nil, 0o600)
	if _, err := blob.NewFileStore(p); err == nil {
		t.Fatal("NewFileStore on a regular file succeeded")
	}
}

// FuzzKey checks that every key the store accepts stays inside the store and
// outside its temp folder.
func FuzzKey(f *testing.F) {
	for _, k := range append(blobtest.BadKeys, "a", "2026/11/x.age", "a/b/c", "a..b", "…/é") {
		f.Add(k)
	}
	s, err := blob.NewFileStore(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, key string) {
		_, err := s.Open(context.Background(), key)
		if callvault.ErrorCode(err) == callvault.EINVALID {
			return
		}
		p := filepath.Join(s.Dir(), filepath.FromSlash(key))
		rel, rerr := filepath.Rel(s.Dir(), p)
		if rerr != nil || rel == "." || strings.HasPrefix(rel, "..") || strings.HasPrefix(rel, ".tmp") || filepath.ToSlash(rel) != key {
			t.Fatalf("accepted key %q maps to %q", key, rel)
		}
	})
}

// DeleteMany removes every key it is given, in any folder, ignores missing
// ones, refuses a bad key and never removes a folder.
func TestFileStoreDeleteMany(t *testing.T) {
	s := newFileStore(t)
	ctx := context.Background()
	keys := []string{"recordings/2025-10/a.age", "recordings/2025-10/b.age", "recordings/2025-11/c.age", "keep/d.age"}
	for _, k := range keys {
		w, err := s.Create(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(k))
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteMany(ctx, []string{keys[0], keys[1], keys[2], "recordings/2025-10/missing.age", "recordings/2025-10"}); err != nil {
		t.Fatalf("DeleteMany: %v", err)
	}
	for i, k := range keys {
		_, err := s.Open(ctx, k)
		if gone := callvault.ErrorCode(err) == callvault.ENOTFOUND; gone != (i < 3) {
			t.Errorf("after DeleteMany, %s gone = %v", k, gone)
		}
	}
	if err := s.DeleteMany(ctx, []string{"../escape"}); callvault.ErrorCode(err) != callvault.EINVALID {
		t.Errorf("DeleteMany(../escape) = %v, want EINVALID", err)
	}
}
