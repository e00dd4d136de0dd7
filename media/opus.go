package media

import (
	"encoding/binary"
	"math"

	"github.com/pion/opus"
)

// Opus (RFC 6716; RTP payload RFC 7587) is decoded by pion/opus, pure Go,
// at 48 kHz mono (the decoder downmixes a stereo stream), then low-passed
// and decimated by 6 to Rate.
//
// Why not let pion/opus output 8 kHz itself, as libopus can: measured
// against libopus 1.3.1 (opusdec), pion's 48 kHz output matches the
// reference to 42–45 dB SNR in SILK and hybrid packets and 84–87 dB in CELT
// ones, its 8 kHz output only to 21–26 dB, and that folds what lies above
// 4 kHz back into the top of the band (3.75–4 kHz comes out 8 dB louder than
// in the source). The filter below keeps the band clean.
//
// pion/opus cannot conceal a lost packet (no PLC) nor rebuild it from the
// next one's in-band FEC: a lost packet is silence, as with the other
// codecs.

const (
	opusRate       = 48000
	opusDecimation = opusRate / Rate                  // 6
	opusMaxSamples = opusRate * 120 / 1000            // the longest packet: 120 ms
	opusHistory    = len(decimFIR{}) - 1              // input samples the filter carries over between packets
	decimDelay     = opusHistory / 2 / opusDecimation // the filter's delay, in samples at Rate
)

// decimFIR is the low-pass filter before decimation: a windowed sinc
// (Kaiser window, β for 60 dB) at 48 kHz with its −6 dB point at 4 kHz,
// flat to 3.4 kHz and at least 60 dB down from 4.6 kHz
// (TestDecimationFilter measures it). Kaiser's estimate for that is 146
// taps; 157 is the next length whose delay is a whole number of samples at
// Rate (13, 1.6 ms). What lies between 4 and 4.6 kHz is only partly
// removed and folds into 3.4–4 kHz, above the telephone band.
type decimFIR [157]float32

var decimTaps = func() (h decimFIR) {
	const (
		n     = len(h)
		atten = 60.0                   // dB
		fc    = 4000.0 / opusRate      // cutoff, in cycles per sample
		beta  = 0.1102 * (atten - 8.7) // Kaiser's β for that attenuation
	)
	var tap [n]float64
	var sum float64
	for i := range n {
		x := float64(i) - float64(n-1)/2
		sinc := 2 * fc
		if x != 0 {
			sinc = math.Sin(2*math.Pi*fc*x) / (math.Pi * x)
		}
		r := 2*float64(i)/float64(n-1) - 1
		tap[i] = sinc * besselI0(beta*math.Sqrt(1-r*r)) / besselI0(beta)
		sum += tap[i]
	}
	for i := range n {
		h[i] = float32(tap[i] / sum) // unity gain at 0 Hz
	}
	return h
}()

// besselI0 is the modified Bessel function of the first kind, order 0 (its
// power series), for the Kaiser window.
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; k < 50; k++ {
		term *= (x / 2) / float64(k)
		sum += term * term
		if term*term < sum*1e-17 {
			break
		}
	}
	return sum
}

// opusSamples returns the duration of an Opus packet in 48 kHz samples,
// from its table of contents (RFC 6716 §3.1), or 0 if the packet is not
// valid Opus: empty, a code 3 packet without its frame count or with none,
// or longer than 120 ms.
func opusSamples(p []byte) int {
	if len(p) == 0 {
		return 0
	}
	cfg := p[0] >> 3
	var frame int
	switch {
	case cfg < 12: // SILK: 10, 20, 40, 60 ms
		frame = [4]int{480, 960, 1920, 2880}[cfg&3]
	case cfg < 16: // hybrid: 10, 20 ms
		frame = [2]int{480, 960}[cfg&1]
	default: // CELT: 2.5, 5, 10, 20 ms
		frame = [4]int{120, 240, 480, 960}[cfg&3]
	}
	frames := 1
	switch p[0] & 3 {
	case 1, 2:
		frames = 2
	case 3:
		if len(p) < 2 {
			return 0
		}
		frames = int(p[1] & 0x3f)
	}
	if n := frames * frame; n <= opusMaxSamples {
		return n
	}
	return 0
}

// opusDecoder decodes one stream's Opus packets to PCM16 at Rate.
type opusDecoder struct {
	dec opus.Decoder
	// x is the filter's input: the last opusHistory samples of the
	// previous packet, then the packet being decoded (48 kHz).
	x [opusHistory + opusMaxSamples]float32
}

func newOpusDecoder() *opusDecoder {
	d := &opusDecoder{}
	d.reset()
	return d
}

// reset forgets the previous packets (a new SSRC is a new encoder).
func (d *opusDecoder) reset() {
	d.dec.Init(opusRate, 1) // cannot fail: a rate and channel count Opus has
	clear(d.x[:opusHistory])
}

// decode decodes payload into dst (which holds the 2·960 bytes of 120 ms)
// and returns the PCM16 little-endian samples at Rate. It returns false if
// pion/opus refuses the packet, or panics on it: a decoder bug must cost
// one packet, not every recording in the process.
func (d *opusDecoder) decode(dst []byte, payload []byte) (pcm []byte, ok bool) {
	if len(payload) == 1 {
		// A table of contents and no frame: discontinuous transmission
		// (RFC 6716 §3.2.1), which some senders do send. Silence; pion/opus
		// refuses some of these (SILK wideband).
		pcm = dst[:2*opusSamples(payload)/opusDecimation]
		clear(pcm)
		return pcm, true
	}
	defer func() {
		if recover() != nil {
			d.reset()
			pcm, ok = nil, false
		}
	}()
	n, err := d.dec.DecodeToFloat32(payload, d.x[opusHistory:])
	if err != nil || n <= 0 || n%opusDecimation != 0 || n > opusMaxSamples {
		return nil, false
	}
	return d.downsample(dst, n), true
}

// downsample filters the n new samples in x and keeps every sixth, as
// PCM16 into dst, and carries the tail of x over to the next packet.
func (d *opusDecoder) downsample(dst []byte, n int) []byte {
	out := n / opusDecimation
	dst = dst[:2*out]
	for k := range out {
		w := (*[4 * len(decimQuads)]float32)(d.x[k*opusDecimation:])
		// Four sums break the chain of dependent additions; the array
		// shapes spare the bounds checks. (Folding the symmetric taps to
		// halve the multiplications measured slower.)
		var a0, a1, a2, a3 float32
		for j := range decimQuads {
			h, x := &decimQuads[j], (*[4]float32)(w[4*j:])
			a0 += h[0] * x[0]
			a1 += h[1] * x[1]
			a2 += h[2] * x[2]
			a3 += h[3] * x[3]
		}
		binary.LittleEndian.PutUint16(dst[2*k:], uint16(toPCM16((a0+a1)+(a2+a3))))
	}
	copy(d.x[:opusHistory], d.x[n:n+opusHistory])
	return dst
}

// decimQuads is decimTaps in fours, padded with zeros.
var decimQuads = func() (q [(len(decimFIR{}) + 3) / 4][4]float32) {
	for i, c := range decimTaps {
		q[i/4][i%4] = c
	}
	return q
}()

// toPCM16 converts a float sample (full scale ±1, as libopus) to PCM16,
// rounding and clipping; NaN (a decoder gone wrong) is silence.
func toPCM16(v float32) int16 {
	v *= 32768
	switch {
	case v >= math.MaxInt16:
		return math.MaxInt16
	case v <= math.MinInt16:
		return math.MinInt16
	case v == v:
		return int16(math.Round(float64(v)))
	}
	return 0
}
