package retention

import (
	"context"
	"fmt"
	"time"

	"github.com/callvault/callvault"
)

// WhyRestoredShredded is the rule a receipt gives for a recording removed
// from a restored backup because its key epoch had been destroyed.
const WhyRestoredShredded = "restored from a backup taken before its month's key was destroyed"

// forgetShredded removes the recordings of every destroyed key epoch, with a
// receipt each: after a backup taken before a purge is restored, the purged
// recordings are reported as purged and never brought back (their audio
// cannot be decrypted anyway). Epochs that have recordings but no key at all
// are reported in Report.MissingKeys and left alone: the keyring may simply
// not be restored yet.
//
// Every real Run does this first; after a restore nothing else is needed.
// In normal operation there is nothing to do: an epoch is destroyed only
// once no recording uses it.
func (p *Purger) forgetShredded(ctx context.Context, rep *Report, now time.Time) error {
	epochs, err := p.Keys.Epochs()
	if err != nil {
		return err
	}
	state := map[string]string{}
	for _, e := range epochs {
		state[e.Epoch] = e.State
	}
	usage, err := p.Store.EpochUsage(ctx, now)
	if err != nil {
		return err
	}
	for _, u := range usage {
		switch state[u.Epoch] {
		case "":
			rep.MissingKeys = append(rep.MissingKeys, u.Epoch)
			continue
		case callvault.KeyEpochDestroyed:
		default:
			continue
		}
		queued, err := p.Store.QueueEpoch(ctx, rep.RunID, u.Epoch, WhyRestoredShredded)
		if err != nil {
			return fmt.Errorf("retention: write receipts for key epoch %s: %w", u.Epoch, err)
		}
		if _, err := p.resume(ctx); err != nil {
			return err
		}
		rep.Forgotten += len(queued)
		rep.ForgottenEpochs = append(rep.ForgottenEpochs, u.Epoch)
		p.log().Warn("retention: removed restored recordings whose key epoch was destroyed; they are reported as purged",
			"epoch", u.Epoch, "count", len(queued), "run", rep.RunID)
	}
	return nil
}
