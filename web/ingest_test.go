package web_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestIngestStoresAndIsIdempotent(t *testing.T) {
	h := newHarness(t)
	audio := wav(t, "ulaw", 3*time.Second)
	started := time.Date(2026, 10, 1, 9, 30, 0, 0, time.UTC)
	resp, out := h.ingest(upload{meta: meta("call-1", started, ""), audio: audio})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("first upload: status %d, body %v", resp.StatusCode, out)
	}
	sum := sha256.Sum256(audio)
	if out["sha256"] != hex.EncodeToString(sum[:]) {
		t.Errorf("sha256 = %v, want %x", out["sha256"], sum)
	}
	if d, _ := out["duration_seconds"].(float64); d < 2.99 || d > 3.01 {
		t.Errorf("duration_seconds = %v, want 3 (from the audio)", out["duration_seconds"])
	}
	if out["academy"] != "oakfield" {
		t.Errorf("academy = %v, want oakfield (matched by DDI)", out["academy"])
	}
	if loc := resp.Header.Get("Location"); loc != "/api/v1/recordings/"+out["id"].(string) {
		t.Errorf("Location = %q", loc)
	}
	// The stored blob is not the plaintext.
	rows, files := h.countStored()
	if rows != 1 || files != 1 {
		t.Fatalf("stored rows=%d files=%d, want 1 and 1", rows, files)
	}

	resp2, out2 := h.ingest(upload{meta: meta("call-1", started, ""), audio: audio})
	if resp2.StatusCode != http.StatusOK || out2["id"] != out["id"] || out2["created"] != false {
		t.Errorf("retry: status %d, body %v; want 200 with the same id", resp2.StatusCode, out2)
	}
	if rows, files := h.countStored(); rows != 1 || files != 1 {
		t.Errorf("after retry rows=%d files=%d, want 1 and 1", rows, files)
	}
}

func TestIngestUnmatchedGoesToUnassigned(t *testing.T) {
	h := newHarness(t)
	m := `{"source_ref":"x","started_at":"2026-10-01T09:00:00Z","participants":[{"number":"+12025550143","side":"external"}]}`
	resp, out := h.ingest(upload{meta: m, audio: wav(t, "alaw", time.Second)})
	if resp.StatusCode != http.StatusCreated || out["academy"] != "unassigned" {
		t.Fatalf("status %d, body %v; want 201 and academy unassigned", resp.StatusCode, out)
	}
	m = `{"source_ref":"y","started_at":"2026-10-01T09:00:00Z","academy":"riverside"}`
	resp, out = h.ingest(upload{meta: m, audio: wav(t, "pcm16", time.Second)})
	if resp.StatusCode != http.StatusCreated || out["academy"] != "riverside" {
		t.Fatalf("status %d, body %v; want 201 and academy riverside", resp.StatusCode, out)
	}
}

// Every bad input gets a 4xx with a clear JSON error, and nothing is stored:
// no row, no blob, no temporary file.
func TestIngestBadInput(t *testing.T) {
	h := newHarness(t)
	started := time.Date(2026, 10, 1, 9, 30, 0, 0, time.UTC)
	good := wav(t, "ulaw", 2*time.Second)
	lying := append([]byte(nil), good...)
	// Claim a data chunk far longer than the file.
	idx := strings.Index(string(lying), "data")
	lying[idx+4], lying[idx+5], lying[idx+6], lying[idx+7] = 0x00, 0x00, 0x40, 0x00
	big := make([]byte, 5<<20)
	copy(big, good)

	tests := []struct {
		name   string
		up     upload
		status int
		msg    string // part of the error message
	}{
		{"no token", upload{meta: meta("a", started, ""), audio: good, token: "-"}, 401, "ingest token is required"},
		{"wrong token", upload{meta: meta("a", started, ""), audio: good, token: "cvi_wrong"}, 401, "not valid"},
		{"not multipart", upload{meta: meta("a", started, ""), audio: good, contentType: "application/json"}, 415, "multipart/form-data"},
		{"audio part not audio", upload{meta: meta("a", started, ""), audio: good, audioType: "text/html"}, 415, "content type"},
		{"bad json", upload{meta: `{"source_ref": "a",`, audio: good}, 400, "not valid JSON"},
		{"unknown field", upload{meta: `{"source_ref":"a","started_at":"2026-10-01T09:00:00Z","colour":"red"}`, audio: good}, 400, "not valid JSON"},
		{"missing source_ref", upload{meta: `{"started_at":"2026-10-01T09:00:00Z"}`, audio: good}, 400, "source_ref is required"},
		{"bad time", upload{meta: `{"source_ref":"a","started_at":"yesterday"}`, audio: good}, 400, "not valid JSON"},
		{"bad direction", upload{meta: meta("a", started, `,"direction":"sideways"`), audio: good}, 400, ""},
		{"bad side", upload{meta: `{"source_ref":"a","started_at":"2026-10-01T09:00:00Z","participants":[{"number":"1","side":"left"}]}`, audio: good}, 400, "side must be"},
		{"unknown academy", upload{meta: `{"source_ref":"a","started_at":"2026-10-01T09:00:00Z","academy":"nowhere"}`, audio: good}, 400, "unknown academy"},
		{"metadata after audio", upload{meta: meta("a", started, ""), audio: good, audioFirst: true}, 400, "must come before"},
		{"no audio", upload{meta: meta("a", started, "")}, 400, "audio part is missing"},
		{"empty audio", upload{meta: meta("a", started, ""), audio: []byte{}}, 400, "empty"},
		{"garbage audio", upload{meta: meta("a", started, ""), audio: []byte(strings.Repeat("garbage ", 500))}, 400, ""},
		{"truncated wav", upload{meta: meta("a", started, ""), audio: good[:30]}, 400, ""},
		{"wav header lies", upload{meta: meta("a", started, ""), audio: lying}, 400, ""},
		{"oversized", upload{meta: meta("a", started, ""), audio: big}, 413, "limit"},
		{"path file name", upload{meta: meta("a", started, ""), audio: good, filename: "../../etc/passwd"}, 400, "plain file name"},
		{"windows path", upload{meta: meta("a", started, ""), audio: good, filename: `C:\temp\call.wav`}, 400, "plain file name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, out := h.ingest(tt.up)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d (body %v)", resp.StatusCode, tt.status, out)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q, want JSON", ct)
			}
			e, _ := out["error"].(map[string]any)
			msg, _ := e["message"].(string)
			if msg == "" || !strings.Contains(msg, tt.msg) {
				t.Errorf("error message = %q, want it to mention %q", msg, tt.msg)
			}
			if rows, files := h.countStored(); rows != 0 || files != 0 {
				t.Errorf("after a refused upload: rows=%d files=%d, want nothing stored", rows, files)
			}
		})
	}
}
