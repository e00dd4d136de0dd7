package audio_test

import (
	"slices"
	"testing"

	"github.com/callvault/callvault/audio"
)

func TestFind(t *testing.T) {
	want := audio.SpeechLike(4, 8000, 8000)
	got := slices.Concat(make([]int16, 1234), want, make([]int16, 500))
	if off, share := audio.Find(got, want); off != 1234 || share != 1 {
		t.Errorf("Find = %d, %.3f; want 1234, 1", off, share)
	}
	// A lost packet: 160 samples of sound become silence.
	lost := slices.Clone(got)
	for b := 0; b+160 <= len(want); b += 160 {
		if slices.Max(want[b:b+160]) > 1000 {
			clear(lost[1234+b : 1234+b+160])
			break
		}
	}
	if off, share := audio.Find(lost, want); off != 1234 || share >= 1 || share < 0.97 {
		t.Errorf("with one packet lost Find = %d, %.4f; want 1234 and a share just under 1", off, share)
	}
	// A recording cut short: the last packet's 160 samples are missing.
	cut := got[:1234+len(want)-160]
	if off, share := audio.Find(cut, want); off != 1234 || share != float64(len(want)-160)/float64(len(want)) {
		t.Errorf("cut short by 160 samples: Find = %d, %.4f; want 1234, %.4f", off, share, float64(len(want)-160)/float64(len(want)))
	}
	// Not there at all; too short to look for.
	if off, share := audio.Find(got, audio.SpeechLike(5, 8000, 8000)); off != -1 || share != 0 {
		t.Errorf("other audio: Find = %d, %.3f; want -1, 0", off, share)
	}
	if off, _ := audio.Find(got, want[:100]); off != -1 {
		t.Errorf("100 samples: Find = %d; want -1", off)
	}
}
