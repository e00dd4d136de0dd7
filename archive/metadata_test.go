package archive

import (
	"strings"
	"testing"
	"time"

	"github.com/callvault/callvault"
)

func TestDecodeMetadata(t *testing.T) {
	good := `{"source_ref":"1700000000.42","started_at":"2026-11-27T09:30:00Z","participants":[{"number":"sip:01632960123@pbx","side":"external"},{"extension":"2001","name":"Reception","side":"staff"}]}`
	m, err := DecodeMetadata(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if m.Direction != callvault.DirectionInbound {
		t.Errorf("Direction = %q, want the default inbound", m.Direction)
	}
	ps := m.participants()
	if ps[0].Number != "+441632960123" || ps[1].Extension != "2001" {
		t.Errorf("participants = %+v, want the number normalised to E.164", ps)
	}
	bad := map[string]string{
		"":                      "empty document",
		"[]":                    "wrong type",
		`{"source_ref":"a"} {}`: "after the JSON object",
		`{"source_ref":"a"}`:    "started_at is required",
		`{"source_ref":"a\u0000","started_at":"2026-11-27T09:30:00Z"}`:                                               "control characters",
		`{"source_ref":"a","started_at":"1970-01-01T00:00:00Z"}`:                                                     "not a plausible",
		`{"source_ref":"a","started_at":"2026-11-27T09:30:00Z","ended_at":"2026-11-27T09:00:00Z"}`:                   "before started_at",
		`{"source_ref":"a","started_at":"2026-11-27T09:30:00Z","participants":[{"side":"staff"}]}`:                   "needs a number",
		`{"source_ref":"a","started_at":"2026-11-27T09:30:00Z","participants":[{"extension":"12a","side":"staff"}]}`: "only digits",
		`{"source_ref":"` + strings.Repeat("x", 300) + `","started_at":"2026-11-27T09:30:00Z"}`:                      "longer than",
		strings.Repeat(" ", MaxMetadataSize+1):                                                                       "larger than",
	}
	for in, want := range bad {
		_, err := DecodeMetadata(strings.NewReader(in))
		if callvault.ErrorCode(err) != callvault.EINVALID || !strings.Contains(callvault.ErrorMessage(err), want) {
			t.Errorf("DecodeMetadata(%.60q) = %v; want invalid mentioning %q", in, err, want)
		}
	}
}

func FuzzDecodeMetadata(f *testing.F) {
	f.Add(`{"source_ref":"1","started_at":"2026-11-27T09:30:00Z"}`)
	f.Add(`{"source_ref":"1","started_at":"2026-11-27T09:30:00+01:00","ended_at":"2026-11-27T09:31:00Z","direction":"outbound","academy":"oak","participants":[{"number":"+441632960123","extension":"2001","name":"A","side":"external"}]}`)
	f.Add(`{"participants":[{"side":"staff","number":"tel:;"}]}`)
	f.Add(`{"source_ref":1}`)
	f.Fuzz(func(t *testing.T, in string) {
		m, err := DecodeMetadata(strings.NewReader(in))
		if err != nil {
			if callvault.ErrorCode(err) != callvault.EINVALID {
				t.Fatalf("DecodeMetadata(%q) error code %s, want invalid", in, callvault.ErrorCode(err))
			}
			return
		}
		// Accepted metadata satisfies every rule Ingest relies on.
		if m.SourceRef == "" || m.StartedAt.IsZero() || m.Direction == "" {
			t.Fatalf("accepted incomplete metadata %+v", m)
		}
		if m.EndedAt != nil && m.EndedAt.Sub(m.StartedAt) > 48*time.Hour {
			t.Fatalf("accepted an over-long call %+v", m)
		}
		for _, p := range m.participants() {
			if p.Side != callvault.SideExternal && p.Side != callvault.SideStaff {
				t.Fatalf("accepted side %q", p.Side)
			}
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("accepted metadata fails Validate: %v", err)
		}
	})
}
