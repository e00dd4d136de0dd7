// Package blobtest is the conformance suite for callvault.BlobStore. Every
// implementation runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		blobtest.Run(t, func(t *testing.T) callvault.BlobStore { return newStore(t) })
//	}
//
// newStore must return an empty store private to the test; it is called from
// parallel subtests.
package blobtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callvault/callvault"
)

// Run runs every conformance test against stores made by newStore.
func Run(t *testing.T, newStore func(t *testing.T) callvault.BlobStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s callvault.BlobStore)
	}{
		{"CreateCommitOpen", testCreateCommitOpen},
		{"ReadBackBeforeCommit", testReadBackBeforeCommit},
		{"InvisibleUntilCommit", testInvisibleUntilCommit},
		{"Empty", testEmpty},
		{"Large", testLarge},
		{"ReadAtEOF", testReadAtEOF},
		{"OpenMissing", testOpenMissing},
		{"Delete", testDelete},
		{"Walk", testWalk},
		{"WalkStops", testWalkStops},
		{"Abort", testAbort},
		{"CommitTwice", testCommitTwice},
		{"CommitOntoExisting", testCommitOntoExisting},
		{"RacingCommitsOneWins", testRacingCommits},
		{"BadKeys", testBadKeys},
		{"ConcurrentWriters", testConcurrentWriters},
		{"CanceledContext", testCanceledContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newStore(t))
		})
	}
}

// Put writes data to key and commits it.
func Put(t testing.TB, s callvault.BlobStore, key string, data []byte) {
	t.Helper()
	w, err := s.Create(context.Background(), key)
	if err != nil {
		t.Fatalf("Create(%q): %v", key, err)
	}
	defer w.Abort()
	if _, err := w.Write(data); err != nil {
		t.Fatalf("Write(%q): %v", key, err)
	}
	if err := w.Commit(); err != nil {
		t.Fatalf("Commit(%q): %v", key, err)
	}
}

// Get reads the whole blob at key.
func Get(t testing.TB, s callvault.BlobStore, key string) []byte {
	t.Helper()
	b, err := s.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("Open(%q): %v", key, err)
	}
	defer b.Close()
	buf := make([]byte, b.Size())
	if n, err := b.ReadAt(buf, 0); n != len(buf) || (err != nil && err != io.EOF) {
		t.Fatalf("ReadAt(%q, 0) over %d bytes = %d, %v", key, len(buf), n, err)
	}
	return buf
}

// WalkAll returns the entries Walk reports.
func WalkAll(t testing.TB, s callvault.BlobStore) []Entry {
	t.Helper()
	var es []Entry
	err := s.Walk(context.Background(), func(key string, mod time.Time, temp bool) error {
		es = append(es, Entry{key, mod, temp})
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	return es
}

// Entry is one call of a Walk callback.
type Entry struct {
	Key     string
	ModTime time.Time
	Temp    bool
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func wantCode(t *testing.T, call string, err error, code string) {
	t.Helper()
	if got := callvault.ErrorCode(err); got != code {
		t.Fatalf("%s: error %v (code %q), want code %q", call, err, got, code)
	}
}

// checkRanges compares ReadAt over many ranges of r with want.
func checkRanges(t *testing.T, what string, r io.ReaderAt, want []byte) {
	t.Helper()
	size := int64(len(want))
	ranges := [][2]int64{{0, 0}, {0, 1}, {0, size}, {size / 2, size - size/2}, {size - 1, 1}, {1, size - 2}}
	rnd := rand.New(rand.NewPCG(uint64(size), 1))
	for range 50 {
		off := rnd.Int64N(size + 1)
		ranges = append(ranges, [2]int64{off, rnd.Int64N(size - off + 1)})
	}
	for _, rg := range ranges {
		off, n := rg[0], rg[1]
		if off < 0 || n < 0 || off+n > size {
			continue
		}
		buf := make([]byte, n)
		got, err := r.ReadAt(buf, off)
		if got != int(n) || (err != nil && !(err == io.EOF && off+n == size)) {
			t.Fatalf("%s: ReadAt(len %d, off %d) = %d, %v; want %d, nil", what, n, off, got, err, n)
		}
		if !bytes.Equal(buf, want[off:off+n]) {
			t.Fatalf("%s: ReadAt(len %d, off %d) returned wrong bytes", what, n, off)
		}
	}
}

func testCreateCommitOpen(t *testing.T, s callvault.BlobStore) {
	ctx := context.Background()
	data := randomBytes(1, 10_000)
	w, err := s.Create(ctx, "2026/11/rec-1.age")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	defer w.Abort()
	// Several writes of odd sizes.
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 777)
		if m, err := w.Write(rest[:n]); m != n || err != nil {
			t.Fatalf("Write(%d bytes) = %d, %v", n, m, err)
		}
		rest = rest[n:]
	}
	if got := w.Size(); got != int64(len(data)) {
		t.Fatalf("writer Size() = %d, want %d", got, len(data))
	}
	if err := w.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	b, err := s.Open(ctx, "2026/11/rec-1.age")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer b.Close()
	if b.Size() != int64(len(data)) {
		t.Fatalf("blob Size() = %d, want %d", b.Size(), len(data))
	}
	checkRanges(t, "committed", b, data)
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func testReadBackBeforeCommit(t *testing.T, s callvault.BlobStore) {
	w, err := s.Create(context.Background(), "readback")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	defer w.Abort()
	data := randomBytes(2, 5000)
	if _, err := w.Write(data[:3000]); err != nil {
		t.Fatal(err)
	}
	checkRanges(t, "after 3000 bytes", w, data[:3000])
	if _, err := w.Write(data[3000:]); err != nil {
		t.Fatal(err)
	}
	checkRanges(t, "after 5000 bytes", w, data)
	buf := make([]byte, 10)
	if n, err := w.ReadAt(buf, 4995); n != 5 || err != io.EOF {
		t.Fatalf("writer ReadAt past the written end = %d, %v; want 5, io.EOF", n, err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := Get(t, s, "readback"); !bytes.Equal(got, data) {
		t.Fatal("committed blob differs from what was written")
	}
}

func testInvisibleUntilCommit(t *testing.T, s callvault.BlobStore) {
	ctx := context.Background()
	w, err := s.Create(ctx, "a/pending")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	w.Write([]byte("half a recording"))
	_, err = s.Open(ctx, "a/pending")
	wantCode(t, "Open before Commit", err, callvault.ENOTFOUND)
	for _, e := range WalkAll(t, s) {
		if !e.Temp && e.Key == "a/pending" {
			t.Fatal("Walk reports an uncommitted blob as committed")
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := Get(t, s, "a/pending"); string(got) != "half a recording" {
		t.Fatalf("Get = %q", got)
	}
}

func testEmpty(t *testing.T, s callvault.BlobStore) {
	Put(t, s, "empty", nil)
	b, err := s.Open(context.Background(), "empty")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Size() != 0 {
		t.Fatalf("Size() = %d, want 0", b.Size())
	}
	if n, err := b.ReadAt(make([]byte, 1), 0); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt on empty blob = %d, %v; want 0, io.EOF", n, err)
	}
}

func testLarge(t *testing.T, s callvault.BlobStore) {
	data := randomBytes(3, 5<<20+123)
	w, err := s.Create(context.Background(), "large")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if _, err := io.CopyBuffer(w, bytes.NewReader(data), make([]byte, 32<<10+5)); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	b, err := s.Open(context.Background(), "large")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	checkRanges(t, "large", b, data)
}

func testReadAtEOF(t *testing.T, s callvault.BlobStore) {
	Put(t, s, "ten", []byte("0123456789"))
	b, err := s.Open(context.Background(), "ten")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	tests := []struct {
		off, len int
		n        int
		eof      bool // io.EOF required
		want     string
	}{
		{off: 0, len: 4, n: 4, want: "0123"},
		{off: 6, len: 4, n: 4, want: "6789"}, // ends exactly at the end: nil or io.EOF
		{off: 8, len: 4, n: 2, eof: true, want: "89"},
		{off: 10, len: 1, n: 0, eof: true, want: ""},
		{off: 20, len: 1, n: 0, eof: true, want: ""},
	}
	for _, tt := range tests {
		buf := make([]byte, tt.len)
		n, err := b.ReadAt(buf, int64(tt.off))
		if n != tt.n || string(buf[:n]) != tt.want {
			t.Errorf("ReadAt(len %d, off %d) = %d %q, want %d %q", tt.len, tt.off, n, buf[:n], tt.n, tt.want)
		}
		if tt.eof && err != io.EOF {
			t.Errorf("ReadAt(len %d, off %d) error = %v, want io.EOF", tt.len, tt.off, err)
		} else if !tt.eof && err != nil && err != io.EOF {
			t.Errorf("ReadAt(len %d, off %d) error = %v", tt.len, tt.off, err)
		}
	}
	if _, err := b.ReadAt(make([]byte, 1), -1); err == nil {
		t.Error("ReadAt at a negative offset succeeded")
	}
}

func testOpenMissing(t *testing.T, s callvault.BlobStore) {
	ctx := context.Background()
	_, err := s.Open(ctx, "no/such/blob")
	wantCode(t, "Open(missing)", err, callvault.ENOTFOUND)
	Put(t, s, "dir/file", []byte("x"))
	_, err = s.Open(ctx, "dir")
	wantCode(t, "Open(prefix of a key)", err, callvault.ENOTFOUND)
	_, err = s.Open(ctx, "dir/file/below")
	wantCode(t, "Open(below a blob)", err, callvault.ENOTFOUND)
}

func testDelete(t *testing.T, s callvault.BlobStore) {
	ctx := context.Background()
	Put(t, s, "del/one", []byte("one"))
	Put(t, s, "del/two", []byte("two"))
	if err := s.Delete(ctx, "del/one"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err := s.Open(ctx, "del/one")
	wantCode(t, "Open after Delete", err, callvault.ENOTFOUND)
	if got := Get(t, s, "del/two"); string(got) != "two" {
		t.Fatalf("sibling changed: %q", got)
	}
	if err := s.Delete(ctx, "del/one"); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	if err := s.Delete(ctx, "never/existed"); err != nil {
		t.Fatalf("Delete(missing): %v", err)
	}
	if err := s.Delete(ctx, "del"); err != nil {
		t.Fatalf("Delete(prefix of a key): %v", err)
	}
	if got := Get(t, s, "del/two"); string(got) != "two" {
		t.Fatalf("Delete of a prefix removed a blob: %q", got)
	}
	// A deleted key can be written again.
	Put(t, s, "del/one", []byte("again"))
	if got := Get(t, s, "del/one"); string(got) != "again" {
		t.Fatalf("Get after re-create = %q", got)
	}
}

func testWalk(t *testing.T, s callvault.BlobStore) {
	if es := WalkAll(t, s); len(es) != 0 {
		t.Fatalf("Walk of an empty store = %v", es)
	}
	before := time.Now().Add(-time.Minute)
	keys := []string{"b", "a/b", "a-b", "a/c/d", "2026/11/x.age", "2026/12/y.age", "z z"}
	for _, k := range keys {
		Put(t, s, k, []byte(k))
	}
	es := WalkAll(t, s)
	var got []string
	for _, e := range es {
		if e.Temp {
			t.Errorf("Walk reports temp entry %q after only commits", e.Key)
			continue
		}
		if e.ModTime.Before(before) || e.ModTime.After(time.Now().Add(time.Minute)) {
			t.Errorf("Walk: %q has modTime %v", e.Key, e.ModTime)
		}
		got = append(got, e.Key)
	}
	want := slices.Clone(keys)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("Walk keys = %q, want %q (byte order)", got, want)
	}
	if err := s.Delete(context.Background(), "a/b"); err != nil {
		t.Fatal(err)
	}
	if es := WalkAll(t, s); len(es) != len(keys)-1 {
		t.Fatalf("Walk after Delete = %v", es)
	}
}

func testWalkStops(t *testing.T, s callvault.BlobStore) {
	for i := range 5 {
		Put(t, s, fmt.Sprintf("k%d", i), []byte("x"))
	}
	stop := errors.New("stop")
	calls := 0
	err := s.Walk(context.Background(), func(string, time.Time, bool) error {
		calls++
		if calls == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 2 {
		t.Fatalf("Walk with failing fn = %v after %d calls, want the fn error after 2", err, calls)
	}
}

func testAbort(t *testing.T, s callvault.BlobStore) {
	ctx := context.Background()
	w, err := s.Create(ctx, "aborted")
	if err != nil {
		t.Fatal(err)
	}
	w.Write(randomBytes(4, 70_000))
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("second Abort: %v", err)
	}
	if err := w.Commit(); err == nil {
		t.Fatal("Commit after Abort succeeded")
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("Write after Abort succeeded")
	}
	_, err = s.Open(ctx, "aborted")
	wantCode(t, "Open after Abort", err, callvault.ENOTFOUND)
	if es := WalkAll(t, s); len(es) != 0 {
		t.Fatalf("Walk after Abort = %v, want nothing", es)
	}
}

func testCommitTwice(t *testing.T, s callvault.BlobStore) {
	w, err := s.Create(context.Background(), "twice")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("evidence"))
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatalf("second Commit: %v", err)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort after Commit: %v", err)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("Write after Commit succeeded")
	}
	if got := Get(t, s, "twice"); string(got) != "evidence" {
		t.Fatalf("after Commit, Commit, Abort: Get = %q, want the blob intact", got)
	}
	if es := WalkAll(t, s); len(es) != 1 || es[0].Key != "twice" || es[0].Temp {
		t.Fatalf("Walk = %v", es)
	}
}

func testCommitOntoExisting(t *testing.T, s callvault.BlobStore) {
	Put(t, s, "2026/11/evidence", []byte("original"))
	w, err := s.Create(context.Background(), "2026/11/evidence")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("replacement"))
	wantCode(t, "Commit onto an existing key", w.Commit(), callvault.ECONFLICT)
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort after failed Commit: %v", err)
	}
	if got := Get(t, s, "2026/11/evidence"); string(got) != "original" {
		t.Fatalf("existing blob changed to %q", got)
	}
	if es := WalkAll(t, s); len(es) != 1 {
		t.Fatalf("Walk = %v, want only the original", es)
	}
}

func testRacingCommits(t *testing.T, s callvault.BlobStore) {
	const n = 8
	ws := make([]callvault.BlobWriter, n)
	for i := range ws {
		w, err := s.Create(context.Background(), "race")
		if err != nil {
			t.Fatal(err)
		}
		defer w.Abort()
		w.Write([]byte(strings.Repeat(fmt.Sprint(i), 1000)))
		ws[i] = w
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Go(func() { errs[i] = w.Commit() })
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch callvault.ErrorCode(err) {
		case "":
			if winner >= 0 {
				t.Fatalf("writers %d and %d both committed", winner, i)
			}
			winner = i
		case callvault.ECONFLICT:
		default:
			t.Fatalf("writer %d: Commit = %v, want nil or ECONFLICT", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer committed")
	}
	if got, want := string(Get(t, s, "race")), strings.Repeat(fmt.Sprint(winner), 1000); got != want {
		t.Fatalf("blob holds %.10q..., want the winner's %.10q...", got, want)
	}
}

// BadKeys are keys every BlobStore must reject with EINVALID.
var BadKeys = []string{
	"",
	"/abs",
	"a//b",
	"a/",
	"/",
	"..",
	"../x",
	"a/../b",
	"a/..",
	".",
	"./a",
	".tmp/x",
	".hidden",
	"a/.hidden",
	`a\b`,
	"a\x00b",
	"a\nb",
	"\xff",
	strings.Repeat("a", 256),
	strings.Repeat("abcdefg/", 130) + "x", // over 1024 bytes
}

func testBadKeys(t *testing.T, s callvault.BlobStore) {
	ctx := context.Background()
	for _, k := range BadKeys {
		w, err := s.Create(ctx, k)
		if err == nil {
			w.Abort()
		}
		wantCode(t, fmt.Sprintf("Create(%q)", k), err, callvault.EINVALID)
		_, err = s.Open(ctx, k)
		wantCode(t, fmt.Sprintf("Open(%q)", k), err, callvault.EINVALID)
		if k != ".tmp/x" { // Delete accepts temp keys reported by Walk
			wantCode(t, fmt.Sprintf("Delete(%q)", k), s.Delete(ctx, k), callvault.EINVALID)
		}
	}
	if es := WalkAll(t, s); len(es) != 0 {
		t.Fatalf("Walk after bad keys = %v", es)
	}
}

func testConcurrentWriters(t *testing.T, s callvault.BlobStore) {
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			key := fmt.Sprintf("c/%02d/blob", i)
			w, err := s.Create(context.Background(), key)
			if err != nil {
				errs <- err
				return
			}
			defer w.Abort()
			data := randomBytes(uint64(i), 100_000+i)
			for rest := data; len(rest) > 0; {
				m := min(len(rest), 4096)
				if _, err := w.Write(rest[:m]); err != nil {
					errs <- err
					return
				}
				rest = rest[m:]
			}
			if err := w.Commit(); err != nil {
				errs <- fmt.Errorf("Commit(%q): %w", key, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := range n {
		key := fmt.Sprintf("c/%02d/blob", i)
		if !bytes.Equal(Get(t, s, key), randomBytes(uint64(i), 100_000+i)) {
			t.Fatalf("%s holds the wrong bytes", key)
		}
	}
	if es := WalkAll(t, s); len(es) != n {
		t.Fatalf("Walk found %d entries, want %d", len(es), n)
	}
}

func testCanceledContext(t *testing.T, s callvault.BlobStore) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if w, err := s.Create(ctx, "canceled"); err == nil {
		w.Abort()
		t.Fatal("Create with a canceled context succeeded")
	}
	if _, err := s.Open(ctx, "canceled"); err == nil {
		t.Fatal("Open with a canceled context succeeded")
	}
	if err := s.Walk(ctx, func(string, time.Time, bool) error { return nil }); err == nil {
		t.Fatal("Walk with a canceled context succeeded")
	}
}
