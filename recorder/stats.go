package recorder

import "github.com/callvault/callvault/media"

// Totals sums the media counters of every session since the recorder
// started: those that ended (counted once, when they end) and those in
// progress. The counters only grow, so they can be exported as Prometheus
// counters. Jitter is the largest in any session in progress, Audio the
// longest; Codecs is nil.
func (r *Recorder) Totals() media.StreamStats {
	r.mu.Lock()
	t := r.done
	t.Jitter, t.Audio = 0, 0
	ms := make([]*media.Session, 0, len(r.sessions))
	for _, s := range r.sessions {
		if !s.counted {
			ms = append(ms, s.media)
		}
	}
	r.mu.Unlock()
	for _, m := range ms {
		addStats(&t, m.Stats().Total)
	}
	return t
}

// addStats adds s's counters to t.
func addStats(t *media.StreamStats, s media.StreamStats) {
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
	t.AuthFailed += s.AuthFailed
	t.Undecodable += s.Undecodable
	t.Jitter = max(t.Jitter, s.Jitter)
	t.Audio = max(t.Audio, s.Audio)
}
