package vault

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// mkdirPrivate creates dir and its parents with mode 0700. It leaves the
// mode of existing folders alone.
func mkdirPrivate(dir string) error {
	return os.MkdirAll(dir, 0o700)
}

// shred overwrites a file with zeros, fsyncs it and removes it. On
// copy-on-write filesystems and SSDs the old blocks may survive the
// overwrite; what protects a shredded epoch key is that it is wrapped by the
// KEK and that no other copy exists.
func shred(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err == nil {
		_, err = f.WriteAt(make([]byte, fi.Size()), 0)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("overwrite %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
