package totp

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"image/png"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// rfcSecret is the SHA1 key of RFC 6238 appendix B, "12345678901234567890",
// base32-encoded.
var rfcSecret = base32.StdEncoding.EncodeToString([]byte("12345678901234567890"))

// RFC 6238 appendix B, SHA1 column, reduced to 6 digits: TOTP values are
// the HOTP truncation modulo 10^digits, so the 6-digit code is the last six
// digits of the 8-digit one.
var rfcVectors = []struct {
	unix  int64
	code8 string
}{
	{59, "94287082"},
	{1111111109, "07081804"},
	{1111111111, "14050471"},
	{1234567890, "89005924"},
	{2000000000, "69279037"},
	{20000000000, "65353130"},
}

func TestCheck_RFC6238(t *testing.T) {
	if rfcSecret != "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" {
		t.Fatalf("rfcSecret = %s", rfcSecret)
	}
	for _, v := range rfcVectors {
		now := time.Unix(v.unix, 0)
		code := v.code8[2:]
		step, ok := Check(rfcSecret, code, now)
		if !ok || step != v.unix/30 {
			t.Errorf("Check(%s) at T=%d = %d, %v; want %d, true", code, v.unix, step, ok, v.unix/30)
		}
		// pquerna agrees with the vector and with us.
		if got, err := totp.GenerateCodeCustom(rfcSecret, now, opts); err != nil || got != code {
			t.Errorf("pquerna GenerateCodeCustom at T=%d = %q, %v; want %q", v.unix, got, err, code)
		}
		if ok, err := totp.ValidateCustom(code, rfcSecret, now, opts); err != nil || !ok {
			t.Errorf("pquerna ValidateCustom(%s) at T=%d = %v, %v", code, v.unix, ok, err)
		}
		// 8 digits are not 6.
		if _, ok := Check(rfcSecret, v.code8, now); ok {
			t.Errorf("Check(%s) (8 digits) at T=%d accepted", v.code8, v.unix)
		}
	}
}

func TestStep(t *testing.T) {
	tests := []struct {
		t    time.Time
		want int64
	}{
		{time.Unix(0, 0), 0},
		{time.Unix(29, 999999999), 0},
		{time.Unix(30, 0), 1},
		{time.Unix(59, 0), 1},
		{time.Unix(-1, 0), -1},
		{time.Unix(-30, 0), -1},
		{time.Unix(-31, 0), -2},
		{time.Unix(1111111111, 0), 37037037},
	}
	for _, tt := range tests {
		if got := Step(tt.t); got != tt.want {
			t.Errorf("Step(%d) = %d, want %d", tt.t.Unix(), got, tt.want)
		}
	}
}

// TestCheck_window checks, at both edges of a time step, that codes of the
// previous, current and next steps are accepted and report their own step,
// and that codes two steps away are refused.
func TestCheck_window(t *testing.T) {
	secret, _, err := Generate("alice")
	if err != nil {
		t.Fatal(err)
	}
	const n = 59_000_000 // a step in 2026
	code := func(s int64) string {
		c, err := codeAt(secret, s)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, now := range []time.Time{
		time.Unix(n*30, 0),                       // first instant of step n
		time.Unix(n*30+29, int64(time.Second-1)), // last instant of step n
	} {
		if Step(now) != n {
			t.Fatalf("Step(%v) = %d, want %d", now, Step(now), n)
		}
		accepted := map[string]bool{}
		for s := int64(n - 1); s <= n+1; s++ {
			c := code(s)
			accepted[c] = true
			got, ok := Check(secret, c, now)
			// A code shared by two steps reports the later one.
			want := s
			for later := s + 1; later <= n+1; later++ {
				if code(later) == c {
					want = later
				}
			}
			if !ok || got != want {
				t.Errorf("at %v: Check(code of step n%+d) = %d, %v; want %d, true", now.Format(time.RFC3339Nano), s-n, got, ok, want)
			}
		}
		for _, s := range []int64{n - 3, n - 2, n + 2, n + 3} {
			if c := code(s); !accepted[c] {
				if got, ok := Check(secret, c, now); ok {
					t.Errorf("at %v: Check(code of step n%+d) = %d, true; want refused", now.Format(time.RFC3339Nano), s-n, got)
				}
			}
		}
	}
	// The edge between steps: a millisecond before step n+2 starts, the
	// code of n is still accepted (n+1 is current); at its start, not.
	c := code(n)
	if _, ok := Check(secret, c, time.Unix((n+2)*30, 0).Add(-time.Millisecond)); !ok {
		t.Errorf("code of step n refused just before step n+2")
	}
	if _, ok := Check(secret, c, time.Unix((n+2)*30, 0)); ok && code(n+1) != c && code(n+2) != c && code(n+3) != c {
		t.Errorf("code of step n accepted in step n+2")
	}
}

func TestCheck_input(t *testing.T) {
	now := time.Unix(59, 0) // RFC code 287082, step 1
	tests := []struct {
		secret, code string
		ok           bool
	}{
		{rfcSecret, "287082", true},
		{rfcSecret, " 287 082 ", true},
		{rfcSecret, "287-082", true},
		{rfcSecret, "2-8-7-0-8-2", true},
		{rfcSecret, "287\t082\n", true},
		{strings.ToLower(rfcSecret), "287082", true},
		{rfcSecret, "", false},
		{rfcSecret, "28708", false},
		{rfcSecret, "2870820", false},
		{rfcSecret, "94287082", false},
		{rfcSecret, "28708a", false},
		{rfcSecret, "+87082", false},
		{rfcSecret, "-287082-x", false},
		{rfcSecret, "２８７０８２", false}, // full-width digits
		{rfcSecret, "٢٨٧٠٨٢", false}, // Arabic-Indic digits
		{rfcSecret, "287082" + strings.Repeat(" ", 100), false},
		{rfcSecret, "000000", false},
		{"", "287082", false},
		{"   ", "287082", false},
		{"not base32!", "287082", false},
		{"GEZDGNBVGY3TQOJQ1", "287082", false},
	}
	for _, tt := range tests {
		step, ok := Check(tt.secret, tt.code, now)
		if ok != tt.ok || (ok && step != 1) {
			t.Errorf("Check(%q, %q) = %d, %v; want ok %v (step 1)", tt.secret, tt.code, step, ok, tt.ok)
		}
	}
	// Before 1970 there are no steps to match; nothing panics.
	if _, ok := Check(rfcSecret, "287082", time.Unix(-100, 0)); ok {
		t.Errorf("Check before 1970 accepted a code")
	}
}

func TestGenerate(t *testing.T) {
	secret, uri, err := Generate("alice.smith")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil || len(raw) != secretSize {
		t.Errorf("secret %q decodes to %d bytes, %v; want %d", secret, len(raw), err, secretSize)
	}
	if uri != URI(secret, "alice.smith") {
		t.Errorf("Generate URI %q != URI() %q", uri, URI(secret, "alice.smith"))
	}
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/callvault:alice.smith" ||
		q.Get("secret") != secret || q.Get("issuer") != "callvault" || q.Get("algorithm") != "SHA1" ||
		q.Get("digits") != "6" || q.Get("period") != "30" {
		t.Errorf("URI = %s", uri)
	}
	key, err := otp.NewKeyFromURL(uri)
	if err != nil || key.Secret() != secret || key.Issuer() != Issuer || key.AccountName() != "alice.smith" ||
		key.Period() != 30 || key.Digits() != otp.DigitsSix || key.Algorithm() != otp.AlgorithmSHA1 {
		t.Errorf("pquerna reads URI as %+v, %v", key, err)
	}
	// An app's code for now passes Check.
	now := time.Now()
	c, err := totp.GenerateCode(secret, now)
	if err != nil {
		t.Fatal(err)
	}
	if step, ok := Check(secret, c, now); !ok || step != Step(now) {
		t.Errorf("Check(app code) = %d, %v; want %d, true", step, ok, Step(now))
	}
	if other, _, _ := Generate("alice.smith"); other == secret {
		t.Errorf("Generate returned the same secret twice")
	}
	for _, bad := range []string{"", "a:b"} {
		if _, _, err := Generate(bad); err == nil {
			t.Errorf("Generate(%q) succeeded", bad)
		}
	}
}

func TestQRDataURL(t *testing.T) {
	_, uri, err := Generate("alice")
	if err != nil {
		t.Fatal(err)
	}
	d, err := QRDataURL(uri)
	if err != nil {
		t.Fatal(err)
	}
	b64, ok := strings.CutPrefix(d, "data:image/png;base64,")
	if !ok {
		t.Fatalf("QRDataURL = %.40q..., want a PNG data URL", d)
	}
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if r := img.Bounds(); r.Dx() != qrSize || r.Dy() != qrSize {
		t.Errorf("QR image is %v, want %d×%d", r, qrSize, qrSize)
	}
	for _, bad := range []string{"", "https://example.org/", "otpauth://hotp/callvault:alice?secret=AAAA", "otpauth://totp/callvault:alice", "%zz"} {
		if _, err := QRDataURL(bad); err == nil {
			t.Errorf("QRDataURL(%q) succeeded", bad)
		}
	}
}

func TestRecoveryCodes(t *testing.T) {
	codes, hashes := RecoveryCodes(10)
	if len(codes) != 10 || len(hashes) != 10 {
		t.Fatalf("RecoveryCodes(10) = %d codes, %d hashes", len(codes), len(hashes))
	}
	format := regexp.MustCompile(`^[` + recoveryAlphabet + `]{4}-[` + recoveryAlphabet + `]{4}-[` + recoveryAlphabet + `]{4}$`)
	seen := map[string]bool{}
	for i, c := range codes {
		if !format.MatchString(c) {
			t.Errorf("code %q does not look like xxxx-xxxx-xxxx", c)
		}
		if seen[c] {
			t.Errorf("code %q repeated", c)
		}
		seen[c] = true
		if hashes[i] != HashRecoveryCode(c) {
			t.Errorf("hash %d = %s, want HashRecoveryCode(%s)", i, hashes[i], c)
		}
		// What a user may type instead.
		for _, typed := range []string{strings.ToUpper(c), strings.ReplaceAll(c, "-", " "), " " + strings.ReplaceAll(c, "-", "") + " "} {
			if HashRecoveryCode(typed) != hashes[i] {
				t.Errorf("HashRecoveryCode(%q) differs from that of %q", typed, c)
			}
		}
	}
	if c, h := RecoveryCodes(0); len(c) != 0 || len(h) != 0 {
		t.Errorf("RecoveryCodes(0) = %v, %v", c, h)
	}
	// Every character of the alphabet is used, and none outside it.
	many, _ := RecoveryCodes(1000)
	all := strings.ReplaceAll(strings.Join(many, ""), "-", "")
	for _, r := range recoveryAlphabet {
		if n := strings.Count(all, string(r)); n < 200 { // expected 387
			t.Errorf("%q appears %d times in 12000 characters", r, n)
		}
	}
	if strings.ContainsAny(all, "01ilo") || len(recoveryAlphabet) != 31 {
		t.Errorf("ambiguous characters in codes or alphabet")
	}
}

func TestHashRecoveryCode(t *testing.T) {
	sum := sha256.Sum256([]byte("abcd2345wxyz"))
	want := hex.EncodeToString(sum[:])
	for _, in := range []string{"abcd-2345-wxyz", "ABCD-2345-WXYZ", " abcd 2345 wxyz\n", "abcd2345wxyz"} {
		if got := HashRecoveryCode(in); got != want {
			t.Errorf("HashRecoveryCode(%q) = %s, want %s", in, got, want)
		}
	}
	if HashRecoveryCode("abcd-2345-wxyz") == HashRecoveryCode("abcd-2345-wxy2") {
		t.Errorf("different codes hash alike")
	}
}

// FuzzCheck: Check never panics, accepts only six digits (after removing
// spaces and dashes) within one step of now, reports the step whose code it
// is, and agrees with pquerna's ValidateCustom.
func FuzzCheck(f *testing.F) {
	for _, v := range rfcVectors {
		f.Add(rfcSecret, v.code8[2:], v.unix)
		f.Add(rfcSecret, v.code8, v.unix)
	}
	f.Add("JBSWY3DPEHPK3PXP", "123 456", int64(1772442000))
	f.Add("", "000000", int64(0))
	f.Add("!!", "-1-2-3-4-5-6-", int64(-9))
	f.Fuzz(func(t *testing.T, secret, code string, unix int64) {
		if unix > 1<<40 || unix < -(1<<40) {
			unix %= 1 << 40
		}
		now := time.Unix(unix, 0)
		step, ok := Check(secret, code, now)
		norm, valid := normCode(code)
		if ok {
			if !valid {
				t.Fatalf("Check accepted %q, which is not six digits", code)
			}
			if d := step - Step(now); d < -1 || d > 1 {
				t.Fatalf("Check(%q) at %d matched step %d, %d steps from now", code, unix, step, d)
			}
			if c, err := codeAt(secret, step); err != nil || c != norm {
				t.Fatalf("Check(%q) reported step %d, whose code is %q (%v)", code, step, c, err)
			}
		}
		// pquerna wraps negative counters around; compare where it is sane.
		if valid && unix >= 60 && strings.TrimSpace(secret) != "" {
			theirs, _ := totp.ValidateCustom(norm, secret, now, opts)
			if theirs != ok {
				t.Fatalf("Check(%q, %q) at %d = %v, pquerna says %v", secret, code, unix, ok, theirs)
			}
		}
	})
}
