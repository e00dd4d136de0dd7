package phone

import (
	"strings"

	"github.com/callvault/callvault"
)

// ParseRanges parses ranges separated by commas or new lines. Telephone
// numbers are normalised to E.164 first; both ends must be valid numbers.
func ParseRanges(s string, numbers bool) ([]callvault.Range, error) {
	var out []callvault.Range
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' || r == ';' }) {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if numbers {
			first, last, ok := strings.Cut(f, "-")
			if !ok {
				last = first
			}
			a, okA := Normalize(first)
			b, okB := Normalize(last)
			if !okA || !okB {
				return nil, callvault.Errorf(callvault.EINVALID, "%q is not a telephone number or range of them", f)
			}
			f = a + "-" + b
		} else if strings.Trim(strings.ReplaceAll(f, "-", ""), "0123456789 ") != "" {
			return nil, callvault.Errorf(callvault.EINVALID, "%q is not an extension or range of them", f)
		}
		r, err := callvault.ParseRange(f)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
