package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/callvault/callvault"
)

func userEditCmd(e *env) *ffcli.Command {
	var role, academies, name, email string
	var fs *flag.FlagSet
	return e.command(spec{
		name: "user edit", usage: "callvault user edit [--role ROLE] [--academy A,B] [--name N] [--email E] [flags] LOGIN",
		short: "Change an account's role, academies, name or e-mail (a new role or scope ends its sessions)",
		args:  "one login name", minArgs: 1, maxArgs: 1, action: "user.update",
		flags: func(f *flag.FlagSet) {
			fs = f
			f.StringVar(&role, "role", "", "new role: "+strings.Join(callvault.Roles, ", "))
			f.StringVar(&academies, "academy", "", "new comma-separated academy short names")
			f.StringVar(&name, "name", "", "new full name")
			f.StringVar(&email, "email", "", "new e-mail address")
		},
		run: func(ctx context.Context, dep *deployment, args []string) error {
			u, err := dep.users.FindUserByLogin(ctx, strings.ToLower(args[0]))
			if err != nil {
				return userError(err)
			}
			set := map[string]bool{}
			fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
			if set["role"] {
				if !callvault.ValidRole(role) {
					return fmt.Errorf("--role must be one of %s", strings.Join(callvault.Roles, ", "))
				}
				u.Role = role
			}
			if set["academy"] {
				u.AcademyIDs = nil
				for _, slug := range splitList(academies) {
					a, err := dep.academies.FindAcademyBySlug(ctx, slug)
					if err != nil {
						return fmt.Errorf("academy %q: %w", slug, userError(err))
					}
					u.AcademyIDs = append(u.AcademyIDs, a.ID)
				}
			}
			if set["name"] {
				u.Name = name
			}
			if set["email"] {
				u.Email = email
			}
			if u.Role == callvault.RolePrincipal && len(u.AcademyIDs) == 0 {
				return fmt.Errorf("a principal needs --academy")
			}
			callvault.NoteAudit(ctx, func(ev *callvault.AuditEvent) {
				ev.TargetType, ev.TargetID = "user", u.Login
				ev.Details = map[string]string{"role": u.Role}
			})
			if err := dep.users.UpdateUser(ctx, u); err != nil {
				return userError(err)
			}
			fmt.Fprintf(e.stdout, "updated %s (%s)\n", u.Login, u.Role)
			return nil
		},
	})
}

func userResetMFACmd(e *env) *ffcli.Command {
	return e.command(spec{
		name: "user reset-mfa", usage: "callvault user reset-mfa [flags] LOGIN",
		short: "Remove an account's second factor (a lost phone); it must enrol again at the next sign-in",
		args:  "one login name", minArgs: 1, maxArgs: 1, action: "user.reset_mfa",
		run: func(ctx context.Context, dep *deployment, args []string) error {
			u, err := dep.users.FindUserByLogin(ctx, strings.ToLower(args[0]))
			if err != nil {
				return userError(err)
			}
			callvault.NoteAudit(ctx, func(ev *callvault.AuditEvent) { ev.TargetType, ev.TargetID = "user", u.Login })
			if err := dep.mfa.ResetMFA(ctx, u.ID); err != nil {
				return userError(err)
			}
			fmt.Fprintf(e.stdout, "removed the second factor of %s and ended their sessions; they set up a new one at the next sign-in\n", u.Login)
			return nil
		},
	})
}
