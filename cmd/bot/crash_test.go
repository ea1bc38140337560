package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/example/resetbot/delivery"
	"github.com/example/resetbot/internal/slacktest"
	"github.com/example/resetbot/slackapp"
	"github.com/example/resetbot/workflow"
)

var (
	buildOnce sync.Once
	botBinary string
	buildErr  error
)

// TestMain removes the bot binary the process tests build.
func TestMain(m *testing.M) {
	code := m.Run()
	if botBinary != "" {
		os.RemoveAll(filepath.Dir(botBinary))
	}
	os.Exit(code)
}

// binary builds the bot once per test run, for tests that kill a process.
// It is built with the test hooks (testhooks.go), which the production
// build does not have.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "resetbot-bin-")
		if err != nil {
			buildErr = err
			return
		}
		botBinary = filepath.Join(dir, "bot")
		if out, err := exec.Command("go", "build", "-tags", "resetbot_testhooks", "-o", botBinary, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return botBinary
}

// procBot is a bot running as its own process.
type procBot struct {
	cmd  *exec.Cmd
	logs *syncBuffer
}

// startProcess runs the bot binary with the world's settings and waits
// until it is connected.
func (w *world) startProcess() *procBot {
	w.t.Helper()
	cmd := exec.Command(binary(w.t))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + w.t.TempDir()}
	for k, v := range w.vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &procBot{cmd: cmd, logs: &syncBuffer{}}
	w.bots = append(w.bots, p.logs)
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	before := w.slack.TotalConnections()
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(p.kill)
	w.wait("the bot process to connect", func() bool {
		return w.slack.TotalConnections() > before && strings.Contains(p.logs.String(), "connected to Slack")
	})
	return p
}

// kill ends the process with SIGKILL: no cleanup, like a crashed node.
func (p *procBot) kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
}

// TestReplicaKilledAfterApproval: the replica that recorded the approval
// dies before it told the employee; another replica takes over the work
// when its lease ends, and the flow completes.
func TestReplicaKilledAfterApproval(t *testing.T) {
	w := newWorld(t)
	w.vars["WORK_LEASE"] = "2s"
	a := w.startProcess()
	r, dms := w.request()
	// Slack holds the bot's next DM back for 5 s: the approval is saved,
	// the employee not yet told. (The replica that takes over honours the
	// same Retry-After, which the first one shared through Redis.)
	w.slack.RateLimit("chat.postMessage", 2, 5*time.Second) // the Reveal DM and the audit reply
	w.clickAcked(approver1, slackapp.ActionApprove, r.ID, dms[approver1])
	w.wait("the bot to be stuck telling the employee", func() bool {
		for _, c := range w.slack.Calls("chat.postMessage") {
			if c.Status == 429 && c.Params.Get("channel") == employee {
				return true
			}
		}
		return false
	})
	a.kill()
	if got := w.get(r.ID); got.Status != workflow.StatusApproved || !w.laneDue(delivery.People(r.ID)) {
		t.Fatalf("before the takeover: %s, the employee's lane due %v", got.Status, w.laneDue(delivery.People(r.ID)))
	}
	w.start()
	reveal := w.buttonMessage(slacktest.DMChannel(employee), slackapp.ActionReveal)
	for _, m := range dms {
		w.wait("the new replica to update the approvers' DMs", func() bool {
			return strings.Contains(blocksText(w.message(m)), "Approved by <@"+approver1+">")
		})
	}
	w.clickAcked(employee, slackapp.ActionReveal, r.ID, reveal)
	w.waitStatus(r.ID, workflow.StatusCompleted)
	if set, _ := w.ds.Password("alice"); passwordIn(t, w.passwordMessages()[0]) != set {
		t.Fatal("wrong password delivered")
	}
}

// TestReplicaKilledDuringReset: the replica dies while ResetUserPassword is
// in flight. Nobody can know whether or to what the password was set, so
// when the lease ends another replica offers Reveal again, and the next click
// sets and shows a new password.
func TestReplicaKilledDuringReset(t *testing.T) {
	w := newWorld(t)
	w.vars["WORK_LEASE"] = "2s"
	a := w.startProcess()
	r, dms := w.request()
	reveal := w.approve(r, dms)
	w.ds.SetDelay(time.Minute)
	w.clickAcked(employee, slackapp.ActionReveal, r.ID, reveal)
	w.wait("the reset call to reach the directory", func() bool { return len(w.ds.ResetCalls()) == 1 })
	a.kill()
	w.ds.SetDelay(0)
	if got := w.get(r.ID); got.Status != workflow.StatusResetting {
		t.Fatalf("before the takeover: %s", got.Status)
	}
	w.start()
	got := w.waitStatus(r.ID, workflow.StatusApproved)
	if got.LastEvent().Kind != workflow.EventInterrupted {
		t.Fatalf("last event %s", got.LastEvent().Kind)
	}
	if txt := w.dmTexts(employee); !strings.Contains(txt, "could not be shown to you") {
		t.Fatalf("employee not told: %s", txt)
	}
	reveal = w.message(reveal)
	if !hasButton(reveal, slackapp.ActionReveal) {
		t.Fatalf("no Reveal button offered again: %s", blocksText(reveal))
	}
	w.clickAcked(employee, slackapp.ActionReveal, r.ID, reveal)
	w.waitStatus(r.ID, workflow.StatusCompleted)
	calls := w.ds.ResetCalls()
	if len(calls) != 2 || calls[0].Status != 0 || calls[1].Status != 200 {
		t.Fatalf("reset calls: %+v", calls)
	}
	if set, _ := w.ds.Password("alice"); passwordIn(t, w.passwordMessages()[0]) != set || set != calls[1].NewPassword {
		t.Fatal("the employee did not get the password that was set")
	}
	_, replies := w.auditThread(r.ID)
	var thread strings.Builder
	for _, m := range replies {
		thread.WriteString(blocksText(m))
	}
	if !strings.Contains(thread.String(), "Reset interrupted") {
		t.Errorf("audit thread does not tell helpdesk: %s", thread.String())
	}
}

// redisServer runs its own persistent Redis on a free port.
type redisServer struct {
	t    *testing.T
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
}

func startRedisServer(t *testing.T) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is required in CI (scripts/test.sh installs it)")
		}
		t.Skip("redis-server is not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &redisServer{t: t, bin: bin, dir: t.TempDir(), port: port}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *redisServer) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port) }

func (s *redisServer) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, "--port", fmt.Sprint(s.port), "--bind", "127.0.0.1", "--dir", s.dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no")
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server did not start: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *redisServer) stop() {
	if s.cmd == nil || s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	_ = s.cmd.Wait()
}

// TestRedisRestartMidFlow: Redis goes away between approval and reveal. The
// bot answers "try again shortly" and reports not-ready meanwhile, then
// reconnects and the flow completes with nothing lost.
func TestRedisRestartMidFlow(t *testing.T) {
	rs := startRedisServer(t)
	w := newWorld(t)
	w.useRedis(rs.url())
	bot := w.start()
	r, dms := w.request()
	reveal := w.approve(r, dms)

	rs.stop()
	ans := w.command(employee, "status")
	if !strings.Contains(ans, "can't reach my database") {
		t.Fatalf("answer during the outage: %s", ans)
	}
	code, body := getURL(t, bot, "/readyz")
	if code != 503 || body != "store unavailable\n" {
		t.Fatalf("readyz during the outage: %d %q, want 503 \"store unavailable\\n\" (no error text)", code, body)
	}
	rs.start()
	w.wait("the bot to be ready again", func() bool { c, _ := getURL(t, bot, "/readyz"); return c == 200 })
	if got := w.open(employee); got.ID != r.ID || got.Status != workflow.StatusApproved {
		t.Fatalf("after the restart: %+v", got)
	}
	w.clickAcked(employee, slackapp.ActionReveal, r.ID, reveal)
	w.waitStatus(r.ID, workflow.StatusCompleted)
	if set, _ := w.ds.Password("alice"); passwordIn(t, w.passwordMessages()[0]) != set {
		t.Fatal("wrong password delivered")
	}
}
