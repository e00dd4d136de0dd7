package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/callvault/callvault"
)

// Checkpointer signs the trail's head and hands the checkpoint to every
// exporter.
type Checkpointer struct {
	Store     callvault.AuditStore
	Signer    *Signer
	Exporters []Exporter
	Now       callvault.Clock // default time.Now
	Logger    *slog.Logger    // default slog.Default()

	mu       sync.Mutex
	lastSeq  int64 // head of the last checkpoint every exporter took
	lastHash string
}

// Checkpoint reads the head, signs it and exports it to every exporter. If
// some exports fail it still tries the others, and returns the checkpoint
// together with an error naming each failure: the caller decides whether to
// alert. It fails with EUNAVAILABLE when the head cannot be read.
func (c *Checkpointer) Checkpoint(ctx context.Context) (*Checkpoint, error) {
	seq, hash, err := c.Store.AuditHead(ctx)
	if err != nil {
		return nil, callvault.Wrap(callvault.EUNAVAILABLE, err, "the audit trail's head cannot be read")
	}
	return c.checkpoint(ctx, seq, hash)
}

func (c *Checkpointer) checkpoint(ctx context.Context, seq int64, hash string) (*Checkpoint, error) {
	now := c.Now
	if now == nil {
		now = time.Now
	}
	cp := c.Signer.Sign(seq, hash, now())
	var errs []error
	for _, e := range c.Exporters {
		if err := e.Export(ctx, cp); err != nil {
			errs = append(errs, fmt.Errorf("export to %s: %w", e, err))
		}
	}
	if len(errs) > 0 {
		return cp, callvault.Wrap(callvault.EUNAVAILABLE, errors.Join(errs...), "an audit checkpoint could not be exported")
	}
	c.mu.Lock()
	c.lastSeq, c.lastHash = seq, hash
	c.mu.Unlock()
	return cp, nil
}

// DefaultCheckpointInterval is what Run uses when given no interval. It is
// the window in which a rebuilt chain goes unnoticed.
const DefaultCheckpointInterval = 15 * time.Minute

// Run makes a checkpoint now and then every interval (a non-positive one
// means DefaultCheckpointInterval) until ctx ends,
// skipping a tick when the head has not moved since the last checkpoint
// that every exporter took (after a failed export the next tick tries all
// of them again). Failures are logged at error level: alert on them.
func (c *Checkpointer) Run(ctx context.Context, every time.Duration) {
	logger := c.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if every <= 0 {
		every = DefaultCheckpointInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		c.tick(ctx, logger)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *Checkpointer) tick(ctx context.Context, logger *slog.Logger) {
	seq, hash, err := c.Store.AuditHead(ctx)
	if err != nil {
		if ctx.Err() == nil {
			logger.Error("audit checkpoint: cannot read the trail's head", "err", err)
		}
		return
	}
	c.mu.Lock()
	moved := c.lastHash == "" || seq != c.lastSeq || hash != c.lastHash
	c.mu.Unlock()
	if !moved {
		return
	}
	cp, err := c.checkpoint(ctx, seq, hash)
	if err != nil {
		if ctx.Err() == nil {
			logger.Error("audit checkpoint: export failed", "seq", cp.Seq, "err", err)
		}
		return
	}
	logger.Info("audit checkpoint", "seq", cp.Seq, "hash", cp.Hash, "key_id", cp.KeyID)
}
