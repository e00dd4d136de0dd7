package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/archive"
	"github.com/callvault/callvault/audit"
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
	grants     callvault.GrantService
	tokens     callvault.TokenService
	holds      *sqldb.HoldService
	retention  *sqldb.RetentionService
	purges     *sqldb.PurgeStore
	mfa        callvault.MFAService
	blobs      callvault.BlobStore
	vault      *vault.Vault
	archive    *archive.Archive
	audit      *sqldb.AuditStore
	log        *audit.Log // the one writer of audit entries outside transactions
	signer     *audit.Signer
	kekCreated bool

	checkpointFile string   // default place for signed checkpoints
	dataDir        string   // --data
	keyringDir     string   // DATA/keys
	kekPath        string   // the key-encryption key file
	storagePaths   []string // folders whose free space matters: data, blobs, database
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
		grants:     sqldb.NewGrantService(db),
		tokens:     sqldb.NewTokenService(db),
		holds:      sqldb.NewHoldService(db),
		retention:  sqldb.NewRetentionService(db),
		purges:     sqldb.NewPurgeStore(db),
		mfa:        sqldb.NewUserService(db),
		blobs:      blobs,
		vault:      v,
		kekCreated: created,
		dataDir:    d.data,
		keyringDir: filepath.Join(d.data, "keys"),
		kekPath:    kekPath,
	}
	dep.storagePaths = []string{d.data, dir}
	if p, ok := strings.CutPrefix(dbURL, "sqlite:"); ok {
		dep.storagePaths = append(dep.storagePaths, filepath.Dir(p))
	}
	dep.archive = &archive.Archive{Recordings: dep.recordings, Academies: dep.academies, Blobs: blobs, Vault: v, Epochs: v, Logger: e.logger}
	dep.audit = sqldb.NewAuditStore(db)
	dep.log = audit.NewLog(dep.audit, audit.LogOptions{Logger: e.logger})
	dep.checkpointFile = filepath.Join(d.data, "audit-checkpoints.jsonl")
	signer, created, err := audit.LoadOrCreateSigner(filepath.Join(d.data, "audit-signing.key"))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("audit signing key: %w", err)
	}
	if created {
		e.logger.Warn("created the audit signing key; keep a copy of its public key (callvault audit pubkey) apart from this server")
	}
	dep.signer = signer
	return dep, nil
}

// Close flushes the audit log, then closes the database.
func (dep *deployment) Close() error {
	lerr := dep.log.Close()
	if err := dep.db.Close(); err != nil {
		return err
	}
	return lerr
}

// audited runs fn as one audited action of the system: the entry is written
// inside fn's first database write, or after fn if it wrote nothing (with
// outcome failed if fn failed). A command whose entry cannot be written
// fails.
func (dep *deployment) audited(ctx context.Context, e callvault.AuditEvent, fn func(ctx context.Context) error) error {
	if e.ActorKind == "" {
		e.SetActor(callvault.ActorFromContext(ctx))
	}
	p := callvault.NewPendingAudit(e)
	err := fn(callvault.WithPendingAudit(ctx, p))
	cerr := p.Commit(func(ev *callvault.AuditEvent) error {
		if ev.Outcome == "" {
			ev.Outcome = callvault.OutcomeAllowed
			if err != nil {
				ev.Outcome = callvault.OutcomeFailed
				ev.Reason = trimTo(callvault.ErrorMessage(err), 300)
			}
		}
		return dep.log.Record(ctx, ev)
	})
	if err != nil {
		return err
	}
	return cerr
}

// system is the context for command-line work: the system actor, named
// after the operating-system user running the command.
func system(ctx context.Context) context.Context {
	name := "cli"
	if u, err := user.Current(); err == nil {
		name = "cli:" + u.Username
	}
	return callvault.NewContextWithActor(ctx, &callvault.Actor{System: true, Name: name})
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
	err = dep.audited(ctx, callvault.AuditEvent{Action: "user.create", TargetType: "user", TargetID: "admin",
		Details: map[string]string{"role": callvault.RoleAdmin, "why": "first start"}},
		func(ctx context.Context) error { return dep.users.CreateUser(ctx, u) })
	if err != nil {
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

	// action is the audit action the command is recorded under; "" for
	// commands that touch no recordings, accounts or settings, or that
	// audit each item themselves (import). A command that reads is recorded
	// before it prints anything (reads); one that changes is recorded
	// together with its change.
	action string
	reads  bool
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
			ctx = system(ctx)
			if s.action == "" {
				return s.run(ctx, dep, args)
			}
			ev := callvault.AuditEvent{Action: s.action, Details: map[string]string{"args": trimTo(strings.Join(args, " "), 300)}}
			if s.reads {
				ev.SetActor(callvault.ActorFromContext(ctx))
				ev.Outcome = callvault.OutcomeAllowed
				if err := dep.log.Record(ctx, &ev); err != nil {
					return userError(err)
				}
				return s.run(ctx, dep, args)
			}
			return dep.audited(ctx, ev, func(ctx context.Context) error { return s.run(ctx, dep, args) })
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
