package diskspace

import (
	"flag"
	"math"
	"strings"
	"testing"
)

func TestParseThreshold(t *testing.T) {
	const total = 200e9 // a 200 GB disk
	for _, tt := range []struct {
		in      string
		str     string
		bytes   uint64 // on a 200 GB disk
		percent bool
	}{
		{"5%", "5%", 10e9, true},
		{"0.5%", "0.5%", 1e9, true},
		{"10.25%", "10.25%", 20.5e9, true},
		{"0.0001%", "0.0001%", 200e3, true},
		{"0.00005%", "0.0001%", 200e3, true}, // rounded to the nearest millionth
		{"100%", "100%", 200e9, true},
		{"007%", "7%", 14e9, true},
		{" 5 % ", "5%", 10e9, true},
		{"2GB", "2GB", 2e9, false},
		{"2gb", "2GB", 2e9, false},
		{"2 GB", "2GB", 2e9, false},
		{"500MB", "500MB", 500e6, false},
		{"0.5GB", "500MB", 500e6, false},
		{"1.5GB", "1.5GB", 1.5e9, false},
		{"1GiB", "1GiB", 1 << 30, false},
		{"1024MiB", "1GiB", 1 << 30, false},
		{"1.5GiB", "1.5GiB", 3 << 29, false},
		{"1.1GiB", "1181116006B", 1181116006, false}, // 1181116006.4 bytes, rounded
		{"10737418240", "10GiB", 10 << 30, false},
		{"1536", "1536B", 1536, false},
		{"1536B", "1536B", 1536, false},
		{"1", "1B", 1, false},
		{"3TB", "3TB", 3e12, false},
		{"16TiB", "16TiB", 16 << 40, false},
		{"18446744073709551615", "18446744073709551615B", math.MaxUint64, false},
	} {
		th, err := ParseThreshold(tt.in)
		if err != nil {
			t.Errorf("ParseThreshold(%q) failed: %v", tt.in, err)
			continue
		}
		if got := th.String(); got != tt.str {
			t.Errorf("ParseThreshold(%q).String() = %q, want %q", tt.in, got, tt.str)
		}
		if got := th.Bytes(total); got != tt.bytes {
			t.Errorf("ParseThreshold(%q).Bytes(200e9) = %d, want %d", tt.in, got, tt.bytes)
		}
		if th.IsPercent() != tt.percent || th.IsZero() {
			t.Errorf("ParseThreshold(%q): IsPercent %v IsZero %v, want %v false", tt.in, th.IsPercent(), th.IsZero(), tt.percent)
		}
	}
}

func TestParseThresholdErrors(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", "empty"},
		{"   ", "empty"},
		{"-5%", "negative"},
		{"-2GB", "negative"},
		{"0", "zero"},
		{"0%", "zero"},
		{"0.000%", "zero"},
		{"0GB", "zero"},
		{"0.00004%", "smallest percentage"},
		{"0.4B", "less than one byte"},
		{"101%", "over 100%"},
		{"100.0001%", "over 100%"},
		{"5%x", `unknown unit "%x"`},
		{"5% of the disk", "unknown unit"},
		{"5%%", "unknown unit"},
		{"2G", `unknown unit "G"`},
		{"2 gigabytes", "unknown unit"},
		{"2XB", "unknown unit"},
		{"1e9", `unknown unit "e9"`},
		{"1_000", "unknown unit"},
		{"0x10", "unknown unit"},
		{"abc", "want a percentage"},
		{"%", "want a percentage"},
		{"GB", "want a percentage"},
		{".", "want a percentage"},
		{"+5%", "want a percentage"},
		{"Inf", "want a percentage"},
		{"NaN%", "want a percentage"},
		{"1.2.3GB", "want a percentage"},
		{"18446744073709551616", "too large"},
		{"20000000TB", "too large"},
		{"99999999999999999999999999TiB", "too large"},
		{strings.Repeat("1", 65), "longer than 64"},
	} {
		th, err := ParseThreshold(tt.in)
		if err == nil {
			t.Errorf("ParseThreshold(%q) = %v, want an error containing %q", tt.in, th, tt.want)
		} else if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseThreshold(%q) error = %q, want it to contain %q", tt.in, err, tt.want)
		}
	}
}

func TestThresholdBytes(t *testing.T) {
	for _, tt := range []struct {
		in    string
		total uint64
		want  uint64
	}{
		{"100%", math.MaxUint64, math.MaxUint64}, // no overflow in total × share
		{"50%", math.MaxUint64, math.MaxUint64 / 2},
		{"50%", 3, 1}, // rounded down
		{"5%", 0, 0},
		{"2GB", 0, 2e9}, // a size does not depend on the disk
		{"2GB", 1e9, 2e9},
	} {
		if got := mustParse(t, tt.in).Bytes(tt.total); got != tt.want {
			t.Errorf("ParseThreshold(%q).Bytes(%d) = %d, want %d", tt.in, tt.total, got, tt.want)
		}
	}
	if got := (Threshold{}).Bytes(1e12); got != 0 {
		t.Errorf("unset Threshold.Bytes(1e12) = %d, want 0", got)
	}
	if got := (Threshold{}).String(); got != "" {
		t.Errorf("unset Threshold.String() = %q, want empty", got)
	}
}

func TestThresholdFlag(t *testing.T) {
	var warn, floor Threshold
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.Var(&warn, "disk-warn", "")
	fs.Var(&floor, "disk-floor", "")
	if err := fs.Parse([]string{"--disk-warn", "10%", "--disk-floor", "2GB"}); err != nil {
		t.Fatal(err)
	}
	if warn != mustParse(t, "10%") || floor != mustParse(t, "2GB") {
		t.Errorf("flags gave warn %v floor %v, want 10%% and 2GB", warn, floor)
	}
	fs.SetOutput(new(strings.Builder))
	if err := fs.Parse([]string{"--disk-floor", "2G"}); err == nil || !strings.Contains(err.Error(), "unknown unit") {
		t.Errorf("--disk-floor 2G: err = %v, want unknown unit", err)
	}
	if floor != mustParse(t, "2GB") {
		t.Errorf("a rejected flag changed the floor to %v", floor)
	}
}

// FuzzParseThreshold: whatever parses prints as something that parses to
// the same threshold, and nothing panics. Interesting inputs are kept in
// testdata/fuzz/FuzzParseThreshold.
func FuzzParseThreshold(f *testing.F) {
	for _, s := range []string{"5%", "0.5%", "2GB", "500MB", "1GiB", "10737418240"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		th, err := ParseThreshold(s)
		if err != nil {
			if th != (Threshold{}) {
				t.Fatalf("ParseThreshold(%q) failed (%v) but returned %#v", s, err, th)
			}
			return
		}
		if th.IsZero() {
			t.Fatalf("ParseThreshold(%q) returned the unset threshold without an error", s)
		}
		str := th.String()
		again, err := ParseThreshold(str)
		if err != nil {
			t.Fatalf("ParseThreshold(%q).String() = %q, which does not parse: %v", s, str, err)
		}
		if again != th {
			t.Fatalf("ParseThreshold(%q) = %#v, but its String %q parses to %#v", s, th, str, again)
		}
		if again.String() != str {
			t.Fatalf("String is not stable: %q then %q", str, again.String())
		}
		if th.IsPercent() {
			for _, total := range []uint64{0, 1, 1e12, math.MaxUint64} {
				if b := th.Bytes(total); b > total {
					t.Fatalf("%s of %d is %d bytes, more than the disk", th, total, b)
				}
			}
		}
	})
}

func mustParse(t testing.TB, s string) Threshold {
	t.Helper()
	th, err := ParseThreshold(s)
	if err != nil {
		t.Fatal(err)
	}
	return th
}
