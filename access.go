package callvault

import (
	"context"
	"slices"
)

// Actor is whoever is acting: a signed-in user, an ingest source, or the
// system itself (command line, background jobs).
type Actor struct {
	User   *User
	Source *Source
	System bool
	Name   string // for the system: which command or job ("cli", "sweeper")
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

// Scope says which academies' recordings an actor may see metadata of.
type Scope struct {
	None       bool    // nothing at all
	All        bool    // every academy, including unassigned
	AcademyIDs []int64 // otherwise, these
}

// RecordingScope returns the metadata scope of the actor: the system, admins,
// the CEO and the DPO see every academy; principals see their own academies;
// listeners and sources see nothing (listeners gain access through grants in
// a later version).
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
		if len(a.User.AcademyIDs) == 0 {
			return Scope{None: true}
		}
		return Scope{AcademyIDs: slices.Clone(a.User.AcademyIDs)}
	}
	return Scope{None: true}
}

// CanSearch reports whether the actor may search recording metadata.
func CanSearch(a *Actor) bool { return !RecordingScope(a).None }

// InScope reports whether academyID is within s.
func (s Scope) InScope(academyID int64) bool {
	return !s.None && (s.All || slices.Contains(s.AcademyIDs, academyID))
}

// CanPlay reports whether the actor may hear the recording. For now only
// admins may; listen grants replace this rule.
func CanPlay(a *Actor, r *Recording) bool {
	if a == nil || a.User == nil || a.User.Disabled || r == nil {
		return false
	}
	return a.User.Role == RoleAdmin && r.State == StateStored
}

// CanManage reports whether the actor may manage users, academies and sources.
func CanManage(a *Actor) bool {
	return a != nil && (a.System || (a.User != nil && !a.User.Disabled && a.User.Role == RoleAdmin))
}
