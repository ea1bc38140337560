package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/example/resetbot/internal/mailpittest"
	"github.com/example/resetbot/internal/sambatest"
	"github.com/example/resetbot/internal/slacktest"
	"github.com/example/resetbot/slackapp"
	"github.com/example/resetbot/workflow"
)

// countEvents counts r's events of kind.
func countEvents(r *workflow.Request, kind workflow.EventKind) int {
	n := 0
	for _, ev := range r.Events {
		if ev.Kind == kind {
			n++
		}
	}
	return n
}

// posts returns the messages posted in channel (updates do not add any)
// whose first text says what and that list request id.
func (w *world) posts(channel, id, what string) []slacktest.Message {
	var out []slacktest.Message
	for _, m := range w.slack.Messages(channel) {
		if strings.Contains(string(m.Blocks), `"value":"`+id+`"`) && strings.Contains(m.Text+string(m.Blocks), what) {
			out = append(out, m)
		}
	}
	return out
}

// auditLines returns the lines of request id's audit thread that contain
// what.
func (w *world) auditLines(id, what string) []string {
	w.t.Helper()
	_, replies := w.auditThread(id)
	var out []string
	for _, m := range replies {
		for _, line := range strings.Split(m.Text, "\n") {
			if strings.Contains(line, what) {
				out = append(out, line)
			}
		}
	}
	return out
}

// TestRemindersOnceWithTwoReplicas: with two replicas sweeping the same
// Redis, each approver who has not decided gets exactly one reminder per
// request (requests of one moment share one reminder message), the audit
// thread one line, and nothing more however long they wait; a click on
// the reminder decides, and every message listing the request shows it.
func TestRemindersOnceWithTwoReplicas(t *testing.T) {
	w := newWorld(t)
	w.vars["REMIND_AFTER"] = "1s"
	emps := w.addEmployees(3)
	w.start()
	w.start()
	w.wait("two connections", func() bool { return w.slack.Connections() == 2 })
	var ids []string
	for _, e := range emps {
		id := idRe.FindString(w.command(e, ""))
		if id == "" {
			t.Fatalf("no request for %s", e)
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		w.wait("the reminder of "+id, func() bool {
			r := w.get(id)
			return countEvents(r, workflow.EventReminded) == 1 && w.settled(r) &&
				len(w.posts(slacktest.DMChannel(approver1), id, "Reminder")) > 0 && len(w.posts(slacktest.DMChannel(approver2), id, "Reminder")) > 0
		})
	}
	time.Sleep(1500 * time.Millisecond) // several more sweeps on each replica
	for _, id := range ids {
		r := w.get(id)
		if n := countEvents(r, workflow.EventReminded); n != 1 || r.Status != workflow.StatusPending {
			t.Errorf("%s: %d reminders, %s", id, n, r.Status)
		}
		for _, a := range []string{approver1, approver2} {
			if n := len(w.posts(slacktest.DMChannel(a), id, "Reminder")); n != 1 {
				t.Errorf("%s got %d reminders of %s", a, n, id)
			}
			if n := len(w.posts(slacktest.DMChannel(a), id, "")); n != 2 {
				t.Errorf("%s has %d messages with %s, want the request and its reminder", a, n, id)
			}
		}
		if lines := w.auditLines(id, "Reminded "); len(lines) != 1 {
			t.Errorf("audit of %s: %q", id, lines)
		}
	}
	reminder := w.posts(slacktest.DMChannel(approver1), ids[0], "Reminder")[0]
	if txt := blocksText(reminder); !strings.Contains(txt, "still wait") && !strings.Contains(txt, "has waited") {
		t.Errorf("the reminder does not say how long: %s", txt)
	}
	w.clickAcked(approver1, slackapp.ActionApprove, ids[0], reminder)
	w.waitStatus(ids[0], workflow.StatusApproved)
	for _, a := range []string{approver1, approver2} {
		for _, m := range w.posts(slacktest.DMChannel(a), ids[0], "") {
			m = w.message(m)
			if strings.Contains(string(m.Blocks), `"action_id":"approve","text":{"type":"plain_text","text":"Approve","emoji":true},"style":"primary","value":"`+ids[0]) ||
				!strings.Contains(blocksText(m), "Approved by <@"+approver1+">") {
				t.Errorf("%s's message after the decision: %s", a, blocksText(m))
			}
		}
	}
}

// TestNoReminderOnceDecided: a request decided before REMIND_AFTER is
// never reminded.
func TestNoReminderOnceDecided(t *testing.T) {
	w := newWorld(t)
	w.vars["REMIND_AFTER"] = "1s"
	w.start()
	r, dms := w.request()
	w.deny(approver2, r.ID, dms[approver2], "")
	w.waitStatus(r.ID, workflow.StatusDenied)
	time.Sleep(1500 * time.Millisecond)
	if got := w.get(r.ID); countEvents(got, workflow.EventReminded) != 0 {
		t.Fatalf("a denied request was reminded: %+v", got.Events)
	}
	for _, a := range []string{approver1, approver2} {
		if n := len(w.posts(slacktest.DMChannel(a), r.ID, "Reminder")); n != 0 {
			t.Errorf("%s got %d reminders", a, n)
		}
	}
}

// TestADEscalationOnceWithTwoReplicas: the employee's manager is asked;
// after ESCALATE_AFTER, with two replicas sweeping, the fallback
// approvers (APPROVERS) are asked exactly once, each in one message that
// says why; the manager's message says who else was asked; the employee
// is told once; the audit thread has one line; a fallback approver's
// click decides.
func TestADEscalationOnceWithTwoReplicas(t *testing.T) {
	w := newADWorld(t)
	w.vars["APPROVER_SOURCE"] = "manager"
	w.vars["REMIND_AFTER"] = "off"
	w.vars["ESCALATE_AFTER"] = "1s"
	mgrID, mgr := w.employee("escmgr", nil)
	empID, _ := w.employee("escemp", func(u *sambatest.User) { u.Manager = mgr })
	w.start()
	w.start()
	w.wait("two connections", func() bool { return w.slack.Connections() == 2 })
	r, card := w.requestAs(empID, mgrID)
	if !slices.Equal(r.Approvers, []string{mgrID}) || r.EscalateAt.IsZero() {
		t.Fatalf("request %+v", r)
	}
	w.wait("the escalation", func() bool {
		got := w.get(r.ID)
		return countEvents(got, workflow.EventEscalated) == 1 && w.settled(got) &&
			len(w.posts(slacktest.DMChannel(approver1), r.ID, "")) > 0 && len(w.posts(slacktest.DMChannel(approver2), r.ID, "")) > 0
	})
	time.Sleep(1500 * time.Millisecond)
	got := w.get(r.ID)
	// APPROVERS is approver1 and the group of approver2 and employee (the
	// world's alice, not the requester here).
	if countEvents(got, workflow.EventEscalated) != 1 || !slices.Equal(got.Escalated, []string{approver1, approver2, employee}) ||
		!slices.Equal(got.Approvers, []string{mgrID, approver1, approver2, employee}) {
		t.Fatalf("after the escalation: approvers %v, escalated %v, events %+v", got.Approvers, got.Escalated, got.Events)
	}
	for _, a := range []string{approver1, approver2, employee} {
		posted := w.posts(slacktest.DMChannel(a), r.ID, "")
		if len(posted) != 1 || !strings.Contains(blocksText(posted[0]), "You were asked as well because <@"+mgrID+">") {
			t.Errorf("%s's messages: %d, %v", a, len(posted), posted)
		}
	}
	if txt := blocksText(w.message(card)); !strings.Contains(txt, "were asked as well") || !hasButton(w.message(card), slackapp.ActionApprove) {
		t.Errorf("the manager's card: %s", txt)
	}
	told := 0
	for _, m := range w.slack.Messages(slacktest.DMChannel(empID)) {
		if strings.Contains(m.Text, "so I also asked") {
			told++
		}
	}
	if told != 1 {
		t.Errorf("the employee was told %d times: %s", told, w.dmTexts(empID))
	}
	if lines := w.auditLines(r.ID, "also asked"); len(lines) != 1 {
		t.Errorf("audit: %q", lines)
	}
	w.clickAcked(approver2, slackapp.ActionApprove, r.ID, w.posts(slacktest.DMChannel(approver2), r.ID, "")[0])
	if done := w.waitStatus(r.ID, workflow.StatusApproved); done.DecidedBy != approver2 {
		t.Fatalf("decided by %s", done.DecidedBy)
	}
	if txt := blocksText(w.message(card)); !strings.Contains(txt, "Approved by <@"+approver2+">") {
		t.Errorf("the manager's card after the decision: %s", txt)
	}
}

// workHoursOutsideNow returns WORK_HOURS that exclude the whole of today,
// yesterday and tomorrow in UTC, so that a request made during the test
// is outside them whenever it runs.
func workHoursOutsideNow() string {
	today := time.Now().UTC().Weekday()
	names := []string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}
	var days []string
	for d := time.Sunday; d <= time.Saturday; d++ {
		if diff := (int(d) - int(today) + 7) % 7; diff > 1 && diff < 6 {
			days = append(days, names[d])
		}
	}
	// Mon-first order is not needed: a list is accepted in any order.
	return "00:00-24:00 " + strings.Join(days, ",")
}

// mailEmployee adds an employee with an address no other test uses (the
// Mailpit servers are shared) and their account; it returns the Slack ID
// and the email.
func (w *world) mailEmployee() (string, string) {
	mail := mailpittest.Unique("emp", "corp.example.com")
	name, _, _ := strings.Cut(mail, "@")
	id := "U" + strings.ToUpper(strings.ReplaceAll(name, "-", ""))
	w.slack.AddUser(slacktest.User{ID: id, Name: name, RealName: "Mia Mailer", Email: mail})
	w.ds.AddUser(name)
	return id, mail
}

// reset runs a request of user through approval (approver1) and Reveal
// to completion.
func (w *world) reset(user string) *workflow.Request {
	w.t.Helper()
	id := idRe.FindString(w.command(user, ""))
	if id == "" {
		w.t.Fatal("no request")
	}
	w.clickAcked(approver1, slackapp.ActionApprove, id, w.messageFor(slacktest.DMChannel(approver1), id, slackapp.ActionApprove))
	w.clickAcked(user, slackapp.ActionReveal, id, w.messageFor(slacktest.DMChannel(user), id, slackapp.ActionReveal))
	return w.waitStatus(id, workflow.StatusCompleted)
}

// TestNoticeEmail: without LDAP the notice goes to the Slack email the
// account was found by, here over smtps; a server that refuses the bot
// (a wrong password over STARTTLS: a 535, never retried) leaves the reset
// completed, and the failure is in the audit thread and log, without the
// SMTP password or the temporary password.
func TestNoticeEmail(t *testing.T) {
	mp := mailpittest.Require(t)
	for _, tc := range []struct {
		name      string
		server    mailpittest.Server
		password  string
		delivered bool
	}{
		{"smtps", mp.TLS, mp.Password, true},
		{"refused", mp.STARTTLS, "wrong-smtp-password", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.smtpVars(mp)
			w.vars["SMTP_URL"], w.vars["SMTP_PASSWORD"] = tc.server.SMTPURL, tc.password
			user, mail := w.mailEmployee()
			bot := w.start()
			r := w.reset(user)
			password := w.ds.ResetCalls()[0].NewPassword
			if tc.delivered {
				got := tc.server.WaitTo(t, mail, 1, waitLong)
				if raw := tc.server.Raw(t, got[0].ID); strings.Contains(raw, password) || !strings.Contains(raw, r.ID) {
					t.Fatalf("the email: %s", raw)
				}
				w.wait("the notice in the audit thread", func() bool { return len(w.auditLines(r.ID, "Notice email: sent to 1 address(es)")) == 1 })
				return
			}
			w.wait("the failure in the audit thread", func() bool { return len(w.auditLines(r.ID, "`notice_failed`")) == 1 })
			line := w.auditLines(r.ID, "`notice_failed`")[0]
			if !strings.Contains(line, mail) || !strings.Contains(line, "auth") {
				t.Errorf("audit: %s", line)
			}
			if got := w.get(r.ID); got.Status != workflow.StatusCompleted {
				t.Errorf("the reset was undone: %s", got.Status)
			}
			recs := w.auditRecords(r.ID)
			bot.stop()
			for where, s := range map[string]string{"audit thread": line, "audit log": recs, "logs": bot.logs.String()} {
				for _, secret := range []string{"wrong-smtp-password", password} {
					if strings.Contains(s, secret) {
						t.Errorf("a secret in the %s", where)
					}
				}
			}
			if got := tc.server.To(t, mail); len(got) != 0 {
				t.Errorf("%d emails", len(got))
			}
		})
	}
}
