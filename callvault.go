// Package callvault is the vocabulary of the call recorder: the domain types
// (recordings, academies, users, ingest sources), the service interfaces that
// adapters implement, the error type, and the single place where access
// decisions are made.
//
// Adapters live in their own packages (sqldb, blob, vault, audio, web) and do
// not import each other; cmd/callvault wires them together.
package callvault

import (
	"context"
	"time"
)

// Version is set at build time with -ldflags "-X github.com/callvault/callvault.Version=...".
var Version = "dev"

// Clock returns the current time. Services take one so tests can move time.
type Clock func() time.Time

// London is the trust's time zone; deadlines and key epochs are computed in it.
var London = mustLoad("Europe/London")

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		// The zone database is embedded via time/tzdata in cmd/callvault, so
		// this only happens in a broken build.
		panic(err)
	}
	return loc
}

// Pinger is implemented by dependencies that /readyz checks.
type Pinger interface {
	Ping(ctx context.Context) error
}
