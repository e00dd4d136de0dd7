package web_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/callvault/callvault/cvtest"
	"github.com/callvault/callvault/diskspace"
	"github.com/callvault/callvault/web"
)

// At the storage floor the ingest API answers 503 and stores nothing; the
// free-space reading is on /metrics.
func TestIngestRefusedAtTheStorageFloor(t *testing.T) {
	h := newHarness(t)
	warn, _ := diskspace.ParseThreshold("10%")
	floor, _ := diskspace.ParseThreshold("2%")
	free := uint64(1e9) // 1% of 100 GB
	mon := &diskspace.Monitor{Paths: []string{h.dir}, Warn: warn, Floor: floor,
		Statfs: func(string) (uint64, uint64, error) { return free, 100e9, nil }, Logger: cvtest.Quiet}
	mon.Check(t.Context())
	h.arch.Space = mon

	resp, out := h.ingest(upload{meta: meta("full-1", time.Now().Add(-time.Hour), ""), audio: wav(t, "ulaw", time.Second)})
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(out["error"]), "nearly full") {
		t.Fatalf("ingest at the floor: %d %v; want 503 saying storage is nearly full", resp.StatusCode, out)
	}
	if rows, files := h.countStored(); rows != 0 || files != 0 {
		t.Errorf("a refused ingest stored %d rows and %d files", rows, files)
	}

	// A server watching the monitor exports its reading.
	srv := &web.Server{Archive: h.arch, Recordings: h.d.Recordings, Academies: h.d.Academies, Users: h.d.Users,
		Sources: h.d.Sources, Grants: h.d.Grants, Tokens: h.d.Tokens, MFA: h.d.Users, Secrets: h.d.Vault,
		Auditor: h.d.Log, Audit: h.d.Audit, Space: mon, Logger: h.srv.Logger}
	if err := srv.Init(); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	mr, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(mr.Body)
	mr.Body.Close()
	for _, want := range []string{"callvault_disk_level 2", "callvault_disk_free_bytes 1e+09", "callvault_disk_total_bytes 1e+11"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
