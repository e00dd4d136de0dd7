package blob

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/durable"
)

const tempDir = ".tmp"

// FileStore is a callvault.BlobStore on a local folder. It is safe for
// concurrent use, also by several processes sharing the folder.
type FileStore struct {
	dir string // absolute
	tmp string // dir/.tmp
}

var _ callvault.BlobStore = (*FileStore)(nil)

// NewFileStore opens (creating with mode 0700 if needed) the store in dir.
// The temp folder dir/.tmp is on the same filesystem, so Commit can link.
func NewFileStore(dir string) (*FileStore, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blob: %w", err)
	}
	s := &FileStore{dir: abs, tmp: filepath.Join(abs, tempDir)}
	if err := os.MkdirAll(s.tmp, 0o700); err != nil {
		return nil, fmt.Errorf("blob: create store: %w", err)
	}
	if fi, err := os.Stat(s.dir); err != nil {
		return nil, fmt.Errorf("blob: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("blob: %s is not a directory", s.dir)
	}
	return s, nil
}

// Dir returns the store's folder.
func (s *FileStore) Dir() string { return s.dir }

func (s *FileStore) path(key string) string {
	return filepath.Join(s.dir, filepath.FromSlash(key))
}

// Create starts a blob in a temp file (mode 0600). Nothing appears at key
// until Commit.
func (s *FileStore) Create(ctx context.Context, key string) (callvault.BlobWriter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := validKey(key); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(s.tmp, "blob-*")
	if err != nil {
		return nil, fmt.Errorf("blob: create temp for %q: %w", key, err)
	}
	return &fileWriter{s: s, key: key, f: f}, nil
}

// Open returns ENOTFOUND if key does not exist.
func (s *FileStore) Open(ctx context.Context, key string) (callvault.Blob, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := validKey(key); err != nil {
		return nil, err
	}
	f, err := os.Open(s.path(key))
	if isNotFound(err) {
		return nil, callvault.Errorf(callvault.ENOTFOUND, "blob %q not found", key)
	} else if err != nil {
		return nil, fmt.Errorf("blob: open %q: %w", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blob: stat %q: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, callvault.Errorf(callvault.ENOTFOUND, "blob %q not found", key)
	}
	return &fileBlob{f: f, size: fi.Size()}, nil
}

// Delete removes key and makes the removal durable. A missing key is not an
// error. Delete also accepts the ".tmp/NAME" keys that Walk reports for
// temporary blobs, so a sweeper can remove abandoned writes.
func (s *FileStore) Delete(ctx context.Context, key string) error {
	return s.DeleteMany(ctx, []string{key})
}

// DeleteMany removes keys, then makes the removals durable with one sync
// per directory instead of one per blob (retention deletes thousands at a
// time). Missing keys are not an error. On an error some keys may be gone.
func (s *FileStore) DeleteMany(ctx context.Context, keys []string) error {
	dirs := map[string]bool{}
	for _, key := range keys {
		if err := ctx.Err(); err != nil {
			return err
		}
		p, err := s.removeBlob(key)
		if err != nil {
			return err
		}
		if p != "" {
			dirs[filepath.Dir(p)] = true
		}
	}
	for dir := range dirs {
		if err := durable.SyncDir(dir); err != nil {
			return fmt.Errorf("blob: delete: %w", err)
		}
	}
	return nil
}

// removeBlob unlinks key's file and returns its path ("" if there was none).
func (s *FileStore) removeBlob(key string) (string, error) {
	var p string
	if name, ok := tempName(key); ok {
		p = filepath.Join(s.tmp, name)
	} else if err := validKey(key); err != nil {
		return "", err
	} else {
		p = s.path(key)
	}
	// Only regular files are blobs: never remove a directory that happens to
	// share a prefix of other keys.
	fi, err := os.Lstat(p)
	if isNotFound(err) {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("blob: delete %q: %w", key, err)
	} else if !fi.Mode().IsRegular() {
		return "", nil
	}
	if err := os.Remove(p); err != nil && !isNotFound(err) {
		return "", fmt.Errorf("blob: delete %q: %w", key, err)
	}
	return p, nil
}

// Walk calls fn for every committed blob in byte order of its key, then for
// every temporary blob (temp=true, key ".tmp/NAME") in name order. Files that
// no key can name (dot names, non-regular files) are skipped. Blobs created
// or deleted during the walk may or may not be reported.
func (s *FileStore) Walk(ctx context.Context, fn func(key string, modTime time.Time, temp bool) error) error {
	if err := s.walkDir(ctx, s.dir, "", fn); err != nil {
		return err
	}
	entries, err := os.ReadDir(s.tmp)
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("blob: walk temp: %w", err)
	}
	for _, e := range entries { // ReadDir sorts by name
		if err := ctx.Err(); err != nil {
			return err
		}
		key := tempPrefix + e.Name()
		if _, ok := tempName(key); !ok {
			continue
		}
		fi, err := e.Info()
		if isNotFound(err) {
			continue
		} else if err != nil {
			return fmt.Errorf("blob: walk temp: %w", err)
		} else if !fi.Mode().IsRegular() {
			continue
		}
		if err := fn(key, fi.ModTime(), true); err != nil {
			return err
		}
	}
	return nil
}

// walkDir visits dir (whose keys start with prefix) so that keys come out in
// byte order: a directory "a" sorts as "a/", so "a-b" comes before "a/b",
// as it does in an S3 listing.
func (s *FileStore) walkDir(ctx context.Context, dir, prefix string, fn func(string, time.Time, bool) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if isNotFound(err) {
		return nil // removed while walking
	} else if err != nil {
		return fmt.Errorf("blob: walk: %w", err)
	}
	sortName := func(e fs.DirEntry) string {
		if e.IsDir() {
			return e.Name() + "/"
		}
		return e.Name()
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(sortName(a), sortName(b)) })
	for _, e := range entries {
		key := prefix + e.Name()
		if validSegment(key, e.Name()) != nil {
			continue // includes .tmp and anything else no key can reach
		}
		if e.IsDir() {
			if err := s.walkDir(ctx, filepath.Join(dir, e.Name()), key+"/", fn); err != nil {
				return err
			}
			continue
		}
		if !e.Type().IsRegular() || validKey(key) != nil {
			continue
		}
		fi, err := e.Info()
		if isNotFound(err) {
			continue
		} else if err != nil {
			return fmt.Errorf("blob: walk: %w", err)
		}
		if err := fn(key, fi.ModTime(), false); err != nil {
			return err
		}
	}
	return nil
}

// mkdirs creates the folders of key below the store's root, fsyncing the
// parent of each folder it creates so the folder survives a crash.
func (s *FileStore) mkdirs(key string) error {
	cur := s.dir
	segs := strings.Split(key, "/")
	for _, seg := range segs[:len(segs)-1] {
		next := filepath.Join(cur, seg)
		err := os.Mkdir(next, 0o700)
		if err == nil {
			if err := durable.SyncDir(cur); err != nil {
				return err
			}
		} else if !errors.Is(err, fs.ErrExist) {
			return err
		}
		cur = next
	}
	return nil
}

// fileWriter writes a blob to a temp file. Write and ReadAt may be called
// concurrently; Commit and Abort must not race with Write.
type fileWriter struct {
	s    *FileStore
	key  string
	f    *os.File
	size atomic.Int64

	mu    sync.Mutex
	state int // writing, closed (Commit failed after close), committed, aborted
}

const (
	stateWriting = iota
	stateClosed
	stateCommitted
	stateAborted
)

func (w *fileWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.size.Add(int64(n))
	if err != nil {
		return n, fmt.Errorf("blob: write %q: %w", w.key, err)
	}
	return n, nil
}

// ReadAt reads back what has been written so far.
func (w *fileWriter) ReadAt(p []byte, off int64) (int, error) {
	return w.f.ReadAt(p, off)
}

func (w *fileWriter) Size() int64 { return w.size.Load() }

// Commit makes the blob durable and visible at its key. It returns ECONFLICT
// if the key exists (the existing blob is untouched). If Commit fails the
// temp file is kept until Abort. A second Commit after success returns nil.
func (w *fileWriter) Commit() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch w.state {
	case stateCommitted:
		return nil
	case stateAborted:
		return fmt.Errorf("blob: commit %q: writer was aborted", w.key)
	case stateWriting:
		if err := w.f.Sync(); err != nil {
			return fmt.Errorf("blob: commit %q: fsync: %w", w.key, err)
		}
		if err := w.f.Close(); err != nil {
			return fmt.Errorf("blob: commit %q: close: %w", w.key, err)
		}
		w.state = stateClosed
	}

	if err := w.s.mkdirs(w.key); err != nil {
		if errors.Is(err, syscall.ENOTDIR) {
			return callvault.Errorf(callvault.ECONFLICT, "blob key %q conflicts with an existing blob", w.key)
		}
		return fmt.Errorf("blob: commit %q: %w", w.key, err)
	}
	// link, unlike rename, fails if the target exists: the no-overwrite check
	// and the publication are one atomic step, even across processes.
	dst := w.s.path(w.key)
	if err := os.Link(w.f.Name(), dst); errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTDIR) {
		return callvault.Errorf(callvault.ECONFLICT, "blob %q already exists", w.key)
	} else if err != nil {
		return fmt.Errorf("blob: commit %q: %w", w.key, err)
	}
	if err := durable.SyncDir(filepath.Dir(dst)); err != nil {
		return fmt.Errorf("blob: commit %q: %w", w.key, err)
	}
	w.state = stateCommitted
	// The blob is durable now. If removing the temp name fails or is lost in
	// a crash, Walk reports it as a temporary and the sweeper removes it; the
	// committed blob shares the inode and is unaffected.
	if err := os.Remove(w.f.Name()); err != nil && !isNotFound(err) {
		return fmt.Errorf("blob: commit %q: remove temp: %w", w.key, err)
	}
	return nil
}

// Abort discards the blob. It is a no-op after Commit or a previous Abort.
func (w *fileWriter) Abort() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch w.state {
	case stateCommitted, stateAborted:
		return nil
	case stateWriting:
		w.f.Close() // the error is moot: the file is about to go
	}
	w.state = stateAborted
	if err := os.Remove(w.f.Name()); err != nil && !isNotFound(err) {
		return fmt.Errorf("blob: abort %q: %w", w.key, err)
	}
	return nil
}

type fileBlob struct {
	f    *os.File
	size int64
}

func (b *fileBlob) ReadAt(p []byte, off int64) (int, error) { return b.f.ReadAt(p, off) }
func (b *fileBlob) Size() int64                             { return b.size }
func (b *fileBlob) Close() error                            { return b.f.Close() }

// isNotFound reports whether err means the path does not exist, including a
// path through a regular file ("a/b" where "a" is a blob).
func isNotFound(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}
