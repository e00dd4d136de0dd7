package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/secret"
)

func tokenCmd(e *env) *ffcli.Command {
	return group("token", "callvault token <create|list|revoke> [flags]", "Manage personal API tokens for scripts",
		tokenCreateCmd(e), tokenListCmd(e), tokenRevokeCmd(e))
}

func tokenCreateCmd(e *env) *ffcli.Command {
	var login, name, scopes string
	var life time.Duration
	return e.command(spec{
		name: "token create", usage: "callvault token create --user LOGIN [--name N] [--scope read|write] [--expires 720h] [flags]",
		short: "Create a personal API token for a user and print it once", action: "token.create",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&login, "user", "", "the account the token acts as (required)")
			fs.StringVar(&name, "name", "script", "what the token is for")
			fs.StringVar(&scopes, "scope", callvault.ScopeRead, "read (GET only) or write (also requests and decisions); audio can never be played with a token")
			fs.DurationVar(&life, "expires", 90*24*time.Hour, "how long the token lasts (at most 8760h)")
		},
		run: func(ctx context.Context, dep *deployment, args []string) error {
			if login == "" {
				return fmt.Errorf("--user is required")
			}
			u, err := dep.users.FindUserByLogin(ctx, strings.ToLower(login))
			if err != nil {
				return userError(err)
			}
			tok := secret.Token("cvt_")
			t := &callvault.APIToken{UserID: u.ID, Name: name, TokenHash: secret.HashToken(tok), Scopes: splitList(scopes), ExpiresAt: time.Now().Add(life)}
			callvault.NoteAudit(ctx, func(ev *callvault.AuditEvent) {
				ev.TargetType, ev.TargetID = "user", u.Login
				ev.Details = map[string]string{"name": trimTo(name, 100), "scopes": scopes, "expires": t.ExpiresAt.UTC().Format(time.RFC3339)}
			})
			if err := dep.tokens.CreateToken(ctx, t); err != nil {
				return userError(err)
			}
			fmt.Fprintf(e.stdout, "created token %d for %s (%s), expiring %s:\n\n    %s\n\nIt is shown only now. Send it as: Authorization: Bearer <token>\n",
				t.ID, u.Login, scopes, t.ExpiresAt.In(callvault.London).Format("2 Jan 2006 15:04"), tok)
			return nil
		},
	})
}

func tokenListCmd(e *env) *ffcli.Command {
	var login string
	return e.command(spec{
		name: "token list", usage: "callvault token list --user LOGIN [flags]", short: "List a user's API tokens", action: "token.list", reads: true,
		flags: func(fs *flag.FlagSet) { fs.StringVar(&login, "user", "", "the account (required)") },
		run: func(ctx context.Context, dep *deployment, args []string) error {
			u, err := dep.users.FindUserByLogin(ctx, strings.ToLower(login))
			if err != nil {
				return userError(err)
			}
			list, err := dep.tokens.FindTokens(ctx, u.ID)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tEXPIRES\tSTATE")
			for _, t := range list {
				state := "active"
				if !t.RevokedAt.IsZero() {
					state = "revoked"
				} else if !time.Now().Before(t.ExpiresAt) {
					state = "expired"
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", t.ID, t.Name, strings.Join(t.Scopes, ","), t.ExpiresAt.Format("2006-01-02"), state)
			}
			return tw.Flush()
		},
	})
}

func tokenRevokeCmd(e *env) *ffcli.Command {
	return e.command(spec{
		name: "token revoke", usage: "callvault token revoke [flags] ID", short: "Revoke an API token at once",
		args: "one token id", minArgs: 1, maxArgs: 1, action: "token.revoke",
		run: func(ctx context.Context, dep *deployment, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("%q is not a token id", args[0])
			}
			callvault.NoteAudit(ctx, func(ev *callvault.AuditEvent) { ev.TargetType, ev.TargetID = "api_token", args[0] })
			if err := dep.tokens.RevokeToken(ctx, id); err != nil {
				return userError(err)
			}
			fmt.Fprintf(e.stdout, "revoked token %d\n", id)
			return nil
		},
	})
}
