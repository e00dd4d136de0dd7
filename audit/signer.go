package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/callvault/callvault/durable"
)

// Signer signs checkpoints with an Ed25519 key. It is safe for concurrent
// use.
type Signer struct {
	priv  ed25519.PrivateKey
	keyID string
}

// LoadOrCreateSigner reads the checkpoint signing key (an Ed25519 seed of
// ed25519.SeedSize bytes) from path, or creates it (mode 0600, folder 0700)
// if there is none, and reports whether it created it. Creation is atomic:
// of several processes starting at once, one creates the key and all use it.
//
// It refuses a key file of the wrong size, one that is not a regular file
// and, on Unix, one that group or others may access. Whoever holds this key
// can forge checkpoints: keep it out of the database's backups and away from
// the database administrator.
func LoadOrCreateSigner(path string) (*Signer, bool, error) {
	seed, err := loadSeed(path)
	if err == nil {
		return newSigner(seed), false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("audit: signing key folder: %w", err)
	}
	seed = make([]byte, ed25519.SeedSize)
	rand.Read(seed)
	created, err := durable.CreateExclusive(path, seed)
	if err != nil {
		return nil, false, fmt.Errorf("audit: create signing key %s: %w", path, err)
	}
	if !created { // another process won the race: use its key
		if seed, err = loadSeed(path); err != nil {
			return nil, false, err
		}
	}
	return newSigner(seed), created, nil
}

func newSigner(seed []byte) *Signer {
	priv := ed25519.NewKeyFromSeed(seed)
	return &Signer{priv: priv, keyID: KeyID(priv.Public().(ed25519.PublicKey))}
}

func loadSeed(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, err
	} else if err != nil {
		return nil, fmt.Errorf("audit: open signing key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("audit: signing key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("audit: signing key %s is not a regular file", path)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("audit: signing key %s has mode %v: group or others can access it; run chmod 600 on it", path, fi.Mode().Perm())
	}
	if fi.Size() != ed25519.SeedSize {
		return nil, fmt.Errorf("audit: signing key %s holds %d bytes, want %d", path, fi.Size(), ed25519.SeedSize)
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(f, seed); err != nil {
		return nil, fmt.Errorf("audit: read signing key: %w", err)
	}
	return seed, nil
}

// PublicKey returns the key that verifies this signer's checkpoints. Print
// it (FormatPublicKey) at set-up and keep it with the checkpoints.
func (s *Signer) PublicKey() ed25519.PublicKey {
	return s.priv.Public().(ed25519.PublicKey)
}

// KeyID returns the name of the signer's public key (see KeyID).
func (s *Signer) KeyID() string { return s.keyID }

// Sign returns a version 1 checkpoint stating that the trail's head was
// (seq, hash) at t (converted to UTC and truncated to the millisecond, the
// precision that is signed).
func (s *Signer) Sign(seq int64, hash string, t time.Time) *Checkpoint {
	c := &Checkpoint{
		Version: CheckpointVersion,
		Seq:     seq,
		Hash:    hash,
		Time:    t.UTC().Truncate(time.Millisecond),
		KeyID:   s.keyID,
	}
	c.Signature = ed25519.Sign(s.priv, c.Message())
	return c
}
