package siprec

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// AnswerOptions says how the recorder answers an offer.
type AnswerOptions struct {
	// Addr is the recorder's media address, IPv4 or IPv6, for o= and c=.
	Addr string
	// Ports has one entry per offered stream, in offer order: the RTP port
	// the recorder listens on for it, or 0 to reject the stream.
	Ports []int
	// Supported reports which codecs the recorder decodes. nil means G.711
	// (PCMU and PCMA at 8 kHz). telephone-event is kept whenever offered
	// alongside a supported codec, whatever Supported says.
	Supported func(Codec) bool
	// Crypto returns the recorder's SDES key for RTP/SAVP stream i, or nil
	// to reject the stream. Its Suite must be one the stream offers; its Tag
	// may be 0, and Answer then uses the tag of the offer's first attribute
	// of that suite (Stream.FindCrypto). nil rejects every RTP/SAVP stream.
	Crypto func(stream int) *Crypto
	// SessionID and SessionVersion go in o=; the version must grow with
	// every new answer in the same dialog (RFC 3264 §8).
	SessionID, SessionVersion uint64
}

// Answer builds the RFC 3264 answer to o: the same m= lines in the same
// order, each audio stream the recorder can take answered a=recvonly (or
// a=inactive when the offer is inactive or recvonly) with the client's own
// a=label and the offered codecs it supports under the offerer's payload type
// numbers; every other stream is rejected with port 0. The answer ends with
// CRLF.
//
// It returns ErrNoCodec when no enabled audio stream offers a supported
// codec, and ErrNoCrypto when such streams exist but all are RTP/SAVP without
// a usable key; the caller answers 488. Options that do not fit the offer
// (ports, address, a key of the wrong length) are a bug in the caller and
// give a plain error.
func Answer(o *Offer, a AnswerOptions) ([]byte, error) {
	if len(a.Ports) != len(o.Streams) {
		return nil, fmt.Errorf("siprec: answer has %d ports for %d offered streams", len(a.Ports), len(o.Streams))
	}
	ip, err := netip.ParseAddr(a.Addr)
	if err != nil {
		return nil, fmt.Errorf("siprec: answer address: %w", err)
	}
	ip = ip.Unmap().WithZone("")
	addrType := "IP6"
	if ip.Is4() {
		addrType = "IP4"
	}
	addr := ip.String()
	supported := a.Supported
	if supported == nil {
		supported = isG711
	}

	sd := &sdp.SessionDescription{
		Origin: sdp.Origin{
			Username:       "callvault",
			SessionID:      a.SessionID,
			SessionVersion: a.SessionVersion,
			NetworkType:    "IN",
			AddressType:    addrType,
			UnicastAddress: addr,
		},
		SessionName: "callvault",
		ConnectionInformation: &sdp.ConnectionInformation{
			NetworkType: "IN",
			AddressType: addrType,
			Address:     &sdp.Address{Address: addr},
		},
		TimeDescriptions: []sdp.TimeDescription{{Timing: sdp.Timing{}}},
	}
	var withCodec, accepted, noKey int
	for i := range o.Streams {
		s := &o.Streams[i]
		port := a.Ports[i]
		if port < 0 || port > 65535 {
			return nil, fmt.Errorf("siprec: answer port %d for stream %d", port, i)
		}
		codecs := answerCodecs(s, supported)
		if codecs != nil {
			withCodec++
		}
		var key *Crypto
		if codecs != nil && port != 0 && s.IsSRTP() {
			if key, err = answerKey(s, i, a.Crypto); err != nil {
				return nil, err
			}
			if key == nil {
				noKey++
			}
		}
		if codecs == nil || port == 0 || (s.IsSRTP() && key == nil) {
			sd.MediaDescriptions = append(sd.MediaDescriptions, rejected(s))
			continue
		}
		accepted++
		sd.MediaDescriptions = append(sd.MediaDescriptions, answerMedia(s, port, codecs, key))
	}
	switch {
	case withCodec == 0:
		return nil, ErrNoCodec
	case accepted == 0 && noKey > 0:
		return nil, ErrNoCrypto
	}
	return sd.Marshal()
}

func isG711(c Codec) bool {
	return (c.Name == "PCMU" || c.Name == "PCMA") && c.ClockRate == 8000 && c.Channels <= 1
}

// answerProtos are the RTP profiles the recorder receives. DTLS-SRTP
// (UDP/TLS/RTP/SAVP) is not among them: SIPREC clients use SDES.
var answerProtos = map[string]bool{"RTP/AVP": true, "RTP/AVPF": true, "RTP/SAVP": true, "RTP/SAVPF": true}

// answerCodecs returns the offered codecs to answer with, in offer order, or
// nil if the stream cannot be received: not audio, disabled by the offerer,
// an unknown profile, or no supported codec (telephone-event alone is not
// enough to record).
func answerCodecs(s *Stream, supported func(Codec) bool) []Codec {
	if s.Media != "audio" || s.Port == 0 || !answerProtos[s.Proto] {
		return nil
	}
	var out []Codec
	audio := false
	for _, c := range s.Codecs {
		switch {
		case c.Name == "TELEPHONE-EVENT":
			out = append(out, c)
		case c.Name != "" && supported(c):
			out = append(out, c)
			audio = true
		}
	}
	if !audio {
		return nil
	}
	return out
}

// answerKey returns the crypto attribute for the answer to SRTP stream i:
// the recorder's key under the tag of the offered attribute of its suite.
// nil means there is none and the stream is rejected.
func answerKey(s *Stream, i int, fn func(int) *Crypto) (*Crypto, error) {
	if fn == nil {
		return nil, nil
	}
	ours := fn(i)
	if ours == nil {
		return nil, nil
	}
	offered, ok := s.FindCrypto(ours.Suite)
	if !ok {
		return nil, nil
	}
	for _, c := range s.Crypto {
		if c.Tag == ours.Tag && strings.EqualFold(c.Suite, ours.Suite) {
			offered = c
		}
	}
	if n, known := keyLen[strings.ToUpper(ours.Suite)]; known && len(ours.Key) != n || len(ours.Key) == 0 {
		return nil, fmt.Errorf("siprec: %d-byte key for %s on stream %d", len(ours.Key), ours.Suite, i)
	}
	return &Crypto{Tag: offered.Tag, Suite: offered.Suite, Key: ours.Key}, nil
}

// encodingName spells an encoding name as registered. Names are
// case-insensitive, but some endpoints compare
// telephone-event and opus as written in their RFCs.
func encodingName(name string) string {
	switch name {
	case "TELEPHONE-EVENT":
		return "telephone-event"
	case "OPUS":
		return "opus"
	}
	return name
}

func rejected(s *Stream) *sdp.MediaDescription {
	proto, formats := s.Proto, s.Formats
	if proto == "" {
		proto = "RTP/AVP"
	}
	if len(formats) == 0 {
		formats = []string{"0"} // an m= line needs at least one format
	}
	return &sdp.MediaDescription{MediaName: sdp.MediaName{
		Media:   s.Media,
		Port:    sdp.RangedPort{Value: 0},
		Protos:  strings.Split(proto, "/"),
		Formats: formats,
	}}
}

func answerMedia(s *Stream, port int, codecs []Codec, key *Crypto) *sdp.MediaDescription {
	md := &sdp.MediaDescription{MediaName: sdp.MediaName{
		Media:  "audio",
		Port:   sdp.RangedPort{Value: port},
		Protos: strings.Split(s.Proto, "/"),
	}}
	for _, c := range codecs {
		pt := strconv.Itoa(int(c.PT))
		md.MediaName.Formats = append(md.MediaName.Formats, pt)
		rtpmap := pt + " " + encodingName(c.Name) + "/" + strconv.Itoa(c.ClockRate)
		if c.Channels > 1 {
			rtpmap += "/" + strconv.Itoa(c.Channels)
		}
		md.Attributes = append(md.Attributes, sdp.NewAttribute("rtpmap", rtpmap))
		if c.Fmtp != "" {
			md.Attributes = append(md.Attributes, sdp.NewAttribute("fmtp", pt+" "+c.Fmtp))
		}
	}
	if s.Ptime > 0 {
		md.Attributes = append(md.Attributes, sdp.NewAttribute("ptime", strconv.Itoa(s.Ptime)))
	}
	if s.Label != "" {
		md.Attributes = append(md.Attributes, sdp.NewAttribute("label", s.Label))
	}
	if key != nil {
		md.Attributes = append(md.Attributes, sdp.NewAttribute("crypto",
			strconv.Itoa(key.Tag)+" "+key.Suite+" inline:"+base64.StdEncoding.EncodeToString(key.Key)))
	}
	dir := RecvOnly
	if s.Direction == Inactive || s.Direction == RecvOnly {
		// We never send, so a stream the client will not send on is inactive.
		dir = Inactive
	}
	md.Attributes = append(md.Attributes, sdp.NewPropertyAttribute(dir))
	return md
}
