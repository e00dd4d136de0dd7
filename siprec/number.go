package siprec

import (
	"net/url"
	"strings"
)

// Number returns the telephone number or extension in an address of record:
// the user part of a sip:, sips: or tel: URI (or of a bare "user@host", as
// Sonus writes), without visual separators (RFC 3966) or parameters, keeping
// a leading '+'. "sip:+44 1632-960001@pbx;user=phone" gives "+441632960001",
// "sip:7300@10.0.0.1" gives "7300", and "sip:alice@example.com" gives "":
// a user part with anything but digits and separators is not a number.
// Normalising to E.164 and telling numbers from extensions is left to the
// caller (package phone).
func Number(aor string) string {
	user := userPart(aor)
	if u, err := url.PathUnescape(user); err == nil {
		user = u
	}
	var b strings.Builder
	for i := 0; i < len(user); i++ {
		switch c := user[i]; {
		case c >= '0' && c <= '9':
			b.WriteByte(c)
		case c == '+' && i == 0:
			b.WriteByte(c)
		case c == '-' || c == '.' || c == '(' || c == ')' || c == ' ':
		default:
			return ""
		}
	}
	if n := b.String(); strings.Trim(n, "+") != "" {
		return n
	}
	return ""
}

// userPart returns the user part of a SIP or tel URI, or of "user@host".
func userPart(aor string) string {
	s := strings.Trim(strings.TrimSpace(aor), "<>")
	if scheme, rest, ok := strings.Cut(s, ":"); ok && !strings.Contains(scheme, "@") {
		switch strings.ToLower(scheme) {
		case "sip", "sips":
			user, _, ok := strings.Cut(rest, "@")
			if !ok {
				return "" // sip:host has no user part
			}
			s = user
		case "tel":
			s = rest
		default:
			return "" // urn:, mailto:, or "host:port"
		}
	} else if user, _, ok := strings.Cut(s, "@"); ok {
		s = user
	}
	user, _, _ := strings.Cut(s, ";") // user or tel parameters
	return user
}

// aorKey returns "user@host" in lower case, for comparing an AOR written
// with or without a scheme, angle brackets, a port or URI parameters.
func aorKey(aor string) string {
	s := strings.Trim(strings.TrimSpace(aor), "<>")
	if scheme, rest, ok := strings.Cut(s, ":"); ok {
		switch strings.ToLower(scheme) {
		case "sip", "sips", "tel":
			s = rest
		}
	}
	s, _, _ = strings.Cut(s, ">")
	user, host, ok := strings.Cut(s, "@")
	if !ok {
		user, _, _ = strings.Cut(user, ";")
		return strings.ToLower(user)
	}
	user, _, _ = strings.Cut(user, ";")
	host, _, _ = strings.Cut(host, ";")
	host, _, _ = strings.Cut(host, ":") // port; an IPv6 host is compared up to its first colon, which is enough here
	if user == "" || host == "" {
		return ""
	}
	return strings.ToLower(user + "@" + host)
}

// nameAddr splits a From or To header value, `"Name" <uri>;tag=x` or
// `uri;tag=x`, into its display name and URI.
func nameAddr(v string) (name, uri string) {
	v = strings.TrimSpace(v)
	lt := strings.IndexByte(v, '<')
	if lt < 0 {
		uri, _, _ = strings.Cut(v, ";")
		return "", strings.TrimSpace(uri)
	}
	name = strings.TrimSpace(v[:lt])
	if len(name) >= 2 && name[0] == '"' && name[len(name)-1] == '"' {
		name = strings.ReplaceAll(name[1:len(name)-1], `\"`, `"`)
	}
	uri, _, _ = strings.Cut(v[lt+1:], ">")
	return strings.TrimSpace(name), strings.TrimSpace(uri)
}
