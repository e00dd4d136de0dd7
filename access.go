package callvault

import (
	"context"
	"slices"
	"time"
)

// Actor is whoever is acting: a signed-in user, an ingest source, or the
// system itself (command line, background jobs).
type Actor struct {
	User    *User
	Session *Session  // the browser session a user acts through, if any
	Token   *APIToken // or the personal API token a script presents
	Source  *Source
	System  bool
	Name    string // for the system: which command or job ("cli", "sweeper")
}

// SystemActor acts for the command line and background jobs.
var SystemActor = &Actor{System: true}

type actorKey struct{}

// NewContextWithActor returns ctx carrying a.
func NewContextWithActor(ctx context.Context, a *Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFromContext returns the actor in ctx, or nil.
func ActorFromContext(ctx context.Context) *Actor {
	a, _ := ctx.Value(actorKey{}).(*Actor)
	return a
}

// Role is the actor's role, or "" for non-users.
func (a *Actor) Role() string {
	if a == nil || a.User == nil {
		return ""
	}
	return a.User.Role
}

// Every access decision is made by the functions below. Stores apply the
// same decisions inside their queries through RecordingScope.

// Scope says which recordings' metadata an actor may see.
type Scope struct {
	None       bool    // nothing at all
	All        bool    // every academy, including unassigned
	AcademyIDs []int64 // otherwise, these academies' recordings
	// GrantedTo, when set, adds the recordings this user holds an active
	// grant for (a listener sees only those).
	GrantedTo int64
}

// RecordingScope returns the metadata scope of the actor: the system, admins,
// the CEO and the DPO see every academy; principals see their own academies;
// every user also sees the recordings they hold an active grant for, which
// is all a listener sees. Sources see nothing.
func RecordingScope(a *Actor) Scope {
	switch {
	case a == nil:
		return Scope{None: true}
	case a.System:
		return Scope{All: true}
	case a.User == nil || a.User.Disabled:
		return Scope{None: true}
	}
	switch a.User.Role {
	case RoleAdmin, RoleCEO, RoleDPO:
		return Scope{All: true}
	case RolePrincipal:
		return Scope{AcademyIDs: slices.Clone(a.User.AcademyIDs), GrantedTo: a.User.ID}
	case RoleListener:
		return Scope{GrantedTo: a.User.ID}
	}
	return Scope{None: true}
}

// CanSearch reports whether the actor may search recording metadata:
// everyone with a scope except listeners, who only see what is shared with
// them.
func CanSearch(a *Actor) bool {
	s := RecordingScope(a)
	return !s.None && a.Role() != RoleListener && (s.All || len(s.AcademyIDs) > 0)
}

// InScope reports whether academyID is within s (grants aside).
func (s Scope) InScope(academyID int64) bool {
	return !s.None && (s.All || slices.Contains(s.AcademyIDs, academyID))
}

// CanPlay reports whether the actor may hear the recording: only with an
// active grant of their own that covers it, for every role — admins
// included. The caller looks the grant up (GrantService.ActiveGrant) and
// passes what it found, possibly nil.
func CanPlay(a *Actor, r *Recording, g *Grant, now time.Time) bool {
	if a == nil || a.User == nil || a.User.Disabled || r == nil || g == nil {
		return false
	}
	return r.State == StateStored && g.ListenerID == a.User.ID && g.Covers(r.ID) && g.Active(now)
}

// CanManage reports whether the actor may manage users, academies and sources.
func CanManage(a *Actor) bool {
	return a != nil && (a.System || (a.User != nil && !a.User.Disabled && a.User.Role == RoleAdmin))
}
