package audio

import "math"

// G722Decoder decodes ITU-T G.722 at 64 kbit/s (one byte per pair of 16 kHz
// samples: 6 bits of lower sub-band ADPCM, 2 of upper), as carried in RTP
// (payload type 9). It follows the ITU reference algorithm bit for bit as
// spandsp implements it, which g722_cgo_test.go checks.
//
// At 16000 Hz it yields two samples per byte through the receive QMF; at
// 8000 Hz only the lower sub-band (0–4 kHz), one sample per byte, as
// spandsp's G722_SAMPLE_RATE_8000 does: the telephone band without a
// resampler. A decoder keeps state between calls, so feed it one stream's
// bytes in order; Reset it when the stream restarts (a new SSRC).
type G722Decoder struct {
	eightK bool
	low    g722Band
	high   g722Band
	x, y   [12]int16 // receive QMF delay lines (sum and difference of the bands)
	ptr    int
}

// g722Band is the adaptive predictor and quantiser state of one sub-band.
type g722Band struct {
	s, sp, sz, r int16
	a, p         [2]int16 // pole section: coefficients, partial reconstructions
	b            [6]int16 // zero section coefficients
	d            [7]int16 // quantised differences, newest first
	nb, det      int16    // log and linear scale factor
}

// NewG722Decoder returns a decoder whose output is at rate: 8000 (lower
// sub-band only) or 16000 (anything else).
func NewG722Decoder(rate int) *G722Decoder {
	d := &G722Decoder{eightK: rate == 8000}
	d.Reset()
	return d
}

// Reset returns the decoder to its initial state.
func (d *G722Decoder) Reset() {
	*d = G722Decoder{eightK: d.eightK}
	d.low.det = 32
	d.high.det = 8
}

// Decode appends the samples of src to dst and returns the result.
func (d *G722Decoder) Decode(dst []int16, src []byte) []int16 {
	for _, code := range src {
		lo, hi, ok := d.step(code)
		if d.eightK {
			dst = append(dst, lo)
		} else if ok {
			dst = append(dst, lo, hi)
		}
	}
	return dst
}

// DecodeLE is Decode with the samples appended to dst as PCM16
// little-endian bytes, without an intermediate slice.
func (d *G722Decoder) DecodeLE(dst []byte, src []byte) []byte {
	for _, code := range src {
		lo, hi, _ := d.step(code)
		dst = append(dst, byte(lo), byte(uint16(lo)>>8))
		if !d.eightK {
			dst = append(dst, byte(hi), byte(uint16(hi)>>8))
		}
	}
	return dst
}

// ITU-T G.722 tables, as scaled in the fixed-point reference.
var (
	g722QM2  = [4]int32{-7408, -1616, 7408, 1616}
	g722QM4  = [16]int32{0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584, 1200, 0}
	g722QM6  = [64]int32{-136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232, -9360, -8576, -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776, -2400, -2032, -1688, -1360, -1040, -728, 24808, 21904, 19008, 16704, 14984, 13512, 12280, 11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456, 4944, 4464, 4008, 3576, 3168, 2776, 2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136}
	g722ILB  = [32]int32{2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834, 2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008}
	g722WL   = [8]int32{-60, -30, 58, 172, 334, 538, 1198, 3042}
	g722RL42 = [16]int32{0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0}
	g722WH   = [3]int32{0, -214, 798}
	g722RH2  = [4]int32{2, 1, 2, 1}
	// Receive QMF coefficients; the second is the first reversed.
	g722QMFFwd = [12]int32{3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11}
	g722QMFRev = [12]int32{-11, 53, -156, 362, -805, 3876, 951, -210, 32, 12, -11, 3}
)

// step decodes one byte: the lower sub-band sample (scaled to 16 bits) and,
// unless decoding at 8 kHz, the two output samples of the QMF (lo first).
func (d *G722Decoder) step(code byte) (lo, hi int16, ok bool) {
	ilow := int32(code & 0x3f)
	ihigh := int32(code >> 6)

	// Lower sub-band: inverse quantiser on all 6 bits for the output, on
	// the top 4 for the predictor; then scale factor adaptation.
	det := int32(d.low.det)
	rlow := sat15(int32(d.low.s) + det*g722QM6[ilow]>>15)
	il4 := ilow >> 2
	dlow := int16(det * g722QM4[il4] >> 15)
	d.low.nb = scaleLog(d.low.nb, g722WL[g722RL42[il4]], 18432)
	d.low.det = scaleLin(d.low.nb, 8)
	d.low.adapt(dlow)

	if d.eightK {
		return int16(rlow << 1), 0, true
	}

	det = int32(d.high.det)
	dhigh := int16(det * g722QM2[ihigh] >> 15)
	rhigh := sat15(int32(dhigh) + int32(d.high.s))
	d.high.nb = scaleLog(d.high.nb, g722WH[g722RH2[ihigh]], 22528)
	d.high.det = scaleLin(d.high.nb, 10)
	d.high.adapt(dhigh)

	// Receive QMF: the oldest sample meets the first coefficient. The
	// conversion to int16 truncates like the reference's cast.
	d.x[d.ptr] = int16(rlow + rhigh)
	d.y[d.ptr] = int16(rlow - rhigh)
	d.ptr++
	if d.ptr == 12 {
		d.ptr = 0
	}
	var sy, sx int32
	for k := range 12 {
		i := d.ptr + k
		if i >= 12 {
			i -= 12
		}
		sy += int32(d.y[i]) * g722QMFRev[k]
		sx += int32(d.x[i]) * g722QMFFwd[k]
	}
	return int16(sy >> 11), int16(sx >> 11), true
}

// scaleLog is LOGSCL/LOGSCH: the leaky log scale factor plus the step for
// this code, kept within [0, limit].
func scaleLog(nb int16, w int32, limit int32) int16 {
	v := int32(nb)*127>>7 + w
	return int16(max(0, min(limit, v)))
}

// scaleLin is SCALEL/SCALEH: the linear scale factor from the log one.
func scaleLin(nb int16, bias int32) int16 {
	m := g722ILB[nb>>6&31]
	sh := bias - int32(nb>>11)
	if sh < 0 {
		m <<= -sh
	} else {
		m >>= sh
	}
	return int16(m << 2)
}

// adapt is block 4 of the reference: reconstruct, update the pole and zero
// predictors with the quantised difference dx, and predict the next signal.
func (b *g722Band) adapt(dx int16) {
	r := sat16(int32(b.s) + int32(dx))  // RECONS
	p := sat16(int32(b.sz) + int32(dx)) // PARREC

	// UPPOL2
	wd1 := int32(sat16(int32(b.a[0]) << 2))
	wd32 := -wd1
	if p^b.p[0] < 0 {
		wd32 = wd1
	}
	wd32 = min(wd32, 32767)
	wd3 := int32(128)
	if p^b.p[1] < 0 {
		wd3 = -128
	}
	wd3 = int32(int16(wd3 + wd32>>7 + int32(b.a[1])*32512>>15))
	wd3 = max(-12288, min(12288, wd3))
	a1 := int16(wd3)

	// UPPOL1
	wd1 = 192
	if p^b.p[0] < 0 {
		wd1 = -192
	}
	a0 := sat16(wd1 + int32(int16(int32(b.a[0])*32640>>15)))
	lim := int32(sat16(15360 - int32(a1)))
	a0 = int16(max(-lim, min(lim, int32(a0))))

	// FILTEP
	f0 := int32(int16(int32(a0) * int32(sat16(2*int32(r))) >> 15))
	f1 := int32(int16(int32(a1) * int32(sat16(2*int32(b.r))) >> 15))
	sp := sat16(f0 + f1)
	b.r = r
	b.a = [2]int16{a0, a1}
	b.p = [2]int16{p, b.p[0]}

	// UPZERO, DELAYA, FILTEZ
	var step int32
	if dx != 0 {
		step = 128
	}
	b.d[0] = dx
	var sz int32
	for i := 5; i >= 0; i-- {
		s := step
		if b.d[i+1]^dx < 0 {
			s = -step
		}
		b.b[i] = sat16(s + int32(int16(int32(b.b[i])*32640>>15)))
		sz += int32(b.b[i]) * int32(sat16(2*int32(b.d[i]))) >> 15
		b.d[i+1] = b.d[i]
	}
	b.sz = sat16(sz)
	b.sp = sp
	b.s = sat16(int32(sp) + int32(b.sz)) // PREDIC
}

func sat16(v int32) int16 { return int16(max(math.MinInt16, min(math.MaxInt16, v))) }

func sat15(v int32) int32 { return max(-16384, min(16383, v)) }
