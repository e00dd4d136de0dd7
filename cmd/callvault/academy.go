package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/phone"
)

func academyCmd(e *env) *ffcli.Command {
	return group("academy", "callvault academy <add|list|edit> [flags]", "Manage academies and the numbers that identify them",
		academyAddCmd(e), academyListCmd(e), academyEditCmd(e))
}

type academyFlags struct {
	fs                        *flag.FlagSet
	name, numbers, extensions string
}

func (a *academyFlags) register(fs *flag.FlagSet) {
	a.fs = fs
	fs.StringVar(&a.name, "name", "", "full name")
	fs.StringVar(&a.numbers, "numbers", "", "comma-separated phone numbers or ranges (DDIs), e.g. \"01632 960000-01632 960099\"")
	fs.StringVar(&a.extensions, "extensions", "", "comma-separated extensions or ranges, e.g. 2000-2099")
}

// apply sets the fields given on the command line (all of them for a new
// academy).
func (a *academyFlags) apply(ac *callvault.Academy) error {
	set := map[string]bool{}
	a.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	if set["name"] || ac.ID == 0 {
		ac.Name = strings.TrimSpace(a.name)
	}
	if set["numbers"] || ac.ID == 0 {
		if ac.Numbers, err = phone.ParseRanges(a.numbers, true); err != nil {
			return err
		}
	}
	if set["extensions"] || ac.ID == 0 {
		if ac.Extensions, err = phone.ParseRanges(a.extensions, false); err != nil {
			return err
		}
	}
	return nil
}

func academyAddCmd(e *env) *ffcli.Command {
	var a academyFlags
	return e.command(spec{
		name: "academy add", usage: "callvault academy add --name NAME [flags] SLUG", short: "Add an academy",
		args: "one short name", minArgs: 1, maxArgs: 1, flags: a.register, action: "academy.create",
		run: func(ctx context.Context, dep *deployment, args []string) error {
			ac := &callvault.Academy{Slug: args[0]}
			if err := a.apply(ac); err != nil {
				return userError(err)
			}
			if err := dep.academies.CreateAcademy(ctx, ac); err != nil {
				return userError(err)
			}
			fmt.Fprintf(e.stdout, "added academy %s\n", ac.Slug)
			return nil
		},
	})
}

func academyEditCmd(e *env) *ffcli.Command {
	var a academyFlags
	return e.command(spec{
		name: "academy edit", usage: "callvault academy edit [flags] SLUG",
		short: "Change an academy's name, numbers or extensions (flags not given are kept)",
		args:  "one short name", minArgs: 1, maxArgs: 1, flags: a.register, action: "academy.update",
		run: func(ctx context.Context, dep *deployment, args []string) error {
			ac, err := dep.academies.FindAcademyBySlug(ctx, args[0])
			if err != nil {
				return userError(err)
			}
			if err := a.apply(ac); err != nil {
				return userError(err)
			}
			if err := dep.academies.UpdateAcademy(ctx, ac); err != nil {
				return userError(err)
			}
			fmt.Fprintf(e.stdout, "updated academy %s\n", ac.Slug)
			return nil
		},
	})
}

func academyListCmd(e *env) *ffcli.Command {
	return e.command(spec{
		name: "academy list", usage: "callvault academy list [flags]", short: "List academies", action: "academy.list", reads: true,
		run: func(ctx context.Context, dep *deployment, args []string) error {
			list, err := dep.academies.FindAcademies(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SLUG\tNAME\tNUMBERS\tEXTENSIONS")
			for _, a := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Slug, a.Name, rangesText(a.Numbers), rangesText(a.Extensions))
			}
			return tw.Flush()
		},
	})
}

func rangesText(rs []callvault.Range) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, r.String())
	}
	return strings.Join(parts, ",")
}
