package archive_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/callvault/callvault/archive"
)

// The ingest benchmarks compare, in one run, the whole ingest path with the
// floor it cannot beat: SHA-256 of the bytes plus one durable copy to disk.
// Ratio = BenchmarkIngest ns/op ÷ BenchmarkIngestFloor ns/op.

var threeMinuteCall []byte

func call3min(b *testing.B) []byte {
	if threeMinuteCall == nil {
		threeMinuteCall = callWAV(b, "ulaw", 3*time.Minute)
	}
	return threeMinuteCall
}

func BenchmarkIngest3MinStereoG711(b *testing.B) {
	body := call3min(b)
	f := newFixture(b)
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		_, created, err := f.arch.Ingest(context.Background(), archive.IngestRequest{Source: f.src,
			Meta:  archive.Metadata{SourceRef: fmt.Sprint("bench-", i), StartedAt: time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)},
			Audio: bytes.NewReader(body)})
		if err != nil || !created {
			b.Fatal(err)
		}
	}
}

// BenchmarkIngestFloor is sha256 + copy of the same bytes to a new file,
// fsynced: what any durable ingest must at least do.
func BenchmarkIngestFloor(b *testing.B) {
	body := call3min(b)
	dir := b.TempDir()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		f, err := os.Create(filepath.Join(dir, fmt.Sprint(i)))
		if err != nil {
			b.Fatal(err)
		}
		h := sha256.New()
		if _, err := io.Copy(f, io.TeeReader(bytes.NewReader(body), h)); err != nil {
			b.Fatal(err)
		}
		h.Sum(nil)
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}
