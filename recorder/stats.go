package recorder

import "github.com/callvault/callvault/media"

// Totals sums the media counters of the sessions the recorder holds: those
// in progress and those that have ended but whose recording is still being
// stored. A stored session drops out, so read Totals before the sessions
// you measure hang up (a load test reads it twice in its steady state).
// Jitter is the largest of any stream, Audio the longest; Codecs is nil.
func (r *Recorder) Totals() media.StreamStats {
	r.mu.Lock()
	ms := make([]*media.Session, 0, len(r.sessions))
	for _, s := range r.sessions {
		ms = append(ms, s.media)
	}
	r.mu.Unlock()
	var t media.StreamStats
	for _, m := range ms {
		s := m.Stats().Total
		t.Datagrams += s.Datagrams
		t.Packets += s.Packets
		t.Bytes += s.Bytes
		t.Lost += s.Lost
		t.Late += s.Late
		t.Duplicates += s.Duplicates
		t.Reordered += s.Reordered
		t.WrongSource += s.WrongSource
		t.RTCP += s.RTCP
		t.Malformed += s.Malformed
		t.UnknownPT += s.UnknownPT
		t.Paused += s.Paused
		t.SSRCChanges += s.SSRCChanges
		t.Resyncs += s.Resyncs
		t.Jitter = max(t.Jitter, s.Jitter)
		t.Audio = max(t.Audio, s.Audio)
	}
	return t
}
