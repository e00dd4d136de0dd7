package siprec_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/siprec"
)

// sampleStream is what one m= line of a sample should parse to.
type sampleStream struct {
	label  string
	port   int
	addr   string
	pts    []uint8
	names  []string
	ptime  int
	sender string // ID of the participant who sends it; "" when the metadata is unusable
}

// sample is what a file in testdata/samples should parse to, read off the
// file by hand.
type sample struct {
	boundary     string
	streams      []sampleStream
	metadataErr  string // when the metadata is refused: part of the message
	sessionID    string
	caller       string
	callID       string
	participants []siprec.Participant // without Sends and Recvs
}

var samples = map[string]sample{
	// Cisco CUBE: RFC 7865 namespace; send/recv in participantstreamassoc;
	// the first participant has no <name>; a third part (application/gtd)
	// and no closing delimiter.
	"cisco-siprec-offer.txt": {
		boundary: "uniqueBoundary",
		streams: []sampleStream{
			{label: "1", port: 10292, addr: "172.31.93.236", pts: []uint8{0, 101}, names: []string{"PCMU", "TELEPHONE-EVENT"}, ptime: 20, sender: "kQNhKFdEEeeJ99D/VsPGWA=="},
			{label: "2", port: 10294, addr: "172.31.93.236", pts: []uint8{0, 101}, names: []string{"PCMU", "TELEPHONE-EVENT"}, ptime: 20, sender: "kQNhKFdEEeeJ+ND/VsPGWA=="},
		},
		sessionID: "kQNhKFdEEeeJ9tD/VsPGWA==",
		participants: []siprec.Participant{
			{ID: "kQNhKFdEEeeJ99D/VsPGWA==", AOR: "sip:7301@35.162.237.204", Number: "7301"},
			{ID: "kQNhKFdEEeeJ+ND/VsPGWA==", Name: "7300", AOR: "sip:7300@35.162.237.204", Number: "7300"},
		},
	},
	// Oracle/Acme: draft namespace, id= attributes, <send> inside
	// <participant>, no <recv>, numeric labels, callingParty extension;
	// maxptime but no ptime; closing delimiter followed by a space.
	"acme-siprec-offer.txt": {
		boundary: "unique-boundary-1",
		streams: []sampleStream{
			{label: "16777227", port: 20106, addr: "192.168.50.140", pts: []uint8{0}, names: []string{"PCMU"}, sender: "fSD3PFErSjNTHLDiXCELjw=="},
			{label: "16777228", port: 20110, addr: "192.168.50.140", pts: []uint8{0}, names: []string{"PCMU"}, sender: "EbccNyypRlFYXTm4iw8hxw=="},
		},
		sessionID: "AavRXwIIQj1Q39eJulTipQ==",
		caller:    "fSD3PFErSjNTHLDiXCELjw==",
		participants: []siprec.Participant{
			{ID: "fSD3PFErSjNTHLDiXCELjw==", Name: "9000", AOR: "sip:9000@192.168.50.102", Number: "9000"},
			{ID: "EbccNyypRlFYXTm4iw8hxw==", Name: "1002", AOR: "sip:1002@192.168.50.10", Number: "1002"},
		},
	},
	// Sonus/Ribbon: tns: prefix, draft namespace, AORs without sip:, a
	// blank <name>, no session-level c=; the caller (From in callData)
	// sends label 2, not label 1. No closing delimiter.
	"sonus-siprec-offer.txt": {
		boundary: "sonus-content-delim",
		streams: []sampleStream{
			{label: "1", port: 48932, addr: "172.16.169.132", pts: []uint8{0}, names: []string{"PCMU"}, sender: "MTQ3YzA3YzMtNjdkNy0xMA=="},
			{label: "2", port: 48926, addr: "172.16.169.132", pts: []uint8{0}, names: []string{"PCMU"}, sender: "MTQ3YzA3YzItNjdkNy0xMA=="},
		},
		sessionID: "MTQ3YzA3YzEtNjdkNy0xMA==",
		caller:    "MTQ3YzA3YzItNjdkNy0xMA==",
		callID:    "2da553f7-a48b-1235-d6a2-5254003a4988",
		participants: []siprec.Participant{
			{ID: "MTQ3YzA3YzItNjdkNy0xMA==", Name: "Extension 8500", AOR: "2249888500@172.16.198.55", Number: "2249888500"},
			{ID: "MTQ3YzA3YzMtNjdkNy0xMA==", AOR: "2249888012@172.16.195.72", Number: "2249888012"},
		},
	},
	// BroadWorks: metadata part first, "Content-Type:application/ +xml",
	// no usable XML; one mixed stream whose rtpmaps are out of order and
	// whose a=label comes last.
	"broadworks-offer.txt": {
		boundary: "UniqueBroadWorksBoundary",
		streams: []sampleStream{
			{label: "1", port: 22294, addr: "X.X.X.X", pts: []uint8{8, 101, 0, 9, 18}, names: []string{"PCMA", "TELEPHONE-EVENT", "PCMU", "G722", "G729"}, ptime: 20},
		},
		metadataErr: "root element <recording_metadata>",
	},
}

func readSample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "samples", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// crlf turns the stored bare-LF sample into what travels on the wire.
func crlf(b []byte) []byte {
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
}

func TestEverySampleHasExpectations(t *testing.T) {
	files, err := filepath.Glob("testdata/samples/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, ok := samples[filepath.Base(f)]; !ok {
			t.Errorf("%s has no entry in samples (samples_test.go): read it and write down what it should parse to", f)
		}
	}
	if len(files) != len(samples) {
		t.Errorf("%d sample files, %d expectations", len(files), len(samples))
	}
}

func TestSamples(t *testing.T) {
	for name, want := range samples {
		raw := readSample(t, name)
		variants := []struct {
			how         string
			contentType string
			body        []byte
		}{
			{"as captured (LF)", "multipart/mixed;boundary=" + want.boundary, raw},
			{"CRLF, quoted boundary", `multipart/mixed; boundary="` + want.boundary + `"`, crlf(raw)},
			{"no Content-Type", "", raw},
		}
		for _, v := range variants {
			t.Run(name+"/"+v.how, func(t *testing.T) {
				sdp, md, err := siprec.SplitBody(v.contentType, v.body)
				if err != nil {
					t.Fatalf("SplitBody: %v", err)
				}
				if !bytes.HasSuffix(sdp, []byte("\r\n")) {
					t.Errorf("SDP does not end with CRLF: %q", sdp[max(0, len(sdp)-20):])
				}
				checkOffer(t, sdp, want)
				checkMetadata(t, md, want)
			})
		}
	}
}

func checkOffer(t *testing.T, sdp []byte, want sample) *siprec.Offer {
	t.Helper()
	o, err := siprec.ParseOffer(sdp)
	if err != nil {
		t.Fatalf("ParseOffer: %v", err)
	}
	if len(o.Streams) != len(want.streams) {
		t.Fatalf("ParseOffer: %d streams, want %d", len(o.Streams), len(want.streams))
	}
	for i, s := range o.Streams {
		w := want.streams[i]
		var pts []uint8
		var names []string
		for _, c := range s.Codecs {
			pts, names = append(pts, c.PT), append(names, c.Name)
			if c.ClockRate != 8000 || c.Channels != 1 {
				t.Errorf("stream %d codec %+v, want 8000 Hz mono", i, c)
			}
		}
		if s.Index != i || s.Media != "audio" || s.Label != w.label || s.Port != w.port || s.Addr != w.addr ||
			s.Proto != "RTP/AVP" || s.Direction != siprec.SendOnly || s.Ptime != w.ptime ||
			!slices.Equal(pts, w.pts) || !slices.Equal(names, w.names) {
			t.Errorf("stream %d = %+v\nwant label %s port %d addr %s PTs %v %v ptime %d, sendonly RTP/AVP", i, s, w.label, w.port, w.addr, w.pts, w.names, w.ptime)
		}
		// The last attribute of the last m= line survives the multipart
		// framing (pion/sdp drops it without a final CRLF).
		if i == len(o.Streams)-1 && s.Label == "" {
			t.Errorf("last stream lost its attributes")
		}
	}
	return o
}

func checkMetadata(t *testing.T, md []byte, want sample) {
	t.Helper()
	if md == nil {
		t.Fatal("SplitBody found no metadata part")
	}
	m, err := siprec.ParseMetadata(md)
	if want.metadataErr != "" {
		if callvault.ErrorCode(err) != callvault.EINVALID || !strings.Contains(callvault.ErrorMessage(err), want.metadataErr) {
			t.Fatalf("ParseMetadata = %v, want invalid mentioning %q", err, want.metadataErr)
		}
		return
	}
	if err != nil {
		t.Fatalf("ParseMetadata: %v", err)
	}
	if m.SessionID != want.sessionID || m.Caller != want.caller || m.CallID != want.callID || m.DataMode != "complete" {
		t.Errorf("metadata session %q caller %q call-id %q mode %q, want %q %q %q complete", m.SessionID, m.Caller, m.CallID, m.DataMode, want.sessionID, want.caller, want.callID)
	}
	if len(m.Participants) != len(want.participants) {
		t.Fatalf("participants = %+v, want %+v", m.Participants, want.participants)
	}
	for i, p := range m.Participants {
		got := p
		got.Sends, got.Recvs = nil, nil
		if !equalParticipant(got, want.participants[i]) {
			t.Errorf("participant %d = %+v, want %+v", i, got, want.participants[i])
		}
	}
	for _, w := range want.streams {
		senders := m.Senders(w.label)
		if len(senders) != 1 || senders[0].ID != w.sender {
			t.Errorf("Senders(%q) = %+v, want participant %s", w.label, senders, w.sender)
		}
	}
}

func equalParticipant(a, b siprec.Participant) bool {
	return a.ID == b.ID && a.Name == b.Name && a.AOR == b.AOR && a.Number == b.Number &&
		slices.Equal(a.Sends, b.Sends) && slices.Equal(a.Recvs, b.Recvs)
}

// TestSampleAnswers answers every sample as the recorder would (G.711 only)
// and checks the answer against its offer.
func TestSampleAnswers(t *testing.T) {
	for name, want := range samples {
		sdp, _, err := siprec.SplitBody("multipart/mixed;boundary="+want.boundary, readSample(t, name))
		if err != nil {
			t.Fatal(err)
		}
		o := checkOffer(t, sdp, want)
		ports := make([]int, len(o.Streams))
		for i := range ports {
			ports[i] = 40000 + 2*i
		}
		ans, err := siprec.Answer(o, siprec.AnswerOptions{Addr: "192.0.2.10", Ports: ports, SessionID: 7, SessionVersion: 1})
		if err != nil {
			t.Fatalf("%s: Answer: %v", name, err)
		}
		a := parseAnswer(t, ans)
		for i, s := range a.Streams {
			var pts []uint8
			for _, c := range o.Streams[i].Codecs {
				if c.Name != "G722" && c.Name != "G729" {
					pts = append(pts, c.PT)
				}
			}
			if s.Port != ports[i] || s.Label != o.Streams[i].Label || s.Direction != siprec.RecvOnly || !slices.Equal(ptsOf(s), pts) {
				t.Errorf("%s: answer stream %d = %+v, want port %d label %s recvonly PTs %v", name, i, s, ports[i], o.Streams[i].Label, pts)
			}
		}
	}
}
