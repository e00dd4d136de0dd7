package sqldb

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// auditEvent returns a minimal valid event by the system.
func auditEvent(action string, academyID int64, at time.Time) *callvault.AuditEvent {
	return &callvault.AuditEvent{Time: at, ActorKind: callvault.ActorSystem, ActorName: "sweeper",
		Action: action, AcademyID: academyID, Outcome: callvault.OutcomeAllowed}
}

func mustAppendAudit(t testing.TB, s *AuditStore, events ...*callvault.AuditEvent) {
	t.Helper()
	if err := s.AppendAudit(context.Background(), events); err != nil {
		t.Fatalf("AppendAudit(%d events): %v", len(events), err)
	}
}

// walkAll returns every stored entry, walked as the system.
func walkAll(t testing.TB, s *AuditStore) []*callvault.AuditEvent {
	t.Helper()
	var all []*callvault.AuditEvent
	if err := s.WalkAudit(sysCtx(), 0, func(e *callvault.AuditEvent) error {
		all = append(all, e)
		return nil
	}); err != nil {
		t.Fatalf("WalkAudit: %v", err)
	}
	return all
}

// verifyAudit checks the stored chain as a verifier would: from the anchor,
// seq contiguous, each PrevHash the previous Hash, each unredacted Hash
// recomputed, ending at the head. It returns the number of entries.
func verifyAudit(t testing.TB, s *AuditStore) int {
	t.Helper()
	ctx := context.Background()
	seq, prev, err := s.AuditAnchor(ctx)
	if err != nil {
		t.Fatalf("AuditAnchor: %v", err)
	}
	headSeq, headHash, err := s.AuditHead(ctx)
	if err != nil {
		t.Fatalf("AuditHead: %v", err)
	}
	n := 0
	err = s.WalkAudit(sysCtx(), 0, func(e *callvault.AuditEvent) error {
		switch {
		case e.Seq != seq+1:
			return fmt.Errorf("entry %d follows entry %d", e.Seq, seq)
		case e.PrevHash != prev:
			return fmt.Errorf("entry %d: PrevHash %s, want %s", e.Seq, e.PrevHash, prev)
		case !e.Redacted && callvault.ChainHash(e.PrevHash, e) != e.Hash:
			return fmt.Errorf("entry %d: hash does not recompute", e.Seq)
		}
		seq, prev = e.Seq, e.Hash
		n++
		return nil
	})
	if err != nil {
		t.Fatalf("chain broken: %v", err)
	}
	if seq != headSeq || prev != headHash {
		t.Fatalf("chain ends at %d %s, head is %d %s", seq, prev, headSeq, headHash)
	}
	return n
}

func TestAudit_empty(t *testing.T) {
	db, _ := openTestDB(t)
	s := NewAuditStore(db)
	ctx := context.Background()
	for name, fn := range map[string]func(context.Context) (int64, string, error){"AuditHead": s.AuditHead, "AuditAnchor": s.AuditAnchor} {
		if seq, hash, err := fn(ctx); err != nil || seq != 0 || hash != callvault.GenesisHash {
			t.Errorf("%s on an empty trail = %d, %q, %v; want 0, GenesisHash", name, seq, hash, err)
		}
	}
	if got := walkAll(t, s); len(got) != 0 {
		t.Errorf("WalkAudit on an empty trail returned %d entries", len(got))
	}
	got, err := s.FindAuditEvents(sysCtx(), callvault.AuditFilter{})
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("FindAuditEvents on an empty trail = %v, %v; want an empty slice", got, err)
	}
	if err := s.AppendAudit(ctx, nil); err != nil {
		t.Errorf("AppendAudit(nil) = %v", err)
	}
	if n, err := s.PruneAudit(ctx, t0); n != 0 || err != nil {
		t.Errorf("PruneAudit on an empty trail = %d, %v", n, err)
	}
	if seq, _, _ := s.AuditAnchor(ctx); seq != 0 {
		t.Errorf("PruneAudit on an empty trail set an anchor at %d", seq)
	}
}

// Every field comes back as appended, so that every hash recomputes.
func TestAudit_roundTrip(t *testing.T) {
	db, clk := openTestDB(t)
	s := NewAuditStore(db)
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	full := &callvault.AuditEvent{
		Time:       time.Date(2026, 7, 1, 10, 30, 15, 123_456_789, london), // BST, sub-millisecond
		ActorKind:  callvault.ActorUser,
		ActorID:    "7",
		ActorName:  "jsmith",
		ActorRole:  callvault.RolePrincipal,
		Action:     "recording.play",
		TargetType: "recording",
		TargetID:   "01a21d26-d622-7959-af57-33baca453894",
		AcademyID:  2,
		Outcome:    callvault.OutcomeAllowed,
		ClientAddr: "[2001:db8::1]:51234",
		Reason:     "complaint ref C-113 — ünïcode, emoji 📞, \"quotes\", <b>&amp;</b>, tab\tnewline\nNUL\x00end",
		Details: map[string]string{
			"range": "bytes=0-65535", "format": "wav", "": "empty key", "ключ": "значение",
			"html": "<script>&</script>", "line\nsep": "\u2028\u2029", "nul": "a\x00b", "empty": "",
		},
	}
	nilDetails := auditEvent("auth.login", 0, t0.Add(-time.Hour))
	nilDetails.ActorKind, nilDetails.ActorID, nilDetails.ActorName = callvault.ActorSource, "3", "pbx"
	emptyDetails := auditEvent("auth.logout", 0, t0.Add(-time.Minute))
	emptyDetails.Details = map[string]string{}
	zeroTime := auditEvent("retention.sweep", 0, time.Time{})
	zeroTime.Outcome = callvault.OutcomeFailed
	old := auditEvent("ancient", 0, time.Date(1969, 12, 31, 23, 59, 59, 999_999_999, time.UTC)) // before the epoch

	events := []*callvault.AuditEvent{full, nilDetails, emptyDetails, zeroTime, old}
	canon := make([][]byte, len(events))
	for i, e := range events {
		cp := *e
		cp.Seq = int64(i + 1)
		cp.Time = time.UnixMilli(e.Time.UnixMilli()) // what is hashed
		if e.Time.IsZero() {
			cp.Time = t0
		}
		canon[i] = cp.CanonicalV1()
	}
	mustAppendAudit(t, s, events...)

	// AppendAudit set the chain fields and normalised the times.
	wantTimes := []time.Time{time.Date(2026, 7, 1, 9, 30, 15, 123_000_000, time.UTC), t0.Add(-time.Hour),
		t0.Add(-time.Minute), t0, time.Date(1969, 12, 31, 23, 59, 59, 999_000_000, time.UTC)}
	prev := callvault.GenesisHash
	for i, e := range events {
		if e.Seq != int64(i+1) || e.PrevHash != prev || e.Hash != callvault.ChainHash(prev, e) || len(e.Hash) != 64 {
			t.Errorf("event %d: Seq %d PrevHash %s Hash %s", i, e.Seq, e.PrevHash, e.Hash)
		}
		if e.Time != wantTimes[i] { // == also compares the location: UTC
			t.Errorf("event %d: Time = %v, want %v", i, e.Time, wantTimes[i])
		}
		if !bytes.Equal(e.CanonicalV1(), canon[i]) {
			t.Errorf("event %d: AppendAudit changed the canonical encoding", i)
		}
		prev = e.Hash
	}

	// Nil and empty details are both '{}' and come back nil; others are
	// a JSON object with sorted keys.
	emptyDetails.Details = nil
	var stored []string
	rows, err := db.reader.Query(`SELECT details FROM audit_events ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var d string
		rows.Scan(&d)
		stored = append(stored, d)
	}
	rows.Close()
	wantJSON := `{"":"empty key","empty":"","format":"wav","html":"<script>&</script>","line\nsep":"\u2028\u2029","nul":"a\u0000b","range":"bytes=0-65535","ключ":"значение"}`
	if want := []string{wantJSON, "{}", "{}", "{}", "{}"}; !slices.Equal(stored, want) {
		t.Errorf("stored details = %q\nwant %q", stored, want)
	}

	clk.Add(time.Hour) // reading does not depend on the clock
	got := walkAll(t, s)
	if !reflect.DeepEqual(got, events) {
		t.Errorf("WalkAudit =\n%+v\nwant\n%+v", got, events)
	}
	found, err := s.FindAuditEvents(sysCtx(), callvault.AuditFilter{})
	slices.Reverse(found)
	if err != nil || !reflect.DeepEqual(found, events) {
		t.Errorf("FindAuditEvents = %+v, %v\nwant %+v", found, err, events)
	}
	for i, e := range got {
		if !bytes.Equal(e.CanonicalV1(), canon[i]) || callvault.ChainHash(e.PrevHash, e) != e.Hash {
			t.Errorf("entry %d read back: canonical encoding or hash differs", e.Seq)
		}
	}
	if n := verifyAudit(t, s); n != len(events) {
		t.Errorf("verified %d entries, want %d", n, len(events))
	}
	// WalkAudit from the middle.
	var seqs []int64
	s.WalkAudit(sysCtx(), 4, func(e *callvault.AuditEvent) error { seqs = append(seqs, e.Seq); return nil })
	if !slices.Equal(seqs, []int64{4, 5}) {
		t.Errorf("WalkAudit(from 4) walked %v", seqs)
	}
}

func TestDetailsEncoding(t *testing.T) {
	for _, d := range []map[string]string{nil, {}, {"a": "1"}, {"b": "<&>", "a": "\x00\u2028", "": ""}} {
		enc := encodeDetails(d)
		dec, err := decodeDetails(enc)
		if err != nil {
			t.Fatalf("decodeDetails(%q): %v", enc, err)
		}
		if len(d) == 0 {
			if enc != "{}" || dec != nil {
				t.Errorf("details %v encode as %q and decode as %v; want {} and nil", d, enc, dec)
			}
			continue
		}
		if !reflect.DeepEqual(dec, d) {
			t.Errorf("details %v round trip as %v via %q", d, dec, enc)
		}
	}
}

func TestAudit_walkStops(t *testing.T) {
	db, _ := openTestDB(t)
	s := NewAuditStore(db)
	for i := range 10 {
		mustAppendAudit(t, s, auditEvent("a"+strconv.Itoa(i), 0, t0))
	}
	stop := errors.New("stop")
	n := 0
	err := s.WalkAudit(sysCtx(), 0, func(*callvault.AuditEvent) error {
		if n++; n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Errorf("WalkAudit with fn failing at the 3rd entry = %v after %d calls; want the error after 3", err, n)
	}
	// Unscoped, so only for those who may read everything.
	for _, ctx := range []context.Context{context.Background(), userCtx(callvault.RolePrincipal, 1),
		userCtx(callvault.RoleAdmin), userCtx(callvault.RoleListener)} {
		err := s.WalkAudit(ctx, 0, func(*callvault.AuditEvent) error { return nil })
		wantCode(t, fmt.Sprintf("WalkAudit(%v)", callvault.ActorFromContext(ctx).Role()), err, callvault.EFORBIDDEN)
	}
	for _, ctx := range []context.Context{userCtx(callvault.RoleDPO), userCtx(callvault.RoleCEO)} {
		if err := s.WalkAudit(ctx, 0, func(*callvault.AuditEvent) error { return nil }); err != nil {
			t.Errorf("WalkAudit(%s): %v", callvault.ActorFromContext(ctx).Role(), err)
		}
	}
}

func TestAudit_appendInvalid(t *testing.T) {
	db, _ := openTestDB(t)
	s := NewAuditStore(db)
	mustAppendAudit(t, s, auditEvent("first", 0, t0))
	tests := map[string]func(e *callvault.AuditEvent){
		"actor kind":  func(e *callvault.AuditEvent) { e.ActorKind = "robot" },
		"no kind":     func(e *callvault.AuditEvent) { e.ActorKind = "" },
		"no action":   func(e *callvault.AuditEvent) { e.Action = "" },
		"outcome":     func(e *callvault.AuditEvent) { e.Outcome = "maybe" },
		"academy":     func(e *callvault.AuditEvent) { e.AcademyID = -1 },
		"redacted":    func(e *callvault.AuditEvent) { e.Redacted = true },
		"utf8 reason": func(e *callvault.AuditEvent) { e.Reason = "bad \xff" },
		"utf8 key":    func(e *callvault.AuditEvent) { e.Details = map[string]string{"\xc3": "v"} },
		"utf8 value":  func(e *callvault.AuditEvent) { e.Details = map[string]string{"k": "\xed\xa0\x80"} },
		"utf8 actor":  func(e *callvault.AuditEvent) { e.ActorName = "\x80" },
	}
	for name, mutate := range tests {
		good, bad := auditEvent("good", 0, t0), auditEvent("bad", 0, t0)
		mutate(bad)
		err := s.AppendAudit(context.Background(), []*callvault.AuditEvent{good, bad})
		wantCode(t, "AppendAudit("+name+")", err, callvault.EINVALID)
		if good.Seq != 0 || good.Hash != "" {
			t.Errorf("%s: the valid event was given Seq %d", name, good.Seq)
		}
	}
	err := s.AppendAudit(context.Background(), []*callvault.AuditEvent{auditEvent("good", 0, t0), nil})
	wantCode(t, "AppendAudit(nil event)", err, callvault.EINVALID)
	if n := verifyAudit(t, s); n != 1 {
		t.Errorf("%d entries after invalid appends, want 1", n)
	}
}

// Batches of various sizes form one chain; Seq, PrevHash and Hash passed in
// are ignored.
func TestAudit_chain(t *testing.T) {
	db, _ := openTestDB(t)
	s := NewAuditStore(db)
	var all []*callvault.AuditEvent
	for i, size := range []int{1, 5, 0, 64, 2, 1} {
		var batch []*callvault.AuditEvent
		for j := range size {
			e := auditEvent(fmt.Sprintf("batch%d.event%d", i, j), int64(j%3), t0.Add(time.Duration(len(all)+j)*time.Second))
			e.Seq, e.PrevHash, e.Hash = 999, "forged", "forged"
			batch = append(batch, e)
		}
		if err := s.AppendAudit(context.Background(), batch); err != nil {
			t.Fatalf("AppendAudit(batch %d): %v", i, err)
		}
		all = append(all, batch...)
	}
	got := walkAll(t, s)
	if !reflect.DeepEqual(got, all) {
		t.Fatalf("WalkAudit differs from what was appended")
	}
	if n := verifyAudit(t, s); n != len(all) {
		t.Errorf("verified %d entries, want %d", n, len(all))
	}
	seq, hash, _ := s.AuditHead(context.Background())
	if last := all[len(all)-1]; seq != last.Seq || hash != last.Hash || seq != int64(len(all)) {
		t.Errorf("AuditHead = %d %s, want %d %s", seq, hash, last.Seq, last.Hash)
	}
}

// Appends from many goroutines through two separately opened DBs (as the
// CLI beside the server) form one contiguous chain, and each batch is
// contiguous within it.
func TestAudit_concurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "callvault.db")
	var dbs [2]*DB
	for i := range dbs {
		// One after the other: opening a new file at once is another test's
		// subject (TestOpen_concurrent).
		db, err := Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		dbs[i] = db
	}
	const goroutines, appends = 8, 200
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		batches [][]*callvault.AuditEvent
	)
	for g := range goroutines {
		wg.Go(func() {
			s := NewAuditStore(dbs[g%2])
			for i := range appends {
				batch := make([]*callvault.AuditEvent, 1+i%3)
				for j := range batch {
					batch[j] = auditEvent(fmt.Sprintf("g%d.a%d.e%d", g, i, j), int64(g), time.Now())
				}
				if err := s.AppendAudit(context.Background(), batch); err != nil {
					t.Errorf("goroutine %d, append %d: %v", g, i, err)
					return
				}
				mu.Lock()
				batches = append(batches, batch)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	s := NewAuditStore(dbs[0])
	total := 0
	for _, b := range batches {
		total += len(b)
		for j, e := range b {
			if e.Seq != b[0].Seq+int64(j) {
				t.Fatalf("batch starting at %d is not contiguous: entry %d has seq %d", b[0].Seq, j, e.Seq)
			}
		}
	}
	if n := verifyAudit(t, s); n != total {
		t.Fatalf("chain has %d entries, %d were appended", n, total)
	}
	stored := walkAll(t, s)
	for _, b := range batches {
		for _, e := range b {
			if got := stored[e.Seq-1]; got.Hash != e.Hash || got.Action != e.Action {
				t.Fatalf("entry %d stored as %s %s, appended as %s %s", e.Seq, got.Action, got.Hash, e.Action, e.Hash)
			}
		}
	}
}

// TestAudit_twoProcesses appends from two processes at once.
func TestAudit_twoProcesses(t *testing.T) {
	const perProcess = 100
	if path := os.Getenv("CALLVAULT_TEST_AUDIT_APPEND"); path != "" {
		db, err := Open(context.Background(), path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "open:", err)
			os.Exit(1)
		}
		defer db.Close()
		s := NewAuditStore(db)
		for i := range perProcess {
			batch := []*callvault.AuditEvent{auditEvent("p.first", 0, time.Now()), auditEvent("p.second", 0, time.Now())}
			if err := s.AppendAudit(context.Background(), batch); err != nil {
				fmt.Fprintf(os.Stderr, "append %d: %v\n", i, err)
				os.Exit(1)
			}
		}
		return
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := filepath.Join(t.TempDir(), "callvault.db")
	db, err := Open(context.Background(), path) // creates the file first
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var cmds []*exec.Cmd
	for range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestAudit_twoProcesses$")
		cmd.Env = append(os.Environ(), "CALLVAULT_TEST_AUDIT_APPEND="+path)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	s := NewAuditStore(db)
	for range perProcess {
		mustAppendAudit(t, s, auditEvent("p.first", 0, time.Now()), auditEvent("p.second", 0, time.Now()))
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("process %d: %v", i, err)
		}
	}
	if n := verifyAudit(t, s); n != 3*2*perProcess {
		t.Errorf("chain has %d entries, want %d", n, 3*2*perProcess)
	}
	// Batches were not interleaved.
	for _, e := range walkAll(t, s) {
		if want := []string{"p.second", "p.first"}[e.Seq%2]; e.Action != want {
			t.Fatalf("entry %d is %s, want %s: batches interleaved", e.Seq, e.Action, want)
		}
	}
}

// wantReset fails unless AppendAudit left the events as passed in.
func wantReset(t *testing.T, events []*callvault.AuditEvent, times []time.Time) {
	t.Helper()
	for i, e := range events {
		if e.Seq != 0 || e.PrevHash != "" || e.Hash != "" || e.Time != times[i] {
			t.Fatalf("failed append left event %d with Seq %d PrevHash %q Hash %q Time %v", i, e.Seq, e.PrevHash, e.Hash, e.Time)
		}
	}
}

// A full disk fails the whole batch with EUNAVAILABLE, writes nothing,
// resets the events, and appends work again once there is room.
func TestAudit_diskFull(t *testing.T) {
	db, _ := openTestDB(t)
	s := NewAuditStore(db)
	ctx := context.Background()
	for range 10 {
		mustAppendAudit(t, s, auditEvent("before", 1, t0))
	}
	headSeq, headHash, _ := s.AuditHead(ctx)

	// The writer is one connection, so the limit holds for every write.
	var pages int
	if err := db.writer.QueryRow(`PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := db.writer.Exec(fmt.Sprintf(`PRAGMA max_page_count = %d`, pages+2)); err != nil {
		t.Fatal(err)
	}
	var batch []*callvault.AuditEvent
	var times []time.Time
	for i := range 200 {
		e := auditEvent("recording.play", 1, t0.Add(time.Duration(i)*time.Microsecond))
		e.Reason = strings.Repeat("x", 2000)
		batch = append(batch, e)
		times = append(times, e.Time)
	}
	err := s.AppendAudit(ctx, batch)
	wantCode(t, "AppendAudit(disk full)", err, callvault.EUNAVAILABLE)
	var se *sqlite.Error
	if !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_FULL {
		t.Errorf("AppendAudit(disk full) = %v, want SQLITE_FULL wrapped", err)
	}
	wantReset(t, batch, times)
	if seq, hash, _ := s.AuditHead(ctx); seq != headSeq || hash != headHash {
		t.Errorf("head moved to %d after a failed append, want %d", seq, headSeq)
	}
	if n := countRows(t, db, `SELECT COUNT(*) FROM audit_events`); n != 10 {
		t.Errorf("%d rows after a failed append, want 10", n)
	}
	verifyAudit(t, s)

	if _, err := db.writer.Exec(`PRAGMA max_page_count = 4294967294`); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(ctx, batch); err != nil {
		t.Fatalf("AppendAudit after making room: %v", err)
	}
	if batch[0].Seq != headSeq+1 || batch[0].PrevHash != headHash {
		t.Errorf("retried batch starts at %d after %s, want %d after %s", batch[0].Seq, batch[0].PrevHash, headSeq+1, headHash)
	}
	if n := verifyAudit(t, s); n != 210 {
		t.Errorf("verified %d entries, want 210", n)
	}
}

// A database locked past the busy timeout or closed is EUNAVAILABLE.
func TestAudit_unavailable(t *testing.T) {
	db, _ := openTestDB(t)
	s := NewAuditStore(db)
	ctx := context.Background()
	mustAppendAudit(t, s, auditEvent("first", 0, t0))

	// Another process holds the write lock.
	other, err := sql.Open("sqlite", db.path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.writer.Exec(`PRAGMA busy_timeout = 50`); err != nil {
		t.Fatal(err)
	}
	batch := []*callvault.AuditEvent{auditEvent("second", 0, t0)}
	err = s.AppendAudit(ctx, batch)
	wantCode(t, "AppendAudit(locked)", err, callvault.EUNAVAILABLE)
	wantReset(t, batch, []time.Time{t0})
	_, err = s.RedactAudit(ctx, "recording", "x")
	wantCode(t, "RedactAudit(locked)", err, callvault.EUNAVAILABLE)
	_, err = s.PruneAudit(ctx, t0)
	wantCode(t, "PruneAudit(locked)", err, callvault.EUNAVAILABLE)
	if _, err := conn.ExecContext(ctx, `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	db.writer.Exec(fmt.Sprintf(`PRAGMA busy_timeout = %d`, busyTimeout.Milliseconds()))
	mustAppendAudit(t, s, batch...)
	if batch[0].Seq != 2 {
		t.Errorf("append after the lock was released got seq %d, want 2", batch[0].Seq)
	}

	// A closed DB.
	closed, _ := openTestDB(t)
	cs := NewAuditStore(closed)
	closed.Close()
	batch = []*callvault.AuditEvent{auditEvent("late", 0, t0)}
	wantCode(t, "AppendAudit(closed)", cs.AppendAudit(ctx, batch), callvault.EUNAVAILABLE)
	wantReset(t, batch, []time.Time{t0})
	_, _, err = cs.AuditHead(ctx)
	wantCode(t, "AuditHead(closed)", err, callvault.EUNAVAILABLE)
	_, err = cs.FindAuditEvents(sysCtx(), callvault.AuditFilter{})
	wantCode(t, "FindAuditEvents(closed)", err, callvault.EUNAVAILABLE)
	wantCode(t, "WalkAudit(closed)", cs.WalkAudit(sysCtx(), 0, func(*callvault.AuditEvent) error { return nil }), callvault.EUNAVAILABLE)
}

// Should a row appear at the next seq behind the store's back (another
// writer not using AuditStore), the append fails with ECONFLICT and nothing
// of the batch stays.
func TestAudit_conflict(t *testing.T) {
	db, _ := openTestDB(t)
	s := NewAuditStore(db)
	mustAppendAudit(t, s, auditEvent("first", 0, t0))
	// A TEMP trigger lives on the writer's one connection only.
	if _, err := db.writer.Exec(`CREATE TEMP TRIGGER intruder AFTER INSERT ON audit_events WHEN NEW.seq = 3
		BEGIN INSERT INTO audit_events (seq, time, actor_kind, action, outcome, prev_hash, hash)
		VALUES (4, 0, 'system', 'intruder', 'allowed', '', ''); END`); err != nil {
		t.Fatal(err)
	}
	batch := []*callvault.AuditEvent{auditEvent("a", 0, t0), auditEvent("b", 0, t0), auditEvent("c", 0, t0)}
	err := s.AppendAudit(context.Background(), batch)
	wantCode(t, "AppendAudit(seq taken)", err, callvault.ECONFLICT)
	wantReset(t, batch, []time.Time{t0, t0, t0})
	if _, err := db.writer.Exec(`DROP TRIGGER intruder`); err != nil {
		t.Fatal(err)
	}
	if n := verifyAudit(t, s); n != 1 {
		t.Errorf("%d entries after a conflicting append, want 1", n)
	}
	mustAppendAudit(t, s, batch...)
	if n := verifyAudit(t, s); n != 4 {
		t.Errorf("%d entries after the retry, want 4", n)
	}
}

// auditFixture stores a varied trail: actors (users 7, 8 and 99, a source
// with id 7, the system), academies 0 to 3, actions, targets, and times a
// few minutes apart with sub-second parts.
func auditFixture(t *testing.T) (*AuditStore, []*callvault.AuditEvent) {
	db, _ := openTestDB(t)
	s := NewAuditStore(db)
	actions := []string{"recording.play", "recording.view", "recording.search", "recordings.export", "recording",
		"auth.login", "auth.logout", "user.create", "recording.play.range"}
	var all []*callvault.AuditEvent
	for i := range 300 {
		e := &callvault.AuditEvent{
			Time:      t0.Add(time.Duration(i)*7*time.Minute + time.Duration(i*37%1000)*time.Millisecond),
			Action:    actions[i%len(actions)],
			AcademyID: int64(i % 4),
			Outcome:   []string{callvault.OutcomeAllowed, callvault.OutcomeDenied, callvault.OutcomeFailed}[i%3],
			Reason:    fmt.Sprintf("reason %d", i),
		}
		switch i % 5 {
		case 0, 1:
			e.ActorKind, e.ActorID, e.ActorName, e.ActorRole = callvault.ActorUser, "7", "jsmith", callvault.RolePrincipal
		case 2:
			e.ActorKind, e.ActorID, e.ActorName, e.ActorRole = callvault.ActorUser, "8", "dpo", callvault.RoleDPO
		case 3:
			e.ActorKind, e.ActorID, e.ActorName = callvault.ActorSource, "7", "pbx"
		default:
			e.ActorKind, e.ActorName = callvault.ActorSystem, "sweeper"
		}
		if i%2 == 0 {
			e.TargetType, e.TargetID = "recording", fmt.Sprintf("rec-%d", i%6)
		} else if i%3 == 0 {
			e.TargetType, e.TargetID = "user", strconv.Itoa(i%4)
		}
		all = append(all, e)
	}
	for lo := 0; lo < len(all); lo += 50 {
		mustAppendAudit(t, s, all[lo:lo+50]...)
	}
	return s, all
}

// auditModel is FindAuditEvents written plainly in Go.
func auditModel(all []*callvault.AuditEvent, f callvault.AuditFilter, a *callvault.Actor) []int64 {
	scope := callvault.AuditScope(a)
	limit := f.Limit
	if limit == 0 {
		limit = 100
	}
	var seqs []int64
	for i := len(all) - 1; i >= 0 && len(seqs) < limit; i-- {
		e := all[i]
		own := a != nil && a.User != nil && e.ActorKind == callvault.ActorUser && e.ActorID == strconv.FormatInt(a.User.ID, 10)
		ok := (scope.InScope(e.AcademyID) || own) &&
			(f.ActorName == "" || e.ActorName == f.ActorName) &&
			(f.Action == "" || e.Action == f.Action || strings.HasSuffix(f.Action, ".") && strings.HasPrefix(e.Action, f.Action)) &&
			(f.TargetType == "" || e.TargetType == f.TargetType) &&
			(f.TargetID == "" || e.TargetID == f.TargetID) &&
			(f.From.IsZero() || !e.Time.Before(f.From)) &&
			(f.To.IsZero() || e.Time.Before(f.To)) &&
			(f.Before == 0 || e.Seq < f.Before)
		if ok {
			seqs = append(seqs, e.Seq)
		}
	}
	return seqs
}

func seqsOf(events []*callvault.AuditEvent) []int64 {
	seqs := []int64{}
	for _, e := range events {
		seqs = append(seqs, e.Seq)
	}
	return seqs
}

func actorCtx(a *callvault.Actor) context.Context {
	return callvault.NewContextWithActor(context.Background(), a)
}

func TestAudit_findScope(t *testing.T) {
	s, all := auditFixture(t)
	user := func(id int64, role string, academies ...int64) *callvault.Actor {
		return &callvault.Actor{User: &callvault.User{ID: id, Login: role, Role: role, AcademyIDs: academies}}
	}
	disabled := user(8, callvault.RoleDPO)
	disabled.User.Disabled = true
	tests := []struct {
		name  string
		actor *callvault.Actor
		code  string
	}{
		{"system", callvault.SystemActor, ""},
		{"dpo", user(8, callvault.RoleDPO), ""},
		{"ceo", user(5, callvault.RoleCEO), ""},
		{"principal of 1 and 2, own actions", user(7, callvault.RolePrincipal, 1, 2), ""},
		{"principal of 3, own actions", user(7, callvault.RolePrincipal, 3), ""},
		{"principal of 1, no own actions", user(99, callvault.RolePrincipal, 1), ""},
		{"principal without academies", user(7, callvault.RolePrincipal), callvault.EFORBIDDEN},
		{"admin", user(1, callvault.RoleAdmin), callvault.EFORBIDDEN},
		{"listener", user(7, callvault.RoleListener, 1), callvault.EFORBIDDEN},
		{"disabled dpo", disabled, callvault.EFORBIDDEN},
		{"source", &callvault.Actor{Source: &callvault.Source{ID: 7, Name: "pbx"}}, callvault.EFORBIDDEN},
		{"nil actor", nil, callvault.EFORBIDDEN},
	}
	for _, tt := range tests {
		got, err := s.FindAuditEvents(actorCtx(tt.actor), callvault.AuditFilter{Limit: 1000})
		wantCode(t, tt.name, err, tt.code)
		if err != nil {
			continue
		}
		want := auditModel(all, callvault.AuditFilter{Limit: 1000}, tt.actor)
		if !slices.Equal(seqsOf(got), want) {
			t.Errorf("%s: FindAuditEvents = %v\nwant %v", tt.name, seqsOf(got), want)
		}
		if len(got) == 0 {
			t.Errorf("%s: sees nothing; the fixture should give every reader something", tt.name)
		}
	}
	// A principal sees their own actions elsewhere, but not a source that
	// happens to share their id.
	got, _ := s.FindAuditEvents(actorCtx(user(7, callvault.RolePrincipal, 1)), callvault.AuditFilter{Limit: 1000})
	var own, others int
	for _, e := range got {
		switch {
		case e.AcademyID == 1:
		case e.ActorKind == callvault.ActorUser && e.ActorID == "7":
			own++
		default:
			others++
		}
	}
	if own == 0 || others != 0 {
		t.Errorf("principal of 1 saw %d own entries outside academy 1 and %d others'; want some and none", own, others)
	}
}

func TestAudit_findFilters(t *testing.T) {
	s, all := auditFixture(t)
	mid := all[150].Time
	tests := []struct {
		name string
		f    callvault.AuditFilter
	}{
		{"everything", callvault.AuditFilter{}},
		{"limit", callvault.AuditFilter{Limit: 7}},
		{"max limit", callvault.AuditFilter{Limit: 1000}},
		{"actor", callvault.AuditFilter{ActorName: "jsmith"}},
		{"actor, other case", callvault.AuditFilter{ActorName: "JSMITH"}},
		{"action exact", callvault.AuditFilter{Action: "recording.play"}},
		{"action exact, no prefix", callvault.AuditFilter{Action: "recording"}},
		{"action prefix", callvault.AuditFilter{Action: "recording.", Limit: 1000}},
		{"action prefix, deeper", callvault.AuditFilter{Action: "recording.play."}},
		{"action prefix, none", callvault.AuditFilter{Action: "grant."}},
		{"target type", callvault.AuditFilter{TargetType: "user"}},
		{"target", callvault.AuditFilter{TargetType: "recording", TargetID: "rec-2"}},
		{"target of another type", callvault.AuditFilter{TargetType: "user", TargetID: "rec-2"}},
		{"from", callvault.AuditFilter{From: mid}},
		{"from, sub-ms", callvault.AuditFilter{From: mid.Add(time.Microsecond)}},
		{"to", callvault.AuditFilter{To: mid}},
		{"to, sub-ms", callvault.AuditFilter{To: mid.Add(time.Microsecond)}},
		{"from = to", callvault.AuditFilter{From: mid, To: mid}},
		{"from-to", callvault.AuditFilter{From: all[20].Time, To: all[80].Time.Add(-time.Nanosecond)}},
		{"before", callvault.AuditFilter{Before: 120}},
		{"before 1", callvault.AuditFilter{Before: 1}},
		{"everything at once", callvault.AuditFilter{ActorName: "jsmith", Action: "recording.", TargetType: "recording",
			TargetID: "rec-0", From: all[10].Time, To: all[290].Time, Before: 250, Limit: 5}},
	}
	ctxs := map[string]context.Context{"dpo": userCtx(callvault.RoleDPO),
		"principal": callvault.NewContextWithActor(context.Background(),
			&callvault.Actor{User: &callvault.User{ID: 7, Role: callvault.RolePrincipal, AcademyIDs: []int64{2}}})}
	for who, ctx := range ctxs {
		for _, tt := range tests {
			got, err := s.FindAuditEvents(ctx, tt.f)
			if err != nil {
				t.Errorf("%s, %s: %v", who, tt.name, err)
				continue
			}
			want := auditModel(all, tt.f, callvault.ActorFromContext(ctx))
			if !slices.Equal(seqsOf(got), want) {
				t.Errorf("%s, %s: FindAuditEvents(%+v) = %v\nwant %v", who, tt.name, tt.f, seqsOf(got), want)
			}
		}
	}
	// Spot checks that the model means what it says.
	got, _ := s.FindAuditEvents(sysCtx(), callvault.AuditFilter{Action: "recording.", Limit: 1000})
	for _, e := range got {
		if !strings.HasPrefix(e.Action, "recording.") {
			t.Errorf("prefix recording. matched %q", e.Action)
		}
	}
	wantPrefix := 0
	for _, e := range all {
		switch e.Action {
		case "recording.play", "recording.view", "recording.search", "recording.play.range":
			wantPrefix++
		}
	}
	if len(got) != wantPrefix {
		t.Errorf("prefix recording. matched %d entries, want %d", len(got), wantPrefix)
	}
	if got, _ := s.FindAuditEvents(sysCtx(), callvault.AuditFilter{}); len(got) != 100 || got[0].Seq != 300 {
		t.Errorf("default page has %d entries from %d, want 100 from 300", len(got), got[0].Seq)
	}

	// Paging with Before visits every match once, newest first.
	f := callvault.AuditFilter{Action: "recording.", Limit: 9}
	var paged []int64
	for {
		page, err := s.FindAuditEvents(sysCtx(), f)
		if err != nil {
			t.Fatal(err)
		}
		paged = append(paged, seqsOf(page)...)
		if len(page) < f.Limit {
			break
		}
		f.Before = page[len(page)-1].Seq
	}
	f.Before, f.Limit = 0, 1000
	if want := auditModel(all, f, callvault.SystemActor); !slices.Equal(paged, want) {
		t.Errorf("paging visited %v\nwant %v", paged, want)
	}

	for name, f := range map[string]callvault.AuditFilter{
		"negative limit":  {Limit: -1},
		"limit over 1000": {Limit: 1001},
		"negative before": {Before: -5},
		"id without type": {TargetID: "rec-1"},
		"to before from":  {From: mid, To: mid.Add(-time.Millisecond)},
	} {
		_, err := s.FindAuditEvents(sysCtx(), f)
		wantCode(t, name, err, callvault.EINVALID)
	}
	_, err := s.FindAuditEvents(userCtx(callvault.RoleAdmin), callvault.AuditFilter{Limit: -1})
	wantCode(t, "admin with a bad filter", err, callvault.EFORBIDDEN)
}

func TestAudit_redact(t *testing.T) {
	s, all := auditFixture(t)
	ctx := context.Background()
	var want []int64
	for _, e := range all {
		if e.TargetType == "recording" && e.TargetID == "rec-2" {
			want = append(want, e.Seq)
		}
	}
	n, err := s.RedactAudit(ctx, "recording", "rec-2")
	if err != nil || n != int64(len(want)) {
		t.Fatalf("RedactAudit(recording, rec-2) = %d, %v; want %d", n, err, len(want))
	}
	for _, e := range walkAll(t, s) {
		orig := all[e.Seq-1]
		if slices.Contains(want, e.Seq) {
			if !e.Redacted || e.Reason != "" || e.Details != nil || e.Hash != orig.Hash || e.PrevHash != orig.PrevHash ||
				e.TargetID != "rec-2" || e.ActorName != orig.ActorName || e.Action != orig.Action {
				t.Errorf("redacted entry %d = %+v", e.Seq, e)
			}
		} else if e.Redacted || !reflect.DeepEqual(e, orig) {
			t.Errorf("entry %d about %s %s changed", e.Seq, e.TargetType, e.TargetID)
		}
	}
	verifyAudit(t, s) // links still hold; redacted hashes are not recomputed
	found, _ := s.FindAuditEvents(sysCtx(), callvault.AuditFilter{TargetType: "recording", TargetID: "rec-2"})
	if len(found) != len(want) || !found[0].Redacted {
		t.Errorf("FindAuditEvents after redaction = %d entries, redacted %v", len(found), found[0].Redacted)
	}
	if n, err := s.RedactAudit(ctx, "recording", "rec-2"); n != 0 || err != nil {
		t.Errorf("RedactAudit again = %d, %v; want 0", n, err)
	}
	if n, err := s.RedactAudit(ctx, "recording", "no-such"); n != 0 || err != nil {
		t.Errorf("RedactAudit(unknown) = %d, %v; want 0", n, err)
	}
	for _, args := range [][2]string{{"", ""}, {"recording", ""}, {"", "rec-2"}} {
		_, err := s.RedactAudit(ctx, args[0], args[1])
		wantCode(t, fmt.Sprintf("RedactAudit(%q, %q)", args[0], args[1]), err, callvault.EINVALID)
	}
	// Appends continue after redaction.
	mustAppendAudit(t, s, auditEvent("after", 0, t0))
	verifyAudit(t, s)
}

func TestAudit_prune(t *testing.T) {
	db, clk := openTestDB(t)
	s := NewAuditStore(db)
	ctx := context.Background()
	day := 24 * time.Hour
	var all []*callvault.AuditEvent
	for i := range 10 { // days -10 .. -1
		e := auditEvent("old", 0, t0.Add(time.Duration(i-10)*day))
		mustAppendAudit(t, s, e)
		all = append(all, e)
	}
	clk.Add(time.Hour)

	// Before the first entry: nothing.
	if n, err := s.PruneAudit(ctx, t0.Add(-20*day)); n != 0 || err != nil {
		t.Fatalf("PruneAudit(nothing old) = %d, %v", n, err)
	}
	// The entries of days -10 .. -6 (seq 1-5) are older than day -5.
	n, err := s.PruneAudit(ctx, t0.Add(-5*day))
	if err != nil || n != 5 {
		t.Fatalf("PruneAudit(-5 days) = %d, %v; want 5", n, err)
	}
	if seq, hash, _ := s.AuditAnchor(ctx); seq != 5 || hash != all[4].Hash {
		t.Errorf("anchor = %d %s, want 5 %s", seq, hash, all[4].Hash)
	}
	if at := countRows(t, db, `SELECT pruned_at FROM audit_anchor`); int64(at) != t0.Add(time.Hour).UnixMilli() {
		t.Errorf("pruned_at = %d, want the DB's now", at)
	}
	if n := verifyAudit(t, s); n != 5 {
		t.Errorf("%d entries after pruning, want 5", n)
	}
	// The boundary is exclusive: an entry at exactly before stays.
	if n, _ := s.PruneAudit(ctx, all[5].Time); n != 0 {
		t.Errorf("PruneAudit(at entry 6's time) deleted %d, want 0", n)
	}
	if n, _ := s.PruneAudit(ctx, all[5].Time.Add(time.Nanosecond)); n != 1 {
		t.Errorf("PruneAudit(just after entry 6) deleted %d, want 1", n)
	}

	// Appends continue, and the chain verifies from the anchor.
	e := auditEvent("new", 0, t0)
	mustAppendAudit(t, s, e)
	if e.Seq != 11 || e.PrevHash != all[9].Hash {
		t.Errorf("append after pruning got %d after %s, want 11 after %s", e.Seq, e.PrevHash, all[9].Hash)
	}
	all = append(all, e)

	// Everything is old, but the head stays.
	n, err = s.PruneAudit(ctx, t0.Add(day))
	if err != nil || n != 4 {
		t.Fatalf("PruneAudit(everything) = %d, %v; want 4 (all but the head)", n, err)
	}
	if seq, hash, _ := s.AuditAnchor(ctx); seq != 10 || hash != all[9].Hash {
		t.Errorf("anchor = %d, want 10", seq)
	}
	if n := verifyAudit(t, s); n != 1 {
		t.Errorf("%d entries left, want the head only", n)
	}
	if n, _ := s.PruneAudit(ctx, t0.Add(day)); n != 0 {
		t.Errorf("PruneAudit with only the head left deleted %d", n)
	}
	if seq, hash, _ := s.AuditHead(ctx); seq != 11 || hash != e.Hash {
		t.Errorf("head = %d, want 11", seq)
	}

	// With the table emptied behind the store's back, the head is the
	// anchor, and appends continue from it.
	if _, err := db.writer.Exec(`DELETE FROM audit_events`); err != nil {
		t.Fatal(err)
	}
	if seq, hash, _ := s.AuditHead(ctx); seq != 10 || hash != all[9].Hash {
		t.Errorf("head of an emptied trail = %d, want the anchor 10", seq)
	}
	e = auditEvent("again", 0, t0)
	mustAppendAudit(t, s, e)
	if e.Seq != 11 || e.PrevHash != all[9].Hash {
		t.Errorf("append to an emptied trail got %d after %s, want 11 after the anchor", e.Seq, e.PrevHash)
	}
	verifyAudit(t, s)
}

// An entry older than before that follows a newer one (clocks of two
// writers differ) is kept until the newer one may go: only a prefix of the
// chain is pruned, never an entry within retention.
func TestAudit_pruneOutOfOrder(t *testing.T) {
	db, _ := openTestDB(t)
	s := NewAuditStore(db)
	at := []time.Duration{-10, -9, -1, -8, -7} // days; entry 3 is recent
	for _, d := range at {
		mustAppendAudit(t, s, auditEvent("x", 0, t0.Add(d*24*time.Hour)))
	}
	n, err := s.PruneAudit(context.Background(), t0.Add(-5*24*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("PruneAudit = %d, %v; want 2", n, err)
	}
	if got := seqsOf(walkAll(t, s)); !slices.Equal(got, []int64{3, 4, 5}) {
		t.Errorf("left %v, want [3 4 5]", got)
	}
	verifyAudit(t, s)
}

// TestAuditPlan checks that the searches use the indexes meant for them and
// that pruning walks the chain from its start.
func TestAuditPlan(t *testing.T) {
	db, _ := openTestDB(t)
	s := NewAuditStore(db)
	var batch []*callvault.AuditEvent
	for i := range 5000 {
		e := auditEvent([]string{"recording.play", "recording.search", "auth.login", "user.create"}[i%4], int64(i%5), t0.Add(time.Duration(i)*time.Minute))
		e.ActorName = fmt.Sprintf("user%d", i%50)
		e.TargetType, e.TargetID = "recording", fmt.Sprintf("rec-%d", i%1000)
		batch = append(batch, e)
	}
	mustAppendAudit(t, s, batch...)
	principal := &callvault.Actor{User: &callvault.User{ID: 7, Role: callvault.RolePrincipal, AcademyIDs: []int64{1, 2}}}
	tests := []struct {
		name  string
		f     callvault.AuditFilter
		actor *callvault.Actor
		want  string // a substring of the plan
	}{
		{"everything", callvault.AuditFilter{}, callvault.SystemActor, "SCAN audit_events"},
		{"next page", callvault.AuditFilter{Before: 300}, callvault.SystemActor, "SEARCH audit_events USING INTEGER PRIMARY KEY (rowid<?)"},
		{"principal", callvault.AuditFilter{}, principal, "SCAN audit_events"},
		{"action", callvault.AuditFilter{Action: "recording.play"}, callvault.SystemActor, "USING INDEX audit_events_action (action=?)"},
		{"action, page", callvault.AuditFilter{Action: "recording.play", Before: 300}, callvault.SystemActor, "USING INDEX audit_events_action (action=? AND seq<?)"},
		{"action prefix", callvault.AuditFilter{Action: "recording."}, callvault.SystemActor, "audit_events_action (action>? AND action<?)"},
		{"actor", callvault.AuditFilter{ActorName: "user7"}, callvault.SystemActor, "USING INDEX audit_events_actor (actor_name=?)"},
		{"actor, principal", callvault.AuditFilter{ActorName: "user7"}, principal, "USING INDEX audit_events_actor (actor_name=?)"},
		{"target", callvault.AuditFilter{TargetType: "recording", TargetID: "rec-1"}, callvault.SystemActor,
			"USING INDEX audit_events_target (target_type=? AND target_id=?)"},
		{"day", callvault.AuditFilter{From: t0.Add(24 * time.Hour), To: t0.Add(48 * time.Hour)}, callvault.SystemActor,
			"USING INDEX audit_events_time (time>? AND time<?)"},
	}
	for _, stats := range []string{"no statistics", "analyzed"} {
		if stats == "analyzed" {
			if _, err := db.writer.Exec("ANALYZE"); err != nil {
				t.Fatal(err)
			}
		}
		for _, tt := range tests {
			q, err := buildAuditSearch(tt.f, tt.actor)
			if err != nil {
				t.Fatal(err)
			}
			plan := explain(t, db, q.sql, q.args...)
			t.Logf("%s, %s:\n%s", tt.name, stats, plan)
			if !strings.Contains(plan, tt.want) {
				t.Errorf("%s, %s: plan lacks %q:\n%s", tt.name, stats, tt.want, plan)
			}
			if tt.f.Action == "recording.play" || tt.f.ActorName != "" || tt.f.TargetID != "" {
				if strings.Contains(plan, "TEMP B-TREE") {
					t.Errorf("%s, %s: equality filter sorts instead of reading in seq order:\n%s", tt.name, stats, plan)
				}
			}
		}
		plan := explain(t, db, `SELECT seq FROM audit_events WHERE +time >= ? ORDER BY seq LIMIT 1`, t0.UnixMilli())
		if !strings.Contains(plan, "SCAN audit_events") || strings.Contains(plan, "INDEX") {
			t.Errorf("%s: prune boundary plan:\n%s", stats, plan)
		}
	}
}
