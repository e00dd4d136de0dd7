package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/archive"
	"github.com/callvault/callvault/blob"
	"github.com/callvault/callvault/secret"
	"github.com/callvault/callvault/sqldb"
	"github.com/callvault/callvault/vault"
)

// deployFlags locate a deployment. Every subcommand that works on one takes
// them, so the command line can work beside a running server.
type deployFlags struct {
	data string
	db   string
	blob string
	kek  string
}

func (d *deployFlags) register(fs *flag.FlagSet) {
	fs.String("config", "", "configuration file: one \"flag value\" per line; CALLVAULT_* environment variables override it, flags override both")
	fs.StringVar(&d.data, "data", "./callvault-data", "data directory (created with mode 0700)")
	fs.StringVar(&d.db, "db", "", "database: sqlite:PATH (default sqlite:DATA/callvault.db)")
	fs.StringVar(&d.blob, "blob", "", "blob store for encrypted audio: file://PATH (default file://DATA/blobs)")
	fs.StringVar(&d.kek, "kek", "", "key-encryption key file, created with mode 0600 on first start (default DATA/kek)")
}

// ffOptions: config file, then CALLVAULT_* environment, then flags.
func ffOptions() []ff.Option {
	return []ff.Option{
		ff.WithEnvVarPrefix("CALLVAULT"),
		ff.WithConfigFileFlag("config"),
		ff.WithConfigFileParser(ff.PlainParser),
		ff.WithAllowMissingConfigFile(false),
		ff.WithIgnoreUndefined(true),
	}
}

// deployment is an opened deployment: database, blobs, keys, archive.
type deployment struct {
	db         *sqldb.DB
	recordings callvault.RecordingService
	academies  callvault.AcademyService
	users      callvault.UserService
	sessions   *sqldb.UserService // for housekeeping beyond the interface
	sources    callvault.SourceService
	blobs      callvault.BlobStore
	vault      *vault.Vault
	archive    *archive.Archive
	kekCreated bool
}

func (d *deployFlags) open(ctx context.Context, e *env) (*deployment, error) {
	if err := os.MkdirAll(d.data, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	dbURL := d.db
	if dbURL == "" {
		dbURL = "sqlite:" + filepath.Join(d.data, "callvault.db")
	}
	blobURL := d.blob
	if blobURL == "" {
		blobURL = "file://" + filepath.Join(d.data, "blobs")
	}
	kekPath := d.kek
	if kekPath == "" {
		kekPath = filepath.Join(d.data, "kek")
	}

	kek, created, err := vault.LoadOrCreateKEK(kekPath)
	if err != nil {
		return nil, fmt.Errorf("key-encryption key: %w", err)
	}
	if created {
		e.logger.Warn("created a new key-encryption key; back it up apart from the data, without it no recording can be read", "path", kekPath)
	}
	v, err := vault.New(kek, filepath.Join(d.data, "keys"))
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	dir, ok := strings.CutPrefix(blobURL, "file://")
	if !ok {
		return nil, fmt.Errorf("--blob %q: only file:// blob stores are supported so far", blobURL)
	}
	blobs, err := blob.NewFileStore(dir)
	if err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	db, err := sqldb.Open(ctx, dbURL)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	dep := &deployment{
		db:         db,
		recordings: sqldb.NewRecordingService(db),
		academies:  sqldb.NewAcademyService(db),
		users:      sqldb.NewUserService(db),
		sessions:   sqldb.NewUserService(db),
		sources:    sqldb.NewSourceService(db),
		blobs:      blobs,
		vault:      v,
		kekCreated: created,
	}
	dep.archive = &archive.Archive{Recordings: dep.recordings, Academies: dep.academies, Blobs: blobs, Vault: v, Logger: e.logger}
	return dep, nil
}

func (dep *deployment) Close() error { return dep.db.Close() }

// system is the context for command-line work: the system actor.
func system(ctx context.Context) context.Context {
	return callvault.NewContextWithActor(ctx, callvault.SystemActor)
}

// ensureAdmin creates the first administrator when there are no users and
// prints its one-time password once, to stdout only (never to the log).
func (dep *deployment) ensureAdmin(ctx context.Context, e *env) error {
	ctx = system(ctx)
	users, err := dep.users.FindUsers(ctx)
	if err != nil || len(users) > 0 {
		return err
	}
	pw := secret.Password()
	hash, err := secret.HashPassword(pw)
	if err != nil {
		return err
	}
	u := &callvault.User{Login: "admin", Name: "Administrator", Role: callvault.RoleAdmin, PasswordHash: hash, MustChangePassword: true}
	if err := dep.users.CreateUser(ctx, u); err != nil {
		if callvault.ErrorCode(err) == callvault.ECONFLICT {
			return nil // another process made it first
		}
		return err
	}
	fmt.Fprintf(e.stdout, "\nFirst start: created the account admin with the one-time password\n\n    %s\n\nIt is shown only now. Sign in and choose a new password.\n\n", pw)
	return nil
}

// findOrCreateSource returns the source called name, creating it (without a
// usable token) for command-line ingest.
func (dep *deployment) findOrCreateSource(ctx context.Context, name, kind string) (*callvault.Source, error) {
	ctx = system(ctx)
	src, err := dep.sources.FindSourceByName(ctx, name)
	if err == nil {
		return src, nil
	} else if callvault.ErrorCode(err) != callvault.ENOTFOUND {
		return nil, err
	}
	src = &callvault.Source{Name: name, Kind: kind, TokenHash: secret.HashToken(secret.Token("cvi_"))}
	if err := dep.sources.CreateSource(ctx, src); err != nil {
		if callvault.ErrorCode(err) == callvault.ECONFLICT {
			return dep.sources.FindSourceByName(ctx, name)
		}
		return nil, err
	}
	return src, nil
}

var errUsage = errors.New("wrong usage; see --help")

// spec describes a subcommand that works on a deployment: its flags are the
// deployment flags plus its own, and it runs as the system actor with the
// deployment open.
type spec struct {
	name, usage, short, long string
	args                     string // what the arguments are, for errors: "" means none allowed
	minArgs, maxArgs         int    // maxArgs < 0: no limit
	flags                    func(fs *flag.FlagSet)
	run                      func(ctx context.Context, dep *deployment, args []string) error
}

func (e *env) command(s spec) *ffcli.Command {
	var d deployFlags
	fs := flag.NewFlagSet(s.name, flag.ContinueOnError)
	d.register(fs)
	if s.flags != nil {
		s.flags(fs)
	}
	name := s.name[strings.LastIndex(s.name, " ")+1:]
	return &ffcli.Command{
		Name:       name,
		ShortUsage: s.usage,
		ShortHelp:  s.short,
		LongHelp:   s.long,
		FlagSet:    fs,
		Options:    ffOptions(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) < s.minArgs || (s.maxArgs >= 0 && len(args) > s.maxArgs) {
				if s.args == "" {
					return fmt.Errorf("%s takes no arguments: %w", s.name, errUsage)
				}
				return fmt.Errorf("%s needs %s: %w", s.name, s.args, errUsage)
			}
			dep, err := d.open(ctx, e)
			if err != nil {
				return err
			}
			defer dep.Close()
			return s.run(system(ctx), dep, args)
		},
	}
}

// group is a command with subcommands only.
func group(name, usage, short string, subs ...*ffcli.Command) *ffcli.Command {
	c := &ffcli.Command{
		Name:        name,
		ShortUsage:  usage,
		ShortHelp:   short,
		FlagSet:     flag.NewFlagSet(name, flag.ContinueOnError),
		Subcommands: subs,
	}
	c.Exec = usageOnly(c)
	return c
}

// usageOnly is the Exec of a command that needs a subcommand: it prints the
// usage and fails.
func usageOnly(c *ffcli.Command) func(context.Context, []string) error {
	return func(_ context.Context, args []string) error {
		fmt.Fprintln(c.FlagSet.Output(), ffcli.DefaultUsageFunc(c))
		if len(args) > 0 {
			return fmt.Errorf("unknown subcommand %q", args[0])
		}
		return errUsage
	}
}

// userError turns a domain error into a message for the command line.
func userError(err error) error {
	if err == nil {
		return nil
	}
	return errors.New(callvault.ErrorMessage(err))
}
