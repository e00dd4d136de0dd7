package siprec_test

import (
	"testing"

	"github.com/callvault/callvault/siprec"
)

// ciscoInvite is a typical INVITE body as it travels: Cisco CUBE's, CRLF.
func ciscoInvite(b *testing.B) (string, []byte) {
	return `multipart/mixed;boundary="uniqueBoundary"`, crlf(readSample(b, "cisco-siprec-offer.txt"))
}

func BenchmarkSplitBody(b *testing.B) {
	ct, body := ciscoInvite(b)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, _, err := siprec.SplitBody(ct, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseOffer(b *testing.B) {
	sdp, _, err := siprec.SplitBody(ciscoInvite(b))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(sdp)))
	for b.Loop() {
		if _, err := siprec.ParseOffer(sdp); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseMetadata(b *testing.B) {
	_, md, err := siprec.SplitBody(ciscoInvite(b))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(md)))
	for b.Loop() {
		if _, err := siprec.ParseMetadata(md); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAnswer(b *testing.B) {
	sdp, _, err := siprec.SplitBody(ciscoInvite(b))
	if err != nil {
		b.Fatal(err)
	}
	o, err := siprec.ParseOffer(sdp)
	if err != nil {
		b.Fatal(err)
	}
	opts := siprec.AnswerOptions{Addr: "192.0.2.10", Ports: []int{30000, 30002}}
	for b.Loop() {
		if _, err := siprec.Answer(o, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInvite is the whole of what the recorder does with an INVITE
// body: split, parse both parts, map labels to speakers, answer.
func BenchmarkInvite(b *testing.B) {
	ct, body := ciscoInvite(b)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		sdp, md, err := siprec.SplitBody(ct, body)
		if err != nil {
			b.Fatal(err)
		}
		o, err := siprec.ParseOffer(sdp)
		if err != nil {
			b.Fatal(err)
		}
		m, err := siprec.ParseMetadata(md)
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range o.Streams {
			if len(m.Senders(s.Label)) != 1 {
				b.Fatal("no sender")
			}
		}
		if _, err := siprec.Answer(o, siprec.AnswerOptions{Addr: "192.0.2.10", Ports: []int{30000, 30002}}); err != nil {
			b.Fatal(err)
		}
	}
}
