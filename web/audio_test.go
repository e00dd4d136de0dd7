package web_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/callvault/callvault"
)

// storeOne ingests a recording and returns its id.
func (h *harness) storeOne(ref string, codec string, d time.Duration) string {
	h.t.Helper()
	resp, out := h.ingest(upload{meta: meta(ref, time.Date(2026, 10, 1, 9, 30, 0, 0, time.UTC), ""), audio: wav(h.t, codec, d)})
	if resp.StatusCode != http.StatusCreated {
		h.t.Fatalf("ingest: %d %v", resp.StatusCode, out)
	}
	return out["id"].(string)
}

func TestAudioRanges(t *testing.T) {
	h := newHarness(t)
	id := h.storeOne("r1", "ulaw", 4*time.Second)
	h.grant("listener", time.Hour, id)
	c := h.client("listener")
	u := h.audioURL(c, id)
	get := func(rng string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", h.ts.URL+u, nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, b
	}
	resp, full := get("")
	if resp.StatusCode != 200 {
		t.Fatalf("full: status %d", resp.StatusCode)
	}
	// 4 s of stereo µ-law at 8 kHz becomes PCM16: 44 + 4*8000*2*2 bytes.
	if want := 44 + 4*8000*2*2; len(full) != want {
		t.Fatalf("rendition is %d bytes, want %d", len(full), want)
	}
	for k, want := range map[string]string{
		"Content-Type": "audio/wav", "Cache-Control": "no-store", "Content-Disposition": "inline", "Accept-Ranges": "bytes",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if !bytes.HasPrefix(full, []byte("RIFF")) || !bytes.Equal(full[8:12], []byte("WAVE")) {
		t.Errorf("rendition does not start with a WAV header")
	}
	n := len(full)
	tests := []struct {
		rng          string
		status       int
		first, last  int // expected slice, inclusive
		contentRange string
	}{
		{"bytes=0-99", 206, 0, 99, fmt.Sprintf("bytes 0-99/%d", n)},
		{"bytes=1000-", 206, 1000, n - 1, fmt.Sprintf("bytes 1000-%d/%d", n-1, n)},
		{"bytes=-500", 206, n - 500, n - 1, fmt.Sprintf("bytes %d-%d/%d", n-500, n-1, n)},
		{fmt.Sprintf("bytes=%d-%d", n-10, n+5000), 206, n - 10, n - 1, fmt.Sprintf("bytes %d-%d/%d", n-10, n-1, n)},
		{"bytes=43-44", 206, 43, 44, fmt.Sprintf("bytes 43-44/%d", n)}, // spans the header and the first sample
		{fmt.Sprintf("bytes=%d-", n), 416, 0, -1, fmt.Sprintf("bytes */%d", n)},
		{"bytes=999999999-", 416, 0, -1, fmt.Sprintf("bytes */%d", n)},
	}
	for _, tt := range tests {
		resp, b := get(tt.rng)
		if resp.StatusCode != tt.status {
			t.Errorf("Range %s: status %d, want %d", tt.rng, resp.StatusCode, tt.status)
			continue
		}
		if got := resp.Header.Get("Content-Range"); got != tt.contentRange {
			t.Errorf("Range %s: Content-Range %q, want %q", tt.rng, got, tt.contentRange)
		}
		if tt.status == 206 && !bytes.Equal(b, full[tt.first:tt.last+1]) {
			t.Errorf("Range %s: body differs from the same slice of the full rendition", tt.rng)
		}
	}
}

func TestAudioPassThroughAndPCM(t *testing.T) {
	h := newHarness(t)
	orig := wav(t, "pcm16", 2*time.Second)
	resp, out := h.ingest(upload{meta: meta("p", time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC), ""), audio: orig})
	if resp.StatusCode != 201 {
		t.Fatalf("ingest: %d %v", resp.StatusCode, out)
	}
	h.grant("listener", time.Hour, out["id"].(string))
	c := h.client("listener")
	r, err := c.Get(h.ts.URL + h.audioURL(c, out["id"].(string)))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if !bytes.Equal(got, orig) {
		t.Errorf("PCM16 WAV playback is not the original bytes (%d vs %d bytes)", len(got), len(orig))
	}
}

// A blob moved to another recording's place must not decrypt.
func TestMovedBlobFailsToDecrypt(t *testing.T) {
	h := newHarness(t)
	a := h.storeOne("a", "ulaw", time.Second)
	b := h.storeOne("b", "alaw", time.Second)
	sys := callvault.NewContextWithActor(context.Background(), callvault.SystemActor)
	ra, _ := h.arch.Recordings.FindRecordingByID(sys, a)
	rb, _ := h.arch.Recordings.FindRecordingByID(sys, b)
	moved := *rb
	moved.BlobKey = ra.BlobKey // b's row now points at a's ciphertext
	if _, err := h.arch.OpenAudio(sys, &moved); err == nil {
		t.Fatal("OpenAudio of a blob that belongs to another recording succeeded")
	}
	if au, err := h.arch.OpenAudio(sys, ra); err != nil {
		t.Fatalf("OpenAudio of the right blob: %v", err)
	} else {
		au.Close()
	}
}

// Real Ogg Opus and MP3 files (made with opusenc and lame, see
// audio/testdata/README.md) are stored as sent and played back unchanged;
// recognised but unsupported codecs are refused with 415.
func TestIngestFormats(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		file, ctype string
		status      int
		playType    string
	}{
		{"opus_48k_stereo.opus", "audio/ogg", 201, "audio/ogg"},
		{"mp3_16k_mono_id3.mp3", "audio/mpeg", 201, "audio/mpeg"},
		{"ulaw_8k_mono.wav", "application/octet-stream", 201, "audio/wav"},
		{"float32_8k_mono.wav", "audio/wav", 415, ""},
		{"vorbis_8k_mono.ogg", "audio/ogg", 415, ""},
	}
	for i, tt := range tests {
		orig, err := os.ReadFile(filepath.Join("..", "audio", "testdata", tt.file))
		if err != nil {
			t.Fatal(err)
		}
		resp, out := h.ingest(upload{meta: meta(fmt.Sprint("f", i), time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC), ""), audio: orig, audioType: tt.ctype, filename: tt.file})
		if resp.StatusCode != tt.status {
			t.Errorf("%s: ingest status %d, want %d (%v)", tt.file, resp.StatusCode, tt.status, out)
			continue
		}
		if tt.status != 201 {
			continue
		}
		h.grant("listener", time.Hour, out["id"].(string))
		c := h.client("listener")
		r, err := c.Get(h.ts.URL + h.audioURL(c, out["id"].(string)))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if ct := r.Header.Get("Content-Type"); ct != tt.playType {
			t.Errorf("%s: played as %q, want %q", tt.file, ct, tt.playType)
		}
		if tt.playType != "audio/wav" && !bytes.Equal(got, orig) {
			t.Errorf("%s: playback differs from the original", tt.file)
		}
	}
	if rows, files := h.countStored(); rows != 3 || files != 3 {
		t.Errorf("stored rows=%d files=%d, want 3 and 3", rows, files)
	}
}
