package audit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/callvault/callvault"
)

// t0 is when the tests' trail starts.
var t0 = time.Date(2026, 11, 27, 9, 30, 15, 123_000_000, time.UTC)

var (
	actions  = []string{"recording.play", "recording.view", "recording.search", "recording.download", "login", "grant.create", "hold.place", "user.update"}
	outcomes = []string{callvault.OutcomeAllowed, callvault.OutcomeAllowed, callvault.OutcomeAllowed, callvault.OutcomeDenied, callvault.OutcomeFailed}
	logins   = []string{"jsmith", "akhan", "mbrown", "dpo.office", "ceo", "head.stmarys", "itadmin"}
	roles    = []string{callvault.RolePrincipal, callvault.RoleAdmin, callvault.RoleDPO, callvault.RoleCEO}
)

// randomEvent returns a realistic event: a user or source acting on a
// recording, with a reason and details now and then.
func randomEvent(r *rand.Rand, i int) *callvault.AuditEvent {
	e := &callvault.AuditEvent{
		Time:       t0.Add(time.Duration(i) * 1500 * time.Millisecond),
		ActorKind:  callvault.ActorUser,
		ActorID:    fmt.Sprint(r.IntN(400) + 1),
		ActorName:  logins[r.IntN(len(logins))],
		ActorRole:  roles[r.IntN(len(roles))],
		Action:     actions[r.IntN(len(actions))],
		TargetType: "recording",
		TargetID:   fmt.Sprintf("01a21d26-d622-7959-af57-%012x", r.Uint64()&0xffffffffffff),
		AcademyID:  int64(r.IntN(12) + 1),
		Outcome:    outcomes[r.IntN(len(outcomes))],
		ClientAddr: fmt.Sprintf("10.%d.%d.%d", r.IntN(256), r.IntN(256), r.IntN(256)),
	}
	switch r.IntN(4) {
	case 0:
		e.ActorKind, e.ActorRole, e.ActorName = callvault.ActorSource, "", "siprec-main"
	case 1:
		e.Reason = "complaint ref C-" + fmt.Sprint(r.IntN(1000)) + " — parent call"
		e.Details = map[string]string{"range": "bytes=0-65535", "format": "wav"}
	case 2:
		e.Details = map[string]string{"query": "from:07700900" + fmt.Sprint(r.IntN(1000))}
	}
	return e
}

// fill appends n random events to store in batches, as Log would.
func fill(tb testing.TB, store callvault.AuditStore, n int, seed uint64) []*callvault.AuditEvent {
	tb.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	var all []*callvault.AuditEvent
	for len(all) < n {
		batch := make([]*callvault.AuditEvent, min(1+r.IntN(64), n-len(all)))
		for i := range batch {
			batch[i] = randomEvent(r, len(all)+i)
		}
		if err := store.AppendAudit(context.Background(), batch); err != nil {
			tb.Fatalf("AppendAudit: %v", err)
		}
		all = append(all, batch...)
	}
	return all
}

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// waitFor polls cond until it holds or a few seconds pass.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
