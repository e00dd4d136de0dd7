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
	return &ffcli.Command{
		Name:        "academy",
		ShortUsage:  "callvault academy <add|list|edit> [flags]",
		ShortHelp:   "Manage academies and the numbers that identify them",
		FlagSet:     flag.NewFlagSet("academy", flag.ContinueOnError),
		Subcommands: []*ffcli.Command{academyAddCmd(e), academyListCmd(e), academyEditCmd(e)},
		Exec:        func(context.Context, []string) error { return flag.ErrHelp },
	}
}

type academyFlags struct {
	name, numbers, extensions string
}

func (a *academyFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.name, "name", "", "full name")
	fs.StringVar(&a.numbers, "numbers", "", "comma-separated phone numbers or ranges (DDIs), e.g. \"01632 960000-01632 960099\"")
	fs.StringVar(&a.extensions, "extensions", "", "comma-separated extensions or ranges, e.g. 2000-2099")
}

func (a *academyFlags) apply(ac *callvault.Academy, fs *flag.FlagSet) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
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
	var d deployFlags
	var a academyFlags
	fs := flag.NewFlagSet("academy add", flag.ContinueOnError)
	d.register(fs)
	a.register(fs)
	return &ffcli.Command{
		Name:       "add",
		ShortUsage: "callvault academy add --name NAME [flags] SLUG",
		ShortHelp:  "Add an academy",
		FlagSet:    fs,
		Options:    ffOptions(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("give exactly one short name: %w", errUsage)
			}
			ac := &callvault.Academy{Slug: args[0]}
			if err := a.apply(ac, fs); err != nil {
				return fmt.Errorf("%s", callvault.ErrorMessage(err))
			}
			dep, err := d.open(ctx, e)
			if err != nil {
				return err
			}
			defer dep.Close()
			if err := dep.academies.CreateAcademy(system(ctx), ac); err != nil {
				return fmt.Errorf("%s", callvault.ErrorMessage(err))
			}
			fmt.Fprintf(e.stdout, "added academy %s\n", ac.Slug)
			return nil
		},
	}
}

func academyEditCmd(e *env) *ffcli.Command {
	var d deployFlags
	var a academyFlags
	fs := flag.NewFlagSet("academy edit", flag.ContinueOnError)
	d.register(fs)
	a.register(fs)
	return &ffcli.Command{
		Name:       "edit",
		ShortUsage: "callvault academy edit [flags] SLUG",
		ShortHelp:  "Change an academy's name, numbers or extensions (flags not given are kept)",
		FlagSet:    fs,
		Options:    ffOptions(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("give exactly one short name: %w", errUsage)
			}
			dep, err := d.open(ctx, e)
			if err != nil {
				return err
			}
			defer dep.Close()
			ctx = system(ctx)
			ac, err := dep.academies.FindAcademyBySlug(ctx, args[0])
			if err != nil {
				return fmt.Errorf("%s", callvault.ErrorMessage(err))
			}
			if err := a.apply(ac, fs); err != nil {
				return fmt.Errorf("%s", callvault.ErrorMessage(err))
			}
			if err := dep.academies.UpdateAcademy(ctx, ac); err != nil {
				return fmt.Errorf("%s", callvault.ErrorMessage(err))
			}
			fmt.Fprintf(e.stdout, "updated academy %s\n", ac.Slug)
			return nil
		},
	}
}

func academyListCmd(e *env) *ffcli.Command {
	var d deployFlags
	fs := flag.NewFlagSet("academy list", flag.ContinueOnError)
	d.register(fs)
	return &ffcli.Command{
		Name:       "list",
		ShortUsage: "callvault academy list [flags]",
		ShortHelp:  "List academies",
		FlagSet:    fs,
		Options:    ffOptions(),
		Exec: func(ctx context.Context, args []string) error {
			dep, err := d.open(ctx, e)
			if err != nil {
				return err
			}
			defer dep.Close()
			list, err := dep.academies.FindAcademies(system(ctx))
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
	}
}

func rangesText(rs []callvault.Range) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, r.String())
	}
	return strings.Join(parts, ",")
}
