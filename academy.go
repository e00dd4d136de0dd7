package callvault

import (
	"context"
	"regexp"
	"strings"
	"time"
)

// UnassignedSlug is the academy that receives recordings whose numbers match
// no academy. Only admins (and trust-wide roles) see it.
const UnassignedSlug = "unassigned"

var slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,63}$`)

// ValidSlug reports whether s can name an academy or category in URLs:
// 2-64 lower-case letters, digits and '-', not starting with '-'.
func ValidSlug(s string) bool { return slugRE.MatchString(s) }

// Academy is one school of the trust.
type Academy struct {
	ID         int64     `json:"id"`
	Slug       string    `json:"slug"`
	Name       string    `json:"name"`
	Numbers    []Range   `json:"numbers"`    // DDIs, E.164
	Extensions []Range   `json:"extensions"` // internal extensions
	CreatedAt  time.Time `json:"created_at"`
}

// Range is an inclusive range of numbers of equal length, compared digit by
// digit: "+441632960000"-"+441632960099" or "2000"-"2099". A single number
// has First == Last.
type Range struct {
	First string `json:"first"`
	Last  string `json:"last"`
}

// Contains reports whether n lies in the range.
func (r Range) Contains(n string) bool {
	if len(n) != len(r.First) || len(n) != len(r.Last) {
		return false
	}
	return n >= r.First && n <= r.Last
}

// String formats the range as "first" or "first-last".
func (r Range) String() string {
	if r.First == r.Last {
		return r.First
	}
	return r.First + "-" + r.Last
}

// ParseRange parses "first" or "first-last". Both ends must have the same
// length and first <= last. Numbers are compared as given, so normalise them
// (to E.164) first.
func ParseRange(s string) (Range, error) {
	s = strings.TrimSpace(s)
	first, last, ok := strings.Cut(s, "-")
	if !ok {
		last = first
	}
	first, last = strings.TrimSpace(first), strings.TrimSpace(last)
	if first == "" || len(first) != len(last) {
		return Range{}, Errorf(EINVALID, "range %q: both ends must have the same number of digits", s)
	}
	if first > last {
		return Range{}, Errorf(EINVALID, "range %q: first is after last", s)
	}
	return Range{First: first, Last: last}, nil
}

// AssignAcademy picks the academy of a call from its participants: the first
// external or staff number inside an academy's DDI ranges, then the first
// extension inside an academy's extension ranges. It returns nil when nothing
// matches (the caller files the recording under UnassignedSlug).
func AssignAcademy(academies []*Academy, participants []Participant) *Academy {
	for _, p := range participants {
		if p.Number == "" {
			continue
		}
		for _, a := range academies {
			for _, r := range a.Numbers {
				if r.Contains(p.Number) {
					return a
				}
			}
		}
	}
	for _, p := range participants {
		if p.Extension == "" {
			continue
		}
		for _, a := range academies {
			for _, r := range a.Extensions {
				if r.Contains(p.Extension) {
					return a
				}
			}
		}
	}
	return nil
}

// AcademyService manages academies and their number ranges.
type AcademyService interface {
	// CreateAcademy returns ECONFLICT if the slug exists, EINVALID for a bad slug.
	CreateAcademy(ctx context.Context, a *Academy) error
	// UpdateAcademy replaces name and ranges. ENOTFOUND.
	UpdateAcademy(ctx context.Context, a *Academy) error
	// FindAcademyBySlug returns ENOTFOUND.
	FindAcademyBySlug(ctx context.Context, slug string) (*Academy, error)
	// FindAcademies lists academies (with ranges) visible to the actor.
	FindAcademies(ctx context.Context) ([]*Academy, error)
}
