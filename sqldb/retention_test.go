package sqldb

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callvault/callvault"
)

// The categories of the retention tests: a safeguarding line recognised by
// its number, a wellbeing line recognised by its extensions.
const (
	safeguardingNumber = "+441632960505"
	wellbeingExtension = "2905"
)

// createCategories adds safeguarding (+441632960500-509) and wellbeing
// (extensions 2900-2909).
func createCategories(t testing.TB, db *DB) (safeguarding, wellbeing *callvault.Category) {
	t.Helper()
	s := NewRetentionService(db)
	safeguarding = &callvault.Category{Slug: "safeguarding", Name: "Safeguarding line",
		Numbers: []callvault.Range{rng("+441632960500-+441632960509")}}
	wellbeing = &callvault.Category{Slug: "wellbeing", Name: "Wellbeing line",
		Extensions: []callvault.Range{rng("2900-2909")}}
	for _, c := range []*callvault.Category{safeguarding, wellbeing} {
		if err := s.CreateCategory(sysCtx(), c); err != nil {
			t.Fatalf("CreateCategory(%q): %v", c.Slug, err)
		}
	}
	return safeguarding, wellbeing
}

// categorised returns a recording of academy whose participants put it in
// category ("" for none) at ingest; Category itself is left empty.
func categorised(academyID int64, category, ref string, started time.Time) *callvault.Recording {
	r := newRecording(academyID, 0, ref, started, "+447700900123", "2001")
	switch category {
	case "safeguarding":
		r.Participants[1].Number = safeguardingNumber
	case "wellbeing":
		r.Participants[1].Extension = wellbeingExtension
	case "":
	default:
		panic("no category " + category)
	}
	return r
}

// storedUntils returns every recording's stored retain_until (unix ms).
func storedUntils(t testing.TB, db *DB) map[string]int64 {
	t.Helper()
	rows, err := db.reader.Query(`SELECT id, COALESCE(retain_until, 0) FROM recordings`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	m := map[string]int64{}
	for rows.Next() {
		var (
			id    string
			until int64
		)
		if err := rows.Scan(&id, &until); err != nil {
			t.Fatal(err)
		}
		m[id] = until
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

// impactOf is what a rule change did, read off the stored retain-untils
// before and after it.
func impactOf(before, after map[string]int64, now time.Time) callvault.RetentionImpact {
	var im callvault.RetentionImpact
	for id, b := range before {
		a := after[id]
		switch {
		case a == b:
			continue
		case a > b:
			im.Later++
		default:
			im.Earlier++
			if a <= now.UnixMilli() {
				im.DueNow++
			}
		}
		im.Changed++
	}
	return im
}

// retentionState is everything a refused change must leave alone.
type retentionState struct {
	policy callvault.RetentionPolicy
	untils map[string]int64
	audit  int
}

func snapshotRetention(t testing.TB, db *DB) retentionState {
	t.Helper()
	p, err := NewRetentionService(db).RetentionPolicy(sysCtx())
	if err != nil {
		t.Fatalf("RetentionPolicy: %v", err)
	}
	return retentionState{p, storedUntils(t, db), countRows(t, db, `SELECT COUNT(*) FROM audit_events`)}
}

func (s retentionState) equal(o retentionState) bool {
	return reflect.DeepEqual(s.policy, o.policy) && reflect.DeepEqual(s.untils, o.untils) && s.audit == o.audit
}

func dpoCtx() context.Context { return userCtx(callvault.RoleDPO) }

func TestRetention_defaultRule(t *testing.T) {
	db, _ := openTestDB(t)
	p, err := NewRetentionService(db).RetentionPolicy(sysCtx())
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 1 || !p[0].IsDefault() || p[0].Months != 12 ||
		p[0].UpdatedBy != "install" || p[0].UpdatedAt.IsZero() {
		t.Errorf("RetentionPolicy of a new database = %+v, want only the trust default of 12 months", p)
	}
	if got := p.RuleFor(1, "anything"); !got.IsDefault() || got.Months != 12 {
		t.Errorf("RuleFor(1, anything) = %+v, want the default", got)
	}
	// The database refuses what Validate refuses, whatever the path.
	for _, months := range []int{0, -1, 121} {
		_, err := db.writer.Exec(`UPDATE retention_rules SET months = ? WHERE academy_id = 0 AND category = ''`, months)
		wantCode(t, fmt.Sprintf("UPDATE retention_rules SET months = %d", months), dbError(err), callvault.EINVALID)
	}
}

// retentionFixture stores, for each of north, south and unassigned, each
// category (none, safeguarding, wellbeing) and each age (2, 10 and 20
// months before t0), one recording.
type retentionFixture struct {
	db           *DB
	clock        *clock
	rs           *RetentionService
	north, south *callvault.Academy
	slugs        map[int64]string
	recs         []*callvault.Recording
}

var fixtureAges = []int{2, 10, 20}

func newRetentionFixture(t testing.TB) *retentionFixture {
	t.Helper()
	db, c := openTestDB(t)
	f := &retentionFixture{db: db, clock: c, rs: NewRetentionService(db)}
	f.north, f.south = createAcademies(t, db)
	createCategories(t, db)
	un := unassignedID(t, db)
	f.slugs = map[int64]string{f.north.ID: "north", f.south.ID: "south", un: "unassigned"}
	for _, a := range []int64{f.north.ID, f.south.ID, un} {
		for _, cat := range []string{"", "safeguarding", "wellbeing"} {
			for i, age := range fixtureAges {
				started := t0.AddDate(0, -age, 0).Add(time.Duration(i*37) * time.Minute)
				f.recs = append(f.recs, categorised(a, cat, fmt.Sprintf("%d/%s/%d", a, cat, age), started))
			}
		}
	}
	insertRecordings(t, db, f.recs...)
	return f
}

// key names an (academy, category) pair as "north/safeguarding".
func (f *retentionFixture) key(r *callvault.Recording) string {
	return f.slugs[r.AcademyID] + "/" + r.Category
}

// wantUntils returns the retain-until of every recording under months,
// keyed by f.key.
func (f *retentionFixture) wantUntils(t testing.TB, months map[string]int) map[string]int64 {
	t.Helper()
	m := map[string]int64{}
	for _, r := range f.recs {
		n, ok := months[f.key(r)]
		if !ok {
			t.Fatalf("no expected months for %s", f.key(r))
		}
		m[r.ID] = callvault.RetainUntil(r.StartedAt, n).UnixMilli()
	}
	return m
}

func TestRetention_ingestCategoriesOfFixture(t *testing.T) {
	f := newRetentionFixture(t)
	for _, r := range f.recs {
		got, err := NewRecordingService(f.db).FindRecordingByID(sysCtx(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := ""
		switch {
		case r.Participants[1].Number == safeguardingNumber:
			want = "safeguarding"
		case r.Participants[1].Extension == wellbeingExtension:
			want = "wellbeing"
		}
		if got.Category != want || r.Category != want {
			t.Errorf("recording %s: Category %q stored, %q set; want %q", r.SourceRef, got.Category, r.Category, want)
		}
	}
}

// TestRetention_rules walks the policy through overrides of every kind and
// back, checking after each change every stored retain-until, the impact
// reported, and that the preview before it reported the same and changed
// nothing.
func TestRetention_rules(t *testing.T) {
	f := newRetentionFixture(t)
	months := map[string]int{}
	for _, a := range []string{"north", "south", "unassigned"} {
		for _, c := range []string{"", "safeguarding", "wellbeing"} {
			months[a+"/"+c] = 12
		}
	}
	if got := storedUntils(t, f.db); !reflect.DeepEqual(got, f.wantUntils(t, months)) {
		t.Fatalf("retain-until at ingest differs from 12 months for some recordings")
	}
	type step struct {
		name     string
		academy  int64
		category string
		months   int // 0: delete the rule
		want     map[string]int
		dueNow   int // -1: whatever the model says
	}
	N, S := f.north.ID, f.south.ID
	steps := []step{
		{"academy north 24", N, "", 24, map[string]int{"north/": 24, "north/safeguarding": 24, "north/wellbeing": 24}, 0},
		{"category safeguarding 36", 0, "safeguarding", 36,
			map[string]int{"north/safeguarding": 36, "south/safeguarding": 36, "unassigned/safeguarding": 36}, 0},
		// Two of three north safeguarding calls are older than 6 months.
		{"north safeguarding 6", N, "safeguarding", 6, map[string]int{"north/safeguarding": 6}, 2},
		{"default 18", 0, "", 18, map[string]int{"south/": 18, "south/wellbeing": 18, "unassigned/": 18, "unassigned/wellbeing": 18}, 0},
		{"south wellbeing 1", S, "wellbeing", 1, map[string]int{"south/wellbeing": 1}, 3},
		{"same again", S, "wellbeing", 1, map[string]int{}, 0},
		// The 20-month-old ones are past 18 months.
		{"delete north", N, "", 0, map[string]int{"north/": 18, "north/wellbeing": 18}, 2},
		{"delete safeguarding", 0, "safeguarding", 0, map[string]int{"south/safeguarding": 18, "unassigned/safeguarding": 18}, -1},
		{"delete north safeguarding", N, "safeguarding", 0, map[string]int{"north/safeguarding": 18}, 0},
		{"delete south wellbeing", S, "wellbeing", 0, map[string]int{"south/wellbeing": 18}, 0},
		{"default 12", 0, "", 12, map[string]int{
			"north/": 12, "north/safeguarding": 12, "north/wellbeing": 12,
			"south/": 12, "south/safeguarding": 12, "south/wellbeing": 12,
			"unassigned/": 12, "unassigned/safeguarding": 12, "unassigned/wellbeing": 12}, -1},
	}
	initial := storedUntils(t, f.db)
	for _, st := range steps {
		f.clock.Add(time.Minute)
		for k, v := range st.want {
			months[k] = v
		}
		rule := &callvault.RetentionRule{AcademyID: st.academy, Category: st.category, Months: st.months}
		remove := st.months == 0

		before := snapshotRetention(t, f.db)
		preview, err := f.rs.PreviewRetentionRule(dpoCtx(), rule, remove)
		if err != nil {
			t.Fatalf("%s: PreviewRetentionRule: %v", st.name, err)
		}
		if after := snapshotRetention(t, f.db); !after.equal(before) {
			t.Errorf("%s: PreviewRetentionRule changed the database", st.name)
		}

		var impact callvault.RetentionImpact
		if remove {
			impact, err = f.rs.DeleteRetentionRule(dpoCtx(), st.academy, st.category)
		} else {
			impact, err = f.rs.SetRetentionRule(dpoCtx(), rule)
		}
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		after := storedUntils(t, f.db)
		if want := f.wantUntils(t, months); !reflect.DeepEqual(after, want) {
			for _, r := range f.recs {
				if after[r.ID] != want[r.ID] {
					t.Errorf("%s: %s (%s) retain-until %v, want %v (%d months)", st.name, r.SourceRef, f.key(r),
						time.UnixMilli(after[r.ID]).UTC(), time.UnixMilli(want[r.ID]).UTC(), months[f.key(r)])
				}
			}
		}
		model := impactOf(before.untils, after, f.clock.Now())
		if impact != model || preview != impact {
			t.Errorf("%s: impact %+v, preview %+v; the rows say %+v", st.name, impact, preview, model)
		}
		if st.dueNow >= 0 && impact.DueNow != st.dueNow {
			t.Errorf("%s: DueNow %d, want %d", st.name, impact.DueNow, st.dueNow)
		}

		// The stored policy gives every pair the months expected.
		p, err := f.rs.RetentionPolicy(dpoCtx())
		if err != nil {
			t.Fatal(err)
		}
		if !p[0].IsDefault() {
			t.Errorf("%s: policy starts with %+v, want the trust default", st.name, p[0])
		}
		for id, slug := range f.slugs {
			for _, c := range []string{"", "safeguarding", "wellbeing"} {
				if got := p.RuleFor(id, c).Months; got != months[slug+"/"+c] {
					t.Errorf("%s: RuleFor(%s, %q) = %d months, want %d", st.name, slug, c, got, months[slug+"/"+c])
				}
			}
		}
		if !remove {
			r, ok := findRule(p, st.academy, st.category)
			if !ok || r.Months != st.months || r.UpdatedBy != callvault.RoleDPO || !r.UpdatedAt.Equal(f.clock.Now()) {
				t.Errorf("%s: stored rule %+v (found %v), want %d months by dpo at %v", st.name, r, ok, st.months, f.clock.Now())
			}
		} else if _, ok := findRule(p, st.academy, st.category); ok {
			t.Errorf("%s: rule still stored after deletion", st.name)
		}
	}
	if got := storedUntils(t, f.db); !reflect.DeepEqual(got, initial) {
		t.Errorf("retain-until after returning to the initial policy differs from the initial")
	}
}

func TestRetention_refusedChanges(t *testing.T) {
	f := newRetentionFixture(t)
	if _, err := f.rs.SetRetentionRule(dpoCtx(), &callvault.RetentionRule{AcademyID: f.north.ID, Months: 24}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		rule callvault.RetentionRule
		code string
	}{
		{"default 0 months", callvault.RetentionRule{Months: 0}, callvault.EINVALID},
		{"default -1 months", callvault.RetentionRule{Months: -1}, callvault.EINVALID},
		{"default 121 months", callvault.RetentionRule{Months: 121}, callvault.EINVALID},
		{"academy 0 months", callvault.RetentionRule{AcademyID: f.north.ID, Months: 0}, callvault.EINVALID},
		{"academy -1 months", callvault.RetentionRule{AcademyID: f.north.ID, Months: -1}, callvault.EINVALID},
		{"category 121 months", callvault.RetentionRule{Category: "safeguarding", Months: 121}, callvault.EINVALID},
		{"both -1 months", callvault.RetentionRule{AcademyID: f.south.ID, Category: "wellbeing", Months: -1}, callvault.EINVALID},
		{"unknown academy", callvault.RetentionRule{AcademyID: 999, Months: 6}, callvault.EINVALID},
		{"negative academy", callvault.RetentionRule{AcademyID: -1, Months: 6}, callvault.EINVALID},
		{"unknown category", callvault.RetentionRule{Category: "nope", Months: 6}, callvault.EINVALID},
		{"unknown category of academy", callvault.RetentionRule{AcademyID: f.north.ID, Category: "nope", Months: 6}, callvault.EINVALID},
		{"bad category slug", callvault.RetentionRule{Category: "Safe Guarding", Months: 6}, callvault.EINVALID},
	}
	for _, tt := range tests {
		before := snapshotRetention(t, f.db)
		r := tt.rule
		_, err := f.rs.PreviewRetentionRule(dpoCtx(), &r, false)
		wantCode(t, "PreviewRetentionRule("+tt.name+")", err, tt.code)
		r = tt.rule
		_, err = f.rs.SetRetentionRule(dpoCtx(), &r)
		wantCode(t, "SetRetentionRule("+tt.name+")", err, tt.code)
		if !snapshotRetention(t, f.db).equal(before) {
			t.Errorf("SetRetentionRule(%s) changed the policy, a retain-until or the audit trail", tt.name)
		}
	}
	// The limits themselves are accepted.
	for _, m := range []int{callvault.MinRetentionMonths, callvault.MaxRetentionMonths} {
		if _, err := f.rs.SetRetentionRule(dpoCtx(), &callvault.RetentionRule{Category: "wellbeing", Months: m}); err != nil {
			t.Errorf("SetRetentionRule(wellbeing, %d months): %v", m, err)
		}
	}

	deletes := []struct {
		name     string
		academy  int64
		category string
		code     string
	}{
		{"the default", 0, "", callvault.EINVALID},
		{"an absent academy rule", f.south.ID, "", callvault.ENOTFOUND},
		{"an absent category rule", 0, "safeguarding", callvault.ENOTFOUND},
		{"an unknown academy", 999, "", callvault.EINVALID},
		{"an unknown category", 0, "nope", callvault.EINVALID},
	}
	for _, tt := range deletes {
		before := snapshotRetention(t, f.db)
		_, err := f.rs.PreviewRetentionRule(dpoCtx(), &callvault.RetentionRule{AcademyID: tt.academy, Category: tt.category}, true)
		wantCode(t, "PreviewRetentionRule(remove "+tt.name+")", err, tt.code)
		_, err = f.rs.DeleteRetentionRule(dpoCtx(), tt.academy, tt.category)
		wantCode(t, "DeleteRetentionRule("+tt.name+")", err, tt.code)
		if !snapshotRetention(t, f.db).equal(before) {
			t.Errorf("DeleteRetentionRule(%s) changed the policy, a retain-until or the audit trail", tt.name)
		}
	}
}

func TestRetention_permissions(t *testing.T) {
	f := newRetentionFixture(t)
	disabled := callvault.NewContextWithActor(context.Background(),
		&callvault.Actor{User: &callvault.User{ID: 5, Login: "old", Role: callvault.RoleDPO, Disabled: true}})
	source := callvault.NewContextWithActor(context.Background(), &callvault.Actor{Source: &callvault.Source{ID: 1}})
	tests := []struct {
		name         string
		ctx          context.Context
		view, change bool
	}{
		{"system", sysCtx(), true, true},
		{"admin", userCtx(callvault.RoleAdmin), true, true},
		{"dpo", userCtx(callvault.RoleDPO), true, true},
		{"ceo", userCtx(callvault.RoleCEO), true, false},
		{"principal", userCtx(callvault.RolePrincipal, f.north.ID), true, false},
		{"listener", userCtx(callvault.RoleListener), false, false},
		{"disabled dpo", disabled, false, false},
		{"source", source, false, false},
		{"nobody", context.Background(), false, false},
	}
	code := func(ok bool) string {
		if ok {
			return ""
		}
		return callvault.EFORBIDDEN
	}
	for i, tt := range tests {
		_, err := f.rs.RetentionPolicy(tt.ctx)
		wantCode(t, "RetentionPolicy("+tt.name+")", err, code(tt.view))
		_, err = f.rs.FindCategories(tt.ctx)
		wantCode(t, "FindCategories("+tt.name+")", err, code(tt.view))
		_, err = f.rs.UpcomingDeletions(tt.ctx, t0, t0.AddDate(1, 0, 0))
		wantCode(t, "UpcomingDeletions("+tt.name+")", err, code(tt.view))

		before := snapshotRetention(t, f.db)
		months := 13 + i // a change every time it is allowed
		_, err = f.rs.PreviewRetentionRule(tt.ctx, &callvault.RetentionRule{AcademyID: f.north.ID, Months: months}, false)
		wantCode(t, "PreviewRetentionRule("+tt.name+")", err, code(tt.change))
		_, err = f.rs.SetRetentionRule(tt.ctx, &callvault.RetentionRule{AcademyID: f.north.ID, Months: months})
		wantCode(t, "SetRetentionRule("+tt.name+")", err, code(tt.change))
		if changed := !snapshotRetention(t, f.db).equal(before); changed != tt.change {
			t.Errorf("SetRetentionRule(%s) changed the database: %v, want %v", tt.name, changed, tt.change)
		}
		if tt.change {
			if _, err := f.rs.DeleteRetentionRule(tt.ctx, f.north.ID, ""); err != nil {
				t.Errorf("DeleteRetentionRule(%s): %v", tt.name, err)
			}
		} else {
			// Deleting an existing rule is refused too.
			if _, err := f.rs.SetRetentionRule(sysCtx(), &callvault.RetentionRule{AcademyID: f.south.ID, Months: 6}); err != nil {
				t.Fatal(err)
			}
			_, err = f.rs.DeleteRetentionRule(tt.ctx, f.south.ID, "")
			wantCode(t, "DeleteRetentionRule("+tt.name+")", err, callvault.EFORBIDDEN)
			if _, ok := findRule(snapshotRetention(t, f.db).policy, f.south.ID, ""); !ok {
				t.Errorf("DeleteRetentionRule(%s) removed the rule", tt.name)
			}
			if _, err := f.rs.DeleteRetentionRule(sysCtx(), f.south.ID, ""); err != nil {
				t.Fatal(err)
			}
		}
		c := &callvault.Category{Slug: fmt.Sprintf("cat-%d", i), Name: "Line", Extensions: []callvault.Range{rng(fmt.Sprintf("%d", 7000+i))}}
		wantCode(t, "CreateCategory("+tt.name+")", f.rs.CreateCategory(tt.ctx, c), code(tt.change))
	}
}

// TestRetention_audit: a change describes itself in the pending entry, which
// is stored in its transaction; if the entry cannot be written, nothing
// changes.
func TestRetention_audit(t *testing.T) {
	f := newRetentionFixture(t)
	store := NewAuditStore(f.db)
	pending := func(action string) (context.Context, *callvault.PendingAudit) {
		ctx := dpoCtx()
		e := callvault.AuditEvent{Action: action}
		e.SetActor(callvault.ActorFromContext(ctx))
		p := callvault.NewPendingAudit(e)
		return callvault.WithPendingAudit(ctx, p), p
	}
	type change struct {
		action        string
		academy       int64
		category      string
		months        int // 0: delete
		target        string
		before, after string
	}
	N := f.north.ID
	changes := []change{
		{"retention.set", N, "", 6, "academy:" + strconv.FormatInt(N, 10), "", "academy north: 6 months"},
		{"retention.set", N, "", 1, "academy:" + strconv.FormatInt(N, 10), "academy north: 6 months", "academy north: 1 month"},
		{"retention.set", 0, "", 24, "default", "trust default: 12 months", "trust default: 24 months"},
		{"retention.set", N, "safeguarding", 36, "academy:" + strconv.FormatInt(N, 10) + "/category:safeguarding", "",
			"academy north, category safeguarding: 36 months"},
		{"retention.delete", N, "", 0, "academy:" + strconv.FormatInt(N, 10), "academy north: 1 month", "removed"},
	}
	var written []callvault.AuditEvent
	for _, c := range changes {
		f.clock.Add(time.Second)
		before := storedUntils(t, f.db)
		ctx, p := pending(c.action)
		var (
			impact callvault.RetentionImpact
			err    error
		)
		if c.months == 0 {
			impact, err = f.rs.DeleteRetentionRule(ctx, c.academy, c.category)
		} else {
			impact, err = f.rs.SetRetentionRule(ctx, &callvault.RetentionRule{AcademyID: c.academy, Category: c.category, Months: c.months})
		}
		if err != nil {
			t.Fatalf("%s %s: %v", c.action, c.target, err)
		}
		if impact != impactOf(before, storedUntils(t, f.db), f.clock.Now()) || impact.Changed == 0 {
			t.Errorf("%s %s: impact %+v does not match the rows (or changed nothing)", c.action, c.target, impact)
		}
		done, e := p.Done()
		want := map[string]string{"before": c.before, "after": c.after, "changed": strconv.Itoa(impact.Changed),
			"earlier": strconv.Itoa(impact.Earlier), "later": strconv.Itoa(impact.Later), "due_now": strconv.Itoa(impact.DueNow)}
		if !done || e.TargetType != "retention_rule" || e.TargetID != c.target || e.AcademyID != c.academy ||
			!reflect.DeepEqual(e.Details, want) || e.ActorRole != callvault.RoleDPO || !e.Time.Equal(f.clock.Now()) {
			t.Errorf("%s %s: audit entry done=%v %+v\nwant target %s, details %v", c.action, c.target, done, e, c.target, want)
		}
		written = append(written, e)
	}
	stored := walkAll(t, store)
	if len(stored) != len(written) {
		t.Fatalf("%d audit entries stored, want %d", len(stored), len(written))
	}
	for i, e := range stored {
		if e.Action != written[i].Action || e.TargetID != written[i].TargetID || !reflect.DeepEqual(e.Details, written[i].Details) {
			t.Errorf("stored entry %d = %+v, want %+v", i, e, written[i])
		}
	}
	verifyAudit(t, store)

	// An entry that cannot be written undoes the change.
	before := snapshotRetention(t, f.db)
	bad := callvault.NewPendingAudit(callvault.AuditEvent{}) // no action: invalid
	_, err := f.rs.SetRetentionRule(callvault.WithPendingAudit(dpoCtx(), bad), &callvault.RetentionRule{Months: 3})
	if err == nil {
		t.Errorf("SetRetentionRule with an unwritable audit entry succeeded")
	}
	if !snapshotRetention(t, f.db).equal(before) {
		t.Errorf("SetRetentionRule with an unwritable audit entry changed the database")
	}
}

func TestRetention_categories(t *testing.T) {
	db, _ := openTestDB(t)
	s := NewRetentionService(db)
	safeguarding, wellbeing := createCategories(t, db)
	if safeguarding.ID == 0 || !safeguarding.CreatedAt.Equal(t0) {
		t.Errorf("CreateCategory set ID %d, CreatedAt %v", safeguarding.ID, safeguarding.CreatedAt)
	}
	cs, err := s.FindCategories(userCtx(callvault.RoleCEO))
	if err != nil {
		t.Fatal(err)
	}
	// Stored without nil slices.
	safeguarding.Extensions, wellbeing.Numbers = []callvault.Range{}, []callvault.Range{}
	if want := []*callvault.Category{safeguarding, wellbeing}; !reflect.DeepEqual(cs, want) {
		t.Errorf("FindCategories = %+v, want %+v", cs, want)
	}
	tests := []struct {
		name string
		c    callvault.Category
		code string
	}{
		{"taken slug", callvault.Category{Slug: "wellbeing", Name: "x", Extensions: []callvault.Range{rng("4000")}}, callvault.ECONFLICT},
		{"bad slug", callvault.Category{Slug: "Well being", Name: "x", Extensions: []callvault.Range{rng("4000")}}, callvault.EINVALID},
		{"no name", callvault.Category{Slug: "x1", Name: "  ", Extensions: []callvault.Range{rng("4000")}}, callvault.EINVALID},
		{"no ranges", callvault.Category{Slug: "x1", Name: "x"}, callvault.EINVALID},
		{"not E.164", callvault.Category{Slug: "x1", Name: "x", Numbers: []callvault.Range{rng("01632960600")}}, callvault.EINVALID},
		{"extension not digits", callvault.Category{Slug: "x1", Name: "x", Extensions: []callvault.Range{rng("ab")}}, callvault.EINVALID},
		{"overlaps a number range", callvault.Category{Slug: "x1", Name: "x",
			Numbers: []callvault.Range{rng("+441632960509-+441632960519")}}, callvault.EINVALID},
		{"overlaps an extension range", callvault.Category{Slug: "x1", Name: "x", Extensions: []callvault.Range{rng("2909")}}, callvault.EINVALID},
		{"overlaps itself", callvault.Category{Slug: "x1", Name: "x", Extensions: []callvault.Range{rng("4000-4010"), rng("4005")}}, callvault.EINVALID},
		{"next to both", callvault.Category{Slug: "x1", Name: "x",
			Numbers: []callvault.Range{rng("+441632960510")}, Extensions: []callvault.Range{rng("2910")}}, ""},
	}
	for _, tt := range tests {
		c := tt.c
		wantCode(t, "CreateCategory("+tt.name+")", s.CreateCategory(sysCtx(), &c), tt.code)
	}
	if n := countRows(t, db, `SELECT COUNT(*) FROM categories`); n != 3 {
		t.Errorf("%d categories stored, want 3", n)
	}
}

// TestRetention_ingest: the category and retain-until of a new recording
// come from its participants and the most specific rule.
func TestRetention_ingest(t *testing.T) {
	db, _ := openTestDB(t)
	north, south := createAcademies(t, db)
	createCategories(t, db)
	s, rs := NewRetentionService(db), NewRecordingService(db)
	for _, r := range []callvault.RetentionRule{
		{AcademyID: north.ID, Months: 24},
		{Category: "safeguarding", Months: 36},
		{AcademyID: north.ID, Category: "safeguarding", Months: 6},
		{Category: "wellbeing", Months: 1},
	} {
		if _, err := s.SetRetentionRule(sysCtx(), &r); err != nil {
			t.Fatal(err)
		}
	}
	started := t0.Add(-time.Hour)
	external := func(number, ext string) callvault.Participant {
		return callvault.Participant{Number: number, Extension: ext, Side: callvault.SideExternal}
	}
	staff := func(number, ext string) callvault.Participant {
		return callvault.Participant{Number: number, Extension: ext, Side: callvault.SideStaff}
	}
	tests := []struct {
		name         string
		academy      int64
		category     string // set by the caller
		participants []callvault.Participant
		wantCategory string
		wantMonths   int
	}{
		{"plain north", north.ID, "", []callvault.Participant{external("+447700900123", ""), staff("+441632960001", "2001")}, "", 24},
		{"plain south", south.ID, "", []callvault.Participant{external("+447700900123", ""), staff("+441632961001", "3001")}, "", 12},
		{"safeguarding number, north", north.ID, "", []callvault.Participant{external("+447700900123", ""), staff(safeguardingNumber, "2001")}, "safeguarding", 6},
		{"safeguarding number, south", south.ID, "", []callvault.Participant{external("+447700900123", ""), staff(safeguardingNumber, "")}, "safeguarding", 36},
		{"safeguarding as the caller", south.ID, "", []callvault.Participant{external(safeguardingNumber, "")}, "safeguarding", 36},
		{"wellbeing extension", south.ID, "", []callvault.Participant{external("+447700900123", ""), staff("", wellbeingExtension)}, "wellbeing", 1},
		{"number beats extension", south.ID, "", []callvault.Participant{staff("", wellbeingExtension), external(safeguardingNumber, "")}, "safeguarding", 36},
		{"edge of range", south.ID, "", []callvault.Participant{external("+441632960510", "2910")}, "", 12},
		{"no participants", north.ID, "", nil, "", 24},
		{"named by the source", north.ID, "wellbeing", []callvault.Participant{external("+447700900123", "")}, "wellbeing", 1},
		{"named by the source, not as the numbers say", north.ID, "wellbeing",
			[]callvault.Participant{external(safeguardingNumber, "")}, "wellbeing", 1},
	}
	for i, tt := range tests {
		r := newRecording(tt.academy, 0, fmt.Sprint("ingest-", i), started, "", "")
		r.Participants, r.Category = tt.participants, tt.category
		r.RetainUntil = started.AddDate(5, 0, 0) // whatever the caller says is replaced
		if err := rs.CreateRecording(sysCtx(), r); err != nil {
			t.Errorf("CreateRecording(%s): %v", tt.name, err)
			continue
		}
		want := callvault.RetainUntil(started, tt.wantMonths)
		got, err := rs.FindRecordingByID(sysCtx(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Category != tt.wantCategory || got.Category != tt.wantCategory || !r.RetainUntil.Equal(want) || !got.RetainUntil.Equal(want) {
			t.Errorf("CreateRecording(%s): category %q (stored %q), retain-until %v (stored %v); want %q, %v (%d months)",
				tt.name, r.Category, got.Category, r.RetainUntil, got.RetainUntil, tt.wantCategory, want, tt.wantMonths)
		}
	}

	// A category the trust does not have is refused, and nothing stored.
	n := countRows(t, db, `SELECT COUNT(*) FROM recordings`)
	r := newRecording(north.ID, 0, "unknown-category", started, "+447700900123", "2001")
	r.Category = "sports"
	wantCode(t, "CreateRecording(unknown category)", rs.CreateRecording(sysCtx(), r), callvault.EINVALID)
	if got := countRows(t, db, `SELECT COUNT(*) FROM recordings`); got != n {
		t.Errorf("%d recordings after a refused ingest, want %d", got, n)
	}
}

// TestRetention_londonMonths: months are counted on London's calendar. A
// call at 23:30 UTC on 31 March is on 1 April in London (BST), so a month
// later is 1 May in London, 30 April in UTC; counting in UTC would say
// 1 May (31 April rolled over) a day later.
func TestRetention_londonMonths(t *testing.T) {
	db, _ := openTestDB(t)
	north, south := createAcademies(t, db)
	s, rs := NewRetentionService(db), NewRecordingService(db)
	if _, err := s.SetRetentionRule(sysCtx(), &callvault.RetentionRule{AcademyID: north.ID, Months: 1}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		academy int64
		started time.Time
		want    time.Time
	}{
		{"1 month from 31 March 23:30 UTC", north.ID, time.Date(2026, 3, 31, 23, 30, 0, 0, time.UTC),
			time.Date(2026, 5, 1, 0, 30, 0, 0, callvault.London)},
		// 28 March 2027 is BST in London, 28 March 2026 was GMT.
		{"12 months across a moved clock change", south.ID, time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC),
			time.Date(2027, 3, 28, 12, 0, 0, 0, callvault.London)},
		{"sub-millisecond start", south.ID, time.Date(2026, 1, 15, 8, 0, 0, 999_999, time.UTC),
			time.Date(2027, 1, 15, 8, 0, 0, 0, time.UTC)},
	}
	for i, tt := range tests {
		r := newRecording(tt.academy, 0, fmt.Sprint("london-", i), tt.started, "+447700900123", "2001")
		if err := rs.CreateRecording(sysCtx(), r); err != nil {
			t.Fatal(err)
		}
		got, err := rs.FindRecordingByID(sysCtx(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.RetainUntil.Equal(tt.want) || !r.RetainUntil.Equal(tt.want) {
			t.Errorf("%s: retain-until %v (stored %v), want %v", tt.name, r.RetainUntil, got.RetainUntil, tt.want.UTC())
		}
	}
	// Recomputing keeps London months: back to 12 months, then to 1.
	for _, m := range []int{12, 1} {
		if _, err := s.SetRetentionRule(sysCtx(), &callvault.RetentionRule{AcademyID: north.ID, Months: m}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := rs.FindRecordingBySourceRef(sysCtx(), 0, "london-0")
	if err != nil {
		t.Fatal(err)
	}
	if want := tests[0].want; !got.RetainUntil.Equal(want) {
		t.Errorf("after recomputing, retain-until %v, want %v", got.RetainUntil, want.UTC())
	}
}

// TestRetention_recomputeBatches changes more recordings than one batch.
// The rows are made in SQL: ingest one by one would take a while.
func TestRetention_recomputeBatches(t *testing.T) {
	db, c := openTestDB(t)
	north, south := createAcademies(t, db)
	n := recomputeBatch + 7
	if _, err := db.writer.Exec(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
		INSERT INTO recordings (id, academy_id, source_kind, source_ref, started_at, duration_ms, direction, format, codec,
			sample_rate, channels, data_offset, data_size, size, sha256, blob_key, key_epoch, retain_until, state, created_at)
		SELECT printf('r%06d', i), CASE WHEN i % 10 = 0 THEN ? ELSE ? END, 'import', 'ref' || i, ? - i * 3600000, 0, '',
			'wav', 'pcm16', 8000, 1, 44, 0, 44, '', 'key' || i, '2026-03', ? - i, 'stored', ? FROM n`,
		n, south.ID, north.ID, t0.UnixMilli(), t0.UnixMilli(), t0.UnixMilli()); err != nil {
		t.Fatal(err)
	}
	s := NewRetentionService(db)
	before := storedUntils(t, db)
	if len(before) != n {
		t.Fatalf("%d recordings stored, want %d", len(before), n)
	}
	rule := &callvault.RetentionRule{Months: 3}
	preview, err := s.PreviewRetentionRule(sysCtx(), rule, false)
	if err != nil {
		t.Fatal(err)
	}
	impact, err := s.SetRetentionRule(sysCtx(), rule)
	if err != nil {
		t.Fatal(err)
	}
	after := storedUntils(t, db)
	if model := impactOf(before, after, c.Now()); impact != model || preview != impact || impact.Changed != n {
		t.Errorf("impact %+v, preview %+v, rows say %+v; want all %d changed", impact, preview, model, n)
	}
	for i := range n {
		started := time.UnixMilli(t0.UnixMilli() - int64(i)*3600000)
		id := fmt.Sprintf("r%06d", i)
		if want := callvault.RetainUntil(started, 3).UnixMilli(); after[id] != want {
			t.Fatalf("recording %s: retain-until %d, want %d", id, after[id], want)
		}
	}
}

// TestRetention_upcomingDeletions counts by academy and London day, in the
// actor's academies, with held recordings apart.
func TestRetention_upcomingDeletions(t *testing.T) {
	f := newGrantFixture(t)
	s := NewRetentionService(f.db)
	un := unassignedID(t, f.db)
	// Retained until 12 months after the start: recordings started over a
	// few London days a year ago, including one at 23:30 UTC on 31 March
	// 2025 (1 April in London).
	late := time.Date(2025, 3, 31, 23, 30, 0, 0, time.UTC)
	starts := []time.Time{
		late, late.Add(-time.Hour), late.Add(-24 * time.Hour), late.Add(time.Hour),
		time.Date(2025, 4, 2, 9, 0, 0, 0, time.UTC), time.Date(2025, 4, 2, 17, 0, 0, 0, time.UTC),
		time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC), // outside the window
	}
	var recs []*callvault.Recording
	for i, st := range starts {
		for j, a := range []int64{f.north.ID, f.south.ID, un} {
			if (i == 2 && j == 1) || (i == 5 && j == 0) {
				continue
			}
			recs = append(recs, newRecording(a, 0, fmt.Sprintf("up-%d-%d", i, j), st, "+447700900123", "2001"))
		}
	}
	insertRecordings(t, f.db, recs...)
	held := []string{recs[0].ID, recs[1].ID, recs[4].ID}
	h := &callvault.Hold{Reason: callvault.HoldComplaint, Title: "Complaint", ReviewAt: t0.Add(30 * 24 * time.Hour)}
	if err := NewHoldService(f.db).CreateHold(f.as("dpo"), h, held); err != nil {
		t.Fatal(err)
	}
	// A released hold holds nothing.
	h2 := &callvault.Hold{Reason: callvault.HoldComplaint, Title: "Old complaint", ReviewAt: t0.Add(30 * 24 * time.Hour)}
	if err := NewHoldService(f.db).CreateHold(f.as("dpo"), h2, []string{recs[2].ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := NewHoldService(f.db).ReleaseHold(f.as("dpo"), h2.ID, "Closed."); err != nil {
		t.Fatal(err)
	}

	from := time.Date(2026, 3, 29, 0, 0, 0, 0, callvault.London)
	to := time.Date(2026, 4, 5, 0, 0, 0, 0, callvault.London)
	model := func(academies []int64) []callvault.UpcomingDeletion {
		type key struct {
			academy int64
			day     time.Time
		}
		m := map[key]*callvault.UpcomingDeletion{}
		var keys []key
		for _, r := range recs {
			until := callvault.RetainUntil(r.StartedAt, 12)
			if until.Before(from) || !until.Before(to) || (academies != nil && !slices.Contains(academies, r.AcademyID)) {
				continue
			}
			l := until.In(callvault.London)
			k := key{r.AcademyID, time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, callvault.London)}
			if m[k] == nil {
				m[k] = &callvault.UpcomingDeletion{AcademyID: r.AcademyID, Academy: map[int64]string{f.north.ID: "north", f.south.ID: "south", un: "unassigned"}[r.AcademyID], Day: k.day}
				keys = append(keys, k)
			}
			if slices.Contains(held, r.ID) {
				m[k].Held++
			} else {
				m[k].Count++
			}
		}
		out := []callvault.UpcomingDeletion{}
		for _, k := range keys {
			out = append(out, *m[k])
		}
		slices.SortFunc(out, func(a, b callvault.UpcomingDeletion) int {
			if c := a.Day.Compare(b.Day); c != 0 {
				return c
			}
			return strings.Compare(a.Academy, b.Academy)
		})
		return out
	}
	tests := []struct {
		login     string
		academies []int64 // nil: all
	}{
		{"dpo", nil}, {"admin", nil}, {"ceo", nil},
		{"pnorth", []int64{f.north.ID}}, {"pboth", []int64{f.north.ID, f.south.ID}}, {"pnone", []int64{}},
	}
	for _, tt := range tests {
		got, err := s.UpcomingDeletions(f.as(tt.login), from, to)
		want := model(tt.academies)
		if err != nil || !sameDeletions(got, want) {
			t.Errorf("UpcomingDeletions(%s) = %+v, %v\nwant %+v", tt.login, got, err, want)
		}
	}
	_, err := s.UpcomingDeletions(f.as("lis1"), from, to)
	wantCode(t, "UpcomingDeletions(listener)", err, callvault.EFORBIDDEN)

	// The 23:30 UTC call is due on 1 April in London, with the held one.
	got, err := s.UpcomingDeletions(f.as("pnorth"), from, to)
	if err != nil {
		t.Fatal(err)
	}
	april1 := time.Date(2026, 4, 1, 0, 0, 0, 0, callvault.London)
	i := slices.IndexFunc(got, func(u callvault.UpcomingDeletion) bool { return u.Day.Equal(april1) })
	if i < 0 || got[i].Held != 1 || got[i].Count != 1 || got[i].Academy != "north" {
		t.Errorf("UpcomingDeletions(pnorth) = %+v; want 1 April: 1 held (23:30 UTC) and 1 due (00:30 UTC)", got)
	}
}

func sameDeletions(got, want []callvault.UpcomingDeletion) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.AcademyID != w.AcademyID || g.Academy != w.Academy || !g.Day.Equal(w.Day) || g.Count != w.Count || g.Held != w.Held {
			return false
		}
	}
	return true
}
