package siprec

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/callvault/callvault"
)

// Metadata is what the recording metadata (RFC 7865) says about the call.
type Metadata struct {
	DataMode     string // "complete" or "partial" (a re-INVITE's update)
	SessionID    string // of the first <session>
	SIPSessionID string // Session-ID header value of the recorded call (RFC 7989), if given
	GroupID      string // of the first <group>
	CallID       string // Call-ID of the recorded call, from a vendor extension (Sonus callData)
	Caller       string // ID of the calling participant, when a vendor extension says (Acme callingParty, Sonus callData From)
	Participants []Participant
	Streams      []MetadataStream
}

// Participant is one party to the recorded call.
type Participant struct {
	ID     string
	Name   string // display name, "" if none or blank
	AOR    string // as given: "sip:+441632960001@host", "tel:...", or Sonus' "2249888500@host"
	Number string // digits of the AOR's user part, with a leading + if it had one; "" if it is not a number
	Sends  []string
	Recvs  []string
}

// MetadataStream ties a metadata stream ID to the a=label of an m= line.
type MetadataStream struct {
	ID    string
	Label string
}

// Senders returns the participants who send the stream with SDP label
// label: usually one, several on a mixed stream, none when the metadata
// does not say. For clients that send no <stream> elements but name labels
// in <send>, a <send> equal to label counts too.
func (m *Metadata) Senders(label string) []Participant {
	ids := map[string]bool{}
	for _, s := range m.Streams {
		if s.Label == label {
			ids[s.ID] = true
		}
	}
	if len(ids) == 0 {
		ids[label] = true
	}
	var out []Participant
	for _, p := range m.Participants {
		if slices.ContainsFunc(p.Sends, func(id string) bool { return ids[id] }) {
			out = append(out, p)
		}
	}
	return out
}

// ParseMetadata parses recording metadata. It is lenient: elements are
// matched by local name whatever their namespace (RFC 7865's
// urn:ietf:params:xml:ns:recording:1, the drafts' ...:recording still sent by
// Acme and Sonus), with a prefix or none; participant_id or id
// (and likewise for sessions, streams and groups); <send>/<recv> inside
// <participant> (drafts) or in <participantstreamassoc>; <aor> and <name>
// directly in <participant> (early drafts) or in <nameID>. Unknown elements
// are skipped. Participants are merged by ID in document order.
//
// It refuses, with EINVALID, documents over MaxBodySize, documents with a
// DTD (so no entity can expand: encoding/xml knows only the predefined
// entities, and fails on any other), a root that is not <recording>, and XML
// that does not parse.
func ParseMetadata(b []byte) (*Metadata, error) {
	if len(b) > MaxBodySize {
		return nil, invalidf("recording metadata is larger than %d bytes", MaxBodySize)
	}
	b = bytes.TrimPrefix(b, []byte("\ufeff"))
	d := xml.NewDecoder(bytes.NewReader(b))
	d.CharsetReader = charsetReader
	var root *xml.StartElement
	for root == nil {
		tok, err := d.Token()
		if err == io.EOF {
			return nil, invalidf("recording metadata is empty")
		}
		if err != nil {
			return nil, callvault.Wrap(callvault.EINVALID, err, "recording metadata is not well-formed XML")
		}
		switch t := tok.(type) {
		case xml.Directive:
			return nil, invalidf("recording metadata has a DTD or entity declaration, which is not allowed")
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return nil, invalidf("recording metadata is not XML")
			}
		case xml.StartElement:
			root = &t
		}
	}
	if root.Name.Local != "recording" {
		return nil, invalidf("recording metadata has root element <%.40s>, want <recording>", root.Name.Local)
	}
	var x xmlRecording
	if err := d.DecodeElement(&x, root); err != nil {
		return nil, callvault.Wrap(callvault.EINVALID, err, "recording metadata is not well-formed XML")
	}
	return x.metadata(), nil
}

// charsetReader lets documents declare ASCII or Latin-1 as well as UTF-8.
func charsetReader(label string, r io.Reader) (io.Reader, error) {
	switch strings.ToLower(label) {
	case "us-ascii", "ascii", "iso-8859-1", "latin1", "iso_8859-1", "l1":
		b, err := io.ReadAll(io.LimitReader(r, MaxBodySize))
		if err != nil {
			return nil, err
		}
		out := make([]byte, 0, len(b))
		for _, c := range b {
			out = utf8.AppendRune(out, rune(c))
		}
		return bytes.NewReader(out), nil
	}
	return nil, errors.New("unsupported encoding " + label)
}

// The XML shapes, matched by local name in any namespace. Where RFC 7865
// and the drafts name an attribute differently, both fields are here.
type (
	xmlRecording struct {
		DataMode     string           `xml:"datamode"`
		DataModeOld  string           `xml:"dataMode"`
		Groups       []xmlGroup       `xml:"group"`
		Sessions     []xmlSession     `xml:"session"`
		Participants []xmlParticipant `xml:"participant"`
		Streams      []xmlStream      `xml:"stream"`
		StreamAssocs []xmlStreamAssoc `xml:"participantstreamassoc"`
		Extensions   []xmlExtension   `xml:"extensiondata"`
		CallData     []xmlCallData    `xml:"callData"`
	}
	xmlGroup struct {
		GroupID  string        `xml:"group_id,attr"`
		ID       string        `xml:"id,attr"`
		CallData []xmlCallData `xml:"callData"`
	}
	xmlSession struct {
		SessionID    string        `xml:"session_id,attr"`
		ID           string        `xml:"id,attr"`
		SIPSessionID []string      `xml:"sipSessionID"`
		CallData     []xmlCallData `xml:"callData"`
	}
	xmlParticipant struct {
		ParticipantID string         `xml:"participant_id,attr"`
		ID            string         `xml:"id,attr"`
		NameIDs       []xmlNameID    `xml:"nameID"`
		AOR           []string       `xml:"aor"`
		Name          []string       `xml:"name"`
		Send          []string       `xml:"send"`
		Recv          []string       `xml:"recv"`
		Extensions    []xmlExtension `xml:"extensiondata"`
	}
	xmlNameID struct {
		AOR  string   `xml:"aor,attr"`
		Name []string `xml:"name"`
	}
	xmlStream struct {
		StreamID string `xml:"stream_id,attr"`
		ID       string `xml:"id,attr"`
		Label    string `xml:"label"`
	}
	xmlStreamAssoc struct {
		ParticipantID string   `xml:"participant_id,attr"`
		ID            string   `xml:"id,attr"`
		Send          []string `xml:"send"`
		Recv          []string `xml:"recv"`
	}
	// xmlExtension is <extensiondata>; Acme puts <apkt:callingParty> in it,
	// inside a participant or at the top level with parent="participant id".
	xmlExtension struct {
		Parent       string   `xml:"parent,attr"`
		CallingParty []string `xml:"callingParty"`
	}
	// xmlCallData is Sonus' <callData xmlns='urn:ietf:params:xml:ns:callData'>.
	xmlCallData struct {
		From   string `xml:"fromhdr"`
		To     string `xml:"tohdr"`
		CallID string `xml:"callid"`
	}
)

func first(ids ...string) string {
	for _, id := range ids {
		if id = strings.TrimSpace(id); id != "" {
			return id
		}
	}
	return ""
}

// trimAll trims each ID and drops empty and repeated ones.
func trimAll(list []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range list {
		if s = strings.TrimSpace(s); s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func (x *xmlRecording) metadata() *Metadata {
	m := &Metadata{DataMode: first(x.DataMode, x.DataModeOld)}
	var calls []xmlCallData
	calls = append(calls, x.CallData...)
	for _, g := range x.Groups {
		if m.GroupID == "" {
			m.GroupID = first(g.GroupID, g.ID)
		}
		calls = append(calls, g.CallData...)
	}
	for _, s := range x.Sessions {
		if m.SessionID == "" {
			m.SessionID = first(s.SessionID, s.ID)
		}
		if m.SIPSessionID == "" {
			m.SIPSessionID = first(s.SIPSessionID...)
		}
		calls = append(calls, s.CallData...)
	}

	index := map[string]int{} // participant ID → position in m.Participants
	get := func(id string) *Participant {
		i, ok := index[id]
		if !ok {
			i = len(m.Participants)
			index[id] = i
			m.Participants = append(m.Participants, Participant{ID: id})
		}
		return &m.Participants[i]
	}
	for _, xp := range x.Participants {
		id := first(xp.ParticipantID, xp.ID)
		if id == "" {
			continue // nothing can refer to it
		}
		p := get(id)
		aor, name := first(xp.AOR...), first(xp.Name...)
		for _, n := range xp.NameIDs {
			aor, name = first(aor, n.AOR), first(name, first(n.Name...))
		}
		p.AOR, p.Name = first(p.AOR, aor), first(p.Name, name)
		p.Sends = append(p.Sends, trimAll(xp.Send)...)
		p.Recvs = append(p.Recvs, trimAll(xp.Recv)...)
		for _, e := range xp.Extensions {
			if isTrue(e.CallingParty) && m.Caller == "" {
				m.Caller = id
			}
		}
	}
	for _, a := range x.StreamAssocs {
		if id := first(a.ParticipantID, a.ID); id != "" {
			p := get(id)
			p.Sends = append(p.Sends, trimAll(a.Send)...)
			p.Recvs = append(p.Recvs, trimAll(a.Recv)...)
		}
	}
	for _, e := range x.Extensions {
		if _, ok := index[strings.TrimSpace(e.Parent)]; ok && isTrue(e.CallingParty) && m.Caller == "" {
			m.Caller = strings.TrimSpace(e.Parent)
		}
	}
	for i := range m.Participants {
		p := &m.Participants[i]
		p.Sends, p.Recvs = trimAll(p.Sends), trimAll(p.Recvs) // merged participants may repeat
		p.Number = Number(p.AOR)
		if p.Number == "" && isDigits(p.Name) {
			p.Number = p.Name
		}
	}
	for _, xs := range x.Streams {
		if id := first(xs.StreamID, xs.ID); id != "" {
			m.Streams = append(m.Streams, MetadataStream{ID: id, Label: strings.TrimSpace(xs.Label)})
		}
	}
	for _, c := range calls {
		m.callData(c)
	}
	return m
}

func isTrue(v []string) bool {
	return slices.ContainsFunc(v, func(s string) bool { return strings.EqualFold(strings.TrimSpace(s), "true") })
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// callData uses the original From, To and Call-ID that Sonus copies into
// the metadata: the participant whose AOR is the From URI is the caller,
// and the headers' display names fill in blank participant names.
func (m *Metadata) callData(c xmlCallData) {
	if m.CallID == "" {
		m.CallID = strings.TrimSpace(c.CallID)
	}
	for _, h := range []struct {
		value  string
		caller bool
	}{{c.From, true}, {c.To, false}} {
		name, uri := nameAddr(h.value)
		key := aorKey(uri)
		if key == "" {
			continue
		}
		for i := range m.Participants {
			p := &m.Participants[i]
			if aorKey(p.AOR) != key {
				continue
			}
			if p.Name == "" {
				p.Name = name
			}
			if h.caller && m.Caller == "" {
				m.Caller = p.ID
			}
			break
		}
	}
}
