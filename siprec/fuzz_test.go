package siprec_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/siprec"
)

// checkErr fails unless err is an EINVALID *callvault.Error with a message.
func checkErr(t *testing.T, what string, err error) {
	t.Helper()
	var e *callvault.Error
	if !errors.As(err, &e) || e.Code != callvault.EINVALID || e.Message == "" {
		t.Fatalf("%s error %#v, want EINVALID with a message", what, err)
	}
}

// within fails if fn takes longer than a generous bound: every input is at
// most 64 KiB, and parsing one takes well under a millisecond.
func within(t *testing.T, what string, fn func()) {
	t.Helper()
	start := time.Now()
	fn()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("%s took %v", what, d)
	}
}

func sampleBodies(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	for name, s := range samples {
		b := readSample(t, name)
		out["multipart/mixed;boundary="+s.boundary] = b
		out[`multipart/mixed; boundary="`+s.boundary+`"`] = crlf(b)
	}
	return out
}

func FuzzSplitBody(f *testing.F) {
	for ct, b := range sampleBodies(f) {
		f.Add(ct, b)
		f.Add(ct, b[:len(b)/2])
	}
	f.Add("application/sdp", []byte(miniSDP))
	f.Add("", []byte(miniSDP))
	f.Add("multipart/mixed", []byte(multipart("b", "\r\n"+miniSDP, "Content-Type:\r\n application/rs-metadata\r\n\r\n"+miniXML)))
	f.Add("multipart/mixed;boundary=----=_x", []byte("pre\n--b\n--b--\n--b\n"))
	f.Add("multipart/related; boundary=\"\"", []byte("--\r\n\r\n"))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		var (
			sdp, md []byte
			err     error
		)
		within(t, "SplitBody", func() { sdp, md, err = siprec.SplitBody(contentType, body) })
		if errors.Is(err, siprec.ErrNoSDP) {
			// Metadata alone (an UPDATE's body): returned with the error.
			if sdp != nil || md == nil || len(md) > len(body) {
				t.Fatalf("SplitBody = ErrNoSDP with %d-byte SDP, %d-byte metadata from %d bytes", len(sdp), len(md), len(body))
			}
			within(t, "ParseMetadata", func() { _, _ = siprec.ParseMetadata(md) })
			return
		}
		if err != nil {
			checkErr(t, "SplitBody", err)
			if sdp != nil || md != nil {
				t.Fatal("SplitBody returned parts with an error")
			}
			return
		}
		if !bytes.HasSuffix(sdp, []byte("\r\n")) || len(sdp) > 2*len(body)+2 || len(md) > len(body) {
			t.Fatalf("SplitBody = %d-byte SDP %q, %d-byte metadata from %d bytes", len(sdp), sdp, len(md), len(body))
		}
		if bytes.Contains(bytes.ReplaceAll(sdp, []byte("\r\n"), nil), []byte("\n")) {
			t.Fatalf("SDP has a bare LF: %q", sdp)
		}
		within(t, "ParseOffer", func() { _, _ = siprec.ParseOffer(sdp) })
		within(t, "ParseMetadata", func() { _, _ = siprec.ParseMetadata(md) })
	})
}

func FuzzParseOffer(f *testing.F) {
	for ct, b := range sampleBodies(f) {
		if sdp, _, err := siprec.SplitBody(ct, b); err == nil {
			f.Add(sdp)
			f.Add(bytes.TrimSuffix(sdp, []byte("\r\n")))
		}
	}
	f.Add([]byte(strings.Join(sdpLines("m=audio 5000 RTP/SAVP 0 8 101", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15", "a=label:1",
		"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNk|2^20|1:4", "a=inactive",
		"m=video 5002 RTP/AVP 96", "m=image 5004 udptl t38", "m=audio 0 RTP/AVP 0"), "\r\n")))
	f.Add([]byte(strings.Join([]string{"v=0", "o=- 1 1 IN IP4 1.2.3.4", "s=-", "t=0 0", "a=recvonly", "a=ptime:22.5", "m=audio 1 RTP/AVP 111", "c=IN IP4 233.252.0.1/127/2", "a=rtpmap:111 opus/48000/2"}, "\n")))
	f.Fuzz(func(t *testing.T, b []byte) {
		var (
			o   *siprec.Offer
			err error
		)
		within(t, "ParseOffer", func() { o, err = siprec.ParseOffer(b) })
		if err != nil {
			checkErr(t, "ParseOffer", err)
			return
		}
		for i, s := range o.Streams {
			if s.Index != i || s.Direction == "" || s.Port < 0 || s.Port > 65535 {
				t.Fatalf("stream %d = %+v", i, s)
			}
			for _, c := range s.Codecs {
				if c.PT > 127 || c.Name != strings.ToUpper(c.Name) {
					t.Fatalf("stream %d codec %+v", i, c)
				}
			}
		}
		// Answer whatever can be answered; the answer must read back
		// line for line.
		opts := siprec.AnswerOptions{
			Addr:      "192.0.2.10",
			Ports:     fill(len(o.Streams), 30000),
			Supported: func(c siprec.Codec) bool { return c.Name != "" },
			Crypto: func(i int) *siprec.Crypto {
				if len(o.Streams[i].Crypto) == 0 || len(o.Streams[i].Crypto[0].Key) != 30 {
					return nil
				}
				return &siprec.Crypto{Suite: o.Streams[i].Crypto[0].Suite, Key: key30}
			},
		}
		ans, err := siprec.Answer(o, opts)
		if errors.Is(err, siprec.ErrNoCodec) || errors.Is(err, siprec.ErrNoCrypto) {
			return
		}
		if err != nil {
			t.Fatalf("Answer: %v", err)
		}
		a, err := siprec.ParseOffer(ans)
		if err != nil {
			t.Fatalf("answer does not parse back: %v\n%s", err, ans)
		}
		if len(a.Streams) != len(o.Streams) {
			t.Fatalf("answer has %d m= lines for %d offered:\n%s", len(a.Streams), len(o.Streams), ans)
		}
		for i, s := range a.Streams {
			if s.Port == 0 {
				continue
			}
			if s.Direction != siprec.RecvOnly && s.Direction != siprec.Inactive || s.Label != o.Streams[i].Label {
				t.Fatalf("answer stream %d = %+v for offer %+v", i, s, o.Streams[i])
			}
			for _, c := range s.Codecs {
				if !slices.ContainsFunc(o.Streams[i].Codecs, func(oc siprec.Codec) bool { return oc.PT == c.PT }) {
					t.Fatalf("answer stream %d has payload type %d, not offered", i, c.PT)
				}
			}
		}
	})
}

func FuzzParseMetadata(f *testing.F) {
	for ct, b := range sampleBodies(f) {
		if _, md, err := siprec.SplitBody(ct, b); err == nil && md != nil {
			f.Add(md)
		}
	}
	f.Add([]byte(billionLaughs))
	f.Add([]byte(`<?xml version="1.0" encoding="latin1"?><recording><participant id="p"><aor>tel:+44 1632</aor><send>1</send></participant><extensiondata parent="p"><callingParty>true</callingParty></extensiondata></recording>`))
	f.Add([]byte(`<r:recording xmlns:r="urn:ietf:params:xml:ns:recording:1"><r:group id="g"><callData><fromhdr>"x" &lt;sip:1@h&gt;</fromhdr></callData></r:group><r:participant participant_id="p"><r:nameID aor="1@H"/></r:participant></r:recording>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var (
			m   *siprec.Metadata
			err error
		)
		within(t, "ParseMetadata", func() { m, err = siprec.ParseMetadata(b) })
		if err != nil {
			checkErr(t, "ParseMetadata", err)
			return
		}
		ids := map[string]bool{}
		for _, p := range m.Participants {
			if p.ID == "" || ids[p.ID] {
				t.Fatalf("participant ID %q empty or repeated", p.ID)
			}
			ids[p.ID] = true
			if n := strings.TrimPrefix(p.Number, "+"); p.Number != "" && strings.Trim(n, "0123456789") != "" {
				t.Fatalf("participant %q has number %q", p.ID, p.Number)
			}
		}
		if m.Caller != "" && !ids[m.Caller] {
			t.Fatalf("caller %q is not a participant", m.Caller)
		}
		for _, s := range m.Streams {
			for _, p := range m.Senders(s.Label) {
				if !ids[p.ID] || len(p.Sends) == 0 {
					t.Fatalf("Senders(%q) gave %+v", s.Label, p)
				}
			}
		}
	})
}
