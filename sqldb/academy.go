package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"regexp"
	"strings"
	"time"

	"github.com/callvault/callvault"
)

// AcademyService implements callvault.AcademyService.
type AcademyService struct {
	db *DB
}

var _ callvault.AcademyService = (*AcademyService)(nil)

// NewAcademyService returns an AcademyService backed by db.
func NewAcademyService(db *DB) *AcademyService {
	return &AcademyService{db: db}
}

// Range kinds in academy_ranges.
const (
	rangeNumber    = "number"
	rangeExtension = "extension"
)

var (
	e164RE      = regexp.MustCompile(`^\+[0-9]{2,15}$`)
	extensionRE = regexp.MustCompile(`^[0-9]{1,15}$`)
)

// CreateAcademy inserts a and its ranges and sets a.ID and a.CreatedAt.
// ECONFLICT if the slug exists; EINVALID for a bad slug, name or range, or a
// range that overlaps another academy's (a number must map to one academy).
func (s *AcademyService) CreateAcademy(ctx context.Context, a *callvault.Academy) error {
	if !callvault.ValidSlug(a.Slug) {
		return callvault.Errorf(callvault.EINVALID, "slug %q: use 2-64 lower-case letters, digits and '-'", a.Slug)
	}
	if err := validateAcademy(a); err != nil {
		return err
	}
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()

	createdAt := tx.now.Truncate(time.Millisecond)
	err = tx.queryRow(ctx, `INSERT INTO academies (slug, name, created_at) VALUES (?, ?, ?) RETURNING id`,
		a.Slug, a.Name, createdAt.UnixMilli()).Scan(&a.ID)
	if isUnique(err) {
		return callvault.Wrap(callvault.ECONFLICT, err, "an academy with this slug already exists")
	} else if err != nil {
		return dbError(err)
	}
	if err := replaceRanges(ctx, tx, a); err != nil {
		return err
	}
	if err := tx.commit(); err != nil {
		return err
	}
	a.CreatedAt = createdAt
	return nil
}

// UpdateAcademy replaces the name and ranges of the academy with a.ID (or,
// when a.ID is zero, a.Slug). The slug never changes: it is in URLs and
// audit entries. ENOTFOUND; EINVALID as for CreateAcademy.
func (s *AcademyService) UpdateAcademy(ctx context.Context, a *callvault.Academy) error {
	if err := validateAcademy(a); err != nil {
		return err
	}
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()

	var cur *callvault.Academy
	if a.ID != 0 {
		cur, err = findAcademy(ctx, tx, "id = ?", a.ID)
	} else {
		cur, err = findAcademy(ctx, tx, "slug = ?", a.Slug)
	}
	if err != nil {
		return err
	}
	if cur.Slug == callvault.UnassignedSlug && (len(a.Numbers) > 0 || len(a.Extensions) > 0) {
		return callvault.Errorf(callvault.EINVALID, "the unassigned academy cannot have number ranges")
	}
	if _, err := tx.exec(ctx, `UPDATE academies SET name = ? WHERE id = ?`, a.Name, cur.ID); err != nil {
		return dbError(err)
	}
	a.ID, a.Slug, a.CreatedAt = cur.ID, cur.Slug, cur.CreatedAt
	if err := replaceRanges(ctx, tx, a); err != nil {
		return err
	}
	return tx.commit()
}

// validateAcademy checks the name and the ranges on their own; overlaps with
// other academies are checked in the transaction.
func validateAcademy(a *callvault.Academy) error {
	a.Name = strings.TrimSpace(a.Name)
	if a.Name == "" {
		return callvault.Errorf(callvault.EINVALID, "academy name is required")
	}
	check := func(kind string, re *regexp.Regexp, rs []callvault.Range) error {
		for i, r := range rs {
			if !re.MatchString(r.First) || !re.MatchString(r.Last) {
				if kind == rangeNumber {
					return callvault.Errorf(callvault.EINVALID, "number range %s: use E.164 numbers (+44...)", r)
				}
				return callvault.Errorf(callvault.EINVALID, "extension range %s: use digits only", r)
			}
			if len(r.First) != len(r.Last) {
				return callvault.Errorf(callvault.EINVALID, "%s range %s: both ends must have the same number of digits", kind, r)
			}
			if r.First > r.Last {
				return callvault.Errorf(callvault.EINVALID, "%s range %s: first is after last", kind, r)
			}
			for _, o := range rs[:i] {
				if overlaps(r, o) {
					return callvault.Errorf(callvault.EINVALID, "%s ranges %s and %s overlap", kind, o, r)
				}
			}
		}
		return nil
	}
	if err := check(rangeNumber, e164RE, a.Numbers); err != nil {
		return err
	}
	return check(rangeExtension, extensionRE, a.Extensions)
}

func overlaps(a, b callvault.Range) bool {
	return len(a.First) == len(b.First) && a.First <= b.Last && b.First <= a.Last
}

// replaceRanges stores a's ranges in place of the academy's current ones,
// refusing any that overlap another academy's.
func replaceRanges(ctx context.Context, tx *dbTx, a *callvault.Academy) error {
	others, err := findRanges(ctx, tx, "academy_id <> ?", a.ID)
	if err != nil {
		return err
	}
	for _, o := range others {
		mine := a.Numbers
		if o.kind == rangeExtension {
			mine = a.Extensions
		}
		for _, r := range mine {
			if overlaps(r, o.Range) {
				return callvault.Errorf(callvault.EINVALID, "%s range %s overlaps %s of academy %q", o.kind, r, o.Range, o.slug)
			}
		}
	}
	if _, err := tx.exec(ctx, `DELETE FROM academy_ranges WHERE academy_id = ?`, a.ID); err != nil {
		return dbError(err)
	}
	stmt, err := tx.prepare(ctx, `INSERT INTO academy_ranges (academy_id, kind, first, last) VALUES (?, ?, ?, ?)`)
	if err != nil {
		return dbError(err)
	}
	defer stmt.Close()
	for kind, rs := range map[string][]callvault.Range{rangeNumber: a.Numbers, rangeExtension: a.Extensions} {
		for _, r := range rs {
			if _, err := stmt.ExecContext(ctx, a.ID, kind, r.First, r.Last); err != nil {
				return dbError(err)
			}
		}
	}
	return nil
}

// FindAcademyBySlug returns ENOTFOUND if there is no such academy or it is
// outside the actor's scope.
func (s *AcademyService) FindAcademyBySlug(ctx context.Context, slug string) (*callvault.Academy, error) {
	scope := callvault.RecordingScope(callvault.ActorFromContext(ctx))
	if scope.None {
		return nil, callvault.Errorf(callvault.ENOTFOUND, "academy not found")
	}
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	a, err := findAcademy(ctx, tx, "slug = ?", slug)
	if err != nil {
		return nil, err
	}
	if !scope.InScope(a.ID) {
		return nil, callvault.Errorf(callvault.ENOTFOUND, "academy not found")
	}
	return a, nil
}

// FindAcademies lists the academies in the actor's scope by name, with
// their ranges. An actor without scope gets an empty list.
func (s *AcademyService) FindAcademies(ctx context.Context) ([]*callvault.Academy, error) {
	scope := callvault.RecordingScope(callvault.ActorFromContext(ctx))
	if scope.None {
		return []*callvault.Academy{}, nil
	}
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()

	w := where{}
	if !scope.All {
		args := make([]any, len(scope.AcademyIDs))
		for i, id := range scope.AcademyIDs {
			args[i] = id
		}
		w.add("id IN ("+placeholders(len(args))+")", args...)
	}
	rows, err := tx.query(ctx, `SELECT id, slug, name, created_at FROM academies`+w.String()+` ORDER BY name, id`, w.args...)
	if err != nil {
		return nil, dbError(err)
	}
	defer rows.Close()
	as := []*callvault.Academy{}
	byID := map[int64]*callvault.Academy{}
	for rows.Next() {
		a := &callvault.Academy{Numbers: []callvault.Range{}, Extensions: []callvault.Range{}}
		if err := rows.Scan(&a.ID, &a.Slug, &a.Name, msTime{&a.CreatedAt}); err != nil {
			return nil, err
		}
		as = append(as, a)
		byID[a.ID] = a
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(err)
	}
	rs, err := findRanges(ctx, tx, "1 = 1")
	if err != nil {
		return nil, err
	}
	for _, r := range rs {
		if a := byID[r.academyID]; a != nil {
			r.addTo(a)
		}
	}
	return as, nil
}

// findAcademy returns the one academy matching cond, with its ranges.
func findAcademy(ctx context.Context, tx *dbTx, cond string, args ...any) (*callvault.Academy, error) {
	a := &callvault.Academy{Numbers: []callvault.Range{}, Extensions: []callvault.Range{}}
	err := tx.queryRow(ctx, `SELECT id, slug, name, created_at FROM academies WHERE `+cond, args...).
		Scan(&a.ID, &a.Slug, &a.Name, msTime{&a.CreatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, callvault.Errorf(callvault.ENOTFOUND, "academy not found")
	} else if err != nil {
		return nil, dbError(err)
	}
	rs, err := findRanges(ctx, tx, "academy_id = ?", a.ID)
	if err != nil {
		return nil, err
	}
	for _, r := range rs {
		r.addTo(a)
	}
	return a, nil
}

type academyRange struct {
	callvault.Range
	academyID int64
	slug      string
	kind      string
}

func (r academyRange) addTo(a *callvault.Academy) {
	if r.kind == rangeNumber {
		a.Numbers = append(a.Numbers, r.Range)
	} else {
		a.Extensions = append(a.Extensions, r.Range)
	}
}

// findRanges returns the ranges matching cond (on academy_ranges), ordered
// by academy and first number.
func findRanges(ctx context.Context, tx *dbTx, cond string, args ...any) ([]academyRange, error) {
	rows, err := tx.query(ctx, `SELECT r.academy_id, a.slug, r.kind, r.first, r.last
		FROM academy_ranges r JOIN academies a ON a.id = r.academy_id
		WHERE `+cond+` ORDER BY r.academy_id, r.kind, r.first`, args...)
	if err != nil {
		return nil, dbError(err)
	}
	defer rows.Close()
	var rs []academyRange
	for rows.Next() {
		var r academyRange
		if err := rows.Scan(&r.academyID, &r.slug, &r.kind, &r.First, &r.Last); err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
	return rs, dbError(rows.Err())
}
