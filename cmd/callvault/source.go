package main

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/secret"
)

func sourceCmd(e *env) *ffcli.Command {
	return &ffcli.Command{
		Name:        "source",
		ShortUsage:  "callvault source <add|list> [flags]",
		ShortHelp:   "Manage ingest sources (PBX exporters, scripts, SIPREC clients)",
		FlagSet:     flag.NewFlagSet("source", flag.ContinueOnError),
		Subcommands: []*ffcli.Command{sourceAddCmd(e), sourceListCmd(e)},
		Exec:        func(context.Context, []string) error { return flag.ErrHelp },
	}
}

func sourceAddCmd(e *env) *ffcli.Command {
	var d deployFlags
	fs := flag.NewFlagSet("source add", flag.ContinueOnError)
	d.register(fs)
	kind := fs.String("kind", callvault.SourceAPI, "kind: api, import or siprec")
	return &ffcli.Command{
		Name:       "add",
		ShortUsage: "callvault source add [flags] NAME",
		ShortHelp:  "Create an ingest source and print its token",
		FlagSet:    fs,
		Options:    ffOptions(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("give exactly one source name: %w", errUsage)
			}
			switch *kind {
			case callvault.SourceAPI, callvault.SourceImport, callvault.SourceSIPREC:
			default:
				return fmt.Errorf("--kind must be api, import or siprec")
			}
			dep, err := d.open(ctx, e)
			if err != nil {
				return err
			}
			defer dep.Close()
			token := secret.Token("cvi_")
			src := &callvault.Source{Name: args[0], Kind: *kind, TokenHash: secret.HashToken(token)}
			if err := dep.sources.CreateSource(system(ctx), src); err != nil {
				return fmt.Errorf("%s", callvault.ErrorMessage(err))
			}
			fmt.Fprintf(e.stdout, "created source %s; its ingest token is\n\n    %s\n\nIt is shown only now. Send it as: Authorization: Bearer <token>\n", src.Name, token)
			return nil
		},
	}
}

func sourceListCmd(e *env) *ffcli.Command {
	var d deployFlags
	fs := flag.NewFlagSet("source list", flag.ContinueOnError)
	d.register(fs)
	return &ffcli.Command{
		Name:       "list",
		ShortUsage: "callvault source list [flags]",
		ShortHelp:  "List ingest sources",
		FlagSet:    fs,
		Options:    ffOptions(),
		Exec: func(ctx context.Context, args []string) error {
			dep, err := d.open(ctx, e)
			if err != nil {
				return err
			}
			defer dep.Close()
			list, err := dep.sources.FindSources(system(ctx))
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tKIND\tSTATE\tCREATED")
			for _, s := range list {
				state := "active"
				if s.Disabled {
					state = "disabled"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, s.Kind, state, s.CreatedAt.Format("2006-01-02"))
			}
			return tw.Flush()
		},
	}
}
