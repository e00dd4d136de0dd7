package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"strconv"
	"time"

	"github.com/callvault/callvault"
)

// exportTimeLayout is how times are written in exports: RFC 3339, UTC,
// millisecond precision (all the trail keeps).
const exportTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// walkRange calls fn for every stored entry with from <= Time < to (zero
// bounds do not filter), in seq order.
func walkRange(ctx context.Context, store callvault.AuditStore, from, to time.Time, fn func(*callvault.AuditEvent) error) error {
	err := store.WalkAudit(ctx, 0, func(e *callvault.AuditEvent) error {
		if !from.IsZero() && e.Time.Before(from) || !to.IsZero() && !e.Time.Before(to) {
			return nil
		}
		return fn(e)
	})
	if err != nil {
		return callvault.Wrap(callvault.EUNAVAILABLE, err, "the audit trail cannot be exported")
	}
	return nil
}

// ExportJSONL writes every entry with from <= Time < to (zero bounds do not
// filter) as one JSON object per line, in seq order, with prev_hash, hash
// and redacted, so that the export can be verified on its own: each entry's
// hash is SHA-256 over the previous hash and callvault.CanonicalV1. It
// returns how many entries it wrote. The trail is not scoped: this is for
// the system and the DPO.
func ExportJSONL(ctx context.Context, store callvault.AuditStore, w io.Writer, from, to time.Time) (int, error) {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	n := 0
	err := walkRange(ctx, store, from, to, func(e *callvault.AuditEvent) error {
		n++
		return enc.Encode(e)
	})
	if err != nil {
		return n, err
	}
	return n, bw.Flush()
}

// csvHeader names the columns of ExportCSV.
var csvHeader = []string{
	"seq", "time", "actor_kind", "actor_id", "actor_name", "actor_role",
	"action", "target_type", "target_id", "academy_id", "outcome",
	"client_addr", "reason", "details", "prev_hash", "hash", "redacted",
}

// ExportCSV writes the same entries as ExportJSONL as CSV with a header
// row. Details are one column of JSON with keys in byte order ("{}" when
// there are none); time is RFC 3339 UTC with milliseconds.
//
// Spreadsheet applications run a cell that starts with = + - @ (or a tab or
// carriage return) as a formula, so such a cell is written with a single
// quote in front; a cell that starts with a single quote gets one too. To
// recover the stored value (to recompute a hash), remove one leading single
// quote from every cell that starts with one.
func ExportCSV(ctx context.Context, store callvault.AuditStore, w io.Writer, from, to time.Time) (int, error) {
	bw := bufio.NewWriter(w)
	cw := csv.NewWriter(bw)
	if err := cw.Write(csvHeader); err != nil {
		return 0, err
	}
	var (
		details bytes.Buffer
		enc     = json.NewEncoder(&details)
		row     = make([]string, len(csvHeader))
		n       int
	)
	enc.SetEscapeHTML(false)
	err := walkRange(ctx, store, from, to, func(e *callvault.AuditEvent) error {
		details.Reset()
		if len(e.Details) == 0 {
			details.WriteString("{}")
		} else if err := enc.Encode(e.Details); err != nil { // maps are encoded with sorted keys
			return err
		}
		row[0] = strconv.FormatInt(e.Seq, 10)
		row[1] = e.Time.UTC().Format(exportTimeLayout)
		row[2] = e.ActorKind
		row[3] = e.ActorID
		row[4] = e.ActorName
		row[5] = e.ActorRole
		row[6] = e.Action
		row[7] = e.TargetType
		row[8] = e.TargetID
		row[9] = strconv.FormatInt(e.AcademyID, 10)
		row[10] = e.Outcome
		row[11] = e.ClientAddr
		row[12] = e.Reason
		row[13] = string(bytes.TrimSuffix(details.Bytes(), []byte("\n")))
		row[14] = e.PrevHash
		row[15] = e.Hash
		row[16] = strconv.FormatBool(e.Redacted)
		for i, c := range row {
			row[i] = defuseCell(c)
		}
		n++
		return cw.Write(row)
	})
	if err != nil {
		return n, err
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return n, err
	}
	return n, bw.Flush()
}

// defuseCell puts a single quote in front of a cell that a spreadsheet
// would run as a formula, and in front of one that already starts with a
// single quote, so that removing one leading quote always restores the
// value.
func defuseCell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r', '\'':
		return "'" + s
	}
	return s
}
