package callvault

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strconv"
	"time"
)

// Audit outcomes.
const (
	OutcomeAllowed = "allowed" // the action was permitted and happened
	OutcomeDenied  = "denied"  // refused by an access decision
	OutcomeFailed  = "failed"  // permitted but failed (bad input, a fault)
)

// Actor kinds in the audit trail.
const (
	ActorUser      = "user"
	ActorSource    = "source"
	ActorSystem    = "system"
	ActorAnonymous = "anonymous" // a request from someone not signed in
)

// ValidActorKind reports whether k is an actor kind.
func ValidActorKind(k string) bool {
	return k == ActorUser || k == ActorSource || k == ActorSystem || k == ActorAnonymous
}

// AuditEvent is one entry of the tamper-evident audit trail. It never holds
// audio, passwords or tokens; phone numbers only where the action needs them.
type AuditEvent struct {
	Seq        int64             `json:"seq"`
	Time       time.Time         `json:"time"` // UTC, millisecond precision
	ActorKind  string            `json:"actor_kind"`
	ActorID    string            `json:"actor_id,omitempty"`   // user or source id
	ActorName  string            `json:"actor_name,omitempty"` // login, source name, or the job
	ActorRole  string            `json:"actor_role,omitempty"`
	Action     string            `json:"action"` // e.g. recording.play
	TargetType string            `json:"target_type,omitempty"`
	TargetID   string            `json:"target_id,omitempty"`
	AcademyID  int64             `json:"academy_id,omitempty"`
	Outcome    string            `json:"outcome"`
	ClientAddr string            `json:"client_addr,omitempty"`
	Reason     string            `json:"reason,omitempty"`
	Details    map[string]string `json:"details,omitempty"`
	PrevHash   string            `json:"prev_hash"` // hex SHA-256 of the previous entry; GenesisHash for the first
	Hash       string            `json:"hash"`      // hex SHA-256 over PrevHash and CanonicalV1

	// Redacted entries had their reason and details removed when the
	// recording they concern was purged (storage limitation). Their hash can
	// no longer be recomputed, but they still link the chain: the next
	// entry's PrevHash must equal their Hash. Not covered by the hash.
	Redacted bool `json:"redacted,omitempty"`
}

// GenesisHash is the PrevHash of the first entry.
var GenesisHash = hex.EncodeToString(make([]byte, sha256.Size))

// AuditEncodingV1 opens every canonical encoding. The encoding below is
// frozen: changing it would make every stored hash fail to verify. A new
// encoding gets a new version and entries record which one they use.
const AuditEncodingV1 = "callvault-audit-v1"

// CanonicalV1 is the frozen, documented byte encoding of an entry that its
// hash covers: the version string, then each field in this order as a
// uvarint length followed by its bytes — seq (decimal), time (Unix
// milliseconds, decimal), actor kind, actor id, actor name, actor role,
// action, target type, target id, academy id (decimal), outcome, client
// address, reason, then the number of details (decimal) followed by each
// key and value, keys in byte order. Strings are UTF-8 as stored.
func (e *AuditEvent) CanonicalV1() []byte {
	b := make([]byte, 0, 256)
	field := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	field(AuditEncodingV1)
	field(strconv.FormatInt(e.Seq, 10))
	field(strconv.FormatInt(e.Time.UnixMilli(), 10))
	field(e.ActorKind)
	field(e.ActorID)
	field(e.ActorName)
	field(e.ActorRole)
	field(e.Action)
	field(e.TargetType)
	field(e.TargetID)
	field(strconv.FormatInt(e.AcademyID, 10))
	field(e.Outcome)
	field(e.ClientAddr)
	field(e.Reason)
	keys := make([]string, 0, len(e.Details))
	for k := range e.Details {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	field(strconv.Itoa(len(keys)))
	for _, k := range keys {
		field(k)
		field(e.Details[k])
	}
	return b
}

// ChainHash returns the hex hash of e chained to prev (hex):
// SHA-256(prev bytes || CanonicalV1(e)).
func ChainHash(prev string, e *AuditEvent) string {
	p, _ := hex.DecodeString(prev)
	h := sha256.New()
	h.Write(p)
	h.Write(e.CanonicalV1())
	return hex.EncodeToString(h.Sum(nil))
}

// Auditor records audit events. Record returns only when the event is
// durable; an error (EUNAVAILABLE) means the action it describes must not
// happen or be reported as done.
type Auditor interface {
	Record(ctx context.Context, e *AuditEvent) error
}

// AuditFilter selects audit events. Zero fields do not filter.
type AuditFilter struct {
	ActorName  string
	Action     string // exact, or a prefix ending in "." such as "recording."
	TargetType string
	TargetID   string
	From, To   time.Time
	Before     int64 // keyset: events with Seq < Before
	Limit      int   // default 100, max 1000
}

// AuditStore keeps the chain. Implementations compute Seq, PrevHash and Hash
// inside the same transaction that stores the events, so concurrent writers
// (even in other processes) cannot fork the chain.
type AuditStore interface {
	// AppendAudit stores events in order, all or none, durably. It sets
	// Seq, PrevHash and Hash on each. EUNAVAILABLE when the trail cannot be
	// written (disk full, database down).
	AppendAudit(ctx context.Context, events []*AuditEvent) error
	// AuditHead returns the last sequence number and hash (0 and GenesisHash
	// for an empty trail).
	AuditHead(ctx context.Context) (int64, string, error)
	// WalkAudit calls fn for every stored event with from <= Seq, in order,
	// as stored (for verification and export; not scoped: system only).
	WalkAudit(ctx context.Context, from int64, fn func(*AuditEvent) error) error
	// FindAuditEvents searches newest first, scoped to the actor (see
	// AuditScope; principals also see events they caused themselves);
	// others get EFORBIDDEN.
	FindAuditEvents(ctx context.Context, f AuditFilter) ([]*AuditEvent, error)
	// RedactAudit removes reason and details from every event about the
	// target (when a recording is purged, its entries keep only ids and
	// hashes) and marks them Redacted. Returns how many changed.
	RedactAudit(ctx context.Context, targetType, targetID string) (int64, error)
	// PruneAudit deletes events older than before (the trail's own
	// retention, default 6 years) and records the last deleted event's seq
	// and hash as the anchor the chain now starts from. Returns how many.
	PruneAudit(ctx context.Context, before time.Time) (int64, error)
	// AuditAnchor is where the stored chain starts: (0, GenesisHash) until
	// events have been pruned.
	AuditAnchor(ctx context.Context) (int64, string, error)
}

// DefaultAuditRetention is how long the trail itself is kept.
const DefaultAuditRetentionYears = 6

// CanReadAudit reports whether the actor may search the audit trail.
func CanReadAudit(a *Actor) bool {
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
		return len(a.User.AcademyIDs) > 0
	}
	return false
}

// AuditScope is the academies whose events the actor may read: all for dpo
// and ceo, their own for principals (plus events about no academy that they
// caused themselves).
func AuditScope(a *Actor) Scope {
	if !CanReadAudit(a) {
		return Scope{None: true}
	}
	if a.System || a.User.Role != RolePrincipal {
		return Scope{All: true}
	}
	return Scope{AcademyIDs: slices.Clone(a.User.AcademyIDs)}
}

// SetActor fills the actor fields of e from a.
func (e *AuditEvent) SetActor(a *Actor) {
	switch {
	case a == nil:
		e.ActorKind = ActorAnonymous
	case a.User != nil:
		e.ActorKind, e.ActorID, e.ActorName, e.ActorRole = ActorUser, strconv.FormatInt(a.User.ID, 10), a.User.Login, a.User.Role
	case a.Source != nil:
		e.ActorKind, e.ActorID, e.ActorName = ActorSource, strconv.FormatInt(a.Source.ID, 10), a.Source.Name
	default:
		e.ActorKind = ActorSystem
		if e.ActorName == "" {
			e.ActorName = a.Name
		}
	}
}
