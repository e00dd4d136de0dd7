package callvault

import (
	"context"
	"slices"
	"time"
)

// Purposes of a listen request (policy §1, §7–§9).
const (
	PurposeComplaint      = "complaint"
	PurposeSafeguarding   = "safeguarding"
	PurposeAbusive        = "abusive_call"
	PurposeTraining       = "training"
	PurposeServiceQuality = "service_quality"
	PurposeDiscipline     = "discipline_grievance"
	PurposeSubjectAccess  = "subject_access"
	PurposeThirdParty     = "third_party"
	PurposeOther          = "other"
)

// Purposes lists every purpose, in display order, with its label.
var Purposes = []struct{ Value, Label string }{
	{PurposeComplaint, "Complaint"},
	{PurposeSafeguarding, "Safeguarding"},
	{PurposeAbusive, "Abusive or nuisance call"},
	{PurposeTraining, "Training need"},
	{PurposeServiceQuality, "Service quality"},
	{PurposeDiscipline, "Discipline or grievance"},
	{PurposeSubjectAccess, "Subject access review"},
	{PurposeThirdParty, "Third-party request"},
	{PurposeOther, "Other"},
}

// ValidPurpose reports whether p is a purpose.
func ValidPurpose(p string) bool {
	return slices.ContainsFunc(Purposes, func(x struct{ Value, Label string }) bool { return x.Value == p })
}

// Listen request states.
const (
	RequestPending  = "pending"
	RequestApproved = "approved"
	RequestDeclined = "declined"
)

// MaxGrantDuration is the policy's limit on listening access (§5): seven
// days, which is also the default. Shorter is allowed, down to a minute.
const (
	MaxGrantDuration = 7 * 24 * time.Hour
	MinGrantDuration = time.Minute
	BreakGlassPeriod = 24 * time.Hour
	RatifyWithin     = 3 * 24 * time.Hour
)

// ListenRequest asks that named people may listen to recordings.
type ListenRequest struct {
	ID            int64         `json:"id"`
	RequesterID   int64         `json:"requester_id"`
	Requester     string        `json:"requester"` // login, filled on reads
	RecordingIDs  []string      `json:"recording_ids"`
	AcademyIDs    []int64       `json:"academy_ids"` // of the recordings, filled by the store
	Purpose       string        `json:"purpose"`
	PurposeText   string        `json:"purpose_text,omitempty"` // required for "other"
	Justification string        `json:"justification"`
	ListenerIDs   []int64       `json:"listener_ids"`
	Listeners     []string      `json:"listeners"` // logins, filled on reads
	Duration      time.Duration `json:"-"`
	State         string        `json:"state"`
	CreatedAt     time.Time     `json:"created_at"`
	DeciderID     int64         `json:"decider_id,omitempty"`
	Decider       string        `json:"decider,omitempty"`
	DecidedAt     time.Time     `json:"decided_at,omitzero"`
	DecisionNote  string        `json:"decision_note,omitempty"`
}

// Grant lets one listener stream some recordings, read-only, until Until.
type Grant struct {
	ID           int64     `json:"id"`
	RequestID    int64     `json:"request_id,omitempty"` // 0 for break-glass
	ListenerID   int64     `json:"listener_id"`
	Listener     string    `json:"listener"`
	RecordingIDs []string  `json:"recording_ids"`
	AcademyIDs   []int64   `json:"academy_ids"`
	From         time.Time `json:"from"`
	Until        time.Time `json:"until"`
	GrantedBy    int64     `json:"granted_by"`
	RevokedAt    time.Time `json:"revoked_at,omitzero"`
	RevokedBy    int64     `json:"revoked_by,omitempty"`
	BreakGlass   bool      `json:"break_glass"`
	Reason       string    `json:"reason,omitempty"`      // break-glass: why
	RatifiedBy   int64     `json:"ratified_by,omitempty"` // break-glass: the CEO or principal who confirmed it
	RatifiedAt   time.Time `json:"ratified_at,omitzero"`
}

// Active reports whether g lets its listener play at t: begun, not expired
// (exact to the second, no job needed), not revoked.
func (g *Grant) Active(t time.Time) bool {
	return g != nil && !t.Before(g.From) && t.Before(g.Until) && g.RevokedAt.IsZero()
}

// Covers reports whether g includes the recording.
func (g *Grant) Covers(recordingID string) bool { return slices.Contains(g.RecordingIDs, recordingID) }

// Unratified reports whether a break-glass grant has gone unratified past
// the deadline: a possible breach.
func (g *Grant) Unratified(t time.Time) bool {
	return g.BreakGlass && g.RatifiedAt.IsZero() && !t.Before(g.From.Add(RatifyWithin))
}

// RequestFilter selects listen requests.
type RequestFilter struct {
	State            string
	AwaitingDecision bool // only requests the actor may decide
	Mine             bool // only requests the actor made
}

// GrantFilter selects grants.
type GrantFilter struct {
	ListenerID  int64
	ActiveAt    time.Time // only grants active at this time
	BreakGlass  bool      // only break-glass grants
	RecordingID string
}

// GrantService stores listen requests and grants. Reads are scoped to the
// actor: listeners see their own grants; deciders the requests and grants of
// recordings they may decide for; admins and the DPO all of them.
type GrantService interface {
	// CreateListenRequest records a request by the actor. EINVALID for bad
	// purposes, durations, listeners or recordings the actor cannot see.
	CreateListenRequest(ctx context.Context, r *ListenRequest) error
	FindListenRequestByID(ctx context.Context, id int64) (*ListenRequest, error)
	FindListenRequests(ctx context.Context, f RequestFilter) ([]*ListenRequest, error)
	// DecideListenRequest approves (creating one grant per listener, valid
	// from now for the requested duration) or declines. EFORBIDDEN unless
	// CanDecide; ECONFLICT if already decided.
	DecideListenRequest(ctx context.Context, id int64, approve bool, note string) (*ListenRequest, []*Grant, error)
	FindGrantByID(ctx context.Context, id int64) (*Grant, error)
	FindGrants(ctx context.Context, f GrantFilter) ([]*Grant, error)
	// RevokeGrant ends a grant at once. EFORBIDDEN unless CanRevoke.
	RevokeGrant(ctx context.Context, id int64, reason string) (*Grant, error)
	// ActiveGrant returns the actor's grant that covers the recording at
	// now, or ENOTFOUND. It is on the hot path of every audio request.
	ActiveGrant(ctx context.Context, userID int64, recordingID string, now time.Time) (*Grant, error)
	// BreakGlass opens emergency access for the actor (admin or dpo) to the
	// recordings for BreakGlassPeriod. EINVALID without a reason.
	BreakGlass(ctx context.Context, recordingIDs []string, reason string) (*Grant, error)
	// RatifyBreakGlass confirms a break-glass grant (CEO, or principal of
	// every recording's academy).
	RatifyBreakGlass(ctx context.Context, id int64, note string) (*Grant, error)
}

// CanRequest reports whether the actor may ask for listening access: any
// staff role (not a listener, who only listens).
func CanRequest(a *Actor) bool {
	return a != nil && a.User != nil && !a.User.Disabled && a.User.Role != RoleListener
}

// CanDecide reports whether the actor may approve or decline r: the CEO, or
// a principal of the academy of every recording in it — never the person
// who asked.
func CanDecide(a *Actor, r *ListenRequest) bool {
	if a == nil || a.User == nil || a.User.Disabled || r == nil || a.User.ID == r.RequesterID {
		return false
	}
	return canAuthorise(a.User, r.AcademyIDs)
}

// canAuthorise: the CEO for everything, a principal for their academies.
func canAuthorise(u *User, academies []int64) bool {
	switch u.Role {
	case RoleCEO:
		return true
	case RolePrincipal:
		if len(academies) == 0 {
			return false
		}
		for _, id := range academies {
			if !slices.Contains(u.AcademyIDs, id) {
				return false
			}
		}
		return true
	}
	return false
}

// CanRevoke reports whether the actor may revoke g: an admin, the person
// who granted it, or anyone who could have authorised it.
func CanRevoke(a *Actor, g *Grant) bool {
	if a == nil || a.User == nil || a.User.Disabled || g == nil {
		return false
	}
	return a.User.Role == RoleAdmin || a.User.ID == g.GrantedBy || canAuthorise(a.User, g.AcademyIDs)
}

// CanBreakGlass reports whether the actor may open emergency access.
func CanBreakGlass(a *Actor) bool {
	return a != nil && a.User != nil && !a.User.Disabled && (a.User.Role == RoleAdmin || a.User.Role == RoleDPO)
}

// CanRatify reports whether the actor may ratify a break-glass grant: an
// authoriser of its recordings who did not open it.
func CanRatify(a *Actor, g *Grant) bool {
	if a == nil || a.User == nil || a.User.Disabled || g == nil || !g.BreakGlass || a.User.ID == g.ListenerID {
		return false
	}
	return canAuthorise(a.User, g.AcademyIDs)
}
