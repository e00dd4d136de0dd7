package audio

import (
	"math"
	"math/rand/v2"
	"time"
)

// SpeechLike returns n samples (int16) of speech-like audio at the given
// rate: voiced syllables (a glottal pulse train at a wandering pitch of
// 90–250 Hz through three moving formant resonators), unvoiced noise bursts
// and pauses, with a syllable-rate (3–6 Hz) envelope. It is meant for demo
// data, tests and benchmarks: it sounds like someone talking rather than a
// tone, survives G.711 and Opus the way speech does, and is cheap (a
// 3-minute stereo call at 8 kHz takes about 10 ms).
//
// It is a small source-filter synthesiser after Klatt: an impulse train
// shaped into glottal pulses, through cascaded formant resonators gliding
// between vowel targets, alternating with band-passed noise for fricatives
// and plosive bursts, grouped into phrases separated by pauses. The output
// is the same for the same seed on a given architecture (compilers may fuse
// floating-point operations differently elsewhere).
func SpeechLike(seed int64, n int, rate int) []int16 {
	if n <= 0 {
		return nil
	}
	out := make([]int16, n)
	if rate <= 0 {
		return out
	}
	r := newRand(seed)
	newSynth(rate, newVoice(r), r).talk(out)
	return out
}

// Conversation returns the two channels of a stereo call of duration d: left
// is the external caller, right the staff member (as in callvault's stereo
// convention). Turns of 2–12 s alternate, starting with the staff side
// answering; between turns there is a short gap or, now and then, a small
// overlap. Each side keeps its own voice throughout the call.
func Conversation(seed int64, d time.Duration, rate int) (left, right []int16) {
	if d <= 0 || rate <= 0 {
		return nil, nil
	}
	n := int(int64(d) / int64(time.Millisecond) * int64(rate) / 1000)
	left, right = make([]int16, n), make([]int16, n)
	r := newRand(seed)
	sides := [2][]int16{left, right}
	voices := [2]*synth{
		newSynth(rate, newVoice(r), newRand(int64(r.Uint64()))),
		newSynth(rate, newVoice(r), newRand(int64(r.Uint64()))),
	}
	sec := func(lo, hi float64) int { return int((lo + (hi-lo)*r.Float64()) * float64(rate)) }
	side := 1
	for t := sec(0.3, 1.0); t < n; side ^= 1 {
		// Turns are mostly short; now and then someone explains at length.
		turn := int((2 + 10*math.Pow(r.Float64(), 1.7)) * float64(rate))
		end := min(t+turn, n)
		voices[side].talk(sides[side][t:end])
		if end == n {
			break
		}
		if r.Float64() < 0.15 {
			t = end - sec(0.1, 0.6) // barging in
		} else {
			t = end + sec(0.15, 1.0)
		}
	}
	return left, right
}

func newRand(seed int64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), 0x6361_6c6c_7661_756c)) // "callvaul"
}

// voice is what stays the same for one speaker.
type voice struct {
	pitch  float64 // median f0, Hz
	swing  float64 // relative pitch excursion of accents
	tract  float64 // formant scale: shorter vocal tracts have higher formants
	tempo  float64 // syllables per second
	breath float64 // aspiration noise mixed into voicing
	loud   float64 // overall level
}

func newVoice(r *rand.Rand) voice {
	v := voice{
		swing:  0.10 + 0.15*r.Float64(),
		tempo:  3.5 + 2*r.Float64(),
		breath: 0.03 + 0.08*r.Float64(),
		loud:   0.6 + 0.4*r.Float64(),
	}
	if r.IntN(2) == 0 {
		v.pitch, v.tract = 100+35*r.Float64(), 0.95+0.08*r.Float64()
	} else {
		v.pitch, v.tract = 170+40*r.Float64(), 1.10+0.10*r.Float64()
	}
	return v
}

// vowels are formant targets (F1, F2, F3 in Hz) of English vowels for an
// adult male vocal tract, after Peterson and Barney.
var vowels = [...][3]float64{
	{270, 2290, 3010}, // i
	{390, 1990, 2550}, // ɪ
	{530, 1840, 2480}, // ɛ
	{660, 1720, 2410}, // æ
	{730, 1090, 2440}, // ɑ
	{570, 840, 2410},  // ɔ
	{440, 1020, 2240}, // ʊ
	{300, 870, 2240},  // u
	{640, 1190, 2390}, // ʌ
	{490, 1350, 1690}, // ɝ
}

var formantBW = [3]float64{80, 110, 160}

// resonator is Klatt's two-pole digital resonator with unity gain at DC.
type resonator struct{ a, b, c, y1, y2 float64 }

func (r *resonator) tune(freq, bw, rate float64) {
	t := math.Pi / rate
	r.c = -math.Exp(-2 * bw * t)
	r.b = 2 * math.Exp(-bw*t) * math.Cos(2*freq*t)
	r.a = 1 - r.b - r.c
}

func (r *resonator) step(x float64) float64 {
	y := r.a*x + r.b*r.y1 + r.c*r.y2
	r.y2, r.y1 = r.y1, y
	return y
}

// bandpass is a two-pole band-pass filter with unity gain at its centre
// (the "constant 0 dB peak gain" biquad of the Audio EQ Cookbook).
type bandpass struct{ b0, a1, a2, x1, x2, y1, y2 float64 }

func (f *bandpass) tune(freq, bw, rate float64) {
	w := 2 * math.Pi * freq / rate
	alpha := math.Sin(w) * math.Sinh(math.Ln2/2*bw/freq*w/math.Sin(w))
	a0 := 1 + alpha
	f.b0 = alpha / a0
	f.a1 = -2 * math.Cos(w) / a0
	f.a2 = (1 - alpha) / a0
}

func (f *bandpass) step(x float64) float64 {
	y := f.b0*(x-f.x2) - f.a1*f.y1 - f.a2*f.y2
	f.x2, f.x1 = f.x1, x
	f.y2, f.y1 = f.y1, y
	return y
}

// synth is one speaker's synthesiser, carrying filter state and pitch drift
// from one call of talk to the next.
type synth struct {
	rate   float64
	v      voice
	r      *rand.Rand
	noise  uint32  // xorshift state, cheaper per sample than r
	phase  float64 // glottal cycle, 0..1
	g1, g2 float64 // glottal pulse shaping
	prev   float64 // for lip radiation
	f      [3]resonator
	fric   bandpass
	drift  float64 // slow pitch wander, in octaves
	vowel  int     // the vowel the last syllable ended on
	gk     float64 // glottal low-pass coefficient
	scale  float64 // makes levels independent of the sample rate
}

func newSynth(rate int, v voice, r *rand.Rand) *synth {
	s := &synth{rate: float64(rate), v: v, r: r, noise: uint32(r.Uint64()) | 1}
	s.gk = 1 - math.Exp(-2*math.Pi*350/s.rate)
	s.scale = s.rate / 8000
	s.vowel = r.IntN(len(vowels))
	return s
}

func (s *synth) white() float64 {
	x := s.noise
	x ^= x << 13
	x ^= x >> 17
	x ^= x << 5
	s.noise = x
	return float64(int32(x)) * (1.0 / (1 << 31))
}

func (s *synth) samples(sec float64) int { return int(sec * s.rate) }

func (s *synth) between(lo, hi float64) float64 { return lo + (hi-lo)*s.r.Float64() }

// talk fills dst with phrases and pauses, starting with speech, and fades
// the end so that a turn cut short does not click.
func (s *synth) talk(dst []int16) {
	for t := 0; t < len(dst); {
		t += s.phrase(dst, t)
		t += s.samples(s.between(0.2, 0.7))
	}
	fade := min(len(dst), s.samples(0.01))
	for i := range fade {
		j := len(dst) - fade + i
		dst[j] = int16(float64(dst[j]) * float64(fade-i) / float64(fade))
	}
}

// phrase writes a run of syllables at t and returns its length. Pitch
// declines over the phrase, as it does in statements.
func (s *synth) phrase(dst []int16, t int) int {
	start := t
	syllables := 2 + s.r.IntN(10)
	s.drift = max(-0.25, min(0.25, s.drift+0.08*(s.r.Float64()-0.5)))
	for k := range syllables {
		decl := 1.12 - 0.25*float64(k)/float64(syllables)
		amp := s.v.loud * s.between(0.55, 1)
		if s.r.IntN(3) == 0 { // stressed
			amp = s.v.loud
			decl *= 1 + s.v.swing
		}
		// Onset consonant.
		if s.r.Float64() < 0.65 {
			if s.r.Float64() < 0.55 {
				t += s.fricative(dst, t, s.samples(s.between(0.05, 0.12)), amp*s.between(0.15, 0.35))
			} else {
				t += s.samples(s.between(0.02, 0.05)) // closure
				t += s.fricative(dst, t, s.samples(s.between(0.012, 0.03)), amp*s.between(0.3, 0.5))
			}
		}
		// Vowel nucleus, gliding towards the next vowel.
		next := s.r.IntN(len(vowels))
		length := max(0.07, 1/s.v.tempo-0.1) * s.between(0.7, 1.3)
		f0 := s.v.pitch * math.Exp2(s.drift) * decl
		t += s.voiced(dst, t, s.samples(length), s.vowel, next, f0, f0*s.between(0.9, 1.05), amp)
		s.vowel = next
		// Coda and the gap to the next syllable.
		if s.r.Float64() < 0.25 {
			t += s.fricative(dst, t, s.samples(s.between(0.04, 0.09)), amp*s.between(0.1, 0.25))
		}
		if s.r.Float64() < 0.35 { // word boundary
			t += s.samples(s.between(0.06, 0.18))
		} else {
			t += s.samples(s.between(0, 0.03))
		}
	}
	return t - start
}

// voiced writes length samples of a vowel at t, its formants gliding from
// vowel a to vowel b and its pitch from f0a to f0b along a random contour,
// and returns length.
func (s *synth) voiced(dst []int16, t, length, a, b int, f0a, f0b, amp float64) int {
	const block = 32
	attack, release := float64(max(1, s.samples(0.025))), float64(max(1, s.samples(0.05)))
	end := min(t+length, len(dst))
	limit := 0.45 * s.rate
	// Syllables rise and fall, rise, or fall, by varying amounts.
	arch, tilt := s.r.Float64(), s.between(-1, 1)
	for i0 := t; i0 < end; i0 += block {
		u := float64(i0-t) / float64(length)
		glide := u * u * (3 - 2*u)
		var f1 float64
		for k := range s.f {
			f := (vowels[a][k] + (vowels[b][k]-vowels[a][k])*glide) * s.v.tract
			s.f[k].tune(min(f, limit-float64(k)*100), formantBW[k], s.rate)
			if k == 0 {
				f1 = f
			}
		}
		// Close vowels come out much quieter than open ones; narrow the gap.
		gain := amp * 110000 * min(2.5, 700/f1)
		f0 := (f0a + (f0b-f0a)*u) * (1 + s.v.swing*(arch*math.Sin(math.Pi*u)+tilt*(u-0.5)))
		// Compress excursions around the voice's median, then keep to 90–250 Hz.
		f0 = s.v.pitch * math.Pow(f0/s.v.pitch, 0.7)
		inc := max(90, min(250, f0)) / s.rate
		for i := i0; i < min(i0+block, end); i++ {
			pulse := 0.0
			if s.phase += inc; s.phase >= 1 {
				s.phase -= math.Floor(s.phase)
				pulse = s.scale
			}
			s.g1 += s.gk * (pulse - s.g1)
			s.g2 += s.gk * (s.g1 - s.g2)
			x := (s.g2-s.prev)*s.scale + s.v.breath*0.02*s.white()
			s.prev = s.g2
			y := s.f[2].step(s.f[1].step(s.f[0].step(x)))
			j := float64(i - t)
			env := min(1, j/attack, (float64(length)-j)/release)
			dst[i] = pcm(y * gain * env)
		}
	}
	return length
}

// fricative writes length samples of shaped noise at t and returns length.
func (s *synth) fricative(dst []int16, t, length int, amp float64) int {
	fc := min(s.between(2200, 4800), 0.4*s.rate)
	bw := s.between(0.25, 0.5) * fc
	s.fric.tune(fc, bw, s.rate)
	end := min(t+length, len(dst))
	ramp := float64(max(1, s.samples(0.012)))
	// White noise of variance 1/3 through the band-pass keeps roughly
	// pi*bw/rate of its power; scale for an RMS of about 5500 at full
	// amplitude.
	gain := amp * 5500 / math.Sqrt(math.Pi*bw/(3*s.rate))
	for i := t; i < end; i++ {
		y := s.fric.step(s.white())
		j := float64(i - t)
		env := min(1, j/ramp, (float64(length)-j)/ramp)
		dst[i] = pcm(y * gain * env)
	}
	return length
}

func pcm(v float64) int16 {
	return int16(max(-32767, min(32767, v)))
}
