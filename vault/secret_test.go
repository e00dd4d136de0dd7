package vault_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/vault"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"
)

const sealOverhead = 1 + 24 + 16 // version, nonce, tag

func TestSeal_roundTrip(t *testing.T) {
	v, _, _ := newVault(t)
	for _, plain := range [][]byte{{}, []byte("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"), randBytes(4096)} {
		sealed, err := v.Seal(plain, "totp:42")
		if err != nil {
			t.Fatalf("Seal(%d bytes): %v", len(plain), err)
		}
		if len(sealed) != sealOverhead+len(plain) || sealed[0] != 1 {
			t.Errorf("Seal(%d bytes) = %d bytes starting %#x; want %d starting 0x1", len(plain), len(sealed), sealed[0], sealOverhead+len(plain))
		}
		if len(plain) > 0 && bytes.Contains(sealed, plain) {
			t.Errorf("sealed value contains the plaintext")
		}
		got, err := v.Open(sealed, "totp:42")
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("Open(Seal(%d bytes)) = %d bytes, %v", len(plain), len(got), err)
		}
		again, _ := v.Seal(plain, "totp:42")
		if bytes.Equal(again, sealed) {
			t.Errorf("two Seals of the same value are equal: the nonce is not random")
		}
	}
}

// TestSeal_format opens a sealed value from the documented format alone:
// HKDF-SHA256(KEK, no salt, "callvault/secret/v1/"+purpose) as the
// XChaCha20-Poly1305 key, version byte and purpose as associated data.
func TestSeal_format(t *testing.T) {
	v, kek, _ := newVault(t)
	sealed, err := v.Seal([]byte("secret"), "totp:7")
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, chacha20poly1305.KeySize)
	io.ReadFull(hkdf.New(sha256.New, kek, nil, []byte("callvault/secret/v1/totp:7")), key)
	aead, _ := chacha20poly1305.NewX(key)
	plain, err := aead.Open(nil, sealed[1:25], sealed[25:], append([]byte{1}, "totp:7"...))
	if err != nil || string(plain) != "secret" {
		t.Errorf("independent open = %q, %v", plain, err)
	}
}

func TestOpen_refused(t *testing.T) {
	v, kek, dir := newVault(t)
	sealed, err := v.Seal([]byte("JBSWY3DPEHPK3PXP"), "totp:42")
	if err != nil {
		t.Fatal(err)
	}
	other, _, _ := newVault(t) // another KEK
	sameKEK, err := vault.New(kek, filepath.Join(filepath.Dir(dir), "other-keyring"))
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 0x01
		return b
	}
	tests := []struct {
		name    string
		v       *vault.Vault
		sealed  []byte
		purpose string
		code    string
	}{
		{"ok", v, sealed, "totp:42", ""},
		{"same KEK, other keyring", sameKEK, sealed, "totp:42", ""},
		{"another user", v, sealed, "totp:43", callvault.EINTERNAL},
		{"prefix of purpose", v, sealed, "totp:4", callvault.EINTERNAL},
		{"longer purpose", v, sealed, "totp:420", callvault.EINTERNAL},
		{"other use", v, sealed, "totp-enrol:42", callvault.EINTERNAL},
		{"empty purpose", v, sealed, "", callvault.EINVALID},
		{"another KEK", other, sealed, "totp:42", callvault.EINTERNAL},
		{"version changed", v, flip(0), "totp:42", callvault.EINTERNAL},
		{"nonce changed", v, flip(1), "totp:42", callvault.EINTERNAL},
		{"ciphertext changed", v, flip(len(sealed) - 20), "totp:42", callvault.EINTERNAL},
		{"tag changed", v, flip(len(sealed) - 1), "totp:42", callvault.EINTERNAL},
		{"truncated", v, sealed[:len(sealed)-1], "totp:42", callvault.EINTERNAL},
		{"extended", v, append(bytes.Clone(sealed), 0), "totp:42", callvault.EINTERNAL},
		{"only the header", v, sealed[:25], "totp:42", callvault.EINTERNAL},
		{"empty", v, nil, "totp:42", callvault.EINTERNAL},
	}
	for _, tt := range tests {
		got, err := tt.v.Open(tt.sealed, tt.purpose)
		if c := callvault.ErrorCode(err); c != tt.code {
			t.Errorf("%s: Open = %q, %v (code %q); want code %q", tt.name, got, err, c, tt.code)
			continue
		}
		if tt.code == callvault.EINTERNAL && !errors.Is(err, vault.ErrSealed) {
			t.Errorf("%s: error %v is not ErrSealed", tt.name, err)
		}
		if tt.code == "" && string(got) != "JBSWY3DPEHPK3PXP" {
			t.Errorf("%s: Open = %q", tt.name, got)
		}
	}
	// Every single-bit change anywhere is caught.
	for i := range len(sealed) * 8 {
		b := bytes.Clone(sealed)
		b[i/8] ^= 1 << (i % 8)
		if _, err := v.Open(b, "totp:42"); err == nil {
			t.Fatalf("Open succeeded with bit %d flipped", i)
		}
	}
	if _, err := v.Seal([]byte("x"), ""); callvault.ErrorCode(err) != callvault.EINVALID {
		t.Errorf("Seal(empty purpose) = %v, want EINVALID", err)
	}
}
