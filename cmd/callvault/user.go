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
	return &ffcli.Command{
		Name:        "user",
		ShortUsage:  "callvault user <add|list|disable> [flags]",
		ShortHelp:   "Manage accounts",
		FlagSet:     flag.NewFlagSet("user", flag.ContinueOnError),
		Subcommands: []*ffcli.Command{userAddCmd(e), userListCmd(e), userDisableCmd(e)},
		Exec:        func(context.Context, []string) error { return flag.ErrHelp },
	}
}

func userAddCmd(e *env) *ffcli.Command {
	var d deployFlags
	fs := flag.NewFlagSet("user add", flag.ContinueOnError)
	d.register(fs)
	role := fs.String("role", "", "role: "+strings.Join(callvault.Roles, ", "))
	academies := fs.String("academy", "", "comma-separated academy short names (the scope of a principal or listener)")
	name := fs.String("name", "", "full name")
	email := fs.String("email", "", "e-mail address")
	return &ffcli.Command{
		Name:       "add",
		ShortUsage: "callvault user add --role ROLE [flags] LOGIN",
		ShortHelp:  "Create an account and print its one-time password",
		FlagSet:    fs,
		Options:    ffOptions(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("give exactly one login name: %w", errUsage)
			}
			if !callvault.ValidRole(*role) {
				return fmt.Errorf("--role must be one of %s", strings.Join(callvault.Roles, ", "))
			}
			dep, err := d.open(ctx, e)
			if err != nil {
				return err
			}
			defer dep.Close()
			ctx = system(ctx)
			u := &callvault.User{Login: strings.ToLower(args[0]), Name: *name, Email: *email, Role: *role, MustChangePassword: true}
			for _, slug := range splitList(*academies) {
				a, err := dep.academies.FindAcademyBySlug(ctx, slug)
				if err != nil {
					return fmt.Errorf("academy %q: %s", slug, callvault.ErrorMessage(err))
				}
				u.AcademyIDs = append(u.AcademyIDs, a.ID)
			}
			if u.Role == callvault.RolePrincipal && len(u.AcademyIDs) == 0 {
				return fmt.Errorf("a principal needs --academy")
			}
			pw := secret.Password()
			if u.PasswordHash, err = secret.HashPassword(pw); err != nil {
				return err
			}
			if err := dep.users.CreateUser(ctx, u); err != nil {
				return fmt.Errorf("%s", callvault.ErrorMessage(err))
			}
			fmt.Fprintf(e.stdout, "created %s (%s) with the one-time password\n\n    %s\n\nIt is shown only now; the first sign-in must replace it.\n", u.Login, u.Role, pw)
			return nil
		},
	}
}

func userListCmd(e *env) *ffcli.Command {
	var d deployFlags
	fs := flag.NewFlagSet("user list", flag.ContinueOnError)
	d.register(fs)
	return &ffcli.Command{
		Name:       "list",
		ShortUsage: "callvault user list [flags]",
		ShortHelp:  "List accounts",
		FlagSet:    fs,
		Options:    ffOptions(),
		Exec: func(ctx context.Context, args []string) error {
			dep, err := d.open(ctx, e)
			if err != nil {
				return err
			}
			defer dep.Close()
			ctx = system(ctx)
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
	}
}

func userDisableCmd(e *env) *ffcli.Command {
	var d deployFlags
	fs := flag.NewFlagSet("user disable", flag.ContinueOnError)
	d.register(fs)
	return &ffcli.Command{
		Name:       "disable",
		ShortUsage: "callvault user disable [flags] LOGIN",
		ShortHelp:  "Disable an account and end its sessions",
		FlagSet:    fs,
		Options:    ffOptions(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("give exactly one login name: %w", errUsage)
			}
			dep, err := d.open(ctx, e)
			if err != nil {
				return err
			}
			defer dep.Close()
			ctx = system(ctx)
			u, err := dep.users.FindUserByLogin(ctx, strings.ToLower(args[0]))
			if err != nil {
				return fmt.Errorf("%s", callvault.ErrorMessage(err))
			}
			if err := dep.users.DisableUser(ctx, u.ID); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "disabled %s; their sessions have ended\n", u.Login)
			return nil
		},
	}
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
