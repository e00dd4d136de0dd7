package phone

import (
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"01632 960123", "+441632960123", true},
		{"+44 (0)1632 960123", "+441632960123", true},
		{"sip:01632960123@pbx.example;user=phone", "+441632960123", true},
		{"tel:+441632960123", "+441632960123", true},
		{"07700 900123", "+447700900123", true},
		{"+1 202 555 0143", "+12025550143", true},
		{"2001", "2001", false},
		{"", "", false},
		{"anonymous", "", false},
	}
	for _, tt := range tests {
		got, ok := Normalize(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Normalize(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"01632 960123", "sip:+441632960123@x", "tel:;", "++44", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := Normalize(s)
		if ok && (len(got) < 2 || got[0] != '+') {
			t.Fatalf("Normalize(%q) = %q, true: not E.164", s, got)
		}
	})
}

func TestParseRanges(t *testing.T) {
	tests := []struct {
		in      string
		numbers bool
		want    string
		ok      bool
	}{
		{"01632 960000-01632 960099", true, "+441632960000-+441632960099", true},
		{"01632 960123, +44 1632 960200", true, "+441632960123,+441632960200", true},
		{"2000-2099\n3000", false, "2000-2099,3000", true},
		{"2099-2000", false, "", false},
		{"200-2099", false, "", false},
		{"abc", true, "", false},
		{"12a", false, "", false},
		{"", true, "", true},
	}
	for _, tt := range tests {
		rs, err := ParseRanges(tt.in, tt.numbers)
		var got []string
		for _, r := range rs {
			got = append(got, r.String())
		}
		if (err == nil) != tt.ok || (err == nil && strings.Join(got, ",") != tt.want) {
			t.Errorf("ParseRanges(%q, %v) = %v, %v; want %q, ok=%v", tt.in, tt.numbers, got, err, tt.want, tt.ok)
		}
	}
}
