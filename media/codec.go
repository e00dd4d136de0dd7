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
	codecOpus  // RFC 7587: 48 kHz RTP clock, decoded by opusDecoder
	numCodecs
)

// codecNames are the rtpmap encoding names, also the keys of
// StreamStats.Codecs.
var codecNames = [numCodecs]string{"unknown", "PCMU", "PCMA", "G722", "telephone-event", "CN", "opus"}

// staticPT are the RFC 3551 static payload types a sender may use without an
// rtpmap. They hold even when the SDP answer offered only one of them: a
// client that negotiated PCMU and sends PCMA still says so in the PT.
var staticPT = map[uint8]codec{0: codecPCMU, 8: codecPCMA, 9: codecG722, 13: codecCN}

// Supported reports whether a stream can take the rtpmap encoding (as in
// "PCMA/8000", "opus/48000/2" or just "PCMA"; case does not matter), so
// that the SIP side answers only with what the recording can decode:
// PCMU, PCMA, G722, CN and telephone-event at 8000 Hz, opus at 48000 Hz
// (one or two channels; RFC 7587 always says two) and telephone-event at
// 48000 Hz (the clock it shares with Opus).
func Supported(encoding string) bool {
	_, _, ok := parseEncoding(encoding)
	return ok
}

// parseEncoding maps an rtpmap encoding ("PCMU/8000", "telephone-event/8000",
// "G722/8000/1", "opus/48000/2") to a codec, and says whether its RTP clock
// is 48 kHz. Every other codec uses an 8000 Hz RTP clock (G.722 too, by the
// RFC 3551 quirk, although it samples at 16 kHz). A name without a clock
// takes the codec's usual one.
func parseEncoding(s string) (c codec, clock48 bool, ok bool) {
	name, rest, _ := strings.Cut(s, "/")
	for c = codecPCMU; c < numCodecs; c++ {
		if strings.EqualFold(name, codecNames[c]) {
			break
		}
	}
	if c == numCodecs {
		return codecUnknown, false, false
	}
	clock, channels, _ := strings.Cut(rest, "/")
	switch {
	case c == codecOpus:
		// RFC 7587: the clock is 48000 and the channels 2 whatever is sent.
		if clock != "" && clock != "48000" || channels != "" && channels != "1" && channels != "2" {
			return codecUnknown, false, false
		}
		return c, true, true
	case c == codecEvent && clock == "48000" && channels == "":
		return c, true, true
	case clock != "" && clock != "8000" || channels != "" && channels != "1":
		return codecUnknown, false, false
	}
	return c, false, true
}

// payloadMap is a stream's PT → codec table, and which payload types have a
// 48 kHz RTP clock (their timestamps are rescaled to the 8 kHz timeline).
type payloadMap struct {
	codecs  [128]codec
	clock48 [128]bool
}

// payloadTable builds a stream's payload map: the static payload types,
// overridden by the rtpmap entries of the SDP. An encoding that cannot be
// decoded (G.729 in an offer, say) maps to codecUnknown rather than failing
// the session: its packets, if any come, are counted and recorded as
// silence, and the rest of the call is still recorded.
func payloadTable(rtpmap map[uint8]string) (payloadMap, error) {
	var t payloadMap
	for pt, c := range staticPT {
		t.codecs[pt] = c
	}
	for pt, enc := range rtpmap {
		if pt > 127 {
			return t, callvault.Errorf(callvault.EINVALID, "RTP payload type %d is out of range", pt)
		}
		t.codecs[pt], t.clock48[pt], _ = parseEncoding(enc)
	}
	return t, nil
}

// samples returns how many output samples (at Rate) a payload decodes to;
// 0 for payloads that are not audio, and for Opus packets whose table of
// contents does not parse. G.722 is decoded at 8 kHz (its lower sub-band),
// one sample per byte like G.711.
func (c codec) samples(payload []byte) int {
	switch c {
	case codecPCMU, codecPCMA, codecG722:
		return len(payload)
	case codecOpus:
		return opusSamples(payload) / opusDecimation
	}
	return 0
}

// audio reports whether packets of c carry sound to record (decodable or
// not): what a pause holds back.
func (c codec) audio() bool {
	return c == codecPCMU || c == codecPCMA || c == codecG722 || c == codecOpus
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
