package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/callvault/callvault"
)

func keysCmd(e *env) *ffcli.Command {
	return group("keys", "callvault keys <status> [flags]", "Key epochs: which months' keys exist, are closing or were destroyed",
		keysStatusCmd(e))
}

func keysStatusCmd(e *env) *ffcli.Command {
	return e.command(spec{
		name: "keys status", usage: "callvault keys status [flags]",
		short: "List key epochs, their recordings and their state",
		long: "Every month of recordings has its own key (an epoch). When retention has deleted every\n" +
			"recording of a month, its key is closed, then destroyed: copies of those recordings in any\n" +
			"backup can no longer be read. Recordings kept by a legal hold are re-encrypted under a\n" +
			"hold epoch (hold-YYYY-MM) first.",
		action: "keys.status", reads: true,
		run: func(ctx context.Context, dep *deployment, args []string) error {
			epochs, err := dep.vault.Epochs()
			if err != nil {
				return err
			}
			usage, err := dep.purges.EpochUsage(ctx, time.Now())
			if err != nil {
				return userError(err)
			}
			byEpoch := map[string]callvault.EpochUsage{}
			for _, u := range usage {
				byEpoch[u.Epoch] = u
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "EPOCH\tSTATE\tRECORDINGS\tHELD\tSINCE")
			seen := map[string]bool{}
			for _, ep := range epochs {
				seen[ep.Epoch] = true
				u := byEpoch[ep.Epoch]
				since := ep.CreatedAt
				switch ep.State {
				case callvault.KeyEpochClosing:
					since = ep.ClosedAt
				case callvault.KeyEpochDestroyed:
					since = ep.DestroyedAt
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", ep.Epoch, ep.State, u.Recordings, u.Held, since.In(callvault.London).Format("2006-01-02 15:04"))
			}
			for _, u := range usage {
				if !seen[u.Epoch] {
					// Rows whose key is not in this keyring cannot be read.
					fmt.Fprintf(tw, "%s\tNO KEY\t%d\t%d\t\n", u.Epoch, u.Recordings, u.Held)
				}
			}
			return tw.Flush()
		},
	})
}
