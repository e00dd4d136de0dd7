package sqldb

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/google/uuid"
)

// newRecording returns a valid recording of academy at started with an
// external number and a staff extension.
func newRecording(academyID, sourceID int64, ref string, started time.Time, external, extension string) *callvault.Recording {
	id := uuid.Must(uuid.NewV7()).String()
	return &callvault.Recording{
		ID: id, AcademyID: academyID, SourceID: sourceID, SourceKind: callvault.SourceImport, SourceRef: ref,
		StartedAt: started, EndedAt: started.Add(95 * time.Second), Duration: 95 * time.Second,
		Direction: callvault.DirectionInbound,
		Participants: []callvault.Participant{
			{Number: external, Name: "Caller", Side: callvault.SideExternal},
			{Number: "+441632960001", Extension: extension, Name: "Reception", Side: callvault.SideStaff},
		},
		Format: "wav", Codec: "pcm16", SampleRate: 8000, Channels: 2, DataOffset: 44, DataSize: 1520000,
		Size: 1520044, SHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		BlobKey: "2026/03/" + id, KeyEpoch: callvault.KeyEpoch(started),
		RetainUntil: started.AddDate(1, 0, 0), State: callvault.StateStored,
	}
}

func createSource(t testing.TB, db *DB, name string) *callvault.Source {
	t.Helper()
	src := &callvault.Source{Name: name, Kind: callvault.SourceImport, TokenHash: "hash-" + name}
	if err := NewSourceService(db).CreateSource(sysCtx(), src); err != nil {
		t.Fatalf("CreateSource(%q): %v", name, err)
	}
	return src
}

func TestRecording_createAndFind(t *testing.T) {
	db, _ := openTestDB(t)
	north, _ := createAcademies(t, db)
	src := createSource(t, db, "pbx")
	s := NewRecordingService(db)

	started := time.Date(2026, 2, 27, 14, 3, 7, 123456789, time.UTC)
	r := newRecording(north.ID, src.ID, "1700000000.42", started, "+447700900123", "2001")
	if err := s.CreateRecording(sysCtx(), r); err != nil {
		t.Fatalf("CreateRecording: %v", err)
	}
	if r.Academy != "north" || !r.CreatedAt.Equal(t0) {
		t.Errorf("CreateRecording set Academy %q, CreatedAt %v; want north, %v", r.Academy, r.CreatedAt, t0)
	}

	// Times are stored to the millisecond, in UTC.
	want := *r
	want.StartedAt = started.Truncate(time.Millisecond)
	want.EndedAt = want.EndedAt.Truncate(time.Millisecond)
	want.RetainUntil = want.RetainUntil.Truncate(time.Millisecond)

	got, err := s.FindRecordingByID(sysCtx(), r.ID)
	if err != nil {
		t.Fatalf("FindRecordingByID: %v", err)
	}
	if !reflect.DeepEqual(got, &want) {
		t.Errorf("FindRecordingByID(%s) =\n%+v\nwant\n%+v", r.ID, got, &want)
	}
	got, err = s.FindRecordingBySourceRef(sysCtx(), src.ID, "1700000000.42")
	if err != nil || !reflect.DeepEqual(got, &want) {
		t.Errorf("FindRecordingBySourceRef(%d, ...) = %+v, %v; want %+v", src.ID, got, err, &want)
	}

	_, err = s.FindRecordingByID(sysCtx(), uuid.Must(uuid.NewV7()).String())
	wantCode(t, "FindRecordingByID(unknown)", err, callvault.ENOTFOUND)
	_, err = s.FindRecordingBySourceRef(sysCtx(), src.ID, "other")
	wantCode(t, "FindRecordingBySourceRef(unknown ref)", err, callvault.ENOTFOUND)
	_, err = s.FindRecordingBySourceRef(sysCtx(), 0, "1700000000.42")
	wantCode(t, "FindRecordingBySourceRef(no source)", err, callvault.ENOTFOUND)

	// Defaults: an id and the stored state; no source; no participants;
	// retain-until from the trust default, whatever the caller set.
	bare := newRecording(north.ID, 0, "upload.wav", started, "", "")
	bare.ID, bare.State, bare.Participants, bare.EndedAt, bare.RetainUntil = "", "", nil, time.Time{}, time.Time{}
	bare.BlobKey = "bare"
	if err := s.CreateRecording(sysCtx(), bare); err != nil {
		t.Fatalf("CreateRecording(bare): %v", err)
	}
	if u, err := uuid.Parse(bare.ID); err != nil || u.Version() != 7 || bare.State != callvault.StateStored {
		t.Errorf("CreateRecording(bare) set ID %q, State %q; want a UUIDv7 and stored", bare.ID, bare.State)
	}
	got, err = s.FindRecordingBySourceRef(sysCtx(), 0, "upload.wav")
	if err != nil || got.ID != bare.ID || got.SourceID != 0 || len(got.Participants) != 0 ||
		!got.EndedAt.IsZero() || !got.RetainUntil.Equal(callvault.RetainUntil(started, callvault.DefaultRetentionMonths)) {
		t.Errorf("FindRecordingBySourceRef(0, upload.wav) = %+v, %v", got, err)
	}
}

func TestRecording_createErrors(t *testing.T) {
	db, _ := openTestDB(t)
	north, _ := createAcademies(t, db)
	src := createSource(t, db, "pbx")
	s := NewRecordingService(db)
	started := t0.Add(-time.Hour)
	first := newRecording(north.ID, src.ID, "ref-1", started, "+447700900123", "2001")
	if err := s.CreateRecording(sysCtx(), first); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		modify func(r *callvault.Recording)
		code   string
	}{
		{"duplicate source ref", func(r *callvault.Recording) { r.SourceRef = "ref-1" }, callvault.ECONFLICT},
		{"duplicate id", func(r *callvault.Recording) { r.ID = first.ID }, callvault.ECONFLICT},
		{"duplicate blob key", func(r *callvault.Recording) { r.BlobKey = first.BlobKey }, callvault.ECONFLICT},
		{"unknown academy", func(r *callvault.Recording) { r.AcademyID = 999 }, callvault.EINVALID},
		{"no academy", func(r *callvault.Recording) { r.AcademyID = 0 }, callvault.EINVALID},
		{"unknown source", func(r *callvault.Recording) { r.SourceID = 999 }, callvault.EINVALID},
		{"bad id", func(r *callvault.Recording) { r.ID = "not-a-uuid" }, callvault.EINVALID},
		{"bad source kind", func(r *callvault.Recording) { r.SourceKind = "fax" }, callvault.EINVALID},
		{"no source ref", func(r *callvault.Recording) { r.SourceRef = "" }, callvault.EINVALID},
		{"no start", func(r *callvault.Recording) { r.StartedAt = time.Time{} }, callvault.EINVALID},
		{"negative duration", func(r *callvault.Recording) { r.Duration = -time.Second }, callvault.EINVALID},
		{"bad direction", func(r *callvault.Recording) { r.Direction = "sideways" }, callvault.EINVALID},
		{"bad state", func(r *callvault.Recording) { r.State = "lost" }, callvault.EINVALID},
		{"no blob key", func(r *callvault.Recording) { r.BlobKey = "" }, callvault.EINVALID},
		{"bad side", func(r *callvault.Recording) { r.Participants[0].Side = "" }, callvault.EINVALID},
		{"same ref, other source", func(r *callvault.Recording) { r.SourceRef = "ref-1"; r.SourceID = 0 }, ""},
		{"unknown direction", func(r *callvault.Recording) { r.Direction = "" }, ""},
	}
	for i, tt := range tests {
		r := newRecording(north.ID, src.ID, fmt.Sprintf("ref-%d", i+100), started, "+447700900123", "2001")
		tt.modify(r)
		wantCode(t, "CreateRecording("+tt.name+")", s.CreateRecording(sysCtx(), r), tt.code)
	}
	// Nothing of the failed inserts remains.
	if n := countRows(t, db, `SELECT COUNT(*) FROM participants`); n != 6 {
		t.Errorf("%d participants stored, want 6 (three recordings)", n)
	}
}

func TestRecording_scope(t *testing.T) {
	db, _ := openTestDB(t)
	north, south := createAcademies(t, db)
	s := NewRecordingService(db)
	inNorth := newRecording(north.ID, 0, "n", t0, "+447700900123", "2001")
	inSouth := newRecording(south.ID, 0, "s", t0, "+447700900123", "3001")
	inNowhere := newRecording(unassignedID(t, db), 0, "u", t0, "+447700900123", "")
	for _, r := range []*callvault.Recording{inNorth, inSouth, inNowhere} {
		if err := s.CreateRecording(sysCtx(), r); err != nil {
			t.Fatal(err)
		}
	}
	disabledAdmin := callvault.NewContextWithActor(context.Background(),
		&callvault.Actor{User: &callvault.User{Role: callvault.RoleAdmin, Disabled: true}})
	source := callvault.NewContextWithActor(context.Background(), &callvault.Actor{Source: &callvault.Source{ID: 1}})

	// sees: north, south, unassigned
	tests := []struct {
		name string
		ctx  context.Context
		sees [3]bool
	}{
		{"system", sysCtx(), [3]bool{true, true, true}},
		{"admin", userCtx(callvault.RoleAdmin), [3]bool{true, true, true}},
		{"ceo", userCtx(callvault.RoleCEO), [3]bool{true, true, true}},
		{"dpo", userCtx(callvault.RoleDPO), [3]bool{true, true, true}},
		{"principal of north", userCtx(callvault.RolePrincipal, north.ID), [3]bool{true, false, false}},
		{"principal of both", userCtx(callvault.RolePrincipal, north.ID, south.ID), [3]bool{true, true, false}},
		{"principal of none", userCtx(callvault.RolePrincipal), [3]bool{}},
		{"listener of north", userCtx(callvault.RoleListener, north.ID), [3]bool{}},
		{"disabled admin", disabledAdmin, [3]bool{}},
		{"source", source, [3]bool{}},
		{"nil actor", context.Background(), [3]bool{}},
	}
	for _, tt := range tests {
		for i, r := range []*callvault.Recording{inNorth, inSouth, inNowhere} {
			want := callvault.ENOTFOUND
			if tt.sees[i] {
				want = ""
			}
			_, err := s.FindRecordingByID(tt.ctx, r.ID)
			wantCode(t, fmt.Sprintf("FindRecordingByID(%s, %s)", tt.name, r.SourceRef), err, want)
			_, err = s.FindRecordingBySourceRef(tt.ctx, 0, r.SourceRef)
			wantCode(t, fmt.Sprintf("FindRecordingBySourceRef(%s, %s)", tt.name, r.SourceRef), err, want)
		}

		// Search: the same scope, or EFORBIDDEN when there is none.
		rs, total, _, err := s.FindRecordings(tt.ctx, callvault.RecordingFilter{})
		var want []string
		for i, r := range []*callvault.Recording{inNorth, inSouth, inNowhere} {
			if tt.sees[i] {
				want = append(want, r.SourceRef)
			}
		}
		if want == nil {
			wantCode(t, fmt.Sprintf("FindRecordings(%s)", tt.name), err, callvault.EFORBIDDEN)
			continue
		}
		var got []string
		for _, r := range rs {
			got = append(got, r.SourceRef)
		}
		// Same started_at: newest first means id descending.
		if err != nil || total != len(want) || !sameSet(got, want) {
			t.Errorf("FindRecordings(%s) = %v (total %d), %v; want %v", tt.name, got, total, err, want)
		}
		// Filtering by an academy outside the scope finds nothing.
		rs, total, _, err = s.FindRecordings(tt.ctx, callvault.RecordingFilter{AcademyID: south.ID})
		if wantN := map[bool]int{true: 1, false: 0}[tt.sees[1]]; err != nil || len(rs) != wantN || total != wantN {
			t.Errorf("FindRecordings(%s, academy south) = %d (total %d), %v; want %d", tt.name, len(rs), total, err, wantN)
		}
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestRecording_setState(t *testing.T) {
	db, _ := openTestDB(t)
	north, _ := createAcademies(t, db)
	s := NewRecordingService(db)
	r := newRecording(north.ID, 0, "x", t0, "+447700900123", "2001")
	if err := s.CreateRecording(sysCtx(), r); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		id, state, code string
	}{
		{r.ID, callvault.StateMissing, ""},
		{r.ID, callvault.StateStored, ""},
		{r.ID, callvault.StateMissing, ""},
		{r.ID, "gone", callvault.EINVALID},
		{uuid.Must(uuid.NewV7()).String(), callvault.StateStored, callvault.ENOTFOUND},
	}
	for _, tt := range tests {
		wantCode(t, fmt.Sprintf("SetRecordingState(%s, %q)", tt.id, tt.state), s.SetRecordingState(sysCtx(), tt.id, tt.state), tt.code)
	}
	got, _ := s.FindRecordingByID(sysCtx(), r.ID)
	if got.State != callvault.StateMissing {
		t.Errorf("State = %q, want missing", got.State)
	}
}

func TestRecording_blobKeys(t *testing.T) {
	db, _ := openTestDB(t)
	north, south := createAcademies(t, db)
	s := NewRecordingService(db)
	want := map[string]string{}
	northKeys := map[string]string{}
	var rs []*callvault.Recording
	for i := range 2*blobKeyBatch + 3 { // three batches
		academy := north.ID
		if i%3 == 0 {
			academy = south.ID
		}
		r := newRecording(academy, 0, fmt.Sprint(i), t0.Add(time.Duration(i)*time.Second), "+447700900123", "2001")
		want[r.ID] = r.BlobKey
		if academy == north.ID {
			northKeys[r.ID] = r.BlobKey
		}
		rs = append(rs, r)
	}
	insertRecordings(t, db, rs...)
	collect := func(ctx context.Context) (map[string]string, error) {
		got := map[string]string{}
		err := s.RecordingBlobKeys(ctx, func(id, key string) error {
			if _, dup := got[id]; dup {
				return fmt.Errorf("id %s twice", id)
			}
			got[id] = key
			return nil
		})
		return got, err
	}
	got, err := collect(sysCtx())
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("RecordingBlobKeys(system) = %d keys, %v; want %d", len(got), err, len(want))
	}
	got, err = collect(userCtx(callvault.RolePrincipal, north.ID))
	if err != nil || !reflect.DeepEqual(got, northKeys) {
		t.Errorf("RecordingBlobKeys(principal of north) = %d keys, %v; want %d", len(got), err, len(northKeys))
	}
	_, err = collect(userCtx(callvault.RoleListener))
	wantCode(t, "RecordingBlobKeys(listener)", err, callvault.EFORBIDDEN)

	stop := errors.New("stop")
	n := 0
	err = s.RecordingBlobKeys(sysCtx(), func(id, key string) error {
		n++
		if n == 5 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 5 {
		t.Errorf("RecordingBlobKeys with failing fn = %v after %d calls, want stop after 5", err, n)
	}
}

// insertRecordings stores rs in one transaction, for fixtures too large to
// pay an fsync per recording.
func insertRecordings(t testing.TB, db *DB, rs ...*callvault.Recording) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.beginWrite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for _, r := range rs {
		if err := validateRecording(r); err != nil {
			t.Fatal(err)
		}
		if err := createRecording(ctx, tx, r); err != nil {
			t.Fatalf("createRecording(%s): %v", r.SourceRef, err)
		}
	}
	if err := tx.commit(); err != nil {
		t.Fatal(err)
	}
}
