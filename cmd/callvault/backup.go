package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/audit"
	"github.com/callvault/callvault/backup"
	"github.com/callvault/callvault/blob"
	"github.com/callvault/callvault/retention"
)

func backupCmd(e *env) *ffcli.Command {
	var includeKeys bool
	return e.command(spec{
		name: "backup", usage: "callvault backup [--include-keys] DIR [flags]",
		short: "Copy the database, the encrypted recordings and the audit checkpoints to DIR, while the server runs",
		long: "Writes a consistent snapshot to DIR (which must not exist or be empty): the database, the\n" +
			"recordings still encrypted, the signed audit checkpoints and manifest.json (size and SHA-256 of\n" +
			"every file, written last). It never contains the key-encryption key or the epoch keys unless\n" +
			"--include-keys: keep such a key backup apart, offline, one copy, replaced after each retention\n" +
			"run (docs/BACKUP.md explains why).",
		args: "the backup folder", minArgs: 1, maxArgs: 1, action: "backup.create", reads: true,
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&includeKeys, "include-keys", false, "also copy the key-encryption key and the epoch keys (a key backup: keep it apart)")
		},
		run: func(ctx context.Context, dep *deployment, args []string) error {
			start := time.Now()
			m, err := backup.Backup(ctx, backup.Options{DB: dep.db, Blobs: dep.blobs, CheckpointFile: dep.checkpointFile,
				AuditPublicKey: audit.FormatPublicKey(dep.signer.PublicKey()), IncludeKeys: includeKeys,
				KeyringDir: dep.keyringDir, KEKPath: dep.kekPath, Dir: args[0]})
			if err != nil {
				return commandError(err)
			}
			fmt.Fprintf(e.stdout, "backed up %d recordings (%d blobs), audit trail to seq %d, into %s in %v\n",
				m.Recordings, m.Blobs, m.AuditSeq, args[0], time.Since(start).Round(time.Millisecond))
			if len(m.Vanished) > 0 {
				fmt.Fprintf(e.stdout, "%d recordings were purged by retention while the backup ran; restore reports them as purged\n", len(m.Vanished))
			}
			if includeKeys {
				fmt.Fprintln(e.stdout, "WARNING: this backup contains the keys. Keep it apart from data backups, offline, and replace it after each retention run.")
			}
			return nil
		},
	})
}

func restoreCmd(e *env) *ffcli.Command {
	var d deployFlags
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	d.register(fs)
	return &ffcli.Command{
		Name:       "restore",
		ShortUsage: "callvault restore [--data DATA] BACKUP [flags]",
		ShortHelp:  "Restore a backup into a data directory that has no database",
		LongHelp: "Checks BACKUP against its manifest, then copies the recordings, the keys it may hold (never a key\n" +
			"whose month has been destroyed in the target keyring) and, last, the database. Then it removes,\n" +
			"with a receipt each, every restored recording whose key epoch has been destroyed, and runs\n" +
			"retention, so nothing deleted since the backup comes back.",
		FlagSet: fs,
		Options: ffOptions(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("restore needs the backup folder: %w", errUsage)
			}
			return restore(ctx, e, &d, args[0])
		},
	}
}

func restore(ctx context.Context, e *env, d *deployFlags, dir string) error {
	if d.db != "" && !strings.HasPrefix(d.db, "sqlite:") {
		return fmt.Errorf("--db %q: restore writes a SQLite database; for PostgreSQL use pg_restore", d.db)
	}
	if err := os.MkdirAll(d.data, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	blobDir := filepath.Join(d.data, "blobs")
	if d.blob != "" {
		var ok bool
		if blobDir, ok = strings.CutPrefix(d.blob, "file://"); !ok {
			return fmt.Errorf("--blob %q: only file:// blob stores are supported so far", d.blob)
		}
	}
	blobs, err := blob.NewFileStore(blobDir)
	if err != nil {
		return fmt.Errorf("blob store: %w", err)
	}
	opts := backup.RestoreOptions{Dir: dir, DataDir: d.data, Blobs: blobs, KEKPath: d.kek}
	if d.db != "" {
		opts.DBPath = strings.TrimPrefix(d.db, "sqlite:")
	}
	rep, err := backup.Restore(ctx, opts)
	if err != nil {
		return commandError(err)
	}
	fmt.Fprintf(e.stdout, "restored the backup of %s: database, %d recordings copied (%d already present), audit trail to seq %d (head %s)\n",
		rep.Manifest.CreatedAt.In(callvault.London).Format("2 Jan 2006 15:04"), rep.Blobs, rep.BlobsPresent, rep.AuditSeq, rep.AuditHead)
	if len(rep.KeysCopied) > 0 {
		fmt.Fprintf(e.stdout, "keys restored for %s\n", strings.Join(rep.KeysCopied, ", "))
	}
	if len(rep.KeysDestroyed) > 0 {
		fmt.Fprintf(e.stdout, "keys NOT restored, their months were destroyed: %s\n", strings.Join(rep.KeysDestroyed, ", "))
	}
	if len(rep.KeysDiffer) > 0 {
		fmt.Fprintf(e.stdout, "WARNING: the target keyring has different keys for %s: recordings of the backup in those months will not decrypt\n", strings.Join(rep.KeysDiffer, ", "))
	}
	if rep.KeysNeeded {
		fmt.Fprintln(e.stdout, "KEYS NEEDED: put kek and keys/ from the key backup into the data directory, then run: callvault retention run (it removes what was destroyed since the backup)")
		return nil
	}

	dep, err := d.open(ctx, e)
	if err != nil {
		return err
	}
	defer dep.Close()
	sys := system(ctx)
	purger := dep.purger(e)
	var run retention.Report
	err = dep.audited(sys, callvault.AuditEvent{Action: "backup.restore", TargetType: "backup", TargetID: trimTo(dir, 200)}, func(ctx context.Context) error {
		var err error
		run, err = purger.Run(ctx, retention.Options{})
		callvault.NoteAudit(ctx, func(ev *callvault.AuditEvent) {
			ev.Details = map[string]string{"backup_created": rep.Manifest.CreatedAt.UTC().Format(time.RFC3339),
				"audit_seq": strconv.FormatInt(rep.AuditSeq, 10), "blobs": strconv.Itoa(rep.Blobs),
				"removed_destroyed_epochs": strconv.Itoa(run.Forgotten), "purged_expired": strconv.Itoa(run.Purged), "run": run.RunID,
				"keys_refused": strings.Join(rep.KeysDestroyed, ",")}
		})
		return err
	})
	if err != nil {
		return commandError(err)
	}
	if run.Forgotten > 0 {
		fmt.Fprintf(e.stdout, "%d recordings of destroyed months (%s) were not brought back: reported as purged, with a receipt each\n",
			run.Forgotten, strings.Join(run.ForgottenEpochs, ", "))
	}
	if run.Purged > 0 {
		fmt.Fprintf(e.stdout, "%d recordings past their retention date were purged again\n", run.Purged)
	}
	if len(run.MissingKeys) > 0 {
		fmt.Fprintf(e.stdout, "WARNING: no key at all for %s: restore those keys from the key backup\n", strings.Join(run.MissingKeys, ", "))
	}
	if n := len(rep.Vanished); n > 0 {
		fmt.Fprintf(e.stdout, "%d recordings were purged while the backup ran\n", n)
	}
	return nil
}

// commandError shows a domain error's message, and other errors whole
// (file errors from backup and restore name the file and the cause).
func commandError(err error) error {
	if _, ok := err.(*callvault.Error); ok {
		return userError(err)
	}
	return err
}
