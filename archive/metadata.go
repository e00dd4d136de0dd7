package archive

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/phone"
)

// MaxMetadataSize bounds the metadata JSON of one recording.
const MaxMetadataSize = 64 << 10

// Metadata is what a source says about a recording, as JSON. It is
// documented in the OpenAPI description (web/openapi.json); the audio itself
// decides format and duration.
type Metadata struct {
	SourceRef    string                `json:"source_ref"`
	StartedAt    time.Time             `json:"started_at"`
	EndedAt      *time.Time            `json:"ended_at,omitempty"`
	Direction    string                `json:"direction,omitempty"`
	Academy      string                `json:"academy,omitempty"`
	Category     string                `json:"category,omitempty"` // slug; else matched from the numbers
	Participants []MetadataParticipant `json:"participants,omitempty"`
}

// MetadataParticipant is one party as a source describes it.
type MetadataParticipant struct {
	Number    string `json:"number,omitempty"`
	Extension string `json:"extension,omitempty"`
	Name      string `json:"name,omitempty"`
	Side      string `json:"side"`
}

// DecodeMetadata parses and validates metadata JSON strictly: unknown fields,
// trailing data, oversized documents and invalid values are EINVALID.
func DecodeMetadata(r io.Reader) (Metadata, error) {
	m, err := DecodeMetadataPartial(r)
	if err != nil {
		return m, err
	}
	if err := m.Validate(); err != nil {
		return Metadata{}, err
	}
	return m, nil
}

// DecodeMetadataPartial parses metadata JSON as strictly as DecodeMetadata
// but leaves validation to the caller, who may fill in defaults first (the
// import command takes started_at from the file).
func DecodeMetadataPartial(r io.Reader) (Metadata, error) {
	var m Metadata
	data, err := io.ReadAll(io.LimitReader(r, MaxMetadataSize+1))
	if err != nil {
		return m, callvault.Wrap(callvault.EINVALID, err, "metadata could not be read")
	}
	if len(data) > MaxMetadataSize {
		return m, callvault.Errorf(callvault.EINVALID, "metadata is larger than %d bytes", MaxMetadataSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Metadata{}, callvault.Errorf(callvault.EINVALID, "metadata is not valid JSON: %s", jsonProblem(err))
	}
	if dec.More() {
		return Metadata{}, callvault.Errorf(callvault.EINVALID, "metadata has data after the JSON object")
	}
	return m, nil
}

// jsonProblem describes a decoding error without echoing large input.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return "syntax error at byte " + itoa(syn.Offset)
	case errors.As(err, &typ):
		return "field " + typ.Field + " has the wrong type"
	case errors.Is(err, io.EOF):
		return "empty document"
	}
	msg := err.Error()
	if len(msg) > 120 {
		msg = msg[:120]
	}
	return strings.TrimPrefix(msg, "json: ")
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// Limits on metadata values.
const (
	maxRefLen        = 256
	maxNameLen       = 200
	maxParticipants  = 32
	maxFutureStart   = 24 * time.Hour
	maxCallLength    = 48 * time.Hour
	defaultDirection = callvault.DirectionInbound
)

// Validate checks m and fills defaults (direction inbound).
func (m *Metadata) Validate() error {
	if err := checkText("source_ref", m.SourceRef, maxRefLen); err != nil {
		return err
	}
	if m.SourceRef == "" {
		return callvault.Errorf(callvault.EINVALID, "source_ref is required")
	}
	if m.StartedAt.IsZero() {
		return callvault.Errorf(callvault.EINVALID, "started_at is required (RFC 3339)")
	}
	if m.StartedAt.Year() < 2000 || m.StartedAt.After(time.Now().Add(maxFutureStart)) {
		return callvault.Errorf(callvault.EINVALID, "started_at %s is not a plausible call time", m.StartedAt.Format(time.RFC3339))
	}
	if m.EndedAt != nil {
		if m.EndedAt.Before(m.StartedAt) {
			return callvault.Errorf(callvault.EINVALID, "ended_at is before started_at")
		}
		if m.EndedAt.Sub(m.StartedAt) > maxCallLength {
			return callvault.Errorf(callvault.EINVALID, "ended_at is more than 48 hours after started_at")
		}
	}
	switch m.Direction {
	case "":
		m.Direction = defaultDirection
	case callvault.DirectionInbound, callvault.DirectionOutbound, callvault.DirectionInternal:
	default:
		return callvault.Errorf(callvault.EINVALID, "direction must be inbound, outbound or internal")
	}
	if err := checkText("academy", m.Academy, 64); err != nil {
		return err
	}
	if m.Category != "" && !callvault.ValidSlug(m.Category) {
		return callvault.Errorf(callvault.EINVALID, "category %q is not a category slug", m.Category)
	}
	if len(m.Participants) > maxParticipants {
		return callvault.Errorf(callvault.EINVALID, "at most %d participants", maxParticipants)
	}
	for i := range m.Participants {
		p := &m.Participants[i]
		for _, f := range []struct{ name, v string }{{"number", p.Number}, {"extension", p.Extension}, {"name", p.Name}} {
			if err := checkText("participants."+f.name, f.v, maxNameLen); err != nil {
				return err
			}
		}
		if p.Side != callvault.SideExternal && p.Side != callvault.SideStaff {
			return callvault.Errorf(callvault.EINVALID, "participants[%d].side must be external or staff", i)
		}
		if p.Number == "" && p.Extension == "" && p.Name == "" {
			return callvault.Errorf(callvault.EINVALID, "participants[%d] needs a number, extension or name", i)
		}
		if p.Extension != "" && strings.Trim(p.Extension, "0123456789*#") != "" {
			return callvault.Errorf(callvault.EINVALID, "participants[%d].extension may hold only digits, * and #", i)
		}
	}
	return nil
}

func checkText(field, v string, max int) error {
	if len(v) > max {
		return callvault.Errorf(callvault.EINVALID, "%s is longer than %d bytes", field, max)
	}
	if !utf8.ValidString(v) {
		return callvault.Errorf(callvault.EINVALID, "%s is not valid UTF-8", field)
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return callvault.Errorf(callvault.EINVALID, "%s contains control characters", field)
		}
	}
	return nil
}

// participants converts metadata participants to domain participants with
// numbers normalised to E.164 where they parse.
func (m *Metadata) participants() []callvault.Participant {
	out := make([]callvault.Participant, 0, len(m.Participants))
	for _, p := range m.Participants {
		n := ""
		if p.Number != "" {
			var ok bool
			if n, ok = phone.Normalize(p.Number); !ok && n == "" {
				n = strings.TrimSpace(p.Number)
			}
		}
		out = append(out, callvault.Participant{Number: n, Extension: p.Extension, Name: strings.TrimSpace(p.Name), Side: p.Side})
	}
	return out
}
