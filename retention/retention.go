// Package retention deletes recordings when the retention policy says so,
// provably, and crypto-shreds what is left of them in backups.
//
// A run (Purger.Run, scheduled by the server and run by `callvault
// retention run`) does three things:
//
//  1. Resume: recordings queued by an earlier run that was killed have their
//     blobs and rows deleted. Their receipts were written when they were
//     queued. Recordings whose key epoch is destroyed (only possible after
//     a backup taken before the destruction is restored) are removed with
//     a receipt each: a restore never brings purged months back.
//  2. Purge: recordings past retain-until with no active hold are taken in
//     batches. For each batch one transaction redacts earlier audit entries
//     about them, writes one deletion receipt each (recording id, SHA-256,
//     academy, rule, retain-until, key epoch, run) and queues them; only
//     then are their blobs deleted, then their rows (participants and links
//     cascade). A purge whose receipts cannot be written deletes nothing;
//     one killed after that is finished by the next run. No renditions are
//     stored (they are made on the fly), so there are none to delete.
//  3. Shred: a key epoch (a month of recordings) that no recording uses any
//     more is closed to new recordings, then, once it has been closed for
//     CloseGrace, destroyed: every copy of its recordings in every backup
//     becomes unreadable. If the only recordings left in an epoch are held,
//     they are first re-encrypted under a hold epoch ("hold-2026-11"), so
//     a hold never keeps a whole month readable.
//
// A dry run (DryRun with any AsOf) lists exactly what a real run at that
// time would purge, and changes nothing.
package retention

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/callvault/callvault"
)

// Keyring is what retention needs of the vault.
type Keyring interface {
	Epochs() ([]callvault.KeyEpochInfo, error)
	CloseEpoch(epoch string) (time.Time, error)
	DestroyEpoch(epoch string) error
}

// Rewrapper re-encrypts a recording under another epoch (archive.Archive).
type Rewrapper interface {
	Rewrap(ctx context.Context, rec *callvault.Recording, epoch string, move func(ctx context.Context, newKey string) error) error
}

// Purger runs retention.
type Purger struct {
	Store   callvault.PurgeStore
	Blobs   callvault.BlobStore
	Keys    Keyring
	Rewrap  Rewrapper
	Auditor callvault.Auditor // key destruction and re-wrap entries
	Now     func() time.Time
	Logger  *slog.Logger

	// Batch is how many recordings one transaction queues (default 500).
	Batch int
	// CloseGrace is how long an epoch stays closed before it is destroyed:
	// longer than any ingest takes (default 24 hours).
	CloseGrace time.Duration
}

// Options of one run.
type Options struct {
	AsOf   time.Time // zero: now. A real run refuses a time in the future.
	DryRun bool
	// Each, when set, is called for every recording purged (or, in a dry
	// run, that would be), in order.
	Each func(e *callvault.Expired)
}

// Report says what a run did.
type Report struct {
	RunID     string    `json:"run"`
	AsOf      time.Time `json:"as_of"`
	DryRun    bool      `json:"dry_run"`
	Resumed   int       `json:"resumed"` // finished from an earlier, interrupted run
	Purged    int       `json:"purged"`
	Bytes     int64     `json:"bytes"`
	Rewrapped int       `json:"rewrapped"`
	Closed    []string  `json:"closed,omitempty"`    // epochs closed to new recordings
	Destroyed []string  `json:"destroyed,omitempty"` // epochs crypto-shredded

	// Forgotten recordings were restored from a backup although their key
	// epoch had been destroyed since: removed with a receipt each.
	Forgotten       int      `json:"forgotten,omitempty"`
	ForgottenEpochs []string `json:"forgotten_epochs,omitempty"`
	// MissingKeys are epochs recordings use that the keyring has no key
	// for at all (keys not restored yet?): nothing is done about them.
	MissingKeys []string `json:"missing_keys,omitempty"`
}

// Run purges and shreds as of opts.AsOf; see the package comment.
func (p *Purger) Run(ctx context.Context, opts Options) (Report, error) {
	now := p.now()
	rep := Report{RunID: newRunID(now), AsOf: opts.AsOf, DryRun: opts.DryRun}
	if rep.AsOf.IsZero() {
		rep.AsOf = now
	}
	if !opts.DryRun && rep.AsOf.After(now) {
		return rep, callvault.Errorf(callvault.EINVALID, "a real run cannot look ahead: --as-of %s is in the future (use --dry-run to preview)", rep.AsOf.Format(time.RFC3339))
	}
	ctx = callvault.NewContextWithActor(ctx, &callvault.Actor{System: true, Name: "retention:" + rep.RunID})
	if !opts.DryRun {
		n, err := p.resume(ctx)
		rep.Resumed = n
		if err != nil {
			return rep, err
		}
		if err := p.forgetShredded(ctx, &rep, now); err != nil {
			return rep, err
		}
	}
	if err := p.purge(ctx, &rep, opts); err != nil {
		return rep, err
	}
	if opts.DryRun {
		return rep, nil
	}
	if err := p.shred(ctx, &rep, now); err != nil {
		return rep, err
	}
	return rep, nil
}

func newRunID(now time.Time) string {
	b := make([]byte, 4)
	rand.Read(b)
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

// resume finishes recordings queued by an interrupted run.
func (p *Purger) resume(ctx context.Context) (int, error) {
	total := 0
	for {
		qs, err := p.Store.QueuedPurges(ctx, p.batch())
		if err != nil {
			return total, err
		}
		if len(qs) == 0 {
			return total, nil
		}
		ids := make([]string, len(qs))
		keys := make([]string, len(qs))
		for i, q := range qs {
			ids[i], keys[i] = q.ID, q.BlobKey
		}
		if _, err := p.deleteBlobs(ctx, keys); err != nil {
			return total, fmt.Errorf("retention: finish an interrupted run: %w", err)
		}
		if err := p.Store.FinishPurge(ctx, ids); err != nil {
			return total, err
		}
		total += len(ids)
		p.log().Warn("retention: finished deleting recordings queued by an interrupted run", "count", len(ids), "run", qs[0].RunID)
	}
}

func (p *Purger) purge(ctx context.Context, rep *Report, opts Options) error {
	var after callvault.ExpiredCursor
	for {
		page, err := p.Store.ExpiredRecordings(ctx, rep.AsOf, after, p.batch())
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		last := page[len(page)-1]
		after = callvault.ExpiredCursor{RetainUntil: last.RetainUntil, ID: last.ID}
		if opts.DryRun {
			for _, e := range page {
				rep.Purged++
				rep.Bytes += e.Size
				if opts.Each != nil {
					opts.Each(e)
				}
			}
			continue
		}
		ids := make([]string, len(page))
		for i, e := range page {
			ids[i] = e.ID
		}
		queued, err := p.Store.QueuePurge(ctx, rep.RunID, rep.AsOf, ids)
		if err != nil {
			return fmt.Errorf("retention: write deletion receipts: %w", err)
		}
		keys := make([]string, len(queued))
		for i, e := range queued {
			keys[i] = e.BlobKey
		}
		ok, err := p.deleteBlobs(ctx, keys)
		done := make([]string, 0, len(queued))
		for i, e := range queued {
			if ok[i] {
				done = append(done, e.ID)
			}
		}
		if err != nil {
			// The receipts are written and the rest stays queued: the
			// next run finishes it.
			if ferr := p.Store.FinishPurge(ctx, done); ferr != nil {
				p.log().Error("retention: could not finish purged rows", "err", ferr)
			}
			return fmt.Errorf("retention: delete blobs (the next run finishes them): %w", err)
		}
		if err := p.Store.FinishPurge(ctx, done); err != nil {
			return err
		}
		for _, e := range queued {
			rep.Purged++
			rep.Bytes += e.Size
			if opts.Each != nil {
				opts.Each(e)
			}
		}
	}
}

// deleteWorkers delete blobs in parallel: each deletion waits for the
// disk (the file store syncs the directory), and the waits overlap.
const deleteWorkers = 8

// manyDeleter is a blob store that deletes a batch at once with one sync
// per directory (blob.FileStore).
type manyDeleter interface {
	DeleteMany(ctx context.Context, keys []string) error
}

// deleteBlobs deletes keys and reports which were deleted; err is the first
// failure. Deleting a missing blob is not a failure.
func (p *Purger) deleteBlobs(ctx context.Context, keys []string) ([]bool, error) {
	ok := make([]bool, len(keys))
	if md, isMany := p.Blobs.(manyDeleter); isMany {
		if err := md.DeleteMany(ctx, keys); err != nil {
			return ok, err // the next run deletes them all again
		}
		for i := range ok {
			ok[i] = true
		}
		return ok, nil
	}
	errs := make([]error, len(keys))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(deleteWorkers, len(keys)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if errs[i] = p.Blobs.Delete(ctx, keys[i]); errs[i] == nil {
					ok[i] = true
				}
			}
		}()
	}
	for i := range keys {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return ok, fmt.Errorf("blob %s: %w", keys[i], err)
		}
	}
	return ok, nil
}

// shred re-wraps, closes and destroys key epochs nothing needs any more.
func (p *Purger) shred(ctx context.Context, rep *Report, now time.Time) error {
	states, err := p.Keys.Epochs()
	if err != nil {
		return err
	}
	usage, err := p.usage(ctx, rep.AsOf)
	if err != nil {
		return err
	}
	for _, st := range states {
		if st.State == callvault.KeyEpochDestroyed || !monthDone(st.Epoch, now) {
			continue
		}
		u := usage[st.Epoch]
		if u.Recordings > 0 && u.Live == 0 && u.Held == u.Recordings && st.State == callvault.KeyEpochActive && !isHoldEpoch(st.Epoch) {
			n, err := p.rewrapHeld(ctx, st.Epoch, now)
			rep.Rewrapped += n
			if err != nil {
				return err
			}
			if usage, err = p.usage(ctx, rep.AsOf); err != nil {
				return err
			}
			u = usage[st.Epoch]
		}
		if u.Recordings > 0 {
			if st.State == callvault.KeyEpochClosing {
				p.log().Warn("retention: a closed key epoch is in use again and is kept", "epoch", st.Epoch, "recordings", u.Recordings)
			}
			continue
		}
		closedAt := st.ClosedAt
		if st.State == callvault.KeyEpochActive {
			if _, err = p.Keys.CloseEpoch(st.Epoch); err != nil {
				return err
			}
			closedAt = now // by this run's clock, which tests control
			rep.Closed = append(rep.Closed, st.Epoch)
		}
		if now.Sub(closedAt) < p.closeGrace() {
			continue
		}
		if err := p.destroy(ctx, st.Epoch, rep); err != nil {
			return err
		}
	}
	return nil
}

func (p *Purger) usage(ctx context.Context, asOf time.Time) (map[string]callvault.EpochUsage, error) {
	us, err := p.Store.EpochUsage(ctx, asOf)
	if err != nil {
		return nil, err
	}
	m := make(map[string]callvault.EpochUsage, len(us))
	for _, u := range us {
		m[u.Epoch] = u
	}
	return m, nil
}

// destroy checks once more that nothing uses the epoch, records the
// destruction, then destroys the key. If the entry cannot be written the
// key is kept.
func (p *Purger) destroy(ctx context.Context, epoch string, rep *Report) error {
	usage, err := p.usage(ctx, rep.AsOf)
	if err != nil {
		return err
	}
	if usage[epoch].Recordings > 0 {
		return nil
	}
	e := &callvault.AuditEvent{Action: "key.destroy", TargetType: "key_epoch", TargetID: epoch,
		Outcome: callvault.OutcomeAllowed, Details: map[string]string{"run": rep.RunID}}
	e.SetActor(callvault.ActorFromContext(ctx))
	if err := p.Auditor.Record(ctx, e); err != nil {
		return fmt.Errorf("retention: record destruction of key epoch %s (kept): %w", epoch, err)
	}
	if err := p.Keys.DestroyEpoch(epoch); err != nil {
		return fmt.Errorf("retention: destroy key epoch %s: %w", epoch, err)
	}
	rep.Destroyed = append(rep.Destroyed, epoch)
	p.log().Info("retention: key epoch destroyed; its recordings are unreadable in every backup", "epoch", epoch, "run", rep.RunID)
	return nil
}

// rewrapHeld re-encrypts the held recordings of epoch under a hold epoch.
func (p *Purger) rewrapHeld(ctx context.Context, epoch string, now time.Time) (int, error) {
	recs, err := p.Store.HeldInEpoch(ctx, epoch)
	if err != nil {
		return 0, err
	}
	to := callvault.HoldEpoch(now)
	n := 0
	for _, rec := range recs {
		err := p.Rewrap.Rewrap(ctx, rec, to, func(ctx context.Context, newKey string) error {
			return p.Store.MoveRecording(withAudit(ctx, rec, epoch, to), rec.ID, rec.BlobKey, newKey, to)
		})
		if err != nil {
			return n, fmt.Errorf("retention: re-wrap held recording %s: %w", rec.ID, err)
		}
		n++
	}
	if n > 0 {
		p.log().Info("retention: re-wrapped held recordings under a hold epoch", "from", epoch, "to", to, "count", n)
	}
	return n, nil
}

// withAudit carries the re-wrap's audit entry into the transaction that
// re-points the row.
func withAudit(ctx context.Context, rec *callvault.Recording, from, to string) context.Context {
	e := callvault.AuditEvent{Action: "recording.rewrap", TargetType: "recording", TargetID: rec.ID, AcademyID: rec.AcademyID,
		Details: map[string]string{"from_epoch": from, "to_epoch": to, "why": "held while its month's key is destroyed"}}
	e.SetActor(callvault.ActorFromContext(ctx))
	return callvault.WithPendingAudit(ctx, callvault.NewPendingAudit(e))
}

// monthDone reports whether a whole month has passed since epoch's month
// ended, so no call of it can still be in progress or in flight.
func monthDone(epoch string, now time.Time) bool {
	t, err := time.ParseInLocation("2006-01", strings.TrimPrefix(epoch, callvault.HoldEpochPrefix), callvault.London)
	if err != nil {
		return false
	}
	return !now.Before(t.AddDate(0, 2, 0))
}

func isHoldEpoch(epoch string) bool { return strings.HasPrefix(epoch, callvault.HoldEpochPrefix) }

func (p *Purger) batch() int {
	if p.Batch > 0 {
		return p.Batch
	}
	return 500
}

func (p *Purger) closeGrace() time.Duration {
	if p.CloseGrace > 0 {
		return p.CloseGrace
	}
	if p.CloseGrace < 0 {
		return 0
	}
	return 24 * time.Hour
}

func (p *Purger) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Purger) log() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.Default()
}

// Summary is one line for logs and the command line.
func (r Report) Summary() string {
	verb := "purged"
	if r.DryRun {
		verb = "would purge"
	}
	s := fmt.Sprintf("%s %d recordings (%s bytes) as of %s", verb, r.Purged, strconv.FormatInt(r.Bytes, 10), r.AsOf.Format(time.RFC3339))
	if r.Resumed > 0 {
		s += fmt.Sprintf("; finished %d from an interrupted run", r.Resumed)
	}
	if r.Rewrapped > 0 {
		s += fmt.Sprintf("; re-wrapped %d held", r.Rewrapped)
	}
	if len(r.Closed) > 0 {
		s += "; closed key epochs " + strings.Join(r.Closed, ", ")
	}
	if len(r.Destroyed) > 0 {
		s += "; destroyed key epochs " + strings.Join(r.Destroyed, ", ")
	}
	if r.Forgotten > 0 {
		s += fmt.Sprintf("; removed %d restored recordings of destroyed key epochs %s", r.Forgotten, strings.Join(r.ForgottenEpochs, ", "))
	}
	if len(r.MissingKeys) > 0 {
		s += "; NO KEY for epochs " + strings.Join(r.MissingKeys, ", ")
	}
	return s
}
