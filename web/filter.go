package web

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/callvault/callvault"
)

// searchForm is the recordings search as typed into the page or the API's
// query string. Dates are local (Europe/London) days on the page; the API also
// takes RFC 3339 instants.
type searchForm struct {
	From, To, Number, Extension, Academy, Direction, MinDuration, MaxDuration, Source, After, Limit string
}

func readSearchForm(q url.Values) searchForm {
	g := func(k string) string { return strings.TrimSpace(q.Get(k)) }
	return searchForm{From: g("from"), To: g("to"), Number: g("number"), Extension: g("extension"),
		Academy: g("academy"), Direction: g("direction"), MinDuration: g("min_duration"),
		MaxDuration: g("max_duration"), Source: g("source"), After: g("after"), Limit: g("limit")}
}

// filter converts the form into a RecordingFilter, resolving the academy
// slug. Every problem is EINVALID with the field named.
func (s *Server) filter(f searchForm, academies []*callvault.Academy) (callvault.RecordingFilter, error) {
	var rf callvault.RecordingFilter
	var err error
	if rf.From, err = parseWhen("from", f.From, false); err != nil {
		return rf, err
	}
	if rf.To, err = parseWhen("to", f.To, true); err != nil {
		return rf, err
	}
	if !rf.From.IsZero() && !rf.To.IsZero() && !rf.From.Before(rf.To) {
		return rf, callvault.Errorf(callvault.EINVALID, "from must be before to")
	}
	if f.Number != "" {
		digits := strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' || r == '+' {
				return r
			}
			if r == ' ' || r == '-' || r == '.' || r == '(' || r == ')' {
				return -1
			}
			return 'x'
		}, f.Number)
		if strings.ContainsRune(digits, 'x') || strings.LastIndex(digits, "+") > 0 || len(strings.TrimPrefix(digits, "+")) < 3 {
			return rf, callvault.Errorf(callvault.EINVALID, "number: give a full number or at least 3 trailing digits")
		}
		rf.Number = digits
	}
	if f.Extension != "" {
		if strings.Trim(f.Extension, "0123456789*#") != "" || len(f.Extension) > 32 {
			return rf, callvault.Errorf(callvault.EINVALID, "extension may hold only digits, * and #")
		}
		rf.Extension = f.Extension
	}
	if f.Academy != "" {
		for _, a := range academies {
			if a.Slug == f.Academy {
				rf.AcademyID = a.ID
			}
		}
		if rf.AcademyID == 0 {
			return rf, callvault.Errorf(callvault.EINVALID, "academy: unknown academy %q", f.Academy)
		}
	}
	switch f.Direction {
	case "", callvault.DirectionInbound, callvault.DirectionOutbound, callvault.DirectionInternal:
		rf.Direction = f.Direction
	default:
		return rf, callvault.Errorf(callvault.EINVALID, "direction must be inbound, outbound or internal")
	}
	if rf.MinDuration, err = parseSeconds("min_duration", f.MinDuration); err != nil {
		return rf, err
	}
	if rf.MaxDuration, err = parseSeconds("max_duration", f.MaxDuration); err != nil {
		return rf, err
	}
	switch f.Source {
	case "", callvault.SourceAPI, callvault.SourceImport, callvault.SourceSIPREC:
		rf.SourceKind = f.Source
	default:
		return rf, callvault.Errorf(callvault.EINVALID, "source must be siprec, api or import")
	}
	rf.After = f.After
	if f.Limit != "" {
		n, err := strconv.Atoi(f.Limit)
		if err != nil || n < 1 || n > 200 {
			return rf, callvault.Errorf(callvault.EINVALID, "limit must be between 1 and 200")
		}
		rf.Limit = n
	}
	return rf, nil
}

// parseWhen accepts RFC 3339 or a date (YYYY-MM-DD, a London day; as an end
// bound it means the end of that day).
func parseWhen(field, v string, end bool) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02T15:04", v, callvault.London); err == nil {
		return t, nil
	}
	d, err := time.ParseInLocation("2006-01-02", v, callvault.London)
	if err != nil {
		return time.Time{}, callvault.Errorf(callvault.EINVALID, "%s: use a date like 2026-11-27 or an RFC 3339 time", field)
	}
	if end {
		d = d.AddDate(0, 0, 1)
	}
	return d, nil
}

func parseSeconds(field, v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || n < 0 || n > 7*24*3600 {
		return 0, callvault.Errorf(callvault.EINVALID, "%s must be a number of seconds", field)
	}
	return time.Duration(n * float64(time.Second)), nil
}
