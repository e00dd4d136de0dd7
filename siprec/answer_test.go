package siprec_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/siprec"
	"github.com/pion/sdp/v3"
)

// parseAnswer checks that an answer is well-formed SDP ending in CRLF and
// reads it back.
func parseAnswer(t testing.TB, b []byte) *siprec.Offer {
	t.Helper()
	if !bytes.HasSuffix(b, []byte("\r\n")) {
		t.Fatalf("answer does not end with CRLF:\n%s", b)
	}
	if !bytes.Contains(b, []byte("m=image")) { // pion/sdp does not know m=image
		var sd sdp.SessionDescription
		if err := sd.UnmarshalString(string(b)); err != nil {
			t.Fatalf("pion/sdp cannot parse the answer: %v\n%s", err, b)
		}
	}
	a, err := siprec.ParseOffer(b)
	if err != nil {
		t.Fatalf("answer does not parse back: %v\n%s", err, b)
	}
	return a
}

func ptsOf(s siprec.Stream) []uint8 {
	var out []uint8
	for _, c := range s.Codecs {
		out = append(out, c.PT)
	}
	return out
}

func offer(t testing.TB, lines ...string) *siprec.Offer {
	t.Helper()
	o, err := siprec.ParseOffer([]byte(strings.Join(lines, "\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

var head = []string{"v=0", "o=SRC 1 1 IN IP4 198.51.100.7", "s=-", "c=IN IP4 198.51.100.7", "t=0 0"}

func sdpLines(media ...string) []string {
	return append(append([]string(nil), head...), media...)
}

// key30 is a 30-byte AES_CM_128 master key and salt.
var key30 = []byte("0123456789abcdef0123456789abcd")

func TestAnswer(t *testing.T) {
	g711 := func(c siprec.Codec) bool { return c.Name == "PCMU" || c.Name == "PCMA" }
	withG722 := func(c siprec.Codec) bool { return g711(c) || c.Name == "G722" }
	ourKey := func(int) *siprec.Crypto {
		return &siprec.Crypto{Suite: "AES_CM_128_HMAC_SHA1_32", Key: key30}
	}
	type want struct {
		port      int
		pts       []uint8
		direction string
		label     string
		crypto    *siprec.Crypto
	}
	tests := []struct {
		name  string
		offer []string
		ports []int
		opts  siprec.AnswerOptions
		want  []want
	}{
		{
			name: "subset of codecs in offer order with the offerer's payload types",
			offer: sdpLines("m=audio 5000 RTP/AVP 111 9 0 8 101", "a=rtpmap:111 opus/48000/2", "a=fmtp:111 useinbandfec=1",
				"a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15", "a=label:caller", "a=sendonly"),
			ports: []int{30000},
			opts:  siprec.AnswerOptions{Supported: withG722},
			want:  []want{{30000, []uint8{9, 0, 8, 101}, siprec.RecvOnly, "caller", nil}},
		},
		{
			name: "video and application lines rejected in place",
			offer: sdpLines("m=video 5002 RTP/AVP 96", "a=rtpmap:96 H264/90000", "a=label:v",
				"m=audio 5000 RTP/AVP 0", "a=label:1", "m=application 5004 TCP/BFCP *", "m=audio 5006 RTP/AVP 8", "a=label:2"),
			ports: []int{30000, 30002, 30004, 30006},
			want:  []want{{0, nil, "", "", nil}, {30002, []uint8{0}, siprec.RecvOnly, "1", nil}, {0, nil, "", "", nil}, {30006, []uint8{8}, siprec.RecvOnly, "2", nil}},
		},
		{
			name:  "fax (m=image) rejected in place",
			offer: sdpLines("m=audio 5000 RTP/AVP 0", "a=label:1", "m=image 5002 udptl t38"),
			ports: []int{30000, 30002},
			want:  []want{{30000, []uint8{0}, siprec.RecvOnly, "1", nil}, {0, nil, "", "", nil}},
		},
		{
			name:  "disabled by the offerer, rejected by the caller, unsupported codec",
			offer: sdpLines("m=audio 0 RTP/AVP 0", "a=label:1", "m=audio 5002 RTP/AVP 0", "a=label:2", "m=audio 5004 RTP/AVP 18", "a=label:3", "m=audio 5006 RTP/AVP 0", "a=label:4"),
			ports: []int{30000, 0, 30004, 30006},
			want:  []want{{0, nil, "", "", nil}, {0, nil, "", "", nil}, {0, nil, "", "", nil}, {30006, []uint8{0}, siprec.RecvOnly, "4", nil}},
		},
		{
			name:  "inactive and recvonly offers answered inactive",
			offer: sdpLines("m=audio 5000 RTP/AVP 0", "a=inactive", "m=audio 5002 RTP/AVP 0", "a=recvonly", "m=audio 5004 RTP/AVP 0", "a=sendrecv"),
			ports: []int{30000, 30002, 30004},
			want:  []want{{30000, []uint8{0}, siprec.Inactive, "", nil}, {30002, []uint8{0}, siprec.Inactive, "", nil}, {30004, []uint8{0}, siprec.RecvOnly, "", nil}},
		},
		{
			name: "SRTP: our key under the tag of the offered suite",
			offer: sdpLines("m=audio 5000 RTP/SAVP 0", "a=label:1",
				"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4",
				"a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:32"),
			ports: []int{30000},
			opts:  siprec.AnswerOptions{Crypto: ourKey},
			want:  []want{{30000, []uint8{0}, siprec.RecvOnly, "1", &siprec.Crypto{Tag: 2, Suite: "AES_CM_128_HMAC_SHA1_32", Key: key30}}},
		},
		{
			name: "SRTP stream without a key rejected, RTP stream kept",
			offer: sdpLines("m=audio 5000 RTP/SAVP 0", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
				"m=audio 5002 RTP/AVP 0"),
			ports: []int{30000, 30002},
			want:  []want{{0, nil, "", "", nil}, {30002, []uint8{0}, siprec.RecvOnly, "", nil}},
		},
		{
			name:  "DTLS-SRTP rejected",
			offer: sdpLines("m=audio 5000 UDP/TLS/RTP/SAVP 0", "m=audio 5002 RTP/AVP 8"),
			ports: []int{30000, 30002},
			want:  []want{{0, nil, "", "", nil}, {30002, []uint8{8}, siprec.RecvOnly, "", nil}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := offer(t, tt.offer...)
			opts := tt.opts
			opts.Addr, opts.Ports, opts.SessionID, opts.SessionVersion = "192.0.2.10", tt.ports, 42, 3
			b, err := siprec.Answer(o, opts)
			if err != nil {
				t.Fatalf("Answer: %v", err)
			}
			a := parseAnswer(t, b)
			if a.SessionID != 42 || a.SessionVersion != 3 || a.SessionConnection != "192.0.2.10" {
				t.Errorf("answer o=/c= = %d %d %s", a.SessionID, a.SessionVersion, a.SessionConnection)
			}
			if len(a.Streams) != len(o.Streams) {
				t.Fatalf("answer has %d m= lines, offer %d:\n%s", len(a.Streams), len(o.Streams), b)
			}
			for i, s := range a.Streams {
				w := tt.want[i]
				if s.Media != o.Streams[i].Media || s.Proto != o.Streams[i].Proto {
					t.Errorf("m= line %d is %s %s, offer %s %s", i, s.Media, s.Proto, o.Streams[i].Media, o.Streams[i].Proto)
				}
				if s.Port != w.port {
					t.Errorf("m= line %d port %d, want %d:\n%s", i, s.Port, w.port, b)
				}
				if w.port == 0 {
					if len(s.Formats) == 0 || s.Label != "" || len(s.Crypto) != 0 {
						t.Errorf("rejected m= line %d = %+v, want the offered formats and nothing else", i, s)
					}
					continue
				}
				if got := ptsOf(s); string(got) != string(w.pts) || s.Direction != w.direction || s.Label != w.label {
					t.Errorf("m= line %d: PTs %v %s label %q, want %v %s %q:\n%s", i, got, s.Direction, s.Label, w.pts, w.direction, w.label, b)
				}
				for j, c := range s.Codecs {
					if oc := o.Streams[i].Codecs; !containsCodec(oc, c) {
						t.Errorf("m= line %d codec %d %+v is not as offered (%+v)", i, j, c, oc)
					}
				}
				switch {
				case w.crypto == nil && len(s.Crypto) != 0:
					t.Errorf("m= line %d has crypto %+v", i, s.Crypto)
				case w.crypto != nil && (len(s.Crypto) != 1 || s.Crypto[0].Tag != w.crypto.Tag || s.Crypto[0].Suite != w.crypto.Suite || !bytes.Equal(s.Crypto[0].Key, w.crypto.Key)):
					t.Errorf("m= line %d crypto %+v, want %+v", i, s.Crypto, *w.crypto)
				}
			}
		})
	}
}

func containsCodec(list []siprec.Codec, c siprec.Codec) bool {
	for _, o := range list {
		if o.PT == c.PT && o.Name == c.Name && o.ClockRate == c.ClockRate && o.Channels == c.Channels && o.Fmtp == c.Fmtp {
			return true
		}
	}
	return false
}

func TestAnswerNotAcceptable(t *testing.T) {
	sha80 := "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
	tests := []struct {
		name   string
		offer  []string
		crypto func(int) *siprec.Crypto
		want   error
	}{
		{"only G.729", sdpLines("m=audio 5000 RTP/AVP 18", "a=rtpmap:18 G729/8000"), nil, siprec.ErrNoCodec},
		{"only telephone-event", sdpLines("m=audio 5000 RTP/AVP 101", "a=rtpmap:101 telephone-event/8000"), nil, siprec.ErrNoCodec},
		{"dynamic type without rtpmap", sdpLines("m=audio 5000 RTP/AVP 96"), nil, siprec.ErrNoCodec},
		{"only video", sdpLines("m=video 5000 RTP/AVP 96", "a=rtpmap:96 H264/90000"), nil, siprec.ErrNoCodec},
		{"no m= lines", head, nil, siprec.ErrNoCodec},
		{"audio disabled by the offerer", sdpLines("m=audio 0 RTP/AVP 0"), nil, siprec.ErrNoCodec},
		{"SRTP without a key", sdpLines("m=audio 5000 RTP/SAVP 0", sha80), nil, siprec.ErrNoCrypto},
		{"SRTP, no suite in common", sdpLines("m=audio 5000 RTP/SAVP 0", sha80), func(int) *siprec.Crypto {
			return &siprec.Crypto{Suite: "AEAD_AES_128_GCM", Key: make([]byte, 28)}
		}, siprec.ErrNoCrypto},
		{"SRTP, offer's keys unusable", sdpLines("m=audio 5000 RTP/SAVP 0", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ="), func(int) *siprec.Crypto {
			return &siprec.Crypto{Suite: "AES_CM_128_HMAC_SHA1_80", Key: key30}
		}, siprec.ErrNoCrypto},
	}
	for _, tt := range tests {
		o := offer(t, tt.offer...)
		_, err := siprec.Answer(o, siprec.AnswerOptions{Addr: "192.0.2.10", Ports: fill(len(o.Streams), 30000), Crypto: tt.crypto})
		if !errors.Is(err, tt.want) || callvault.ErrorCode(err) != callvault.EUNSUPPORTED {
			t.Errorf("%s: Answer = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func fill(n, v int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// TestAnswerMisuse checks that options not fitting the offer are reported
// as bugs (internal errors), not as the client's fault.
func TestAnswerMisuse(t *testing.T) {
	o := offer(t, sdpLines("m=audio 5000 RTP/SAVP 0", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz")...)
	tests := map[string]siprec.AnswerOptions{
		"ports for another offer": {Addr: "192.0.2.10", Ports: []int{1, 2}},
		"port out of range":       {Addr: "192.0.2.10", Ports: []int{70000}},
		"host name as address":    {Addr: "recorder.example", Ports: []int{30000}},
		"short key": {Addr: "192.0.2.10", Ports: []int{30000}, Crypto: func(int) *siprec.Crypto {
			return &siprec.Crypto{Suite: "AES_CM_128_HMAC_SHA1_80", Key: key30[:16]}
		}},
	}
	for name, opts := range tests {
		if _, err := siprec.Answer(o, opts); callvault.ErrorCode(err) != callvault.EINTERNAL {
			t.Errorf("%s: Answer = %v, want an internal error", name, err)
		}
	}
}

func TestAnswerIPv6(t *testing.T) {
	o := offer(t, sdpLines("m=audio 5000 RTP/AVP 0")...)
	b, err := siprec.Answer(o, siprec.AnswerOptions{Addr: "2001:db8::10", Ports: []int{30000}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("c=IN IP6 2001:db8::10\r\n")) || !bytes.Contains(b, []byte("o=callvault 0 0 IN IP6 2001:db8::10\r\n")) {
		t.Errorf("answer:\n%s", b)
	}
	parseAnswer(t, b)
}

// TestAnswerSpelling checks the encoding names as registered, which some
// endpoints compare case-sensitively.
func TestAnswerSpelling(t *testing.T) {
	o := offer(t, sdpLines("m=audio 5000 RTP/AVP 111 101", "a=rtpmap:111 OPUS/48000/2", "a=rtpmap:101 Telephone-Event/48000")...)
	b, err := siprec.Answer(o, siprec.AnswerOptions{Addr: "192.0.2.10", Ports: []int{30000}, Supported: func(c siprec.Codec) bool { return c.Name == "OPUS" }})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"a=rtpmap:111 opus/48000/2\r\n", "a=rtpmap:101 telephone-event/48000\r\n", "m=audio 30000 RTP/AVP 111 101\r\n"} {
		if !bytes.Contains(b, []byte(line)) {
			t.Errorf("answer lacks %q:\n%s", line, b)
		}
	}
}
