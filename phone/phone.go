// Package phone normalises telephone numbers to E.164 with
// github.com/nyaruka/phonenumbers, so that the same caller is found however a
// PBX wrote the number ("01632 960123", "+44 1632 960123", "sip:01632960123@pbx").
package phone

import (
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// DefaultRegion is used for numbers written without a country code.
const DefaultRegion = "GB"

// MinDigits is the fewest digits a string must have to be taken as a
// telephone number rather than an extension.
const MinDigits = 7

// Normalize returns raw in E.164 form ("+441632960123") and true when it
// parses as a possible number; otherwise the cleaned input and false. URI
// schemes (sip:, sips:, tel:), a host part and visual separators are removed
// first.
func Normalize(raw string) (string, bool) {
	s := Clean(raw)
	// Short strings are extensions, not numbers, even where a numbering
	// plan would call them possible.
	if len(strings.TrimPrefix(s, "+")) < MinDigits {
		return s, false
	}
	n, err := phonenumbers.Parse(s, DefaultRegion)
	if err != nil || !phonenumbers.IsPossibleNumber(n) {
		return s, false
	}
	return phonenumbers.Format(n, phonenumbers.E164), true
}

// Clean strips a URI scheme, user parameters and host, and every character
// that is not a digit or a leading '+'.
func Clean(raw string) string {
	s := strings.TrimSpace(raw)
	lower := strings.ToLower(s)
	for _, p := range []string{"sips:", "sip:", "tel:"} {
		if strings.HasPrefix(lower, p) {
			s = s[len(p):]
			break
		}
	}
	if i := strings.IndexAny(s, "@;"); i >= 0 {
		s = s[:i]
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
			b.WriteRune(r)
		}
	}
	return b.String()
}
