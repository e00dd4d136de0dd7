package diskspace

import (
	"errors"
	"fmt"
	"math/big"
	"math/bits"
	"strings"
)

// Threshold is an amount of free space: either a share of the filesystem
// ("5%") or a size ("2GB", "1GiB", "10737418240"). Percentages suit disks of
// any size; a size says "keep at least this much", whatever the disk. The
// zero Threshold is unset. Thresholds are comparable with ==.
type Threshold struct {
	ppm   uint32 // parts per million of the filesystem, when a percentage
	bytes uint64 // when a size
}

const (
	ppmPerPercent = 10_000
	ppmWhole      = 100 * ppmPerPercent
	maxInputLen   = 64 // longer input is a typo, and keeps parsing cheap
)

// units are the size suffixes, decimal then binary, smallest first: String
// tries them in this order.
var units = []struct {
	name string
	size uint64
}{
	{"B", 1},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
}

const want = "want a percentage of the filesystem such as 5% or a size such as 2GB, 500MB, 1GiB or a number of bytes"

// ParseThreshold parses a percentage ("5%", "0.5%", at most 100%, at least
// 0.0001%) or a size: a number of bytes, optionally with a unit (B, KB, MB,
// GB, TB are powers of 1000; KiB, MiB, GiB, TiB powers of 1024; case does not
// matter, a space may separate number and unit). A fraction that does not
// come out to whole bytes is rounded to the nearest byte. Zero and negative
// thresholds are errors.
func ParseThreshold(s string) (Threshold, error) {
	fail := func(format string, args ...any) (Threshold, error) {
		return Threshold{}, fmt.Errorf("threshold %q: %s", s, fmt.Sprintf(format, args...))
	}
	in := strings.TrimSpace(s)
	switch {
	case in == "":
		return Threshold{}, errors.New("empty threshold: " + want)
	case len(in) > maxInputLen:
		return fail("longer than %d characters", maxInputLen)
	case in[0] == '-':
		return fail("negative: %s", want)
	}
	end := strings.IndexFunc(in, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if end < 0 {
		end = len(in)
	}
	num, unit := in[:end], strings.TrimSpace(in[end:])
	mantissa, scale, ok := parseDecimal(num)
	if !ok {
		return fail("%s", want)
	}
	size := uint64(0) // the unit; 0 for a percentage
	if unit == "" {
		size = 1
	}
	for _, u := range units {
		if strings.EqualFold(unit, u.name) {
			size = u.size
		}
	}
	if size == 0 && unit != "%" {
		return fail("unknown unit %q: want %% or one of B, KB, MB, GB, TB, KiB, MiB, GiB, TiB", unit)
	}
	if mantissa.Sign() == 0 {
		return fail("zero: the threshold must be above zero")
	}

	if size == 0 {
		ppm := divRound(new(big.Int).Mul(mantissa, big.NewInt(ppmPerPercent)), scale)
		switch {
		case ppm.Cmp(big.NewInt(ppmWhole)) > 0:
			return fail("over 100%% of the filesystem")
		case ppm.Sign() == 0:
			return fail("below the smallest percentage, 0.0001%%")
		}
		return Threshold{ppm: uint32(ppm.Uint64())}, nil
	}
	n := divRound(new(big.Int).Mul(mantissa, new(big.Int).SetUint64(size)), scale)
	switch {
	case !n.IsUint64():
		return fail("too large")
	case n.Sign() == 0:
		return fail("less than one byte")
	}
	return Threshold{bytes: n.Uint64()}, nil
}

// parseDecimal parses digits with at most one decimal point into mantissa ×
// 10^-len(fraction). Signs, exponents, underscores, hex, "Inf" and "NaN" are
// not numbers here.
func parseDecimal(s string) (mantissa *big.Int, scale int, ok bool) {
	whole, frac, _ := strings.Cut(s, ".")
	if whole+frac == "" || strings.Contains(frac, ".") {
		return nil, 0, false
	}
	mantissa, ok = new(big.Int).SetString(whole+frac, 10)
	return mantissa, len(frac), ok
}

// divRound returns n / 10^scale rounded half up (n is not negative).
func divRound(n *big.Int, scale int) *big.Int {
	d := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)
	n.Add(n, new(big.Int).Rsh(d, 1))
	return n.Quo(n, d)
}

// IsZero reports whether t is unset.
func (t Threshold) IsZero() bool { return t == Threshold{} }

// IsPercent reports whether t is a share of the filesystem rather than a size.
func (t Threshold) IsPercent() bool { return t.ppm != 0 }

// Bytes is the threshold in bytes on a filesystem of total bytes (rounded
// down for a percentage; a size is the same whatever the total).
func (t Threshold) Bytes(total uint64) uint64 {
	if t.ppm == 0 {
		return t.bytes
	}
	hi, lo := bits.Mul64(total, uint64(t.ppm))
	q, _ := bits.Div64(hi, lo, ppmWhole) // hi < ppmWhole because ppm ≤ ppmWhole
	return q
}

// String is the shortest exact spelling of t that ParseThreshold accepts:
// "5%", "0.5%", "2GB", "1.5GiB", "1536B". The zero Threshold is "".
func (t Threshold) String() string {
	switch {
	case t.ppm != 0:
		return decimal(uint64(t.ppm/ppmPerPercent), uint64(t.ppm%ppmPerPercent), 4) + "%"
	case t.bytes == 0:
		return ""
	}
	best := ""
	for _, u := range units {
		q, r := t.bytes/u.size, t.bytes%u.size
		if r*1000%u.size != 0 { // r < 2^40, so r*1000 cannot overflow
			continue // not exact with three decimals
		}
		if s := decimal(q, r*1000/u.size, 3) + u.name; best == "" || len(s) < len(best) {
			best = s
		}
	}
	return best
}

// decimal formats whole.frac, frac having digits decimals, without trailing zeros.
func decimal(whole, frac uint64, digits int) string {
	s := fmt.Sprint(whole)
	if frac != 0 {
		s += strings.TrimRight(fmt.Sprintf(".%0*d", digits, frac), "0")
	}
	return s
}

// Set parses s into t, so that *Threshold is a flag.Value.
func (t *Threshold) Set(s string) error {
	v, err := ParseThreshold(s)
	if err != nil {
		return err
	}
	*t = v
	return nil
}
