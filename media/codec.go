package media

import (
	"encoding/binary"
	"strings"

	"github.com/callvault/callvault"
	"github.com/zaf/g711"
)

// codec is what a payload type decodes as. The stream keeps a table of 128
// of them (one per RTP payload type), so the per-packet lookup is an index.
type codec uint8

const (
	codecUnknown codec = iota // a payload type neither static nor in the rtpmap
	codecPCMU
	codecPCMA
	codecG722
	codecEvent // telephone-event (RFC 4733 DTMF): not audio, no position
	codecCN    // comfort noise (RFC 3389): counted, written as silence
	numCodecs
)

// codecNames are the rtpmap encoding names, also the keys of
// StreamStats.Codecs.
var codecNames = [numCodecs]string{"unknown", "PCMU", "PCMA", "G722", "telephone-event", "CN"}

// staticPT are the RFC 3551 static payload types a sender may use without an
// rtpmap. They hold even when the SDP answer offered only one of them: a
// client that negotiated PCMU and sends PCMA still says so in the PT.
var staticPT = map[uint8]codec{0: codecPCMU, 8: codecPCMA, 9: codecG722, 13: codecCN}

// Supported reports whether a stream can take the rtpmap encoding (as in
// "PCMA/8000" or just "PCMA"; case does not matter), so that the SIP side
// answers only with what the recording can decode. Opus is not supported.
func Supported(encoding string) bool {
	_, ok := parseEncoding(encoding)
	return ok
}

// parseEncoding maps an rtpmap encoding ("PCMU/8000", "telephone-event/8000",
// "G722/8000/1") to a codec. Every supported codec uses an 8000 Hz RTP clock
// (G.722 too, by the RFC 3551 quirk, although it samples at 16 kHz).
func parseEncoding(s string) (codec, bool) {
	name, rest, _ := strings.Cut(s, "/")
	if rest != "" {
		clock, channels, _ := strings.Cut(rest, "/")
		if clock != "8000" || (channels != "" && channels != "1") {
			return codecUnknown, false
		}
	}
	for c := codecPCMU; c < numCodecs; c++ {
		if strings.EqualFold(name, codecNames[c]) {
			return c, true
		}
	}
	return codecUnknown, false
}

// payloadTable builds a stream's PT → codec table: the static payload types,
// overridden by the rtpmap entries of the SDP. An encoding that cannot be
// decoded (G.729 in an offer, say) maps to codecUnknown rather than failing
// the session: its packets, if any come, are counted and recorded as
// silence, and the rest of the call is still recorded.
func payloadTable(rtpmap map[uint8]string) ([128]codec, error) {
	var t [128]codec
	for pt, c := range staticPT {
		t[pt] = c
	}
	for pt, enc := range rtpmap {
		if pt > 127 {
			return t, callvault.Errorf(callvault.EINVALID, "RTP payload type %d is out of range", pt)
		}
		t[pt], _ = parseEncoding(enc)
	}
	return t, nil
}

// samples returns how many output samples (at Rate) a payload of n bytes
// decodes to; 0 for payloads that are not audio. G.722 is decoded at 8 kHz
// (its lower sub-band), one sample per byte like G.711.
func (c codec) samples(n int) int {
	switch c {
	case codecPCMU, codecPCMA, codecG722:
		return n
	}
	return 0
}

// positioned reports whether packets of c have a position on the
// timeline (comfort noise and unknown payloads do have RTP time; only
// telephone-event does not).
func (c codec) positioned() bool { return c != codecEvent }

// Decoding tables: the PCM16 value of each G.711 code, from zaf/g711
// (checked against the ITU-T G.711 tables in g711_test.go).
var ulawPCM, alawPCM = func() (u, a [256]uint16) {
	for i := range 256 {
		u[i] = uint16(g711.DecodeUlawFrame(uint8(i)))
		a[i] = uint16(g711.DecodeAlawFrame(uint8(i)))
	}
	return u, a
}()

// decodeG711 writes the PCM16 little-endian samples of payload to dst, which
// must hold 2*len(payload) bytes, and returns them. Four samples go out in
// one 64-bit store: a 20 ms packet takes well under 100 ns.
func decodeG711(dst []byte, payload []byte, table *[256]uint16) []byte {
	dst = dst[:2*len(payload)]
	i := 0
	for ; i+4 <= len(payload); i += 4 {
		p := payload[i : i+4 : i+4]
		v := uint64(table[p[0]]) | uint64(table[p[1]])<<16 | uint64(table[p[2]])<<32 | uint64(table[p[3]])<<48
		binary.LittleEndian.PutUint64(dst[2*i:], v)
	}
	for ; i < len(payload); i++ {
		binary.LittleEndian.PutUint16(dst[2*i:], table[payload[i]])
	}
	return dst
}
