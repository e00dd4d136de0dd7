package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callvault/callvault"
)

// checkExportedChain recomputes the chain over exported entries, as an
// auditor with only the export would.
func checkExportedChain(t *testing.T, what string, events []*callvault.AuditEvent) {
	t.Helper()
	for i, e := range events {
		if i > 0 && e.PrevHash != events[i-1].Hash {
			t.Errorf("%s: seq %d does not link to seq %d", what, e.Seq, events[i-1].Seq)
		}
		if !e.Redacted && callvault.ChainHash(e.PrevHash, e) != e.Hash {
			t.Errorf("%s: seq %d: hash does not recompute from the exported fields", what, e.Seq)
		}
	}
}

// exportStore is a trail with awkward values: formulas, quotes, commas,
// line breaks, HTML, unicode, a redacted entry.
func exportStore(t *testing.T) *memStore {
	store := newMemStore()
	fill(t, store, 50, 3)
	awkward := []*callvault.AuditEvent{
		{Time: t0.Add(time.Hour), ActorKind: "user", ActorName: "=HYPERLINK(\"http://evil\")", Action: "recording.play", Outcome: "allowed", Reason: "+1 call, \"urgent\"\nsecond line"},
		{Time: t0.Add(time.Hour), ActorKind: "user", ActorName: "-2+3", Action: "@SUM(A1)", Outcome: "denied", Reason: "'quoted", Details: map[string]string{"q": "<b>&</b>", "=x": "é—"}},
		{Time: t0.Add(time.Hour), ActorKind: "source", ActorName: "\tTab", Action: "x", Outcome: "failed", TargetType: "recording", TargetID: "gone", Reason: "\rcr", Details: map[string]string{"a": "b"}},
		{Time: t0.Add(time.Hour), ActorKind: "system", Action: "x", Outcome: "allowed", AcademyID: -4},
	}
	if err := store.AppendAudit(context.Background(), awkward); err != nil {
		t.Fatal(err)
	}
	if n, err := store.RedactAudit(context.Background(), "recording", "gone"); n != 1 || err != nil {
		t.Fatalf("RedactAudit = %d, %v", n, err)
	}
	return store
}

func TestExportJSONL(t *testing.T) {
	store := exportStore(t)
	var stored []*callvault.AuditEvent
	store.WalkAudit(context.Background(), 0, func(e *callvault.AuditEvent) error { stored = append(stored, e); return nil })
	tests := []struct {
		from, to time.Time
		first    int64
		n        int
	}{
		{time.Time{}, time.Time{}, 1, 54},
		{t0, time.Time{}, 1, 54},
		{t0.Add(1500 * time.Millisecond), t0.Add(10 * 1500 * time.Millisecond), 2, 9}, // [from, to)
		{t0.Add(time.Hour), time.Time{}, 51, 4},
		{time.Time{}, t0, 0, 0},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		n, err := ExportJSONL(context.Background(), store, &buf, tt.from, tt.to)
		if err != nil || n != tt.n {
			t.Errorf("ExportJSONL(%v, %v) = %d, %v; want %d", tt.from, tt.to, n, err, tt.n)
			continue
		}
		var got []*callvault.AuditEvent
		sc := bufio.NewScanner(&buf)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			e := new(callvault.AuditEvent)
			if err := json.Unmarshal(sc.Bytes(), e); err != nil {
				t.Fatalf("ExportJSONL line %q: %v", sc.Text(), err)
			}
			got = append(got, e)
		}
		if len(got) != tt.n || tt.n > 0 && got[0].Seq != tt.first {
			t.Errorf("ExportJSONL(%v, %v) wrote %d lines starting at seq %v; want %d from %d", tt.from, tt.to, len(got), got, tt.n, tt.first)
			continue
		}
		for i, e := range got {
			s := stored[e.Seq-1]
			if e.Hash != s.Hash || e.Redacted != s.Redacted || e.Reason != s.Reason || !e.Time.Equal(s.Time) {
				t.Errorf("ExportJSONL: line %d = %+v, stored %+v", i, e, s)
			}
		}
		checkExportedChain(t, "ExportJSONL", got)
	}
	var buf bytes.Buffer
	ExportJSONL(context.Background(), store, &buf, time.Time{}, time.Time{})
	if !strings.Contains(buf.String(), `"<b>&</b>"`) || !strings.Contains(buf.String(), `"redacted":true`) {
		t.Errorf("ExportJSONL escapes HTML or drops the redacted flag:\n%s", buf.String())
	}
}

func TestExportCSV(t *testing.T) {
	store := exportStore(t)
	var buf bytes.Buffer
	n, err := ExportCSV(context.Background(), store, &buf, time.Time{}, time.Time{})
	if err != nil || n != 54 {
		t.Fatalf("ExportCSV() = %d, %v; want 54", n, err)
	}
	records, err := csv.NewReader(bytes.NewReader(buf.Bytes())).ReadAll()
	if err != nil {
		t.Fatalf("ExportCSV output does not parse as CSV: %v", err)
	}
	if !slices.Equal(records[0], csvHeader) || len(records) != 55 {
		t.Fatalf("ExportCSV: header %q and %d rows; want %q and 54", records[0], len(records)-1, csvHeader)
	}
	// No cell may start a formula.
	for i, rec := range records[1:] {
		for j, cell := range rec {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Errorf("ExportCSV row %d column %s = %q starts a formula", i+1, csvHeader[j], cell)
			}
		}
	}
	// Undo the quoting and rebuild the events: the chain recomputes.
	var events []*callvault.AuditEvent
	for _, rec := range records[1:] {
		for j, cell := range rec {
			rec[j] = strings.TrimPrefix(cell, "'")
		}
		e := &callvault.AuditEvent{
			ActorKind: rec[2], ActorID: rec[3], ActorName: rec[4], ActorRole: rec[5], Action: rec[6],
			TargetType: rec[7], TargetID: rec[8], Outcome: rec[10], ClientAddr: rec[11], Reason: rec[12],
			PrevHash: rec[14], Hash: rec[15], Redacted: rec[16] == "true",
		}
		e.Seq, _ = strconv.ParseInt(rec[0], 10, 64)
		e.AcademyID, _ = strconv.ParseInt(rec[9], 10, 64)
		e.Time, err = time.Parse(time.RFC3339, rec[1])
		if err != nil {
			t.Fatalf("time %q: %v", rec[1], err)
		}
		if err := json.Unmarshal([]byte(rec[13]), &e.Details); err != nil {
			t.Fatalf("details %q: %v", rec[13], err)
		}
		events = append(events, e)
	}
	checkExportedChain(t, "ExportCSV", events)
	if !events[52].Redacted || events[52].Reason != "" || events[51].Reason != "'quoted" || events[50].ActorName != `=HYPERLINK("http://evil")` {
		t.Errorf("ExportCSV round trip lost values: %+v", events[50:53])
	}
}

func TestDefuseCell(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"=1+1", "'=1+1"},
		{"+44 7700 900123", "'+44 7700 900123"},
		{"-1", "'-1"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\t=1", "'\t=1"},
		{"\r=1", "'\r=1"},
		{"'already", "''already"},
		{"a=1", "a=1"},
		{" =1", " =1"},
	}
	for _, tt := range tests {
		if got := defuseCell(tt.in); got != tt.want {
			t.Errorf("defuseCell(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestExportErrors(t *testing.T) {
	store := newMemStore()
	fill(t, store, 5000, 1) // more than the writers buffer
	for name, export := range map[string]func(context.Context, callvault.AuditStore, *failingWriter) (int, error){
		"ExportJSONL": func(ctx context.Context, s callvault.AuditStore, w *failingWriter) (int, error) {
			return ExportJSONL(ctx, s, w, time.Time{}, time.Time{})
		},
		"ExportCSV": func(ctx context.Context, s callvault.AuditStore, w *failingWriter) (int, error) {
			return ExportCSV(ctx, s, w, time.Time{}, time.Time{})
		},
	} {
		if _, err := export(context.Background(), store, &failingWriter{}); err == nil {
			t.Errorf("%s(to a failing writer) = nil error", name)
		}
		if _, err := export(context.Background(), failingStore{store}, &failingWriter{}); callvault.ErrorCode(err) != callvault.EUNAVAILABLE {
			t.Errorf("%s(failing store) = %v, want %s", name, err, callvault.EUNAVAILABLE)
		}
	}
}
