package sqldb

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/callvault/callvault"
)

// benchAuditVersion changes when the generated trail changes; with the
// schema version it names the cached database.
const benchAuditVersion = 2

// benchAuditEvent returns a realistic entry: a user playing, viewing or
// searching, a login, or a job, about one of 100,000 recordings in one of
// ten academies (or none).
func benchAuditEvent(rnd *rand.Rand, at time.Time) *callvault.AuditEvent {
	user := rnd.IntN(200)
	e := &callvault.AuditEvent{
		Time: at, ActorKind: callvault.ActorUser, ActorID: strconv.Itoa(user), ActorName: fmt.Sprintf("user%03d", user),
		ActorRole: callvault.Roles[user%len(callvault.Roles)], AcademyID: int64(rnd.IntN(11)),
		Outcome: callvault.OutcomeAllowed, ClientAddr: fmt.Sprintf("192.0.2.%d", user%250),
	}
	switch x := rnd.IntN(10); {
	case x < 4:
		e.Action, e.TargetType, e.TargetID = "recording.play", "recording", uuidV7At(at.UnixMilli(), rnd)
		e.Details = map[string]string{"range": "bytes=0-65535", "format": "wav"}
	case x < 7:
		e.Action, e.TargetType, e.TargetID = "recording.view", "recording", uuidV7At(at.UnixMilli(), rnd)
	case x < 9:
		e.Action = "recording.search"
		e.Details = map[string]string{"query": "number=71838750&from=2026-01-01", "shown": "12", "total": "12"}
	default:
		e.Action, e.AcademyID = "auth.login", 0
		if rnd.IntN(10) == 0 {
			e.Outcome, e.Reason = callvault.OutcomeDenied, "bad password"
		}
	}
	return e
}

// BenchmarkAppendAuditBatch appends batches of entries to a file database,
// each batch one durable (fsynced) transaction, as the server does.
func BenchmarkAppendAuditBatch(b *testing.B) {
	for _, size := range []int{1, 16, 128, 512} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			db, err := Open(context.Background(), filepath.Join(b.TempDir(), "audit.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			s := NewAuditStore(db)
			rnd := rand.New(rand.NewPCG(1, uint64(size)))
			batch := make([]*callvault.AuditEvent, size)
			for i := range batch {
				batch[i] = benchAuditEvent(rnd, time.Now())
			}
			for b.Loop() {
				if err := s.AppendAudit(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// benchAuditDB returns the path of a trail of n entries over two years,
// building it once and caching it in os.TempDir().
func benchAuditDB(b *testing.B, n int) string {
	ms, err := migrations(dialectSQLite)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(os.TempDir(), fmt.Sprintf("callvault-bench-audit-s%d-d%d-%d.db",
		ms[len(ms)-1].version, benchAuditVersion, n))
	if _, err := os.Stat(path); err == nil {
		b.Logf("reusing %s", path)
		return path
	}
	tmp := path + ".building"
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(tmp + suffix)
	}
	start := time.Now()
	db, err := Open(context.Background(), tmp)
	if err != nil {
		b.Fatal(err)
	}
	s := NewAuditStore(db)
	rnd := rand.New(rand.NewPCG(2026, 3))
	first := time.Date(2024, 9, 1, 0, 0, 0, 0, time.UTC)
	step := 2 * 365 * 24 * time.Hour / time.Duration(n)
	const batch = 10000
	events := make([]*callvault.AuditEvent, 0, batch)
	for i := 0; i < n; i += batch {
		events = events[:0]
		for j := i; j < min(i+batch, n); j++ {
			events = append(events, benchAuditEvent(rnd, first.Add(time.Duration(j)*step)))
		}
		if err := s.AppendAudit(context.Background(), events); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := db.writer.Exec("ANALYZE"); err != nil {
		b.Fatal(err)
	}
	db.Close()
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	fi, _ := os.Stat(path)
	b.Logf("built %s (%d entries, %d MB) in %v", path, n, fi.Size()>>20, time.Since(start).Round(time.Second))
	return path
}

// BenchmarkWalkAudit walks a trail of a million entries (CALLVAULT_BENCH_ROWS
// changes the size): reading only, and verifying the chain as a verifier
// does. Run with:
//
//	go test ./sqldb -run '^$' -bench WalkAudit -benchtime 3x
func BenchmarkWalkAudit(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a large database")
	}
	n := 1_000_000
	if v := os.Getenv("CALLVAULT_BENCH_ROWS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			b.Fatalf("CALLVAULT_BENCH_ROWS=%q", v)
		}
	}
	db, err := Open(context.Background(), benchAuditDB(b, n))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s := NewAuditStore(db)
	for _, verify := range []bool{false, true} {
		b.Run(map[bool]string{false: "read", true: "verify"}[verify], func(b *testing.B) {
			for b.Loop() {
				seq, prev := int64(0), callvault.GenesisHash
				walked := 0
				err := s.WalkAudit(sysCtx(), 0, func(e *callvault.AuditEvent) error {
					walked++
					if verify {
						if e.Seq != seq+1 || e.PrevHash != prev || callvault.ChainHash(prev, e) != e.Hash {
							return fmt.Errorf("entry %d does not verify", e.Seq)
						}
						seq, prev = e.Seq, e.Hash
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				if walked != n {
					b.Fatalf("walked %d entries, want %d", walked, n)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
		})
	}

	// Searches on the same trail, for the choice of indexes.
	principal := callvault.NewContextWithActor(context.Background(),
		&callvault.Actor{User: &callvault.User{ID: 5, Role: callvault.RolePrincipal, AcademyIDs: []int64{3}}})
	var target string
	if err := db.reader.QueryRow(`SELECT target_id FROM audit_events WHERE target_type = 'recording' LIMIT 1 OFFSET 5000`).Scan(&target); err != nil {
		b.Fatal(err)
	}
	day := time.Date(2025, 6, 10, 0, 0, 0, 0, time.UTC)
	searches := []struct {
		name string
		ctx  context.Context
		f    callvault.AuditFilter
	}{
		{"find/dpo/first-page", userCtx(callvault.RoleDPO), callvault.AuditFilter{}},
		{"find/dpo/recording", userCtx(callvault.RoleDPO), callvault.AuditFilter{TargetType: "recording", TargetID: target}},
		{"find/dpo/actor", userCtx(callvault.RoleDPO), callvault.AuditFilter{ActorName: "user042"}},
		{"find/dpo/action-prefix", userCtx(callvault.RoleDPO), callvault.AuditFilter{Action: "recording."}},
		{"find/dpo/one-day", userCtx(callvault.RoleDPO), callvault.AuditFilter{From: day, To: day.AddDate(0, 0, 1)}},
		{"find/principal/first-page", principal, callvault.AuditFilter{}},
		{"find/principal/page-500", principal, callvault.AuditFilter{Before: int64(n) / 2}},
		{"find/principal/action", principal, callvault.AuditFilter{Action: "recording.play"}},
	}
	for _, c := range searches {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := s.FindAuditEvents(c.ctx, c.f); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/op")
		})
	}
}

// BenchmarkPruneAudit prunes a copy of the million-entry trail a month
// (about 41,000 entries) per iteration, as a monthly retention run would.
// Run with:
//
//	go test ./sqldb -run '^$' -bench PruneAudit -benchtime 6x
func BenchmarkPruneAudit(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a large database")
	}
	src := benchAuditDB(b, 1_000_000)
	path := filepath.Join(b.TempDir(), "audit.db")
	if err := copyFile(path, src); err != nil {
		b.Fatal(err)
	}
	db, err := Open(context.Background(), path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s := NewAuditStore(db)
	before := time.Date(2024, 9, 1, 0, 0, 0, 0, time.UTC)
	var deleted int64
	for b.Loop() {
		before = before.AddDate(0, 1, 0)
		n, err := s.PruneAudit(context.Background(), before)
		if err != nil {
			b.Fatal(err)
		}
		deleted += n
	}
	b.ReportMetric(float64(deleted)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(deleted)/float64(b.N), "events/op")
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
