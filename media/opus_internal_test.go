package media

import (
	"bytes"
	"encoding/binary"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/callvault/callvault/cvtest"
)

// The files in testdata/opus are 2 s of audio.SpeechLike(11, ...) encoded
// by opusenc (libopus 1.3.1) as TestOpusMatchesLibopus -update-opus writes
// them: SILK narrowband (12 kbit/s), SILK wideband (16 kbit/s), hybrid
// fullband (32 kbit/s) and CELT fullband (64 kbit/s), 20 ms packets.
var opusFixtures = []string{"silk-nb", "silk-wb", "hybrid", "celt"}

// fixturePackets returns the Opus packets of testdata/opus/name.opus.
func fixturePackets(t testing.TB, name string) [][]byte {
	t.Helper()
	return cvtest.OggOpusPackets(t, "testdata/opus/"+name+".opus")
}

func TestOpusSamples(t *testing.T) {
	for _, tc := range []struct {
		p    []byte
		want int
	}{
		{nil, 0},
		{[]byte{0 << 3}, 480},        // SILK NB 10 ms
		{[]byte{1 << 3}, 960},        // SILK NB 20 ms
		{[]byte{11 << 3}, 2880},      // SILK WB 60 ms
		{[]byte{12 << 3}, 480},       // hybrid SWB 10 ms
		{[]byte{15 << 3}, 960},       // hybrid FB 20 ms
		{[]byte{16 << 3}, 120},       // CELT NB 2.5 ms
		{[]byte{31 << 3}, 960},       // CELT FB 20 ms
		{[]byte{31<<3 | 1, 0}, 1920}, // two equal frames
		{[]byte{31<<3 | 2, 1, 0}, 1920},
		{[]byte{31<<3 | 3}, 0},              // code 3 without its frame count
		{[]byte{31<<3 | 3, 0}, 0},           // no frames
		{[]byte{31<<3 | 3, 6}, 5760},        // 6 × 20 ms = 120 ms: the most
		{[]byte{31<<3 | 3, 7}, 0},           // 140 ms
		{[]byte{11<<3 | 3, 0x80 | 2}, 5760}, // VBR flag ignored: 2 × 60 ms
		{[]byte{11<<3 | 3, 3}, 0},           // 180 ms
	} {
		if got := opusSamples(tc.p); got != tc.want {
			t.Errorf("opusSamples(%x) = %d, want %d", tc.p, got, tc.want)
		}
	}
}

// TestDecimationFilter measures the filter from 48 to 8 kHz with pure tones:
// flat over the telephone band, at least 60 dB down from 4.6 kHz (nothing
// folds into 0–3.4 kHz), and a delay of exactly decimDelay samples.
func TestDecimationFilter(t *testing.T) {
	gain := func(f float64) (db float64, delay int) {
		d := &opusDecoder{}
		in := make([]float32, 4*opusMaxSamples)
		for i := range in {
			in[i] = float32(0.5 * math.Sin(2*math.Pi*f*float64(i)/opusRate))
		}
		var out []int16
		pcm := make([]byte, 2*opusMaxSamples/opusDecimation)
		for off := 0; off < len(in); off += 960 { // 20 ms packets
			copy(d.x[opusHistory:], in[off:off+960])
			b := d.downsample(pcm, 960)
			for i := 0; i < len(b); i += 2 {
				out = append(out, int16(binary.LittleEndian.Uint16(b[i:])))
			}
		}
		// The steady state, against the input's own samples at 8 kHz.
		var po, pi, best float64
		for i := 200; i < len(out); i++ {
			po += float64(out[i]) * float64(out[i])
			pi += 0.25 * 32768 * 32768 / 2
		}
		if f <= 300 { // a period longer than the lags tried
			best = math.Inf(1)
			for lag := 0; lag < 40; lag++ {
				var e float64
				for i := 200; i < len(out); i++ {
					want := 0.5 * 32768 * math.Sin(2*math.Pi*f*float64(6*(i-lag))/opusRate)
					e += (float64(out[i]) - want) * (float64(out[i]) - want)
				}
				if e < best {
					best, delay = e, lag
				}
			}
		}
		return 10 * math.Log10(po/pi), delay
	}
	for _, f := range []float64{100, 300, 1000, 2000, 3000, 3400} {
		db, delay := gain(f)
		if math.Abs(db) > 0.1 {
			t.Errorf("%.0f Hz: gain %.2f dB, want within ±0.1 dB", f, db)
		}
		if f <= 300 && delay != decimDelay {
			t.Errorf("%.0f Hz: delayed by %d samples, want %d", f, delay, decimDelay)
		}
	}
	for _, f := range []float64{4600, 5000, 6000, 7900, 8000, 9000, 12000, 16000, 20000, 23900} {
		if db, _ := gain(f); db > -60 {
			t.Errorf("%.0f Hz: gain %.1f dB, want at most -60 dB", f, db)
		}
	}
}

// TestOpusFixtures decodes each Opus mode through the stream: every packet
// decodes, fills its 20 ms, and the result sounds (is not silence or noise
// at full scale).
func TestOpusFixtures(t *testing.T) {
	for _, name := range opusFixtures {
		t.Run(name, func(t *testing.T) {
			_, st := testSession(t, Config{})
			packets := fixturePackets(t, name)
			for k, p := range packets {
				feed(st, rtpBytes(7, uint16(k), uint32(960*k), 111, p), int64(160*k))
			}
			st.mu.Lock()
			defer st.mu.Unlock()
			if st.c.undecodable != 0 || st.c.codecs[codecOpus] != uint64(len(packets)) || st.track.head() != int64(160*len(packets)) {
				t.Errorf("%d undecodable, %d opus, head %d; want 0, %d, %d", st.c.undecodable, st.c.codecs[codecOpus], st.track.head(), len(packets), 160*len(packets))
			}
			st.track.flush()
			pcm := make([]byte, 2*160*len(packets))
			st.track.f.ReadAt(pcm, 0)
			var sum float64
			for i := 0; i < len(pcm); i += 2 {
				v := float64(int16(binary.LittleEndian.Uint16(pcm[i:])))
				sum += v * v
			}
			if rms := math.Sqrt(sum / float64(len(pcm)/2)); rms < 300 || rms > 8000 {
				t.Errorf("RMS %.0f, want speech (300 to 8000)", rms)
			}
		})
	}
}

// TestOpusUndecodable: packets that are not Opus keep their place on the
// timeline (from the table of contents, where it parses) as silence, are
// counted, and do not upset the decoding of the packets after them. A
// packet with no frame (discontinuous transmission) is silence too, but
// not an error.
func TestOpusUndecodable(t *testing.T) {
	_, st := testSession(t, Config{})
	good := fixturePackets(t, "silk-wb")
	bad := [][]byte{
		{31<<3 | 3, 0},   // code 3, no frames: no duration either
		{9<<3 | 1, 0xAA}, // code 1 with an odd frame payload (RFC 6716 R3)
		{9<<3 | 2, 0xFF}, // code 2 with its length cut off
		{9 << 3},         // SILK wideband, TOC only: DTX
	}
	k := 0
	send := func(p []byte) {
		feed(st, rtpBytes(7, uint16(k), uint32(960*k), 111, p), int64(160*k))
		k++
	}
	for _, p := range good[:10] {
		send(p)
	}
	for _, p := range bad {
		send(p)
	}
	for _, p := range good[14:30] {
		send(p)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.c.undecodable != 3 || st.c.lost != 0 || st.track.head() != 160*30 {
		t.Fatalf("%d undecodable, %d lost, head %d; want 3, 0, %d", st.c.undecodable, st.c.lost, st.track.head(), 160*30)
	}
	st.track.flush()
	pcm := make([]byte, 2*160*30)
	st.track.f.ReadAt(pcm, 0)
	if !bytes.Equal(pcm[2*160*10:2*160*14], make([]byte, 2*160*4)) {
		t.Error("the undecodable packets' place is not silence")
	}
	if bytes.Equal(pcm[2*160*15:], make([]byte, len(pcm)-2*160*15)) {
		t.Error("silence after the undecodable packets")
	}
}

// TestRescale: 48 kHz timestamps become 8 kHz ones stepwise, exactly, across
// the 32-bit wrap and with steps that are not multiples of 6.
func TestRescale(t *testing.T) {
	st := &Stream{}
	start := uint32(math.MaxUint32 - 1000)
	base := st.rescale(start)
	for _, step := range []int64{960, 7, -7, 1, 5, 120, -960, 2880, 1 << 20} {
		var unwrapped int64
		st = &Stream{}
		st.rescale(start)
		ts := start
		for i := 0; i < 200; i++ {
			ts += uint32(step)
			unwrapped += step
			want := base + uint32(math.Floor(float64(int64(start%6)+unwrapped)/6))
			if got := st.rescale(ts); got != want {
				t.Fatalf("step %d, after %d steps: %d, want %d", step, i+1, got, want)
			}
		}
	}
}

// TestOpusAllocs: what an Opus packet allocates on the hot path once the
// decoder has warmed up. media's own part (the filter, the timeline)
// allocates nothing; pion/opus allocates the frame list of every packet of
// more than one frame (libopus's hard CBR pads with code 3 packets) and
// now and then in CELT's PVQ decoding (cwrsUrow). That is reported, and
// must stay under one allocation a packet, so that one of media's own
// would show.
func TestOpusAllocs(t *testing.T) {
	for _, name := range opusFixtures {
		_, st := testSession(t, Config{})
		packets := fixturePackets(t, name)
		var pkts [][]byte
		for k := range 3 * len(packets) {
			pkts = append(pkts, rtpBytes(7, uint16(k), uint32(960*k), 111, packets[k%len(packets)]))
		}
		for k := range len(packets) { // warm up
			feed(st, pkts[k], int64(160*k))
		}
		k := len(packets)
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		for ; k < len(pkts); k++ {
			feed(st, pkts[k], int64(160*k))
		}
		runtime.ReadMemStats(&ms1)
		n := float64(ms1.Mallocs-ms0.Mallocs) / float64(len(pkts)-len(packets))
		t.Logf("%s: %.2f allocations per packet", name, n)
		if n >= 1 {
			t.Errorf("%s: %.2f allocations per packet, want less than 1 (pion/opus's own)", name, n)
		}
	}
}

// BenchmarkPacketOpus is BenchmarkPacket for Opus, per mode: RTP, timeline,
// pion/opus decoding at 48 kHz and the filter down to 8 kHz.
func BenchmarkPacketOpus(b *testing.B) {
	for _, name := range opusFixtures {
		b.Run(name, func(b *testing.B) {
			s, st := testSession(b, Config{Now: time.Now})
			var pkts [][]byte
			for _, p := range fixturePackets(b, name) {
				pkts = append(pkts, rtpBytes(0x1234, 0, 0, 111, p))
			}
			b.ReportAllocs()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			cpu := threadCPU()
			k := 0
			for b.Loop() {
				pkt := pkts[k%len(pkts)]
				binary.BigEndian.PutUint16(pkt[2:], uint16(k))
				binary.BigEndian.PutUint32(pkt[4:], uint32(960*k))
				_ = s.now()
				st.mu.Lock()
				st.handle(pkt, from, int64(k)*20*int64(time.Millisecond))
				st.mu.Unlock()
				k++
			}
			if cpu := threadCPU() - cpu; cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			}
		})
	}
}

// BenchmarkOpusDownsample is the filter's share of BenchmarkPacketOpus:
// 20 ms from 48 to 8 kHz.
func BenchmarkOpusDownsample(b *testing.B) {
	d := &opusDecoder{}
	for i := range d.x {
		d.x[i] = float32(math.Sin(float64(i)))
	}
	dst := make([]byte, 320)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu := threadCPU()
	for b.Loop() {
		d.downsample(dst, 960)
	}
	if cpu := threadCPU() - cpu; cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}
