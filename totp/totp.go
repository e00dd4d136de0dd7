// Package totp is callvault's second factor: time-based one-time passwords
// (RFC 6238) as authenticator apps make them, and single-use recovery codes.
//
// It wraps github.com/pquerna/otp/totp with the one set of parameters
// callvault uses, which every common app supports: HMAC-SHA1, 6 digits, a
// 30-second period, codes accepted from the previous, current and next time
// step (±1 step of clock skew), issuer "callvault".
//
// # Replay
//
// A code stays valid for up to three time steps, and the library's Validate
// does not remember what was used. Check therefore reports which time step
// a code belongs to; the caller records it (callvault.MFAService.UseTOTPStep)
// and refuses any step that is not after the last one used, so each code
// signs in at most once, even when two requests race.
//
// # Recovery codes
//
// RecoveryCodes makes codes like "k7dm-2xqa-9pwe" from 31 characters that
// cannot be mistaken for one another (no 0/o, 1/l/i), about 59 bits each,
// and returns them with their SHA-256 hex digests, the only form stored.
// HashRecoveryCode digests what a user types, ignoring case, spaces and
// dashes.
package totp

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"image/png"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// Parameters. Changing any of them invalidates every enrolled
// authenticator.
const (
	Issuer = "callvault"
	Digits = 6
	Period = 30 * time.Second
	Skew   = 1 // time steps accepted either side of the current one

	secretSize = 20 // bytes: the HMAC-SHA1 block-friendly size RFC 4226 recommends
	qrSize     = 256
)

var opts = totp.ValidateOpts{
	Period:    uint(Period / time.Second),
	Skew:      Skew,
	Digits:    otp.DigitsSix,
	Algorithm: otp.AlgorithmSHA1,
}

// Generate makes a new random secret for account (the user's login) and
// returns it base32-encoded (no padding), with the otpauth:// URI an
// authenticator app enrols from.
func Generate(account string) (secret string, uri string, err error) {
	if err := validAccount(account); err != nil {
		return "", "", err
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      Issuer,
		AccountName: account,
		Period:      opts.Period,
		SecretSize:  secretSize,
		Digits:      opts.Digits,
		Algorithm:   opts.Algorithm,
	})
	if err != nil {
		return "", "", fmt.Errorf("totp: generate: %w", err)
	}
	return key.Secret(), URI(key.Secret(), account), nil
}

// URI returns the otpauth:// URI of an existing secret for account, as
// Generate does for a new one (say, to show the enrolment QR code again).
func URI(secret, account string) string {
	secret = strings.ToUpper(strings.ReplaceAll(secret, " ", ""))
	v := url.Values{}
	v.Set("secret", secret)
	v.Set("issuer", Issuer)
	v.Set("period", fmt.Sprint(opts.Period))
	v.Set("algorithm", opts.Algorithm.String())
	v.Set("digits", opts.Digits.String())
	u := url.URL{Scheme: "otpauth", Host: "totp", Path: "/" + Issuer + ":" + account, RawQuery: v.Encode()}
	return u.String()
}

// validAccount refuses what the key URI label cannot carry: the issuer and
// the account are separated by a colon.
func validAccount(account string) error {
	if account == "" || strings.ContainsAny(account, ":\x00") {
		return fmt.Errorf("totp: account %q is empty or contains ':'", account)
	}
	return nil
}

// QRDataURL returns a 256×256 PNG QR code of uri, an otpauth:// URI, as a
// data URL for an <img> on the enrolment page.
func QRDataURL(uri string) (string, error) {
	key, err := otp.NewKeyFromURL(uri)
	if err != nil {
		return "", fmt.Errorf("totp: QR code: %w", err)
	}
	if key.Type() != "totp" || key.Secret() == "" {
		return "", errors.New("totp: QR code: not an otpauth://totp/ URI with a secret")
	}
	img, err := key.Image(qrSize, qrSize)
	if err != nil {
		return "", fmt.Errorf("totp: QR code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return "", fmt.Errorf("totp: QR code: %w", err)
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}

// Step returns the time step t falls in (floor of Unix seconds / 30).
func Step(t time.Time) int64 {
	s, p := t.Unix(), int64(Period/time.Second)
	step := s / p
	if s%p < 0 {
		step--
	}
	return step
}

// Check reports whether code is the code of secret (base32) for the time
// step of now or the one before or after, and which step it matched. The
// caller must record the step (MFAService.UseTOTPStep) and refuse a step
// that is not after the last one used: Check itself does not prevent
// replay.
//
// Spaces and dashes in code are ignored ("123 456"); anything but exactly
// six digits then fails. All three candidate steps are computed and compared
// in constant time. Should one code belong to two of them (about one chance
// in a million), the later step is reported, which makes more codes
// unusable afterwards, never fewer.
func Check(secret, code string, now time.Time) (step int64, ok bool) {
	c, valid := normCode(code)
	if !valid || strings.TrimSpace(secret) == "" {
		return 0, false
	}
	cur := Step(now)
	found := 0
	for s := cur - Skew; s <= cur+Skew; s++ {
		if s < 0 {
			continue // before 1970: no such step
		}
		want, err := codeAt(secret, s)
		if err != nil {
			return 0, false // the secret is not base32
		}
		match := subtle.ConstantTimeCompare([]byte(want), []byte(c)) // 1 or 0
		mask := -int64(match)                                        // all ones or zero
		step = s&mask | step&^mask
		found |= match
	}
	if found == 0 {
		return 0, false
	}
	return step, true
}

// codeAt is the code of secret for time step s.
func codeAt(secret string, s int64) (string, error) {
	return totp.GenerateCodeCustom(secret, time.Unix(s*int64(opts.Period), 0), opts)
}

// normCode strips spaces and dashes and requires exactly Digits ASCII
// digits.
func normCode(code string) (string, bool) {
	if len(code) > 64 {
		return "", false
	}
	c := strings.Map(func(r rune) rune {
		if r == '-' || unicode.IsSpace(r) {
			return -1
		}
		return r
	}, code)
	if len(c) != Digits {
		return "", false
	}
	for i := 0; i < len(c); i++ {
		if c[i] < '0' || c[i] > '9' {
			return "", false
		}
	}
	return c, true
}

// recoveryAlphabet is lower-case letters and digits without the ones that
// look alike: 0 o, 1 l i.
const recoveryAlphabet = "abcdefghjkmnpqrstuvwxyz23456789"

// RecoveryCodes returns n new random recovery codes, "xxxx-xxxx-xxxx", and
// their hashes (HashRecoveryCode), in the same order.
func RecoveryCodes(n int) (codes []string, hashes []string) {
	for range n {
		var b strings.Builder
		for i := range 12 {
			if i > 0 && i%4 == 0 {
				b.WriteByte('-')
			}
			b.WriteByte(recoveryAlphabet[randIndex(len(recoveryAlphabet))])
		}
		codes = append(codes, b.String())
		hashes = append(hashes, HashRecoveryCode(b.String()))
	}
	return codes, hashes
}

// randIndex returns a uniform random number in [0, n), n ≤ 32, by rejection
// sampling 5-bit values.
func randIndex(n int) int {
	var b [1]byte
	for {
		rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
		if v := int(b[0] & 31); v < n {
			return v
		}
	}
}

// HashRecoveryCode returns the SHA-256 hex digest of code in normal form:
// lower case, without spaces or dashes.
func HashRecoveryCode(code string) string {
	c := strings.Map(func(r rune) rune {
		if r == '-' || unicode.IsSpace(r) {
			return -1
		}
		return unicode.ToLower(r)
	}, code)
	sum := sha256.Sum256([]byte(c))
	return hex.EncodeToString(sum[:])
}
