// Package durable writes files so that they survive a crash: whole or not at
// all (temp file, fsync, then link or rename, then fsync of the directory).
// Everything in callvault that must not be lost or half-written on disk
// (blobs, keys, checkpoints) goes through it.
package durable

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// SyncDir fsyncs a directory so that entries created or removed in it
// survive a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// CreateExclusive makes path hold data (mode 0600) unless path already
// exists, and reports whether it created it. The file appears complete or not
// at all: data goes to a temp file that is fsynced and then hard-linked to
// path. Linking fails if path exists, so of several processes racing, exactly
// one creates the file and the others see its full contents.
func CreateExclusive(path string, data []byte) (bool, error) {
	dir := filepath.Dir(path)
	tmp, err := writeTemp(dir, filepath.Base(path), data)
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); errors.Is(err, fs.ErrExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	if err := os.Remove(tmp); err != nil {
		return false, err
	}
	return true, SyncDir(dir)
}

// WriteFile replaces path with data (mode 0600) atomically: readers see the
// old contents or the new, never a mixture, even after a crash.
func WriteFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := writeTemp(dir, filepath.Base(path), data)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return SyncDir(dir)
}

func writeTemp(dir, base string, data []byte) (string, error) {
	f, err := os.CreateTemp(dir, base+".tmp-*")
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("write %s: %w", tmp, err)
	}
	return tmp, nil
}
