package audio_test

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"testing"

	"github.com/callvault/callvault/audio"
)

// g722GoldenInput is 20,000 pseudo-random G.722 bytes.
func g722GoldenInput() []byte {
	b := make([]byte, 20000)
	rng := rand.New(rand.NewPCG(722, 722))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func sha(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}

// TestG722Golden pins the decoder's output for g722GoldenInput to what
// spandsp 0.0.6 gives (TestG722MatchesSpandsp logs these when it runs), so
// machines without cgo or spandsp still check bit-exactness.
func TestG722Golden(t *testing.T) {
	golden := map[int]string{
		16000: "3369552a9035562a9add8579835202020a7ada004b38178d4869d4c05895f01f",
		8000:  "209ab61d46e33e28d148483718c924f0cc9601b1c7a8debf96ee2f8ab2ab2422",
	}
	in := g722GoldenInput()
	for rate, want := range golden {
		got := audio.NewG722Decoder(rate).DecodeLE(nil, in)
		if n := len(in) * rate / 8000; len(got) != 2*n {
			t.Errorf("G.722 at %d Hz: %d bytes from %d codes, want %d samples", rate, len(got), len(in), n)
		}
		if h := hex.EncodeToString(sha(got)); h != want {
			t.Errorf("G.722 at %d Hz: SHA-256 of the output %s, spandsp's %s", rate, h, want)
		}
	}
}

// TestG722DecodeForms checks that Decode and DecodeLE agree, that state
// carries across calls, and that Reset starts over.
func TestG722DecodeForms(t *testing.T) {
	in := g722GoldenInput()[:4000]
	for _, rate := range []int{16000, 8000} {
		whole := audio.NewG722Decoder(rate).Decode(nil, in)
		d := audio.NewG722Decoder(rate)
		var le []byte
		for i := 0; i < len(in); i += 160 {
			le = d.DecodeLE(le, in[i:i+160])
		}
		if len(le) != 2*len(whole) {
			t.Fatalf("rate %d: DecodeLE gave %d bytes, Decode %d samples", rate, len(le), len(whole))
		}
		for i, v := range whole {
			if got := int16(binary.LittleEndian.Uint16(le[2*i:])); got != v {
				t.Fatalf("rate %d: sample %d: DecodeLE in packets %d, Decode at once %d", rate, i, got, v)
			}
		}
		d.Reset()
		if again := d.Decode(nil, in); !equal16(again, whole) {
			t.Errorf("rate %d: after Reset the decoder gives other samples", rate)
		}
	}
}

func equal16(a, b []int16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
