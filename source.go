package callvault

import (
	"context"
	"time"
)

// Source is a system allowed to deliver recordings (a PBX export job, a SIPREC
// client, a script). Its ingest token is shown once; the database keeps only
// its SHA-256.
type Source struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Kind      string    `json:"kind"` // SourceAPI, SourceImport, SourceSIPREC
	TokenHash string    `json:"-"`
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"created_at"`
}

// SourceService manages ingest sources.
type SourceService interface {
	// CreateSource returns ECONFLICT if the name exists.
	CreateSource(ctx context.Context, s *Source) error
	// FindSourceByName returns ENOTFOUND.
	FindSourceByName(ctx context.Context, name string) (*Source, error)
	// FindSourceByTokenHash returns EUNAUTHORIZED for an unknown or disabled token.
	FindSourceByTokenHash(ctx context.Context, hash string) (*Source, error)
	FindSources(ctx context.Context) ([]*Source, error)
}
