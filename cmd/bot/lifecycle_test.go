package main

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/example/resetbot/internal/slacktest"
	"github.com/example/resetbot/slackapp"
	"github.com/example/resetbot/workflow"
)

// TestRefusedAppTokenExits: Slack refusing the app token (revoked, rotated)
// ends the process with a non-zero status and one line that says which
// token and what to do, and never shows the token.
func TestRefusedAppTokenExits(t *testing.T) {
	w := newWorld(t)
	w.vars["SLACK_APP_TOKEN"] = "xapp-1-revoked-token"
	cmd := exec.Command(binary(t))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range w.vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("the bot exited 0 with a refused app token:\n%s", out.String())
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("the bot still runs 10s after Slack refused its app token:\n%s", out.String())
	}
	t.Logf("exited after %v", time.Since(start))
	if !strings.Contains(out.String(), "Slack refused SLACK_APP_TOKEN (invalid_auth): set SLACK_APP_TOKEN to an app-level token") {
		t.Errorf("no clear line about the app token:\n%s", out.String())
	}
	if strings.Contains(out.String(), "revoked-token") {
		t.Errorf("the token was printed:\n%s", out.String())
	}
}

// TestSIGTERMMidFlow: SIGTERM during a reset that hangs in the directory
// ends the process within SHUTDOWN_TIMEOUT; the next start takes the reset
// over when its lease ends, and the employee gets a password.
func TestSIGTERMMidFlow(t *testing.T) {
	w := newWorld(t)
	w.vars["SHUTDOWN_TIMEOUT"] = "2s"
	w.vars["WORK_LEASE"] = "3s"
	p := w.startProcess()
	r, dms := w.request()
	reveal := w.approve(r, dms)
	w.ds.SetDelay(time.Minute) // the directory hangs
	w.clickAcked(employee, slackapp.ActionReveal, r.ID, reveal)
	w.wait("the reset to start", func() bool { return len(w.ds.Calls()) > 0 })

	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if took := time.Since(start); took > 4*time.Second {
			t.Errorf("SIGTERM took %v with SHUTDOWN_TIMEOUT 2s", took)
		}
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the bot did not stop within 10s of SIGTERM:\n%s", p.logs.String())
	}
	if !strings.Contains(p.logs.String(), "work still in flight at SHUTDOWN_TIMEOUT") {
		t.Errorf("the bot did not say it left work to the leases:\n%s", p.logs.String())
	}

	w.ds.SetDelay(0)
	w.start()
	w.wait("Reveal offered again after the takeover", func() bool {
		got := w.get(r.ID)
		return got.Status == workflow.StatusApproved && got.LastEvent().Kind == workflow.EventInterrupted && w.settled(got)
	})
	w.clickAcked(employee, slackapp.ActionReveal, r.ID, w.message(reveal))
	w.waitStatus(r.ID, workflow.StatusCompleted)
	if len(w.passwordMessages()) != 1 {
		t.Fatalf("%d password messages", len(w.passwordMessages()))
	}
}

// TestHandlerPanic: a panic in a handler of the bot binary is recovered and
// logged with the envelope; the person is answered and the process serves
// on.
func TestHandlerPanic(t *testing.T) {
	w := newWorld(t)
	w.vars["RESETBOT_TEST_PANIC_TEXT"] = "boom"
	bot := w.startProcess()
	if ans := w.command(employee, "boom"); !strings.Contains(ans, "Something went wrong") {
		t.Fatalf("answer to the panicking command: %s", ans)
	}
	w.wait("the panic in the log", func() bool { return strings.Contains(bot.logs.String(), "a handler panicked; the bot serves on") })
	if bot.cmd.ProcessState != nil {
		t.Fatal("the bot process ended")
	}
	r, dms := w.request()
	w.clickAcked(approver1, slackapp.ActionApprove, r.ID, dms[approver1])
	w.waitStatus(r.ID, workflow.StatusApproved)
	if m := w.buttonMessage(slacktest.DMChannel(employee), slackapp.ActionReveal); m.TS == "" {
		t.Fatal("no Reveal DM")
	}
}
