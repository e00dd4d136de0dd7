package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/secret"
)

func userCmd(e *env) *ffcli.Command {
	return group("user", "callvault user <add|list|edit|disable|reset-mfa> [flags]", "Manage accounts",
		userAddCmd(e), userListCmd(e), userEditCmd(e), userDisableCmd(e), userResetMFACmd(e))
}

func userAddCmd(e *env) *ffcli.Command {
	var role, academies, name, email string
	return e.command(spec{
		name: "user add", usage: "callvault user add --role ROLE [flags] LOGIN", short: "Create an account and print its one-time password",
		args: "one login name", minArgs: 1, maxArgs: 1, action: "user.create",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&role, "role", "", "role: "+strings.Join(callvault.Roles, ", "))
			fs.StringVar(&academies, "academy", "", "comma-separated academy short names (the scope of a principal or listener)")
			fs.StringVar(&name, "name", "", "full name")
			fs.StringVar(&email, "email", "", "e-mail address")
		},
		run: func(ctx context.Context, dep *deployment, args []string) error {
			if !callvault.ValidRole(role) {
				return fmt.Errorf("--role must be one of %s", strings.Join(callvault.Roles, ", "))
			}
			u := &callvault.User{Login: strings.ToLower(args[0]), Name: name, Email: email, Role: role, MustChangePassword: true}
			for _, slug := range splitList(academies) {
				a, err := dep.academies.FindAcademyBySlug(ctx, slug)
				if err != nil {
					return fmt.Errorf("academy %q: %w", slug, userError(err))
				}
				u.AcademyIDs = append(u.AcademyIDs, a.ID)
			}
			if u.Role == callvault.RolePrincipal && len(u.AcademyIDs) == 0 {
				return fmt.Errorf("a principal needs --academy")
			}
			pw := secret.Password()
			var err error
			if u.PasswordHash, err = secret.HashPassword(pw); err != nil {
				return err
			}
			if err := dep.users.CreateUser(ctx, u); err != nil {
				return userError(err)
			}
			fmt.Fprintf(e.stdout, "created %s (%s) with the one-time password\n\n    %s\n\nIt is shown only now; the first sign-in must replace it.\n", u.Login, u.Role, pw)
			return nil
		},
	})
}

func userListCmd(e *env) *ffcli.Command {
	return e.command(spec{
		name: "user list", usage: "callvault user list [flags]", short: "List accounts", action: "user.list", reads: true,
		run: func(ctx context.Context, dep *deployment, args []string) error {
			users, err := dep.users.FindUsers(ctx)
			if err != nil {
				return err
			}
			names, err := academyNames(ctx, dep)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "LOGIN\tROLE\tACADEMIES\tNAME\tSTATE")
			for _, u := range users {
				var scope []string
				for _, id := range u.AcademyIDs {
					scope = append(scope, names[id])
				}
				state := "active"
				if u.Disabled {
					state = "disabled"
				} else if u.MustChangePassword {
					state = "one-time password"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Login, u.Role, strings.Join(scope, ","), u.Name, state)
			}
			return tw.Flush()
		},
	})
}

func userDisableCmd(e *env) *ffcli.Command {
	return e.command(spec{
		name: "user disable", usage: "callvault user disable [flags] LOGIN", short: "Disable an account and end its sessions",
		args: "one login name", minArgs: 1, maxArgs: 1, action: "user.disable",
		run: func(ctx context.Context, dep *deployment, args []string) error {
			u, err := dep.users.FindUserByLogin(ctx, strings.ToLower(args[0]))
			if err != nil {
				return userError(err)
			}
			if err := dep.users.DisableUser(ctx, u.ID); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "disabled %s; their sessions have ended\n", u.Login)
			return nil
		},
	})
}

func academyNames(ctx context.Context, dep *deployment) (map[int64]string, error) {
	list, err := dep.academies.FindAcademies(ctx)
	if err != nil {
		return nil, err
	}
	m := map[int64]string{}
	for _, a := range list {
		m[a.ID] = a.Slug
	}
	return m, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
