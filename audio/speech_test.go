package audio_test

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/callvault/callvault/audio"
)

func TestSpeechLikeDeterministic(t *testing.T) {
	a := audio.SpeechLike(7, 40000, 8000)
	b := audio.SpeechLike(7, 40000, 8000)
	c := audio.SpeechLike(8, 40000, 8000)
	if len(a) != 40000 {
		t.Fatalf("len(SpeechLike(7, 40000, 8000)) = %d", len(a))
	}
	if !slices.Equal(a, b) {
		t.Error("SpeechLike(7) differs between calls")
	}
	if slices.Equal(a, c) {
		t.Error("SpeechLike(7) = SpeechLike(8)")
	}
	if got := audio.SpeechLike(1, 0, 8000); len(got) != 0 {
		t.Errorf("SpeechLike(n=0) has %d samples", len(got))
	}
	if got := audio.SpeechLike(1, 10, 0); len(got) != 10 {
		t.Errorf("SpeechLike(rate=0) has %d samples, want 10", len(got))
	}
}

// frameRMS returns the RMS of consecutive frames of n samples.
func frameRMS(x []int16, n int) []float64 {
	var out []float64
	for i := 0; i+n <= len(x); i += n {
		var s float64
		for _, v := range x[i : i+n] {
			s += float64(v) * float64(v)
		}
		out = append(out, math.Sqrt(s/float64(n)))
	}
	return out
}

// lowPass filters x with two one-pole low-pass filters at fc.
func lowPass(x []int16, rate int, fc float64) []int16 {
	k := 1 - math.Exp(-2*math.Pi*fc/float64(rate))
	out := make([]int16, len(x))
	var a, b float64
	for i, v := range x {
		a += k * (float64(v) - a)
		b += k * (a - b)
		out[i] = int16(b)
	}
	return out
}

// pitch estimates the fundamental of a voiced frame by autocorrelation, or
// returns 0 if the frame is not clearly periodic.
func pitch(x []int16, rate int) float64 {
	corr := func(lag int) float64 {
		var s, e0, e1 float64
		for i := 0; i+lag < len(x); i++ {
			a, b := float64(x[i]), float64(x[i+lag])
			s, e0, e1 = s+a*b, e0+a*a, e1+b*b
		}
		return s / math.Sqrt(e0*e1+1)
	}
	lo, hi := rate/400, rate/60
	c := make([]float64, hi+2)
	best := 0.0
	for lag := lo; lag <= hi+1; lag++ {
		c[lag] = corr(lag)
		best = max(best, c[lag])
	}
	if best < 0.6 {
		return 0
	}
	// The first peak nearly as high as the best, to avoid octave errors.
	for lag := lo + 1; lag <= hi; lag++ {
		if c[lag] >= 0.9*best && c[lag] >= c[lag-1] && c[lag] >= c[lag+1] {
			return float64(rate) / float64(lag)
		}
	}
	return 0
}

func TestSpeechLikeSoundsLikeSpeech(t *testing.T) {
	for _, rate := range []int{8000, 16000} {
		for seed := range int64(3) {
			x := audio.SpeechLike(seed, 60*rate, rate)
			frames := frameRMS(x, rate/100) // 10 ms

			var total float64
			silent, clipped := 0, 0
			for _, f := range frames {
				total += f * f
				if f < 30 {
					silent++
				}
			}
			for _, v := range x {
				if v == math.MaxInt16 || v == -math.MaxInt16 {
					clipped++
				}
			}
			level := math.Sqrt(total / float64(len(frames)))
			pauses := float64(silent) / float64(len(frames))

			// Syllables: vowel onsets, seen as rises of the low-frequency
			// envelope, with hysteresis so that one vowel counts once.
			low := frameRMS(lowPass(x, rate, 700), rate/100)
			sorted := slices.Sorted(slices.Values(low))
			threshold := sorted[len(sorted)*9/10] / 4
			onsets, in := 0, false
			for _, f := range low {
				switch {
				case !in && f >= threshold:
					onsets++
					in = true
				case in && f < threshold/2:
					in = false
				}
			}
			syllableRate := float64(onsets) / (60 * (1 - pauses))

			// Pitch of loud 40 ms frames.
			var f0s []float64
			for i := 0; i+rate/25 <= len(x); i += rate / 25 {
				w := x[i : i+rate/25]
				if frameRMS(w, len(w))[0] < 1000 {
					continue
				}
				if f := pitch(w, rate); f > 0 {
					f0s = append(f0s, f)
				}
			}
			slices.Sort(f0s)
			var lo, hi float64
			if len(f0s) > 0 {
				lo, hi = f0s[len(f0s)/20], f0s[len(f0s)*19/20]
			}

			t.Logf("rate %d seed %d: RMS %.0f, pauses %.0f%%, %.1f syllables/s, f0 %.0f–%.0f Hz (%d frames), %d clipped",
				rate, seed, level, 100*pauses, syllableRate, lo, hi, len(f0s), clipped)
			switch {
			case level < 500 || level > 8000:
				t.Errorf("rate %d seed %d: RMS %.0f, want a speaking level", rate, seed, level)
			case clipped > len(x)/1000:
				t.Errorf("rate %d seed %d: %d samples clipped", rate, seed, clipped)
			case pauses < 0.1 || pauses > 0.6:
				t.Errorf("rate %d seed %d: %.0f%% silence, want pauses but mostly talk", rate, seed, 100*pauses)
			case syllableRate < 2.5 || syllableRate > 7:
				t.Errorf("rate %d seed %d: %.1f syllables per second of talk, want 3–6", rate, seed, syllableRate)
			case len(f0s) < 100:
				t.Errorf("rate %d seed %d: only %d voiced frames", rate, seed, len(f0s))
			case lo < 80 || hi > 270:
				t.Errorf("rate %d seed %d: pitch %.0f–%.0f Hz, want within 90–250", rate, seed, lo, hi)
			case hi/lo < 1.15:
				t.Errorf("rate %d seed %d: pitch %.0f–%.0f Hz hardly moves: a tone, not a voice", rate, seed, lo, hi)
			}
		}
	}
}

func TestConversation(t *testing.T) {
	const rate = 8000
	for seed := range int64(4) {
		left, right := audio.Conversation(seed, 3*time.Minute, rate)
		if len(left) != 180*rate || len(right) != 180*rate {
			t.Fatalf("Conversation(3m) = %d and %d samples, want %d", len(left), len(right), 180*rate)
		}
		// Who talks in each 100 ms, ignoring pauses within a turn (up to 1 s).
		l, r := activity(left, rate), activity(right, rate)
		var both, onlyL, onlyR, switches int
		last := 0
		for i := range l {
			switch {
			case l[i] && r[i]:
				both++
			case l[i]:
				onlyL++
				if last == 2 {
					switches++
				}
				last = 1
			case r[i]:
				onlyR++
				if last == 1 {
					switches++
				}
				last = 2
			}
		}
		n := len(l)
		t.Logf("seed %d: left %d%%, right %d%%, both %d%%, %d changes of speaker",
			seed, 100*onlyL/n, 100*onlyR/n, 100*both/n, switches)
		if onlyL < n/6 || onlyR < n/6 {
			t.Errorf("seed %d: left alone %d%%, right alone %d%% of the time; want both to talk", seed, 100*onlyL/n, 100*onlyR/n)
		}
		if both > n/10 {
			t.Errorf("seed %d: both talk %d%% of the time, want small overlaps only", seed, 100*both/n)
		}
		// Turns of 2–12 s over 3 minutes: between 15 and 90 changes.
		if switches < 14 || switches > 90 {
			t.Errorf("seed %d: %d changes of speaker in 3 minutes", seed, switches)
		}
	}
	if l, r := audio.Conversation(1, 0, 8000); l != nil || r != nil {
		t.Error("Conversation(0s) is not empty")
	}
}

// activity reports per 100 ms whether the channel is within a turn: sound,
// or a pause of under a second between sounds.
func activity(x []int16, rate int) []bool {
	frames := frameRMS(x, rate/10)
	act := make([]bool, len(frames))
	lastSound := -100
	for i, f := range frames {
		if f >= 30 {
			for j := max(lastSound+1, 0); j <= i && i-lastSound <= 10; j++ {
				act[j] = true
			}
			act[i] = true
			lastSound = i
		}
	}
	return act
}
