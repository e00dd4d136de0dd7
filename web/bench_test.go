package web_test

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/callvault/callvault/audio"
)

// BenchmarkFirstByteRandomOffset1h measures the time from sending a Range
// request at a random offset of a 1-hour recording to reading its first
// audio byte: decrypt only the chunk needed, decode G.711, send. Reports p50
// and p95 in milliseconds.
func BenchmarkFirstByteRandomOffset1h(b *testing.B) {
	h := newHarness(b)
	h.arch.MaxSize = 1 << 30
	mono := audio.SpeechLike(9, 3600*8000, 8000)
	var body bytes.Buffer
	if err := audio.WriteWAV(&body, "ulaw", 8000, mono); err != nil {
		b.Fatal(err)
	}
	resp, out := h.ingest(upload{meta: meta("hour", time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC), ""), audio: body.Bytes()})
	if resp.StatusCode != 201 {
		b.Fatalf("ingest: %d %v", resp.StatusCode, out)
	}
	h.grant("listener", 7*24*time.Hour, out["id"].(string))
	c := h.client("listener")
	url := h.ts.URL + h.audioURL(c, out["id"].(string))
	size := int64(44 + 2*3600*8000)
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 4096)
	var lat []time.Duration
	b.ResetTimer()
	for b.Loop() {
		off := rng.Int64N(size - 1)
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
		start := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadAtLeast(resp.Body, buf, 1); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
		resp.Body.Close()
		if resp.StatusCode != http.StatusPartialContent {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / 1e6 }
	b.ReportMetric(ms(0.50), "p50-ms")
	b.ReportMetric(ms(0.95), "p95-ms")
}
