package sqldb

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callvault/callvault"
)

// visible returns the fixture's recordings (n1, n2, s1, u1) that ctx finds
// by id, and those it finds by searching, as "n1 n2 s1 u1" subsets.
func (f *grantFixture) visible(t *testing.T, ctx context.Context) (byID, search string) {
	t.Helper()
	name := map[string]string{f.n1: "n1", f.n2: "n2", f.s1: "s1", f.u1: "u1"}
	var ids []string
	for _, id := range []string{f.n1, f.n2, f.s1, f.u1} {
		_, err := f.rs.FindRecordingByID(ctx, id)
		switch callvault.ErrorCode(err) {
		case "":
			ids = append(ids, name[id])
		case callvault.ENOTFOUND:
		default:
			t.Fatalf("FindRecordingByID(%s): %v", name[id], err)
		}
	}
	var found []string
	rs, total, _, err := f.rs.FindRecordings(ctx, callvault.RecordingFilter{})
	if callvault.ErrorCode(err) != callvault.EFORBIDDEN {
		if err != nil {
			t.Fatalf("FindRecordings: %v", err)
		}
		for _, r := range rs {
			found = append(found, name[r.ID])
		}
		slices.Sort(found)
		if total != len(rs) {
			t.Errorf("FindRecordings: total %d for %d recordings", total, len(rs))
		}
	}
	return strings.Join(ids, " "), strings.Join(found, " ")
}

// TestScope_grants: a listener sees exactly the recordings of their active
// grants, from From (inclusive) to Until (exclusive) to the millisecond of
// the DB's clock, and not once revoked; a principal sees their academies
// plus what they were granted elsewhere.
func TestScope_grants(t *testing.T) {
	f := newGrantFixture(t)
	lis1, pnorth := f.as("lis1"), f.as("pnorth")

	check := func(when string, ctx context.Context, who, want string) {
		t.Helper()
		byID, search := f.visible(t, ctx)
		wantSearch := want
		if strings.HasPrefix(who, "lis") {
			wantSearch = "" // listeners may not search: they open what is shared with them
		}
		if byID != want || search != wantSearch {
			t.Errorf("%s, %s at %v: FindRecordingByID sees %q, FindRecordings %q; want %q",
				when, who, f.clock.Now().Format("15:04:05.000"), byID, search, want)
		}
	}
	check("no grants", lis1, "lis1", "")
	check("no grants", pnorth, "pnorth", "n1 n2")

	f.clock.Add(1500 * time.Millisecond) // the grant starts at t0+1s
	r := f.validRequest([]string{f.n1, f.s1}, "lis1", "pnorth")
	r.Duration = 2 * time.Hour
	if err := f.gs.CreateListenRequest(f.as("admin"), r); err != nil {
		t.Fatal(err)
	}
	check("requested", lis1, "lis1", "")
	grants := f.approve(t, "ceo", r)
	from, until := grants[0].From, grants[0].Until
	if !from.Equal(t0.Add(time.Second)) {
		t.Fatalf("grant from %v, want %v", from, t0.Add(time.Second))
	}
	// Also granted earlier but revoked, and granted u1 for another user.
	other := f.approve(t, "ceo", f.request(t, "admin", []string{f.u1}, "lis2"))[0]
	revoked := f.approve(t, "ceo", f.request(t, "admin", []string{f.n2}, "lis1"))[0]
	if _, err := f.gs.RevokeGrant(f.as("admin"), revoked.ID, "Granted in error."); err != nil {
		t.Fatal(err)
	}

	at := func(t time.Time) { f.clock.Add(t.Sub(f.clock.Now())) }
	for _, tt := range []struct {
		when      string
		at        time.Time
		lis1, pno string
	}{
		{"a millisecond before From", from.Add(-time.Millisecond), "", "n1 n2"},
		{"at From", from, "n1 s1", "n1 n2 s1"},
		{"during", from.Add(time.Hour), "n1 s1", "n1 n2 s1"},
		{"a millisecond before Until", until.Add(-time.Millisecond), "n1 s1", "n1 n2 s1"},
		{"a microsecond before Until", until.Add(-time.Microsecond), "n1 s1", "n1 n2 s1"},
		{"at Until", until, "", "n1 n2"},
		{"after Until", until.Add(time.Hour), "", "n1 n2"},
	} {
		at(tt.at)
		check(tt.when, lis1, "lis1", tt.lis1)
		check(tt.when, pnorth, "pnorth", tt.pno)
	}
	at(from.Add(time.Minute))
	check("other's grant", f.as("lis2"), "lis2", "u1")
	check("grants of others", f.as("psouth"), "psouth", "s1")

	// Revoked: hidden again at once, for the listener and the principal.
	for _, g := range grants {
		if _, err := f.gs.RevokeGrant(f.as("ceo"), g.ID, "Complaint withdrawn."); err != nil {
			t.Fatal(err)
		}
	}
	check("revoked", lis1, "lis1", "")
	check("revoked", pnorth, "pnorth", "n1 n2")
	check("other's grant, after revocations", f.as("lis2"), "lis2", "u1")
	if other.Until.Before(f.clock.Now()) {
		t.Fatal("fixture: other grant expired")
	}

	// Search filters still apply to granted recordings.
	f.approve(t, "ceo", f.request(t, "admin", []string{f.s1, f.u1}, "pnorth"))
	for _, tt := range []struct {
		f    callvault.RecordingFilter
		want int
	}{
		{callvault.RecordingFilter{}, 4},
		{callvault.RecordingFilter{AcademyID: f.south.ID}, 1},
		{callvault.RecordingFilter{Number: "71838750"}, 0},
		{callvault.RecordingFilter{Number: "+447700900123"}, 4},
		{callvault.RecordingFilter{Extension: "2001", AcademyID: f.south.ID}, 1},
		{callvault.RecordingFilter{From: t0.Add(-150 * time.Minute), To: t0}, 2}, // n1, n2 (1 h and 2 h before t0)
	} {
		rs, total, _, err := f.rs.FindRecordings(pnorth, tt.f)
		if err != nil || len(rs) != tt.want || total != tt.want {
			t.Errorf("FindRecordings(pnorth with grants, %+v) = %d (total %d), %v; want %d", tt.f, len(rs), total, err, tt.want)
		}
	}
}

// TestAddScope checks the conditions addScope writes.
func TestAddScope(t *testing.T) {
	now := time.UnixMilli(1_772_442_000_123).Add(999 * time.Microsecond)
	tests := []struct {
		scope callvault.Scope
		cond  string
		args  []any
	}{
		{callvault.Scope{All: true}, "", nil},
		{callvault.Scope{All: true, GrantedTo: 7}, "", nil},
		{callvault.Scope{AcademyIDs: []int64{1, 2}}, " WHERE r.academy_id IN (?, ?)", []any{int64(1), int64(2)}},
		{callvault.Scope{}, " WHERE 1 = 0", nil},
		{callvault.Scope{GrantedTo: 7}, " WHERE " + grantedRecordings, []any{int64(7), int64(1_772_442_000_123), int64(1_772_442_000_123)}},
		{callvault.Scope{AcademyIDs: []int64{3}, GrantedTo: 7}, " WHERE (r.academy_id IN (?) OR " + grantedRecordings + ")",
			[]any{int64(3), int64(7), int64(1_772_442_000_123), int64(1_772_442_000_123)}},
	}
	for _, tt := range tests {
		var w where
		addScope(&w, tt.scope, now)
		if w.String() != tt.cond || fmt.Sprint(w.args) != fmt.Sprint(tt.args) {
			t.Errorf("addScope(%+v) = %q %v, want %q %v", tt.scope, w.String(), w.args, tt.cond, tt.args)
		}
	}
	if _, err := buildSearch(callvault.RecordingFilter{}, callvault.Scope{GrantedTo: 7}); callvault.ErrorCode(err) != callvault.EINTERNAL {
		t.Errorf("buildSearch(scope with grants) = %v, want EINTERNAL (the time is needed)", err)
	}
}

// TestScopePlan: with grants in the scope, a principal's number searches
// keep the plans of TestSearchPlan (participants index, recordings by id),
// a listener's search reads only their granted recordings (by id), and
// FindRecordingByID stays a primary-key lookup. Nothing scans a table.
func TestScopePlan(t *testing.T) {
	f := newGrantFixture(t)
	var rs []*callvault.Recording
	for i := range 3000 {
		academy := []int64{f.north.ID, f.south.ID}[i%2]
		rs = append(rs, newRecording(academy, 0, fmt.Sprint("p", i), t0.Add(-time.Duration(i)*13*time.Minute),
			fmt.Sprintf("+4477009%05d", i%700), fmt.Sprint(2000+i%50)))
	}
	insertRecordings(t, f.db, rs...)
	for i := range 30 {
		r := f.request(t, "admin", []string{rs[i*7].ID, rs[i*7+1].ID}, []string{"lis1", "pnorth", "lis2"}[i%3])
		f.approve(t, "ceo", r)
	}

	from := t0.AddDate(0, 0, -30)
	principal := callvault.Scope{AcademyIDs: []int64{f.north.ID}, GrantedTo: f.users["pnorth"].ID}
	listener := callvault.Scope{GrantedTo: f.users["lis1"].ID}
	const (
		suffixIndex = "SEARCH p USING COVERING INDEX participants_number (number_rev>? AND number_rev<?)"
		byID        = "SEARCH r USING INDEX sqlite_autoindex_recordings_1 (id=?)"
		grants      = "SEARCH g USING INDEX grants_listener (listener_id=? AND until_ms>?)"
		grantRecs   = "SEARCH gr USING COVERING INDEX grant_recordings_grant (grant_id=?)"
	)
	tests := []struct {
		name        string
		f           callvault.RecordingFilter
		scope       callvault.Scope
		page, count []string
	}{
		{"suffix+30 days, principal", callvault.RecordingFilter{Number: "71838750", From: from, To: t0}, principal,
			[]string{suffixIndex, byID, grants, grantRecs}, []string{suffixIndex, byID, grants, grantRecs}},
		{"full number+30 days, principal", callvault.RecordingFilter{Number: "+447700900123", From: from, To: t0}, principal,
			[]string{"SEARCH p USING COVERING INDEX participants_number (number_rev=? AND started_at>? AND started_at<?)", byID, grants},
			[]string{"SEARCH p USING COVERING INDEX participants_number (number_rev=? AND started_at>? AND started_at<?)", byID, grants}},
		{"extension+30 days, principal", callvault.RecordingFilter{Extension: "2001", From: from, To: t0}, principal,
			[]string{"SEARCH p USING COVERING INDEX participants_extension (extension=? AND started_at>? AND started_at<?)", byID},
			[]string{"SEARCH p USING COVERING INDEX participants_extension (extension=? AND started_at>? AND started_at<?)", byID}},
		{"30 days, principal", callvault.RecordingFilter{From: from, To: t0}, principal, []string{grants}, []string{grants}},
		{"everything, principal", callvault.RecordingFilter{}, principal, []string{grants}, []string{grants}},
		{"everything, listener", callvault.RecordingFilter{}, listener,
			[]string{"SEARCH r USING INDEX sqlite_autoindex_recordings_1 (id=?)", grants, grantRecs},
			[]string{"SEARCH r USING COVERING INDEX sqlite_autoindex_recordings_1 (id=?)", grants, grantRecs}},
	}
	for _, stats := range []string{"no statistics", "analyzed"} {
		if stats == "analyzed" {
			if _, err := f.db.writer.Exec("ANALYZE"); err != nil {
				t.Fatal(err)
			}
		}
		for _, tt := range tests {
			q, err := buildSearchAt(tt.f, tt.scope, t0)
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
				plan := explain(t, f.db, part.sql, part.args...)
				t.Logf("%s, %s, %s:\n%s\n%s", tt.name, stats, part.name, part.sql, plan)
				for _, line := range strings.Split(plan, "\n") {
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
		// FindRecordingByID.
		for _, scope := range []callvault.Scope{principal, listener} {
			w := where{}
			w.add("r.id = ?", rs[0].ID)
			addScope(&w, scope, t0)
			plan := explain(t, f.db, `SELECT `+recordingColumns+` FROM recordings r`+w.String(), w.args...)
			t.Logf("FindRecordingByID, %+v, %s:\n%s", scope, stats, plan)
			for _, want := range []string{byID, grants, grantRecs} {
				if !strings.Contains(plan, want) {
					t.Errorf("FindRecordingByID, %+v, %s: plan lacks %q:\n%s", scope, stats, want, plan)
				}
			}
			noFullScan(t, "FindRecordingByID", plan)
		}
	}
}
