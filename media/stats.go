package media

import "time"

// StreamStats counts what happened to one stream's packets, for metrics and
// for the recording's quality notes. Counters only grow.
type StreamStats struct {
	Label string
	Side  string

	Datagrams   uint64 // everything read from the socket
	Packets     uint64 // RTP packets from the expected source, any payload type
	Bytes       uint64 // RTP payload bytes of those
	Lost        uint64 // sequence numbers filled with silence (missing, or given up on after the reorder window)
	Late        uint64 // arrived after their place had been given up on (or too far off the sequence to believe, RFC 3550 A.1); dropped
	Duplicates  uint64 // dropped; with SRTP also what the replay window refuses (repeats, and packets over 256 behind)
	Reordered   uint64 // arrived after a later packet but in time, and put back in place
	WrongSource uint64 // from an address other than the negotiated (or latched) one; dropped
	RTCP        uint64 // RTCP on the RTP port (rtcp-mux); ignored
	Malformed   uint64 // not RTP version 2, truncated, or a payload over 2 KiB
	AuthFailed  uint64 // SRTP packets that failed authentication (wrong key, tampered, forged); dropped
	UnknownPT   uint64 // payload type with no codec; written as silence
	Undecodable uint64 // audio packets the decoder refused (a corrupt Opus packet); written as silence
	Paused      uint64 // audio packets received while the session was paused; not written
	SSRCChanges uint64
	Resyncs     uint64 // times the RTP timeline was re-anchored to the wall clock (timestamps that jumped or stood still)

	// Jitter is the RFC 3550 interarrival jitter of the current SSRC.
	Jitter time.Duration
	// Codecs counts packets by rtpmap encoding name ("PCMU", "PCMA",
	// "G722", "opus", "telephone-event", "CN", "unknown").
	Codecs map[string]uint64
	// Audio is how far into the session the stream's audio reaches.
	Audio time.Duration
}

// Stats are a session's counters: per stream and summed.
type Stats struct {
	Streams []StreamStats
	Total   StreamStats // sums; Jitter is the largest, Audio the longest
}

// counters are the hot-path form of StreamStats, updated under the stream's
// lock without allocating.
type counters struct {
	datagrams, packets, bytes, lost, late, duplicates, reordered uint64
	wrongSource, rtcp, malformed, authFailed, unknownPT          uint64
	undecodable, paused                                          uint64
	ssrcChanges, resyncs                                         uint64
	codecs                                                       [numCodecs]uint64
}

func (c *counters) export(label, side string, jitter time.Duration, audio time.Duration) StreamStats {
	s := StreamStats{
		Label: label, Side: side,
		Datagrams: c.datagrams, Packets: c.packets, Bytes: c.bytes, Lost: c.lost, Late: c.late,
		Duplicates: c.duplicates, Reordered: c.reordered, WrongSource: c.wrongSource, RTCP: c.rtcp,
		Malformed: c.malformed, AuthFailed: c.authFailed, UnknownPT: c.unknownPT, Undecodable: c.undecodable, Paused: c.paused,
		SSRCChanges: c.ssrcChanges, Resyncs: c.resyncs,
		Jitter: jitter, Audio: audio,
		Codecs: map[string]uint64{},
	}
	for i, n := range c.codecs {
		if n > 0 {
			s.Codecs[codecNames[i]] = n
		}
	}
	return s
}

// Add adds s's counters to t: sums, except Jitter and Audio (the larger)
// and Codecs (merged).
func (t *StreamStats) Add(s StreamStats) {
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
	t.AuthFailed += s.AuthFailed
	t.UnknownPT += s.UnknownPT
	t.Undecodable += s.Undecodable
	t.Paused += s.Paused
	t.SSRCChanges += s.SSRCChanges
	t.Resyncs += s.Resyncs
	t.Jitter = max(t.Jitter, s.Jitter)
	t.Audio = max(t.Audio, s.Audio)
	if t.Codecs == nil {
		t.Codecs = map[string]uint64{}
	}
	for k, v := range s.Codecs {
		t.Codecs[k] += v
	}
}
