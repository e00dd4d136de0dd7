package durable

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// LoadOrCreateSecret returns the size random bytes kept in the file at
// path, creating it (mode 0600, in a 0700 folder) on first use, and reports
// whether it did. Of several processes racing to create it, all end up with
// the same bytes. It refuses a file of the wrong size, one that is not a
// regular file and, on Unix, one that group or others may access. what names
// the secret in errors ("KEK", "audit signing key").
func LoadOrCreateSecret(path string, size int, what string) ([]byte, bool, error) {
	b, err := loadSecret(path, size, what)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return b, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("%s folder: %w", what, err)
	}
	b = make([]byte, size)
	if _, err := rand.Read(b); err != nil {
		return nil, false, err
	}
	created, err := CreateExclusive(path, b)
	if err != nil {
		return nil, false, fmt.Errorf("create %s %s: %w", what, path, err)
	}
	if !created { // another process won the race: use its secret
		b, err = loadSecret(path, size, what)
		return b, false, err
	}
	return b, true, nil
}

func loadSecret(path string, size int, what string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, err
	} else if err != nil {
		return nil, fmt.Errorf("open %s: %w", what, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s %s is not a regular file", what, path)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s %s has mode %v: group or others can access it; run chmod 600 on it", what, path, fi.Mode().Perm())
	}
	if fi.Size() != int64(size) {
		return nil, fmt.Errorf("%s %s holds %d bytes, want %d", what, path, fi.Size(), size)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	return b, nil
}
