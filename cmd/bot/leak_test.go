package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/example/resetbot/internal/dstest"
	"github.com/example/resetbot/internal/mailpittest"
	"github.com/example/resetbot/internal/sambatest"
	"github.com/example/resetbot/internal/slacktest"
	"github.com/example/resetbot/slackapp"
	redisstore "github.com/example/resetbot/store/redisstore"
	"github.com/example/resetbot/workflow"
)

// TestPasswordLeaksNowhere: with debug logging on, the temporary password
// appears in no log line, no Redis key or value, no notice email, no
// modal, no Home view, and no Slack call except the one ephemeral message
// to the employee (the answer to their Reveal click through its
// response_url, or chat.postEphemeral when that URL fails), including on
// a reset that fails after the password was generated. Every request goes
// through the reason modal, one is denied through the deny modal, and the
// employee, an approver and helpdesk have their Home tabs open throughout.
func TestPasswordLeaksNowhere(t *testing.T) {
	mp := mailpittest.Require(t)
	w := newWorld(t)
	w.ds.EchoPassword(true) // a directory that puts the password in its error messages
	w.smtpVars(mp)
	w.vars["REQUIRE_REASON"] = "true"
	w.vars["REQUEST_LIMIT"] = "10"
	w.vars["HELPDESK"] = approver2
	started := time.Now()
	bot := w.start()
	for _, u := range []string{employee, approver1, approver2} {
		w.slack.OpenHome(u)
	}
	w.wait("the Home tabs", func() bool {
		for _, u := range []string{employee, approver1, approver2} {
			if _, ok := w.slack.Home(u); !ok {
				return false
			}
		}
		return true
	})
	// Requests go through the reason modal.
	requests := 0
	request := func() (*workflow.Request, map[string]slacktest.Message) {
		t.Helper()
		requests++
		cmd := w.slack.SlashCommand(employee, "")
		var v slacktest.View
		w.wait("the reason modal", func() bool {
			n := 0
			for _, view := range w.slack.Views(employee) {
				if view.CallbackID == slackapp.CallbackReason {
					n, v = n+1, view
				}
			}
			return n == requests
		})
		w.submit(v, "forgot it")
		id := idRe.FindString(w.reply(cmd))
		dms := map[string]slacktest.Message{}
		for _, a := range []string{approver1, approver2} {
			dms[a] = w.messageFor(slacktest.DMChannel(a), id, slackapp.ActionApprove)
		}
		return w.waitStatus(id, workflow.StatusPending), dms
	}

	// One reset that fails after a password was sent (and echoed back).
	w.ds.FailNext("InvalidPasswordException", 2)
	r, dms := request()
	reveal := w.approve(r, dms)
	w.clickAcked(employee, slackapp.ActionReveal, r.ID, reveal)
	w.waitStatus(r.ID, workflow.StatusFailed)

	// One that succeeds: the answer to the click.
	r, dms = request()
	reveal = w.approve(r, dms)
	w.clickAcked(employee, slackapp.ActionReveal, r.ID, reveal)
	w.waitStatus(r.ID, workflow.StatusCompleted)

	// One whose click's response_url fails: chat.postEphemeral.
	r, dms = request()
	reveal = w.approve(r, dms)
	w.slack.FailResponses(http.StatusNotFound, "expired_url", 1)
	w.clickAcked(employee, slackapp.ActionReveal, r.ID, reveal)
	w.waitStatus(r.ID, workflow.StatusCompleted)

	// One denied through the deny modal, after the resets.
	r, dms = request()
	w.deny(approver2, r.ID, dms[approver2], "no")
	w.waitStatus(r.ID, workflow.StatusDenied)
	for _, u := range []string{employee, approver1, approver2} {
		w.slack.OpenHome(u)
	}
	w.homeText(employee, "denied by <@"+approver2+">")
	w.wait("the two notice emails", func() bool { return len(sentSince(t, mp, "alice@corp.example.com", started)) == 2 })
	bot.stop()
	var mails strings.Builder
	for _, m := range sentSince(t, mp, "alice@corp.example.com", started) {
		mails.WriteString(mp.STARTTLS.Raw(t, m.ID))
	}
	var views strings.Builder
	for _, v := range w.slack.Views("") {
		views.Write(v.Raw)
	}
	if n := len(w.slack.Views("")); n < 8 || !strings.Contains(views.String(), `"callback_id":"deny"`) || !strings.Contains(views.String(), `"type":"home"`) {
		t.Fatalf("%d views: the test did not open the modals and Home tabs it checks", n)
	}

	calls := w.ds.ResetCalls()
	if len(calls) != 4 {
		t.Fatalf("%d reset calls", len(calls))
	}
	for i, c := range calls {
		if strings.Contains(mails.String(), c.NewPassword) {
			t.Errorf("password %d in a notice email", i)
		}
		if strings.Contains(views.String(), c.NewPassword) {
			t.Errorf("password %d in a modal or Home view", i)
		}
	}
	seen := checkPasswordsShownOnlyTo(t, w, bot.logs, calls, func(int) string { return employee })
	for i := range calls {
		// 3: the click's response_url refused it (nothing shown), then chat.postEphemeral.
		want := map[int][]string{2: {"response_url"}, 3: {"response_url", "chat.postEphemeral"}}[i]
		if !slices.Equal(seen[i], want) {
			t.Errorf("password %d in the Slack calls %v, want %v", i, seen[i], want)
		}
	}
}

// checkPasswordsShownOnlyTo fails when a password of calls is in the bot's
// logs (which must be at debug level), any Redis key or value, the audit
// export, or any Slack call but the ephemeral answer to its recipient's
// own click (to(i), in their DM), or chat.postEphemeral to them there. It
// returns, for each password, the Slack methods that carried it.
func checkPasswordsShownOnlyTo(t *testing.T, w *world, logs *syncBuffer, calls []dstest.Call, to func(i int) string) map[int][]string {
	t.Helper()
	all := logs.String()
	if !strings.Contains(all, `"level":"DEBUG"`) {
		t.Fatal("debug logging was not on")
	}
	ctx := context.Background()
	var store strings.Builder
	iter := w.redis.Scan(ctx, 0, redisstore.KeyPrefix(w.prefix)+"*", 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		store.WriteString(key + "\n")
		dump, err := w.redis.Dump(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		store.WriteString(dump + "\n")
		switch w.redis.Type(ctx, key).Val() {
		case "string":
			store.WriteString(w.redis.Get(ctx, key).Val())
		case "zset":
			store.WriteString(strings.Join(w.redis.ZRange(ctx, key, 0, -1).Val(), "\n"))
		case "hash":
			for k, v := range w.redis.HGetAll(ctx, key).Val() {
				store.WriteString(k + v)
			}
		case "set":
			store.WriteString(strings.Join(w.redis.SMembers(ctx, key).Val(), "\n"))
		case "stream":
			for _, m := range w.redis.XRange(ctx, key, "-", "+").Val() {
				for k, v := range m.Values {
					store.WriteString(k + fmt.Sprint(v) + "\n")
				}
			}
		}
	}
	// The audit export reads the same log.
	var export syncBuffer
	if err := run(ctx, []string{"bot", "audit"}, func(k string) string { return w.vars[k] }, &export); err != nil {
		t.Fatalf("bot audit: %v", err)
	}
	if n := strings.Count(export.String(), "\n"); n < 2*len(calls) {
		t.Fatalf("bot audit printed %d records:\n%s", n, export.String())
	}
	if store.Len() == 0 {
		t.Fatal("nothing in Redis to check")
	}
	seen := map[int][]string{}
	for i, c := range calls {
		pw, who := c.NewPassword, to(i)
		if len(pw) < 20 {
			t.Fatalf("password %d too short to search for: %d", i, len(pw))
		}
		if strings.Contains(all, pw) {
			t.Errorf("password %d in the logs", i)
		}
		if strings.Contains(store.String(), pw) {
			t.Errorf("password %d in Redis", i)
		}
		if strings.Contains(export.String(), pw) {
			t.Errorf("password %d in the audit export", i)
		}
		for _, call := range w.slack.Calls("") {
			if !callContains(call, pw) {
				continue
			}
			seen[i] = append(seen[i], call.Method)
			switch call.Method {
			case "chat.postEphemeral":
				if call.Params.Get("user") != who || call.Params.Get("channel") != slacktest.DMChannel(who) {
					t.Errorf("password %d sent with chat.postEphemeral to %s in %s, want %s", i, call.Params.Get("user"), call.Params.Get("channel"), who)
				}
			case "response_url":
				// Checked below, with whose click the URL answered.
			default:
				t.Errorf("password %d sent to Slack in %s %v", i, call.Method, call.Params.Get("channel"))
			}
		}
		for _, p := range w.slack.ResponsePosts() {
			if bytes.Contains(p.Raw, []byte(pw)) && (p.User != who || p.Channel != slacktest.DMChannel(who) ||
				p.ResponseType != "ephemeral" || p.ReplaceOriginal || p.DeleteOriginal) {
				t.Errorf("password %d posted to a response URL of %s in %s as %q (replace %v), want %s", i, p.User, p.Channel, p.ResponseType, p.ReplaceOriginal, who)
			}
		}
	}
	return seen
}

// callContains reports whether s appears anywhere in a recorded Slack call:
// raw or URL-decoded body, or any decoded parameter.
func callContains(c slacktest.Call, s string) bool {
	decoded, _ := url.QueryUnescape(string(c.Body))
	all := []string{string(c.Body), decoded}
	for _, vs := range c.Params {
		all = append(all, vs...)
	}
	for _, a := range all {
		if strings.Contains(a, s) {
			return true
		}
	}
	return false
}

// TestADPasswordLeaksNowhereOnBehalf: the new ways a password is made
// leak it nowhere either: a reset asked by helpdesk on the employee's
// behalf, of a locked account (the reset also unlocks it), shown to the
// employee only; and a reset for an employee with no Slack account
// (HELPDESK_DELIVERY), shown to the agent only, must-change-at-logon.
func TestADPasswordLeaksNowhereOnBehalf(t *testing.T) {
	w := newLockoutWorld(t, false)
	w.admin.DelegateWrite(w.ou.DN, w.ou.Operator, sambatest.AttrPwdLastSet)
	w.vars["HELPDESK"] = agent
	w.vars["HELPDESK_DELIVERY"] = "true"
	empID, emp := w.lockable("lkp")
	nobody := sambatest.User{Name: sambatest.Unique("lkn"), GivenName: "No", Surname: "Slack"}
	nobody.Mail = sambatest.Mail(nobody.Name)
	w.admin.CreateLockableUser(w.ou, nobody)
	bot := w.start()

	w.admin.LockOut(emp, 3)
	id := idRe.FindString(w.command(agent, "<@"+empID+">"))
	dm := w.messageFor(slacktest.DMChannel(approver1), id, slackapp.ActionApprove)
	w.clickAcked(approver1, slackapp.ActionApprove, id, dm)
	w.waitStatus(id, workflow.StatusApproved)
	w.clickAcked(empID, slackapp.ActionReveal, id, w.messageFor(slacktest.DMChannel(empID), id, slackapp.ActionReveal))
	if r := w.waitStatus(id, workflow.StatusCompleted); !r.Unlocked {
		t.Fatalf("the reset did not unlock: %+v", r)
	}

	id = idRe.FindString(w.command(agent, "for "+nobody.Mail))
	dm = w.messageFor(slacktest.DMChannel(approver1), id, slackapp.ActionApprove)
	w.clickAcked(approver1, slackapp.ActionApprove, id, dm)
	w.waitStatus(id, workflow.StatusApproved)
	w.clickAcked(agent, slackapp.ActionReveal, id, w.messageFor(slacktest.DMChannel(agent), id, slackapp.ActionReveal))
	w.waitStatus(id, workflow.StatusCompleted)
	bot.stop()

	calls := w.ds.ResetCalls()
	if len(calls) != 2 {
		t.Fatalf("%d reset calls", len(calls))
	}
	seen := checkPasswordsShownOnlyTo(t, w.world, bot.logs, calls, func(i int) string { return []string{empID, agent}[i] })
	for i := range calls {
		if !slices.Equal(seen[i], []string{"response_url"}) {
			t.Errorf("password %d in the Slack calls %v, want the one answer to the click", i, seen[i])
		}
	}
}

// sentSince returns the messages to addr on the STARTTLS server that
// arrived after since.
func sentSince(t *testing.T, mp *mailpittest.Env, addr string, since time.Time) []mailpittest.Message {
	var out []mailpittest.Message
	for _, m := range mp.STARTTLS.To(t, addr) {
		if m.Created.After(since.Add(-time.Second)) {
			out = append(out, m)
		}
	}
	return out
}
