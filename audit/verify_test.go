package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callvault/callvault"
)

// env is a trail of 100 entries, a signing key and a key that is not it.
type env struct {
	t      *testing.T
	store  *memStore
	signer *Signer
	other  *Signer
	added  int
}

var envKeys struct {
	signer, other *Signer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if envKeys.signer == nil {
		dir := t.TempDir()
		var err error
		if envKeys.signer, _, err = LoadOrCreateSigner(filepath.Join(dir, "a.key")); err != nil {
			t.Fatal(err)
		}
		if envKeys.other, _, err = LoadOrCreateSigner(filepath.Join(dir, "b.key")); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{t: t, store: newMemStore(), signer: envKeys.signer, other: envKeys.other}
	e.more(100)
	return e
}

// more appends n entries, as the running system would.
func (e *env) more(n int) {
	fill(e.t, e.store, n, uint64(e.added))
	e.added += n
}

// hashAt is the stored hash at seq.
func (e *env) hashAt(seq int64) string {
	if seq == 0 {
		return callvault.GenesisHash
	}
	var h string
	e.store.WalkAudit(context.Background(), seq, func(ev *callvault.AuditEvent) error {
		if ev.Seq == seq {
			h = ev.Hash
		}
		return nil
	})
	if h == "" {
		e.t.Fatalf("no entry at seq %d", seq)
	}
	return h
}

// cp is a checkpoint of the trail as it now stands at seq.
func (e *env) cp(seq int64) *Checkpoint {
	return e.signer.Sign(seq, e.hashAt(seq), t0.Add(time.Duration(seq)*time.Minute))
}

// cps is checkpoints at each seq.
func (e *env) cps(seqs ...int64) []*Checkpoint {
	var out []*Checkpoint
	for _, s := range seqs {
		out = append(out, e.cp(s))
	}
	return out
}

type verifyCase struct {
	name string
	// do tampers with the trail and returns the checkpoints to verify with.
	do   func(e *env) []*Checkpoint
	pub  func(e *env) ed25519.PublicKey // default: the signer's
	kind string                         // "" for a clean report
	seq  int64
}

func runVerifyCases(t *testing.T, tests []verifyCase) {
	t.Helper()
	for _, tt := range tests {
		e := newEnv(t)
		cps := tt.do(e)
		pub := e.signer.PublicKey()
		if tt.pub != nil {
			pub = tt.pub(e)
		}
		r, err := Verify(context.Background(), e.store, pub, cps)
		if err != nil {
			t.Errorf("%s: Verify(store, pub, %d checkpoints) = %v", tt.name, len(cps), err)
			continue
		}
		switch {
		case tt.kind == "" && r.Problem != nil:
			t.Errorf("%s: Verify(store, pub, %d checkpoints) = %v, want no problem", tt.name, len(cps), r.Problem)
		case tt.kind != "" && r.Problem == nil:
			t.Errorf("%s: Verify(store, pub, %d checkpoints) found nothing, want %s at seq %d (report: %v)", tt.name, len(cps), tt.kind, tt.seq, r)
		case tt.kind != "" && (r.Problem.Kind != tt.kind || r.Problem.Seq != tt.seq):
			t.Errorf("%s: Verify(store, pub, %d checkpoints) = %v, want %s at seq %d", tt.name, len(cps), r.Problem, tt.kind, tt.seq)
		}
	}
}

func TestVerifyClean(t *testing.T) {
	e := newEnv(t)
	cps := e.cps(0, 30, 60, 100, 60)
	r, err := Verify(context.Background(), e.store, e.signer.PublicKey(), cps)
	want := Report{Entries: 100, Anchor: Position{0, callvault.GenesisHash}, Head: Position{100, e.hashAt(100)}, CheckpointsChecked: 5}
	if err != nil || r.Problem != nil || r.Entries != want.Entries || r.Anchor != want.Anchor || r.Head != want.Head ||
		r.CheckpointsChecked != want.CheckpointsChecked || r.ChainOnly || !r.OK() {
		t.Errorf("Verify(clean trail, 5 checkpoints) = %+v, %v; want %+v", r, err, want)
	}

	r, err = Verify(context.Background(), e.store, nil, cps)
	if err != nil || r.Problem != nil || !r.ChainOnly || r.CheckpointsChecked != 0 || !strings.Contains(r.String(), "only the chain") {
		t.Errorf("Verify(clean trail, no key) = %+v, %v; want chain only, no checkpoints used", r, err)
	}

	empty := newMemStore()
	r, err = Verify(context.Background(), empty, e.signer.PublicKey(), []*Checkpoint{e.signer.Sign(0, callvault.GenesisHash, t0)})
	if err != nil || r.Problem != nil || r.Entries != 0 || r.Head.Seq != 0 || r.CheckpointsChecked != 1 {
		t.Errorf("Verify(empty trail, checkpoint of it) = %+v, %v; want clean, 1 checkpoint", r, err)
	}
}

// Editing any field of a stored row breaks its hash.
func TestVerifyModified(t *testing.T) {
	edits := map[string]func(ev *callvault.AuditEvent){
		"time":         func(ev *callvault.AuditEvent) { ev.Time = ev.Time.Add(time.Millisecond) },
		"actor kind":   func(ev *callvault.AuditEvent) { ev.ActorKind = callvault.ActorSystem },
		"actor id":     func(ev *callvault.AuditEvent) { ev.ActorID += "0" },
		"actor name":   func(ev *callvault.AuditEvent) { ev.ActorName = "someone.else" },
		"actor role":   func(ev *callvault.AuditEvent) { ev.ActorRole = "listener" },
		"action":       func(ev *callvault.AuditEvent) { ev.Action = "recording.viewed" },
		"target type":  func(ev *callvault.AuditEvent) { ev.TargetType = "grant" },
		"target id":    func(ev *callvault.AuditEvent) { ev.TargetID = "x" },
		"academy":      func(ev *callvault.AuditEvent) { ev.AcademyID++ },
		"outcome":      func(ev *callvault.AuditEvent) { ev.Outcome = callvault.OutcomeFailed },
		"client":       func(ev *callvault.AuditEvent) { ev.ClientAddr = "192.0.2.99" },
		"reason":       func(ev *callvault.AuditEvent) { ev.Reason = "routine check" },
		"detail added": func(ev *callvault.AuditEvent) { ev.Details = map[string]string{"extra": ""} },
		"details set":  func(ev *callvault.AuditEvent) { ev.Details = map[string]string{"range": "bytes=0-1", "format": "mp3"} },
		"prev hash":    func(ev *callvault.AuditEvent) { ev.PrevHash = callvault.GenesisHash },
		"hash":         func(ev *callvault.AuditEvent) { ev.Hash = strings.Repeat("0", 63) + "1" },
		"hash not hex": func(ev *callvault.AuditEvent) { ev.Hash = strings.ToUpper(ev.Hash) },
		"prev not hex": func(ev *callvault.AuditEvent) { ev.PrevHash = "" },
		"redacted flag set to hide a changed reason": func(ev *callvault.AuditEvent) {
			ev.Redacted, ev.Reason = true, "routine check"
		},
	}
	var tests []verifyCase
	for name, edit := range edits {
		tests = append(tests, verifyCase{
			name: "edit " + name + " of seq 37",
			do: func(e *env) []*Checkpoint {
				cps := e.cps(100)
				e.store.edit(37, edit)
				return cps
			},
			kind: KindModified, seq: 37,
		})
	}
	tests = append(tests,
		verifyCase{"edit the first row", func(e *env) []*Checkpoint {
			e.store.edit(1, func(ev *callvault.AuditEvent) { ev.ActorName = "x" })
			return nil
		}, nil, KindModified, 1},
		verifyCase{"edit the last row", func(e *env) []*Checkpoint {
			e.store.edit(100, func(ev *callvault.AuditEvent) { ev.Outcome = callvault.OutcomeDenied })
			return nil
		}, nil, KindModified, 100},
		verifyCase{"two edits: the first is reported", func(e *env) []*Checkpoint {
			e.store.edit(80, func(ev *callvault.AuditEvent) { ev.ActorName = "x" })
			e.store.edit(30, func(ev *callvault.AuditEvent) { ev.ActorName = "x" })
			return nil
		}, nil, KindModified, 30},
		verifyCase{"edit and a later deletion: the edit is reported", func(e *env) []*Checkpoint {
			e.store.edit(30, func(ev *callvault.AuditEvent) { ev.Reason = "x" })
			e.store.deleteRow(60)
			return nil
		}, nil, KindModified, 30},
	)
	runVerifyCases(t, tests)
}

func TestVerifyMissingAndReordered(t *testing.T) {
	runVerifyCases(t, []verifyCase{
		{"delete a row", func(e *env) []*Checkpoint { e.store.deleteRow(50); return e.cps(100) }, nil, KindMissing, 50},
		{"delete the first row", func(e *env) []*Checkpoint { e.store.deleteRow(1); return nil }, nil, KindMissing, 1},
		{"delete three rows", func(e *env) []*Checkpoint {
			e.store.deleteRow(51)
			e.store.deleteRow(50)
			e.store.deleteRow(52)
			return nil
		}, nil, KindMissing, 50},
		{"renumber a row", func(e *env) []*Checkpoint {
			e.store.edit(37, func(ev *callvault.AuditEvent) { ev.Seq = 1037 })
			return nil
		}, nil, KindMissing, 37},
		{"swap two adjacent rows", func(e *env) []*Checkpoint { e.store.swapRows(40, 41); return e.cps(100) }, nil, KindReordered, 40},
		{"swap two distant rows", func(e *env) []*Checkpoint { e.store.swapRows(70, 40); return nil }, nil, KindReordered, 40},
		{"swap the first and last rows", func(e *env) []*Checkpoint { e.store.swapRows(1, 100); return nil }, nil, KindReordered, 1},
		{"swap the seqs of two adjacent rows", func(e *env) []*Checkpoint { e.store.swapSeqs(40, 41); return e.cps(100) }, nil, KindReordered, 40},
		{"swap the seqs of two distant rows", func(e *env) []*Checkpoint { e.store.swapSeqs(70, 40); return nil }, nil, KindReordered, 40},
		{"swap the seqs of the first and last rows", func(e *env) []*Checkpoint { e.store.swapSeqs(1, 100); return nil }, nil, KindReordered, 1},
		{"renumber a row into a gap", func(e *env) []*Checkpoint {
			// 38 deleted, 37 renumbered 38: it links, but its fields changed.
			e.store.deleteRow(38)
			e.store.edit(37, func(ev *callvault.AuditEvent) { ev.Seq = 38 })
			return nil
		}, nil, KindMissing, 37},
		{"duplicate a row", func(e *env) []*Checkpoint {
			e.store.tamper(func(rows []*callvault.AuditEvent) []*callvault.AuditEvent {
				return slices.Insert(rows, 50, rows[49]) // seq 50 twice
			})
			return nil
		}, nil, KindReordered, 50},
		{"replace a row with an edited, rehashed copy", func(e *env) []*Checkpoint {
			// Its own hash recomputes; the next entry no longer links to it.
			e.store.edit(50, func(ev *callvault.AuditEvent) {
				ev.Reason = "nothing to see"
				ev.Hash = callvault.ChainHash(ev.PrevHash, ev)
			})
			return nil
		}, nil, KindReordered, 51},
		{"move a row between two trails", func(e *env) []*Checkpoint {
			// Seq 50 from another trail: genuine, but not this chain's.
			other := newMemStore()
			fill(t, other, 60, 999)
			var foreign *callvault.AuditEvent
			other.WalkAudit(context.Background(), 50, func(ev *callvault.AuditEvent) error {
				if foreign == nil {
					foreign = ev
				}
				return nil
			})
			e.store.edit(50, func(ev *callvault.AuditEvent) { *ev = *foreign })
			return nil
		}, nil, KindReordered, 50},
	})
}

func TestVerifyCheckpoints(t *testing.T) {
	wrongKey := func(e *env) ed25519.PublicKey { return e.other.PublicKey() }
	runVerifyCases(t, []verifyCase{
		{"truncate the tail after a checkpoint", func(e *env) []*Checkpoint {
			cps := e.cps(50, 100)
			e.store.truncate(91)
			return cps
		}, nil, KindTruncated, 91},
		{"truncate everything", func(e *env) []*Checkpoint {
			cps := e.cps(100)
			e.store.truncate(1)
			return cps
		}, nil, KindTruncated, 1},
		{"truncate before the checkpoint was taken (not detectable)", func(e *env) []*Checkpoint {
			cps := e.cps(80)
			e.store.truncate(91)
			return cps
		}, nil, "", 0},
		{"restore an old backup after a newer checkpoint", func(e *env) []*Checkpoint {
			backup := e.store.backup()
			e.more(40)
			cps := e.cps(100, 140)
			e.store.restore(backup)
			return cps
		}, nil, KindTruncated, 101},
		{"restore an old backup and carry on writing", func(e *env) []*Checkpoint {
			backup := e.store.backup()
			e.more(40)
			cps := e.cps(100, 140)
			e.store.restore(backup)
			e.more(50)
			return cps
		}, nil, KindRewritten, 140},
		{"rebuild the chain after an edit", func(e *env) []*Checkpoint {
			cps := e.cps(80)
			e.store.rewrite(50, func(ev *callvault.AuditEvent) { ev.ActorName = "nobody" })
			return cps
		}, nil, KindRewritten, 80},
		{"rebuild the chain: the first checkpoint after the edit is reported", func(e *env) []*Checkpoint {
			cps := e.cps(90, 30, 60, 100)
			e.store.rewrite(50, func(ev *callvault.AuditEvent) { ev.ActorName = "nobody" })
			return cps
		}, nil, KindRewritten, 60},
		{"rebuild the chain at the checkpoint's own entry", func(e *env) []*Checkpoint {
			cps := e.cps(80)
			e.store.rewrite(80, func(ev *callvault.AuditEvent) { ev.Outcome = callvault.OutcomeDenied })
			return cps
		}, nil, KindRewritten, 80},
		{"rebuild the chain after the last checkpoint (not detectable)", func(e *env) []*Checkpoint {
			cps := e.cps(40)
			e.store.rewrite(50, func(ev *callvault.AuditEvent) { ev.ActorName = "nobody" })
			return cps
		}, nil, "", 0},
		{"rebuild the chain, verified without a key (not detectable)", func(e *env) []*Checkpoint {
			cps := e.cps(80)
			e.store.rewrite(50, func(ev *callvault.AuditEvent) { ev.ActorName = "nobody" })
			return cps
		}, func(e *env) ed25519.PublicKey { return nil }, "", 0},
		{"checkpoint signed by another key", func(e *env) []*Checkpoint {
			return []*Checkpoint{e.cp(20), e.other.Sign(60, e.hashAt(60), t0), e.cp(90)}
		}, nil, KindSignature, 60},
		{"verified with the wrong public key", func(e *env) []*Checkpoint { return e.cps(90, 20, 60) }, wrongKey, KindSignature, 20},
		{"forged checkpoint hiding a rebuilt chain", func(e *env) []*Checkpoint {
			e.store.rewrite(50, func(ev *callvault.AuditEvent) { ev.ActorName = "nobody" })
			c := e.cp(80) // of the rebuilt chain, then made to look like ours
			c.Time = c.Time.Add(-time.Hour)
			return []*Checkpoint{c}
		}, nil, KindSignature, 80},
		{"bad signature checked before the chain", func(e *env) []*Checkpoint {
			e.store.edit(10, func(ev *callvault.AuditEvent) { ev.ActorName = "x" })
			c := e.cp(90)
			c.Signature[0] ^= 1
			return []*Checkpoint{c}
		}, nil, KindSignature, 90},
	})
}

func TestVerifyRedacted(t *testing.T) {
	e := newEnv(t)
	cps := e.cps(100)
	var targets []string
	e.store.WalkAudit(context.Background(), 0, func(ev *callvault.AuditEvent) error {
		if ev.Seq%10 == 3 && (ev.Reason != "" || len(ev.Details) > 0) {
			targets = append(targets, ev.TargetID)
		}
		return nil
	})
	var redacted int64
	for _, id := range targets {
		n, err := e.store.RedactAudit(context.Background(), "recording", id)
		if err != nil {
			t.Fatal(err)
		}
		redacted += n
	}
	if redacted == 0 {
		t.Fatal("nothing was redacted")
	}
	r, err := Verify(context.Background(), e.store, e.signer.PublicKey(), cps)
	if err != nil || r.Problem != nil || r.Redacted != redacted || r.Entries != 100 || r.CheckpointsChecked != 1 {
		t.Errorf("Verify(trail with %d redacted entries) = %+v, %v; want clean with Redacted %d", redacted, r, err, redacted)
	}

	// A redacted entry still links: replacing its hash breaks the next link.
	var seq int64
	e.store.WalkAudit(context.Background(), 0, func(ev *callvault.AuditEvent) error {
		if ev.Redacted && seq == 0 && ev.Seq < 100 {
			seq = ev.Seq
		}
		return nil
	})
	e.store.edit(seq, func(ev *callvault.AuditEvent) { ev.Hash = strings.Repeat("ab", 32) })
	r, err = Verify(context.Background(), e.store, e.signer.PublicKey(), cps)
	if err != nil || r.Problem == nil || r.Problem.Kind != KindReordered || r.Problem.Seq != seq+1 {
		t.Errorf("Verify(redacted seq %d with a replaced hash) = %v, %v; want %s at %d", seq, r.Problem, err, KindReordered, seq+1)
	}
}

// A known limit, kept visible: an entry marked redacted (reason and details
// removed) is only checked for its position, so its other fields can be
// changed without the chain showing it. Report.Redacted gives it away.
func TestVerifyRedactedLimit(t *testing.T) {
	e := newEnv(t)
	e.store.edit(40, func(ev *callvault.AuditEvent) {
		ev.Redacted, ev.Reason, ev.Details, ev.ActorName = true, "", nil, "someone.else"
	})
	r, err := Verify(context.Background(), e.store, e.signer.PublicKey(), e.cps(100))
	if err != nil || r.Problem != nil || r.Redacted != 1 {
		t.Errorf("Verify(entry marked redacted and changed) = %+v, %v; want no problem and Redacted 1 (the documented limit)", r, err)
	}
}

func TestVerifyPruned(t *testing.T) {
	prune := func(e *env) []*Checkpoint {
		cps := e.cps(20, 40, 80)
		// randomEvent spaces entries 1.5 s apart from t0: this prunes 1..40.
		if n, err := e.store.PruneAudit(context.Background(), t0.Add(40*1500*time.Millisecond-time.Millisecond)); err != nil || n != 40 {
			e.t.Fatalf("PruneAudit = %d, %v; want 40", n, err)
		}
		return cps
	}
	e := newEnv(t)
	cps := prune(e)
	r, err := Verify(context.Background(), e.store, e.signer.PublicKey(), cps)
	if err != nil || r.Problem != nil || r.Anchor.Seq != 40 || r.Entries != 60 || r.CheckpointsBeforeAnchor != 1 || r.CheckpointsChecked != 2 {
		t.Errorf("Verify(pruned to 40) = %+v, %v; want clean from anchor 40, 60 entries, 1 checkpoint before it, 2 checked", r, err)
	}
	if !strings.Contains(r.String(), "older than the anchor") {
		t.Errorf("Report.String() = %q does not mention the uncheckable checkpoint", r.String())
	}

	runVerifyCases(t, []verifyCase{
		{"pruned", prune, nil, "", 0},
		{"pruned, then the anchor's successor deleted", func(e *env) []*Checkpoint {
			cps := prune(e)
			e.store.deleteRow(41)
			return cps
		}, nil, KindMissing, 41},
		{"pruned, then the anchor's successor edited", func(e *env) []*Checkpoint {
			cps := prune(e)
			e.store.edit(41, func(ev *callvault.AuditEvent) { ev.Reason = "x" })
			return cps
		}, nil, KindModified, 41},
		{"pruned, then the anchor hash replaced", func(e *env) []*Checkpoint {
			cps := prune(e)
			e.store.setAnchor(40, strings.Repeat("cd", 32))
			return cps[2:] // without the checkpoint at the anchor
		}, nil, KindReordered, 41},
		{"pruned, then the anchor hash replaced, with a checkpoint at the anchor", func(e *env) []*Checkpoint {
			cps := prune(e)
			e.store.setAnchor(40, strings.Repeat("cd", 32))
			return cps
		}, nil, KindRewritten, 40},
		// A known limit: deleting the oldest entries and moving the anchor
		// looks like a prune. Only the audited prune events and checkpoints
		// older than the anchor tell.
		{"oldest entry deleted and the anchor moved (not detectable)", func(e *env) []*Checkpoint {
			cps := prune(e)
			h := e.hashAt(41)
			e.store.deleteRow(41)
			e.store.setAnchor(41, h)
			return cps
		}, nil, "", 0},
	})
}

// failingStore fails reads.
type failingStore struct{ *memStore }

func (failingStore) WalkAudit(context.Context, int64, func(*callvault.AuditEvent) error) error {
	return errors.New("database is locked")
}

func TestVerifyStoreError(t *testing.T) {
	s := failingStore{newMemStore()}
	fill(t, s.memStore, 3, 1)
	_, err := Verify(context.Background(), s, nil, nil)
	if callvault.ErrorCode(err) != callvault.EUNAVAILABLE || !strings.Contains(err.Error(), "database is locked") {
		t.Errorf("Verify(store that cannot be read) = %v, want %s with the cause", err, callvault.EUNAVAILABLE)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Verify(ctx, newMemStore(), nil, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Verify(cancelled) = %v, want context.Canceled", err)
	}
}

// The fast path must produce exactly callvault.ChainHash.
func TestChainHasherMatchesChainHash(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	alphabet := []rune("aZ0.-_ é—\x00\n\u00fc\U0001F600")
	str := func() string {
		n := []int{0, 1, 5, 40, 127, 128, 300}[r.IntN(7)]
		b := make([]rune, n)
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return string(b)
	}
	h := newChainHasher()
	for i := range 10000 {
		e := randomEvent(r, i)
		if i%2 == 0 {
			e = &callvault.AuditEvent{
				Seq: r.Int64() - r.Int64(), Time: time.UnixMilli(r.Int64N(1<<50) - 1<<49),
				ActorKind: str(), ActorID: str(), ActorName: str(), ActorRole: str(), Action: str(),
				TargetType: str(), TargetID: str(), AcademyID: r.Int64() - r.Int64(), Outcome: str(),
				ClientAddr: str(), Reason: str(),
			}
			if i%100 == 0 { // a length prefix of three bytes
				e.Reason = strings.Repeat("é", 9000)
			}
			if n := r.IntN(5); n > 0 {
				e.Details = map[string]string{}
				for range n * n {
					e.Details[str()] = str()
				}
			}
		} else {
			e.Seq = int64(i)
		}
		var prev [32]byte
		for j := range prev {
			prev[j] = byte(r.Uint32())
		}
		prevHex := fmt.Sprintf("%x", prev)
		want := callvault.ChainHash(prevHex, e)
		if got := fmt.Sprintf("%x", *h.chain(&prev, e)); got != want {
			t.Fatalf("chainHasher.chain(%s, %+v) = %s, want ChainHash's %s", prevHex, e, got, want)
		}
		if got := h.appendCanonicalV1(nil, e); string(got) != string(e.CanonicalV1()) {
			t.Fatalf("appendCanonicalV1(%+v) differs from CanonicalV1", e)
		}
	}
}

func TestChainHasherAllocations(t *testing.T) {
	e := randomEvent(rand.New(rand.NewPCG(1, 1)), 1)
	e.Details = map[string]string{"b": "2", "a": "1", "c": "3"}
	h := newChainHasher()
	var prev [32]byte
	h.chain(&prev, e)
	if n := testing.AllocsPerRun(100, func() { h.chain(&prev, e) }); n != 0 {
		t.Errorf("chainHasher.chain allocates %v times per entry, want 0", n)
	}
}
