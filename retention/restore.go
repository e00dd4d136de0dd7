package retention

import (
	"context"
	"fmt"

	"github.com/callvault/callvault"
)

// WhyRestoredShredded is the rule a receipt gives for a recording removed
// from a restored backup because its key epoch had been destroyed.
const WhyRestoredShredded = "restored from a backup taken before its month's key was destroyed"

// ForgetShredded removes the recordings of every destroyed key epoch, with a
// receipt each: after a backup taken before a purge is restored, the purged
// recordings are reported as purged and never brought back (their audio
// cannot be decrypted anyway). Epochs that have recordings but no key at all
// are reported in Report.MissingKeys and left alone: the keyring may simply
// not be restored yet.
func (p *Purger) ForgetShredded(ctx context.Context) (Report, error) {
	now := p.now()
	rep := Report{RunID: newRunID(now), AsOf: now}
	ctx = callvault.NewContextWithActor(ctx, &callvault.Actor{System: true, Name: "restore:" + rep.RunID})
	epochs, err := p.Keys.Epochs()
	if err != nil {
		return rep, err
	}
	state := map[string]string{}
	for _, e := range epochs {
		state[e.Epoch] = e.State
	}
	usage, err := p.Store.EpochUsage(ctx, now)
	if err != nil {
		return rep, err
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
			return rep, fmt.Errorf("retention: write receipts for key epoch %s: %w", u.Epoch, err)
		}
		if _, err := p.resume(ctx); err != nil {
			return rep, err
		}
		for _, e := range queued {
			rep.Purged++
			rep.Bytes += e.Size
		}
		rep.Destroyed = append(rep.Destroyed, u.Epoch)
	}
	return rep, nil
}
