package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

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
	for _, want := range []string{"-config", "-data", "./callvault-data", "-db", "-blob", "-kek", "-http", "127.0.0.1:8080", "-demo", "-max-upload", "536870912", "-retention-months", "-cookie-secure", "-sweep-every", "-shutdown-grace"} {
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
	root := &ffcli.Command{Subcommands: []*ffcli.Command{serveCmd(e), importCmd(e), userCmd(e), sourceCmd(e), academyCmd(e), versionCmd(e)}}
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
