package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/audio"
	"github.com/peterbourgon/ff/v3/ffcli"
)

// cli runs callvault in-process and returns stdout, stderr and the error.
func cli(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), err
}

func TestServeHelpDocumentsEveryOption(t *testing.T) {
	_, stderr, err := cli(t, "serve", "--help")
	if err == nil {
		t.Fatal("serve --help returned no error (flag.ErrHelp expected)")
	}
	for _, want := range []string{"-config", "-data", "./callvault-data", "-db", "-blob", "-kek", "-http", "127.0.0.1:8080", "-demo", "-max-upload", "536870912", "-cookie-secure", "-sweep-every", "-shutdown-grace"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("serve --help does not mention %q:\n%s", want, stderr)
		}
	}
}

func TestCommandLineWorkflow(t *testing.T) {
	data := t.TempDir()
	d := "--data=" + data

	if out, _, err := cli(t, "academy", "add", d, "--name", "Oakfield Primary", "--numbers", "01632 960000-01632 960099", "--extensions", "2000-2099", "oakfield"); err != nil || !strings.Contains(out, "added academy oakfield") {
		t.Fatalf("academy add: %v %s", err, out)
	}
	if _, _, err := cli(t, "academy", "add", d, "--name", "Dup", "oakfield"); err == nil {
		t.Error("adding an academy twice succeeded")
	}
	if _, _, err := cli(t, "academy", "add", d, "--name", "Bad", "--numbers", "not a number", "bad"); err == nil {
		t.Error("academy add accepted a bad number range")
	}
	if out, _, err := cli(t, "academy", "edit", d, "--extensions", "2000-2199", "oakfield"); err != nil || !strings.Contains(out, "updated") {
		t.Fatalf("academy edit: %v %s", err, out)
	}
	out, _, err := cli(t, "academy", "list", d)
	if err != nil || !strings.Contains(out, "+441632960000-+441632960099") || !strings.Contains(out, "2000-2199") || !strings.Contains(out, "Oakfield Primary") {
		t.Fatalf("academy list after edit: %v\n%s", err, out)
	}

	out, _, err = cli(t, "user", "add", d, "--role", "principal", "--academy", "oakfield", "--name", "J Smith", "jsmith")
	if err != nil || !regexp.MustCompile(`\n    \S{5}-\S{5}-\S{5}-\S{5}\n`).MatchString(out) {
		t.Fatalf("user add: %v\n%s", err, out)
	}
	if _, _, err := cli(t, "user", "add", d, "--role", "principal", "nobody"); err == nil {
		t.Error("a principal without an academy was created")
	}
	if _, _, err := cli(t, "user", "add", d, "--role", "wizard", "x"); err == nil {
		t.Error("user add accepted an unknown role")
	}
	if _, _, err := cli(t, "user", "disable", d, "jsmith"); err != nil {
		t.Fatal(err)
	}
	out, _, _ = cli(t, "user", "list", d)
	if !regexp.MustCompile(`jsmith\s+principal\s+oakfield\s+J Smith\s+disabled`).MatchString(out) {
		t.Errorf("user list:\n%s", out)
	}

	out, _, err = cli(t, "source", "add", d, "freepbx")
	if err != nil || !regexp.MustCompile(`cvi_[A-Za-z0-9_-]{43}`).MatchString(out) {
		t.Fatalf("source add: %v\n%s", err, out)
	}
	if out, _, _ := cli(t, "source", "list", d); !strings.Contains(out, "freepbx") || strings.Contains(out, "cvi_") {
		t.Errorf("source list shows %q; want the name and never the token", out)
	}

	// Import: one good file, one bad; the good one is stored, the bad one reported.
	dir := t.TempDir()
	left, right := audio.Conversation(1, 2*time.Second, 8000)
	var b bytes.Buffer
	audio.WriteWAV(&b, "ulaw", 8000, left, right)
	good := filepath.Join(dir, "good.wav")
	bad := filepath.Join(dir, "bad.wav")
	os.WriteFile(good, b.Bytes(), 0o600)
	os.WriteFile(bad, []byte("not audio at all"), 0o600)
	out, stderr, err := cli(t, "import", d, "--meta", `{"participants":[{"number":"01632 960001","side":"staff"}]}`, good, bad)
	if err == nil || !strings.Contains(err.Error(), "1 of 2 files were not imported") {
		t.Errorf("import with a bad file: err = %v", err)
	}
	if !regexp.MustCompile(`^[0-9a-f-]{36}\t`+regexp.QuoteMeta(good)+`\n$`).MatchString(out) || !strings.Contains(stderr, "bad.wav") {
		t.Errorf("import printed %q / %q", out, stderr)
	}
	id := strings.Fields(out)[0]
	out, _, err = cli(t, "import", d, good)
	if err != nil || !strings.Contains(out, id) || !strings.Contains(out, "already stored") {
		t.Errorf("re-import: %v %q; want the same id, already stored", err, out)
	}
	if _, _, err := cli(t, "import", d, "--meta", `{"colour":"red"}`, good); err == nil {
		t.Error("import accepted metadata with an unknown field")
	}
	if _, _, err := cli(t, "import", d); err == nil {
		t.Error("import with no files succeeded")
	}
	// Key file mode.
	st, err := os.Stat(filepath.Join(data, "kek"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("kek mode = %v, %v; want 0600", st.Mode(), err)
	}
}

// Flags beat CALLVAULT_* environment, which beats the config file.
func TestConfigPrecedence(t *testing.T) {
	fileData, envData, flagData := t.TempDir(), t.TempDir(), t.TempDir()
	cfg := filepath.Join(t.TempDir(), "callvault.conf")
	os.WriteFile(cfg, []byte("data "+fileData+"\nhttp 127.0.0.1:9999\n"), 0o600)
	list := func(args ...string) {
		t.Helper()
		if _, stderr, err := cli(t, append([]string{"academy", "list", "--config", cfg}, args...)...); err != nil {
			t.Fatalf("academy list %v: %v %s", args, err, stderr)
		}
	}
	exists := func(dir string) bool {
		_, err := os.Stat(filepath.Join(dir, "callvault.db"))
		return err == nil
	}
	list()
	if !exists(fileData) {
		t.Error("the config file's data directory was not used")
	}
	t.Setenv("CALLVAULT_DATA", envData)
	list()
	if !exists(envData) {
		t.Error("CALLVAULT_DATA did not override the config file")
	}
	list("--data", flagData)
	if !exists(flagData) {
		t.Error("--data did not override CALLVAULT_DATA")
	}
	if _, _, err := cli(t, "academy", "list", "--config", filepath.Join(t.TempDir(), "missing.conf")); err == nil {
		t.Error("a missing config file was silently ignored")
	}
}

func TestVersion(t *testing.T) {
	out, _, err := cli(t, "version")
	if err != nil || !strings.HasPrefix(out, "callvault ") {
		t.Errorf("version = %q, %v", out, err)
	}
}

// Every subcommand answers --help with its usage, and every command that
// works on a deployment takes the same deployment flags.
func TestEverySubcommandHasHelp(t *testing.T) {
	var walk func(prefix []string, c *ffcli.Command)
	e := &env{stdout: io.Discard, stderr: io.Discard}
	root := &ffcli.Command{Subcommands: subcommands(e)}
	n := 0
	walk = func(prefix []string, c *ffcli.Command) {
		for _, s := range c.Subcommands {
			args := append(append([]string{}, prefix...), s.Name)
			_, stderr, err := cli(t, append(args, "--help")...)
			if !errors.Is(err, flag.ErrHelp) || !strings.Contains(stderr, "USAGE") {
				t.Errorf("callvault %s --help = %v, usage %q", strings.Join(args, " "), err, stderr)
			}
			if len(s.Subcommands) == 0 && s.Name != "version" {
				for _, f := range []string{"-config", "-data", "-db", "-blob", "-kek"} {
					if !strings.Contains(stderr, f+" ") {
						t.Errorf("callvault %s lacks the deployment flag %s", strings.Join(args, " "), f)
					}
				}
			}
			n++
			walk(args, s)
		}
	}
	walk(nil, root)
	if n < 12 {
		t.Errorf("walked %d commands, want every one (at least 12)", n)
	}
	if _, _, err := cli(t); err == nil {
		t.Error("callvault with no subcommand succeeded")
	}
	if _, _, err := cli(t, "user", "bogus"); err == nil || !strings.Contains(err.Error(), "unknown subcommand") {
		t.Errorf("callvault user bogus = %v", err)
	}
}

// openRaw opens the deployment's database file directly, as a hostile
// administrator with database access would.
func openRaw(t *testing.T, data string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(data, "callvault.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// seedTrail makes a deployment with a few dozen audit entries and a signed
// checkpoint exported to a file outside the data directory.
func seedTrail(t *testing.T) (data, cpFile, pub string) {
	t.Helper()
	data = t.TempDir()
	d := "--data=" + data
	for i := range 12 {
		if _, _, err := cli(t, "academy", "add", d, "--name", fmt.Sprint("Academy ", i), fmt.Sprint("a", i)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := cli(t, "academy", "list", d); err != nil {
			t.Fatal(err)
		}
	}
	cpFile = filepath.Join(t.TempDir(), "checkpoints.jsonl") // kept away from the database administrator
	if out, _, err := cli(t, "audit", "checkpoint", d, "--checkpoint-file", cpFile); err != nil || !strings.Contains(out, "checkpoint at seq") {
		t.Fatalf("audit checkpoint: %v %s", err, out)
	}
	out, _, err := cli(t, "audit", "pubkey", d)
	if err != nil || !strings.HasPrefix(out, "callvault-audit-ed25519:") {
		t.Fatalf("audit pubkey: %v %q", err, out)
	}
	return data, cpFile, strings.TrimSpace(out)
}

func verify(t *testing.T, data string, args ...string) (string, error) {
	t.Helper()
	out, _, err := cli(t, append([]string{"audit", "verify", "--data=" + data}, args...)...)
	return out, err
}

// Each way a hostile administrator could alter the trail is detected by
// `callvault audit verify`, which names the first bad entry and fails.
func TestAuditVerifyDetectsTampering(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, db *sql.DB, data string)
		want   string // in the result line
	}{
		{"clean", func(*testing.T, *sql.DB, string) {}, "result: ok"},
		{"edit a row", func(t *testing.T, db *sql.DB, _ string) {
			mustExec(t, db, `UPDATE audit_events SET actor_name = 'someone-else' WHERE seq = 5`)
		}, "FAILED at seq 5: modified"},
		{"delete a row", func(t *testing.T, db *sql.DB, _ string) {
			mustExec(t, db, `DELETE FROM audit_events WHERE seq = 7`)
		}, "FAILED at seq 7: missing"},
		{"swap two rows", func(t *testing.T, db *sql.DB, _ string) {
			mustExec(t, db, `UPDATE audit_events SET seq = -1 WHERE seq = 9`)
			mustExec(t, db, `UPDATE audit_events SET seq = 9 WHERE seq = 10`)
			mustExec(t, db, `UPDATE audit_events SET seq = 10 WHERE seq = -1`)
		}, "FAILED at seq 9: reordered"},
		{"truncate the tail", func(t *testing.T, db *sql.DB, _ string) {
			mustExec(t, db, `DELETE FROM audit_events WHERE seq > 20`)
		}, ": truncated"},
		{"rebuild the chain after an edit", func(t *testing.T, db *sql.DB, _ string) {
			// Edit entry 3 and recompute every hash after it, as someone who
			// knows the format would: the chain alone is then consistent.
			mustExec(t, db, `UPDATE audit_events SET actor_name = 'nobody' WHERE seq = 3`)
			rechain(t, db)
		}, "rewritten"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, cpFile, pub := seedTrail(t)
			tt.tamper(t, openRaw(t, data), data)
			out, err := verify(t, data, "--checkpoint", cpFile, "--pubkey", pub)
			if !strings.Contains(out, tt.want) {
				t.Errorf("verify after %s printed %q, want %q", tt.name, out, tt.want)
			}
			if (err == nil) != (tt.want == "result: ok") {
				t.Errorf("verify after %s: err = %v", tt.name, err)
			}
		})
	}
}

// An old database backup restored after a newer checkpoint is caught; so is
// a checkpoint checked with the wrong public key.
func TestAuditVerifyBackupReplayAndWrongKey(t *testing.T) {
	data, cpFile, pub := seedTrail(t)
	backup := t.TempDir()
	copyDB(t, data, backup)
	// More activity and a newer checkpoint, then the old backup comes back.
	for range 3 {
		cli(t, "academy", "list", "--data="+data)
	}
	if _, _, err := cli(t, "audit", "checkpoint", "--data="+data, "--checkpoint-file", cpFile); err != nil {
		t.Fatal(err)
	}
	copyDB(t, backup, data)
	out, err := verify(t, data, "--checkpoint", cpFile, "--pubkey", pub)
	if err == nil || !strings.Contains(out, "truncated") {
		t.Errorf("verify after restoring an old backup: %v %q, want truncated", err, out)
	}

	other, _, _ := seedTrail(t)
	otherPub, _, _ := cli(t, "audit", "pubkey", "--data="+other)
	out, err = verify(t, data, "--checkpoint", cpFile, "--pubkey", strings.TrimSpace(otherPub))
	if err == nil || !strings.Contains(out, "signature") {
		t.Errorf("verify with the wrong public key: %v %q, want a signature failure", err, out)
	}
	if _, err := verify(t, data, "--pubkey", "not-a-key"); err == nil {
		t.Error("verify accepted a malformed public key")
	}
}

func TestAuditExport(t *testing.T) {
	data, _, _ := seedTrail(t)
	out, _, err := cli(t, "audit", "export", "--data="+data, "--format", "jsonl")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 25 || !strings.Contains(lines[0], `"action":"academy.create"`) || !strings.Contains(lines[0], `"hash":"`) {
		t.Errorf("jsonl export: %d lines, first %q", len(lines), lines[0])
	}
	out, _, err = cli(t, "audit", "export", "--data="+data, "--format", "csv", "--from", "2000-01-01")
	if err != nil || !strings.HasPrefix(out, "seq,") || strings.Count(out, "\n") < 26 {
		t.Errorf("csv export: %v %.200q", err, out)
	}
	if _, _, err := cli(t, "audit", "export", "--data="+data, "--format", "xml"); err == nil {
		t.Error("export accepted --format xml")
	}
	if _, _, err := cli(t, "audit", "export", "--data="+data, "--from", "last tuesday"); err == nil {
		t.Error("export accepted a bad --from")
	}
	// Exporting is itself recorded.
	out, _, _ = cli(t, "audit", "export", "--data="+data)
	if !strings.Contains(out, `"action":"audit.export"`) {
		t.Error("the export did not record itself in the trail")
	}
}

func mustExec(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// rechain recomputes every stored hash from the stored fields, as an
// attacker rebuilding the chain would.
func rechain(t *testing.T, db *sql.DB) {
	t.Helper()
	rows, err := db.Query(`SELECT seq, time, actor_kind, actor_id, actor_name, actor_role, action, target_type, target_id,
		academy_id, outcome, client_addr, reason, details FROM audit_events ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	var events []*callvault.AuditEvent
	for rows.Next() {
		e := &callvault.AuditEvent{}
		var ms int64
		var details string
		if err := rows.Scan(&e.Seq, &ms, &e.ActorKind, &e.ActorID, &e.ActorName, &e.ActorRole, &e.Action, &e.TargetType,
			&e.TargetID, &e.AcademyID, &e.Outcome, &e.ClientAddr, &e.Reason, &details); err != nil {
			t.Fatal(err)
		}
		e.Time = time.UnixMilli(ms).UTC()
		if details != "{}" {
			json.Unmarshal([]byte(details), &e.Details)
		}
		events = append(events, e)
	}
	rows.Close()
	prev := callvault.GenesisHash
	for _, e := range events {
		h := callvault.ChainHash(prev, e)
		mustExec(t, db, fmt.Sprintf(`UPDATE audit_events SET prev_hash = '%s', hash = '%s' WHERE seq = %d`, prev, h, e.Seq))
		prev = h
	}
}

func copyDB(t *testing.T, from, to string) {
	t.Helper()
	// A consistent copy of the database with SQLite's own backup.
	dst := filepath.Join(to, "callvault.db")
	os.Remove(dst)
	os.Remove(dst + "-wal")
	os.Remove(dst + "-shm")
	db := openRaw(t, from)
	if _, err := db.Exec(`VACUUM INTO ?`, dst); err != nil {
		t.Fatal(err)
	}
}

func TestUserEditAndResetMFA(t *testing.T) {
	data := t.TempDir()
	d := "--data=" + data
	for _, slug := range []string{"oakfield", "riverside"} {
		if _, _, err := cli(t, "academy", "add", d, "--name", slug, slug); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := cli(t, "user", "add", d, "--role", "principal", "--academy", "oakfield", "jsmith"); err != nil {
		t.Fatal(err)
	}
	if out, _, err := cli(t, "user", "edit", d, "--academy", "oakfield,riverside", "--email", "j.smith@trust.example", "jsmith"); err != nil || !strings.Contains(out, "updated jsmith") {
		t.Fatalf("user edit: %v %s", err, out)
	}
	out, _, _ := cli(t, "user", "list", d)
	if !regexp.MustCompile(`jsmith\s+principal\s+oakfield,riverside`).MatchString(out) {
		t.Errorf("after edit:\n%s", out)
	}
	if _, _, err := cli(t, "user", "edit", d, "--role", "principal", "--academy", "", "jsmith"); err == nil {
		t.Error("a principal without academies was accepted")
	}
	if _, _, err := cli(t, "user", "edit", d, "--role", "king", "jsmith"); err == nil {
		t.Error("an unknown role was accepted")
	}
	if _, _, err := cli(t, "user", "edit", d, "--name", "x", "nobody"); err == nil {
		t.Error("editing a missing user succeeded")
	}
	if out, _, err := cli(t, "user", "reset-mfa", d, "jsmith"); err != nil || !strings.Contains(out, "removed the second factor") {
		t.Errorf("reset-mfa: %v %s", err, out)
	}
	out, _, _ = cli(t, "audit", "export", d)
	for _, want := range []string{`"action":"user.update"`, `"action":"user.reset_mfa"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the audit trail lacks %s", want)
		}
	}
}

func TestTokenCommands(t *testing.T) {
	data := t.TempDir()
	d := "--data=" + data
	if _, _, err := cli(t, "user", "add", d, "--role", "dpo", "dpo1"); err != nil {
		t.Fatal(err)
	}
	out, _, err := cli(t, "token", "create", d, "--user", "dpo1", "--name", "nightly export", "--expires", "24h")
	if err != nil || !regexp.MustCompile(`cvt_[A-Za-z0-9_-]{43}`).MatchString(out) {
		t.Fatalf("token create: %v %s", err, out)
	}
	if _, _, err := cli(t, "token", "create", d, "--user", "dpo1", "--expires", "9000h"); err == nil {
		t.Error("a token for over a year was created")
	}
	if _, _, err := cli(t, "token", "create", d, "--user", "dpo1", "--scope", "admin"); err == nil {
		t.Error("a token with an unknown scope was created")
	}
	if _, _, err := cli(t, "token", "create", d); err == nil {
		t.Error("token create without --user succeeded")
	}
	out, _, _ = cli(t, "token", "list", d, "--user", "dpo1")
	if !regexp.MustCompile(`1\s+nightly export\s+read\s+\S+\s+active`).MatchString(out) || strings.Contains(out, "cvt_") {
		t.Errorf("token list:\n%s", out)
	}
	if _, _, err := cli(t, "token", "revoke", d, "1"); err != nil {
		t.Fatal(err)
	}
	if out, _, _ := cli(t, "token", "list", d, "--user", "dpo1"); !strings.Contains(out, "revoked") {
		t.Errorf("after revoke:\n%s", out)
	}
	if _, _, err := cli(t, "token", "revoke", d, "1"); err == nil {
		t.Error("revoking twice succeeded")
	}
}
