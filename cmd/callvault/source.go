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
	return group("source", "callvault source <add|list> [flags]", "Manage ingest sources (PBX exporters, scripts, SIPREC clients)",
		sourceAddCmd(e), sourceListCmd(e))
}

func sourceAddCmd(e *env) *ffcli.Command {
	var kind string
	return e.command(spec{
		name: "source add", usage: "callvault source add [flags] NAME", short: "Create an ingest source and print its token",
		args: "one source name", minArgs: 1, maxArgs: 1, action: "source.create",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&kind, "kind", callvault.SourceAPI, "kind: api, import or siprec")
		},
		run: func(ctx context.Context, dep *deployment, args []string) error {
			switch kind {
			case callvault.SourceAPI, callvault.SourceImport, callvault.SourceSIPREC:
			default:
				return fmt.Errorf("--kind must be api, import or siprec")
			}
			token := secret.Token("cvi_")
			src := &callvault.Source{Name: args[0], Kind: kind, TokenHash: secret.HashToken(token)}
			if err := dep.sources.CreateSource(ctx, src); err != nil {
				return userError(err)
			}
			fmt.Fprintf(e.stdout, "created source %s; its ingest token is\n\n    %s\n\nIt is shown only now. Send it as: Authorization: Bearer <token>\n", src.Name, token)
			return nil
		},
	})
}

func sourceListCmd(e *env) *ffcli.Command {
	return e.command(spec{
		name: "source list", usage: "callvault source list [flags]", short: "List ingest sources", action: "source.list", reads: true,
		run: func(ctx context.Context, dep *deployment, args []string) error {
			list, err := dep.sources.FindSources(ctx)
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
	})
}
