package archive_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/archive"
	"github.com/callvault/callvault/blob"
	"github.com/callvault/callvault/cvtest"
)

type fixture struct {
	arch  *archive.Archive
	blobs *blob.FileStore
	src   *callvault.Source
	sys   context.Context
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	d := cvtest.New(t)
	f := &fixture{arch: d.Archive, blobs: d.Blobs, sys: d.Sys}
	f.src = &callvault.Source{Name: "pbx", Kind: callvault.SourceAPI, TokenHash: strings.Repeat("ab", 32)}
	if err := d.Sources.CreateSource(f.sys, f.src); err != nil {
		t.Fatal(err)
	}
	return f
}

func callWAV(t testing.TB, codec string, d time.Duration) []byte { return cvtest.CallWAV(t, codec, d) }

func (f *fixture) ingest(t testing.TB, ref string, body []byte) (*callvault.Recording, bool, error) {
	t.Helper()
	return f.arch.Ingest(context.Background(), archive.IngestRequest{Source: f.src,
		Meta: archive.Metadata{SourceRef: ref, StartedAt: time.Date(2026, 3, 31, 23, 30, 0, 0, time.UTC)}, Audio: bytes.NewReader(body)})
}

func (f *fixture) walk(t testing.TB) (committed, temp int) {
	t.Helper()
	f.blobs.Walk(context.Background(), func(key string, _ time.Time, tmp bool) error {
		if tmp {
			temp++
		} else {
			committed++
		}
		return nil
	})
	return committed, temp
}

func TestIngestRecordsWhatTheAudioSays(t *testing.T) {
	f := newFixture(t)
	rec, created, err := f.ingest(t, "a", callWAV(t, "alaw", 5*time.Second))
	if err != nil || !created {
		t.Fatalf("Ingest = %v, %v", created, err)
	}
	if rec.Duration != 5*time.Second || rec.Codec != "alaw" || rec.Channels != 2 || rec.SampleRate != 8000 || rec.Format != "wav" {
		t.Errorf("recording = %s %s %d ch %d Hz %v; want wav alaw 2 ch 8000 Hz 5s", rec.Format, rec.Codec, rec.Channels, rec.SampleRate, rec.Duration)
	}
	// 23:30 UTC on 31 March 2026 is 00:30 on 1 April in London (BST).
	if rec.KeyEpoch != "2026-04" {
		t.Errorf("KeyEpoch = %q, want 2026-04 (the London month)", rec.KeyEpoch)
	}
	if want := time.Date(2027, 4, 1, 0, 30, 0, 0, callvault.London); !rec.RetainUntil.Equal(want) {
		t.Errorf("RetainUntil = %v, want %v (12 months)", rec.RetainUntil, want)
	}
	if rec.Academy != callvault.UnassignedSlug {
		t.Errorf("Academy = %q, want unassigned", rec.Academy)
	}
	if !rec.EndedAt.Equal(rec.StartedAt.Add(5 * time.Second)) {
		t.Errorf("EndedAt = %v, want start + duration", rec.EndedAt)
	}
	// The blob on disk is ciphertext: no RIFF header, no audio bytes.
	b, err := f.blobs.Open(context.Background(), rec.BlobKey)
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 64)
	b.ReadAt(head, 0)
	b.Close()
	if bytes.Contains(head, []byte("RIFF")) || !bytes.HasPrefix(head, []byte("age-encryption.org/v1")) {
		t.Errorf("stored blob starts %q, want an age header", head[:24])
	}
}

// failingRecordings makes CreateRecording fail after the blob is committed,
// as a crash or a full database would.
type failingRecordings struct{ callvault.RecordingService }

func (failingRecordings) CreateRecording(context.Context, *callvault.Recording) error {
	return errors.New("disk I/O error")
}

func TestIngestRowFailureLeavesNoBlob(t *testing.T) {
	f := newFixture(t)
	f.arch.Recordings = failingRecordings{f.arch.Recordings}
	if _, _, err := f.ingest(t, "a", callWAV(t, "ulaw", time.Second)); err == nil {
		t.Fatal("Ingest succeeded although the row could not be written")
	}
	if c, tmp := f.walk(t); c != 0 || tmp != 0 {
		t.Errorf("after a failed row insert: %d blobs, %d temp files; want none", c, tmp)
	}
}

func TestSweep(t *testing.T) {
	f := newFixture(t)
	kept, _, err := f.ingest(t, "kept", callWAV(t, "ulaw", time.Second))
	if err != nil {
		t.Fatal(err)
	}
	lost, _, err := f.ingest(t, "lost", callWAV(t, "ulaw", time.Second))
	if err != nil {
		t.Fatal(err)
	}
	// A crash after the blob was committed but before the row: an orphan.
	w, _ := f.blobs.Create(context.Background(), "recordings/2026-04/orphan.age")
	w.Write([]byte("ciphertext"))
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	// A crash mid-upload: a temp file.
	w, _ = f.blobs.Create(context.Background(), "recordings/2026-04/partial.age")
	w.Write([]byte("partial"))
	// Someone deleted a recording's blob behind callvault's back.
	if err := os.Remove(filepath.Join(f.blobs.Dir(), lost.BlobKey)); err != nil {
		t.Fatal(err)
	}

	// Within the grace period nothing but the missing blob is acted on.
	rep, err := f.arch.Sweep(context.Background(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OrphansRemoved != 0 || rep.TempRemoved != 0 || rep.Missing != 1 {
		t.Errorf("sweep within grace = %+v, want only 1 missing", rep)
	}
	// An hour later the orphan and the temp file go.
	f.arch.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	rep, err = f.arch.Sweep(context.Background(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OrphansRemoved != 1 || rep.TempRemoved != 1 {
		t.Errorf("sweep after grace = %+v, want 1 orphan and 1 temp removed", rep)
	}
	if c, tmp := f.walk(t); c != 1 || tmp != 0 {
		t.Errorf("after sweep: %d blobs, %d temp; want only the kept recording's blob", c, tmp)
	}
	got, err := f.arch.Recordings.FindRecordingByID(f.sys, lost.ID)
	if err != nil || got.State != callvault.StateMissing {
		t.Errorf("lost recording state = %v, %v; want missing", got, err)
	}
	if au, err := f.arch.OpenAudio(f.sys, kept); err != nil {
		t.Errorf("kept recording no longer plays: %v", err)
	} else {
		au.Close()
	}
}

func TestIngestConcurrentDuplicates(t *testing.T) {
	f := newFixture(t)
	body := callWAV(t, "ulaw", time.Second)
	type result struct {
		id      string
		created bool
		err     error
	}
	results := make(chan result, 4)
	for range 4 {
		go func() {
			r, c, err := f.ingest(t, "same", body)
			if err != nil {
				results <- result{err: err}
				return
			}
			results <- result{r.ID, c, nil}
		}()
	}
	ids := map[string]bool{}
	created := 0
	for range 4 {
		r := <-results
		if r.err != nil {
			t.Fatalf("concurrent ingest: %v", r.err)
		}
		ids[r.id] = true
		if r.created {
			created++
		}
	}
	if len(ids) != 1 || created != 1 {
		t.Errorf("4 concurrent uploads of one call gave %d ids and %d creations; want 1 and 1", len(ids), created)
	}
	if c, tmp := f.walk(t); c != 1 || tmp != 0 {
		t.Errorf("%d blobs and %d temp files; want 1 and 0", c, tmp)
	}
}
