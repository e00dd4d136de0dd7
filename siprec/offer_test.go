package siprec_test

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/siprec"
)

func TestParseOfferStreams(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcd") // "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNk"
	tests := []struct {
		name  string
		sdp   []string
		want  siprec.Stream
		index int // which stream to compare
	}{
		{
			name: "static types without rtpmap",
			sdp:  sdpLines("m=audio 5000 RTP/AVP 0 8 9 18 13"),
			want: siprec.Stream{Media: "audio", Port: 5000, Addr: "198.51.100.7", Proto: "RTP/AVP", Formats: []string{"0", "8", "9", "18", "13"}, Direction: siprec.SendOnly, Codecs: []siprec.Codec{
				{PT: 0, Name: "PCMU", ClockRate: 8000, Channels: 1}, {PT: 8, Name: "PCMA", ClockRate: 8000, Channels: 1},
				{PT: 9, Name: "G722", ClockRate: 8000, Channels: 1}, {PT: 18, Name: "G729", ClockRate: 8000, Channels: 1},
				{PT: 13, Name: "CN", ClockRate: 8000, Channels: 1}}},
		},
		{
			name: "dynamic types, fmtp, repeated and bogus formats",
			sdp: sdpLines("m=audio 5000 RTP/AVP 111 101 111 300 x 96", "a=rtpmap:111 opus/48000/2", "a=fmtp:111 minptime=10;useinbandfec=1",
				"a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16", "a=rtpmap:111 PCMU/8000", "a=rtpmap:bad"),
			want: siprec.Stream{Media: "audio", Port: 5000, Addr: "198.51.100.7", Proto: "RTP/AVP", Formats: []string{"111", "101", "111", "300", "x", "96"}, Direction: siprec.SendOnly, Codecs: []siprec.Codec{
				{PT: 111, Name: "OPUS", ClockRate: 48000, Channels: 2, Fmtp: "minptime=10;useinbandfec=1"},
				{PT: 101, Name: "TELEPHONE-EVENT", ClockRate: 8000, Channels: 1, Fmtp: "0-16"},
				{PT: 96}}},
		},
		{
			name: "media c= over session c=, multicast TTL dropped, session direction and ptime",
			sdp: []string{"v=0", "o=- 1 1 IN IP4 198.51.100.7", "s=-", "c=IN IP4 198.51.100.7", "t=0 0", "a=inactive", "a=ptime:30", "a=recordpref:pause",
				"m=audio 5000 RTP/AVP 0", "c=IN IP4 233.252.0.1/127", "a=label:main audio"},
			want: siprec.Stream{Media: "audio", Label: "main audio", Port: 5000, Addr: "233.252.0.1", Proto: "RTP/AVP", Formats: []string{"0"}, Direction: siprec.Inactive,
				Codecs: []siprec.Codec{{PT: 0, Name: "PCMU", ClockRate: 8000, Channels: 1}}, Ptime: 30, RecordPref: "pause"},
		},
		{
			name: "media attributes win over session ones; fractional ptime",
			sdp: []string{"v=0", "o=- 1 1 IN IP4 198.51.100.7", "s=-", "t=0 0", "a=sendonly", "a=recordpref:on",
				"m=audio 5000 RTP/AVP 8", "c=IN IP6 2001:db8::7", "a=sendrecv", "a=ptime:22.5", "a=recordpref:off"},
			want: siprec.Stream{Media: "audio", Port: 5000, Addr: "2001:db8::7", Proto: "RTP/AVP", Formats: []string{"8"}, Direction: siprec.SendRecv,
				Codecs: []siprec.Codec{{PT: 8, Name: "PCMA", ClockRate: 8000, Channels: 1}}, Ptime: 23, RecordPref: "off"},
		},
		{
			name: "SDES keys: lifetime, MKI, several keys, bad ones skipped, unknown suite kept",
			sdp: sdpLines("m=audio 5000 RTP/SAVP 0",
				"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNk|2^20|1:4;inline:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk|2^20|2:4 FEC_ORDER=FEC_SRTP",
				"a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNk",
				"a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=",
				"a=crypto:4 AES_CM_128_HMAC_SHA1_80 inline:!!!notbase64",
				"a=crypto:x AES_CM_128_HMAC_SHA1_80 inline:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNk",
				"a=crypto:6 AES_CM_128_HMAC_SHA1_80 key:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNk",
				"a=crypto:7 AES_CM_128_HMAC_SHA1_80",
				"a=crypto:8 FUTURE_SUITE inline:c2hvcnQ",
				"a=crypto:9 AES_CM_128_HMAC_SHA1_80 inline:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNk|300:1",
				"a=crypto:10 AES_CM_128_HMAC_SHA1_80 inline:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNk|2^31|258:2",
				"a=crypto:11 AES_CM_128_HMAC_SHA1_80 inline:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNk|1:0"),
			want: siprec.Stream{Media: "audio", Port: 5000, Addr: "198.51.100.7", Proto: "RTP/SAVP", Formats: []string{"0"}, Direction: siprec.SendOnly,
				Codecs: []siprec.Codec{{PT: 0, Name: "PCMU", ClockRate: 8000, Channels: 1}},
				Crypto: []siprec.Crypto{{Tag: 1, Suite: "AES_CM_128_HMAC_SHA1_80", Key: key, MKI: []byte{0, 0, 0, 1}}, {Tag: 2, Suite: "AES_CM_128_HMAC_SHA1_32", Key: key},
					{Tag: 8, Suite: "FUTURE_SUITE", Key: []byte("short")}, {Tag: 10, Suite: "AES_CM_128_HMAC_SHA1_80", Key: key, MKI: []byte{1, 2}}}},
		},
		{
			name:  "video kept, not RTP-parsed as audio",
			sdp:   sdpLines("m=audio 5000 RTP/AVP 0", "m=video 5002 RTP/AVP 96", "a=rtpmap:96 H264/90000", "a=label:v"),
			index: 1,
			want: siprec.Stream{Index: 1, Media: "video", Label: "v", Port: 5002, Addr: "198.51.100.7", Proto: "RTP/AVP", Formats: []string{"96"}, Direction: siprec.SendOnly,
				Codecs: []siprec.Codec{{PT: 96, Name: "H264", ClockRate: 90000, Channels: 1}}},
		},
		{
			name:  "non-RTP line has no codecs",
			sdp:   sdpLines("m=application 5000 TCP/BFCP *"),
			want:  siprec.Stream{Media: "application", Port: 5000, Addr: "198.51.100.7", Proto: "TCP/BFCP", Formats: []string{"*"}, Direction: siprec.SendOnly},
			index: 0,
		},
		{
			name:  "m=image that pion/sdp refuses is kept as offered",
			sdp:   sdpLines("m=audio 5000 RTP/AVP 0", "m=image 5002 udptl t38", "a=T38FaxVersion:0", "m=audio 5004 RTP/AVP 8", "a=label:3"),
			index: 1,
			want:  siprec.Stream{Index: 1, Media: "image", Port: 5002, Addr: "198.51.100.7", Proto: "udptl", Formats: []string{"t38"}, Direction: siprec.SendOnly},
		},
	}
	for _, tt := range tests {
		for _, eol := range []string{"\r\n", "\n"} {
			o, err := siprec.ParseOffer([]byte(strings.Join(tt.sdp, eol)))
			if err != nil {
				t.Errorf("%s: ParseOffer: %v", tt.name, err)
				continue
			}
			if got := o.Streams[tt.index]; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s: stream %d =\n%+v\nwant\n%+v", tt.name, tt.index, got, tt.want)
			}
		}
	}
}

func TestParseOfferLastStream(t *testing.T) {
	// The image line is replaced for pion/sdp; the lines after it must
	// still arrive where they belong.
	o, err := siprec.ParseOffer([]byte(strings.Join(sdpLines("m=image 5002 udptl t38", "m=audio 5004 RTP/AVP 8", "a=label:3"), "\n")))
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Streams) != 2 || o.Streams[1].Label != "3" || o.Streams[1].Port != 5004 || o.Streams[0].Media != "image" {
		t.Errorf("streams = %+v", o.Streams)
	}
}

func TestParseOfferSession(t *testing.T) {
	o, err := siprec.ParseOffer([]byte("\ufeff\r\nv=0\no=SRC 18446744073709551615 9 IN IP4 198.51.100.7\ns=-\nc=IN IP4 198.51.100.7\nt=0 0\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	if o.SessionID != 18446744073709551615 || o.SessionVersion != 9 || o.SessionConnection != "198.51.100.7" || len(o.Streams) != 0 {
		t.Errorf("offer = %+v", o)
	}
}

func TestParseOfferErrors(t *testing.T) {
	tests := map[string]string{
		"":          "SDP is empty",
		"\r\n \r\n": "SDP is empty",
		"hello":     "does not parse",
		"v=1\r\n":   "does not parse",
		"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 5000 RTP/AVP 0\r\n": "does not parse",
		strings.Join(head, "\r\n") + "\r\nm=audio x RTP/AVP 0":        "does not parse",
		strings.Join(head, "\r\n") + "\r\nm=audio 70000 RTP/AVP 0":    "does not parse",
		strings.Repeat("a", siprec.MaxBodySize+1):                     "larger than",
	}
	for in, want := range tests {
		_, err := siprec.ParseOffer([]byte(in))
		if callvault.ErrorCode(err) != callvault.EINVALID || !strings.Contains(callvault.ErrorMessage(err), want) {
			t.Errorf("ParseOffer(%.40q) = %v; want invalid mentioning %q", in, err, want)
		}
	}
}

func TestFindCrypto(t *testing.T) {
	s := siprec.Stream{Crypto: []siprec.Crypto{{Tag: 1, Suite: "AES_CM_128_HMAC_SHA1_80", Key: key30}, {Tag: 2, Suite: "AES_CM_128_HMAC_SHA1_32", Key: key30}, {Tag: 3, Suite: "AES_CM_128_HMAC_SHA1_32"}}}
	if c, ok := s.FindCrypto("aes_cm_128_hmac_sha1_32"); !ok || c.Tag != 2 || !bytes.Equal(c.Key, key30) {
		t.Errorf("FindCrypto = %+v, %v; want tag 2", c, ok)
	}
	if _, ok := s.FindCrypto("AEAD_AES_128_GCM"); ok {
		t.Error("FindCrypto found a suite not offered")
	}
}
