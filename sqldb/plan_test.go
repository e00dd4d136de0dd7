package sqldb

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/callvault/callvault"
)

// explain returns the EXPLAIN QUERY PLAN of q as indented lines.
func explain(t testing.TB, db *DB, q string, args ...any) string {
	t.Helper()
	rows, err := db.reader.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatalf("EXPLAIN QUERY PLAN %s: %v", q, err)
	}
	defer rows.Close()
	depth := map[int]int{}
	var b strings.Builder
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		depth[id] = depth[parent] + 1
		fmt.Fprintf(&b, "%s%s\n", strings.Repeat("  ", depth[id]-1), detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestSearchPlan checks that the searches people run most (number suffix
// plus a date range, as for a subject access request) are answered from
// indexes, never by scanning participants or recordings, with and without
// planner statistics.
func TestSearchPlan(t *testing.T) {
	db, _ := openTestDB(t)
	north, south := createAcademies(t, db)
	var rs []*callvault.Recording
	for i := range 3000 {
		academy := []int64{north.ID, south.ID}[i%2]
		r := newRecording(academy, 0, fmt.Sprint(i), t0.Add(-time.Duration(i)*13*time.Minute),
			fmt.Sprintf("+4477009%05d", i%700), fmt.Sprint(2000+i%50))
		rs = append(rs, r)
	}
	insertRecordings(t, db, rs...)

	from := t0.AddDate(0, 0, -30)
	all := callvault.Scope{All: true}
	principal := callvault.Scope{AcademyIDs: []int64{north.ID}}
	next := encodeCursor(t0.Add(-time.Hour), rs[0].ID)
	const (
		suffixIndex = "SEARCH p USING COVERING INDEX participants_number (number_rev>? AND number_rev<?)"
		byID        = "SEARCH r USING INDEX sqlite_autoindex_recordings_1 (id=?)"
	)
	tests := []struct {
		name        string
		f           callvault.RecordingFilter
		scope       callvault.Scope
		page, count []string // substrings of the plans
	}{
		{"suffix+30 days", callvault.RecordingFilter{Number: "71838750", From: from, To: t0}, all,
			[]string{suffixIndex, byID}, []string{suffixIndex, byID}},
		{"suffix+30 days, principal", callvault.RecordingFilter{Number: "71838750", From: from, To: t0}, principal,
			[]string{suffixIndex, byID}, []string{suffixIndex, byID}},
		{"suffix+30 days, next page", callvault.RecordingFilter{Number: "71838750", From: from, To: t0, After: next}, all,
			[]string{suffixIndex, byID}, []string{suffixIndex, byID}},
		{"full number+30 days", callvault.RecordingFilter{Number: "+447700900123", From: from, To: t0}, all,
			[]string{"SEARCH p USING COVERING INDEX participants_number (number_rev=? AND started_at>? AND started_at<?)", byID},
			[]string{"SEARCH p USING COVERING INDEX participants_number (number_rev=? AND started_at>? AND started_at<?)", byID}},
		{"extension+30 days", callvault.RecordingFilter{Extension: "2001", From: from, To: t0}, all,
			[]string{"SEARCH p USING COVERING INDEX participants_extension (extension=? AND started_at>? AND started_at<?)", byID},
			[]string{"SEARCH p USING COVERING INDEX participants_extension (extension=? AND started_at>? AND started_at<?)", byID}},
		{"30 days", callvault.RecordingFilter{From: from, To: t0}, all,
			[]string{"SEARCH r USING INDEX recordings_started (started_at>? AND started_at<?)"},
			[]string{"SEARCH r USING COVERING INDEX recordings_started (started_at>? AND started_at<?)"}},
		{"30 days, principal", callvault.RecordingFilter{From: from, To: t0}, principal, nil, nil},
		{"everything, next page", callvault.RecordingFilter{After: next}, all,
			[]string{"SEARCH r USING INDEX recordings_started ((started_at,id)<(?,?))"}, nil},
	}
	for _, stats := range []string{"no statistics", "analyzed"} {
		if stats == "analyzed" {
			if _, err := db.writer.Exec("ANALYZE"); err != nil {
				t.Fatal(err)
			}
		}
		for _, tt := range tests {
			q, err := buildSearch(tt.f, tt.scope)
			if err != nil {
				t.Fatal(err)
			}
			for _, part := range []struct {
				name string
				sql  string
				args []any
				want []string
			}{
				{"page", q.pageSQL, q.pageArgs, tt.page},
				{"count", q.countSQL, q.countArgs, tt.count},
			} {
				plan := explain(t, db, part.sql, part.args...)
				t.Logf("%s, %s, %s:\n%s\n%s", tt.name, stats, part.name, part.sql, plan)
				for _, line := range strings.Split(plan, "\n") {
					// m and c are subqueries; any other SCAN without an
					// index reads a whole table.
					if l := strings.TrimSpace(line); strings.HasPrefix(l, "SCAN ") && !strings.Contains(l, "USING") &&
						l != "SCAN m" && l != "SCAN c" {
						t.Errorf("%s, %s, %s: full scan %q in plan:\n%s", tt.name, stats, part.name, l, plan)
					}
				}
				for _, w := range part.want {
					if !strings.Contains(plan, w) {
						t.Errorf("%s, %s, %s: plan lacks %q:\n%s", tt.name, stats, part.name, w, plan)
					}
				}
			}
		}
	}
}
