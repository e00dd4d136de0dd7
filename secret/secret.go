// Package secret makes and checks the secrets callvault hands out: argon2id
// password hashes, random bearer tokens (sessions, ingest tokens) and their
// SHA-256 digests, which are all the database ever stores.
package secret

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/callvault/callvault"
	"golang.org/x/crypto/argon2"
)

// Argon2id parameters (RFC 9106 second recommended option, with 64 MiB).
const (
	argonTime    = 3
	argonMemory  = 64 * 1024
	argonThreads = 2
	argonKeyLen  = 32
	saltLen      = 16
)

// MinPasswordLength is the shortest password accepted (NCSC guidance favours
// length over composition rules).
const MinPasswordLength = 12

// CheckPassword returns EINVALID when pw is too weak to accept.
func CheckPassword(pw, login string) error {
	if len([]rune(pw)) < MinPasswordLength {
		return callvault.Errorf(callvault.EINVALID, "password must be at least %d characters", MinPasswordLength)
	}
	if len(pw) > 1024 {
		return callvault.Errorf(callvault.EINVALID, "password is too long")
	}
	if login != "" && strings.Contains(strings.ToLower(pw), strings.ToLower(login)) {
		return callvault.Errorf(callvault.EINVALID, "password must not contain the login name")
	}
	lower := strings.ToLower(pw)
	for _, w := range blocklist {
		if strings.Contains(lower, w) && len(lower) < len(w)+6 {
			return callvault.Errorf(callvault.EINVALID, "password is too common")
		}
	}
	return nil
}

// blocklist holds fragments that make up most breached passwords; a password
// that is little more than one of them is refused.
var blocklist = []string{"password", "123456", "qwerty", "letmein", "welcome", "admin", "iloveyou", "callvault", "school", "academy"}

// HashPassword returns a PHC-format argon2id hash of pw.
func HashPassword(pw string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword reports whether pw matches hash. A malformed hash never
// matches.
func VerifyPassword(hash, pw string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var version int
	var mem uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &t, &p); err != nil || mem > 1<<20 || t > 16 || p == 0 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 || len(want) > 64 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, mem, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// DummyVerify spends the same time as a real verification, so that sign-in
// with an unknown login is not faster than with a known one.
func DummyVerify(pw string) { VerifyPassword(dummyHash, pw) }

var dummyHash, _ = HashPassword("dummy password for timing")

// Token returns a new random bearer token with a readable prefix
// ("cvs_" session, "cvi_" ingest, ...).
func Token(prefix string) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// Password returns a random one-time password that is easy to type.
func Password() string {
	const alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789"
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:5]) + "-" + string(b[5:10]) + "-" + string(b[10:15]) + "-" + string(b[15:])
}

// HashToken returns the hex SHA-256 of a token, the form the database stores.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}
