package callvault

import (
	"context"
	"slices"
	"strings"
	"time"
)

// Reasons for a legal hold.
const (
	HoldSubjectAccess = "subject_access"
	HoldThirdParty    = "third_party"
	HoldInvestigation = "investigation"
	HoldComplaint     = "complaint"
	HoldDiscipline    = "discipline_grievance"
	HoldLitigation    = "litigation"
	HoldOther         = "other"
)

// HoldReasons lists every reason, in display order, with its label.
var HoldReasons = []struct{ Value, Label string }{
	{HoldSubjectAccess, "Subject access request"},
	{HoldThirdParty, "Third-party request (e.g. police)"},
	{HoldInvestigation, "Investigation"},
	{HoldComplaint, "Complaint"},
	{HoldDiscipline, "Discipline or grievance"},
	{HoldLitigation, "Litigation"},
	{HoldOther, "Other"},
}

// ValidHoldReason reports whether r is a hold reason.
func ValidHoldReason(r string) bool {
	return slices.ContainsFunc(HoldReasons, func(x struct{ Value, Label string }) bool { return x.Value == r })
}

// HoldReasonLabel returns the label of a reason, or the reason itself.
func HoldReasonLabel(r string) string {
	for _, x := range HoldReasons {
		if x.Value == r {
			return x.Label
		}
	}
	return r
}

// Limits of a hold's text and review date.
const (
	MaxHoldTitle      = 200
	MaxHoldReference  = 100
	MaxHoldReview     = 2 * 365 * 24 * time.Hour // a review date at most two years ahead
	DefaultHoldReview = 90 * 24 * time.Hour
)

// Hold suspends deletion of recordings while it is active: a fixed set, a
// saved search (which also catches recordings that arrive later and match),
// or both. Releasing one hold keeps a recording that another still holds.
type Hold struct {
	ID        int64       `json:"id"`
	Reason    string      `json:"reason"`
	Title     string      `json:"title"`                // what it is for, without personal data where possible
	Reference string      `json:"reference,omitempty"`  // e.g. the SAR or case number
	AcademyID int64       `json:"academy_id,omitempty"` // 0: trust-wide; a principal's holds are their academy's
	Academy   string      `json:"academy,omitempty"`    // slug, filled on reads
	Filter    *HoldFilter `json:"filter,omitempty"`     // the saved search, if any
	OwnerID   int64       `json:"owner_id"`
	Owner     string      `json:"owner"` // login, filled on reads
	ReviewAt  time.Time   `json:"review_at"`
	CreatedAt time.Time   `json:"created_at"`

	ReleasedAt  time.Time `json:"released_at,omitzero"`
	ReleasedBy  string    `json:"released_by,omitempty"`
	ReleaseNote string    `json:"release_note,omitempty"`

	Recordings int `json:"recordings"` // how many it holds, filled on reads
}

// Active reports whether the hold still suspends deletion.
func (h *Hold) Active() bool { return h.ReleasedAt.IsZero() }

// ReviewDue reports whether the hold's review date has passed.
func (h *Hold) ReviewDue(now time.Time) bool { return h.Active() && !now.Before(h.ReviewAt) }

// Validate checks what the person creating the hold typed.
func (h *Hold) Validate(now time.Time) error {
	h.Title, h.Reference = strings.TrimSpace(h.Title), strings.TrimSpace(h.Reference)
	switch {
	case !ValidHoldReason(h.Reason):
		return Errorf(EINVALID, "choose the reason for the hold")
	case h.Title == "":
		return Errorf(EINVALID, "say what the hold is for")
	case len(h.Title) > MaxHoldTitle:
		return Errorf(EINVALID, "the description is longer than %d characters", MaxHoldTitle)
	case len(h.Reference) > MaxHoldReference:
		return Errorf(EINVALID, "the reference is longer than %d characters", MaxHoldReference)
	case h.ReviewAt.IsZero():
		return Errorf(EINVALID, "set a review date")
	case !h.ReviewAt.After(now):
		return Errorf(EINVALID, "the review date must be in the future")
	case h.ReviewAt.After(now.Add(MaxHoldReview)):
		return Errorf(EINVALID, "the review date must be within two years; review the hold and extend it then")
	case h.AcademyID < 0:
		return Errorf(EINVALID, "academy id %d is negative", h.AcademyID)
	}
	if h.Filter != nil {
		if err := h.Filter.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// HoldFilter is a hold's saved search. Every set field must match; at least
// a number or an extension must be set, so a hold never silently covers
// every call.
type HoldFilter struct {
	Number    string    `json:"number,omitempty"` // full (+44...) or trailing digits, as in search
	Extension string    `json:"extension,omitempty"`
	AcademyID int64     `json:"academy_id,omitempty"`
	Direction string    `json:"direction,omitempty"`
	From      time.Time `json:"from,omitzero"` // started_at in [From, To); To zero: and every later call
	To        time.Time `json:"to,omitzero"`
}

// Validate checks the filter.
func (f *HoldFilter) Validate() error {
	if f.Number == "" && f.Extension == "" {
		return Errorf(EINVALID, "a saved-search hold needs a number or an extension")
	}
	if f.Number != "" {
		if _, _, err := ParseNumberQuery(f.Number); err != nil {
			return err
		}
	}
	switch f.Direction {
	case "", DirectionInbound, DirectionOutbound, DirectionInternal:
	default:
		return Errorf(EINVALID, "unknown direction %q", f.Direction)
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return Errorf(EINVALID, "the search's start must be before its end")
	}
	return nil
}

// RecordingFilter returns the search that finds what f holds.
func (f *HoldFilter) RecordingFilter() RecordingFilter {
	return RecordingFilter{Number: f.Number, Extension: f.Extension, AcademyID: f.AcademyID,
		Direction: f.Direction, From: f.From, To: f.To}
}

// Matches reports whether r is found by the saved search, with exactly the
// semantics of searching by the same fields.
func (f *HoldFilter) Matches(r *Recording) bool {
	if f.AcademyID != 0 && r.AcademyID != f.AcademyID {
		return false
	}
	if f.Direction != "" && r.Direction != f.Direction {
		return false
	}
	if !f.From.IsZero() && r.StartedAt.UnixMilli() < ceilMillis(f.From) {
		return false
	}
	if !f.To.IsZero() && r.StartedAt.UnixMilli() >= ceilMillis(f.To) {
		return false
	}
	number, suffix, err := ParseNumberQuery(f.Number)
	if err != nil {
		return false
	}
	// With both, as in search, the number and the extension may be on
	// different participants.
	if number != "" && !slices.ContainsFunc(r.Participants, func(p Participant) bool {
		d := digitsOf(p.Number)
		if d == "" {
			return false
		}
		if suffix {
			return strings.HasSuffix(d, number)
		}
		return d == number[1:]
	}) {
		return false
	}
	if f.Extension != "" && !slices.ContainsFunc(r.Participants, func(p Participant) bool {
		return p.Extension == f.Extension
	}) {
		return false
	}
	return true
}

// ceilMillis rounds t up to a whole millisecond, as stored times are.
func ceilMillis(t time.Time) int64 {
	ms := t.UnixMilli()
	if time.UnixMilli(ms).Before(t) {
		ms++
	}
	return ms
}

// ParseNumberQuery normalises a number search: everything but digits and a
// leading '+' is dropped. A value starting with '+' is a full number, which
// matches a participant number with exactly these digits; anything else is
// trailing digits, with leading zeros dropped so that a national ("01632
// 718387") or international ("0044...") form still matches the stored E.164
// number. Empty means no number filter.
func ParseNumberQuery(s string) (number string, suffix bool, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", false, nil
	}
	full := strings.HasPrefix(s, "+")
	digits := digitsOf(s)
	if !full {
		digits = strings.TrimLeft(digits, "0")
	}
	if digits == "" {
		return "", false, Errorf(EINVALID, "number %q has no digits to search for", s)
	}
	if full {
		return "+" + digits, false, nil
	}
	return digits, true, nil
}

func digitsOf(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

// HoldListFilter selects holds.
type HoldListFilter struct {
	Active      bool   // only holds not released
	RecordingID string // only holds covering this recording
}

// HoldService keeps legal holds. Every method is scoped to the actor in the
// context and checks the decisions below.
type HoldService interface {
	// CreateHold stores h (setting ID, OwnerID to the actor when zero, and
	// CreatedAt) holding recordingIDs and, with a filter, every recording
	// the saved search finds now or later. EFORBIDDEN outside the actor's
	// scope; EINVALID for an unknown recording or a bad field.
	CreateHold(ctx context.Context, h *Hold, recordingIDs []string) error
	// AddToHold adds recordings to an active hold.
	AddToHold(ctx context.Context, id int64, recordingIDs []string) error
	// ReleaseHold ends a hold; its recordings are purged at their
	// retain-until unless another active hold keeps them. ECONFLICT if it
	// was already released.
	ReleaseHold(ctx context.Context, id int64, note string) (*Hold, error)
	FindHoldByID(ctx context.Context, id int64) (*Hold, error)
	FindHolds(ctx context.Context, f HoldListFilter) ([]*Hold, error)
	// HeldRecordingIDs lists up to limit recordings of a hold after the id
	// after, in id order.
	HeldRecordingIDs(ctx context.Context, id int64, after string, limit int) ([]string, error)
}

// CanViewHolds reports whether the actor may list holds: those who can
// create them, and admins, who must know why something is not deleted.
func CanViewHolds(a *Actor) bool { return isStaffOrSystem(a) }

// HoldScope returns which holds the actor sees: every hold, or (principals)
// holds of their academies and holds they own.
func HoldScope(a *Actor) Scope {
	if a == nil {
		return Scope{None: true}
	}
	if a.System {
		return Scope{All: true}
	}
	if !CanViewHolds(a) {
		return Scope{None: true}
	}
	if a.User.Role == RolePrincipal {
		return Scope{AcademyIDs: slices.Clone(a.User.AcademyIDs), GrantedTo: a.User.ID}
	}
	return Scope{All: true}
}

// CanCreateHold reports whether the actor may place a hold on recordings of
// academyIDs (a trust-wide hold: academy 0): the DPO and the CEO for
// everything; a principal for their own academies only. Admins run the
// system but do not decide what is kept.
func CanCreateHold(a *Actor, holdAcademy int64, academyIDs []int64) bool {
	if a == nil {
		return false
	}
	if a.System {
		return true
	}
	if a.User == nil || a.User.Disabled {
		return false
	}
	switch a.User.Role {
	case RoleDPO, RoleCEO:
		return true
	case RolePrincipal:
		if holdAcademy == 0 || !slices.Contains(a.User.AcademyIDs, holdAcademy) {
			return false
		}
		for _, id := range academyIDs {
			if id != holdAcademy {
				return false
			}
		}
		return true
	}
	return false
}

// CanReleaseHold reports whether the actor may release h: the DPO and the
// CEO, its owner, or a principal of its academy.
func CanReleaseHold(a *Actor, h *Hold) bool {
	if a == nil || h == nil {
		return false
	}
	if a.System {
		return true
	}
	if a.User == nil || a.User.Disabled {
		return false
	}
	switch a.User.Role {
	case RoleDPO, RoleCEO:
		return true
	case RolePrincipal:
		return a.User.ID == h.OwnerID || (h.AcademyID != 0 && slices.Contains(a.User.AcademyIDs, h.AcademyID))
	}
	return false
}
