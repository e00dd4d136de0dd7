package callvault

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Retention (policy §5): recordings are kept "typically 12 months" from the
// start of the call, then purged unless a legal hold suspends it. The rule
// that applies to a recording is the most specific of:
//
//	academy + category  >  category (every academy)  >  academy  >  trust default
//
// Each recording's RetainUntil is set at ingest and recomputed, in the same
// transaction, whenever a rule changes.

// Limits of a retention rule, in months. Zero or negative is refused: it
// would mean "delete at once", which is never what a retention policy means.
const (
	DefaultRetentionMonths = 12
	MinRetentionMonths     = 1
	MaxRetentionMonths     = 120
)

// RetentionRule keeps the recordings of an academy and/or category for
// Months from the start of the call. AcademyID 0 and Category "" mean
// "every academy" and "every category"; the rule with both is the trust
// default, which always exists and cannot be deleted.
type RetentionRule struct {
	AcademyID int64     `json:"academy_id,omitempty"`
	Academy   string    `json:"academy,omitempty"` // slug, filled on reads
	Category  string    `json:"category,omitempty"`
	Months    int       `json:"months"`
	UpdatedAt time.Time `json:"updated_at"`
	UpdatedBy string    `json:"updated_by,omitempty"`
}

// IsDefault reports whether r is the trust-wide default rule.
func (r *RetentionRule) IsDefault() bool { return r.AcademyID == 0 && r.Category == "" }

// Validate checks the months and the category slug.
func (r *RetentionRule) Validate() error {
	if r.Months < MinRetentionMonths || r.Months > MaxRetentionMonths {
		return Errorf(EINVALID, "retention must be between %d and %d months, not %d", MinRetentionMonths, MaxRetentionMonths, r.Months)
	}
	if r.AcademyID < 0 {
		return Errorf(EINVALID, "academy id %d is negative", r.AcademyID)
	}
	if r.Category != "" && !ValidSlug(r.Category) {
		return Errorf(EINVALID, "category %q is not a slug (lower-case letters, digits and hyphens)", r.Category)
	}
	return nil
}

// String describes the rule for deletion receipts and the UI, e.g.
// "academy oak, category safeguarding: 24 months".
func (r *RetentionRule) String() string {
	var scope []string
	if r.AcademyID != 0 {
		if r.Academy != "" {
			scope = append(scope, "academy "+r.Academy)
		} else {
			scope = append(scope, fmt.Sprintf("academy #%d", r.AcademyID))
		}
	}
	if r.Category != "" {
		scope = append(scope, "category "+r.Category)
	}
	if len(scope) == 0 {
		scope = append(scope, "trust default")
	}
	unit := "months"
	if r.Months == 1 {
		unit = "month"
	}
	return fmt.Sprintf("%s: %d %s", strings.Join(scope, ", "), r.Months, unit)
}

// RetentionPolicy is every rule in force.
type RetentionPolicy []RetentionRule

// RuleFor returns the most specific rule for a recording of academy and
// category. Without a trust default in the policy it falls back to
// DefaultRetentionMonths.
func (p RetentionPolicy) RuleFor(academyID int64, category string) RetentionRule {
	best, rank := RetentionRule{Months: DefaultRetentionMonths}, -1
	for _, r := range p {
		var k int
		switch {
		case r.AcademyID == academyID && r.Category == category && category != "" && academyID != 0:
			k = 3
		case r.AcademyID == 0 && r.Category == category && category != "":
			k = 2
		case r.AcademyID == academyID && r.Category == "" && academyID != 0:
			k = 1
		case r.IsDefault():
			k = 0
		default:
			continue
		}
		if k > rank {
			best, rank = r, k
		}
	}
	return best
}

// RetainUntil is when a recording that started at started may be purged
// under a rule of months: the same clock time, months later, in London.
func RetainUntil(started time.Time, months int) time.Time {
	return started.In(London).AddDate(0, months, 0).UTC().Truncate(time.Millisecond)
}

// RetentionImpact says what a rule change does to stored recordings.
type RetentionImpact struct {
	Changed int `json:"changed"` // recordings whose retain-until moves
	Earlier int `json:"earlier"` // of those, kept for less time
	Later   int `json:"later"`   // of those, kept for longer
	DueNow  int `json:"due_now"` // of the earlier ones, past their new date: the next run purges them unless held
}

// Category is a kind of call with its own retention, recognised by the
// numbers or extensions of a line, e.g. the safeguarding line.
type Category struct {
	ID         int64     `json:"id"`
	Slug       string    `json:"slug"`
	Name       string    `json:"name"`
	Numbers    []Range   `json:"numbers"`
	Extensions []Range   `json:"extensions"`
	CreatedAt  time.Time `json:"created_at"`
}

// AssignCategory picks the category of a call: the first participant number,
// then the first extension, inside a category's ranges. Nil when none.
func AssignCategory(cats []*Category, participants []Participant) *Category {
	for _, p := range participants {
		for _, c := range cats {
			if p.Number != "" && containsAny(c.Numbers, p.Number) {
				return c
			}
		}
	}
	for _, p := range participants {
		for _, c := range cats {
			if p.Extension != "" && containsAny(c.Extensions, p.Extension) {
				return c
			}
		}
	}
	return nil
}

func containsAny(rs []Range, n string) bool {
	for _, r := range rs {
		if r.Contains(n) {
			return true
		}
	}
	return false
}

// UpcomingDeletion counts recordings of one academy that reach their
// retain-until on one day (London) and are not held.
type UpcomingDeletion struct {
	AcademyID int64     `json:"academy_id"`
	Academy   string    `json:"academy"`
	Day       time.Time `json:"day"` // midnight, London
	Count     int       `json:"count"`
	Held      int       `json:"held"` // due that day but kept by a hold
}

// RetentionService keeps the retention rules and categories. Changing a rule
// recomputes RetainUntil of every affected recording in the same
// transaction, with its audit entry.
type RetentionService interface {
	// RetentionPolicy returns every rule, the trust default first.
	RetentionPolicy(ctx context.Context) (RetentionPolicy, error)
	// PreviewRetentionRule says what SetRetentionRule(r) would change,
	// without changing anything (remove: what deleting it would change).
	PreviewRetentionRule(ctx context.Context, r *RetentionRule, remove bool) (RetentionImpact, error)
	// SetRetentionRule creates or replaces the rule for r's academy and
	// category. EINVALID for bad months or an unknown academy or category.
	SetRetentionRule(ctx context.Context, r *RetentionRule) (RetentionImpact, error)
	// DeleteRetentionRule removes an override; the trust default cannot be
	// removed (EINVALID). ENOTFOUND when there is no such rule.
	DeleteRetentionRule(ctx context.Context, academyID int64, category string) (RetentionImpact, error)

	FindCategories(ctx context.Context) ([]*Category, error)
	// CreateCategory adds a category; ECONFLICT for a taken slug. Existing
	// recordings are not re-categorised: categories apply from ingest.
	CreateCategory(ctx context.Context, c *Category) error

	// UpcomingDeletions counts, per academy in the actor's scope and day,
	// the recordings whose retain-until falls in [from, to).
	UpcomingDeletions(ctx context.Context, from, to time.Time) ([]UpcomingDeletion, error)
}

// CanViewRetention reports whether the actor may see retention rules and
// upcoming deletions: staff who run or govern the archive.
func CanViewRetention(a *Actor) bool { return isStaffOrSystem(a) }

// isStaffOrSystem: the system, or an active admin, DPO, CEO or principal —
// everyone who runs or governs the archive (not listeners).
func isStaffOrSystem(a *Actor) bool {
	if a == nil || a.System {
		return a != nil
	}
	if a.User == nil || a.User.Disabled {
		return false
	}
	switch a.User.Role {
	case RoleAdmin, RoleDPO, RoleCEO, RolePrincipal:
		return true
	}
	return false
}

// CanChangeRetention reports whether the actor may change retention rules
// and categories: the technical support team, who run the system, and the
// data-protection lead, who owns the policy.
func CanChangeRetention(a *Actor) bool {
	if a == nil || a.System {
		return a != nil
	}
	return a.User != nil && !a.User.Disabled && (a.User.Role == RoleAdmin || a.User.Role == RoleDPO)
}
