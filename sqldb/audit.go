// AuditStore keeps callvault's tamper-evident audit trail in the
// audit_events table (migrations/sqlite/0002_audit.sql). Its guarantees:
//
//   - One chain, never forked. AppendAudit reads the head of the chain and
//     stores the new entries in the same write transaction. Writes go through
//     the DB's single writer connection and start with BEGIN IMMEDIATE, so the
//     read of the head and the inserts are serialised against every other
//     writer: other goroutines, other AuditStore values, and other processes
//     (the command line beside the server) opening the same file. Seq is
//     therefore contiguous and every entry's PrevHash is its predecessor's
//     Hash. A UNIQUE violation on seq, possible only if something writes
//     audit_events behind the store's back, is ECONFLICT.
//   - All or nothing, durably. A batch commits in one transaction with
//     synchronous=FULL, or not at all: on any error the transaction rolls
//     back and the events get zero Seq, PrevHash and Hash again (and their
//     Time back as passed), so they can be appended again. Failures of the
//     storage (disk full, I/O errors, read-only or unopenable file, a busy
//     database past the timeout, a closed DB) are EUNAVAILABLE, wrapping the
//     cause: the action an entry describes must then not happen.
//   - Hashes recompute from what is read back. Times are stored as UTC unix
//     milliseconds (AppendAudit truncates Time to the millisecond, and a zero
//     Time becomes the transaction's time); details as a JSON object with
//     sorted keys, '{}' when empty, read back as nil; strings byte for byte
//     (they must be valid UTF-8, EINVALID otherwise). So
//     callvault.ChainHash(e.PrevHash, e) == e.Hash for every entry read by
//     WalkAudit or FindAuditEvents that is not Redacted.
//   - Reads are scoped in SQL. FindAuditEvents applies callvault.AuditScope
//     inside its query: the DPO, the CEO and the system see every entry;
//     principals see entries about their academies and entries they caused
//     themselves; everyone else (admins and listeners included, and a
//     context without an actor) gets EFORBIDDEN. WalkAudit is unscoped, so
//     only actors who may read every entry may call it.
//   - Redaction and pruning keep the chain checkable. RedactAudit blanks the
//     reason and details of a target's entries and marks them Redacted; their
//     hashes stay, so they still link the chain. PruneAudit deletes the
//     oldest entries and records the last deleted one as the anchor
//     (AuditAnchor) from which the stored chain is verified. It deletes a
//     prefix of the chain only, and never the newest entry: the head
//     AppendAudit continues from must stay stored and verifiable.

package sqldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/callvault/callvault"
)

// AuditStore implements callvault.AuditStore.
type AuditStore struct {
	db *DB
}

var _ callvault.AuditStore = (*AuditStore)(nil)

// NewAuditStore returns an AuditStore backed by db.
func NewAuditStore(db *DB) *AuditStore {
	return &AuditStore{db: db}
}

// Page sizes of FindAuditEvents.
const (
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
)

// AppendAudit stores events at the head of the chain, in order, in one
// transaction, setting Seq, PrevHash and Hash on each (and normalising Time
// to UTC milliseconds). EINVALID, before anything is written, for a nil or
// Redacted event, an unknown actor kind or outcome, an empty action, a
// negative academy or a string that is not UTF-8.
func (s *AuditStore) AppendAudit(ctx context.Context, events []*callvault.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	if err := validateAuditEvents(events); err != nil {
		return err
	}
	times := make([]time.Time, len(events))
	for i, e := range events {
		times[i] = e.Time
	}
	err := func() error {
		tx, err := s.db.beginWrite(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if err := appendAudit(ctx, tx, events); err != nil {
			return err
		}
		// Not tx.commit: these events are the audit write itself, and a
		// pending entry in ctx belongs with the action's own transaction.
		return tx.Commit()
	}()
	if err != nil {
		for i, e := range events {
			e.Seq, e.PrevHash, e.Hash, e.Time = 0, "", "", times[i]
		}
		return auditError(err)
	}
	return nil
}

// validateAuditEvents checks what AppendAudit would otherwise store as
// nonsense, or could not read back byte for byte.
func validateAuditEvents(events []*callvault.AuditEvent) error {
	for i, e := range events {
		if e == nil {
			return callvault.Errorf(callvault.EINVALID, "audit event %d is nil", i)
		}
		switch {
		case !callvault.ValidActorKind(e.ActorKind):
			return callvault.Errorf(callvault.EINVALID, "audit event %d: unknown actor kind %q", i, e.ActorKind)
		case e.Action == "":
			return callvault.Errorf(callvault.EINVALID, "audit event %d has no action", i)
		case e.Outcome != callvault.OutcomeAllowed && e.Outcome != callvault.OutcomeDenied && e.Outcome != callvault.OutcomeFailed:
			return callvault.Errorf(callvault.EINVALID, "audit event %d: unknown outcome %q", i, e.Outcome)
		case e.AcademyID < 0:
			return callvault.Errorf(callvault.EINVALID, "audit event %d: negative academy id", i)
		case e.Redacted:
			return callvault.Errorf(callvault.EINVALID, "audit event %d is redacted: only stored entries can be", i)
		}
		// JSON would replace invalid UTF-8 in details, and the hash covers
		// bytes: both must read back exactly as hashed.
		valid := true
		for _, s := range []string{e.ActorID, e.ActorName, e.ActorRole, e.Action, e.TargetType, e.TargetID,
			e.ClientAddr, e.Reason} {
			valid = valid && utf8.ValidString(s)
		}
		for k, v := range e.Details {
			valid = valid && utf8.ValidString(k) && utf8.ValidString(v)
		}
		if !valid {
			return callvault.Errorf(callvault.EINVALID, "audit event %d: text is not valid UTF-8", i)
		}
	}
	return nil
}

// appendAudit chains and inserts events in tx, which must be a write
// transaction (the head read and the inserts must not be interleaved with
// another writer's). Other stores can call it to commit an action together
// with its entry. Events must have passed validateAuditEvents.
func appendAudit(ctx context.Context, tx *dbTx, events []*callvault.AuditEvent) error {
	seq, prev, err := auditHead(ctx, tx)
	if err != nil {
		return err
	}
	stmt, err := tx.prepare(ctx, `INSERT INTO audit_events (
		seq, time, actor_kind, actor_id, actor_name, actor_role, action, target_type,
		target_id, academy_id, outcome, client_addr, reason, details, prev_hash, hash
	) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, e := range events {
		if e.Time.IsZero() {
			e.Time = tx.now
		}
		e.Time = time.UnixMilli(e.Time.UnixMilli()).UTC()
		seq++
		e.Seq, e.PrevHash = seq, prev
		e.Hash = callvault.ChainHash(prev, e)
		_, err := stmt.ExecContext(ctx, e.Seq, e.Time.UnixMilli(), e.ActorKind, e.ActorID, e.ActorName, e.ActorRole,
			e.Action, e.TargetType, e.TargetID, e.AcademyID, e.Outcome, e.ClientAddr, e.Reason,
			encodeDetails(e.Details), e.PrevHash, e.Hash)
		if isUnique(err) {
			return callvault.Wrap(callvault.ECONFLICT, err, "the audit trail was changed during the append; retry")
		} else if err != nil {
			return err
		}
		prev = e.Hash
	}
	return nil
}

// encodeDetails returns details as a JSON object with keys in byte order
// (encoding/json sorts map keys), without HTML escaping; '{}' when empty.
func encodeDetails(d map[string]string) string {
	if len(d) == 0 {
		return "{}"
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(d); err != nil {
		panic("sqldb: encoding a map[string]string: " + err.Error()) // cannot happen
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// decodeDetails is the inverse of encodeDetails; '{}' becomes nil.
func decodeDetails(s string) (map[string]string, error) {
	if s == "{}" {
		return nil, nil
	}
	var d map[string]string
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		return nil, err
	}
	if len(d) == 0 {
		return nil, nil
	}
	return d, nil
}

// auditHead returns the last stored seq and hash; with no entries stored,
// the anchor.
func auditHead(ctx context.Context, tx *dbTx) (int64, string, error) {
	var (
		seq  int64
		hash string
	)
	err := tx.queryRow(ctx, `SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1`).Scan(&seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return auditAnchor(ctx, tx)
	} else if err != nil {
		return 0, "", err
	}
	return seq, hash, nil
}

// auditAnchor returns the anchor, or 0 and GenesisHash if nothing was pruned.
func auditAnchor(ctx context.Context, tx *dbTx) (int64, string, error) {
	var (
		seq  int64
		hash string
	)
	err := tx.queryRow(ctx, `SELECT seq, hash FROM audit_anchor WHERE id = 1`).Scan(&seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, callvault.GenesisHash, nil
	} else if err != nil {
		return 0, "", err
	}
	return seq, hash, nil
}

// AuditHead returns the last seq and hash, the anchor when every entry has
// been pruned, or 0 and GenesisHash.
func (s *AuditStore) AuditHead(ctx context.Context) (int64, string, error) {
	return s.readPair(ctx, auditHead)
}

// AuditAnchor returns where the stored chain starts: the last pruned entry's
// seq and hash, or 0 and GenesisHash.
func (s *AuditStore) AuditAnchor(ctx context.Context) (int64, string, error) {
	return s.readPair(ctx, auditAnchor)
}

func (s *AuditStore) readPair(ctx context.Context, fn func(context.Context, *dbTx) (int64, string, error)) (int64, string, error) {
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return 0, "", auditError(err)
	}
	defer tx.Rollback()
	seq, hash, err := fn(ctx, tx)
	if err != nil {
		return 0, "", auditError(err)
	}
	return seq, hash, nil
}

// auditColumns are read by scanAudit, in this order.
const auditColumns = `seq, time, actor_kind, actor_id, actor_name, actor_role, action, target_type,
	target_id, academy_id, outcome, client_addr, reason, details, prev_hash, hash, redacted`

func scanAudit(rows *sql.Rows) (*callvault.AuditEvent, error) {
	var (
		e       callvault.AuditEvent
		details string
	)
	if err := rows.Scan(&e.Seq, msTime{&e.Time}, &e.ActorKind, &e.ActorID, &e.ActorName, &e.ActorRole, &e.Action,
		&e.TargetType, &e.TargetID, &e.AcademyID, &e.Outcome, &e.ClientAddr, &e.Reason, &details,
		&e.PrevHash, &e.Hash, &e.Redacted); err != nil {
		return nil, err
	}
	d, err := decodeDetails(details)
	if err != nil {
		return nil, callvault.Wrap(callvault.EINTERNAL, err, "audit entry "+strconv.FormatInt(e.Seq, 10)+" has unreadable details")
	}
	e.Details = d
	return &e, nil
}

// WalkAudit calls fn for every stored entry with from <= Seq, in seq order,
// as stored. It streams rows from one read transaction, so the walk sees one
// consistent state of the chain (a concurrent prune or redaction is wholly
// in it or not at all); WAL checkpoints cannot pass that snapshot until the
// walk ends, so fn should not block for long. An error from fn stops the
// walk and is returned as is. Unscoped: EFORBIDDEN unless the actor may read
// every entry (callvault.AuditScope is All: the system, the DPO, the CEO).
func (s *AuditStore) WalkAudit(ctx context.Context, from int64, fn func(*callvault.AuditEvent) error) error {
	if !callvault.AuditScope(callvault.ActorFromContext(ctx)).All {
		return callvault.Errorf(callvault.EFORBIDDEN, "not allowed to read the whole audit trail")
	}
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return auditError(err)
	}
	defer tx.Rollback()
	rows, err := tx.query(ctx, `SELECT `+auditColumns+` FROM audit_events WHERE seq >= ? ORDER BY seq`, from)
	if err != nil {
		return auditError(err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return auditError(err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return auditError(rows.Err())
}

// FindAuditEvents returns entries matching f in the actor's scope, newest
// first. See callvault.AuditStore and buildAuditSearch.
func (s *AuditStore) FindAuditEvents(ctx context.Context, f callvault.AuditFilter) ([]*callvault.AuditEvent, error) {
	q, err := buildAuditSearch(f, callvault.ActorFromContext(ctx))
	if err != nil {
		return nil, err
	}
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return nil, auditError(err)
	}
	defer tx.Rollback()
	rows, err := tx.query(ctx, q.sql, q.args...)
	if err != nil {
		return nil, auditError(err)
	}
	defer rows.Close()
	events := []*callvault.AuditEvent{}
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, auditError(err)
		}
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, auditError(err)
	}
	return events, nil
}

// auditSearch is a FindAuditEvents query, built but not run, so that tests
// can EXPLAIN exactly what runs.
type auditSearch struct {
	sql  string
	args []any
}

// buildAuditSearch turns a filter and the actor into SQL. Scope: EFORBIDDEN
// unless callvault.CanReadAudit; a principal's entries are those about one of
// their academies or caused by them (user actor with their id). Filters:
// ActorName exact; Action exact, or a prefix when it ends in "." (a range,
// so the index serves it under any collation that sorts bytewise); TargetID
// only with TargetType; From <= Time < To; Seq < Before. Limit 0 is 100;
// below 0 or above 1000 is EINVALID, as are To before From and a negative
// Before.
func buildAuditSearch(f callvault.AuditFilter, a *callvault.Actor) (*auditSearch, error) {
	scope := callvault.AuditScope(a)
	if scope.None {
		return nil, callvault.Errorf(callvault.EFORBIDDEN, "not allowed to read the audit trail")
	}
	limit := f.Limit
	if limit == 0 {
		limit = defaultAuditLimit
	}
	switch {
	case limit < 0 || limit > maxAuditLimit:
		return nil, callvault.Errorf(callvault.EINVALID, "limit must be between 1 and %d", maxAuditLimit)
	case f.Before < 0:
		return nil, callvault.Errorf(callvault.EINVALID, "before must be a sequence number")
	case f.TargetID != "" && f.TargetType == "":
		return nil, callvault.Errorf(callvault.EINVALID, "a target id needs a target type")
	case !f.From.IsZero() && !f.To.IsZero() && f.To.Before(f.From):
		return nil, callvault.Errorf(callvault.EINVALID, "the end of the period is before its start")
	}

	var w where
	if !scope.All {
		args := make([]any, 0, len(scope.AcademyIDs)+2)
		for _, id := range scope.AcademyIDs {
			args = append(args, id)
		}
		args = append(args, callvault.ActorUser, strconv.FormatInt(a.User.ID, 10))
		w.add("(academy_id IN ("+placeholders(len(scope.AcademyIDs))+") OR (actor_kind = ? AND actor_id = ?))", args...)
	}
	if f.ActorName != "" {
		w.add("actor_name = ?", f.ActorName)
	}
	if prefix, ok := strings.CutSuffix(f.Action, "."); ok {
		// Everything starting with "prefix." sorts from "prefix." up to,
		// not including, "prefix/" ('/' follows '.').
		w.add("action >= ? AND action < ?", f.Action, prefix+"/")
	} else if f.Action != "" {
		w.add("action = ?", f.Action)
	}
	if f.TargetType != "" {
		w.add("target_type = ?", f.TargetType)
		if f.TargetID != "" {
			w.add("target_id = ?", f.TargetID)
		}
	}
	if !f.From.IsZero() {
		w.add("time >= ?", ceilMS(f.From))
	}
	if !f.To.IsZero() {
		w.add("time < ?", ceilMS(f.To))
	}
	if f.Before > 0 {
		w.add("seq < ?", f.Before)
	}
	return &auditSearch{
		sql:  `SELECT ` + auditColumns + ` FROM audit_events` + w.String() + ` ORDER BY seq DESC LIMIT ?`,
		args: append(w.args, limit),
	}, nil
}

// RedactAudit blanks the reason and details of every unredacted entry about
// the target and marks it Redacted, in one transaction. Returns how many
// entries changed. EINVALID when targetType or targetID is empty (that would
// redact every entry without a target).
func (s *AuditStore) RedactAudit(ctx context.Context, targetType, targetID string) (int64, error) {
	if targetType == "" || targetID == "" {
		return 0, callvault.Errorf(callvault.EINVALID, "redaction needs a target type and id")
	}
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return 0, auditError(err)
	}
	defer tx.Rollback()
	res, err := tx.exec(ctx, `UPDATE audit_events SET reason = '', details = '{}', redacted = 1
		WHERE target_type = ? AND target_id = ? AND redacted = 0`, targetType, targetID)
	if err != nil {
		return 0, auditError(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, auditError(err)
	}
	if err := tx.commit(); err != nil {
		return 0, auditError(err)
	}
	return n, nil
}

// PruneAudit deletes, in one transaction, the longest run of entries from
// the start of the stored chain whose Time is before before, except the
// newest entry, which always stays: AppendAudit continues from it and a
// verifier must be able to reach it. The last deleted entry's seq and hash
// become the anchor (with pruned_at, the DB's time). Entries' times follow
// their seq except for clock differences between writers; an old entry
// after a newer one is kept until the newer one is pruned, so nothing within
// retention is ever deleted. Returns how many entries were deleted.
func (s *AuditStore) PruneAudit(ctx context.Context, before time.Time) (int64, error) {
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return 0, auditError(err)
	}
	defer tx.Rollback()
	n, err := pruneAudit(ctx, tx, before)
	if err != nil {
		return 0, auditError(err)
	}
	if n == 0 {
		return 0, nil
	}
	if err := tx.commit(); err != nil {
		return 0, auditError(err)
	}
	return n, nil
}

func pruneAudit(ctx context.Context, tx *dbTx, before time.Time) (int64, error) {
	var head int64
	err := tx.queryRow(ctx, `SELECT seq FROM audit_events ORDER BY seq DESC LIMIT 1`).Scan(&head)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	last := head - 1 // keep the head
	// The first entry still within retention, in chain order. The unary +
	// keeps SQLite off the time index: walking the chain from its start
	// reads only the entries about to be deleted, then stops.
	var keep int64
	err = tx.queryRow(ctx, `SELECT seq FROM audit_events WHERE +time >= ? ORDER BY seq LIMIT 1`,
		ceilMS(before)).Scan(&keep)
	if err == nil {
		last = min(last, keep-1)
	} else if !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	var (
		seq  int64
		hash string
	)
	err = tx.queryRow(ctx, `SELECT seq, hash FROM audit_events WHERE seq <= ? ORDER BY seq DESC LIMIT 1`, last).Scan(&seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil // nothing old enough
	} else if err != nil {
		return 0, err
	}
	if _, err := tx.exec(ctx, `INSERT INTO audit_anchor (id, seq, hash, pruned_at) VALUES (1, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, pruned_at = excluded.pruned_at`,
		seq, hash, tx.now.UnixMilli()); err != nil {
		return 0, err
	}
	res, err := tx.exec(ctx, `DELETE FROM audit_events WHERE seq <= ?`, seq)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// auditError translates err for the audit trail. On top of dbError, storage
// that cannot take the entry is EUNAVAILABLE, the cause wrapped for
// operators: a full disk, an I/O error, a read-only or unopenable file, a
// broken lock protocol, a closed DB. (The audited action must then not go
// ahead, and a retry later may succeed.)
func auditError(err error) error {
	if err == nil {
		return nil
	}
	if errors.As(err, new(*callvault.Error)) {
		return err
	}
	if e := dbError(err); callvault.ErrorCode(e) != callvault.EINTERNAL {
		return e
	}
	return err
}

// isClosedDB reports whether err is database/sql's (unexported) error for
// using a closed *sql.DB.
func isClosedDB(err error) bool {
	for ; err != nil; err = errors.Unwrap(err) {
		if err.Error() == "sql: database is closed" {
			return true
		}
	}
	return false
}
