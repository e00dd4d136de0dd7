package vault

// Sealed secrets: small values other packages keep encrypted at rest (TOTP
// keys in the database), under keys derived from the KEK.

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"github.com/callvault/callvault"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"
)

// ErrSealed: a sealed secret does not open for the given purpose: it was
// made for another purpose (another user), altered or truncated, or the KEK
// is not the one that sealed it.
var ErrSealed = errors.New("sealed secret does not open for this purpose")

// Sealed format, version 1:
//
//	0x01 | nonce (24 bytes) | XChaCha20-Poly1305 ciphertext and tag
//
// The key is HKDF-SHA256(KEK, salt none, info "callvault/secret/v1/" +
// purpose); the associated data is the version byte and the purpose. A
// secret sealed for "totp:42" therefore opens only as "totp:42".
const (
	sealVersion1 = 1
	sealInfo     = "callvault/secret/v1/"
	sealOverhead = 1 + chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead
)

// secretPRK is the HKDF pseudorandom key of kek, from which Seal and Open
// expand one key per purpose. The Vault keeps it (field secret) instead of
// the KEK itself.
func secretPRK(kek []byte) []byte { return hkdf.Extract(sha256.New, kek, nil) }

// sealAEAD returns the cipher for purpose.
func (v *Vault) sealAEAD(purpose string) (cipher.AEAD, error) {
	if purpose == "" {
		return nil, callvault.Errorf(callvault.EINVALID, "sealed secret: empty purpose")
	}
	key := make([]byte, chacha20poly1305.KeySize)
	if _, err := io.ReadFull(hkdf.Expand(sha256.New, v.secret, []byte(sealInfo+purpose)), key); err != nil {
		return nil, fmt.Errorf("vault: derive secret key: %w", err)
	}
	return chacha20poly1305.NewX(key)
}

func sealAD(purpose string) []byte { return append([]byte{sealVersion1}, purpose...) }

// Seal encrypts plaintext for purpose, a label naming its use and owner
// ("totp:42"). Only Open with the same purpose and KEK returns it.
// EINVALID for an empty purpose.
func (v *Vault) Seal(plaintext []byte, purpose string) ([]byte, error) {
	aead, err := v.sealAEAD(purpose)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+chacha20poly1305.NonceSizeX, sealOverhead+len(plaintext))
	out[0] = sealVersion1
	rand.Read(out[1:]) // never fails (crypto/rand since Go 1.24)
	return aead.Seal(out, out[1:], plaintext, sealAD(purpose)), nil
}

// Open returns the plaintext of sealed, made by Seal for purpose.
// EINVALID for an empty purpose; EINTERNAL wrapping ErrSealed when it does
// not open (see ErrSealed) or has an unknown version: callvault made the
// value, so a mismatch is corruption or a bug, not the client's fault.
func (v *Vault) Open(sealed []byte, purpose string) ([]byte, error) {
	aead, err := v.sealAEAD(purpose)
	if err != nil {
		return nil, err
	}
	switch {
	case len(sealed) < sealOverhead:
		return nil, sealedError(purpose, errors.New("too short"))
	case sealed[0] != sealVersion1:
		return nil, sealedError(purpose, fmt.Errorf("unknown version %d", sealed[0]))
	}
	nonce, ct := sealed[1:1+chacha20poly1305.NonceSizeX], sealed[1+chacha20poly1305.NonceSizeX:]
	plain, err := aead.Open(nil, nonce, ct, sealAD(purpose))
	if err != nil {
		return nil, sealedError(purpose, err)
	}
	return plain, nil
}

func sealedError(purpose string, cause error) error {
	return callvault.Wrap(callvault.EINTERNAL, fmt.Errorf("%w: %w", ErrSealed, cause),
		fmt.Sprintf("a sealed secret (%s) cannot be opened", purpose))
}
