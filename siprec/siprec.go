// Package siprec understands what a SIPREC recording client (RFC 7866) sends
// in its INVITE and builds what the recorder answers. It has no networking:
// the SIP layer hands it a Content-Type and a body, and gets back the media
// streams to receive, who speaks on each of them, and the SDP answer.
//
//	sdp, md, err := siprec.SplitBody(contentType, body) // multipart/mixed or bare SDP
//	offer, err := siprec.ParseOffer(sdp)                // pion/sdp: streams, labels, codecs, SDES keys
//	meta, err := siprec.ParseMetadata(md)               // RFC 7865 rs-metadata: participants, who sends which label
//	answer, err := siprec.Answer(offer, opts)           // RFC 3264: recvonly, same m-lines, our ports
//
// Real clients disagree with the RFCs (see testdata/samples): Oracle/Acme
// and Sonus use the draft namespace, Acme puts <send> inside <participant>,
// Sonus writes AORs without "sip:" and prefixes every element, the Cisco and
// Sonus bodies end without the closing multipart delimiter, BroadWorks sends
// a metadata part with a broken Content-Type and no usable XML. The parsers here accept
// all of that; what they cannot make sense of is an EINVALID *callvault.Error
// whose message can be returned to the client. A broken metadata part must
// not stop a recording: the caller records the audio and falls back on the
// SIP headers for the participants.
//
// Every input is bounded (MaxBodySize, MaxParts) before it is parsed, and
// XML with a DTD is refused, so a hostile client cannot make parsing slow.
package siprec

import (
	"github.com/callvault/callvault"
)

// MaxBodySize is the largest INVITE body, SDP or metadata document accepted.
// Real offers are 1–4 KiB.
const MaxBodySize = 64 << 10

// MaxParts is the most parts a multipart body may have. SIPREC needs two
// (SDP and metadata); some clients add one or two more (Cisco: ISUP/GTD).
const MaxParts = 8

// ErrNoCodec is returned by Answer when no offered audio stream has a codec
// the recorder decodes. The caller answers 488 Not Acceptable Here.
var ErrNoCodec = &callvault.Error{Code: callvault.EUNSUPPORTED, Message: "no offered audio stream has a codec the recorder supports"}

// ErrNoCrypto is returned by Answer when the only streams with a supported
// codec are RTP/SAVP and none offers an SRTP crypto suite the recorder has a
// key for. The caller answers 488 Not Acceptable Here.
var ErrNoCrypto = &callvault.Error{Code: callvault.EUNSUPPORTED, Message: "no offered SRTP stream has a crypto suite the recorder supports"}

func invalidf(format string, args ...any) error {
	return callvault.Errorf(callvault.EINVALID, format, args...)
}
