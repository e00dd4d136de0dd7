package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/audit"
)

func auditCmd(e *env) *ffcli.Command {
	return group("audit", "callvault audit <verify|export|pubkey|checkpoint> [flags]", "Verify, export and checkpoint the tamper-evident audit trail",
		auditVerifyCmd(e), auditExportCmd(e), auditPubkeyCmd(e), auditCheckpointCmd(e))
}

func auditVerifyCmd(e *env) *ffcli.Command {
	var checkpoints, pubkey string
	return e.command(spec{
		name: "audit verify", usage: "callvault audit verify [--checkpoint FILE,...] [--pubkey KEY] [flags]",
		short: "Walk the audit chain and check it against signed checkpoints",
		long: "Walks the whole chain, recomputing every hash, and checks each signed checkpoint against it.\n" +
			"A checkpoint kept where the database administrator cannot reach it (a file elsewhere, syslog, the DPO's mailbox)\n" +
			"proves nothing before it was rewritten, truncated or reordered, even by someone who rebuilt the chain.\n" +
			"Give --pubkey from a record kept apart from the server to rule out a replaced signing key.\n" +
			"Exit status 1 and the first bad sequence number when anything is wrong.",
		action: "audit.verify",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&checkpoints, "checkpoint", "", "comma-separated checkpoint files (JSON or JSON lines); default DATA/audit-checkpoints.jsonl when it exists")
			fs.StringVar(&pubkey, "pubkey", "", "the audit public key (callvault-audit-ed25519:...); default the key in the data directory")
		},
		run: func(ctx context.Context, dep *deployment, args []string) error {
			pub := dep.signer.PublicKey()
			if pubkey != "" {
				var err error
				if pub, err = audit.ParsePublicKey(pubkey); err != nil {
					return fmt.Errorf("--pubkey: %w", err)
				}
			} else {
				fmt.Fprintln(e.stderr, "note: checking signatures with the key in the data directory; give --pubkey from an independent record for full assurance")
			}
			files := splitList(checkpoints)
			if len(files) == 0 {
				if _, err := os.Stat(dep.checkpointFile); err == nil {
					files = []string{dep.checkpointFile}
				}
			}
			var cps []*audit.Checkpoint
			for _, f := range files {
				r, err := os.Open(f)
				if err != nil {
					return err
				}
				got, err := audit.ReadCheckpoints(r)
				r.Close()
				if err != nil {
					return fmt.Errorf("%s: %w", f, err)
				}
				cps = append(cps, got...)
			}
			rep, err := audit.Verify(ctx, dep.audit, pub, cps)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "entries checked: %d (from seq %d to %d, %d redacted)\ncheckpoints checked: %d from %d file(s)\n",
				rep.Entries, rep.Anchor.Seq+1, rep.Head.Seq, rep.Redacted, rep.CheckpointsChecked, len(files))
			result := "ok"
			if rep.Problem != nil {
				result = fmt.Sprintf("FAILED at seq %d: %s: %s", rep.Problem.Seq, rep.Problem.Kind, rep.Problem.Detail)
			}
			fmt.Fprintf(e.stdout, "result: %s\n", result)
			callvault.NoteAudit(ctx, func(ev *callvault.AuditEvent) {
				ev.Details = map[string]string{"result": trimTo(result, 300), "entries": strconv.FormatInt(rep.Entries, 10),
					"checkpoints": strconv.Itoa(rep.CheckpointsChecked)}
				if rep.Problem != nil {
					ev.Outcome = callvault.OutcomeFailed
				}
			})
			if rep.Problem != nil {
				return errVerifyFailed
			}
			return nil
		},
	})
}

var errVerifyFailed = fmt.Errorf("the audit trail failed verification")

func auditExportCmd(e *env) *ffcli.Command {
	var from, to, format, out string
	return e.command(spec{
		name: "audit export", usage: "callvault audit export [--from T] [--to T] [--format jsonl|csv] [--out FILE] [flags]",
		short: "Export audit entries with their hashes", action: "audit.export", reads: true,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&from, "from", "", "first time, RFC 3339 or YYYY-MM-DD (London)")
			fs.StringVar(&to, "to", "", "end time (exclusive), RFC 3339 or YYYY-MM-DD (London, the whole day)")
			fs.StringVar(&format, "format", "jsonl", "jsonl or csv")
			fs.StringVar(&out, "out", "", "file to write (created 0600); default standard output")
		},
		run: func(ctx context.Context, dep *deployment, args []string) error {
			f, err := parseTime(from, false)
			if err != nil {
				return fmt.Errorf("--from: %w", err)
			}
			t, err := parseTime(to, true)
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			var w io.Writer = e.stdout
			if out != "" {
				file, err := os.OpenFile(out, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
				if err != nil {
					return err
				}
				defer file.Close()
				w = file
			}
			var n int
			switch format {
			case "jsonl":
				n, err = audit.ExportJSONL(ctx, dep.audit, w, f, t)
			case "csv":
				n, err = audit.ExportCSV(ctx, dep.audit, w, f, t)
			default:
				return fmt.Errorf("--format must be jsonl or csv")
			}
			if err != nil {
				return err
			}
			if out != "" {
				fmt.Fprintf(e.stderr, "exported %d entries to %s\n", n, out)
			}
			return nil
		},
	})
}

func auditPubkeyCmd(e *env) *ffcli.Command {
	return e.command(spec{
		name: "audit pubkey", usage: "callvault audit pubkey [flags]",
		short: "Print the public key that verifies audit checkpoints (keep a copy apart from the server)",
		run: func(ctx context.Context, dep *deployment, args []string) error {
			fmt.Fprintln(e.stdout, audit.FormatPublicKey(dep.signer.PublicKey()))
			return nil
		},
	})
}

func auditCheckpointCmd(e *env) *ffcli.Command {
	var cf checkpointFlags
	return e.command(spec{
		name: "audit checkpoint", usage: "callvault audit checkpoint [flags]",
		short: "Sign a checkpoint of the audit chain now and export it", action: "audit.checkpoint",
		flags: cf.register,
		run: func(ctx context.Context, dep *deployment, args []string) error {
			c, err := cf.checkpointer(e, dep)
			if err != nil {
				return err
			}
			cp, err := c.Checkpoint(ctx)
			if cp != nil {
				fmt.Fprintf(e.stdout, "checkpoint at seq %d, hash %s, exported to %s\n", cp.Seq, cp.Hash, cf.describe(dep))
				callvault.NoteAudit(ctx, func(ev *callvault.AuditEvent) {
					ev.Details = map[string]string{"seq": strconv.FormatInt(cp.Seq, 10), "hash": cp.Hash}
				})
			}
			return err
		},
	})
}

// checkpointFlags say where signed checkpoints go: somewhere the database
// administrator cannot rewrite.
type checkpointFlags struct {
	file, syslog, mailTo, smtp, mailFrom string
}

func (c *checkpointFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.file, "checkpoint-file", "", "append signed audit checkpoints to this file (default DATA/audit-checkpoints.jsonl; put it on other storage)")
	fs.StringVar(&c.syslog, "checkpoint-syslog", "", "also send checkpoints to syslog at udp://HOST:PORT or tcp://HOST:PORT")
	fs.StringVar(&c.mailTo, "checkpoint-mail-to", "", "also e-mail checkpoints to these comma-separated addresses (e.g. the DPO)")
	fs.StringVar(&c.smtp, "smtp", "", "SMTP relay HOST:PORT for e-mail")
	fs.StringVar(&c.mailFrom, "mail-from", "callvault@localhost", "sender address of e-mail")
}

func (c *checkpointFlags) exporters(dep *deployment) ([]audit.Exporter, error) {
	file := c.file
	if file == "" {
		file = dep.checkpointFile
	}
	ex := []audit.Exporter{&audit.FileExporter{Path: file}}
	if c.syslog != "" {
		network, addr, ok := strings.Cut(c.syslog, "://")
		if !ok || (network != "udp" && network != "tcp") {
			return nil, fmt.Errorf("--checkpoint-syslog must be udp://HOST:PORT or tcp://HOST:PORT")
		}
		ex = append(ex, &audit.SyslogExporter{Network: network, Addr: addr, Tag: "callvault-audit"})
	}
	if to := splitList(c.mailTo); len(to) > 0 {
		if c.smtp == "" {
			return nil, fmt.Errorf("--checkpoint-mail-to needs --smtp")
		}
		ex = append(ex, &audit.MailExporter{Addr: c.smtp, From: c.mailFrom, To: to})
	}
	return ex, nil
}

func (c *checkpointFlags) checkpointer(e *env, dep *deployment) (*audit.Checkpointer, error) {
	ex, err := c.exporters(dep)
	if err != nil {
		return nil, err
	}
	return &audit.Checkpointer{Store: dep.audit, Signer: dep.signer, Exporters: ex, Logger: e.logger}, nil
}

func (c *checkpointFlags) describe(dep *deployment) string {
	ex, err := c.exporters(dep)
	if err != nil {
		return err.Error()
	}
	var names []string
	for _, x := range ex {
		names = append(names, x.String())
	}
	return strings.Join(names, ", ")
}

// parseTime accepts RFC 3339 or a London date; as an end bound a date means
// the end of that day.
func parseTime(v string, end bool) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	d, err := time.ParseInLocation("2006-01-02", v, callvault.London)
	if err != nil {
		return time.Time{}, fmt.Errorf("use RFC 3339 or YYYY-MM-DD")
	}
	if end {
		d = d.AddDate(0, 0, 1)
	}
	return d, nil
}

func trimTo(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
