package audio_test

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/callvault/callvault/audio"
)

// callWAV returns a µ-law WAV of a synthetic call.
func callWAV(b *testing.B, d time.Duration, stereo bool) []byte {
	b.Helper()
	var chans [][]int16
	if stereo {
		l, r := audio.Conversation(1, d, 8000)
		chans = [][]int16{l, r}
	} else {
		chans = [][]int16{audio.SpeechLike(1, int(d/time.Second)*8000, 8000)}
	}
	var buf bytes.Buffer
	if err := audio.WriteWAV(&buf, "ulaw", 8000, chans...); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

func BenchmarkProbeWAV(b *testing.B) {
	data := callWAV(b, 3*time.Minute, true)
	r := bytes.NewReader(data)
	for b.Loop() {
		if _, err := audio.Probe(r, int64(len(data))); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenditionReadAt(b *testing.B) {
	data := callWAV(b, time.Hour, false)
	info, err := audio.Probe(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		b.Fatal(err)
	}
	r, size, _, err := audio.Rendition(bytes.NewReader(data), int64(len(data)), info)
	if err != nil {
		b.Fatal(err)
	}
	p := make([]byte, 64<<10)
	rng := rand.New(rand.NewPCG(1, 1))
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if _, err := r.ReadAt(p, rng.Int64N(size-int64(len(p)))); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkConversation(b *testing.B) {
	for b.Loop() {
		audio.Conversation(1, 3*time.Minute, 8000)
	}
}
