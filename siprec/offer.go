package siprec

import (
	"bytes"
	"encoding/base64"
	"math"
	"strconv"
	"strings"

	"github.com/callvault/callvault"
	"github.com/pion/sdp/v3"
)

// Directions of a media stream (RFC 4566 §6, RFC 3264 §5.1).
const (
	SendOnly = "sendonly"
	RecvOnly = "recvonly"
	SendRecv = "sendrecv"
	Inactive = "inactive"
)

// Offer is the SDP offer of a recording session.
type Offer struct {
	SessionID         uint64 // o= sess-id
	SessionVersion    uint64 // o= sess-version; grows when a re-INVITE changes the offer
	SessionConnection string // session-level c= address, "" if each stream has its own
	Streams           []Stream
}

// Stream is one m= line of the offer, in offer order. Streams of other media
// (video, application, image) are kept so that the answer can reject them in
// place.
type Stream struct {
	Index      int      // position of the m= line, counted from 0
	Media      string   // "audio", "video", "application", ...
	Label      string   // a=label (RFC 4574): what the metadata's <stream><label> refers to
	Port       int      // 0: the offerer disabled the stream
	Addr       string   // c= of the stream, else of the session; without a multicast TTL
	Proto      string   // "RTP/AVP", "RTP/SAVP", ...
	Formats    []string // the m= line's format list as offered
	Direction  string   // SendOnly (the default for SIPREC), RecvOnly, SendRecv or Inactive
	Codecs     []Codec  // for RTP streams, in the offerer's order of preference
	Crypto     []Crypto // SDES keys (RFC 4568) that parsed, in the offerer's order
	Ptime      int      // a=ptime in milliseconds, 0 if absent
	RecordPref string   // a=recordpref (RFC 7866): "on", "off", "pause", "nopreference" or ""
}

// Codec is one RTP payload format of a stream.
type Codec struct {
	PT        uint8
	Name      string // upper case: PCMU, PCMA, G722, OPUS, TELEPHONE-EVENT; "" for a dynamic type without a=rtpmap
	ClockRate int
	Channels  int
	Fmtp      string // a=fmtp parameters, as offered
}

// Crypto is an SDES crypto attribute (RFC 4568): a=crypto:<tag> <suite> inline:<key||salt>.
// Lifetime and session parameters are accepted and not kept.
type Crypto struct {
	Tag   int
	Suite string // AES_CM_128_HMAC_SHA1_80, ...
	Key   []byte // master key followed by master salt
	// MKI is the master key identifier the sender puts in every SRTP
	// packet with this key: the |value:length of the inline parameter, as
	// length bytes, big-endian. nil when the key has none.
	MKI []byte
}

// IsRTP reports whether the stream is RTP (RTP/AVP, RTP/SAVP, their
// feedback profiles or DTLS variants), so that its formats are payload types.
func (s *Stream) IsRTP() bool {
	for p := range strings.SplitSeq(s.Proto, "/") {
		if p == "RTP" {
			return true
		}
	}
	return false
}

// IsSRTP reports whether the stream's profile is secure (RTP/SAVP, RTP/SAVPF).
func (s *Stream) IsSRTP() bool {
	return strings.Contains(s.Proto, "SAVP")
}

// FindCrypto returns the first offered crypto attribute of suite: the one
// Answer pairs with the recorder's own key for that suite, and so the key
// the recorder decrypts the client's SRTP with.
func (s *Stream) FindCrypto(suite string) (Crypto, bool) {
	for _, c := range s.Crypto {
		if strings.EqualFold(c.Suite, suite) {
			return c, true
		}
	}
	return Crypto{}, false
}

// ParseOffer parses an SDP offer with pion/sdp. It returns EINVALID when the
// SDP does not parse; an offer without m= lines parses (with no streams).
func ParseOffer(b []byte) (*Offer, error) {
	if len(b) > MaxBodySize {
		return nil, invalidf("SDP is larger than %d bytes", MaxBodySize)
	}
	b = normalizeSDP(b)
	if b == nil {
		return nil, invalidf("SDP is empty")
	}
	// RFC 4566 values may hold any byte but NUL, CR and LF. pion/sdp would
	// take a stray CR as part of the line and cut the wrong bytes off it.
	if bytes.Count(b, []byte("\r")) != bytes.Count(b, []byte("\r\n")) {
		return nil, invalidf("SDP has a carriage return inside a line")
	}
	if bytes.IndexByte(b, 0) >= 0 {
		return nil, invalidf("SDP contains a NUL byte")
	}
	b, foreign := standInForeignMedia(b)
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(string(b)); err != nil {
		return nil, callvault.Wrap(callvault.EINVALID, err, "SDP offer does not parse")
	}
	o := &Offer{
		SessionID:         sd.Origin.SessionID,
		SessionVersion:    sd.Origin.SessionVersion,
		SessionConnection: connAddr(sd.ConnectionInformation),
	}
	session := attrs(sd.Attributes)
	for i, md := range sd.MediaDescriptions {
		s := Stream{
			Index:   i,
			Media:   md.MediaName.Media,
			Port:    md.MediaName.Port.Value,
			Proto:   strings.Join(md.MediaName.Protos, "/"),
			Formats: md.MediaName.Formats,
			Addr:    connAddr(md.ConnectionInformation),
		}
		if f, ok := foreign[i]; ok {
			s.Media, s.Proto, s.Formats = f.media, f.proto, f.formats
		}
		if s.Addr == "" {
			s.Addr = o.SessionConnection
		}
		media := attrs(md.Attributes)
		s.Label = media.first("label")
		s.Direction = media.direction()
		if s.Direction == "" {
			s.Direction = session.direction()
		}
		if s.Direction == "" {
			// RFC 4566 would say sendrecv, but a recording client only
			// sends (RFC 7866), and the answer is recvonly either way.
			s.Direction = SendOnly
		}
		s.Ptime = parsePtime(media.first("ptime"))
		if s.Ptime == 0 {
			s.Ptime = parsePtime(session.first("ptime"))
		}
		if s.RecordPref = media.first("recordpref"); s.RecordPref == "" {
			s.RecordPref = session.first("recordpref")
		}
		if s.IsRTP() {
			s.Codecs = codecs(s.Formats, media)
		}
		for _, v := range media["crypto"] {
			if c, ok := parseCrypto(v); ok {
				s.Crypto = append(s.Crypto, c)
			}
		}
		o.Streams = append(o.Streams, s)
	}
	return o, nil
}

// foreignMedia is an m= line that pion/sdp refuses (m=image ... udptl t38).
type foreignMedia struct {
	media, proto string
	formats      []string
}

// standInForeignMedia replaces m= lines whose media or transport pion/sdp
// does not know with a stand-in it accepts, and returns the originals by
// m= line index. RFC 3264 wants an unsupported stream rejected in the answer,
// not the whole offer refused.
func standInForeignMedia(b []byte) ([]byte, map[int]foreignMedia) {
	var (
		out     []byte
		foreign map[int]foreignMedia
		index   = -1
	)
	for pos := 0; pos < len(b); {
		next := len(b)
		if i := bytes.IndexByte(b[pos:], '\n'); i >= 0 {
			next = pos + i + 1
		}
		line := b[pos:next]
		if bytes.HasPrefix(line, []byte("m=")) {
			index++
			f := strings.Fields(string(line[2:]))
			if len(f) >= 3 && (!pionMedia[f[0]] || !pionProto(f[2])) {
				if foreign == nil {
					foreign = map[int]foreignMedia{}
					out = append(out, b[:pos]...)
				}
				foreign[index] = foreignMedia{media: f[0], proto: f[2], formats: f[3:]}
				line = []byte(strings.Join(append([]string{"m=application", f[1], "UDP"}, f[3:]...), " ") + "\r\n")
			}
		}
		if foreign != nil {
			out = append(out, line...)
		}
		pos = next
	}
	if foreign == nil {
		return b, nil
	}
	return out, foreign
}

// What pion/sdp v3 accepts on an m= line.
var pionMedia = map[string]bool{"audio": true, "video": true, "text": true, "application": true, "message": true}

func pionProto(proto string) bool {
	for p := range strings.SplitSeq(proto, "/") {
		switch p {
		case "UDP", "RTP", "AVP", "SAVP", "SAVPF", "TLS", "DTLS", "SCTP", "AVPF", "TCP", "MSRP", "BFCP", "UDT", "IX", "MRCPv2", "FEC":
		default:
			return false
		}
	}
	return true
}

func connAddr(c *sdp.ConnectionInformation) string {
	if c == nil || c.Address == nil {
		return ""
	}
	addr, _, _ := strings.Cut(c.Address.Address, "/") // multicast TTL and count
	return addr
}

// attributes maps an attribute name to its values in order.
type attributes map[string][]string

func attrs(list []sdp.Attribute) attributes {
	a := attributes{}
	for _, at := range list {
		a[at.Key] = append(a[at.Key], strings.TrimSpace(at.Value))
	}
	return a
}

func (a attributes) first(key string) string {
	if v := a[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (a attributes) direction() string {
	for _, d := range []string{Inactive, SendOnly, RecvOnly, SendRecv} {
		if _, ok := a[d]; ok {
			return d
		}
	}
	return ""
}

func parsePtime(v string) int {
	f, err := strconv.ParseFloat(v, 64) // RFC 4566 allows "22.5"
	if err != nil || f <= 0 || f > 10000 || math.IsNaN(f) {
		return 0
	}
	return int(math.Round(f))
}

// staticPT lists the static audio payload types of RFC 3551 §6, used when an
// offer leaves out their a=rtpmap.
var staticPT = map[uint8]Codec{
	0:  {Name: "PCMU", ClockRate: 8000, Channels: 1},
	3:  {Name: "GSM", ClockRate: 8000, Channels: 1},
	4:  {Name: "G723", ClockRate: 8000, Channels: 1},
	5:  {Name: "DVI4", ClockRate: 8000, Channels: 1},
	6:  {Name: "DVI4", ClockRate: 16000, Channels: 1},
	7:  {Name: "LPC", ClockRate: 8000, Channels: 1},
	8:  {Name: "PCMA", ClockRate: 8000, Channels: 1},
	9:  {Name: "G722", ClockRate: 8000, Channels: 1}, // 8000 by RFC 3551's historical error; it samples at 16 kHz
	10: {Name: "L16", ClockRate: 44100, Channels: 2},
	11: {Name: "L16", ClockRate: 44100, Channels: 1},
	12: {Name: "QCELP", ClockRate: 8000, Channels: 1},
	13: {Name: "CN", ClockRate: 8000, Channels: 1},
	14: {Name: "MPA", ClockRate: 90000, Channels: 1},
	15: {Name: "G728", ClockRate: 8000, Channels: 1},
	16: {Name: "DVI4", ClockRate: 11025, Channels: 1},
	17: {Name: "DVI4", ClockRate: 22050, Channels: 1},
	18: {Name: "G729", ClockRate: 8000, Channels: 1},
}

// codecs resolves the payload types of an m= line with a=rtpmap and
// a=fmtp, falling back on the static table. Formats that are not payload
// types (0–127) and repeats are skipped.
func codecs(formats []string, a attributes) []Codec {
	rtpmap := map[uint8]string{}
	for _, v := range a["rtpmap"] {
		if pt, rest, ok := cutPT(v); ok {
			if _, dup := rtpmap[pt]; !dup {
				rtpmap[pt] = rest
			}
		}
	}
	fmtp := map[uint8]string{}
	for _, v := range a["fmtp"] {
		if pt, rest, ok := cutPT(v); ok {
			if _, dup := fmtp[pt]; !dup {
				fmtp[pt] = rest
			}
		}
	}
	var out []Codec
	seen := map[uint8]bool{}
	for _, f := range formats {
		n, err := strconv.ParseUint(f, 10, 8)
		if err != nil || n > 127 || seen[uint8(n)] {
			continue
		}
		pt := uint8(n)
		seen[pt] = true
		c := staticPT[pt]
		if m, ok := rtpmap[pt]; ok {
			c = parseRtpmap(m)
		}
		c.PT = pt
		c.Fmtp = fmtp[pt]
		out = append(out, c)
	}
	return out
}

// cutPT splits "<pt> <rest>" as in a=rtpmap and a=fmtp.
func cutPT(v string) (uint8, string, bool) {
	head, rest, _ := strings.Cut(v, " ")
	n, err := strconv.ParseUint(head, 10, 8)
	if err != nil || n > 127 {
		return 0, "", false
	}
	return uint8(n), strings.TrimSpace(rest), true
}

// parseRtpmap parses "<encoding name>/<clock rate>[/<channels>]".
func parseRtpmap(v string) Codec {
	f := strings.Split(v, "/")
	c := Codec{Name: strings.ToUpper(strings.TrimSpace(f[0])), Channels: 1}
	if len(f) > 1 {
		if n, err := strconv.Atoi(strings.TrimSpace(f[1])); err == nil && n > 0 {
			c.ClockRate = n
		}
	}
	if len(f) > 2 {
		if n, err := strconv.Atoi(strings.TrimSpace(f[2])); err == nil && n > 0 && n <= 255 {
			c.Channels = n
		}
	}
	return c
}

// keyLen gives the master key plus master salt length of the SRTP suites
// we know (RFC 4568, RFC 6188, RFC 7714); keys of other suites are kept as
// offered.
var keyLen = map[string]int{
	"AES_CM_128_HMAC_SHA1_80": 30,
	"AES_CM_128_HMAC_SHA1_32": 30,
	"F8_128_HMAC_SHA1_80":     30,
	"AES_192_CM_HMAC_SHA1_80": 38,
	"AES_192_CM_HMAC_SHA1_32": 38,
	"AES_256_CM_HMAC_SHA1_80": 46,
	"AES_256_CM_HMAC_SHA1_32": 46,
	"AEAD_AES_128_GCM":        28,
	"AEAD_AES_256_GCM":        44,
}

// parseCrypto parses "<tag> <suite> inline:<key||salt>[|lifetime][|MKI:len][;inline:...] [params]".
// Only the first key is kept, with its MKI: a sender starts with it (a
// later key comes in a re-INVITE). A key whose length does not fit its
// suite, or an MKI that does not fit its length, is refused.
func parseCrypto(v string) (Crypto, bool) {
	f := strings.Fields(v)
	if len(f) < 3 {
		return Crypto{}, false
	}
	tag, err := strconv.Atoi(f[0])
	if err != nil || tag < 0 || tag > 999999999 || len(f[0]) > 9 {
		return Crypto{}, false
	}
	first, _, _ := strings.Cut(f[2], ";")
	inline, ok := strings.CutPrefix(first, "inline:")
	if !ok {
		return Crypto{}, false
	}
	b64, params, _ := strings.Cut(inline, "|")
	var mki []byte
	for p := range strings.SplitSeq(params, "|") {
		// The lifetime ("2^20", "1048576") has no colon; the MKI does.
		v, l, ok := strings.Cut(p, ":")
		if !ok {
			continue
		}
		value, err1 := strconv.ParseUint(v, 10, 64)
		n, err2 := strconv.Atoi(l)
		if err1 != nil || err2 != nil || n < 1 || n > 128 || n < 8 && value >= 1<<(8*n) {
			return Crypto{}, false
		}
		mki = make([]byte, n)
		for i := n - 1; i >= 0 && value > 0; i-- {
			mki[i], value = byte(value), value>>8
		}
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		key, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(b64, "="))
	}
	if err != nil || len(key) == 0 {
		return Crypto{}, false
	}
	if n, known := keyLen[strings.ToUpper(f[1])]; known && len(key) != n {
		return Crypto{}, false
	}
	return Crypto{Tag: tag, Suite: f[1], Key: key, MKI: mki}, true
}
