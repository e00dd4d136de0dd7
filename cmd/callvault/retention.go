package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/phone"
	"github.com/callvault/callvault/retention"
)

func retentionCmd(e *env) *ffcli.Command {
	return group("retention", "callvault retention <run|show|set|remove|category|upcoming> [flags]",
		"Retention: purge expired recordings, and set how long recordings are kept",
		retentionRunCmd(e), retentionShowCmd(e), retentionSetCmd(e, false), retentionSetCmd(e, true),
		retentionCategoryCmd(e), retentionUpcomingCmd(e))
}

// purger is the deployment's retention job.
func (dep *deployment) purger(e *env) *retention.Purger {
	return &retention.Purger{Store: dep.purges, Blobs: dep.blobs, Keys: dep.vault, Rewrap: dep.archive,
		Auditor: dep.log, Logger: e.logger}
}

func retentionRunCmd(e *env) *ffcli.Command {
	var (
		dry    bool
		asOf   string
		asJSON bool
	)
	var purger *retention.Purger
	return e.command(spec{
		name: "retention run", usage: "callvault retention run [--dry-run] [--as-of 2027-01-31T00:00:00Z] [--json] [flags]",
		short: "Delete recordings past their retention date that no hold keeps, with a receipt each",
		long: "Deletes every recording whose keep-until date has passed and that no active legal hold covers:\n" +
			"its audio, its metadata and its links. Each deletion writes a receipt (recording id, SHA-256,\n" +
			"academy, rule, run) into the audit trail before anything is deleted. A month whose recordings\n" +
			"are all gone has its key closed, then destroyed a day later: copies in backups become unreadable.\n" +
			"The server runs this every day; a run that was killed is finished by the next.\n\n" +
			"--dry-run lists exactly what a run at --as-of would delete, and deletes nothing.",
		action: "retention.run",
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&dry, "dry-run", false, "list what would be deleted; change nothing")
			fs.StringVar(&asOf, "as-of", "", "the moment to judge expiry at (RFC 3339 or YYYY-MM-DD, London); a real run refuses the future")
			fs.BoolVar(&asJSON, "json", false, "print one JSON object per recording, then the report")
		},
		run: func(ctx context.Context, dep *deployment, args []string) error {
			at, err := parseAsOf(asOf)
			if err != nil {
				return err
			}
			purger = dep.purger(e)
			enc := json.NewEncoder(e.stdout)
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			if !asJSON {
				fmt.Fprintln(tw, "RECORDING\tACADEMY\tKEEP UNTIL\tRULE\tSHA-256")
			}
			rep, err := purger.Run(ctx, retention.Options{AsOf: at, DryRun: dry, Each: func(x *callvault.Expired) {
				if asJSON {
					enc.Encode(x)
					return
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", x.ID, x.Academy, x.RetainUntil.In(callvault.London).Format("2006-01-02 15:04"), x.Rule, x.SHA256)
			}})
			tw.Flush()
			noteRun(ctx, rep)
			if asJSON {
				enc.Encode(rep)
			} else {
				fmt.Fprintln(e.stdout, rep.Summary())
			}
			return userError(err)
		},
	})
}

// noteRun puts a run's report in its audit entry.
func noteRun(ctx context.Context, rep retention.Report) {
	callvault.NoteAudit(ctx, func(ev *callvault.AuditEvent) {
		ev.TargetType, ev.TargetID = "retention_run", rep.RunID
		ev.Details = map[string]string{"dry_run": strconv.FormatBool(rep.DryRun), "as_of": rep.AsOf.UTC().Format(time.RFC3339),
			"purged": strconv.Itoa(rep.Purged), "resumed": strconv.Itoa(rep.Resumed), "bytes": strconv.FormatInt(rep.Bytes, 10),
			"rewrapped": strconv.Itoa(rep.Rewrapped), "destroyed": strings.Join(rep.Destroyed, ",")}
	})
}

// parseAsOf reads --as-of: RFC 3339, or a date meaning its midnight in London.
func parseAsOf(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02", s, callvault.London); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--as-of %q: use RFC 3339 (2027-01-31T00:00:00Z) or a date (2027-01-31)", s)
}

func retentionShowCmd(e *env) *ffcli.Command {
	return e.command(spec{
		name: "retention show", usage: "callvault retention show [flags]", short: "Show the retention rules and categories",
		action: "retention.view", reads: true,
		run: func(ctx context.Context, dep *deployment, args []string) error {
			policy, err := dep.retention.RetentionPolicy(ctx)
			if err != nil {
				return userError(err)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RULE\tMONTHS\tCHANGED\tBY")
			for _, r := range policy {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", r.String(), r.Months, r.UpdatedAt.In(callvault.London).Format("2006-01-02 15:04"), r.UpdatedBy)
			}
			tw.Flush()
			cats, err := dep.retention.FindCategories(ctx)
			if err != nil {
				return userError(err)
			}
			if len(cats) > 0 {
				fmt.Fprintln(e.stdout)
				tw = tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "CATEGORY\tNAME\tNUMBERS\tEXTENSIONS")
				for _, c := range cats {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Slug, c.Name, rangesString(c.Numbers), rangesString(c.Extensions))
				}
				tw.Flush()
			}
			return nil
		},
	})
}

func rangesString(rs []callvault.Range) string {
	s := ""
	for i, r := range rs {
		if i > 0 {
			s += ","
		}
		s += r.String()
	}
	return s
}

func retentionSetCmd(e *env, remove bool) *ffcli.Command {
	var (
		academy, category string
		months            int
		yes               bool
	)
	name, usage, short, action := "retention set", "callvault retention set --months N [--academy SLUG] [--category SLUG] [--yes] [flags]",
		"Set how long recordings are kept (shows what changes; --yes to apply)", "retention.set"
	if remove {
		name, usage, short, action = "retention remove", "callvault retention remove [--academy SLUG] [--category SLUG] [--yes] [flags]",
			"Remove an academy or category override (shows what changes; --yes to apply)", "retention.remove"
	}
	return e.command(spec{
		name: name, usage: usage, short: short, action: action,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&academy, "academy", "", "the academy the rule is for (default: every academy)")
			fs.StringVar(&category, "category", "", "the category the rule is for (default: every category)")
			if !remove {
				fs.IntVar(&months, "months", 0, "months from the start of the call (1-120)")
			}
			fs.BoolVar(&yes, "yes", false, "apply the change; without it only the preview is shown")
		},
		run: func(ctx context.Context, dep *deployment, args []string) error {
			r := &callvault.RetentionRule{Category: category, Months: months}
			if academy != "" {
				a, err := dep.academies.FindAcademyBySlug(ctx, academy)
				if err != nil {
					return userError(err)
				}
				r.AcademyID, r.Academy = a.ID, a.Slug
			}
			if remove && r.IsDefault() {
				return fmt.Errorf("the trust default cannot be removed; use retention set --months")
			}
			impact, err := dep.retention.PreviewRetentionRule(ctx, r, remove)
			if err != nil {
				return userError(err)
			}
			what := r.String()
			if remove {
				what = "removing the rule for " + r.String()
			}
			fmt.Fprintf(e.stdout, "%s: %d recordings change date (%d earlier, %d later); %d would be deleted by the next run unless held.\n",
				what, impact.Changed, impact.Earlier, impact.Later, impact.DueNow)
			if !yes {
				fmt.Fprintln(e.stdout, "Nothing changed. Run again with --yes to apply.")
				callvault.NoteAudit(ctx, func(ev *callvault.AuditEvent) {
					ev.Details = map[string]string{"preview": "true", "rule": what}
				})
				return nil
			}
			if remove {
				_, err = dep.retention.DeleteRetentionRule(ctx, r.AcademyID, r.Category)
			} else {
				_, err = dep.retention.SetRetentionRule(ctx, r)
			}
			if err != nil {
				return userError(err)
			}
			fmt.Fprintln(e.stdout, "Applied.")
			return nil
		},
	})
}

func retentionCategoryCmd(e *env) *ffcli.Command {
	var name, numbers, extensions string
	return e.command(spec{
		name: "retention category", usage: "callvault retention category SLUG --name NAME [--numbers RANGES] [--extensions RANGES] [flags]",
		short: "Add a category of calls (a line, e.g. safeguarding) that can have its own retention", action: "category.create",
		args: "a category slug", minArgs: 1, maxArgs: 1,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&name, "name", "", "what people call it, e.g. \"Safeguarding line\"")
			fs.StringVar(&numbers, "numbers", "", "the line's numbers: comma-separated numbers or first-last ranges")
			fs.StringVar(&extensions, "extensions", "", "the line's extensions: comma-separated or first-last ranges")
		},
		run: func(ctx context.Context, dep *deployment, args []string) error {
			c := &callvault.Category{Slug: args[0], Name: name}
			var err error
			if c.Numbers, err = phone.ParseRanges(numbers, true); err != nil {
				return userError(err)
			}
			if c.Extensions, err = phone.ParseRanges(extensions, false); err != nil {
				return userError(err)
			}
			if err := dep.retention.CreateCategory(ctx, c); err != nil {
				return userError(err)
			}
			fmt.Fprintf(e.stdout, "created category %s; calls on its numbers from now on follow its retention rule (callvault retention set --category %s)\n", c.Slug, c.Slug)
			return nil
		},
	})
}

func retentionUpcomingCmd(e *env) *ffcli.Command {
	var days int
	return e.command(spec{
		name: "retention upcoming", usage: "callvault retention upcoming [--days 30] [flags]",
		short: "Count the recordings due for deletion in the next days, per academy and day", action: "retention.upcoming", reads: true,
		flags: func(fs *flag.FlagSet) { fs.IntVar(&days, "days", 30, "how many days ahead") },
		run: func(ctx context.Context, dep *deployment, args []string) error {
			if days < 1 || days > 366 {
				return fmt.Errorf("--days must be between 1 and 366")
			}
			now := time.Now()
			ups, err := dep.retention.UpcomingDeletions(ctx, now, now.AddDate(0, 0, days))
			if err != nil {
				return userError(err)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DAY\tACADEMY\tTO DELETE\tKEPT BY A HOLD")
			for _, u := range ups {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", u.Day.Format("Mon 2 Jan 2006"), u.Academy, u.Count, u.Held)
			}
			return tw.Flush()
		},
	})
}
