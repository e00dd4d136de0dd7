package siprec_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/siprec"
)

const (
	miniSDP = "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\na=label:1\r\n"
	miniXML = `<recording xmlns="urn:ietf:params:xml:ns:recording:1"><datamode>complete</datamode></recording>`
)

// multipart joins parts (each "headers\r\n\r\ncontent") with boundary b.
func multipart(b string, parts ...string) string {
	var s strings.Builder
	for _, p := range parts {
		s.WriteString("--" + b + "\r\n" + p + "\r\n")
	}
	s.WriteString("--" + b + "--\r\n")
	return s.String()
}

func TestSplitBody(t *testing.T) {
	sdpPart := "Content-Type: application/sdp\r\n\r\n" + miniSDP
	xmlPart := "Content-Type: application/rs-metadata+xml\r\nContent-Disposition: recording-session\r\n\r\n" + miniXML
	tests := []struct {
		name        string
		contentType string
		body        string
		metadata    bool // a metadata part is expected
	}{
		{"bare SDP", "application/sdp", miniSDP, false},
		{"bare SDP, upper-case type and parameters", "Application/SDP; charset=utf-8", miniSDP, false},
		{"bare SDP without Content-Type", "", "\r\n" + miniSDP, false},
		{"bare SDP without final CRLF", "application/sdp", strings.TrimSuffix(miniSDP, "\r\n"), false},
		{"multipart", "multipart/mixed;boundary=b1", multipart("b1", sdpPart, xmlPart), true},
		{"quoted boundary with spaces", `multipart/mixed; boundary="b 1:x"`, multipart("b 1:x", sdpPart, xmlPart), true},
		{"unquoted boundary with '=' (invalid, accepted)", "multipart/mixed;boundary=----=_Part_1", multipart("----=_Part_1", sdpPart, xmlPart), true},
		{"boundary parameter missing", "multipart/mixed", multipart("b1", sdpPart, xmlPart), true},
		{"no Content-Type at all", "", multipart("b1", xmlPart, sdpPart), true},
		{"preamble and epilogue", "multipart/mixed;boundary=b1", "This is a preamble.\r\n--b1 and not a delimiter\r\n" + multipart("b1", sdpPart, xmlPart) + "epilogue\r\n--b1\r\n", true},
		{"bare LF", "multipart/mixed;boundary=b1", strings.ReplaceAll(multipart("b1", sdpPart, xmlPart), "\r\n", "\n"), true},
		{"mixed line endings", "multipart/mixed;boundary=b1", "--b1\r\n" + sdpPart + "\n--b1\n" + strings.ReplaceAll(xmlPart, "\r\n", "\n") + "\r\n--b1--", true},
		{"trailing white space after delimiters", "multipart/mixed;boundary=b1", "--b1 \t\r\n" + sdpPart + "\r\n--b1\t\r\n" + xmlPart + "\r\n--b1-- \r\n", true},
		{"no closing delimiter", "multipart/mixed;boundary=b1", "--b1\r\n" + sdpPart + "\r\n--b1\r\n" + xmlPart, true},
		{"application/rs-metadata", "multipart/mixed;boundary=b1", multipart("b1", sdpPart, "Content-Type: application/rs-metadata\r\n\r\n"+miniXML), true},
		{"vendor metadata type", "multipart/mixed;boundary=b1", multipart("b1", sdpPart, "Content-Type: application/vnd.example.rs-metadata+xml\r\n\r\n"+miniXML), true},
		{"broken metadata type with recording-session", "multipart/mixed;boundary=b1", multipart("b1", sdpPart, "Content-Type:application/ +xml\r\nContent-Disposition:recording-session\r\n\r\n"+miniXML), true},
		{"metadata by disposition alone", "multipart/mixed;boundary=b1", multipart("b1", sdpPart, "Content-Type: text/plain\r\nContent-Disposition: Recording-Session; handling=required\r\n\r\n"+miniXML), true},
		{"parts without Content-Type", "multipart/mixed;boundary=b1", multipart("b1", "Content-Disposition: session\r\n\r\n"+miniSDP, "Content-Length: 99\r\n\r\n"+miniXML), true},
		{"parts without any header", "multipart/mixed;boundary=b1", multipart("b1", miniSDP, "\r\n"+miniXML), true},
		{"folded and repeated header fields", "multipart/mixed;boundary=b1", multipart("b1", "Content-Type:\r\n application/sdp\r\nContent-Type: text/plain\r\n\r\n"+miniSDP, xmlPart), true},
		{"other parts ignored", "multipart/mixed;boundary=b1", multipart("b1", "Content-Type: application/gtd\r\n\r\nIAM,\r\nGCI,9103", sdpPart, "Content-Type: application/isup;version=itu-t92+\r\n\r\n\x01\x02", xmlPart), true},
		{"metadata only sniffed when untyped", "multipart/mixed;boundary=b1", multipart("b1", sdpPart, "Content-Type: text/html\r\n\r\n<html></html>"), false},
		{"eight parts", "multipart/mixed;boundary=b1", multipart("b1", sdpPart, xmlPart, "a: b\r\n\r\nx", "a: b\r\n\r\nx", "a: b\r\n\r\nx", "a: b\r\n\r\nx", "a: b\r\n\r\nx", "a: b\r\n\r\nx"), true},
	}
	for _, tt := range tests {
		sdp, md, err := siprec.SplitBody(tt.contentType, []byte(tt.body))
		if err != nil {
			t.Errorf("%s: SplitBody(%q, ...) = %v", tt.name, tt.contentType, err)
			continue
		}
		if string(sdp) != miniSDP {
			t.Errorf("%s: SDP = %q, want %q", tt.name, sdp, miniSDP)
		}
		switch {
		case tt.metadata && string(md) != miniXML:
			t.Errorf("%s: metadata = %q, want %q", tt.name, md, miniXML)
		case !tt.metadata && md != nil:
			t.Errorf("%s: metadata = %q, want none", tt.name, md)
		}
	}
}

func TestSplitBodyErrors(t *testing.T) {
	sdpPart := "Content-Type: application/sdp\r\n\r\n" + miniSDP
	xmlPart := "Content-Type: application/rs-metadata+xml\r\n\r\n" + miniXML
	nine := make([]string, 9)
	for i := range nine {
		nine[i] = sdpPart
	}
	tests := []struct {
		name        string
		contentType string
		body        string
		want        string
	}{
		{"too large", "application/sdp", miniSDP + strings.Repeat("a=x\r\n", siprec.MaxBodySize/5), "larger than 65536 bytes"},
		{"empty SDP", "application/sdp", " \r\n", "no SDP"},
		{"other type", "text/plain", miniSDP, `"text/plain" is neither`},
		{"untyped and unrecognisable", "", "hello", "no Content-Type and is neither SDP nor multipart"},
		{"metadata part without content", "multipart/mixed;boundary=b1", "--b1\r\n" + sdpPart + "\r\n--b1\r\nContent-Type: application/rs-metadata+xml\r\n--b1\r\n" + xmlPart + "\r\n--b1--", "more than one metadata part (part 3)"},
		{"no SDP part", "multipart/mixed;boundary=b1", multipart("b1", xmlPart), "no application/sdp part"},
		{"two SDP parts", "multipart/mixed;boundary=b1", multipart("b1", sdpPart, sdpPart), "more than one SDP part (part 2)"},
		{"two metadata parts", "multipart/mixed;boundary=b1", multipart("b1", sdpPart, xmlPart, xmlPart), "more than one metadata part (part 3)"},
		{"empty SDP part", "multipart/mixed;boundary=b1", multipart("b1", "Content-Type: application/sdp\r\n\r\n"), "SDP part 1 is empty"},
		{"nine parts", "multipart/mixed;boundary=b1", multipart("b1", nine...), "more than 8 parts"},
		{"boundary not in body", "multipart/mixed;boundary=b2", multipart("b1", sdpPart), `no part delimited by boundary "b2"`},
		{"boundary nowhere", "multipart/mixed", "v=1\r\n", "no boundary"},
		{"empty boundary", `multipart/mixed;boundary=""`, "--\r\n" + sdpPart, "no boundary"},
		{"malformed header", "multipart/mixed;boundary=b1", multipart("b1", "Content-Type: application/sdp\r\nnot a header\r\n\r\n"+miniSDP), "part 1 has a malformed header line"},
	}
	for _, tt := range tests {
		_, _, err := siprec.SplitBody(tt.contentType, []byte(tt.body))
		if callvault.ErrorCode(err) != callvault.EINVALID || !strings.Contains(callvault.ErrorMessage(err), tt.want) {
			t.Errorf("%s: SplitBody = %v; want invalid mentioning %q", tt.name, err, tt.want)
		}
	}
}

// TestSplitBodyKeepsLastSDPLine is the regression test for the final CRLF:
// multipart framing takes the SDP's last line break, and without it
// pion/sdp fails on (or, if the error is ignored, loses) the last m= line's
// attributes.
func TestSplitBodyKeepsLastSDPLine(t *testing.T) {
	body := "--b\r\nContent-Type: application/sdp\r\n\r\n" + strings.TrimSuffix(miniSDP, "\r\n") + "\r\n--b--\r\n"
	sdp, _, err := siprec.SplitBody("multipart/mixed;boundary=b", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	o, err := siprec.ParseOffer(sdp)
	if err != nil {
		t.Fatal(err)
	}
	if o.Streams[0].Label != "1" {
		t.Errorf("last attribute lost: %+v", o.Streams[0])
	}
}

func ExampleSplitBody() {
	body := "--x\r\n" +
		"Content-Type: application/sdp\r\n\r\n" +
		"v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\na=label:1\r\n" +
		"--x\r\n" +
		"Content-Type: application/rs-metadata+xml\r\n\r\n" +
		`<recording xmlns="urn:ietf:params:xml:ns:recording:1">` +
		`<participant participant_id="p1"><nameID aor="sip:+441632960001@pbx.example"><name>Front desk</name></nameID></participant>` +
		`<stream stream_id="s1"><label>1</label></stream>` +
		`<participantstreamassoc participant_id="p1"><send>s1</send></participantstreamassoc>` +
		"</recording>\r\n" +
		"--x--\r\n"
	sdp, md, err := siprec.SplitBody("multipart/mixed;boundary=x", []byte(body))
	if err != nil {
		fmt.Println(err)
		return
	}
	offer, err := siprec.ParseOffer(sdp)
	if err != nil {
		fmt.Println(err)
		return
	}
	meta, err := siprec.ParseMetadata(md)
	if err != nil {
		fmt.Println(err) // record anyway; take the participants from the SIP headers
		return
	}
	for _, s := range offer.Streams {
		for _, p := range meta.Senders(s.Label) {
			fmt.Printf("label %s, RTP to %s:%d, sent by %s (%s)\n", s.Label, s.Addr, s.Port, p.Name, p.Number)
		}
	}
	answer, _ := siprec.Answer(offer, siprec.AnswerOptions{Addr: "192.0.2.10", Ports: []int{30000}})
	fmt.Print(string(bytes.ReplaceAll(answer, []byte("\r\n"), []byte("\n"))))
	// Output:
	// label 1, RTP to 198.51.100.7:5000, sent by Front desk (+441632960001)
	// v=0
	// o=callvault 0 0 IN IP4 192.0.2.10
	// s=callvault
	// c=IN IP4 192.0.2.10
	// t=0 0
	// m=audio 30000 RTP/AVP 0
	// a=rtpmap:0 PCMU/8000
	// a=label:1
	// a=recvonly
}

// TestSplitBodyMetadataAlone: a body of metadata alone (an UPDATE's, RFC
// 7866 §8.3), bare or in a multipart, is ErrNoSDP with the metadata.
func TestSplitBodyMetadataAlone(t *testing.T) {
	for _, tc := range []struct{ name, contentType, body string }{
		{"bare", "application/rs-metadata+xml", miniXML},
		{"multipart", "multipart/mixed;boundary=b1", multipart("b1", "Content-Type: application/rs-metadata+xml\r\n\r\n"+miniXML)},
	} {
		sdp, md, err := siprec.SplitBody(tc.contentType, []byte(tc.body))
		if !errors.Is(err, siprec.ErrNoSDP) || sdp != nil || !strings.Contains(string(md), "<recording") {
			t.Errorf("%s: SplitBody = %q, %q, %v; want no SDP, the metadata, ErrNoSDP", tc.name, sdp, md, err)
		}
	}
}
