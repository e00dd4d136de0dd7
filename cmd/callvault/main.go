// Command callvault is the call-recording server and its administration
// tool. This package only wires the adapters together; each subcommand has
// its own file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // Europe/London on machines without a zone database

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/callvault/callvault"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "callvault:", err)
		os.Exit(1)
	}
}

// env is what every subcommand gets: where to print, how to log.
type env struct {
	stdout, stderr io.Writer
	logger         *slog.Logger
}

// subcommands are callvault's commands, in the order --help lists them.
func subcommands(e *env) []*ffcli.Command {
	return []*ffcli.Command{
		serveCmd(e), importCmd(e), userCmd(e), sourceCmd(e), academyCmd(e), auditCmd(e), tokenCmd(e),
		retentionCmd(e), keysCmd(e), backupCmd(e), restoreCmd(e), sipCmd(e), versionCmd(e),
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	e := &env{stdout: stdout, stderr: stderr,
		logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	root := &ffcli.Command{
		Name:        "callvault",
		ShortUsage:  "callvault <subcommand> [flags]",
		LongHelp:    "callvault records, stores, restricts and accounts for telephone calls.\nEvery subcommand takes --help.",
		Subcommands: subcommands(e),
		FlagSet:     flag.NewFlagSet("callvault", flag.ContinueOnError),
	}
	root.Exec = usageOnly(root)
	for _, c := range allCommands(root) {
		c.FlagSet.SetOutput(stderr)
		if c.UsageFunc == nil {
			c.UsageFunc = ffcli.DefaultUsageFunc
		}
	}
	if err := root.Parse(args); err != nil {
		return err
	}
	return root.Run(ctx)
}

func allCommands(c *ffcli.Command) []*ffcli.Command {
	out := []*ffcli.Command{c}
	for _, s := range c.Subcommands {
		out = append(out, allCommands(s)...)
	}
	return out
}

func versionCmd(e *env) *ffcli.Command {
	return &ffcli.Command{
		Name:       "version",
		ShortUsage: "callvault version",
		ShortHelp:  "Print the version",
		FlagSet:    flag.NewFlagSet("version", flag.ContinueOnError),
		Exec: func(context.Context, []string) error {
			fmt.Fprintln(e.stdout, "callvault", callvault.Version)
			return nil
		},
	}
}
