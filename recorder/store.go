package recorder

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/archive"
	"github.com/callvault/callvault/media"
)

// finish ends a session's media and stores its recording in the
// background; the spool stays until the recording is stored.
func (r *Recorder) finish(s *session, why string) {
	sp, err := s.media.Finish()
	stats := s.media.Stats()
	st := stats.Total
	r.mu.Lock()
	r.done.Add(st)
	s.counted = true
	r.ended[strings.ReplaceAll(strings.ToLower(why), " ", "_")]++
	r.mu.Unlock()
	for _, p := range s.ports {
		if p != 0 {
			r.ports.release(p)
		}
	}
	if err != nil {
		r.log().Error("recording session ended with an error; storing what was spooled", "call_id", s.callID, "err", err)
		if sp == nil {
			r.drop(s)
			return
		}
	}
	r.mu.Lock()
	r.storing++
	r.mu.Unlock()
	go func() {
		defer func() {
			r.mu.Lock()
			r.storing--
			r.stored.Broadcast()
			r.mu.Unlock()
		}()
		defer r.drop(s)
		if err := r.storeRetrying(sp, s.callID); err != nil {
			r.log().Error("recording could not be stored; its spool is kept and retried at the next start", "call_id", s.callID, "err", err)
			r.mu.Lock()
			r.kept++
			r.mu.Unlock()
			return
		}
		r.log().Info("recording session ended", "call_id", s.callID, "why", why, "duration", sp.Duration().Round(time.Millisecond),
			"packets", st.Packets, "lost", st.Lost, "late", st.Late, "duplicates", st.Duplicates, "wrong_source", st.WrongSource,
			"resyncs", st.Resyncs, "jitter", st.Jitter, "streams", streamSummary(stats.Streams))
	}()
}

// streamSummary says, stream by stream, what arrived and what was dropped,
// for the log line that ends a session: a stream that recorded nothing
// names its reason (wrong key, wrong source, nothing sent).
func streamSummary(streams []media.StreamStats) string {
	var b strings.Builder
	for i, s := range streams {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %d datagrams, %d packets, %d lost", s.Label, s.Datagrams, s.Packets, s.Lost)
		for _, c := range []struct {
			n    uint64
			what string
		}{{s.AuthFailed, "failed SRTP authentication"}, {s.WrongSource, "from the wrong source"}, {s.Malformed, "malformed"},
			{s.Duplicates, "duplicates"}, {s.Late, "late"}, {s.UnknownPT, "of unknown payload type"}} {
			if c.n > 0 {
				fmt.Fprintf(&b, ", %d %s", c.n, c.what)
			}
		}
	}
	return b.String()
}

// Retries of a recording that could not be stored: the database or the
// blob store may be down for a while. The spool keeps the audio meanwhile.
const (
	retryFirst = time.Second
	retryMax   = time.Minute
)

// storeRetrying stores a finished session, retrying for as long as the
// recorder runs while the failure is one that time can mend (storage or
// database unavailable). A recording the archive refuses as invalid is not
// retried. Either way a spool that was not stored stays for the next start.
func (r *Recorder) storeRetrying(sp *media.Spool, callID string) error {
	wait := retryFirst
	for attempt := 1; ; attempt++ {
		err := r.store(context.Background(), sp, sp.Interrupted)
		if err == nil {
			if attempt > 1 {
				r.log().Info("recording stored after retrying", "call_id", callID, "attempts", attempt)
			}
			r.storeSucceeded()
			return nil
		}
		r.storeFailed(err)
		switch callvault.ErrorCode(err) {
		case callvault.EINVALID, callvault.EUNSUPPORTED, callvault.ETOOLARGE:
			return err
		}
		r.log().Error("recording could not be stored; retrying (its audio is safe in the spool)", "call_id", callID, "attempt", attempt, "in", wait, "err", err)
		select {
		case <-r.stopping:
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, retryMax)
	}
}

// StoreAlert is what Recorder.Alert is told when recordings stop being
// stored (the database or the blob store is down, or refuses one) and
// when they are stored again.
type StoreAlert struct {
	Failing bool  // false: storing works again
	Pending int   // recordings waiting in the spool
	Err     error // the latest failure, when Failing
}

// storeAlertEvery is how often Alert is repeated while storing keeps
// failing.
const storeAlertEvery = 24 * time.Hour

// storeFailed counts a failure to store a recording and alerts on the
// first, and again every storeAlertEvery while failures go on.
func (r *Recorder) storeFailed(err error) {
	r.mu.Lock()
	r.storeFailures++
	now := r.now()
	send := !r.storeFailing || now.Sub(r.storeAlerted) >= storeAlertEvery
	r.storeFailing = true
	if send {
		r.storeAlerted = now
	}
	a := StoreAlert{Failing: true, Pending: r.pendingLocked(), Err: err}
	r.mu.Unlock()
	if send && r.Alert != nil {
		r.Alert(a)
	}
}

// storeSucceeded ends a failing spell: Alert is told once.
func (r *Recorder) storeSucceeded() {
	r.mu.Lock()
	was := r.storeFailing
	r.storeFailing = false
	a := StoreAlert{Pending: r.pendingLocked() - 1} // the one just stored is still in the map
	r.mu.Unlock()
	if was && r.Alert != nil {
		a.Pending = max(0, a.Pending)
		r.Alert(a)
	}
}

// pendingLocked counts the recordings waiting in the spool: sessions that
// ended and are being stored, and those kept for the next start.
func (r *Recorder) pendingLocked() int {
	n := r.kept
	for _, s := range r.sessions {
		if s.ending {
			n++
		}
	}
	return n
}

func (r *Recorder) drop(s *session) {
	r.mu.Lock()
	if r.sessions[s.callID] == s {
		delete(r.sessions, s.callID)
	}
	r.mu.Unlock()
}

// store renders a spool into the encrypted ingest path and removes it once
// the recording is stored (or was already: ingest is idempotent by
// Call-ID).
func (r *Recorder) store(ctx context.Context, sp *media.Spool, interrupted bool) error {
	var m spoolMeta
	if err := json.Unmarshal(sp.Meta, &m); err != nil || m.CallID == "" {
		return fmt.Errorf("spool %s has no usable session header: %v", sp.ID, err)
	}
	end := sp.End
	meta := archive.Metadata{SourceRef: m.CallID, StartedAt: sp.Start, EndedAt: &end, Direction: m.Direction}
	for _, p := range m.Participants {
		meta.Participants = append(meta.Participants, archive.MetadataParticipant{Number: p.Number, Extension: p.Extension, Name: p.Name, Side: p.Side})
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(sp.Render(pw)) }()
	pauses := make([]callvault.Pause, len(sp.Paused))
	for i, p := range sp.Paused {
		pauses[i] = callvault.Pause{From: p.From, To: p.To}
	}
	sys := callvault.NewContextWithActor(ctx, &callvault.Actor{Source: r.Source})
	ev := callvault.AuditEvent{Action: "recording.ingest", Details: map[string]string{"via": "siprec", "call_id": m.CallID,
		"codec": strings.Join(m.Codecs, ","), "interrupted": strconv.FormatBool(interrupted)}}
	ev.SetActor(callvault.ActorFromContext(sys))
	_, _, err := r.Archive.Ingest(callvault.WithPendingAudit(sys, callvault.NewPendingAudit(ev)), archive.IngestRequest{Source: r.Source, Meta: meta, Audio: pr,
		Interrupted: interrupted, Pauses: pauses})
	pr.CloseWithError(err)
	if err != nil {
		return err
	}
	return sp.Remove()
}

// Recover stores the recordings of sessions a crash interrupted (kill -9,
// power loss): all audio up to the last flush. Call it before Start.
func (r *Recorder) Recover(ctx context.Context) (int, error) {
	spools, err := media.Recover(r.SpoolDir)
	if err != nil {
		// Store what could be read; the rest stays for the operator.
		r.log().Error("some spools of interrupted sessions cannot be read; they are kept", "err", err)
	}
	n := 0
	for _, sp := range spools {
		if sp.Frames() == 0 {
			r.log().Warn("an interrupted session had no audio; its spool is removed", "spool", sp.ID)
			sp.Remove()
			continue
		}
		if err := r.store(ctx, sp, sp.Interrupted); err != nil {
			r.log().Error("interrupted recording could not be stored; its spool is kept", "spool", sp.ID, "err", err)
			r.mu.Lock()
			r.kept++
			r.mu.Unlock()
			r.storeFailed(err)
			continue
		}
		n++
	}
	return n, err
}
