package secret

import (
	"strings"
	"testing"

	"github.com/callvault/callvault"
)

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=2$") {
		t.Errorf("HashPassword = %q, want an argon2id PHC string", h)
	}
	if !VerifyPassword(h, "correct horse battery staple") {
		t.Error("VerifyPassword(right) = false")
	}
	for _, bad := range []string{"", "correct horse battery stapl", "Correct horse battery staple"} {
		if VerifyPassword(h, bad) {
			t.Errorf("VerifyPassword(%q) = true", bad)
		}
	}
	for _, hash := range []string{"", "$argon2id$", "$argon2i$v=19$m=65536,t=3,p=2$AAAA$AAAA", "$argon2id$v=19$m=99999999,t=3,p=2$AAAA$AAAA"} {
		if VerifyPassword(hash, "x") {
			t.Errorf("VerifyPassword(%q, x) = true for a malformed hash", hash)
		}
	}
}

func TestCheckPassword(t *testing.T) {
	tests := []struct {
		pw, login string
		ok        bool
	}{
		{"short", "", false},
		{"password1234", "", false},
		{"jsmith-is-great-2026", "jsmith", false},
		{"tulip kettle orbit", "jsmith", true},
		{"Ωmega ünïcode pass", "", true},
	}
	for _, tt := range tests {
		err := CheckPassword(tt.pw, tt.login)
		if (err == nil) != tt.ok {
			t.Errorf("CheckPassword(%q, %q) = %v, want ok=%v", tt.pw, tt.login, err, tt.ok)
		}
		if err != nil && callvault.ErrorCode(err) != callvault.EINVALID {
			t.Errorf("CheckPassword(%q) code = %s, want invalid", tt.pw, callvault.ErrorCode(err))
		}
	}
}

func TestTokens(t *testing.T) {
	a, b := Token("cvi_"), Token("cvi_")
	if a == b || !strings.HasPrefix(a, "cvi_") || len(a) < 40 {
		t.Errorf("Token = %q, %q: want distinct prefixed 32-byte tokens", a, b)
	}
	if HashToken(a) == HashToken(b) || len(HashToken(a)) != 64 {
		t.Errorf("HashToken gives %q", HashToken(a))
	}
	if p := Password(); len(p) != 23 || CheckPassword(p, "admin") != nil {
		t.Errorf("Password() = %q, want a 23-character acceptable password", p)
	}
}
