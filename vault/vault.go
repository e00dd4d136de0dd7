// Package vault encrypts recordings before they reach storage. It implements
// callvault.Vault with age (filippo.io/age): 64 KiB authenticated chunks, so a
// player can seek in a recording without decrypting all of it.
//
// # Key hierarchy
//
//	KEK (32 bytes, key file outside the database and blob store)
//	 └─ epoch key per calendar month of recording start, "2026-11"
//	     (random, stored wrapped by the KEK in KEYRING/2026-11.key)
//	     └─ file key per recording (random, made by age, stored in the
//	        recording's own age header wrapped by the epoch key, bound to
//	        the recording id)
//
// Why three levels: retention deletes whole months. Destroying one 77-byte
// epoch key file (DestroyEpoch) crypto-shreds every recording of that month
// at once, including copies in blob-store backups that can never be edited.
// The KEK only protects the keyring at rest, so it can live in a key file
// (LoadOrCreateKEK) or later in a KMS without re-encrypting any audio.
//
// # Binding to the recording
//
// The age header carries one stanza of type "callvault-epoch" with arguments
// [epoch, "1"]; its body is XChaCha20-Poly1305(epoch key, nonce, file key)
// with associated data "callvault/v1\x00" + epoch + "\x00" + recording id.
// The recording id is never read from the ciphertext: Decrypt is told which
// recording it expects, so a blob copied to another recording's key fails.
//
// # Errors
//
//   - EINVALID: a malformed recording id or epoch name.
//   - ECONFLICT wrapping ErrEpochDestroyed: the epoch was shredded; Encrypt
//     refuses it and Decrypt cannot succeed.
//   - EINTERNAL wrapping ErrDecrypt: the ciphertext does not open for this
//     (id, epoch): it was moved, tampered with or truncated, the epoch key
//     is missing, or the KEK is wrong. Reads from the returned ReaderAt fail
//     the same way when a chunk was altered. This is EINTERNAL, not
//     EINVALID or ENOTFOUND, because callvault made both the ciphertext and
//     the request: a mismatch is corruption or a bug for an operator to see,
//     never the client's fault.
//   - Errors of the blob store (a *callvault.Error from src) pass through.
package vault

import (
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"filippo.io/age"
	"github.com/callvault/callvault"
	"golang.org/x/crypto/chacha20poly1305"
)

// Sentinels for errors.Is; the returned errors are *callvault.Error.
var (
	// ErrDecrypt: the ciphertext does not decrypt for the given recording id
	// and epoch, or a chunk of it fails authentication.
	ErrDecrypt = errors.New("ciphertext does not decrypt for this recording")
	// ErrEpochDestroyed: the key epoch was crypto-shredded.
	ErrEpochDestroyed = errors.New("key epoch destroyed")
)

// KeySize is the size of the KEK and of epoch keys.
const KeySize = 32

// maxIDLen bounds recording ids (UUIDs in practice).
const maxIDLen = 256

// Vault is a callvault.Vault over a keyring folder. It is safe for concurrent
// use, and several processes may share one keyring.
type Vault struct {
	dir string
	kek cipher.AEAD // XChaCha20-Poly1305 under the KEK

	secret []byte // HKDF-Extract of the KEK, for Seal and Open (secret.go)

	mu   sync.Mutex        // serialises keyring changes in this process
	keys map[string][]byte // unwrapped epoch keys
}

var _ callvault.Vault = (*Vault)(nil)

// New returns a Vault whose epoch keys live in keyringDir (created 0700),
// wrapped by kek (KeySize bytes, see LoadOrCreateKEK).
func New(kek []byte, keyringDir string) (*Vault, error) {
	if len(kek) != KeySize {
		return nil, fmt.Errorf("vault: KEK is %d bytes, want %d", len(kek), KeySize)
	}
	aead, err := chacha20poly1305.NewX(kek) // copies the key
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	if err := mkdirPrivate(keyringDir); err != nil {
		return nil, fmt.Errorf("vault: keyring: %w", err)
	}
	return &Vault{dir: keyringDir, kek: aead, secret: secretPRK(kek), keys: make(map[string][]byte)}, nil
}

// Encrypt returns a writer that encrypts recording id to dst under epoch,
// creating the epoch key on first use. Close flushes the last chunk.
// ECONFLICT (ErrEpochDestroyed) if the epoch was destroyed.
func (v *Vault) Encrypt(dst io.Writer, id, epoch string) (io.WriteCloser, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	key, err := v.epochKey(epoch, true)
	if err != nil {
		return nil, err
	}
	w, err := age.Encrypt(dst, &recipient{epoch: epoch, id: id, key: key})
	if err != nil {
		return nil, fmt.Errorf("vault: encrypt %s: %w", id, err)
	}
	return w, nil
}

// Decrypt returns random-access plaintext of recording id, encrypted under
// epoch, from ciphertext src of size bytes. It never creates an epoch key.
// See the package comment for errors.
func (v *Vault) Decrypt(src io.ReaderAt, size int64, id, epoch string) (io.ReaderAt, int64, error) {
	if err := validID(id); err != nil {
		return nil, 0, err
	}
	key, err := v.epochKey(epoch, false)
	if err != nil {
		return nil, 0, err
	}
	r, n, err := age.DecryptReaderAt(src, size, newIdentity(epoch, id, key))
	if err != nil {
		return nil, 0, decryptError(id, err)
	}
	return &plaintext{r: r, size: n, id: id}, n, nil
}

// decryptError passes through errors of the blob store and reports anything
// else (authentication, parsing, truncation) as ErrDecrypt.
func decryptError(id string, cause error) error {
	var e *callvault.Error
	if errors.As(cause, &e) {
		return cause
	}
	return callvault.Wrap(callvault.EINTERNAL, fmt.Errorf("%w: %w", ErrDecrypt, cause),
		fmt.Sprintf("recording %s cannot be decrypted", id))
}

// plaintext maps chunk authentication failures to ErrDecrypt and gives
// os.File semantics at and past the end.
type plaintext struct {
	r    io.ReaderAt
	size int64
	id   string
}

func (p *plaintext) ReadAt(b []byte, off int64) (int, error) {
	switch {
	case off < 0:
		return 0, callvault.Errorf(callvault.EINVALID, "negative offset %d", off)
	case len(b) == 0:
		return 0, nil
	case off >= p.size:
		return 0, io.EOF
	}
	n, err := p.r.ReadAt(b, off)
	if err != nil && err != io.EOF {
		return n, decryptError(p.id, err)
	}
	return n, err
}

func validID(id string) error {
	if id == "" || len(id) > maxIDLen || strings.ContainsRune(id, 0) {
		return callvault.Errorf(callvault.EINVALID, "recording id %q is empty, too long or contains NUL", id)
	}
	return nil
}
