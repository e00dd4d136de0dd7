package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/callvault/callvault"
)

// Size of BenchmarkActiveGrant's database: years of grants.
const (
	benchGrants     = 100_000
	benchGrantRecs  = 20_000
	benchGrantUsers = 2_000
)

// buildGrantBenchDB fills db with benchGrantUsers users, benchGrantRecs
// recordings and benchGrants grants of 1 to 3 recordings each (about ten
// grants per recording): 20% active at now, 20% revoked while active, the
// rest expired; one in twenty is break-glass. It returns (user, recording)
// pairs covered by an active grant.
func buildGrantBenchDB(b *testing.B, db *DB, now time.Time) (active [][2]any, users []int64, recs []string) {
	b.Helper()
	ctx := context.Background()
	north, south := createAcademies(b, db)
	rnd := rand.New(rand.NewPCG(2026, 3))
	var rs []*callvault.Recording
	for i := range benchGrantRecs {
		academy := []int64{north.ID, south.ID}[i%2]
		rs = append(rs, newRecording(academy, 0, fmt.Sprint(i), now.Add(-time.Duration(i)*time.Hour), "+447700900123", "2001"))
		recs = append(recs, rs[i].ID)
	}
	insertRecordings(b, db, rs...)

	// The one writer connection: a big page cache for random index inserts.
	if _, err := db.writer.ExecContext(ctx, "PRAGMA cache_size = -262144"); err != nil {
		b.Fatal(err)
	}
	tx, err := db.beginWrite(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	for i := range benchGrantUsers {
		var id int64
		if err := tx.queryRow(ctx, `INSERT INTO users (login, role, created_at) VALUES (?, ?, 0) RETURNING id`,
			fmt.Sprintf("user%04d", i), callvault.RoleListener).Scan(&id); err != nil {
			b.Fatal(err)
		}
		users = append(users, id)
	}
	prepare := func(q string) *sql.Stmt {
		stmt, err := tx.prepare(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { stmt.Close() })
		return stmt
	}
	reqStmt := prepare(`INSERT INTO listen_requests (requester_id, purpose, justification, duration_ms,
		state, created_at, decider_id, decided_at) VALUES (?, 'complaint', 'bench', ?, 'approved', ?, ?, ?) RETURNING id`)
	grantStmt := prepare(`INSERT INTO grants (request_id, listener_id, from_ms, until_ms, granted_by, revoked_at, revoked_by,
		break_glass, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`)
	recStmt := prepare(`INSERT INTO grant_recordings (recording_id, listener_id, grant_id) VALUES (?, ?, ?)`)
	for i := range benchGrants {
		listener, decider := users[rnd.IntN(len(users))], users[1+rnd.IntN(len(users)-1)] // users[0] asks
		var grantRecs []string
		for range 1 + rnd.IntN(3) {
			if r := recs[rnd.IntN(len(recs))]; !slices.Contains(grantRecs, r) {
				grantRecs = append(grantRecs, r)
			}
		}
		dur := time.Duration(1+rnd.IntN(7*24)) * time.Hour
		breakGlass := i%20 == 0 // one in twenty
		if breakGlass {
			dur = callvault.BreakGlassPeriod
		}
		var from time.Time
		if i%10 < 4 { // active at now (the first two of these revoked)
			from = now.Add(-time.Duration(rnd.Int64N(int64(dur))))
		} else { // expired, up to three years ago
			from = now.Add(-dur - time.Duration(rnd.Int64N(int64(3*365*24*time.Hour))))
		}
		from = from.Truncate(time.Second)
		var (
			requestID, revokedAt, revokedBy any
			reason                          string
		)
		if breakGlass {
			reason, decider = "bench", listener
		} else {
			var id int64
			if err := reqStmt.QueryRowContext(ctx, users[0], dur.Milliseconds(),
				from.UnixMilli(), decider, from.UnixMilli()).Scan(&id); err != nil {
				b.Fatal(err)
			}
			requestID = id
		}
		if i%10 < 2 {
			revokedAt, revokedBy = now.UnixMilli(), decider
		}
		var id int64
		if err := grantStmt.QueryRowContext(ctx, requestID, listener, from.UnixMilli(), from.Add(dur).UnixMilli(), decider,
			revokedAt, revokedBy, breakGlass, reason).Scan(&id); err != nil {
			b.Fatal(err)
		}
		for _, r := range grantRecs {
			if _, err := recStmt.ExecContext(ctx, r, listener, id); err != nil {
				b.Fatal(err)
			}
			if i%10 >= 2 && i%10 < 4 {
				active = append(active, [2]any{listener, r})
			}
		}
	}
	if err := tx.commit(); err != nil {
		b.Fatal(err)
	}
	if _, err := db.writer.ExecContext(ctx, "ANALYZE"); err != nil {
		b.Fatal(err)
	}
	return active, users, recs
}

// BenchmarkActiveGrant measures the hot path of every audio range request
// against 100,000 grants over 20,000 recordings and 2,000 users: half the
// lookups find an active grant, half ask for a pair without one (expired,
// revoked or never granted). It fails above 50 µs per lookup. Run with:
//
//	go test ./sqldb -run '^$' -bench ActiveGrant
func BenchmarkActiveGrant(b *testing.B) {
	db, _ := openTestDB(b)
	now := t0
	start := time.Now()
	active, users, recs := buildGrantBenchDB(b, db, now)
	b.Logf("built %d grants, %d grant recordings, %d active pairs in %v", countRows(b, db, `SELECT COUNT(*) FROM grants`),
		countRows(b, db, `SELECT COUNT(*) FROM grant_recordings`), len(active), time.Since(start).Round(time.Millisecond))
	b.Logf("plan:\n%s", explain(b, db, activeGrantSQL, activeGrantArgs(active[0][0].(int64), active[0][1].(string), now)...))

	s := NewGrantService(db)
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(7, 7))
	var lat []time.Duration
	found := 0
	for b.Loop() {
		var (
			user int64
			rec  string
		)
		if rnd.IntN(2) == 0 {
			p := active[rnd.IntN(len(active))]
			user, rec = p[0].(int64), p[1].(string)
		} else {
			user, rec = users[rnd.IntN(len(users))], recs[rnd.IntN(len(recs))]
		}
		t := time.Now()
		g, err := s.ActiveGrant(ctx, user, rec, now)
		lat = append(lat, time.Since(t))
		switch callvault.ErrorCode(err) {
		case "":
			if !g.Active(now) || g.ListenerID != user || !g.Covers(rec) || len(g.AcademyIDs) == 0 {
				b.Fatalf("ActiveGrant(%d, %s) = %+v", user, rec, g)
			}
			found++
		case callvault.ENOTFOUND:
		default:
			b.Fatalf("ActiveGrant(%d, %s): %v", user, rec, err)
		}
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Microsecond) }
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(float64(found)/float64(len(lat)), "found/op")
	if per := b.Elapsed() / time.Duration(b.N); per > 50*time.Microsecond {
		b.Errorf("ActiveGrant takes %v per lookup, want well under 50µs", per)
	}
}
