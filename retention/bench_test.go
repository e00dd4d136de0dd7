package retention_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/cvtest"
	"github.com/callvault/callvault/retention"
)

// BenchmarkPurge100k purges 100,000 expired recordings (rows with two
// participants each and a 4 KiB blob file each) on SQLite and local disk,
// end to end: receipts, audit redaction, blob deletion, row deletion and
// shredding of the emptied months. The aim is under 60 s. Run with
//
//	go test ./retention -run '^$' -bench Purge100k -benchtime 1x
//
// CALLVAULT_BENCH_PURGE changes the number of recordings.
func BenchmarkPurge100k(b *testing.B) {
	n := 100_000
	if s := os.Getenv("CALLVAULT_BENCH_PURGE"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	for b.Loop() {
		b.StopTimer()
		f := newFixture(b)
		f.purger.Batch = 0 // the default
		seed(b, f, n)
		b.StartTimer()
		start := time.Now()
		rep, err := f.purger.Run(context.Background(), retention.Options{})
		if err != nil {
			b.Fatal(err)
		}
		el := time.Since(start)
		if rep.Purged != n {
			b.Fatalf("purged %d of %d", rep.Purged, n)
		}
		b.ReportMetric(el.Seconds(), "s/run")
		b.ReportMetric(float64(n)/el.Seconds(), "recordings/s")
	}
}

// seed inserts n recordings started 13-14 months ago, each with a blob.
func seed(b *testing.B, f *fixture, n int) {
	start := time.Now()
	blobDir := filepath.Join(f.Dir, "blobs")
	body := make([]byte, 4096)
	first := f.now.AddDate(0, -14, 0)
	step := (30 * 24 * time.Hour) / time.Duration(n)
	for i := range n {
		started := first.Add(time.Duration(i) * step)
		id := uuid.Must(uuid.NewV7()).String()
		epoch := callvault.KeyEpoch(started)
		key := "recordings/" + epoch + "/" + id + ".age"
		p := filepath.Join(blobDir, filepath.FromSlash(key))
		if i == 0 || epoch != callvault.KeyEpoch(started.Add(-step)) {
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				b.Fatal(err)
			}
			// The keyring holds a key for every month that has recordings.
			if _, err := f.Vault.Encrypt(discard{}, id, epoch); err != nil {
				b.Fatal(err)
			}
		}
		if err := os.WriteFile(p, body, 0o600); err != nil {
			b.Fatal(err)
		}
		r := &callvault.Recording{ID: id, AcademyID: 1, SourceKind: callvault.SourceImport, SourceRef: strconv.Itoa(i),
			StartedAt: started, Duration: time.Minute, Direction: callvault.DirectionInbound, Format: "wav", Codec: "ulaw",
			SampleRate: 8000, Channels: 2, Size: int64(len(body)), SHA256: fmt.Sprintf("%064x", i), BlobKey: key, KeyEpoch: epoch,
			Participants: []callvault.Participant{{Number: fmt.Sprintf("+4477009%05d", i%100000), Side: callvault.SideExternal},
				{Extension: "2001", Side: callvault.SideStaff}}}
		if err := f.Recordings.CreateRecording(f.Sys, r); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("seeded %d recordings in %v", n, time.Since(start).Round(time.Second))
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkDestroyEpoch shows that shredding a month costs the same however
// many recordings it covers: one tombstone and one key file, no recording
// is touched.
func BenchmarkDestroyEpoch(b *testing.B) {
	for _, n := range []int{1, 10_000} {
		b.Run(fmt.Sprintf("recordings=%d", n), func(b *testing.B) {
			d := cvtest.New(b)
			i := 0
			for b.Loop() {
				b.StopTimer()
				i++
				epoch := fmt.Sprintf("%04d-%02d", 1980+i/12, 1+i%12)
				for j := range n {
					w, err := d.Vault.Encrypt(discard{}, strconv.Itoa(j), epoch)
					if err != nil {
						b.Fatal(err)
					}
					w.Close()
				}
				b.StartTimer()
				if err := d.Vault.DestroyEpoch(epoch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
