package sqldb

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/google/uuid"
)

// benchDataVersion changes when the generated data changes; with the schema
// version it names the cached database.
const benchDataVersion = 1

// Bench data spans 14 months, like a year of retention plus slack.
var (
	benchFirst = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	benchLast  = benchFirst.AddDate(0, 14, 0)
)

// benchAreaCodes are UK geographic area codes (national significant
// numbers are 10 digits).
var benchAreaCodes = []string{"113", "114", "115", "116", "117", "118", "121", "131", "141", "151",
	"161", "191", "1632", "1482", "1524", "1603", "1904", "20", "23", "24", "28", "29"}

// benchNumbers returns 5,000 distinct external numbers: 60% mobiles, the
// rest landlines, all E.164.
func benchNumbers() []string {
	rnd := rand.New(rand.NewPCG(2026, 1))
	seen := map[string]bool{}
	var ns []string
	for len(ns) < 5000 {
		var n string
		if rnd.IntN(10) < 6 {
			n = fmt.Sprintf("+447%09d", rnd.IntN(1e9))
		} else {
			ac := benchAreaCodes[rnd.IntN(len(benchAreaCodes))]
			n = "+44" + ac + fmt.Sprintf("%0*d", 10-len(ac), rnd.IntN(pow10(10-len(ac))))
		}
		if !seen[n] {
			seen[n] = true
			ns = append(ns, n)
		}
	}
	return ns
}

func pow10(n int) int {
	p := 1
	for range n {
		p *= 10
	}
	return p
}

// uuidV7At returns a UUIDv7 for the given unix milliseconds, so that ids
// follow start times as they do in production.
func uuidV7At(ms int64, rnd *rand.Rand) string {
	var u uuid.UUID
	binary.BigEndian.PutUint64(u[8:], rnd.Uint64())
	binary.BigEndian.PutUint64(u[0:8], uint64(ms)<<16|uint64(rnd.Uint32()&0xffff))
	u[6] = u[6]&0x0f | 0x70
	u[8] = u[8]&0x3f | 0x80
	return u.String()
}

// benchDB returns the path of a database with n recordings, building it
// once and caching it in os.TempDir() under the schema and data versions.
func benchDB(b *testing.B, n int) string {
	ms, err := migrations(dialectSQLite)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(os.TempDir(), fmt.Sprintf("callvault-bench-s%d-d%d-%d.db",
		ms[len(ms)-1].version, benchDataVersion, n))
	if _, err := os.Stat(path); err == nil {
		b.Logf("reusing %s", path)
		return path
	}
	tmp := path + ".building"
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(tmp + suffix)
	}
	start := time.Now()
	if err := buildBenchDB(tmp, n); err != nil {
		b.Fatalf("building %s: %v", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	fi, _ := os.Stat(path)
	b.Logf("built %s (%d recordings, %d MB) in %v", path, n, fi.Size()>>20, time.Since(start).Round(time.Second))
	return path
}

func buildBenchDB(path string, n int) error {
	ctx := context.Background()
	db, err := Open(ctx, path)
	if err != nil {
		return err
	}
	defer db.Close()

	academies := []*callvault.Academy{
		{Slug: "north", Name: "North Academy", Numbers: []callvault.Range{rng("+441632960000-+441632960099")}, Extensions: []callvault.Range{rng("2000-2099")}},
		{Slug: "south", Name: "South Academy", Numbers: []callvault.Range{rng("+441632961000-+441632961099")}, Extensions: []callvault.Range{rng("3000-3099")}},
		{Slug: "east", Name: "East Academy", Numbers: []callvault.Range{rng("+441632962000-+441632962099")}, Extensions: []callvault.Range{rng("4000-4099")}},
	}
	for _, a := range academies {
		if err := NewAcademyService(db).CreateAcademy(sysCtx(), a); err != nil {
			return err
		}
	}
	src := &callvault.Source{Name: "pbx", Kind: callvault.SourceImport, TokenHash: "bench"}
	if err := NewSourceService(db).CreateSource(sysCtx(), src); err != nil {
		return err
	}

	// The one writer connection: a big page cache for random index inserts.
	if _, err := db.writer.ExecContext(ctx, "PRAGMA cache_size = -524288"); err != nil {
		return err
	}
	numbers := benchNumbers()
	rnd := rand.New(rand.NewPCG(2026, 2))
	step := benchLast.Sub(benchFirst) / time.Duration(n)
	directions := []string{callvault.DirectionInbound, callvault.DirectionInbound, callvault.DirectionInbound,
		callvault.DirectionOutbound, callvault.DirectionOutbound, callvault.DirectionInternal}
	const batch = 50000
	for lo := 0; lo < n; lo += batch {
		tx, err := db.writer.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		recStmt, err := tx.PrepareContext(ctx, `INSERT INTO recordings (
			id, academy_id, source_id, source_kind, source_ref, started_at, ended_at,
			duration_ms, direction, format, codec, sample_rate, channels, data_offset,
			data_size, size, sha256, blob_key, key_epoch, retain_until, state, created_at
		) VALUES (?, ?, ?, 'import', ?, ?, ?, ?, ?, 'wav', 'pcm16', 8000, 2, 44, ?, ?, ?, ?, ?, ?, 'stored', ?)`)
		if err != nil {
			return err
		}
		partStmt, err := tx.PrepareContext(ctx, `INSERT INTO participants (
			recording_id, idx, number, number_rev, extension, name, side, started_at
		) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		for i := lo; i < min(lo+batch, n); i++ {
			started := benchFirst.Add(time.Duration(i)*step + time.Duration(rnd.Int64N(int64(step))))
			startMS := started.UnixMilli()
			id := uuidV7At(startMS, rnd)
			a := academies[rnd.IntN(len(academies))]
			// Some families call far more than others.
			x := rnd.Float64()
			external := numbers[int(float64(len(numbers))*x*x)]
			ddi := a.Numbers[0].First[:len(a.Numbers[0].First)-2] + fmt.Sprintf("%02d", rnd.IntN(100))
			ext := a.Extensions[0].First[:2] + fmt.Sprintf("%02d", rnd.IntN(100))
			dur := int64(5000 + rnd.ExpFloat64()*180000)
			size := dur * 32
			if _, err := recStmt.ExecContext(ctx, id, a.ID, src.ID, strconv.Itoa(i), startMS, startMS+dur, dur,
				directions[rnd.IntN(len(directions))], size-44, size, fmt.Sprintf("%064x", i), "rec/"+id,
				callvault.KeyEpoch(started), started.AddDate(1, 0, 0).UnixMilli(), startMS+dur+1000); err != nil {
				return err
			}
			if _, err := partStmt.ExecContext(ctx, id, 0, external, reverseDigits(external), "", "", callvault.SideExternal, startMS); err != nil {
				return err
			}
			if _, err := partStmt.ExecContext(ctx, id, 1, ddi, reverseDigits(ddi), ext, "Staff "+ext, callvault.SideStaff, startMS); err != nil {
				return err
			}
		}
		recStmt.Close()
		partStmt.Close()
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	// What PRAGMA optimize at Open does for a grown database.
	_, err = db.writer.ExecContext(ctx, "ANALYZE")
	return err
}

// BenchmarkSearchMillion searches a million recordings (two participants
// each, 5,000 external numbers, 3 academies, 14 months) the way a subject
// access request does: the last 8 digits of a number within 30 days.
// CALLVAULT_BENCH_ROWS changes the size. Run with:
//
//	go test ./sqldb -run '^$' -bench SearchMillion -benchtime 500x
func BenchmarkSearchMillion(b *testing.B) {
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
	path := benchDB(b, n)
	db, err := Open(context.Background(), path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s := NewRecordingService(db)
	numbers := benchNumbers()
	var north int64
	if err := db.reader.QueryRow(`SELECT id FROM academies WHERE slug = 'north'`).Scan(&north); err != nil {
		b.Fatal(err)
	}

	window := func(rnd *rand.Rand) (time.Time, time.Time) {
		span := benchLast.Sub(benchFirst) - 30*24*time.Hour
		from := benchFirst.Add(time.Duration(rnd.Int64N(int64(span)))).Truncate(24 * time.Hour)
		return from, from.AddDate(0, 0, 30)
	}
	// External numbers, weighted as they were generated: popular numbers are
	// searched more, like in the data.
	number := func(rnd *rand.Rand) string {
		x := rnd.Float64()
		return numbers[int(float64(len(numbers))*x*x)]
	}
	cases := []struct {
		name string
		ctx  context.Context
		f    func(rnd *rand.Rand) callvault.RecordingFilter
	}{
		{"suffix8+30d", sysCtx(), func(rnd *rand.Rand) callvault.RecordingFilter {
			from, to := window(rnd)
			n := number(rnd)
			return callvault.RecordingFilter{Number: n[len(n)-8:], From: from, To: to}
		}},
		{"suffix8+30d/principal", userCtx(callvault.RolePrincipal, north), func(rnd *rand.Rand) callvault.RecordingFilter {
			from, to := window(rnd)
			n := number(rnd)
			return callvault.RecordingFilter{Number: n[len(n)-8:], From: from, To: to}
		}},
		{"full+30d", sysCtx(), func(rnd *rand.Rand) callvault.RecordingFilter {
			from, to := window(rnd)
			return callvault.RecordingFilter{Number: number(rnd), From: from, To: to}
		}},
		{"suffix8/all-time", sysCtx(), func(rnd *rand.Rand) callvault.RecordingFilter {
			n := number(rnd)
			return callvault.RecordingFilter{Number: n[len(n)-8:]}
		}},
		{"first-page/principal-of-2", userCtx(callvault.RolePrincipal, north, north+1), func(rnd *rand.Rand) callvault.RecordingFilter {
			return callvault.RecordingFilter{}
		}},
		{"first-page/principal-of-1", userCtx(callvault.RolePrincipal, north), func(rnd *rand.Rand) callvault.RecordingFilter {
			return callvault.RecordingFilter{}
		}},
		{"first-page/admin", sysCtx(), func(rnd *rand.Rand) callvault.RecordingFilter {
			return callvault.RecordingFilter{}
		}},
		{"30d-only", sysCtx(), func(rnd *rand.Rand) callvault.RecordingFilter {
			from, to := window(rnd)
			return callvault.RecordingFilter{From: from, To: to}
		}},
	}
	{
		from, to := window(rand.New(rand.NewPCG(1, 1)))
		q, err := buildSearch(callvault.RecordingFilter{Number: numbers[0][len(numbers[0])-8:], From: from, To: to}, callvault.Scope{All: true})
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("suffix8+30d page plan:\n%s", explain(b, db, q.pageSQL, q.pageArgs...))
		b.Logf("suffix8+30d count plan:\n%s", explain(b, db, q.countSQL, q.countArgs...))
		q, _ = buildSearch(callvault.RecordingFilter{}, callvault.Scope{AcademyIDs: []int64{north, north + 1}})
		b.Logf("first page, principal of 2, page plan:\n%s", explain(b, db, q.pageSQL, q.pageArgs...))
		b.Logf("first page, principal of 2, count plan:\n%s", explain(b, db, q.countSQL, q.countArgs...))
	}
	for i, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			rnd := rand.New(rand.NewPCG(7, uint64(i)))
			var lat []time.Duration
			found := 0
			for b.Loop() {
				f := c.f(rnd)
				start := time.Now()
				rs, total, _, err := s.FindRecordings(c.ctx, f)
				lat = append(lat, time.Since(start))
				if err != nil {
					b.Fatalf("FindRecordings(%+v): %v", f, err)
				}
				found += total
				_ = rs
			}
			slices.Sort(lat)
			pct := func(p float64) float64 {
				return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond)
			}
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.95), "p95-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(float64(found)/float64(len(lat)), "matches/op")
		})
	}
}
