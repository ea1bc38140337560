package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/example/resetbot/internal/slacktest"
	"github.com/example/resetbot/slackapp"
	redisstore "github.com/example/resetbot/store/redisstore"
	"github.com/example/resetbot/workflow"
)

// addEmployees adds n employees to Slack and the directory.
func (w *world) addEmployees(n int) []string {
	var ids []string
	for i := 1; i <= n; i++ {
		id, name := fmt.Sprintf("UE%04d", i), fmt.Sprintf("emp%04d", i)
		w.slack.AddUser(slacktest.User{ID: id, Name: name, RealName: fmt.Sprintf("Employee Number%d", i), Email: name + "@corp.example.com"})
		w.ds.AddUser(name)
		ids = append(ids, id)
	}
	return ids
}

// messageFor waits for the message in channel whose blocks mention id and
// have a button with action.
func (w *world) messageFor(channel, id, action string) slacktest.Message {
	w.t.Helper()
	var found slacktest.Message
	w.wait(fmt.Sprintf("a %s button for %s in %s", action, id, channel), func() bool {
		for _, m := range w.slack.Messages(channel) {
			if hasButton(m, action) && strings.Contains(string(m.Blocks), `"value":"`+id+`"`) {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

// TestThreeReplicas: three bots on one Redis; 50 requests, each approved by
// two approvers clicking at the same moment on different replicas, and every
// Reveal clicked twice (on different replicas): exactly 50 decisions and 50
// ResetUserPassword calls, and every employee got the password the
// directory got.
func TestThreeReplicas(t *testing.T) {
	const n = 50
	w := newWorld(t)
	employees := w.addEmployees(n)
	for range 3 {
		w.start()
	}
	w.wait("three connections", func() bool { return w.slack.Connections() == 3 })

	envs := map[string]string{}
	for _, e := range employees {
		envs[e] = w.slack.SlashCommand(e, "")
	}
	ids := map[string]string{}
	for _, e := range employees {
		ids[e] = idRe.FindString(w.reply(envs[e]))
		if ids[e] == "" {
			t.Fatalf("no request for %s", e)
		}
	}
	for i, e := range employees {
		id := ids[e]
		m1 := w.messageFor(slacktest.DMChannel(approver1), id, slackapp.ActionApprove)
		m2 := w.messageFor(slacktest.DMChannel(approver2), id, slackapp.ActionApprove)
		w.slack.ClickOn(i%3, slacktest.Click{User: approver1, ActionID: slackapp.ActionApprove, Value: id, Channel: m1.Channel, MessageTS: m1.TS})
		w.slack.ClickOn((i+1)%3, slacktest.Click{User: approver2, ActionID: slackapp.ActionApprove, Value: id, Channel: m2.Channel, MessageTS: m2.TS})
	}
	for i, e := range employees {
		id := ids[e]
		m := w.messageFor(slacktest.DMChannel(e), id, slackapp.ActionReveal)
		c := slacktest.Click{User: e, ActionID: slackapp.ActionReveal, Value: id, Channel: m.Channel, MessageTS: m.TS}
		w.slack.ClickOn(i%3, c)
		w.slack.ClickOn((i+2)%3, c)
	}
	decisions := 0
	for _, e := range employees {
		r := w.waitStatus(ids[e], workflow.StatusCompleted)
		for _, ev := range r.Events {
			if ev.Kind == workflow.EventApproved || ev.Kind == workflow.EventDenied {
				decisions++
			}
		}
	}
	time.Sleep(300 * time.Millisecond) // give a wrong second reset time to show up
	if decisions != n {
		t.Errorf("%d decisions for %d requests", decisions, n)
	}
	if calls := w.ds.ResetCalls(); len(calls) != n {
		t.Errorf("%d ResetUserPassword calls for %d requests", len(calls), n)
	}
	eph := w.passwordMessages()
	if len(eph) != n {
		t.Errorf("%d password messages for %d requests", len(eph), n)
	}
	for _, m := range eph {
		name := "emp" + strings.TrimPrefix(m.User, "UE")
		if set, _ := w.ds.Password(name); passwordIn(t, m) != set {
			t.Errorf("%s got a password the directory does not have", m.User)
		}
	}
}

// TestRedeliveredEnvelopesTakeEffectOnce: Slack delivering the same envelope
// twice, to two replicas, has one effect.
func TestRedeliveredEnvelopesTakeEffectOnce(t *testing.T) {
	w := newWorld(t)
	w.start()
	w.start()
	w.wait("two connections", func() bool { return w.slack.Connections() == 2 })
	cmd := map[string]any{"command": "/reset-password", "text": "", "user_id": employee, "channel_id": slacktest.DMChannel(employee),
		"team_id": slacktest.TeamID, "trigger_id": "t1", "api_app_id": slacktest.AppID}
	w.slack.SendTo(0, "redelivered-command", "slash_commands", cmd)
	w.slack.SendTo(1, "redelivered-command", "slash_commands", cmd)
	w.wait("a request", func() bool {
		_, err := w.store.Open(context.Background(), employee)
		return err == nil
	})
	r := w.open(employee)
	m := w.messageFor(slacktest.DMChannel(approver1), r.ID, slackapp.ActionApprove)
	click := map[string]any{"type": "block_actions", "user": map[string]any{"id": approver1}, "channel": map[string]any{"id": m.Channel},
		"container": map[string]any{"type": "message", "message_ts": m.TS, "channel_id": m.Channel},
		"actions":   []any{map[string]any{"action_id": slackapp.ActionApprove, "block_id": "decision", "type": "button", "value": r.ID}}}
	w.slack.SendTo(1, "redelivered-click", "interactive", click)
	w.slack.SendTo(0, "redelivered-click", "interactive", click)
	w.waitStatus(r.ID, workflow.StatusApproved)
	time.Sleep(300 * time.Millisecond)
	if n := len(w.slack.Messages(slacktest.DMChannel(approver1))); n != 1 {
		t.Errorf("approver got %d request DMs, want 1", n)
	}
	// The command had no response_url, so its one answer is an ephemeral
	// message; neither redelivery got another answer.
	if eph := w.slack.Ephemerals(); len(eph) != 1 || !strings.Contains(eph[0].Text, r.ID) {
		t.Errorf("answers to the redelivered envelopes: %+v", eph)
	}
	got := w.get(r.ID)
	if len(got.Events) != 2 {
		t.Fatalf("events %+v", got.Events)
	}
}

// TestSocketModeDisconnectsLoseNothing: refresh_requested and dropped
// connections in the middle of a flow.
func TestSocketModeDisconnectsLoseNothing(t *testing.T) {
	w := newWorld(t)
	bot := w.start()
	r, dms := w.request()
	before := w.slack.TotalConnections()
	// The first reconnection attempt fails: its warning says why too.
	w.slack.FailNext("apps.connections.open", "internal_error", 1)
	w.slack.Disconnect("refresh_requested")
	// The click is sent at once; it waits for the new connection.
	env := w.click(approver1, slackapp.ActionApprove, r.ID, dms[approver1])
	w.wait("a reconnect", func() bool { return w.slack.TotalConnections() > before })
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if _, err := w.slack.WaitAck(ctx, env); err != nil {
		t.Fatal("the click sent during the reconnect was lost")
	}
	w.waitStatus(r.ID, workflow.StatusApproved)
	reveal := w.buttonMessage(slacktest.DMChannel(employee), slackapp.ActionReveal)

	before = w.slack.TotalConnections()
	w.slack.DropConnections()
	w.wait("a reconnect after a dropped connection", func() bool { return w.slack.Connections() == 1 && w.slack.TotalConnections() > before })
	w.clickAcked(employee, slackapp.ActionReveal, r.ID, reveal)
	w.waitStatus(r.ID, workflow.StatusCompleted)
	if len(w.passwordMessages()) != 1 {
		t.Fatal("no password after the disconnects")
	}
	// Each reconnection warning carries its cause.
	logs := bot.logs.String()
	for _, want := range []string{
		"Slack connection lost (Slack asked the bot to reconnect (a disconnect message, as it sends every few hours)); reconnecting",
		"could not connect to Slack (internal_error, attempt 1, next in",
		"Slack connection lost (the connection failed: ",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %q", want)
		}
	}
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "Slack") && strings.Contains(line, "the reason is unknown") {
			t.Errorf("a reconnection warning without its cause: %s", line)
		}
	}
}

// TestSlackRateLimits: while Slack answers 429 with Retry-After, the bot
// waits as told and every message is eventually delivered; a burst of
// requests to one approver all arrive.
func TestSlackRateLimits(t *testing.T) {
	w := newWorld(t)
	employees := w.addEmployees(8)
	// Messages left for later are retried after WORK_LEASE/2 (at most 15 s);
	// a shorter lease keeps this test about Retry-After, not about the wait.
	w.vars["WORK_LEASE"] = "10s"
	w.start()
	w.slack.RateLimit("chat.postMessage", 3, time.Second)
	w.slack.RateLimit("chat.update", 2, 2*time.Second)
	envs := map[string]string{}
	for _, e := range employees {
		envs[e] = w.slack.SlashCommand(e, "")
	}
	var ids []string
	for _, e := range employees {
		if id := idRe.FindString(w.reply(envs[e])); id == "" {
			t.Fatalf("no request for %s", e)
		} else {
			w.messageFor(slacktest.DMChannel(approver1), id, slackapp.ActionApprove)
			w.messageFor(slacktest.DMChannel(approver2), id, slackapp.ActionApprove)
			w.waitStatus(id, workflow.StatusPending)
			ids = append(ids, id)
		}
	}
	// Each request is listed once in the approver's messages (a burst
	// shares them: an approver's queue).
	for _, id := range ids {
		n := 0
		for _, m := range w.slack.Messages(slacktest.DMChannel(approver1)) {
			n += strings.Count(string(m.Blocks), `"action_id":"approve","value":"`+id+`"`)
		}
		if n != 1 {
			t.Errorf("request %s has %d Approve buttons in the approver's DMs, want 1", id, n)
		}
	}
	// The bot waited as told after each 429.
	for _, method := range []string{"chat.postMessage", "chat.update"} {
		calls := w.slack.Calls(method)
		limited := 0
		for i, c := range calls {
			if c.Status != 429 {
				continue
			}
			limited++
			retry := time.Second
			if method == "chat.update" {
				retry = 2 * time.Second
			}
			// The same request again, after Retry-After.
			for _, later := range calls[i+1:] {
				if later.Params.Get("channel") == c.Params.Get("channel") && later.Params.Get("text") == c.Params.Get("text") {
					if gap := later.At.Sub(c.At); gap < retry {
						t.Errorf("%s retried after %v, Retry-After was %v", method, gap, retry)
					}
					break
				}
			}
		}
		if method == "chat.postMessage" && limited != 3 {
			t.Errorf("%d rate-limited %s calls, want 3", limited, method)
		}
	}
}

// TestEmbeddedStore: with REDIS_URL unset the bot keeps its state in a file.
func TestEmbeddedStore(t *testing.T) {
	w := newWorld(t)
	delete(w.vars, "REDIS_URL")
	w.vars["DATA_DIR"] = t.TempDir()
	bot := w.start()
	if ans := w.command(employee, ""); !idRe.MatchString(ans) {
		t.Fatalf("request: %s", ans)
	}
	m := w.buttonMessage(slacktest.DMChannel(approver1), slackapp.ActionApprove)
	id := idRe.FindString(string(m.Blocks))
	w.clickAcked(approver1, slackapp.ActionApprove, id, m)
	reveal := w.buttonMessage(slacktest.DMChannel(employee), slackapp.ActionReveal)
	w.clickAcked(employee, slackapp.ActionReveal, id, reveal)
	w.wait("the password", func() bool { return len(w.passwordMessages()) == 1 })
	if set, _ := w.ds.Password("alice"); passwordIn(t, w.passwordMessages()[0]) != set {
		t.Fatal("wrong password delivered")
	}
	bot.stop()
	if keys, _ := w.redis.Keys(context.Background(), redisstore.KeyPrefix(w.prefix)+"*").Result(); len(keys) != 0 {
		t.Fatalf("the embedded-store bot wrote to Redis: %v", keys)
	}
	// The state survives a restart.
	w.start()
	if ans := w.command(employee, "status"); !strings.Contains(ans, "no open password reset request") {
		t.Fatalf("status after restart: %s", ans)
	}
}
