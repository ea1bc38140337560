package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/example/resetbot/internal/mailpittest"
	"github.com/example/resetbot/internal/sambatest"
	"github.com/example/resetbot/internal/slacktest"
	"github.com/example/resetbot/mailnotice"
	"github.com/example/resetbot/slackapp"
	redisstore "github.com/example/resetbot/store/redisstore"
	"github.com/example/resetbot/workflow"
)

// agent is the helpdesk member of the on-behalf tests: carol, who is also
// an approver (through the S0HELPDESK group in APPROVERS).
const agent = approver2

// noRequestStored fails when a request was stored.
func (w *world) noRequestStored() {
	w.t.Helper()
	if keys, _ := w.redis.Keys(context.Background(), redisstore.KeyPrefix(w.prefix)+"req:*").Result(); len(keys) != 0 {
		w.t.Fatalf("requests were stored: %v", keys)
	}
}

// TestOnBehalfByMention: someone not in HELPDESK who names another person
// is refused with their own words and nothing is stored; a helpdesk
// member's request by mention is the employee's: the employee is told who
// asked, the agent is not among its approvers and cannot reveal, the
// password goes to the employee only; status, the audit thread and `bot
// audit` name both.
func TestOnBehalfByMention(t *testing.T) {
	w := newWorld(t)
	w.vars["HELPDESK"] = agent
	bot := w.start()

	for _, text := range []string{"<@" + employee + ">", "<@" + employee + "|alice> unlock", "for alice@corp.example.com"} {
		if got, want := w.command(stranger, text), slackapp.ErrorText(workflow.Errorf(workflow.CodeNotHelpdesk, ""), nil); got != want {
			t.Errorf("%q by someone not in HELPDESK: %q, want %q", text, got, want)
		}
	}
	w.noRequestStored()
	w.wait("the refusal in the audit channel", func() bool {
		return strings.Contains(threadText(w.slack.Messages(auditChannel)), "refused (`not_helpdesk`)")
	})
	if n := len(w.slack.Messages(slacktest.DMChannel(employee))); n != 0 {
		t.Fatalf("the employee got %d DMs about a refused request", n)
	}

	answer := w.command(agent, "<@"+employee+"|alice>")
	id := idRe.FindString(answer)
	if id == "" || !strings.Contains(answer, "on behalf of <@"+employee+">") || !strings.Contains(answer, "I asked <@"+approver1+">") || strings.Contains(answer, "<@"+agent+"> to approve") {
		t.Fatalf("agent's answer: %s", answer)
	}
	r := w.waitStatus(id, workflow.StatusPending)
	if r.Requester != employee || r.Agent != agent || r.Account.UserName != "alice" || strings.Join(r.Approvers, ",") != approver1 {
		t.Fatalf("request %+v", r)
	}
	if txt := w.dmTexts(employee); !strings.Contains(txt, "<@"+agent+"> (helpdesk) asked to reset the password of your account `alice` on your behalf") {
		t.Fatalf("the employee is not told who asked:\n%s", txt)
	}
	if n := len(w.slack.Messages(slacktest.DMChannel(agent))); n != 0 {
		t.Fatalf("the agent was asked to approve their own request (%d DMs)", n)
	}
	if ans := w.command(employee, "status"); !strings.Contains(ans, "asked by <@"+agent+">") {
		t.Errorf("status: %s", ans)
	}
	dm := w.messageFor(slacktest.DMChannel(approver1), id, slackapp.ActionApprove)
	if !strings.Contains(blocksText(dm), "<@"+agent+"> (helpdesk) asks, on behalf of <@"+employee+">") {
		t.Errorf("approver's DM: %s", blocksText(dm))
	}
	if ans := w.clickReply(agent, slackapp.ActionApprove, id, dm); !strings.Contains(ans, "not an approver") {
		t.Fatalf("the agent approved: %s", ans)
	}
	w.clickAcked(approver1, slackapp.ActionApprove, id, dm)
	w.waitStatus(id, workflow.StatusApproved)
	reveal := w.messageFor(slacktest.DMChannel(employee), id, slackapp.ActionReveal)
	if ans := w.clickReply(agent, slackapp.ActionReveal, id, reveal); !strings.Contains(ans, "Only the person who asked") {
		t.Fatalf("the agent revealed: %s", ans)
	}
	w.clickAcked(employee, slackapp.ActionReveal, id, reveal)
	w.waitStatus(id, workflow.StatusCompleted)
	if eph := w.passwordMessages(); len(eph) != 1 || eph[0].User != employee {
		t.Fatalf("password messages to %+v", eph)
	}
	_, replies := w.auditThread(id)
	if txt := threadText(replies); !strings.Contains(txt, "<@"+agent+"> (helpdesk), on behalf of <@"+employee+">, requested a reset") {
		t.Errorf("audit thread:\n%s", txt)
	}
	// Metrics count requests on behalf; no label holds a user.
	_, metrics := getURL(t, bot, "/metrics")
	if !strings.Contains(metrics, `resetbot_requests_created_total{action="reset",asked_by="helpdesk"} 1`) {
		t.Errorf("metrics lack the on-behalf request:\n%s", grepLines(metrics, "resetbot_requests_created_total"))
	}
	for _, id := range []string{employee, agent, approver1, stranger, "alice"} {
		if strings.Contains(metrics, id) {
			t.Errorf("metrics name %s", id)
		}
	}
	var export syncBuffer
	if err := run(context.Background(), []string{"bot", "audit", "--user", agent}, func(k string) string { return w.vars[k] }, &export); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(export.String()), "\n")
	var first workflow.AuditRecord
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || len(lines) < 4 || first.Agent != agent || first.User != employee || first.Action != workflow.ActionReset {
		t.Fatalf("bot audit --user %s: %v\n%s", agent, err, export.String())
	}
}

// TestOnBehalfHelpdeskApproves: with HELPDESK_APPROVES the agent's
// request (here by the employee's email) is the approval: nobody else is
// asked, the employee gets the Reveal and the password; the agent still
// cannot reveal it.
func TestOnBehalfHelpdeskApproves(t *testing.T) {
	w := newWorld(t)
	w.vars["HELPDESK"] = "S0DESK"
	w.vars["HELPDESK_APPROVES"] = "true"
	w.slack.AddUserGroup("S0DESK", agent)
	w.start()
	answer := w.command(agent, "for ALICE@corp.example.com")
	id := idRe.FindString(answer)
	if id == "" || !strings.Contains(answer, "Your request is the approval") {
		t.Fatalf("answer: %s", answer)
	}
	r := w.waitStatus(id, workflow.StatusApproved)
	if r.Requester != employee || r.DecidedBy != agent || r.AskedAs != workflow.AskedHelpdesk {
		t.Fatalf("request %+v", r)
	}
	for _, a := range []string{approver1, agent} {
		if n := len(w.slack.Messages(slacktest.DMChannel(a))); n != 0 {
			t.Errorf("%s got %d DMs", a, n)
		}
	}
	reveal := w.messageFor(slacktest.DMChannel(employee), id, slackapp.ActionReveal)
	if ans := w.clickReply(agent, slackapp.ActionReveal, id, reveal); !strings.Contains(ans, "Only the person who asked") {
		t.Fatalf("the agent revealed: %s", ans)
	}
	w.clickAcked(employee, slackapp.ActionReveal, id, reveal)
	w.waitStatus(id, workflow.StatusCompleted)
	if eph := w.passwordMessages(); len(eph) != 1 || eph[0].User != employee {
		t.Fatalf("password messages to %+v", eph)
	}
}

// TestADOnBehalfNoSlackAccount: "for email" names an account whose owner
// has no Slack account. Without HELPDESK_DELIVERY it is refused (nothing
// stored); with it, an approver other than the agent decides (even with
// HELPDESK_APPROVES), only the agent reveals, the password is
// "must change at next logon" and the audit says who got it. When that
// cannot be set, nobody sees the password.
func TestADOnBehalfNoSlackAccount(t *testing.T) {
	w := newADWorld(t)
	w.vars["HELPDESK"] = agent
	u := sambatest.User{Name: sambatest.Unique("nos"), GivenName: "Nora", Surname: "Noslack"}
	u.Mail = sambatest.Mail(u.Name)
	w.admin.CreateUser(u)
	bot := w.start()
	want := slackapp.OnBehalfErrorText(workflow.Errorf(workflow.CodeNotInChat, ""), workflow.ActionReset, "`"+u.Mail+"`", nil)
	if got := w.command(agent, "for "+u.Mail); got != want {
		t.Fatalf("without HELPDESK_DELIVERY: %q, want %q", got, want)
	}
	w.noRequestStored()
	bot.stop()

	// The bind account that may write pwdLastSet (OU=CORP).
	w.vars["HELPDESK_DELIVERY"] = "true"
	w.vars["HELPDESK_APPROVES"] = "true"
	w.vars["LDAP_BIND_DN"] = w.env.RWBindDN
	w.vars["LDAP_BIND_PASSWORD"] = w.env.RWBindPassword
	bot = w.start()
	answer := w.command(agent, "for <mailto:"+u.Mail+"|"+u.Mail+">")
	id := idRe.FindString(answer)
	if id == "" || !strings.Contains(answer, "*you* get the button") {
		t.Fatalf("answer: %s", answer)
	}
	r := w.waitStatus(id, workflow.StatusPending)
	if r.InChat() || r.Recipient() != agent || strings.Contains(strings.Join(r.Approvers, ","), agent) {
		t.Fatalf("request %+v", r)
	}
	dm := w.messageFor(slacktest.DMChannel(approver1), id, slackapp.ActionApprove)
	if !strings.Contains(blocksText(dm), "the temporary password goes to <@"+agent+">") {
		t.Errorf("the approver is not told: %s", blocksText(dm))
	}
	w.clickAcked(approver1, slackapp.ActionApprove, id, dm)
	w.waitStatus(id, workflow.StatusApproved)
	reveal := w.messageFor(slacktest.DMChannel(agent), id, slackapp.ActionReveal)
	if ans := w.clickReply(approver1, slackapp.ActionReveal, id, reveal); !strings.Contains(ans, "Only the person who asked") {
		t.Fatalf("another person revealed: %s", ans)
	}
	w.clickAcked(agent, slackapp.ActionReveal, id, reveal)
	w.waitStatus(id, workflow.StatusCompleted)
	eph := w.passwordMessages()
	if len(eph) != 1 || eph[0].User != agent || !strings.Contains(blocksText(eph[0]), "who has no Slack account") {
		t.Fatalf("password messages %+v", eph)
	}
	if err := w.env.Bind(u.Mail, passwordIn(t, eph[0])); err == nil || !strings.Contains(err.Error(), "data 773") {
		t.Fatalf("the handed-over password: %v, want 'must change' (773)", err)
	}
	if _, replies := w.auditThread(id); !strings.Contains(threadText(replies), "shown to the helpdesk agent <@"+agent+"> only, not to the employee") {
		t.Errorf("audit thread:\n%s", threadText(replies))
	}

	// The read-only account may not write pwdLastSet: nobody sees it.
	bot.stop()
	w.vars["LDAP_BIND_DN"] = w.env.BindDN
	w.vars["LDAP_BIND_PASSWORD"] = w.env.BindPassword
	w.start()
	id = idRe.FindString(w.command(agent, "for "+u.Mail))
	dm = w.messageFor(slacktest.DMChannel(approver1), id, slackapp.ActionApprove)
	w.clickAcked(approver1, slackapp.ActionApprove, id, dm)
	w.waitStatus(id, workflow.StatusApproved)
	w.clickAcked(agent, slackapp.ActionReveal, id, w.messageFor(slacktest.DMChannel(agent), id, slackapp.ActionReveal))
	if got := w.waitStatus(id, workflow.StatusFailed); got.Failure != workflow.CodeAgentNotDelivered {
		t.Fatalf("failure %s", got.Failure)
	}
	if n := len(w.passwordMessages()); n != 1 {
		t.Fatalf("%d password messages: one not made must-change was shown", n)
	}
	if txt := w.dmTexts(agent); !strings.Contains(txt, "so I did not show it to you") {
		t.Errorf("the agent is not told:\n%s", txt)
	}
}

// TestADUnlockOnBehalf: a helpdesk member unlocks an employee's locked
// account by mention; the employee is told who asked and that it is
// unlocked, in Slack and in the notice email to the account's mail (an
// unlock's email, naming the agent); the unlock is not in the account's
// reset history.
func TestADUnlockOnBehalf(t *testing.T) {
	mp := mailpittest.Require(t)
	w := newLockoutWorld(t, false)
	w.smtpVars(mp)
	w.vars["HELPDESK"] = agent
	id, name := w.lockable("obu")
	w.start()
	w.admin.LockOut(name, 3)
	answer := w.command(agent, "unlock <@"+id+"|"+name+">")
	if !strings.Contains(answer, "is unlocked") || !strings.Contains(answer, "They were told") {
		t.Fatalf("answer: %s", answer)
	}
	if w.admin.Locked(name) {
		t.Fatal("still locked")
	}
	w.wait("the employee's DMs", func() bool {
		txt := w.dmTexts(id)
		return strings.Contains(txt, "asked to unlock your account") && strings.Contains(txt, "is unlocked")
	})
	got := mp.STARTTLS.WaitTo(t, sambatest.Mail(name), 1, waitLong)
	if len(got) != 1 || got[0].Subject != mailnotice.SubjectUnlock {
		t.Fatalf("emails: %+v", got)
	}
	if d := mp.STARTTLS.Detail(t, got[0].ID); !strings.Contains(d.Text, "account unlocked (the password did not change)") ||
		!strings.Contains(d.Text, "from helpdesk, on your behalf") || strings.Contains(d.Text, "Asked by:      you") {
		t.Errorf("the email:\n%s", d.Text)
	}
	r := w.waitStatus(idRe.FindString(w.slack.Messages(auditChannel)[0].Text), workflow.StatusCompleted)
	if !r.IsUnlock() || r.Agent != agent {
		t.Fatalf("request %+v", r)
	}
	if h, err := w.store.Resets(context.Background(), r.Account, time.Now().Add(-time.Hour)); err != nil || h.Count != 0 {
		t.Errorf("the unlock is in the reset history: %+v, %v", h, err)
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
