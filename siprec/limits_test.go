package siprec_test

import (
	"strings"
	"testing"
	"time"

	"github.com/callvault/callvault/siprec"
)

// TestWorstCaseInputs feeds each parser the largest inputs of the shapes
// that could make it slow (many lines, parts, folds, m= lines, elements,
// IDs) and checks that each takes a few milliseconds, not seconds: nothing
// is quadratic in the input.
func TestWorstCaseInputs(t *testing.T) {
	n := siprec.MaxBodySize
	sdpHead := strings.Join(head, "\n") + "\n"
	many := func(s string, overhead int) string { return strings.Repeat(s, (n-overhead)/len(s)) }
	cases := map[string]func(){
		"body of empty lines":   func() { siprec.SplitBody("multipart/mixed;boundary=b", []byte(many("\n", 0))) },
		"body of delimiters":    func() { siprec.SplitBody("multipart/mixed;boundary=b", []byte(many("--b\n", 0))) },
		"part of header fields": func() { siprec.SplitBody("multipart/mixed;boundary=b", []byte("--b\n"+many("a:b\n", 10))) },
		"one folded field":      func() { siprec.SplitBody("multipart/mixed;boundary=b", []byte("--b\na:b\n"+many(" b\n", 10))) },
		"SDP of m= lines":       func() { siprec.ParseOffer([]byte(sdpHead + many("m=audio 1 RTP/AVP 0\n", 200))) },
		"SDP of foreign m=":     func() { siprec.ParseOffer([]byte(sdpHead + many("m=image 1 udptl t38\n", 200))) },
		"SDP of formats":        func() { siprec.ParseOffer([]byte(sdpHead + "m=audio 1 RTP/AVP" + many(" 0", 200))) },
		"SDP of rtpmaps":        func() { siprec.ParseOffer([]byte(sdpHead + "m=audio 1 RTP/AVP 0\n" + many("a=rtpmap:0 x/1\n", 200))) },
		"XML nesting":           func() { siprec.ParseMetadata([]byte("<recording>" + many("<a>", 20))) },
		"XML of sends": func() {
			m, _ := siprec.ParseMetadata([]byte("<recording><participant id='a'>" + many("<send>x</send>", 60) + "</participant></recording>"))
			m.Senders("x")
		},
		"XML of streams with one label": func() {
			m, _ := siprec.ParseMetadata([]byte("<recording><participant id='a'><send>y</send></participant>" + many("<stream id='x'><label>1</label></stream>", 80) + "</recording>"))
			m.Senders("1")
		},
	}
	for name, fn := range cases {
		start := time.Now()
		fn()
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s: took %v", name, d)
		}
	}
}
