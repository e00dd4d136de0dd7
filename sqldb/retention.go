package sqldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/callvault/callvault"
)

// RetentionService implements callvault.RetentionService.
type RetentionService struct {
	db *DB
}

var _ callvault.RetentionService = (*RetentionService)(nil)

// NewRetentionService returns a RetentionService backed by db.
func NewRetentionService(db *DB) *RetentionService { return &RetentionService{db: db} }

// recomputeBatch is how many recordings a rule change reads and rewrites at
// a time inside its transaction.
const recomputeBatch = 5000

// RetentionPolicy returns every rule, the trust default first, then by
// academy and category.
func (s *RetentionService) RetentionPolicy(ctx context.Context) (callvault.RetentionPolicy, error) {
	if !callvault.CanViewRetention(callvault.ActorFromContext(ctx)) {
		return nil, callvault.Errorf(callvault.EFORBIDDEN, "you may not see the retention policy")
	}
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	return loadPolicy(ctx, tx)
}

func loadPolicy(ctx context.Context, tx *dbTx) (callvault.RetentionPolicy, error) {
	rows, err := tx.query(ctx, `SELECT r.academy_id, COALESCE(a.slug, ''), r.category, r.months, r.updated_at, r.updated_by
		FROM retention_rules r LEFT JOIN academies a ON a.id = r.academy_id
		ORDER BY r.academy_id <> 0, COALESCE(a.slug, ''), r.category`)
	if err != nil {
		return nil, dbError(err)
	}
	defer rows.Close()
	var p callvault.RetentionPolicy
	for rows.Next() {
		var r callvault.RetentionRule
		if err := rows.Scan(&r.AcademyID, &r.Academy, &r.Category, &r.Months, msTime{&r.UpdatedAt}, &r.UpdatedBy); err != nil {
			return nil, dbError(err)
		}
		p = append(p, r)
	}
	return p, dbError(rows.Err())
}

// PreviewRetentionRule counts what the change would do, in a read snapshot.
func (s *RetentionService) PreviewRetentionRule(ctx context.Context, r *callvault.RetentionRule, remove bool) (callvault.RetentionImpact, error) {
	a := callvault.ActorFromContext(ctx)
	if !callvault.CanChangeRetention(a) {
		return callvault.RetentionImpact{}, callvault.Errorf(callvault.EFORBIDDEN, "you may not change the retention policy")
	}
	if remove && r.IsDefault() {
		return callvault.RetentionImpact{}, callvault.Errorf(callvault.EINVALID, "the trust default cannot be removed, only changed")
	}
	if !remove {
		if err := r.Validate(); err != nil {
			return callvault.RetentionImpact{}, err
		}
	}
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return callvault.RetentionImpact{}, err
	}
	defer tx.Rollback()
	policy, err := s.changedPolicy(ctx, tx, r, remove)
	if err != nil {
		return callvault.RetentionImpact{}, err
	}
	return recompute(ctx, tx, policy, r.AcademyID, r.Category, false)
}

// SetRetentionRule stores the rule and recomputes every affected recording
// in one transaction, with the action's audit entry.
func (s *RetentionService) SetRetentionRule(ctx context.Context, r *callvault.RetentionRule) (callvault.RetentionImpact, error) {
	return s.change(ctx, r, false)
}

// DeleteRetentionRule removes an override and recomputes.
func (s *RetentionService) DeleteRetentionRule(ctx context.Context, academyID int64, category string) (callvault.RetentionImpact, error) {
	return s.change(ctx, &callvault.RetentionRule{AcademyID: academyID, Category: category}, true)
}

func (s *RetentionService) change(ctx context.Context, r *callvault.RetentionRule, remove bool) (callvault.RetentionImpact, error) {
	var none callvault.RetentionImpact
	a := callvault.ActorFromContext(ctx)
	if !callvault.CanChangeRetention(a) {
		return none, callvault.Errorf(callvault.EFORBIDDEN, "you may not change the retention policy")
	}
	if remove && r.IsDefault() {
		return none, callvault.Errorf(callvault.EINVALID, "the trust default cannot be removed, only changed")
	}
	if !remove {
		if err := r.Validate(); err != nil {
			return none, err
		}
	}
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return none, err
	}
	defer tx.Rollback()
	policy, err := s.changedPolicy(ctx, tx, r, remove)
	if err != nil {
		return none, err
	}
	before := ""
	if old, ok := findRule(policy.old, r.AcademyID, r.Category); ok {
		before = old.String()
	}
	if remove {
		if _, err := tx.exec(ctx, `DELETE FROM retention_rules WHERE academy_id = ? AND category = ?`, r.AcademyID, r.Category); err != nil {
			return none, dbError(err)
		}
	} else {
		r.UpdatedAt, r.UpdatedBy = tx.now.Truncate(time.Millisecond), actorName(a)
		if _, err := tx.exec(ctx, `INSERT INTO retention_rules (academy_id, category, months, updated_at, updated_by)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (academy_id, category) DO UPDATE
			SET months = excluded.months, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
			r.AcademyID, r.Category, r.Months, r.UpdatedAt.UnixMilli(), r.UpdatedBy); err != nil {
			return none, dbError(err)
		}
	}
	impact, err := recompute(ctx, tx, policy, r.AcademyID, r.Category, true)
	if err != nil {
		return none, err
	}
	after := "removed"
	if !remove {
		r.Academy = policy.academySlug
		after = r.String()
	}
	callvault.NoteAudit(ctx, func(e *callvault.AuditEvent) {
		e.TargetType, e.TargetID, e.AcademyID = "retention_rule", ruleID(r), r.AcademyID
		if e.Details == nil {
			e.Details = map[string]string{}
		}
		e.Details["before"], e.Details["after"] = before, after
		e.Details["changed"] = itoa(impact.Changed)
		e.Details["earlier"] = itoa(impact.Earlier)
		e.Details["later"] = itoa(impact.Later)
		e.Details["due_now"] = itoa(impact.DueNow)
	})
	return impact, tx.commit()
}

// ruleID names a rule in audit entries: "default", "academy:3",
// "category:safeguarding" or "academy:3/category:safeguarding".
func ruleID(r *callvault.RetentionRule) string {
	var parts []string
	if r.AcademyID != 0 {
		parts = append(parts, "academy:"+itoa(int(r.AcademyID)))
	}
	if r.Category != "" {
		parts = append(parts, "category:"+r.Category)
	}
	if len(parts) == 0 {
		return "default"
	}
	return strings.Join(parts, "/")
}

func findRule(p callvault.RetentionPolicy, academyID int64, category string) (callvault.RetentionRule, bool) {
	for _, r := range p {
		if r.AcademyID == academyID && r.Category == category {
			return r, true
		}
	}
	return callvault.RetentionRule{}, false
}

// changed is a policy before and after a change.
type changed struct {
	old, new    callvault.RetentionPolicy
	academySlug string
}

// changedPolicy loads the policy and applies the change in memory, checking
// that the academy and category exist and, for a removal, the rule.
func (s *RetentionService) changedPolicy(ctx context.Context, tx *dbTx, r *callvault.RetentionRule, remove bool) (changed, error) {
	var c changed
	if r.AcademyID != 0 {
		err := tx.queryRow(ctx, `SELECT slug FROM academies WHERE id = ?`, r.AcademyID).Scan(&c.academySlug)
		if errors.Is(err, sql.ErrNoRows) {
			return c, callvault.Errorf(callvault.EINVALID, "academy %d does not exist", r.AcademyID)
		} else if err != nil {
			return c, dbError(err)
		}
	}
	if r.Category != "" {
		var n int
		if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM categories WHERE slug = ?`, r.Category).Scan(&n); err != nil {
			return c, dbError(err)
		} else if n == 0 {
			return c, callvault.Errorf(callvault.EINVALID, "category %q does not exist", r.Category)
		}
	}
	old, err := loadPolicy(ctx, tx)
	if err != nil {
		return c, err
	}
	c.old = old
	i := slices.IndexFunc(old, func(x callvault.RetentionRule) bool {
		return x.AcademyID == r.AcademyID && x.Category == r.Category
	})
	c.new = slices.Clone(old)
	switch {
	case remove && i < 0:
		return c, callvault.Errorf(callvault.ENOTFOUND, "there is no such retention rule")
	case remove:
		c.new = slices.Delete(c.new, i, i+1)
	case i >= 0:
		c.new[i] = *r
	default:
		c.new = append(c.new, *r)
	}
	return c, nil
}

// recompute walks the recordings the changed rule can affect (its academy
// and/or category) and counts, or with write also stores, the retain-until
// each gets under the new policy.
func recompute(ctx context.Context, tx *dbTx, c changed, academyID int64, category string, write bool) (callvault.RetentionImpact, error) {
	var impact callvault.RetentionImpact
	var w where
	// Recordings whose purge has begun keep their date: their receipt says
	// which rule deleted them.
	w.add("id NOT IN (SELECT recording_id FROM purge_queue)")
	if academyID != 0 {
		w.add("academy_id = ?", academyID)
	}
	if category != "" {
		w.add("category = ?", category)
	}
	now := tx.now.UnixMilli()
	after := ""
	type change struct {
		id    string
		until int64
	}
	for {
		ww := where{conds: slices.Clone(w.conds), args: slices.Clone(w.args)}
		ww.add("id > ?", after)
		rows, err := tx.query(ctx, `SELECT id, academy_id, category, started_at, COALESCE(retain_until, 0)
			FROM recordings`+ww.String()+` ORDER BY id LIMIT ?`, append(ww.args, recomputeBatch)...)
		if err != nil {
			return impact, dbError(err)
		}
		var changes []change
		n := 0
		for rows.Next() {
			var (
				id       string
				acad     int64
				cat      string
				started  int64
				oldUntil int64
			)
			if err := rows.Scan(&id, &acad, &cat, &started, &oldUntil); err != nil {
				rows.Close()
				return impact, dbError(err)
			}
			n++
			after = id
			rule := c.new.RuleFor(acad, cat)
			until := callvault.RetainUntil(time.UnixMilli(started), rule.Months).UnixMilli()
			if until == oldUntil {
				continue
			}
			impact.Changed++
			switch {
			case oldUntil == 0: // never set (older schema): neither earlier nor later
			case until > oldUntil:
				impact.Later++
			default:
				impact.Earlier++
				if until <= now {
					impact.DueNow++
				}
			}
			changes = append(changes, change{id, until})
		}
		if err := rows.Err(); err != nil {
			rows.Close()
			return impact, dbError(err)
		}
		rows.Close()
		if write && len(changes) > 0 {
			stmt, err := tx.prepare(ctx, `UPDATE recordings SET retain_until = ? WHERE id = ?`)
			if err != nil {
				return impact, dbError(err)
			}
			for _, ch := range changes {
				if _, err := stmt.ExecContext(ctx, ch.until, ch.id); err != nil {
					stmt.Close()
					return impact, dbError(err)
				}
			}
			stmt.Close()
		}
		if n < recomputeBatch {
			return impact, nil
		}
	}
}

// applyRetention sets r's category (when the source did not name one) and
// retain-until from the policy, inside the ingest transaction: a rule
// change either sees this recording or this recording sees the rule.
func applyRetention(ctx context.Context, tx *dbTx, r *callvault.Recording) error {
	cats, err := findCategories(ctx, tx)
	if err != nil {
		return err
	}
	if r.Category == "" {
		if c := callvault.AssignCategory(cats, r.Participants); c != nil {
			r.Category = c.Slug
		}
	} else if !slices.ContainsFunc(cats, func(c *callvault.Category) bool { return c.Slug == r.Category }) {
		return callvault.Errorf(callvault.EINVALID, "unknown category %q", r.Category)
	}
	policy, err := loadPolicy(ctx, tx)
	if err != nil {
		return err
	}
	rule := policy.RuleFor(r.AcademyID, r.Category)
	r.RetainUntil = callvault.RetainUntil(r.StartedAt, rule.Months)
	return nil
}

// FindCategories returns every category by slug.
func (s *RetentionService) FindCategories(ctx context.Context) ([]*callvault.Category, error) {
	if !callvault.CanViewRetention(callvault.ActorFromContext(ctx)) {
		return nil, callvault.Errorf(callvault.EFORBIDDEN, "you may not see categories")
	}
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	return findCategories(ctx, tx)
}

func findCategories(ctx context.Context, tx *dbTx) ([]*callvault.Category, error) {
	rows, err := tx.query(ctx, `SELECT id, slug, name, numbers, extensions, created_at FROM categories ORDER BY slug`)
	if err != nil {
		return nil, dbError(err)
	}
	defer rows.Close()
	var cs []*callvault.Category
	for rows.Next() {
		var (
			c          callvault.Category
			nums, exts string
		)
		if err := rows.Scan(&c.ID, &c.Slug, &c.Name, &nums, &exts, msTime{&c.CreatedAt}); err != nil {
			return nil, dbError(err)
		}
		if err := json.Unmarshal([]byte(nums), &c.Numbers); err != nil {
			return nil, callvault.Wrap(callvault.EINTERNAL, err, "category ranges are damaged")
		}
		if err := json.Unmarshal([]byte(exts), &c.Extensions); err != nil {
			return nil, callvault.Wrap(callvault.EINTERNAL, err, "category ranges are damaged")
		}
		cs = append(cs, &c)
	}
	return cs, dbError(rows.Err())
}

// CreateCategory validates the slug, name and ranges as for academies.
// Ranges of two categories must not overlap.
func (s *RetentionService) CreateCategory(ctx context.Context, c *callvault.Category) error {
	if !callvault.CanChangeRetention(callvault.ActorFromContext(ctx)) {
		return callvault.Errorf(callvault.EFORBIDDEN, "you may not change categories")
	}
	if !callvault.ValidSlug(c.Slug) {
		return callvault.Errorf(callvault.EINVALID, "slug %q: use 2-64 lower-case letters, digits and '-'", c.Slug)
	}
	a := &callvault.Academy{Name: c.Name, Numbers: c.Numbers, Extensions: c.Extensions}
	if err := validateAcademy(a); err != nil {
		return err
	}
	if len(a.Numbers) == 0 && len(a.Extensions) == 0 {
		return callvault.Errorf(callvault.EINVALID, "a category needs the numbers or extensions of its line")
	}
	c.Name = a.Name
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	others, err := findCategories(ctx, tx)
	if err != nil {
		return err
	}
	for _, o := range others {
		for _, pair := range [][2][]callvault.Range{{o.Numbers, c.Numbers}, {o.Extensions, c.Extensions}} {
			for _, x := range pair[0] {
				for _, y := range pair[1] {
					if overlaps(x, y) {
						return callvault.Errorf(callvault.EINVALID, "range %s overlaps %s of category %s", y, x, o.Slug)
					}
				}
			}
		}
	}
	nums, _ := json.Marshal(nonNil(c.Numbers))
	exts, _ := json.Marshal(nonNil(c.Extensions))
	created := tx.now.Truncate(time.Millisecond)
	err = tx.queryRow(ctx, `INSERT INTO categories (slug, name, numbers, extensions, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id`,
		c.Slug, c.Name, string(nums), string(exts), created.UnixMilli()).Scan(&c.ID)
	if isUnique(err) {
		return callvault.Wrap(callvault.ECONFLICT, err, "a category with this slug already exists")
	} else if err != nil {
		return dbError(err)
	}
	c.CreatedAt = created
	callvault.NoteAudit(ctx, func(e *callvault.AuditEvent) {
		e.TargetType, e.TargetID = "category", c.Slug
	})
	return tx.commit()
}

func nonNil(rs []callvault.Range) []callvault.Range {
	if rs == nil {
		return []callvault.Range{}
	}
	return rs
}

// UpcomingDeletions groups the recordings due in [from, to) by academy and
// London day, in the actor's academy scope.
func (s *RetentionService) UpcomingDeletions(ctx context.Context, from, to time.Time) ([]callvault.UpcomingDeletion, error) {
	a := callvault.ActorFromContext(ctx)
	if !callvault.CanViewRetention(a) {
		return nil, callvault.Errorf(callvault.EFORBIDDEN, "you may not see upcoming deletions")
	}
	scope := callvault.RecordingScope(a)
	scope.GrantedTo = 0 // deletions are counted per academy, never per grant
	var w where
	w.add("r.retain_until >= ?", ceilMS(from))
	w.add("r.retain_until < ?", ceilMS(to))
	w.add(notQueued)
	addScope(&w, scope, time.Time{})
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.query(ctx, `SELECT r.academy_id, (SELECT a.slug FROM academies a WHERE a.id = r.academy_id), r.retain_until,
		EXISTS (SELECT 1 FROM hold_recordings hr CROSS JOIN holds h
			WHERE hr.recording_id = r.id AND h.id = hr.hold_id AND h.released_at IS NULL)
		FROM recordings r`+w.String(), w.args...)
	if err != nil {
		return nil, dbError(err)
	}
	defer rows.Close()
	type key struct {
		academy int64
		day     time.Time
	}
	byKey := map[key]*callvault.UpcomingDeletion{}
	for rows.Next() {
		var (
			acad  int64
			slug  string
			until int64
			held  bool
		)
		if err := rows.Scan(&acad, &slug, &until, &held); err != nil {
			return nil, dbError(err)
		}
		t := time.UnixMilli(until).In(callvault.London)
		day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, callvault.London)
		k := key{acad, day}
		u := byKey[k]
		if u == nil {
			u = &callvault.UpcomingDeletion{AcademyID: acad, Academy: slug, Day: day}
			byKey[k] = u
		}
		if held {
			u.Held++
		} else {
			u.Count++
		}
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(err)
	}
	out := make([]callvault.UpcomingDeletion, 0, len(byKey))
	for _, u := range byKey {
		out = append(out, *u)
	}
	slices.SortFunc(out, func(x, y callvault.UpcomingDeletion) int {
		if c := x.Day.Compare(y.Day); c != 0 {
			return c
		}
		return strings.Compare(x.Academy, y.Academy)
	})
	return out, nil
}

// actorName is who changed something, for rows that record it.
func actorName(a *callvault.Actor) string {
	switch {
	case a == nil:
		return ""
	case a.User != nil:
		return a.User.Login
	case a.System && a.Name != "":
		return a.Name
	case a.System:
		return "system"
	}
	return ""
}

func itoa(n int) string { return strconv.Itoa(n) }
