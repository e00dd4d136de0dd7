package siprec

import (
	"bytes"
	"mime"
	"strings"

	"github.com/callvault/callvault"
)

// SplitBody returns the SDP offer and the recording metadata of an INVITE
// body. contentType is the INVITE's Content-Type: multipart/mixed for a
// SIPREC offer, or application/sdp for a client that sends no metadata (then
// metadata is nil). Parts are recognised by their Content-Type, by
// Content-Disposition: recording-session, or, when the type is missing or
// unparseable, by their first bytes; other parts (Cisco's application/gtd,
// ISUP) are ignored.
//
// The multipart framing is read line by line, so CRLF or bare LF, a preamble,
// an epilogue, and a missing closing delimiter (Cisco, Sonus) are all
// accepted. The returned SDP has CRLF line endings, the last line included:
// the multipart framing strips that one, and pion/sdp needs it to keep the
// last line. Errors are EINVALID.
func SplitBody(contentType string, body []byte) (sdp, metadata []byte, err error) {
	if len(body) > MaxBodySize {
		return nil, nil, invalidf("body is larger than %d bytes", MaxBodySize)
	}
	mt, params := mediaType(contentType)
	switch {
	case mt == "" && looksLikeSDP(body):
		mt = typeSDP
	case mt == "" && bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("--")):
		mt = "multipart/mixed"
	}
	switch {
	case mt == typeSDP:
		if sdp = normalizeSDP(body); sdp == nil {
			return nil, nil, invalidf("body has no SDP")
		}
		return sdp, nil, nil
	case strings.HasPrefix(mt, "multipart/"):
	case strings.Contains(mt, "rs-metadata"):
		// Metadata alone: an UPDATE that only says who is on the call now.
		return nil, append([]byte{}, body...), ErrNoSDP
	case mt == "":
		return nil, nil, invalidf("body has no Content-Type and is neither SDP nor multipart")
	default:
		return nil, nil, invalidf("Content-Type %q is neither multipart/mixed nor application/sdp", mt)
	}

	boundary := params["boundary"]
	if boundary == "" {
		boundary = sniffBoundary(body)
	}
	if boundary == "" {
		return nil, nil, invalidf("multipart body has no boundary")
	}
	parts, err := splitMultipart(body, boundary)
	if err != nil {
		return nil, nil, err
	}
	for i, p := range parts {
		switch p.kind() {
		case typeSDP:
			if sdp != nil {
				return nil, nil, invalidf("multipart body has more than one SDP part (part %d)", i+1)
			}
			if sdp = normalizeSDP(p.content); sdp == nil {
				return nil, nil, invalidf("SDP part %d is empty", i+1)
			}
		case typeMetadata:
			if metadata != nil {
				return nil, nil, invalidf("multipart body has more than one metadata part (part %d)", i+1)
			}
			metadata = append([]byte{}, p.content...)
		}
	}
	if sdp == nil && metadata != nil {
		return nil, metadata, ErrNoSDP
	}
	if sdp == nil {
		return nil, nil, invalidf("multipart body has no application/sdp part")
	}
	return sdp, metadata, nil
}

// ErrNoSDP is SplitBody's error for a body of metadata alone, which it
// returns with the metadata: fine in an UPDATE, not in an INVITE.
var ErrNoSDP = callvault.Errorf(callvault.EINVALID, "siprec: the body has no application/sdp part, only recording metadata")

const (
	typeSDP      = "application/sdp"
	typeMetadata = "application/rs-metadata+xml"
)

// part is one body part of a multipart body.
type part struct {
	header  map[string]string // lower-case name → first value
	content []byte
}

// kind returns typeSDP, typeMetadata or "" for a part to ignore.
func (p part) kind() string {
	ct, ok := p.header["content-type"]
	mt, _ := mediaType(ct)
	disp, _ := mediaType(p.header["content-disposition"])
	switch {
	case mt == typeSDP:
		return typeSDP
	case strings.Contains(mt, "rs-metadata"), disp == "recording-session":
		// RFC 7866 defines the recording-session disposition for the
		// metadata; it rescues BroadWorks' "Content-Type:application/ +xml".
		return typeMetadata
	case !ok || !validMediaType(mt):
		// No usable type: go by the content.
		if looksLikeSDP(p.content) {
			return typeSDP
		}
		if bytes.HasPrefix(bytes.TrimLeft(p.content, " \t\r\n\ufeff"), []byte("<")) {
			return typeMetadata
		}
	}
	return ""
}

// mediaType returns the lower-case media type of a Content-Type (or
// Content-Disposition) value and its parameters. It is lenient: when the
// parameters do not parse, the type is still returned and the boundary
// parameter is dug out by hand, since some clients do not quote boundaries
// containing '=' or '/'.
func mediaType(v string) (string, map[string]string) {
	mt, params, err := mime.ParseMediaType(v)
	if err == nil {
		return mt, params
	}
	head, rest, _ := strings.Cut(v, ";")
	mt = strings.ToLower(strings.TrimSpace(head))
	params = map[string]string{}
	for p := range strings.SplitSeq(rest, ";") {
		k, val, ok := strings.Cut(p, "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "boundary") {
			params["boundary"] = strings.Trim(strings.TrimSpace(val), `"`)
		}
	}
	return mt, params
}

// validMediaType reports whether mt is type/subtype made of token characters.
func validMediaType(mt string) bool {
	typ, sub, ok := strings.Cut(mt, "/")
	return ok && isToken(typ) && isToken(sub)
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

func looksLikeSDP(b []byte) bool {
	return bytes.HasPrefix(bytes.TrimLeft(b, " \t\r\n\ufeff"), []byte("v=0"))
}

// normalizeSDP trims surrounding white space and a byte-order mark and ends
// every line with CRLF, the last one included: multipart framing takes the
// final line break, and without it pion/sdp stops with EOF before storing
// the last media section's attributes. It returns nil for an empty SDP.
func normalizeSDP(b []byte) []byte {
	b = bytes.TrimPrefix(bytes.TrimLeft(b, " \t\r\n"), []byte("\ufeff"))
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	out := make([]byte, 0, len(b)+bytes.Count(b, []byte("\n"))+2)
	for line := range bytes.Lines(b) {
		out = append(append(out, bytes.TrimRight(line, "\r\n")...), '\r', '\n')
	}
	return out
}

// sniffBoundary returns the boundary of the first line that looks like a
// multipart delimiter, for clients that leave the parameter out.
func sniffBoundary(body []byte) string {
	for line := range bytes.Lines(body) {
		line = trimLine(line)
		if len(line) == 0 {
			continue
		}
		if b, ok := bytes.CutPrefix(line, []byte("--")); ok && len(b) > 0 {
			return string(b)
		}
		return ""
	}
	return ""
}

// trimLine strips the line break and trailing linear white space, which
// RFC 2046 allows after a delimiter.
func trimLine(line []byte) []byte {
	return bytes.TrimRight(line, " \t\r\n")
}

// splitMultipart splits body at its delimiter lines. The line break before
// a delimiter belongs to the delimiter (RFC 2046 §5.1.1). Text before the
// first delimiter and after the closing one is ignored; a body that ends
// without the closing delimiter ends its last part at the end of the body.
func splitMultipart(body []byte, boundary string) ([]part, error) {
	delim := []byte("--" + boundary)
	var (
		parts  []part
		start  = -1 // start of the current part's content; -1 before the first delimiter
		closed bool
	)
	for pos := 0; pos < len(body) && !closed; {
		next := len(body)
		if i := bytes.IndexByte(body[pos:], '\n'); i >= 0 {
			next = pos + i + 1
		}
		line := trimLine(body[pos:next])
		isDelim := bytes.Equal(line, delim)
		closed = !isDelim && len(line) == len(delim)+2 && bytes.HasPrefix(line, delim) && bytes.HasSuffix(line, []byte("--"))
		if isDelim || closed {
			if start >= 0 {
				p, err := parsePart(trimLineBreak(body[start:pos]), len(parts)+1)
				if err != nil {
					return nil, err
				}
				parts = append(parts, p)
			}
			if isDelim && len(parts) == MaxParts {
				return nil, invalidf("multipart body has more than %d parts", MaxParts)
			}
			start = next
		}
		pos = next
	}
	if start < 0 {
		return nil, invalidf("multipart body has no part delimited by boundary %q", boundary)
	}
	if !closed {
		p, err := parsePart(body[start:], len(parts)+1)
		if err != nil {
			return nil, err
		}
		parts = append(parts, p)
	}
	return parts, nil
}

// trimLineBreak removes one final CRLF or LF.
func trimLineBreak(b []byte) []byte {
	if b, ok := bytes.CutSuffix(b, []byte("\r\n")); ok {
		return b
	}
	b, _ = bytes.CutSuffix(b, []byte("\n"))
	return b
}

// parsePart reads a part's header fields up to the empty line. A part whose
// first line is not a header field has no header (its content starts at
// once), which is how some clients send a bare SDP part. Of a repeated
// field the first is kept.
func parsePart(b []byte, n int) (part, error) {
	p := part{header: map[string]string{}}
	var (
		name   string   // the field being read; "" for a repeat, whose value is ignored
		value  [][]byte // its value and folded continuations
		header = func() {
			if name != "" {
				p.header[name] = string(bytes.TrimSpace(bytes.Join(value, []byte(" "))))
			}
		}
	)
	for pos := 0; pos < len(b); {
		next := len(b)
		if i := bytes.IndexByte(b[pos:], '\n'); i >= 0 {
			next = pos + i + 1
		}
		line := bytes.TrimRight(b[pos:next], "\r\n")
		switch {
		case len(line) == 0:
			header()
			p.content = b[next:]
			return p, nil
		case (line[0] == ' ' || line[0] == '\t') && pos > 0:
			value = append(value, bytes.TrimSpace(line))
		default:
			key, v, ok := bytes.Cut(line, []byte(":"))
			key = bytes.TrimRight(key, " \t")
			if !ok || !isToken(string(key)) {
				if pos == 0 {
					p.content = b
					return p, nil
				}
				return part{}, invalidf("part %d has a malformed header line %.40q", n, line)
			}
			header()
			name, value = strings.ToLower(string(key)), [][]byte{bytes.TrimSpace(v)}
			if _, dup := p.header[name]; dup {
				name = ""
			}
		}
		pos = next
	}
	header()
	return p, nil // header fields only, no content
}
