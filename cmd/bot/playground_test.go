package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium returns the path of a Chromium to drive, or skips the test
// without one (fails in CI, where scripts/test.sh installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no Chromium in CI: scripts/test.sh installs Debian's chromium")
	}
	t.Skip("no Chromium here (apt-get install chromium, or run ./scripts/test.sh)")
	return ""
}

// browser is a headless Chromium with a fresh profile, driven through the
// DevTools protocol.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting %s: %v", chromium(t), err)
	}
	return ctx
}

// screen opens the screen at query and returns the page's visible text
// once the pane shows want (polling, as a person waits for the bot).
func screen(t *testing.T, ctx context.Context, url, want string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var text string
	// A form posted just before may still be loading its answer, which
	// aborts a navigation: try again.
	for try := 0; ; try++ {
		err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("#banner")))
		if err == nil {
			break
		}
		if try == 5 || !strings.Contains(err.Error(), "ERR_ABORTED") {
			t.Fatalf("%s: %v", url, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for {
		var err error
		if text, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`)); err != nil {
			t.Fatalf("%s: reading the page: %v\n%s", url, err, text)
		}
		if strings.Contains(text, want) {
			return text
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never showed %q; it shows:\n%s", url, want, text)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// submit clicks the submit button sel on the open screen and waits for the
// page the form's answer loads, so that the form is never cut short.
func submit(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(sel)),
		chromedp.Evaluate[chromedp.Void](`window.beforeSubmit = true; undefined`), chromedp.Click(chromedp.CSS(sel))); err != nil {
		t.Fatalf("clicking %s: %v", sel, err)
	}
	for {
		loaded, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.beforeSubmit === undefined && document.readyState === "complete"`))
		if err == nil && loaded {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the answer to %s never loaded: %v", sel, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// clickButton clicks the button of a Block Kit action on the open screen.
func clickButton(t *testing.T, ctx context.Context, action string) {
	t.Helper()
	submit(t, ctx, `button[data-action="`+action+`"]`)
}

// TestPlaygroundInABrowser drives the playground in a real browser through
// a whole flow: Alice types the command, Bob approves, Alice reveals. The
// password is on Alice's screen only: not on any other person's, not in
// the audit channel, not on the directory's screen, not in the bot's log;
// the audit thread tells the whole story; every screen says that nothing
// real is touched. Then the directory is told to refuse, and Dave's reset
// fails with the words for that.
func TestPlaygroundInABrowser(t *testing.T) {
	ctx := browser(t)
	var logs syncBuffer
	pg, err := startPlayground(t.Context(), playgroundOptions{Addr: "127.0.0.1:0", Log: &logs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pg.stop(); err != nil {
			t.Errorf("stopping the playground: %v", err)
		}
	})
	const banner = "Playground: nothing real is touched."

	// Alice asks.
	screen(t, ctx, pg.URL+"?as=UALICE", "Nothing here yet")
	submit(t, ctx, "#send")
	alice := screen(t, ctx, pg.URL+"?as=UALICE", "@Bob Jones")
	for _, want := range []string{"/reset-password", "alice", "Only visible to you"} {
		if !strings.Contains(alice, want) {
			t.Errorf("Alice's screen after the command lacks %q:\n%s", want, alice)
		}
	}

	// Bob approves.
	screen(t, ctx, pg.URL+"?as=UBOB", "Approve")
	clickButton(t, ctx, "approve")
	screen(t, ctx, pg.URL+"?as=UBOB", "Approved by @Bob Jones")

	// Alice reveals.
	screen(t, ctx, pg.URL+"?as=UALICE", "Reveal my temporary password")
	clickButton(t, ctx, "reveal")
	alice = screen(t, ctx, pg.URL+"?as=UALICE", "Your temporary password for alice is:")
	shown, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(".msg.ephemeral pre")))
	if err != nil {
		t.Fatal(err)
	}
	set, ok := pg.ds.Password("alice")
	if !ok || strings.TrimSpace(shown) != set || len(set) < 20 {
		t.Fatalf("Alice's screen shows %q, the directory has %q", shown, set)
	}

	// Everyone else, the audit channel and the directory: never the password.
	audit := screen(t, ctx, pg.URL+"?view=audit", "Password reset")
	for _, want := range []string{"requested a reset of alice", "Approved by @Bob Jones", "clicked Reveal", "completed"} {
		if !strings.Contains(audit, want) {
			t.Errorf("the audit channel lacks %q:\n%s", want, audit)
		}
	}
	texts := map[string]string{"Alice": alice, "the audit channel": audit,
		"the directory": screen(t, ctx, pg.URL+"?view=directory", "ResetUserPassword")}
	for _, p := range playPeople[1:] {
		texts[p.RealName] = screen(t, ctx, pg.URL+"?as="+p.ID, banner)
	}
	for who, text := range texts {
		if !strings.Contains(text, banner) {
			t.Errorf("%s's screen does not say that nothing real is touched", who)
		}
		if who != "Alice" && strings.Contains(text, set) {
			t.Errorf("the password is on %s's screen", who)
		}
	}
	if strings.Contains(logs.String(), set) {
		t.Error("the password is in the bot's log")
	}
	// Nor in any page the server sends (the raw HTML, for any screen).
	for _, q := range []string{"?view=audit", "?view=directory", "?as=UBOB", "?as=UCAROL", "?as=UDAVE", "?as=UALICE&tab=home", "?as=UBOB&tab=home"} {
		for _, path := range []string{"", "pane"} {
			resp, err := http.Get(pg.URL + path + q)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			b.ReadFrom(resp.Body)
			resp.Body.Close()
			if strings.Contains(b.String(), set) {
				t.Errorf("the password is in %s%s", path, q)
			}
		}
	}

	// The directory refuses: Dave's reset fails, and Dave reads why.
	screen(t, ctx, pg.URL+"?view=directory", "answers with")
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS("#answer"), "UserDoesNotExistException")); err != nil {
		t.Fatal(err)
	}
	submit(t, ctx, "form.directory button")
	screen(t, ctx, pg.URL+"?view=directory", "every reset: UserDoesNotExistException")
	screen(t, ctx, pg.URL+"?as=UDAVE", "Nothing here yet")
	submit(t, ctx, "#send")
	screen(t, ctx, pg.URL+"?as=UDAVE", "@Carol White")
	screen(t, ctx, pg.URL+"?as=UCAROL", "Approve")
	clickButton(t, ctx, "approve")
	screen(t, ctx, pg.URL+"?as=UDAVE", "Reveal my temporary password")
	clickButton(t, ctx, "reveal")
	dave := screen(t, ctx, pg.URL+"?as=UDAVE", "The directory has no account with your user name")
	if strings.Contains(dave, "Your temporary password") {
		t.Errorf("Dave got a password from a directory that refused:\n%s", dave)
	}
	screen(t, ctx, pg.URL+"?view=audit", "UserDoesNotExistException")
}

// TestPlaygroundListensLocallyOnly: `bot playground` refuses an address
// other machines could reach.
func TestPlaygroundListensLocallyOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:8088", ":8088", "10.1.2.3:8088", "example.com:80"} {
		var out bytes.Buffer
		err := run(t.Context(), []string{"bot", "playground", "--addr", addr}, func(string) string { return "" }, &out)
		if err == nil || !strings.Contains(err.Error(), "bot playground: --addr") || !strings.Contains(err.Error(), "loopback address only") {
			t.Errorf("--addr %s: %v", addr, err)
		}
	}
	var out bytes.Buffer
	err := run(t.Context(), []string{"bot", "playground", "--samba"}, func(string) string { return "" }, &out)
	if err == nil || !strings.Contains(err.Error(), "--samba needs SAMBA_ENV_FILE") {
		t.Errorf("--samba without SAMBA_ENV_FILE: %v", err)
	}
}

// TestPlaygroundWithSamba: with --samba the accounts come from the Samba AD
// of the tests, and its guards answer: a disabled account and a Domain
// Admin are refused, Alice's request goes through.
func TestPlaygroundWithSamba(t *testing.T) {
	path := os.Getenv("SAMBA_ENV_FILE")
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("SAMBA_ENV_FILE is required in CI")
		}
		t.Skip("SAMBA_ENV_FILE is not set")
	}
	var logs syncBuffer
	pg, err := startPlayground(t.Context(), playgroundOptions{Addr: "127.0.0.1:0", SambaEnv: path, Log: &logs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.stop() })
	for who, want := range map[string]string{"UDISABLED": "Your directory account is disabled", "UDADMIN": "in an administrators&#39; group", "UALICE": "I asked"} {
		resp, err := http.PostForm(pg.URL+"command", map[string][]string{"as": {who}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		deadline := time.Now().Add(20 * time.Second)
		for {
			resp, err := http.Get(pg.URL + "pane?as=" + who)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			b.ReadFrom(resp.Body)
			resp.Body.Close()
			if strings.Contains(b.String(), want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s's screen never said %q:\n%s", who, want, b.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// TestPlaygroundHomeAndDenyModal: Bob's Home tab lists Alice's request with
// its buttons; Deny there opens the bot's modal on Bob's screen, the reason
// he types reaches Alice with the denial, and his Home then lists the
// decision. Closing a modal leaves the request as it was.
func TestPlaygroundHomeAndDenyModal(t *testing.T) {
	ctx := browser(t)
	pg, err := startPlayground(t.Context(), playgroundOptions{Addr: "127.0.0.1:0", Log: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.stop() })

	screen(t, ctx, pg.URL+"?as=UALICE", "Nothing here yet")
	submit(t, ctx, "#send")
	screen(t, ctx, pg.URL+"?as=UALICE", "@Bob Jones")

	home := screen(t, ctx, pg.URL+"?as=UBOB&tab=home", "Waiting for your decision (1)")
	if !strings.Contains(home, "Alice Smith") && !strings.Contains(home, "@Alice") {
		t.Errorf("Bob's Home does not name Alice:\n%s", home)
	}
	// Deny, then keep it open: nothing changes.
	clickButton(t, ctx, "deny")
	screen(t, ctx, pg.URL+"?as=UBOB&tab=home", "Deny the request")
	submit(t, ctx, "#modal-close")
	if text := screen(t, ctx, pg.URL+"?as=UBOB&tab=home", "Waiting for your decision"); strings.Contains(text, "Deny the request") {
		t.Errorf("the modal is still open after Keep it open:\n%s", text)
	}
	// Deny with a reason.
	clickButton(t, ctx, "deny")
	screen(t, ctx, pg.URL+"?as=UBOB&tab=home", "Deny the request")
	const reason = "Please call me first: I did not expect this."
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("form.modal textarea"), reason)); err != nil {
		t.Fatal(err)
	}
	submit(t, ctx, "#modal-submit")
	alice := screen(t, ctx, pg.URL+"?as=UALICE", "denied your request")
	if !strings.Contains(alice, reason) {
		t.Errorf("Alice is not shown Bob's reason:\n%s", alice)
	}
	screen(t, ctx, pg.URL+"?as=UBOB&tab=home", "Your recent decisions")
	screen(t, ctx, pg.URL+"?view=audit", reason)
}
