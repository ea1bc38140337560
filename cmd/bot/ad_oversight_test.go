package main

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/example/resetbot/internal/mailpittest"
	"github.com/example/resetbot/internal/sambatest"
	"github.com/example/resetbot/internal/slacktest"
	"github.com/example/resetbot/slackapp"
	"github.com/example/resetbot/workflow"
)

// lockableEmployee creates a user in the lockout OU o (its PSO applies)
// and a Slack member with the same email in time zone UTC; it returns the
// Slack ID, the account name and its DN.
func (w *adWorld) lockableEmployee(o sambatest.LockoutOU, prefix string, mod func(*sambatest.User)) (string, string, string) {
	w.t.Helper()
	u := sambatest.User{Name: sambatest.Unique(prefix), GivenName: "Lou", Surname: "Locke"}
	u.Mail, u.DisplayName = sambatest.Mail(u.Name), "Lou "+u.Name
	if mod != nil {
		mod(&u)
	}
	dn := w.admin.CreateLockableUser(o, u)
	id := "U" + strings.ToUpper(strings.NewReplacer("-", "", "_", "").Replace(u.Name))
	w.slack.AddUser(slacktest.User{ID: id, Name: u.Name, RealName: u.DisplayName, Email: u.Mail, TZ: "UTC"})
	return id, u.Name, dn
}

// TestADFactsOnTheCard: the approver's card shows what the directory and
// the bot know, read from a real domain controller: an account locked by
// three bad passwords under a PSO of the test's own (never the domain's
// policy) is locked with 3 bad passwords; one with two bad passwords is
// not locked, with 2; when the password was last set; the bot's earlier
// resets of the account; and a request outside the working hours in the
// employee's Slack time zone.
func TestADFactsOnTheCard(t *testing.T) {
	w := newADWorld(t)
	w.vars["WORK_HOURS"] = workHoursOutsideNow()
	o := w.admin.CreateLockoutOU(sambatest.PSO{LockoutThreshold: 3}) // locked until unlocked
	lockedID, locked, _ := w.lockableEmployee(o, "factlk", nil)
	w.admin.LockOut(locked, 3)
	triedID, tried, triedDN := w.lockableEmployee(o, "facttr", nil)
	for range 2 {
		if err := w.env.Bind(triedDN, "Wrong-Passw0rd-1"); !sambatest.IsInvalidCredentials(err) {
			t.Fatalf("bad bind: %v", err)
		}
	}
	if w.admin.Locked(tried) || w.admin.BadPwdCount(tried) != 2 {
		t.Fatalf("%s: locked %v, %d bad passwords", tried, w.admin.Locked(tried), w.admin.BadPwdCount(tried))
	}
	w.start()

	r, card := w.requestAs(lockedID, approver1)
	txt := blocksText(card)
	for _, want := range []string{":lock: *Locked out* since <!date^", "*Bad passwords:* 3 ", "*Password last set:* <!date^",
		"*Reset by this bot:* not in the last 30 days", ":crescent_moon: *Outside working hours:* asked at ", "their time (UTC)"} {
		if !strings.Contains(txt, want) {
			t.Errorf("the card of the locked account lacks %q:\n%s", want, txt)
		}
	}
	if f := r.Facts; f == nil || f.Lockout == nil || !f.Lockout.Locked || f.BadPasswords == nil || *f.BadPasswords != 3 ||
		f.PasswordSet == nil || f.PasswordSet.At.IsZero() || f.Hours == nil || !f.Hours.Outside {
		t.Errorf("stored facts %+v", r.Facts)
	}
	if _, replies := w.auditThread(r.ID); !strings.Contains(blocksText(replies[0]), "Known then: :lock: locked out · 3 bad passwords") {
		t.Errorf("audit: %s", blocksText(replies[0]))
	}

	r2, card2 := w.requestAs(triedID, approver1)
	txt = blocksText(card2)
	for _, want := range []string{":unlock: *Not locked out*", "*Bad passwords:* 2 ", "*Reset by this bot:* not in the last 30 days"} {
		if !strings.Contains(txt, want) {
			t.Errorf("the card of the account with 2 bad passwords lacks %q:\n%s", want, txt)
		}
	}
	// Reset it; the next request shows that reset.
	reveal := w.revealDM(r2, approver1, card2)
	w.clickAcked(triedID, slackapp.ActionReveal, r2.ID, reveal)
	done := w.waitStatus(r2.ID, workflow.StatusCompleted)
	_, card3 := w.requestAs(triedID, approver1)
	if txt := blocksText(card3); !strings.Contains(txt, "*Reset by this bot:* once in the last 30 days, last <!date^"+strconv.FormatInt(done.EndedAt.Unix(), 10)+"^") {
		t.Errorf("the card after a reset:\n%s", txt)
	}
}

// auditRecords returns request id's records in the durable audit log,
// as JSON lines.
func (w *world) auditRecords(id string) string {
	w.t.Helper()
	var b strings.Builder
	err := w.store.Audit(context.Background(), workflow.AuditQuery{}, func(rec workflow.AuditRecord) error {
		if rec.RequestID == id {
			js, _ := json.Marshal(rec)
			b.Write(append(js, '\n'))
		}
		return nil
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return b.String()
}

// smtpVars points the world's bots at Mailpit's STARTTLS server.
func (w *world) smtpVars(mp *mailpittest.Env) {
	w.vars["SMTP_URL"] = mp.STARTTLS.SMTPURL
	w.vars["SMTP_USERNAME"] = mp.Username
	w.vars["SMTP_PASSWORD"] = mp.Password
	w.vars["SMTP_CA_FILE"] = mp.CAFile
	w.vars["SMTP_FROM"] = "Password reset <resetbot@corp.example.com>"
	w.vars["HELPDESK_CONTACT"] = "+1 555 0100 or helpdesk@corp.example.com"
}

// TestADThisWasntMe: after a reset the owner gets the notice email at
// their directory mail and otherMailbox (over STARTTLS, no password in
// it); their "This wasn't me" (only theirs, only once) alerts helpdesk in
// the audit channel at once, mentioning HELPDESK, is in the audit log,
// and with REPORT_DISABLES and an LDAP account allowed to, disables the
// account on the domain controller; without the right it says so and
// leaves the account enabled.
func TestADThisWasntMe(t *testing.T) {
	mp := mailpittest.Require(t)
	for _, tc := range []struct {
		name            string
		disables, right bool
	}{
		{"alert only", false, true},
		{"disables", true, true},
		{"may not disable", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newADWorld(t)
			w.smtpVars(mp)
			w.vars["HELPDESK"] = "UHELP1,S0HELPDESK"
			o := w.admin.CreateLockoutOU(sambatest.PSO{}) // its operator may write userAccountControl there
			if tc.disables {
				w.vars["REPORT_DISABLES"] = "true"
			}
			if tc.right {
				w.vars["LDAP_BIND_DN"], w.vars["LDAP_BIND_PASSWORD"] = o.Operator, w.env.SeedPassword
			}
			home := mailpittest.Unique("home", "home.example")
			empID, name, dn := w.lockableEmployee(o, "report", nil)
			w.admin.Replace(dn, "otherMailbox", home, "not an address")
			mail := sambatest.Mail(name)
			w.start()

			r, card := w.requestAs(empID, approver1)
			reveal := w.revealDM(r, approver1, card)
			w.clickAcked(empID, slackapp.ActionReveal, r.ID, reveal)
			w.waitStatus(r.ID, workflow.StatusCompleted)
			password := w.ds.ResetCalls()[0].NewPassword
			for _, addr := range []string{mail, home} {
				got := mp.STARTTLS.WaitTo(t, addr, 1, waitLong)
				if len(got) != 1 || got[0].Subject != "Your password was reset" || len(got[0].Recipients()) != 1 {
					t.Fatalf("to %s: %+v", addr, got)
				}
				d := mp.STARTTLS.Detail(t, got[0].ID)
				raw := mp.STARTTLS.Raw(t, got[0].ID)
				for _, want := range []string{name, "Bob Jones", r.ID, "+1 555 0100", "If this was NOT you"} {
					if !strings.Contains(d.Text, want) {
						t.Errorf("the email to %s lacks %q:\n%s", addr, want, d.Text)
					}
				}
				if strings.Contains(raw, password) {
					t.Fatalf("the password is in the email to %s", addr)
				}
			}
			w.wait("the notice in the audit thread", func() bool { return len(w.auditLines(r.ID, "Notice email: sent to 2 address(es)")) == 1 })
			if lines := w.auditLines(r.ID, "not an address"); len(lines) != 1 {
				t.Errorf("the skipped otherMailbox value is not audited: %q", lines)
			}

			// Only the owner may report.
			dm := w.buttonMessage(slacktest.DMChannel(empID), slackapp.ActionReport)
			if ans := w.clickReply(approver1, slackapp.ActionReport, r.ID, dm); !strings.Contains(ans, "Only the person who asked") {
				t.Fatalf("someone else's report answered %q", ans)
			}
			w.clickAcked(empID, slackapp.ActionReport, r.ID, dm)
			w.wait("the report and what followed", func() bool {
				got := w.get(r.ID)
				return got.Reported() && (!tc.disables || countEvents(got, workflow.EventDisabled) == 1) && w.settled(got)
			})
			alerts := 0
			for _, m := range w.slack.Messages(auditChannel) {
				if m.ThreadTS == "" && strings.Contains(m.Text, "<@UHELP1> <!subteam^S0HELPDESK>") && strings.Contains(m.Text, r.ID) {
					alerts++
				}
			}
			if alerts != 1 {
				t.Errorf("%d alerts in the audit channel", alerts)
			}
			if lines := w.auditLines(r.ID, "pressed *This wasn't me*"); len(lines) != 1 {
				t.Errorf("audit thread: %q", lines)
			}
			disabled := w.admin.UserAccountControl(name)&sambatest.UACAccountDisable != 0
			if disabled != (tc.disables && tc.right) {
				t.Errorf("the account is disabled: %v", disabled)
			}
			dmText := blocksText(w.message(dm))
			switch {
			case tc.disables && tc.right:
				if len(w.auditLines(r.ID, "the directory account was disabled")) != 1 || !strings.Contains(dmText, "Your directory account was disabled") {
					t.Errorf("audit %q; DM %s", w.auditLines(r.ID, "disabled"), dmText)
				}
			case tc.disables:
				if len(w.auditLines(r.ID, "`directory_misconfigured`")) != 1 || strings.Contains(dmText, "was disabled") {
					t.Errorf("audit %q; DM %s", w.auditLines(r.ID, "disable"), dmText)
				}
			}
			if !strings.Contains(dmText, "You reported this reset") || hasButton(w.message(dm), slackapp.ActionReport) {
				t.Errorf("the DM after the report: %s", dmText)
			}
			if ans := w.clickReply(empID, slackapp.ActionReport, r.ID, dm); !strings.Contains(ans, "already reported") {
				t.Errorf("a second report answered %q", ans)
			}
			recs := w.auditRecords(r.ID)
			if !strings.Contains(recs, `"event":"reported"`) || !strings.Contains(recs, `"event":"notified"`) {
				t.Errorf("audit log: %s", recs)
			}
		})
	}
}
