// Package e2e drives the real callvault binary with headless Chromium: sign
// in, replace the one-time password, search, open a recording, play and seek,
// and run axe-core on every page (WCAG 2.2 AA; serious or critical findings
// fail the test).
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/callvault/callvault/audio"
)

// need skips (or, under CI=true, fails) when a tool is missing.
func need(t *testing.T, what, hint string, ok bool) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing (CI=true makes this a failure): %s", what, hint)
	}
	t.Skipf("%s is missing: %s", what, hint)
}

func chromiumPath() string {
	for _, p := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	return ""
}

// server is a running `callvault serve`.
type server struct {
	url, data, bin string
	adminPassword  string
}

func startServer(t *testing.T) *server {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "callvault")
	build := exec.Command("go", "build", "-o", bin, "../cmd/callvault")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	data := filepath.Join(dir, "data")
	cmd := exec.Command(bin, "serve", "--data", data, "--http", addr)
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve did not stop cleanly on SIGINT: %v\n%s", err, stderr.String())
			}
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			t.Errorf("serve did not stop within 15s of SIGINT")
		}
		if t.Failed() {
			t.Logf("server log:\n%s", stderr.String())
		}
	})
	s := &server{url: "http://" + addr, data: data, bin: bin}
	pwRe := regexp.MustCompile(`^\s+(\S+-\S+-\S+-\S+)\s*$`)
	sc := bufio.NewScanner(stdout)
	deadline := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer deadline.Stop()
	for sc.Scan() {
		line := sc.Text()
		if m := pwRe.FindStringSubmatch(line); m != nil && s.adminPassword == "" {
			s.adminPassword = m[1]
		}
		if strings.Contains(line, "callvault is running at") {
			break
		}
	}
	if s.adminPassword == "" {
		t.Fatalf("serve did not print the admin's one-time password; log:\n%s", stderr.String())
	}
	go io.Copy(io.Discard, stdout)
	return s
}

// importCall imports a generated stereo µ-law call with the CLI while the
// server runs.
func (s *server) importCall(t *testing.T, ref string, d time.Duration) {
	t.Helper()
	left, right := audio.Conversation(42, d, 8000)
	var b bytes.Buffer
	if err := audio.WriteWAV(&b, "ulaw", 8000, left, right); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), ref+".wav")
	if err := os.WriteFile(f, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	meta := fmt.Sprintf(`{"source_ref":%q,"started_at":"2026-11-20T10:15:00Z","direction":"inbound","participants":[{"number":"020 7183 8750","name":"A parent","side":"external"},{"extension":"2001","name":"Reception","side":"staff"}]}`, ref)
	out, err := exec.Command(s.bin, "import", "--data", s.data, "--meta", meta, f).CombinedOutput()
	if err != nil {
		t.Fatalf("callvault import: %v\n%s", err, out)
	}
}

type axeResult struct {
	Violations []struct {
		ID     string `json:"id"`
		Impact string `json:"impact"`
		Help   string `json:"help"`
		Nodes  []struct {
			Target []any  `json:"target"`
			HTML   string `json:"html"`
		} `json:"nodes"`
	} `json:"violations"`
}

// checkAxe injects axe-core into the current page and fails on serious or
// critical WCAG 2.x A/AA findings.
func checkAxe(t *testing.T, ctx context.Context, axeJS, page string) {
	t.Helper()
	// Inject and run in one evaluation, so a navigation cannot come between.
	const run = `;axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]}, resultTypes: ["violations"]}).then(r => JSON.stringify(r))`
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](axeJS+run, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: axe.run: %v", page, err)
	}
	var res axeResult
	if err := json.Unmarshal([]byte(raw), &res); err != nil {
		t.Fatal(err)
	}
	for _, v := range res.Violations {
		msg := fmt.Sprintf("%s: axe %s (%s): %s", page, v.ID, v.Impact, v.Help)
		for _, n := range v.Nodes {
			msg += fmt.Sprintf("\n    %v %s", n.Target, n.HTML)
		}
		if v.Impact == "serious" || v.Impact == "critical" {
			t.Error(msg)
		} else {
			t.Log(msg)
		}
	}
}

func TestBrowserJourney(t *testing.T) {
	chromium := chromiumPath()
	need(t, "Chromium", "apt-get install chromium (see .ci/run)", chromium != "")
	axeJS, err := os.ReadFile("node_modules/axe-core/axe.min.js")
	need(t, "axe-core", "run `npm ci` in e2e/ (see .ci/run)", err == nil)

	s := startServer(t)
	s.importCall(t, "e2e-call-1", 8*time.Second)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("mute-audio", true),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// Start the browser without a timeout (a timeout on the first Run stops it).
	if err := chromedp.Do(ctx, chromedp.Navigate(s.url+"/login")); err != nil {
		t.Fatal(err)
	}
	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
		defer scancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
			t.Fatalf("%s: %v\nat %s\n%s", name, err, loc, html)
		}
	}

	// Sign in with the one-time password; it must be replaced first.
	step("login page", chromedp.WaitVisible(chromedp.CSS("#login")))
	checkAxe(t, ctx, string(axeJS), "login")
	// The first Tab reaches the skip link: keyboard users can jump past navigation.
	step("skip link", chromedp.KeyEvent("\t"))
	if focused, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.className`)); focused != "skip" {
		t.Errorf("first Tab focused %q, want the skip link", focused)
	}
	step("sign in",
		chromedp.SendKeys(chromedp.CSS("#login"), "admin"),
		chromedp.SendKeys(chromedp.CSS("#password"), s.adminPassword),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#new")),
	)
	checkAxe(t, ctx, string(axeJS), "password")
	step("replace password",
		chromedp.SendKeys(chromedp.CSS("#current"), s.adminPassword),
		chromedp.SendKeys(chromedp.CSS("#new"), "lantern meadow copper 7"),
		chromedp.SendKeys(chromedp.CSS("#confirm"), "lantern meadow copper 7"),
		chromedp.Submit(chromedp.CSS("#confirm")),
		chromedp.WaitVisible(chromedp.CSS("form.filters")),
	)
	checkAxe(t, ctx, string(axeJS), "recordings")

	// Search by trailing digits, as staff do from a number on a note.
	step("search",
		chromedp.SendKeys(chromedp.CSS("#number"), "7183 8750"),
		chromedp.Submit(chromedp.CSS("#number")),
		waitJS(`location.search.includes("number=") && document.readyState === "complete"`),
		chromedp.WaitVisible(chromedp.CSS("table.results")),
	)
	count, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(".count")))
	if !strings.Contains(count, "1 recording found") {
		t.Errorf("search result count = %q, want 1 recording", count)
	}
	checkAxe(t, ctx, string(axeJS), "search results")
	// Nothing matches another number.
	step("search miss",
		chromedp.Navigate(s.url+"/recordings?number=999999"),
		chromedp.WaitVisible(chromedp.CSS(".count")),
	)
	if count, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(".count"))); !strings.Contains(count, "0 recordings") {
		t.Errorf("search for another number = %q, want 0 recordings", count)
	}

	// Open the recording and play it.
	step("open recording",
		chromedp.Navigate(s.url+"/recordings?number=7183+8750"),
		chromedp.Click(chromedp.CSS("table.results a")),
		chromedp.WaitVisible(chromedp.CSS("#player")),
	)
	checkAxe(t, ctx, string(axeJS), "recording")
	if cl, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#player").getAttribute("controlslist")`)); !strings.Contains(cl, "nodownload") {
		t.Errorf("player controlslist = %q, want nodownload", cl)
	}
	step("play",
		discard(chromedp.Evaluate[bool](`document.querySelector("#player").play().then(() => true)`, chromedp.EvalAwaitPromise)),
	)
	step("playing", discard(chromedp.Poll[bool](`document.querySelector("#player").currentTime > 0.3`, chromedp.WithPollingTimeout(20*time.Second))))
	dur, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.querySelector("#player").duration`))
	if err != nil || dur < 7.9 || dur > 8.1 {
		t.Errorf("player duration = %v (%v), want 8 s", dur, err)
	}
	// Seek near the end: the browser fetches a Range and playback continues there.
	step("seek", discard(chromedp.Evaluate[float64](`document.querySelector("#player").currentTime = 6`)))
	step("seeked", discard(chromedp.Poll[bool](`(p => !p.seeking && p.currentTime >= 6 && p.readyState >= 2)(document.querySelector("#player"))`, chromedp.WithPollingTimeout(20*time.Second))))
	if errCode, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`(e => e ? e.code : 0)(document.querySelector("#player").error)`)); errCode != 0 {
		t.Errorf("player error code %d", errCode)
	}

	// The academies page, as an administrator.
	step("academies", chromedp.Navigate(s.url+"/academies"), chromedp.WaitVisible(chromedp.CSS("#slug")))
	checkAxe(t, ctx, string(axeJS), "academies")
	step("add academy",
		chromedp.SendKeys(chromedp.CSS("#slug"), "oakfield"),
		chromedp.SendKeys(chromedp.CSS("#name"), "Oakfield Primary"),
		chromedp.SendKeys(chromedp.CSS("#numbers"), "01632 960000-01632 960099"),
		chromedp.SendKeys(chromedp.CSS("#extensions"), "2000-2099"),
		chromedp.Submit(chromedp.CSS("#slug")),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/academies/oakfield/edit"]`)),
	)
	step("edit academy", chromedp.Navigate(s.url+"/academies/oakfield/edit"), chromedp.WaitVisible(chromedp.CSS("#name")))
	checkAxe(t, ctx, string(axeJS), "academy edit")

	// An error page.
	step("not found", chromedp.Navigate(s.url+"/recordings/00000000-0000-0000-0000-000000000000"), chromedp.WaitVisible(chromedp.CSS("main")))
	checkAxe(t, ctx, string(axeJS), "error page")

	// Sign out ends the session.
	step("sign out",
		chromedp.Navigate(s.url+"/recordings"),
		chromedp.Click(chromedp.CSS("form.signout button")),
		chromedp.WaitVisible(chromedp.CSS("#login")),
	)

	// The data-protection lead reads the audit trail: the admin's play is there.
	out, err := exec.Command(s.bin, "user", "add", "--data", s.data, "--role", "dpo", "--name", "Data Protection Lead", "dpo1").CombinedOutput()
	if err != nil {
		t.Fatalf("user add: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`\n\s+(\S+-\S+-\S+-\S+)\n`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("user add printed no one-time password:\n%s", out)
	}
	step("dpo sign in",
		chromedp.SendKeys(chromedp.CSS("#login"), "dpo1"),
		chromedp.SendKeys(chromedp.CSS("#password"), string(m[1])),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#new")),
		chromedp.SendKeys(chromedp.CSS("#current"), string(m[1])),
		chromedp.SendKeys(chromedp.CSS("#new"), "harbour violet quill 9"),
		chromedp.SendKeys(chromedp.CSS("#confirm"), "harbour violet quill 9"),
		chromedp.Submit(chromedp.CSS("#confirm")),
		chromedp.WaitVisible(chromedp.CSS("form.filters")),
	)
	step("audit page",
		chromedp.Click(chromedp.CSS(`nav a[href="/audit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#action")),
	)
	checkAxe(t, ctx, string(axeJS), "audit")
	step("audit filter",
		chromedp.SendKeys(chromedp.CSS("#action"), "recording.play"),
		chromedp.Submit(chromedp.CSS("#action")),
		waitJS(`location.search.includes("action=recording.play") && document.readyState === "complete"`),
		chromedp.WaitVisible(chromedp.CSS("table.results")),
	)
	rows, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("table.results tbody")))
	if !strings.Contains(rows, "recording.play") || !strings.Contains(rows, "admin") || strings.Contains(rows, "recording.search") {
		t.Errorf("audit filtered by recording.play shows:\n%s", rows)
	}
	checkAxe(t, ctx, string(axeJS), "audit results")
	step("who accessed",
		chromedp.Click(chromedp.CSS(`table.results a[href^="/recordings/"]`)),
		chromedp.WaitVisible(chromedp.CSS("#access-h")),
	)
	who, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`section[aria-labelledby="access-h"]`)))
	if !strings.Contains(who, "recording.play") || !strings.Contains(who, "recording.view") {
		t.Errorf("who has accessed this recording:\n%s", who)
	}
	checkAxe(t, ctx, string(axeJS), "recording with access history")

	// The trail verifies, from the command line, while the server runs.
	out, err = exec.Command(s.bin, "audit", "verify", "--data", s.data).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "result: ok") {
		t.Errorf("audit verify: %v\n%s", err, out)
	}
}

// discard runs an action for its effect only.
func discard[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := a(ctx, t)
		return chromedp.Void{}, err
	}
}

// waitJS polls a predicate, tolerating the page navigating under it (which
// makes chromedp.Poll fail).
func waitJS(expr string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		for {
			ok, err := chromedp.Evaluate[bool](expr)(ctx, t)
			if err == nil && ok {
				return chromedp.Void{}, nil
			}
			select {
			case <-ctx.Done():
				return chromedp.Void{}, fmt.Errorf("waiting for %s: %w", expr, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}
