package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/callvault/callvault"
)

// SourceService implements callvault.SourceService.
type SourceService struct {
	db *DB
}

var _ callvault.SourceService = (*SourceService)(nil)

// NewSourceService returns a SourceService backed by db.
func NewSourceService(db *DB) *SourceService {
	return &SourceService{db: db}
}

// CreateSource inserts src and sets its ID and CreatedAt. ECONFLICT if the
// name (or, improbably, the token hash) exists; EINVALID for an empty name
// or token hash or an unknown kind.
func (s *SourceService) CreateSource(ctx context.Context, src *callvault.Source) error {
	src.Name = strings.TrimSpace(src.Name)
	switch {
	case src.Name == "" || len(src.Name) > 100:
		return callvault.Errorf(callvault.EINVALID, "source name must be 1-100 characters")
	case !validSourceKind(src.Kind):
		return callvault.Errorf(callvault.EINVALID, "unknown source kind %q", src.Kind)
	case src.TokenHash == "":
		return callvault.Errorf(callvault.EINVALID, "source has no token hash")
	}
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()

	createdAt := tx.now.Truncate(time.Millisecond)
	err = tx.queryRow(ctx, `INSERT INTO sources (name, kind, token_hash, disabled, created_at)
		VALUES (?, ?, ?, ?, ?) RETURNING id`,
		src.Name, src.Kind, src.TokenHash, src.Disabled, createdAt.UnixMilli()).Scan(&src.ID)
	if isUnique(err) {
		if strings.Contains(err.Error(), "token_hash") {
			return callvault.Wrap(callvault.ECONFLICT, err, "token already in use")
		}
		return callvault.Wrap(callvault.ECONFLICT, err, "a source with this name already exists")
	} else if err != nil {
		return dbError(err)
	}
	if err := tx.commit(); err != nil {
		return err
	}
	src.CreatedAt = createdAt
	return nil
}

// FindSourceByName returns ENOTFOUND.
func (s *SourceService) FindSourceByName(ctx context.Context, name string) (*callvault.Source, error) {
	src, err := s.findSource(ctx, "name = ?", name)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, callvault.Errorf(callvault.ENOTFOUND, "source not found")
	}
	return src, err
}

// FindSourceByTokenHash returns EUNAUTHORIZED for an unknown or disabled
// token; the two are not told apart.
func (s *SourceService) FindSourceByTokenHash(ctx context.Context, hash string) (*callvault.Source, error) {
	src, err := s.findSource(ctx, "token_hash = ?", hash)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && src.Disabled) {
		return nil, callvault.Errorf(callvault.EUNAUTHORIZED, "the ingest token is not valid")
	}
	return src, err
}

// FindSources lists every source by name.
func (s *SourceService) FindSources(ctx context.Context) ([]*callvault.Source, error) {
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.query(ctx, `SELECT `+sourceColumns+` FROM sources ORDER BY name`)
	if err != nil {
		return nil, dbError(err)
	}
	defer rows.Close()
	srcs := []*callvault.Source{}
	for rows.Next() {
		src := &callvault.Source{}
		if err := scanSource(rows, src); err != nil {
			return nil, err
		}
		srcs = append(srcs, src)
	}
	return srcs, dbError(rows.Err())
}

const sourceColumns = `id, name, kind, token_hash, disabled, created_at`

func scanSource(sc interface{ Scan(...any) error }, src *callvault.Source) error {
	return sc.Scan(&src.ID, &src.Name, &src.Kind, &src.TokenHash, &src.Disabled, msTime{&src.CreatedAt})
}

// findSource returns the source matching cond, or sql.ErrNoRows for the
// caller to translate.
func (s *SourceService) findSource(ctx context.Context, cond string, args ...any) (*callvault.Source, error) {
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	src := &callvault.Source{}
	err = scanSource(tx.queryRow(ctx, `SELECT `+sourceColumns+` FROM sources WHERE `+cond, args...), src)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, err
	} else if err != nil {
		return nil, dbError(err)
	}
	return src, nil
}
