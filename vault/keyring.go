package vault

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/durable"
	"golang.org/x/crypto/chacha20poly1305"
)

// Epoch states reported by Epochs.
const (
	EpochActive    = callvault.KeyEpochActive
	EpochClosing   = callvault.KeyEpochClosing
	EpochDestroyed = callvault.KeyEpochDestroyed
)

// EpochInfo describes one key epoch in the keyring.
type EpochInfo = callvault.KeyEpochInfo

// Keyring files: EPOCH.key holds the wrapped epoch key, EPOCH.destroyed is
// the tombstone that stops a shredded epoch from being created again.
const (
	keySuffix       = ".key"
	tombstoneSuffix = ".destroyed"
	closingSuffix   = ".closing"
)

// Wrapped epoch key file: magic, format version, XChaCha20-Poly1305 nonce,
// sealed key. The associated data binds the epoch name and the version, so a
// key file renamed to another month does not unwrap.
var keyFileMagic = []byte("CVEK")

const (
	keyFileVersion = 1
	keyFileLen     = 4 + 1 + chacha20poly1305.NonceSizeX + KeySize + chacha20poly1305.Overhead
)

func keyFileAD(epoch string) []byte {
	return []byte(fmt.Sprintf("callvault/epoch-key/v%d\x00%s", keyFileVersion, epoch))
}

// validEpoch accepts "YYYY-MM" from 1970-01 to 9999-12, and the same month
// with HoldEpochPrefix.
func validEpoch(epoch string) error {
	month := strings.TrimPrefix(epoch, callvault.HoldEpochPrefix)
	t, err := time.Parse("2006-01", month)
	if err != nil || t.Format("2006-01") != month || t.Year() < 1970 {
		return callvault.Errorf(callvault.EINVALID, "key epoch %q is not a month like 2026-11 (or hold-2026-11)", epoch)
	}
	return nil
}

// EpochOpen reports whether new recordings may be encrypted under epoch:
// it is neither closing nor destroyed. It reads the keyring each time, so a
// change by another process is seen at once.
func (v *Vault) EpochOpen(epoch string) (bool, error) {
	if err := validEpoch(epoch); err != nil {
		return false, err
	}
	for _, p := range []string{v.tombstonePath(epoch), v.closingPath(epoch)} {
		if _, err := os.Stat(p); err == nil {
			return false, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("vault: keyring: %w", err)
		}
	}
	return true, nil
}

// CloseEpoch stops new encryptions under epoch (Encrypt refuses it with
// ErrEpochDestroyed; decryption still works) and returns when it was first
// closed. Retention closes an epoch when nothing uses it, and destroys it
// only once it has been closed for longer than any ingest takes: an ingest
// that chose the epoch before it closed has then either stored its row,
// which stops the destruction, or failed.
func (v *Vault) CloseEpoch(epoch string) (time.Time, error) {
	if err := validEpoch(epoch); err != nil {
		return time.Time{}, err
	}
	if _, err := durable.CreateExclusive(v.closingPath(epoch), []byte("callvault key epoch closing\n")); err != nil {
		return time.Time{}, fmt.Errorf("vault: close key epoch %s: %w", epoch, err)
	}
	fi, err := os.Stat(v.closingPath(epoch))
	if err != nil {
		return time.Time{}, fmt.Errorf("vault: close key epoch %s: %w", epoch, err)
	}
	return fi.ModTime(), nil
}

func (v *Vault) keyPath(epoch string) string { return filepath.Join(v.dir, epoch+keySuffix) }
func (v *Vault) tombstonePath(epoch string) string {
	return filepath.Join(v.dir, epoch+tombstoneSuffix)
}
func (v *Vault) closingPath(epoch string) string { return filepath.Join(v.dir, epoch+closingSuffix) }

func destroyedError(epoch string) error {
	return callvault.Wrap(callvault.ECONFLICT, ErrEpochDestroyed, fmt.Sprintf("key epoch %s destroyed", epoch))
}

// epochKey returns the unwrapped key of epoch, creating it if create is set
// and there is none. The tombstone is checked on every call, not cached, so
// that a DestroyEpoch in another process takes effect here at once.
func (v *Vault) epochKey(epoch string, create bool) ([]byte, error) {
	if err := validEpoch(epoch); err != nil {
		return nil, err
	}
	if destroyed, err := v.destroyed(epoch); err != nil {
		return nil, err
	} else if destroyed {
		v.mu.Lock()
		delete(v.keys, epoch)
		v.mu.Unlock()
		return nil, destroyedError(epoch)
	}

	if create {
		if _, err := os.Stat(v.closingPath(epoch)); err == nil {
			return nil, callvault.Wrap(callvault.ECONFLICT, ErrEpochDestroyed, fmt.Sprintf("key epoch %s is closed to new recordings", epoch))
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("vault: keyring: %w", err)
		}
	}

	v.mu.Lock()
	defer v.mu.Unlock()
	if k, ok := v.keys[epoch]; ok {
		return k, nil
	}
	k, err := v.readEpochKey(epoch)
	if errors.Is(err, fs.ErrNotExist) {
		if !create {
			return nil, callvault.Wrap(callvault.EINTERNAL,
				fmt.Errorf("%w: no key file for epoch %s in %s", ErrDecrypt, epoch, v.dir),
				fmt.Sprintf("key epoch %s has no key", epoch))
		}
		k, err = v.createEpochKey(epoch)
	}
	if err != nil {
		return nil, err
	}
	v.keys[epoch] = k
	return k, nil
}

func (v *Vault) destroyed(epoch string) (bool, error) {
	_, err := os.Stat(v.tombstonePath(epoch))
	if err == nil {
		return true, nil
	} else if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, fmt.Errorf("vault: keyring: %w", err)
}

// createEpochKey creates the key file of epoch. If another process (or
// another Vault on the same keyring) creates it first, its key is used.
func (v *Vault) createEpochKey(epoch string) ([]byte, error) {
	key := make([]byte, KeySize)
	rand.Read(key)
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	rand.Read(nonce)
	file := make([]byte, 0, keyFileLen)
	file = append(file, keyFileMagic...)
	file = append(file, keyFileVersion)
	file = append(file, nonce...)
	file = v.kek.Seal(file, nonce, key, keyFileAD(epoch))

	path := v.keyPath(epoch)
	created, err := durable.CreateExclusive(path, file)
	if err != nil {
		return nil, fmt.Errorf("vault: create key epoch %s: %w", epoch, err)
	}
	if !created {
		if key, err = v.readEpochKey(epoch); err != nil {
			return nil, err
		}
	}
	// A DestroyEpoch that ran between our tombstone check and the link did
	// not see this key file; shred it rather than resurrect the month.
	if destroyed, err := v.destroyed(epoch); err != nil {
		return nil, err
	} else if destroyed {
		if created {
			if err := shred(path); err != nil {
				return nil, fmt.Errorf("vault: shred key epoch %s: %w", epoch, err)
			}
		}
		return nil, destroyedError(epoch)
	}
	return key, nil
}

func (v *Vault) readEpochKey(epoch string) ([]byte, error) {
	file, err := os.ReadFile(v.keyPath(epoch))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, err
	} else if err != nil {
		return nil, fmt.Errorf("vault: read key epoch %s: %w", epoch, err)
	}
	if len(file) != keyFileLen || !bytes.HasPrefix(file, keyFileMagic) || file[4] != keyFileVersion {
		return nil, callvault.Wrap(callvault.EINTERNAL,
			fmt.Errorf("%w: key file of epoch %s is malformed (%d bytes)", ErrDecrypt, epoch, len(file)),
			fmt.Sprintf("key epoch %s cannot be read", epoch))
	}
	nonce, sealed := file[5:5+chacha20poly1305.NonceSizeX], file[5+chacha20poly1305.NonceSizeX:]
	key, err := v.kek.Open(nil, nonce, sealed, keyFileAD(epoch))
	if err != nil {
		return nil, callvault.Wrap(callvault.EINTERNAL,
			fmt.Errorf("%w: key epoch %s does not unwrap: wrong KEK, or the key file is damaged or renamed", ErrDecrypt, epoch),
			fmt.Sprintf("key epoch %s cannot be unwrapped", epoch))
	}
	return key, nil
}

// DestroyEpoch crypto-shreds a key epoch: every recording encrypted under it
// becomes undecryptable, here and in any backup of the blobs. It first writes
// a tombstone, so the epoch is never silently created again, then overwrites
// and removes the key file. Destroying an epoch that has no key (or was
// destroyed already) just leaves the tombstone.
//
// Encryptions already running under the epoch in other processes are not
// stopped; destroy only months that no longer receive recordings.
func (v *Vault) DestroyEpoch(epoch string) error {
	if err := validEpoch(epoch); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, err := durable.CreateExclusive(v.tombstonePath(epoch), []byte("callvault key epoch destroyed\n")); err != nil {
		return fmt.Errorf("vault: destroy key epoch %s: tombstone: %w", epoch, err)
	}
	delete(v.keys, epoch)
	leftovers, _ := filepath.Glob(filepath.Join(v.dir, epoch+keySuffix+".tmp-*"))
	for _, p := range append([]string{v.keyPath(epoch)}, leftovers...) {
		if err := shred(p); err != nil {
			return fmt.Errorf("vault: destroy key epoch %s: %w", epoch, err)
		}
	}
	if err := durable.SyncDir(v.dir); err != nil {
		return fmt.Errorf("vault: destroy key epoch %s: %w", epoch, err)
	}
	return nil
}

// Epochs lists the keyring's epochs in order.
func (v *Vault) Epochs() ([]EpochInfo, error) {
	entries, err := os.ReadDir(v.dir)
	if err != nil {
		return nil, fmt.Errorf("vault: keyring: %w", err)
	}
	byEpoch := make(map[string]*EpochInfo)
	info := func(epoch string) *EpochInfo {
		if e := byEpoch[epoch]; e != nil {
			return e
		}
		e := &EpochInfo{Epoch: epoch, State: EpochActive}
		byEpoch[epoch] = e
		return e
	}
	for _, de := range entries {
		name := de.Name()
		epoch, isKey := strings.CutSuffix(name, keySuffix)
		isClosing := false
		if !isKey {
			var isTomb bool
			if epoch, isTomb = strings.CutSuffix(name, tombstoneSuffix); !isTomb {
				if epoch, isClosing = strings.CutSuffix(name, closingSuffix); !isClosing {
					continue
				}
			}
		}
		if validEpoch(epoch) != nil {
			continue
		}
		fi, err := de.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("vault: keyring: %w", err)
		}
		e := info(epoch)
		switch {
		case isKey:
			e.CreatedAt = fi.ModTime()
		case isClosing:
			e.ClosedAt = fi.ModTime()
		default:
			e.DestroyedAt = fi.ModTime()
		}
	}
	out := make([]EpochInfo, 0, len(byEpoch))
	for _, e := range byEpoch {
		switch {
		case !e.DestroyedAt.IsZero():
			// A key file next to a tombstone is a leftover of a crash during
			// DestroyEpoch; it is never used.
			e.State, e.CreatedAt, e.ClosedAt = EpochDestroyed, time.Time{}, time.Time{}
		case !e.ClosedAt.IsZero():
			e.State = EpochClosing
		}
		out = append(out, *e)
	}
	slices.SortFunc(out, func(a, b EpochInfo) int { return strings.Compare(a.Epoch, b.Epoch) })
	return out, nil
}
