// Package e2e drives the real callvault binary with headless Chromium: sign
// in, replace the one-time password, search, open a recording, change
// retention through its preview, place a legal hold, play and seek, and run
// axe-core on every page (WCAG 2.2 AA; serious or critical findings fail the
// test).
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
	"github.com/pquerna/otp/totp"

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
	cmd := exec.Command(bin, "serve", "--data", data, "--http", addr, "--sip", "off")
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
	s.importCallAt(t, ref, time.Date(2026, 11, 20, 10, 15, 0, 0, time.UTC), "020 7183 8750", d)
}

// importCallAt imports a call that started at started, from number to
// extension 2001.
func (s *server) importCallAt(t *testing.T, ref string, started time.Time, number string, d time.Duration) {
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
	meta := fmt.Sprintf(`{"source_ref":%q,"started_at":%q,"direction":"inbound","participants":[{"number":%q,"name":"A parent","side":"external"},{"extension":"2001","name":"Reception","side":"staff"}]}`,
		ref, started.UTC().Format(time.RFC3339), number)
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
	if out, err := exec.Command(s.bin, "academy", "add", "--data", s.data, "--name", "Oakfield Primary", "--extensions", "2000-2099", "oakfield").CombinedOutput(); err != nil {
		t.Fatalf("academy add: %v\n%s", err, out)
	}
	s.importCall(t, "e2e-call-1", 8*time.Second)
	// A call from almost a year ago: under the 12-month default it is deleted in five days.
	s.importCallAt(t, "e2e-call-due", time.Now().AddDate(-1, 0, 5), "020 7946 0321", 2*time.Second)

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

	axe := func(page string) { t.Helper(); checkAxe(t, ctx, string(axeJS), page) }
	text := func(sel string) string {
		v, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		return v
	}
	// firstSignIn takes a new account from its one-time password through a
	// new password and TOTP enrolment (the code computed from the key the
	// page shows, as an authenticator app would), checking each page.
	firstSignIn := func(login, otp, password string, checkPages bool) {
		t.Helper()
		step("sign in "+login,
			chromedp.Navigate(s.url+"/login"),
			chromedp.WaitVisible(chromedp.CSS("#login")),
			chromedp.SendKeys(chromedp.CSS("#login"), login),
			chromedp.SendKeys(chromedp.CSS("#password"), otp),
			chromedp.Submit(chromedp.CSS("#password")),
			chromedp.WaitVisible(chromedp.CSS("#new")),
		)
		if checkPages {
			axe("password")
		}
		step("replace password "+login,
			chromedp.SendKeys(chromedp.CSS("#current"), otp),
			chromedp.SendKeys(chromedp.CSS("#new"), password),
			chromedp.SendKeys(chromedp.CSS("#confirm"), password),
			chromedp.Submit(chromedp.CSS("#confirm")),
			chromedp.WaitVisible(chromedp.CSS("#totp-key")),
		)
		if checkPages {
			axe("mfa enrolment")
		}
		code, err := totp.GenerateCode(strings.ReplaceAll(text("#totp-key"), " ", ""), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		step("enrol "+login,
			chromedp.SendKeys(chromedp.CSS("#code"), code),
			chromedp.Submit(chromedp.CSS("#code")),
			chromedp.WaitVisible(chromedp.CSS("#recovery-codes")),
		)
		if checkPages {
			axe("recovery codes")
		}
		step("continue "+login, chromedp.Click(chromedp.CSS("main a.button")), waitJS(`document.readyState === "complete" && !location.pathname.startsWith("/mfa")`))
	}
	// tabTo presses Tab until the element matching sel has the focus, as a
	// keyboard user would, and fails if it never gets there.
	tabTo := func(name, sel string) {
		t.Helper()
		for range 80 {
			if ok, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`!!document.activeElement && document.activeElement.matches(%q)`, sel))); ok {
				return
			}
			step(name+": Tab", chromedp.KeyEvent("\t"))
		}
		t.Fatalf("%s: %s cannot be reached with the Tab key", name, sel)
	}
	signOut := func() {
		t.Helper()
		step("sign out", chromedp.Navigate(s.url+"/grants"), chromedp.Click(chromedp.CSS("form.signout button")), chromedp.WaitVisible(chromedp.CSS("#login")))
	}
	newUser := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(s.bin, append([]string{"user", "add", "--data", s.data}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("user add: %v\n%s", err, out)
		}
		m := regexp.MustCompile(`\n\s+(\S+-\S+-\S+-\S+)\n`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("user add printed no one-time password:\n%s", out)
		}
		return string(m[1])
	}

	// The administrator: one-time password, new password, second factor.
	step("login page", chromedp.WaitVisible(chromedp.CSS("#login")))
	axe("login")
	// The first Tab reaches the skip link: keyboard users can jump past navigation.
	step("skip link", chromedp.KeyEvent("\t"))
	if focused, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.className`)); focused != "skip" {
		t.Errorf("first Tab focused %q, want the skip link", focused)
	}
	firstSignIn("admin", s.adminPassword, "lantern meadow copper 7", true)
	step("recordings", chromedp.Navigate(s.url+"/recordings"), chromedp.WaitVisible(chromedp.CSS("form.filters")))
	axe("recordings")

	// Search by trailing digits, as staff do from a number on a note.
	step("search",
		chromedp.SendKeys(chromedp.CSS("#number"), "7183 8750"),
		chromedp.Submit(chromedp.CSS("#number")),
		waitJS(`location.search.includes("number=") && document.readyState === "complete"`),
		chromedp.WaitVisible(chromedp.CSS("table.results")),
	)
	if count := text(".count"); !strings.Contains(count, "1 recording found") {
		t.Errorf("search result count = %q, want 1 recording", count)
	}
	axe("search results")
	step("search miss", chromedp.Navigate(s.url+"/recordings?number=999999"), chromedp.WaitVisible(chromedp.CSS(".count")))
	if count := text(".count"); !strings.Contains(count, "0 recordings") {
		t.Errorf("search for another number = %q, want 0 recordings", count)
	}
	// An administrator cannot play anything without a grant.
	step("open recording as admin",
		chromedp.Navigate(s.url+"/recordings?number=7183+8750"),
		chromedp.Click(chromedp.CSS("table.results a")),
		chromedp.WaitVisible(chromedp.CSS("#details-h")),
	)
	recURL, _ := chromedp.Run(ctx, chromedp.Location())
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("audio").length`)); n != 0 || !strings.Contains(text("main"), "You cannot play") {
		t.Errorf("the admin sees a player (%d) without a grant", n)
	}
	axe("recording without a grant")

	// Academies, as an administrator.
	step("academies", chromedp.Navigate(s.url+"/academies"), chromedp.WaitVisible(chromedp.CSS("#slug")))
	axe("academies")
	step("add academy",
		chromedp.SendKeys(chromedp.CSS("#slug"), "riverside"),
		chromedp.SendKeys(chromedp.CSS("#name"), "Riverside Secondary"),
		chromedp.SendKeys(chromedp.CSS("#numbers"), "01632 961000-01632 961099"),
		chromedp.SendKeys(chromedp.CSS("#extensions"), "3000-3099"),
		chromedp.Submit(chromedp.CSS("#slug")),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/academies/riverside/edit"]`)),
	)
	step("edit academy", chromedp.Navigate(s.url+"/academies/riverside/edit"), chromedp.WaitVisible(chromedp.CSS("#name")))
	axe("academy edit")
	// Retention, as an administrator: what is due, then a rule changed
	// through its preview, confirmed from the keyboard.
	step("upcoming deletions", chromedp.Navigate(s.url+"/retention/upcoming"), chromedp.WaitVisible(chromedp.CSS("#upcoming-total")))
	if got := text("#upcoming-total"); !strings.Contains(got, "1 recording will be deleted") {
		t.Errorf("upcoming deletions say %q, want the call due in five days", got)
	}
	axe("upcoming deletions")
	step("retention", chromedp.Navigate(s.url+"/retention"), chromedp.WaitVisible(chromedp.CSS("#months")))
	if got := text("main table"); !strings.Contains(got, "Trust default") || !strings.Contains(got, "12 months") {
		t.Errorf("retention rules:\n%s", got)
	}
	axe("retention")
	// A value out of range (the browser's own check bypassed, as a script
	// would) is refused at its field.
	step("retention error",
		chromedp.SetValue(chromedp.CSS("#months"), "0"),
		chromedp.Submit(chromedp.CSS("#months")),
		chromedp.WaitVisible(chromedp.CSS("#months-error")),
	)
	axe("retention with an error")
	step("retention preview",
		chromedp.SetValue(chromedp.CSS("#academy"), "oakfield"),
		chromedp.SetValue(chromedp.CSS("#months"), "24"),
		chromedp.Submit(chromedp.CSS("#months")),
		chromedp.WaitVisible(chromedp.CSS("#impact")),
	)
	if got := text("#impact-moves"); !strings.Contains(got, "2 recordings' deletion dates: 0 earlier, 2 later") {
		t.Errorf("preview says %q", got)
	}
	axe("retention preview")
	tabTo("retention preview", "#confirm")
	step("confirm by keyboard", chromedp.KeyEvent("\r"), waitJS(`location.search.includes("saved=rule") && document.readyState === "complete"`))
	if got := text("main"); !strings.Contains(got, "2 recordings' deletion dates moved") || !strings.Contains(got, "24 months") {
		t.Errorf("after confirming, the retention page says:\n%s", got)
	}
	step("not found", chromedp.Navigate(s.url+"/recordings/00000000-0000-0000-0000-000000000000"), chromedp.WaitVisible(chromedp.CSS("main")))
	axe("error page")
	signOut()

	// The principal of Oakfield asks for a named listener to hear the call.
	principalOTP := newUser("--role", "principal", "--academy", "oakfield", "--name", "Oakfield Principal", "principal1")
	ceoOTP := newUser("--role", "ceo", "--name", "Chief Executive", "ceo1")
	listenerOTP := newUser("--role", "listener", "--name", "Pastoral Lead", "listener1")
	firstSignIn("principal1", principalOTP, "acorn ladder pebble 4", false)
	step("request form",
		chromedp.Navigate(recURL),
		chromedp.Click(chromedp.CSS(`a[href^="/requests/new"]`)),
		chromedp.WaitVisible(chromedp.CSS("#justification")),
	)
	axe("request form")
	step("send request",
		chromedp.SetValue(chromedp.CSS("#purpose"), "complaint"),
		chromedp.SendKeys(chromedp.CSS("#justification"), "A parent complained about how this call was handled."),
		chromedp.SendKeys(chromedp.CSS("#listeners"), "listener1"),
		// One minute, so the test sees the grant expire (the form offers hours and days).
		discard(chromedp.Evaluate[bool](`(s => { s.add(new Option("1 minute", "1")); s.value = "1"; return true })(document.querySelector("#duration"))`)),
		chromedp.Submit(chromedp.CSS("#justification")),
		chromedp.WaitVisible(chromedp.CSS("#request-state")),
	)
	if st := text("#request-state"); !strings.Contains(st, "pending") {
		t.Errorf("new request state %q, want pending", st)
	}
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#decide-h").length`)); n != 0 {
		t.Error("the principal may decide their own request")
	}
	axe("request")
	signOut()

	// The CEO approves it.
	firstSignIn("ceo1", ceoOTP, "granite willow spark 8", false)
	step("awaiting decision", chromedp.Navigate(s.url+"/requests"), chromedp.WaitVisible(chromedp.CSS("#await-h")))
	axe("requests")
	step("open request", chromedp.Click(chromedp.CSS(`a[href^="/requests/"]`)), chromedp.WaitVisible(chromedp.CSS("#decide-h")))
	step("approve",
		chromedp.SendKeys(chromedp.CSS("#note"), "Necessary to answer the complaint."),
		chromedp.Click(chromedp.CSS(`button[value="approve"]`)),
		waitJS(`document.readyState === "complete" && !!document.querySelector("#request-state") && document.querySelector("#request-state").textContent.includes("approved")`),
	)
	approvedAt := time.Now()
	// The CEO places a legal hold on the call from its page.
	step("hold form",
		chromedp.Navigate(recURL),
		chromedp.Click(chromedp.CSS(`a[href^="/holds/new"]`)),
		chromedp.WaitVisible(chromedp.CSS("#title")),
	)
	axe("hold form")
	step("place hold",
		chromedp.SetValue(chromedp.CSS("#reason"), "complaint"),
		chromedp.SendKeys(chromedp.CSS("#title"), "A parent's complaint about this call"),
		chromedp.SendKeys(chromedp.CSS("#reference"), "C-2026-17"),
		chromedp.Submit(chromedp.CSS("#title")),
		chromedp.WaitVisible(chromedp.CSS("#hold-state")),
	)
	if got := text("#held-count"); !strings.Contains(got, "keeps 1 recording") {
		t.Errorf("new hold: %q", got)
	}
	axe("hold")
	step("holds", chromedp.Navigate(s.url+"/holds"), chromedp.WaitVisible(chromedp.CSS("#holds-count")))
	if got := text("#holds-count"); !strings.Contains(got, "1 active hold") {
		t.Errorf("holds list: %q", got)
	}
	axe("holds")
	tabTo("holds", `main table a[href^="/holds/"]`)
	step("open hold by keyboard", chromedp.KeyEvent("\r"), chromedp.WaitVisible(chromedp.CSS("#release-h")))
	step("recording with a hold", chromedp.Navigate(recURL), chromedp.WaitVisible(chromedp.CSS("#retention-h")))
	if got := text("#recording-holds"); !strings.Contains(got, "A parent's complaint about this call") {
		t.Errorf("the recording's page does not name its hold: %q", got)
	}
	axe("recording with a hold")
	step("grants", chromedp.Navigate(s.url+"/grants"), chromedp.WaitVisible(chromedp.CSS("main table")))
	if g := text("main table"); !strings.Contains(g, "listener1") || !strings.Contains(g, "left") {
		t.Errorf("grants list:\n%s", g)
	}
	axe("grants")
	signOut()

	// The listener, with their second factor, plays it.
	firstSignIn("listener1", listenerOTP, "meadow harbour flint 3", false)
	step("shared with me", chromedp.Navigate(s.url+"/shared"), chromedp.WaitVisible(chromedp.CSS("main table")))
	axe("shared with me")
	step("open shared recording", chromedp.Click(chromedp.CSS("main table a")), chromedp.WaitVisible(chromedp.CSS("#player")))
	axe("recording with a grant")
	if cl, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#player").getAttribute("controlslist")`)); !strings.Contains(cl, "nodownload") {
		t.Errorf("player controlslist = %q, want nodownload", cl)
	}
	audioSrc, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#player").src`))
	step("play", discard(chromedp.Evaluate[bool](`document.querySelector("#player").play().then(() => true)`, chromedp.EvalAwaitPromise)))
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
	fetchStatus := func(u string) int {
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf(`fetch(%q, {headers: {Range: "bytes=0-99"}}).then(r => r.status)`, u), chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if st := fetchStatus(audioSrc); st != 206 {
		t.Errorf("the listener's audio URL during the grant: %d, want 206", st)
	}

	// The grant expires by itself: the same listener is refused afterwards.
	time.Sleep(time.Until(approvedAt.Add(62 * time.Second)))
	// Refused: the recording is no longer even visible to the listener.
	if st := fetchStatus(audioSrc); st != 403 && st != 404 {
		t.Errorf("the listener's audio URL after the grant expired: %d, want 403 or 404", st)
	}
	step("after expiry", chromedp.Navigate(recURL), chromedp.WaitVisible(chromedp.CSS("main")))
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("audio").length`)); n != 0 {
		t.Error("the recording still shows a player after the grant expired")
	}
	signOut()

	// The data-protection lead reads the audit trail: the whole story is there.
	dpoOTP := newUser("--role", "dpo", "--name", "Data Protection Lead", "dpo1")
	firstSignIn("dpo1", dpoOTP, "harbour violet quill 9", false)
	step("audit page", chromedp.Navigate(s.url+"/audit"), chromedp.WaitVisible(chromedp.CSS("#action")))
	axe("audit")
	step("audit filter",
		chromedp.SendKeys(chromedp.CSS("#action"), "recording.play"),
		chromedp.Submit(chromedp.CSS("#action")),
		waitJS(`location.search.includes("action=recording.play") && document.readyState === "complete"`),
		chromedp.WaitVisible(chromedp.CSS("table.results")),
	)
	rows := text("table.results tbody")
	if !strings.Contains(rows, "recording.play") || !strings.Contains(rows, "listener1") || !strings.Contains(rows, "denied") || strings.Contains(rows, "recording.search") {
		t.Errorf("audit filtered by recording.play shows:\n%s", rows)
	}
	axe("audit results")
	step("who accessed",
		chromedp.Click(chromedp.CSS(`table.results a[href^="/recordings/"]`)),
		chromedp.WaitVisible(chromedp.CSS("#access-h")),
	)
	who := text(`section[aria-labelledby="access-h"]`)
	for _, want := range []string{"recording.play", "recording.view", "recording.ingest", "denied"} {
		if !strings.Contains(who, want) {
			t.Errorf("who has accessed this recording lacks %s:\n%s", want, who)
		}
	}
	axe("recording with access history")

	// The trail verifies, from the command line, while the server runs.
	out, err := exec.Command(s.bin, "audit", "verify", "--data", s.data).CombinedOutput()
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
