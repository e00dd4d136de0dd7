package vault

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/callvault/callvault/durable"
)

// LoadOrCreateKEK reads the key-encryption key from path, or creates it
// (KeySize random bytes, mode 0600, folder 0700) if there is none, and
// reports whether it created it. Creation is atomic: of several processes
// starting at once, one creates the key and all return it.
//
// It refuses a key file of the wrong size and, on Unix, one that group or
// others may read or write. Losing this file loses every recording, so back
// it up apart from the keyring and the blobs.
func LoadOrCreateKEK(path string) ([]byte, bool, error) {
	key, err := loadKEK(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	if err := mkdirPrivate(filepath.Dir(path)); err != nil {
		return nil, false, fmt.Errorf("vault: KEK folder: %w", err)
	}
	key = make([]byte, KeySize)
	rand.Read(key)
	created, err := durable.CreateExclusive(path, key)
	if err != nil {
		return nil, false, fmt.Errorf("vault: create KEK %s: %w", path, err)
	}
	if !created { // another process won the race: use its key
		key, err = loadKEK(path)
		return key, false, err
	}
	return key, true, nil
}

func loadKEK(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, err
	} else if err != nil {
		return nil, fmt.Errorf("vault: open KEK: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("vault: KEK: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("vault: KEK %s is not a regular file", path)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("vault: KEK %s has mode %v: group or others can access it; run chmod 600 on it", path, fi.Mode().Perm())
	}
	if fi.Size() != KeySize {
		return nil, fmt.Errorf("vault: KEK %s holds %d bytes, want %d", path, fi.Size(), KeySize)
	}
	key := make([]byte, KeySize)
	if _, err := io.ReadFull(f, key); err != nil {
		return nil, fmt.Errorf("vault: read KEK: %w", err)
	}
	return key, nil
}
