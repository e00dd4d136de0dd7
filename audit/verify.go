package audit

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/callvault/callvault"
)

// Problem kinds reported by Verify.
const (
	// KindModified: an entry's stored hash differs from the hash recomputed
	// over its stored fields (a field, its hash or its prev_hash was edited).
	KindModified = "modified"
	// KindMissing: a sequence number is absent (a row was deleted).
	KindMissing = "missing"
	// KindReordered: an entry's own hash recomputes (over its stored fields,
	// or with another seq if the rows were renumbered) but it does not link
	// to the entry before it; or the sequence goes backwards or repeats; or
	// a skipped seq turns up later.
	KindReordered = "reordered"
	// KindTruncated: a checkpoint refers to a seq beyond the stored head
	// (the tail was cut off, or an older backup was restored).
	KindTruncated = "truncated"
	// KindRewritten: a checkpoint's hash differs from the stored hash at its
	// seq (the chain was rebuilt consistently after a change).
	KindRewritten = "rewritten"
	// KindSignature: a checkpoint does not verify with the public key.
	KindSignature = "signature"
)

// Position is a point in the chain: a sequence number and the hash there.
type Position struct {
	Seq  int64
	Hash string
}

// Report is the outcome of Verify. Entries, Head and Redacted cover the
// entries checked before the first problem (all of them if there is none).
type Report struct {
	Entries                 int64    // entries checked after the anchor
	Anchor                  Position // where the stored chain starts
	Head                    Position // the last entry checked
	Redacted                int64    // redacted entries among them: linked, not recomputed
	CheckpointsChecked      int      // checkpoints that matched the stored trail
	CheckpointsBeforeAnchor int      // older than the anchor: pruned, cannot be checked
	ChainOnly               bool     // no public key: checkpoints were not used
	Problem                 *Problem // the first problem, or nil
}

// OK reports whether no problem was found.
func (r Report) OK() bool { return r.Problem == nil }

func (r Report) String() string {
	s := fmt.Sprintf("no entries after the anchor at seq %d, %d checkpoints matched", r.Anchor.Seq, r.CheckpointsChecked)
	if r.Entries > 0 {
		s = fmt.Sprintf("%d entries from seq %d to %d (%d redacted), %d checkpoints matched",
			r.Entries, r.Anchor.Seq+1, r.Head.Seq, r.Redacted, r.CheckpointsChecked)
	}
	if r.CheckpointsBeforeAnchor > 0 {
		s += fmt.Sprintf(", %d older than the anchor not checkable", r.CheckpointsBeforeAnchor)
	}
	if r.ChainOnly {
		s += "; no public key: only the chain was checked, which cannot detect a rebuilt chain, a cut-off tail or a restored backup"
	}
	if r.Problem != nil {
		s += "; PROBLEM: " + r.Problem.Error()
	}
	return s
}

// Problem is the first thing wrong with the trail.
type Problem struct {
	Seq    int64  // the first bad sequence number
	Kind   string // one of the Kind constants
	Detail string // for people
}

func (p *Problem) Error() string {
	return fmt.Sprintf("seq %d: %s: %s", p.Seq, p.Kind, p.Detail)
}

// errStop ends a walk early.
var errStop = errors.New("stop")

// Verify checks the stored trail, from its anchor (callvault.AuditStore
// AuditAnchor) to its head, against the chain and the checkpoints, and
// reports the first problem (lowest seq) in Report.Problem. The error is
// for failures to read the store (EUNAVAILABLE), not for tampering.
//
// Every checkpoint must verify with pub before anything else is looked at.
// With pub nil the checkpoints are ignored and only the chain is checked,
// which a consistent rebuild defeats; Report.ChainOnly says so. Checkpoints
// older than the anchor are counted in CheckpointsBeforeAnchor, not failed.
//
// For KindRewritten, Seq is the checkpoint's seq: the change is somewhere
// after the previous matching checkpoint (or the anchor) and at or before
// it. For KindTruncated, Seq is the first seq that is gone.
func Verify(ctx context.Context, store callvault.AuditStore, pub ed25519.PublicKey, checkpoints []*Checkpoint) (Report, error) {
	r := Report{ChainOnly: pub == nil}
	var cps []*Checkpoint
	if pub != nil {
		for _, c := range checkpoints {
			if err := c.Verify(pub); err != nil && (r.Problem == nil || c.Seq < r.Problem.Seq) {
				r.Problem = &Problem{Seq: c.Seq, Kind: KindSignature, Detail: err.Error()}
			}
		}
		if r.Problem != nil {
			return r, nil
		}
		cps = slices.Clone(checkpoints)
		slices.SortStableFunc(cps, func(a, b *Checkpoint) int { return cmp.Compare(a.Seq, b.Seq) })
	}

	headSeq, _, err := store.AuditHead(ctx)
	if err != nil {
		return r, callvault.Wrap(callvault.EUNAVAILABLE, err, "the audit trail cannot be read")
	}
	anchorSeq, anchorHash, err := store.AuditAnchor(ctx)
	if err != nil {
		return r, callvault.Wrap(callvault.EUNAVAILABLE, err, "the audit trail cannot be read")
	}
	r.Anchor = Position{anchorSeq, anchorHash}
	r.Head = r.Anchor
	w := &walker{r: &r, h: newChainHasher(), prevSeq: anchorSeq, lastGood: anchorSeq, headSeq: headSeq}
	if !decodeHash(&w.prev, anchorHash) || copy(w.prevHex[:], anchorHash) != len(w.prevHex) {
		r.Problem = &Problem{Seq: anchorSeq, Kind: KindModified, Detail: fmt.Sprintf("the anchor's hash %q is not a hash", anchorHash)}
		return r, nil
	}
	for len(cps) > 0 && cps[0].Seq < anchorSeq {
		r.CheckpointsBeforeAnchor++
		cps = cps[1:]
	}
	w.cps = cps
	if w.checkpoints(anchorSeq, &w.prev) {
		return r, nil
	}

	err = store.WalkAudit(ctx, anchorSeq+1, func(e *callvault.AuditEvent) error {
		return w.visit(ctx, e)
	})
	if err != nil && !errors.Is(err, errStop) {
		return r, callvault.Wrap(callvault.EUNAVAILABLE, err, "the audit trail cannot be read")
	}
	switch {
	case r.Problem != nil:
	case w.gap != 0 && w.gapFound:
		r.Problem = &Problem{Seq: w.gap, Kind: KindReordered, Detail: fmt.Sprintf(
			"seq %d follows seq %d, and seq %d comes later: entries were moved", w.gapNext, w.prevSeq, w.gap)}
	case w.gap != 0:
		gone := fmt.Sprintf("seq %d was deleted", w.gap)
		if w.gapNext-1 > w.gap {
			gone = fmt.Sprintf("seq %d to %d were deleted", w.gap, w.gapNext-1)
		}
		r.Problem = &Problem{Seq: w.gap, Kind: KindMissing, Detail: fmt.Sprintf("seq %d follows seq %d: %s", w.gapNext, w.prevSeq, gone)}
	case w.prevSeq < headSeq:
		r.Problem = &Problem{Seq: w.prevSeq + 1, Kind: KindMissing, Detail: fmt.Sprintf(
			"the store's head is seq %d but its entries end at seq %d", headSeq, w.prevSeq)}
	case len(w.cps) > 0:
		c := w.cps[len(w.cps)-1]
		r.Problem = &Problem{Seq: w.prevSeq + 1, Kind: KindTruncated, Detail: fmt.Sprintf(
			"a checkpoint signed at %s covers seq %d but the trail ends at seq %d: entries were cut off or an older copy of the trail was restored",
			c.Time.Format(checkpointTimeLayout), c.Seq, w.prevSeq)}
	}
	return r, nil
}

// walker holds the state of one verification walk.
type walker struct {
	r        *Report
	h        *chainHasher
	cps      []*Checkpoint // not yet compared, by seq
	prevSeq  int64
	prev     [sha256.Size]byte     // hash of the entry at prevSeq
	prevHex  [2 * sha256.Size]byte // the same, as stored (lower-case hex)
	lastGood int64                 // seq of the last matching checkpoint (or the anchor)
	headSeq  int64                 // the store's head when the walk began

	// Scratch space for the current entry. Here rather than on the stack
	// because the hasher's Write makes them escape: one allocation per
	// entry otherwise.
	stored, storedPrev [sha256.Size]byte
	sumHex             [2 * sha256.Size]byte

	// After a jump in seq the walk only looks for the skipped seq: if it
	// comes later the entries were moved, otherwise deleted.
	gap, gapNext int64
	gapFound     bool
}

func (w *walker) problem(seq int64, kind, format string, args ...any) error {
	w.r.Problem = &Problem{Seq: seq, Kind: kind, Detail: fmt.Sprintf(format, args...)}
	return errStop
}

func (w *walker) visit(ctx context.Context, e *callvault.AuditEvent) error {
	if w.gap != 0 {
		if e.Seq == w.gap {
			w.gapFound = true
			return errStop
		}
		return nil
	}
	if w.r.Entries&0xfff == 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	switch {
	case e.Seq == w.prevSeq+1:
	case e.Seq > w.prevSeq+1:
		w.gap, w.gapNext = w.prevSeq+1, e.Seq
		return nil
	default:
		return w.problem(e.Seq, KindReordered, "seq %d follows seq %d: the sequence goes backwards or repeats", e.Seq, w.prevSeq)
	}

	// The usual case costs one hash and one 32-byte hex encoding: the
	// stored prev_hash is compared, as text, with the previous entry's hash,
	// and the stored hash with the encoding of the recomputed one. Stored
	// hashes are decoded only when something does not match.
	linked := e.PrevHash == string(w.prevHex[:])
	prevOK, prev := linked, &w.prev
	if !linked {
		prevOK, prev = decodeHash(&w.storedPrev, e.PrevHash), &w.storedPrev
	}
	recomputes := false
	if prevOK {
		hex.Encode(w.sumHex[:], w.h.chain(prev, e)[:])
		recomputes = e.Hash == string(w.sumHex[:])
	}
	if !recomputes && !decodeHash(&w.stored, e.Hash) {
		return w.problem(e.Seq, KindModified, "its hash %q is not a hash", e.Hash)
	}
	switch {
	case e.Redacted && !recomputes && (e.Reason != "" || len(e.Details) > 0):
		return w.problem(e.Seq, KindModified, "it is marked redacted but keeps a reason or details, and its hash does not recompute")
	case !e.Redacted && !prevOK:
		return w.problem(e.Seq, KindModified, "its prev_hash %q is not a hash", e.PrevHash)
	case !e.Redacted && !recomputes && linked:
		return w.problem(e.Seq, KindModified, "its stored hash differs from the hash of its stored fields: a field was changed")
	case !e.Redacted && !recomputes && prevOK:
		if orig, ok := w.renumbered(e, prev); ok {
			return w.problem(e.Seq, KindReordered, "it is entry %d renumbered (its hash recomputes with that seq) and does not link to seq %d: entries were moved", orig, w.prevSeq)
		}
		return w.problem(e.Seq, KindModified, "its stored hash differs from the hash of its stored fields, and it does not link to seq %d", w.prevSeq)
	case !linked && e.Redacted:
		return w.problem(e.Seq, KindReordered, "this redacted entry does not link to seq %d: entries were moved, or one of the two was replaced", w.prevSeq)
	case !linked:
		return w.problem(e.Seq, KindReordered, "its hash recomputes but it does not link to seq %d: entries were moved, or seq %d was replaced", w.prevSeq, w.prevSeq)
	}
	if recomputes {
		w.prev = w.h.sum
	} else { // redacted: its stored hash is all there is
		w.prev = w.stored
	}
	if e.Redacted {
		w.r.Redacted++
	}
	copy(w.prevHex[:], e.Hash)
	w.prevSeq = e.Seq
	w.r.Entries++
	w.r.Head = Position{e.Seq, e.Hash}
	if len(w.cps) > 0 && w.cps[0].Seq == e.Seq && w.checkpoints(e.Seq, &w.prev) {
		return errStop
	}
	return nil
}

// checkpoints compares the checkpoints at seq with the stored hash there
// and reports whether one differs.
func (w *walker) checkpoints(seq int64, stored *[sha256.Size]byte) bool {
	for len(w.cps) > 0 && w.cps[0].Seq == seq {
		c := w.cps[0]
		var h [sha256.Size]byte
		if !decodeHash(&h, c.Hash) || h != *stored {
			what := fmt.Sprintf("entries after seq %d and up to %d were changed and the chain rebuilt", w.lastGood, seq)
			if seq == w.r.Anchor.Seq {
				what = "the anchor was changed, or the entries up to it were rewritten before they were pruned"
			}
			w.problem(seq, KindRewritten, "the checkpoint signed at %s says the hash at seq %d is %s, the trail has %x: %s",
				c.Time.Format(checkpointTimeLayout), seq, c.Hash, stored[:], what)
			return true
		}
		w.r.CheckpointsChecked++
		w.lastGood = seq
		w.cps = w.cps[1:]
	}
	return false
}

// maxRenumberTries bounds the search in renumbered.
const maxRenumberTries = 1 << 24

// renumbered reports whether e, which neither recomputes nor links, is an
// intact entry whose seq was changed, as moving rows in a table keyed by
// seq does: it tries the other seqs of the trail, nearest first. Only a
// failing verification pays for this (at worst one hash per entry).
func (w *walker) renumbered(e *callvault.AuditEvent, prev *[sha256.Size]byte) (int64, bool) {
	if !decodeHash(&w.stored, e.Hash) {
		return 0, false
	}
	c := *e
	lo, hi := w.r.Anchor.Seq+1, max(w.headSeq, e.Seq)
	for d, tries := int64(1), 0; tries < maxRenumberTries && (e.Seq-d >= lo || e.Seq+d <= hi); d++ {
		for _, seq := range [2]int64{e.Seq - d, e.Seq + d} {
			if seq < lo || seq > hi {
				continue
			}
			tries++
			c.Seq = seq
			if *w.h.chain(prev, &c) == w.stored {
				return seq, true
			}
		}
	}
	return 0, false
}
