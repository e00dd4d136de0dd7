package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/archive"
	"github.com/callvault/callvault/cvtest"
)

// TestMain lets a test run this binary's main as a child process, to kill
// it with SIGKILL.
func TestMain(m *testing.M) {
	if os.Getenv("CALLVAULT_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// openTest opens the deployment in data for a test.
func openTest(t testing.TB, data string) *deployment {
	t.Helper()
	e := &env{stdout: io.Discard, stderr: io.Discard, logger: cvtest.Quiet}
	dep, err := (&deployFlags{data: data}).open(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	return dep
}

// seedCalls ingests n real calls from number that started at started.
func seedCalls(t testing.TB, dep *deployment, prefix string, n int, started time.Time) []*callvault.Recording {
	t.Helper()
	src, err := dep.findOrCreateSource(context.Background(), "pbx", callvault.SourceImport)
	if err != nil {
		t.Fatal(err)
	}
	body := cvtest.CallWAV(t, "ulaw", time.Second)
	var out []*callvault.Recording
	for i := range n {
		rec, _, err := dep.archive.Ingest(context.Background(), archive.IngestRequest{Source: src,
			Meta: archive.Metadata{SourceRef: prefix + strconv.Itoa(i), StartedAt: started.Add(time.Duration(i) * time.Minute),
				Participants: []archive.MetadataParticipant{{Number: "+4477009001" + fmt.Sprintf("%02d", i%100), Side: callvault.SideExternal}}},
			Audio: bytes.NewReader(body)})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
	return out
}

func jsonIDs(t *testing.T, out string) []string {
	t.Helper()
	var ids []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var x struct {
			ID  string `json:"id"`
			Run string `json:"run"`
		}
		if err := json.Unmarshal(sc.Bytes(), &x); err != nil {
			t.Fatalf("not JSON lines: %q", sc.Text())
		}
		if x.Run == "" {
			ids = append(ids, x.ID)
		}
	}
	return ids
}

// The dry run names exactly what the real run then deletes; settings are
// previewed before they apply, and 0 or negative months are refused.
func TestRetentionCommandLine(t *testing.T) {
	data := t.TempDir()
	d := "--data=" + data
	dep := openTest(t, data)
	old := seedCalls(t, dep, "old", 12, time.Now().AddDate(0, -13, 0))
	recent := seedCalls(t, dep, "recent", 3, time.Now().AddDate(0, -11, 0))
	dep.Close()

	for _, bad := range []string{"0", "-3", "121"} {
		if _, _, err := cli(t, "retention", "set", d, "--months", bad, "--yes"); err == nil || !strings.Contains(err.Error(), "between 1 and 120") {
			t.Errorf("retention set --months %s = %v", bad, err)
		}
	}
	out, _, err := cli(t, "retention", "set", d, "--months", "10")
	if err != nil || !strings.Contains(out, "15 recordings change date (15 earlier, 0 later); 15 would be deleted") || !strings.Contains(out, "Nothing changed") {
		t.Fatalf("retention set preview = %q, %v", out, err)
	}
	dry, _, err := cli(t, "retention", "run", d, "--dry-run", "--json")
	if err != nil {
		t.Fatal(err)
	}
	dryIDs := jsonIDs(t, dry)
	want := make([]string, len(old))
	for i, r := range old {
		want[i] = r.ID
	}
	if !slices.Equal(dryIDs, want) {
		t.Fatalf("dry run lists %v, want the 12 old calls in order %v", dryIDs, want)
	}
	// A date in the future previews; a real run refuses it.
	future, _, err := cli(t, "retention", "run", d, "--dry-run", "--json", "--as-of", time.Now().AddDate(0, 2, 0).Format("2006-01-02"))
	if err != nil || len(jsonIDs(t, future)) != 15 {
		t.Fatalf("dry run two months ahead: %v\n%s", err, future)
	}
	if _, _, err := cli(t, "retention", "run", d, "--as-of", time.Now().AddDate(0, 2, 0).Format(time.RFC3339)); err == nil || !strings.Contains(err.Error(), "future") {
		t.Fatalf("real run in the future = %v", err)
	}
	real, _, err := cli(t, "retention", "run", d, "--json")
	if err != nil {
		t.Fatal(err)
	}
	if got := jsonIDs(t, real); !slices.Equal(got, dryIDs) {
		t.Fatalf("real run purged %v, dry run said %v", got, dryIDs)
	}
	status, _, err := cli(t, "keys", "status", d)
	if err != nil || !strings.Contains(status, old[0].KeyEpoch+"  closing") {
		t.Errorf("keys status after purging %s = %v\n%s", old[0].KeyEpoch, err, status)
	}

	dep = openTest(t, data)
	defer dep.Close()
	for _, r := range recent {
		if _, err := dep.recordings.FindRecordingByID(system(context.Background()), r.ID); err != nil {
			t.Errorf("recent recording %s: %v", r.ID, err)
		}
	}
}

// A purge killed with SIGKILL at any moment leaves no half-deleted
// recording: every row left has its audio or is queued with its receipt
// written, and the next run finishes the job.
func TestRetentionSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes; slow")
	}
	data := t.TempDir()
	dep := openTest(t, data)
	old := seedCalls(t, dep, "old", 400, time.Now().AddDate(0, -13, 0))
	dep.Close()

	// Kill each run once some but not all of the audio is deleted: after
	// the receipts, in the middle of the deletions.
	blobDir := filepath.Join(data, "blobs", "recordings", old[0].KeyEpoch)
	for k, killAt := range []int{350, 200, 60} {
		cmd := exec.Command(os.Args[0], "retention", "run", "--data="+data)
		cmd.Env = append(os.Environ(), "CALLVAULT_TEST_MAIN=1")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			es, _ := os.ReadDir(blobDir)
			if len(es) <= killAt || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Microsecond)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		left, receipts := checkNoHalfDeleted(t, data, old)
		t.Logf("kill %d: %d recordings left, %d receipts", k+1, left, receipts)
		if left == 0 {
			t.Fatalf("kill %d came after the run finished: the test proves nothing", k+1)
		}
	}
	if _, _, err := cli(t, "retention", "run", "--data="+data); err != nil {
		t.Fatal(err)
	}
	left, receipts := checkNoHalfDeleted(t, data, old)
	if left != 0 || receipts != len(old) {
		t.Fatalf("after the final run: %d recordings left, %d receipts for %d", left, receipts, len(old))
	}
}

// checkNoHalfDeleted checks the invariants a kill must not break and
// returns how many recordings remain and how many receipts exist.
func checkNoHalfDeleted(t *testing.T, data string, recs []*callvault.Recording) (left, receipts int) {
	t.Helper()
	dep := openTest(t, data)
	defer dep.Close()
	ctx := system(context.Background())
	queued := map[string]bool{}
	qs, err := dep.purges.QueuedPurges(ctx, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		queued[q.ID] = true
	}
	got := map[string]int{}
	if err := dep.audit.WalkAudit(ctx, 0, func(e *callvault.AuditEvent) error {
		if e.Action == callvault.ActionPurge {
			got[e.TargetID]++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		_, ferr := dep.recordings.FindRecordingByID(ctx, r.ID)
		exists := ferr == nil
		_, statErr := os.Stat(filepath.Join(data, "blobs", filepath.FromSlash(r.BlobKey)))
		hasBlob := statErr == nil
		switch {
		case got[r.ID] > 1:
			t.Errorf("%s has %d receipts", r.ID, got[r.ID])
		case exists && !hasBlob && !queued[r.ID]:
			t.Errorf("%s: row without audio and not queued", r.ID)
		case queued[r.ID] && got[r.ID] == 0:
			t.Errorf("%s queued without a receipt", r.ID)
		case !exists && got[r.ID] == 0:
			t.Errorf("%s deleted without a receipt", r.ID)
		case !exists && hasBlob:
			t.Errorf("%s: audio left without a row", r.ID)
		}
		if exists {
			left++
		}
		receipts += got[r.ID]
	}
	return left, receipts
}
