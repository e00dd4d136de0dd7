package audit

import (
	"crypto/ed25519"
	"fmt"
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
	seed, created, err := durable.LoadOrCreateSecret(path, ed25519.SeedSize, "audit signing key")
	if err != nil {
		return nil, false, fmt.Errorf("audit: %w", err)
	}
	return newSigner(seed), created, nil
}

func newSigner(seed []byte) *Signer {
	priv := ed25519.NewKeyFromSeed(seed)
	return &Signer{priv: priv, keyID: KeyID(priv.Public().(ed25519.PublicKey))}
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
