package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/archive"
	"github.com/callvault/callvault/diskspace"
	"github.com/callvault/callvault/mail"
	"github.com/callvault/callvault/notify"
	"github.com/callvault/callvault/oidc"
	"github.com/callvault/callvault/recorder"
	"github.com/callvault/callvault/retention"
	"github.com/callvault/callvault/web"
)

type serveFlags struct {
	deployFlags
	cp                  checkpointFlags
	checkpointEvery     time.Duration
	chaseAfter          time.Duration
	auditRetentionYears int
	http                string
	demo                bool
	maxUpload           int64
	cookieSecure        string
	sweepEvery          time.Duration
	retentionEvery      time.Duration
	diskWarn, diskFloor diskspace.Threshold
	sip                 sipFlags
	shutdownGrace       time.Duration
	// OpenID Connect
	oidcIssuer, oidcClientID, oidcClientSecret, oidcName, publicURL string
	oidcTrustEmail                                                  bool
	// End OpenID Connect
}

func serveCmd(e *env) *ffcli.Command {
	var f serveFlags
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	f.register(fs)
	fs.StringVar(&f.http, "http", "127.0.0.1:8080", "address for the web UI and API")
	fs.BoolVar(&f.demo, "demo", false, "seed two academies, one user per role and a few hundred recordings (first start only)")
	fs.Int64Var(&f.maxUpload, "max-upload", 512<<20, "largest recording accepted, in bytes")
	fs.StringVar(&f.cookieSecure, "cookie-secure", "auto", "mark session cookies Secure: auto (unless --http is loopback), true or false")
	fs.DurationVar(&f.sweepEvery, "sweep-every", time.Hour, "how often to reconcile blobs and rows (orphans older than this are removed)")
	f.sip.register(fs)
	fs.DurationVar(&f.retentionEvery, "retention-every", 24*time.Hour, "how often to delete recordings past their retention date (callvault retention run); at least 1h")
	f.diskWarn, _ = diskspace.ParseThreshold("10%")
	f.diskFloor, _ = diskspace.ParseThreshold("2%")
	fs.Var(&f.diskWarn, "disk-warn", "alert admins (log, metric, e-mail) when free space on the data, blob or database filesystem falls to this: a percentage (10%) or a size (20GB)")
	fs.Var(&f.diskFloor, "disk-floor", "refuse new recordings (503; sources keep and retry them) when free space falls to this; nothing is ever deleted to make room")
	fs.DurationVar(&f.shutdownGrace, "shutdown-grace", 30*time.Second, "how long to let requests finish on SIGINT/SIGTERM")
	f.cp.register(fs)
	// OpenID Connect
	fs.StringVar(&f.oidcIssuer, "oidc-issuer", "", "offer sign-in with this OpenID provider (e.g. https://accounts.google.com or https://login.microsoftonline.com/TENANT/v2.0); accounts are matched by e-mail, never created")
	fs.StringVar(&f.oidcClientID, "oidc-client-id", "", "client ID registered with the OpenID provider")
	fs.StringVar(&f.oidcClientSecret, "oidc-client-secret", "", "client secret for the OpenID provider (prefer CALLVAULT_OIDC_CLIENT_SECRET or the config file: flags show in ps)")
	fs.BoolVar(&f.oidcTrustEmail, "oidc-trust-email", false, "accept the provider's e-mail without email_verified: for Microsoft Entra, and only with your tenant's own issuer (https://login.microsoftonline.com/TENANT-ID/v2.0), never /common or /organizations")
	fs.StringVar(&f.oidcName, "oidc-name", "", "what the sign-in page calls the provider, e.g. \"Google Workspace\"")
	fs.StringVar(&f.publicURL, "public-url", "", "the address people use to reach callvault, e.g. https://callvault.example.org (default http:// plus --http): its host is the passkeys relying party, and the OpenID redirect URI is this plus /auth/oidc/callback")
	// End OpenID Connect
	fs.DurationVar(&f.chaseAfter, "chase-after", 48*time.Hour, "e-mail the CEO and principals about a listen request still undecided after this long, and again as often (needs --smtp)")
	fs.DurationVar(&f.checkpointEvery, "checkpoint-every", time.Hour, "how often to sign and export an audit checkpoint (when the trail has grown)")
	fs.IntVar(&f.auditRetentionYears, "audit-retention-years", callvault.DefaultAuditRetentionYears, "how long audit entries are kept, in years")
	return &ffcli.Command{
		Name:       "serve",
		ShortUsage: "callvault serve [flags]",
		ShortHelp:  "Run the server",
		LongHelp:   "Run the web UI, the API and the ingest endpoint.\nWith no flags it keeps everything in ./callvault-data: SQLite, encrypted audio and the key file.",
		FlagSet:    fs,
		Options:    ffOptions(),
		Exec:       func(ctx context.Context, args []string) error { return serve(ctx, e, &f) },
	}
}

func serve(ctx context.Context, e *env, f *serveFlags) error {
	if f.auditRetentionYears < 1 {
		return fmt.Errorf("--audit-retention-years must be at least 1")
	}
	if f.retentionEvery < time.Hour {
		return fmt.Errorf("--retention-every must be at least an hour")
	}
	if f.checkpointEvery < time.Minute {
		return fmt.Errorf("--checkpoint-every must be at least a minute")
	}
	if f.maxUpload < 1<<10 {
		return fmt.Errorf("--max-upload must be at least 1024 bytes")
	}
	dep, err := f.open(ctx, e)
	if err != nil {
		return err
	}
	defer dep.Close()
	dep.archive.MaxSize = f.maxUpload
	space := &diskspace.Monitor{Paths: dep.storagePaths, Warn: f.diskWarn, Floor: f.diskFloor, Logger: e.logger}
	if err := space.Validate(); err != nil {
		return fmt.Errorf("--disk-warn/--disk-floor: %w", err)
	}
	space.Check(ctx)
	dep.archive.Space = space
	if err := dep.ensureAdmin(ctx, e); err != nil {
		return err
	}

	secure, err := cookieSecure(f.cookieSecure, f.http)
	if err != nil {
		return err
	}
	srv := &web.Server{
		Archive:       dep.archive,
		Recordings:    dep.recordings,
		Academies:     dep.academies,
		Users:         dep.users,
		Sources:       dep.sources,
		Grants:        dep.grants,
		Tokens:        dep.tokens,
		Holds:         dep.holds,
		Retention:     dep.retention,
		Space:         space,
		MFA:           dep.mfa,
		Secrets:       dep.vault,
		Auditor:       dep.log,
		Audit:         dep.audit,
		Pingers:       []callvault.Pinger{dep.db},
		Logger:        e.logger,
		SecureCookies: secure,
	}
	// OpenID Connect
	if srv.OIDC, err = f.openIDProvider(ctx); err != nil {
		return err
	}
	if srv.OIDC != nil {
		srv.OIDCName = f.oidcName
		if f.oidcTrustEmail && (strings.Contains(f.oidcIssuer, "/common/") || strings.Contains(f.oidcIssuer, "/organizations/") || strings.Contains(f.oidcIssuer, "/consumers/")) {
			return fmt.Errorf("--oidc-trust-email needs your own tenant's issuer, not a multi-tenant one")
		}
		srv.OIDCTrustEmail = f.oidcTrustEmail
		e.logger.Info("OpenID Connect sign-in enabled", "issuer", f.oidcIssuer, "client_id", f.oidcClientID, "name", f.oidcName)
	}
	// End OpenID Connect
	// Passkeys: the WebAuthn relying party is the host of --public-url,
	// else of --http (a loopback address counts as "localhost").
	srv.Passkeys, srv.PublicURL = dep.sessions, f.publicURL
	if srv.PublicURL == "" {
		srv.PublicURL = "http://" + f.http
	}
	if _, err := web.NewRelyingParty(srv.PublicURL); err != nil {
		e.logger.Warn("passkeys are unavailable; codes still work", "err", err)
	}
	// End Passkeys
	var sender *mail.Sender
	if f.cp.smtp != "" {
		sender = &mail.Sender{Addr: f.cp.smtp, From: f.cp.mailFrom}
		srv.Mailer = sender
	}
	if err := srv.Init(); err != nil {
		return err
	}
	dep.archive.Observer = srv.Metrics

	ln, err := net.Listen("tcp", f.http)
	if err != nil {
		return err
	}
	e.logger.Info("callvault serving", "url", "http://"+ln.Addr().String(), "version", callvault.Version, "data", f.data)
	fmt.Fprintf(e.stdout, "callvault is running at http://%s (Ctrl-C to stop)\n", ln.Addr())

	if f.demo {
		go func() {
			if err := seedDemo(ctx, e, dep); err != nil {
				e.logger.Error("demo seeding failed", "err", err)
			}
		}()
	}
	go sweepLoop(ctx, e, dep, f.sweepEvery, f.auditRetentionYears)
	go retentionLoop(ctx, e, dep, f.retentionEvery)
	space.Alert = func(ctx context.Context, s diskspace.Status) { spaceAlert(ctx, e, dep, sender, s) }
	go space.Run(ctx, time.Minute)
	cp, err := f.cp.checkpointer(e, dep)
	if err != nil {
		return err
	}
	go cp.Run(ctx, f.checkpointEvery)
	if sender != nil {
		public := f.publicURL
		if public == "" {
			public = "http://" + ln.Addr().String()
		}
		chaser := &notify.Chaser{Grants: dep.grants, Users: dep.users, Mailer: sender, Now: time.Now,
			Logger: e.logger, After: f.chaseAfter, URL: public}
		go chaser.Run(ctx, time.Hour)
	}

	rec, err := f.sip.startRecorder(ctx, e, dep, space, func(a recorder.StoreAlert) { go storeAlert(ctx, e, dep, sender, a) })
	if err != nil {
		return err
	}
	if rec != nil {
		defer rec.Close()
		srv.Metrics.Registry.MustRegister(newSIPCollector(rec))
	}

	err = srv.Serve(ctx, ln, f.shutdownGrace)
	e.logger.Info("callvault stopped")
	return err
}

// sweepLoop reconciles blobs and rows at start and then periodically, and
// applies the audit trail's own retention.
func sweepLoop(ctx context.Context, e *env, dep *deployment, every time.Duration, auditYears int) {
	t := time.NewTicker(every)
	defer t.Stop()
	ctx = callvault.NewContextWithActor(ctx, &callvault.Actor{System: true, Name: "sweeper"})
	for {
		var rep archive.SweepReport
		err := dep.audited(ctx, callvault.AuditEvent{Action: "storage.sweep"}, func(ctx context.Context) (err error) {
			rep, err = dep.archive.Sweep(ctx, every)
			callvault.NoteAudit(ctx, func(ev *callvault.AuditEvent) {
				ev.Details = map[string]string{"temp_removed": strconv.Itoa(rep.TempRemoved),
					"orphans_removed": strconv.Itoa(rep.OrphansRemoved), "missing": strconv.Itoa(rep.Missing)}
			})
			return err
		})
		if err != nil {
			e.logger.Error("sweep failed", "err", err)
		} else if rep != (archive.SweepReport{}) {
			e.logger.Warn("sweep reconciled storage", "temp_removed", rep.TempRemoved, "orphans_removed", rep.OrphansRemoved, "missing", rep.Missing)
		}
		before := time.Now().AddDate(-auditYears, 0, 0)
		err = dep.audited(ctx, callvault.AuditEvent{Action: "audit.prune"}, func(ctx context.Context) error {
			n, err := dep.audit.PruneAudit(ctx, before)
			callvault.NoteAudit(ctx, func(ev *callvault.AuditEvent) {
				ev.Details = map[string]string{"before": before.UTC().Format(time.RFC3339), "pruned": strconv.FormatInt(n, 10)}
			})
			return err
		})
		if err != nil {
			e.logger.Error("audit retention failed", "err", err)
		}
		if n, err := dep.sessions.DeleteExpiredSessions(ctx); err != nil {
			e.logger.Error("deleting expired sessions failed", "err", err)
		} else if n > 0 {
			e.logger.Info("deleted expired sessions", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// retentionLoop purges expired recordings a minute after start and then
// every interval, as one audited action per run.
func retentionLoop(ctx context.Context, e *env, dep *deployment, every time.Duration) {
	ctx = callvault.NewContextWithActor(ctx, &callvault.Actor{System: true, Name: "retention"})
	purger := dep.purger(e)
	wait := time.Minute
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = every
		err := dep.audited(ctx, callvault.AuditEvent{Action: "retention.run"}, func(ctx context.Context) error {
			rep, err := purger.Run(ctx, retention.Options{})
			noteRun(ctx, rep)
			if rep.Purged > 0 || rep.Resumed > 0 || len(rep.Destroyed) > 0 {
				e.logger.Info("retention: "+rep.Summary(), "run", rep.RunID)
			}
			return err
		})
		if err != nil {
			e.logger.Error("retention run failed; the next run resumes it", "err", err)
		}
	}
}

// spaceAlert logs a change of free-space level in the audit trail and
// e-mails the administrators who have an address.
func spaceAlert(ctx context.Context, e *env, dep *deployment, sender *mail.Sender, s diskspace.Status) {
	ctx = callvault.NewContextWithActor(ctx, &callvault.Actor{System: true, Name: "diskspace"})
	ev := &callvault.AuditEvent{Action: "storage.space", TargetType: "filesystem", TargetID: s.Path, Outcome: callvault.OutcomeAllowed,
		Details: map[string]string{"level": string(s.Level), "free_bytes": strconv.FormatUint(s.Free, 10),
			"total_bytes": strconv.FormatUint(s.Total, 10), "floor_bytes": strconv.FormatUint(s.Floor, 10)}}
	ev.SetActor(callvault.ActorFromContext(ctx))
	if err := dep.log.Record(ctx, ev); err != nil {
		e.logger.Error("could not record the free-space alert", "err", err)
	}
	subject := "callvault: storage is " + string(s.Level)
	var body string
	switch s.Level {
	case diskspace.LevelOK:
		body = fmt.Sprintf("Free space on %s is back above the warning level: %s free of %s.\n", s.Path, humanBytes(s.Free), humanBytes(s.Total))
	case diskspace.LevelLow:
		body = fmt.Sprintf("Free space on %s is low: %s free of %s. Below %s callvault refuses new recordings (the phone system keeps and retries them).\nAdd storage or move old backups; callvault never deletes recordings to make room.\n",
			s.Path, humanBytes(s.Free), humanBytes(s.Total), humanBytes(s.Floor))
	case diskspace.LevelCritical:
		body = fmt.Sprintf("Free space on %s is %s, at or below the floor of %s: callvault is REFUSING NEW RECORDINGS.\nAdd storage now. callvault never deletes recordings to make room.\n", s.Path, humanBytes(s.Free), humanBytes(s.Floor))
	default:
		body = fmt.Sprintf("callvault cannot measure free space on %s (%s): it refuses new recordings until it can.\n", s.Path, s.Err)
	}
	mailAdmins(ctx, e, dep, sender, "free-space alert", subject, body)
}

// mailAdmins e-mails every enabled admin who has an address (what is
// the alert's name in the log); without --smtp it does nothing.
func mailAdmins(ctx context.Context, e *env, dep *deployment, sender *mail.Sender, what, subject, body string) {
	if sender == nil {
		return
	}
	users, err := dep.users.FindUsers(ctx)
	if err != nil {
		e.logger.Error(what+": cannot list admins", "err", err)
		return
	}
	var to []string
	for _, u := range users {
		if u.Role == callvault.RoleAdmin && !u.Disabled && u.Email != "" {
			to = append(to, u.Email)
		}
	}
	if len(to) == 0 {
		return
	}
	if err := sender.Send(ctx, to, subject, body); err != nil {
		e.logger.Error(what+": e-mail failed", "err", err)
	}
}

// storeAlert tells admins, and the audit trail when it can be written,
// that SIPREC recordings cannot be stored, and when they can again.
func storeAlert(ctx context.Context, e *env, dep *deployment, sender *mail.Sender, a recorder.StoreAlert) {
	ctx = callvault.NewContextWithActor(ctx, &callvault.Actor{System: true, Name: "recorder"})
	ev := &callvault.AuditEvent{Action: "recording.store_failing", TargetType: "source", TargetID: "siprec", Outcome: callvault.OutcomeAllowed,
		Details: map[string]string{"pending": strconv.Itoa(a.Pending)}}
	subject := "callvault: recordings cannot be stored"
	body := fmt.Sprintf("callvault cannot store the recordings of finished calls: %s\n\n%d recording(s) are waiting, safe in the spool on the server, and are retried every minute.\nCalls go on being recorded. Check the database and the storage (see the server's log).\n",
		callvault.ErrorMessage(a.Err), a.Pending)
	if !a.Failing {
		ev.Action = "recording.store_recovered"
		subject = "callvault: recordings are being stored again"
		body = fmt.Sprintf("callvault stores recordings again. %d recording(s) are still waiting in the spool.\n", a.Pending)
	} else {
		ev.Details["error"] = callvault.ErrorMessage(a.Err)
	}
	ev.SetActor(callvault.ActorFromContext(ctx))
	if err := dep.log.Record(ctx, ev); err != nil {
		e.logger.Error("could not record the storage alert in the audit trail", "err", err)
	}
	mailAdmins(ctx, e, dep, sender, "storage alert", subject, body)
}

func humanBytes(n uint64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}

func cookieSecure(mode, addr string) (bool, error) {
	switch strings.ToLower(mode) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	case "auto":
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return false, fmt.Errorf("--http %q: %w", addr, err)
		}
		ip := net.ParseIP(host)
		return !(host == "localhost" || (ip != nil && ip.IsLoopback())), nil
	}
	return false, fmt.Errorf("--cookie-secure must be auto, true or false")
}

// OpenID Connect

// openIDProvider discovers the configured OpenID provider; nil when none is
// configured. The client secret is never logged or put in an error.
func (f *serveFlags) openIDProvider(ctx context.Context) (*oidc.Provider, error) {
	if f.oidcIssuer == "" {
		if f.oidcClientID != "" || f.oidcClientSecret != "" {
			return nil, fmt.Errorf("--oidc-client-id and --oidc-client-secret need --oidc-issuer")
		}
		return nil, nil
	}
	if f.oidcClientID == "" {
		return nil, fmt.Errorf("--oidc-issuer needs --oidc-client-id")
	}
	redirect, err := oidcRedirectURL(f.publicURL)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	p, err := oidc.New(dctx, oidc.Config{Issuer: f.oidcIssuer, ClientID: f.oidcClientID, ClientSecret: f.oidcClientSecret, RedirectURL: redirect})
	if err != nil {
		return nil, fmt.Errorf("--oidc-issuer: %w", err)
	}
	return p, nil
}

// oidcRedirectURL is the callback under --public-url, which must be https
// (or http on loopback, for development).
func oidcRedirectURL(public string) (string, error) {
	if public == "" {
		return "", fmt.Errorf("--oidc-issuer needs --public-url (the address people use to reach callvault) for the redirect URI")
	}
	u, err := url.Parse(public)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("--public-url %q: want an address like https://callvault.example.org", public)
	}
	ip := net.ParseIP(u.Hostname())
	loopback := u.Hostname() == "localhost" || (ip != nil && ip.IsLoopback())
	if u.Scheme != "https" && !(u.Scheme == "http" && loopback) {
		return "", fmt.Errorf("--public-url %q: must be https (http only on loopback)", public)
	}
	return strings.TrimSuffix(u.String(), "/") + "/auth/oidc/callback", nil
}

// End OpenID Connect
