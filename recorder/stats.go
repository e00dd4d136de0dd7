package recorder

import (
	"maps"

	"github.com/callvault/callvault/media"
)

// Totals sums the media counters of every session since the recorder
// started: those that ended (counted once, when they end) and those in
// progress. The counters only grow, so they can be exported as Prometheus
// counters. Jitter is the largest in any session in progress, Audio the
// longest.
func (r *Recorder) Totals() media.StreamStats {
	r.mu.Lock()
	t := r.done
	t.Jitter, t.Audio = 0, 0
	t.Codecs = maps.Clone(r.done.Codecs) // t.Add writes to it outside the lock
	ms := make([]*media.Session, 0, len(r.sessions))
	for _, s := range r.sessions {
		if !s.counted {
			ms = append(ms, s.media)
		}
	}
	r.mu.Unlock()
	for _, m := range ms {
		t.Add(m.Stats().Total)
	}
	return t
}
