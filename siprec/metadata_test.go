package siprec_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/siprec"
)

func TestParseMetadata(t *testing.T) {
	tests := []struct {
		name    string
		xml     string
		want    siprec.Metadata
		senders map[string][]string // label → IDs of senders
	}{
		{
			name: "RFC 7865, default namespace, associations",
			xml: `<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns='urn:ietf:params:xml:ns:recording:1'>
  <datamode>complete</datamode>
  <group group_id="g1"><associate-time>2026-11-27T09:30:00Z</associate-time></group>
  <session session_id="s1"><sipSessionID>ab30317f1a784dc48ff824d0d3715d86;remote=47755a9de7794ba387653f2099600ef2</sipSessionID><group-ref>g1</group-ref></session>
  <participant participant_id="p1"><nameID aor="sip:+441632960001@pbx.example;user=phone"><name xml:lang="en">Parent</name></nameID></participant>
  <participant participant_id="p2"><nameID aor="tel:2001"><name>Reception</name></nameID></participant>
  <stream stream_id="st1" session_id="s1"><label>1</label></stream>
  <stream stream_id="st2" session_id="s1"><label>2</label></stream>
  <participantstreamassoc participant_id="p1"><send>st1</send><recv>st2</recv></participantstreamassoc>
  <participantstreamassoc participant_id="p2"><send>st2</send><recv>st1</recv></participantstreamassoc>
  <unknown><participant participant_id="nested">ignored</participant></unknown>
</recording>`,
			want: siprec.Metadata{DataMode: "complete", SessionID: "s1", GroupID: "g1", SIPSessionID: "ab30317f1a784dc48ff824d0d3715d86;remote=47755a9de7794ba387653f2099600ef2",
				Participants: []siprec.Participant{
					{ID: "p1", Name: "Parent", AOR: "sip:+441632960001@pbx.example;user=phone", Number: "+441632960001", Sends: []string{"st1"}, Recvs: []string{"st2"}},
					{ID: "p2", Name: "Reception", AOR: "tel:2001", Number: "2001", Sends: []string{"st2"}, Recvs: []string{"st1"}}},
				Streams: []siprec.MetadataStream{{ID: "st1", Label: "1"}, {ID: "st2", Label: "2"}}},
			senders: map[string][]string{"1": {"p1"}, "2": {"p2"}, "3": nil},
		},
		{
			name: "draft namespace with a prefix, id attributes, send inside participant",
			xml: `<rec:recording xmlns:rec="urn:ietf:params:xml:ns:recording">
  <rec:dataMode>partial</rec:dataMode>
  <rec:session id="s1"/>
  <rec:participant id="p1" session="s1"><rec:nameID aor="sip:01632960002@10.0.0.1"/><rec:send>st1</rec:send></rec:participant>
  <rec:participant id="p2" session="s1"><rec:aor>sip:2002@10.0.0.1</rec:aor><rec:name>Head's office </rec:name><rec:send>st2</rec:send><rec:recv>st1</rec:recv></rec:participant>
  <rec:stream id="st1" session="s1"><rec:label>caller</rec:label></rec:stream>
  <rec:stream id="st2" session="s1"><rec:label>callee</rec:label></rec:stream>
</rec:recording>`,
			want: siprec.Metadata{DataMode: "partial", SessionID: "s1",
				Participants: []siprec.Participant{
					{ID: "p1", AOR: "sip:01632960002@10.0.0.1", Number: "01632960002", Sends: []string{"st1"}},
					{ID: "p2", Name: "Head's office", AOR: "sip:2002@10.0.0.1", Number: "2002", Sends: []string{"st2"}, Recvs: []string{"st1"}}},
				Streams: []siprec.MetadataStream{{ID: "st1", Label: "caller"}, {ID: "st2", Label: "callee"}}},
			senders: map[string][]string{"caller": {"p1"}, "callee": {"p2"}},
		},
		{
			name: "no namespace, no stream elements, labels in send, a mixed stream",
			xml: `<recording>
  <participant participant_id="a"><nameID aor="sip:anonymous@anonymous.invalid"><name>Withheld</name></nameID><send>10</send></participant>
  <participant participant_id="b"><nameID aor="sip:2003@pbx"/><send>10</send></participant>
</recording>`,
			want: siprec.Metadata{Participants: []siprec.Participant{
				{ID: "a", Name: "Withheld", AOR: "sip:anonymous@anonymous.invalid", Sends: []string{"10"}},
				{ID: "b", AOR: "sip:2003@pbx", Number: "2003", Sends: []string{"10"}}}},
			senders: map[string][]string{"10": {"a", "b"}, "1": nil},
		},
		{
			name: "participant repeated (partial update) is merged; name from digits",
			xml: `<recording xmlns="urn:ietf:params:xml:ns:recording:1">
  <participant participant_id="p1"><nameID aor="sip:pbx.example"><name>4001</name></nameID></participant>
  <participant participant_id="p1"><nameID aor="sip:other@x"><name>Other</name></nameID><send>s</send></participant>
  <participantstreamassoc participant_id="p1"><send> s </send><send>t</send></participantstreamassoc>
  <participantstreamassoc><send>orphan</send></participantstreamassoc>
  <participant><nameID aor="sip:noid@x"/></participant>
</recording>`,
			want: siprec.Metadata{Participants: []siprec.Participant{
				{ID: "p1", Name: "4001", AOR: "sip:pbx.example", Number: "4001", Sends: []string{"s", "t"}}}},
		},
		{
			name: "Acme extension data at the top level, pointing at its participant",
			xml: `<recording xmlns='urn:ietf:params:xml:ns:recording'>
  <participant id="p1"><nameID aor="sip:1@x"/></participant>
  <participant id="p2"><nameID aor="sip:2@x"/></participant>
  <extensiondata parent="nobody" xmlns:apkt="http://acmepacket.com/siprec/extensiondata"><apkt:callingParty>true</apkt:callingParty></extensiondata>
  <extensiondata parent="p2" xmlns:apkt="http://acmepacket.com/siprec/extensiondata"><apkt:callingParty> TRUE </apkt:callingParty></extensiondata>
</recording>`,
			want: siprec.Metadata{Caller: "p2", Participants: []siprec.Participant{
				{ID: "p1", AOR: "sip:1@x", Number: "1"}, {ID: "p2", AOR: "sip:2@x", Number: "2"}}},
		},
		{
			name: "Sonus callData in the session: To's display name fills a blank name",
			xml: `<tns:recording xmlns:tns="urn:ietf:params:xml:ns:recording">
  <tns:session session_id="s"><callData xmlns="urn:ietf:params:xml:ns:callData"><fromhdr>&lt;sip:+441632960003@gw:5060;user=phone&gt;;tag=1</fromhdr><tohdr>"Main \"Office\"" &lt;sip:2000@pbx&gt;</tohdr><callid> c1@gw </callid></callData></tns:session>
  <tns:participant participant_id="to"><tns:nameID aor="2000@PBX"><tns:name> </tns:name></tns:nameID></tns:participant>
  <tns:participant participant_id="from"><tns:nameID aor="+441632960003@gw"/></tns:participant>
</tns:recording>`,
			want: siprec.Metadata{SessionID: "s", CallID: "c1@gw", Caller: "from", Participants: []siprec.Participant{
				{ID: "to", Name: `Main "Office"`, AOR: "2000@PBX", Number: "2000"}, {ID: "from", AOR: "+441632960003@gw", Number: "+441632960003"}}},
		},
		{
			name: "Latin-1 document",
			xml:  "<?xml version='1.0' encoding='ISO-8859-1'?><recording><participant participant_id='p'><nameID aor='sip:1@x'><name>Ren\xe9e</name></nameID></participant></recording>",
			want: siprec.Metadata{Participants: []siprec.Participant{{ID: "p", Name: "Renée", AOR: "sip:1@x", Number: "1"}}},
		},
	}
	for _, tt := range tests {
		m, err := siprec.ParseMetadata([]byte(tt.xml))
		if err != nil {
			t.Errorf("%s: ParseMetadata: %v", tt.name, err)
			continue
		}
		if !equalMetadata(*m, tt.want) {
			t.Errorf("%s: ParseMetadata =\n%+v\nwant\n%+v", tt.name, *m, tt.want)
		}
		for label, want := range tt.senders {
			var got []string
			for _, p := range m.Senders(label) {
				got = append(got, p.ID)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: Senders(%q) = %v, want %v", tt.name, label, got, want)
			}
		}
	}
}

func equalMetadata(a, b siprec.Metadata) bool {
	return a.DataMode == b.DataMode && a.SessionID == b.SessionID && a.SIPSessionID == b.SIPSessionID && a.GroupID == b.GroupID &&
		a.CallID == b.CallID && a.Caller == b.Caller &&
		slices.EqualFunc(a.Participants, b.Participants, equalParticipant) && slices.Equal(a.Streams, b.Streams)
}

// billionLaughs is the classic entity-expansion bomb: 10^9 "lol"s from a
// few hundred bytes if a parser expands entities.
const billionLaughs = `<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<recording xmlns="urn:ietf:params:xml:ns:recording:1"><participant participant_id="&lol9;"/></recording>`

func TestParseMetadataErrors(t *testing.T) {
	tests := []struct {
		name, xml, want string
	}{
		{"billion laughs", billionLaughs, "DTD"},
		{"external entity", `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><recording>&x;</recording>`, "DTD"},
		{"entity without DTD", `<recording><participant participant_id="&lol9;"/></recording>`, "not well-formed"},
		{"BroadWorks' root", `<recording_metadata xmlns="urn:ietf:params:xml:ns:siprec">completeSRC</recording_metadata>`, "root element <recording_metadata>"},
		{"empty", "", "empty"},
		{"white space", " \r\n", "empty"},
		{"text", "completeSRCselective", "not XML"},
		{"truncated", `<recording><participant participant_id="p">`, "not well-formed"},
		{"mismatched tags", `<recording><participant></recording>`, "not well-formed"},
		{"unknown encoding", `<?xml version="1.0" encoding="EBCDIC-US"?><recording/>`, "not well-formed"},
		{"invalid UTF-8", "<recording><participant participant_id='\xff'/></recording>", "not well-formed"},
		{"too large", "<recording>" + strings.Repeat(" ", siprec.MaxBodySize) + "</recording>", "larger than 65536 bytes"},
	}
	for _, tt := range tests {
		start := time.Now()
		_, err := siprec.ParseMetadata([]byte(tt.xml))
		if callvault.ErrorCode(err) != callvault.EINVALID || !strings.Contains(callvault.ErrorMessage(err), tt.want) {
			t.Errorf("%s: ParseMetadata = %v; want invalid mentioning %q", tt.name, err, tt.want)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Errorf("%s: took %v", tt.name, d)
		}
	}
}

func TestNumber(t *testing.T) {
	tests := []struct{ in, want string }{
		{"sip:+441632960001@pbx.example", "+441632960001"},
		{"sip:+44-1632-960001@pbx.example;user=phone", "+441632960001"},
		{"<sips:01632960001;isub=1@pbx>", "01632960001"},
		{"SIP:7300@35.162.237.204:5060", "7300"},
		{"tel:+44.1632.960001;phone-context=+44", "+441632960001"},
		{"tel:(01632) 960001", "01632960001"},
		{"2249888500@172.16.198.55", "2249888500"},
		{"7300", "7300"},
		{"sip:%2B441632960001@pbx", "+441632960001"},
		{"sip:alice@example.com", ""},
		{"sip:anonymous@anonymous.invalid", ""},
		{"sip:10.0.0.1", ""},
		{"sip:10.0.0.1:5060", ""},
		{"urn:uuid:e76f6cf1-181e-4f94-a137-a3dddg85b35f", ""},
		{"sip:+@x", ""},
		{"sip:1+2@x", ""},
		{"sip:*67@x", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := siprec.Number(tt.in); got != tt.want {
			t.Errorf("Number(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
