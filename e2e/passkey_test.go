package e2e

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"
)

// TestPasskeyJourney registers a passkey with Chromium's virtual
// authenticator after a TOTP sign-in, signs out, and signs in again with
// the password and the passkey alone. The browser uses http://localhost:
// WebAuthn needs a domain as relying-party ID, and the server takes a
// loopback --http address as "localhost".
func TestPasskeyJourney(t *testing.T) {
	chromium := chromiumPath()
	need(t, "Chromium", "apt-get install chromium (see .ci/run)", chromium != "")
	axeJS, err := os.ReadFile("node_modules/axe-core/axe.min.js")
	need(t, "axe-core", "run `npm ci` in e2e/ (see .ci/run)", err == nil)

	s := startServer(t)
	base := strings.Replace(s.url, "127.0.0.1", "localhost", 1)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/login")); err != nil {
		t.Fatal(err)
	}
	// A platform authenticator with user verification (a fingerprint
	// reader that always recognises the user).
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("WebAuthn.enable: %v", err)
	}
	if _, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Transport: webauthn.AuthenticatorTransportInternal,
		HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
	}}); err != nil {
		t.Fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
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
	text := func(sel string) string {
		v, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		return v
	}
	const password = "lantern meadow copper 7"

	// First sign-in: one-time password, new password, TOTP.
	step("sign in",
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.SendKeys(chromedp.CSS("#login"), "admin"),
		chromedp.SendKeys(chromedp.CSS("#password"), s.adminPassword),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#new")),
	)
	step("replace password",
		chromedp.SendKeys(chromedp.CSS("#current"), s.adminPassword),
		chromedp.SendKeys(chromedp.CSS("#new"), password),
		chromedp.SendKeys(chromedp.CSS("#confirm"), password),
		chromedp.Submit(chromedp.CSS("#confirm")),
		chromedp.WaitVisible(chromedp.CSS("#totp-key")),
	)
	code, err := totp.GenerateCode(strings.ReplaceAll(text("#totp-key"), " ", ""), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	step("enrol TOTP",
		chromedp.SendKeys(chromedp.CSS("#code"), code),
		chromedp.Submit(chromedp.CSS("#code")),
		chromedp.WaitVisible(chromedp.CSS("#recovery-codes")),
	)

	// Register a passkey.
	step("passkeys page", chromedp.Navigate(base+"/mfa/passkeys"), chromedp.WaitVisible(chromedp.CSS("#passkey-name")))
	checkAxe(t, ctx, string(axeJS), "passkeys (none)")
	step("add passkey",
		chromedp.SendKeys(chromedp.CSS("#passkey-name"), "Virtual fingerprint"),
		chromedp.Click(chromedp.CSS("#passkey-add")),
		waitJS(`location.search.includes("added=1") && document.readyState === "complete"`),
		chromedp.WaitVisible(chromedp.CSS("main table")),
	)
	if list := text("main table"); !strings.Contains(list, "Virtual fingerprint") || !strings.Contains(list, "Not yet") {
		t.Errorf("passkey list after adding:\n%s", list)
	}
	checkAxe(t, ctx, string(axeJS), "passkeys (one added)")
	step("sign out", chromedp.Navigate(base+"/grants"), chromedp.Click(chromedp.CSS("form.signout button")), chromedp.WaitVisible(chromedp.CSS("#login")))

	// Sign in again: the password, then the passkey; no code.
	step("sign in again",
		chromedp.SendKeys(chromedp.CSS("#login"), "admin"),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#passkey-use")),
	)
	checkAxe(t, ctx, string(axeJS), "second step with passkey")
	step("use passkey",
		chromedp.Click(chromedp.CSS("#passkey-use")),
		waitJS(`document.readyState === "complete" && !location.pathname.startsWith("/mfa") && !location.pathname.startsWith("/login")`),
	)
	step("signed in", chromedp.Navigate(base+"/mfa/passkeys"), chromedp.WaitVisible(chromedp.CSS("main table")))
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasSuffix(loc, "/mfa/passkeys") {
		t.Errorf("after the passkey, /mfa/passkeys went to %s", loc)
	}
	if list := text("main table"); strings.Contains(list, "Not yet") {
		t.Errorf("the passkey's last use was not recorded:\n%s", list)
	}
}
