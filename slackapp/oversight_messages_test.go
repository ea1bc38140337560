package slackapp

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/example/resetbot/workflow"
)

// withFacts returns r with every fact known: locked out (until a time),
// 3 bad passwords, a password set, two earlier resets, asked outside the
// working hours; and a reason.
func withFacts(r *workflow.Request) *workflow.Request {
	bad := 3
	r.Facts = &workflow.Facts{
		SignIn: workflow.SignIn{
			Lockout:      &workflow.Lockout{Locked: true, Since: t0.Add(-20 * time.Minute), Until: t0.Add(10 * time.Minute)},
			BadPasswords: &bad,
			PasswordSet:  &workflow.PasswordSet{At: t0.Add(-41 * 24 * time.Hour)},
		},
		Resets: &workflow.ResetHistory{Count: 2, Last: t0.Add(-72 * time.Hour)},
		Hours:  &workflow.LocalTime{Zone: "Europe/Berlin", Clock: "Sat 22:14", Outside: true},
	}
	r.Events[0].Reason = "Locked out after the holidays"
	return r
}

// escalated returns r, asked of its manager UMGR, after the fallback
// approvers UAPP1 and UAPP2 were asked as well at 15 minutes.
func escalated(r *workflow.Request) *workflow.Request {
	r.Approvers, r.AskedAs = []string{"UMGR"}, workflow.AskedManager
	r.EscalateAt = t0.Add(15 * time.Minute)
	if err := r.Escalate(r.EscalateAt, []string{"UAPP1", "UAPP2", "UEMP"}); err != nil {
		panic(err)
	}
	return r
}

// reported returns a completed r whose owner pressed "This wasn't me",
// and, when disabled is not nil, what came of disabling the account.
func reported(disabled *workflow.Event) *workflow.Request {
	r := sample(workflow.StatusCompleted)
	r.Events = append(r.Events, workflow.Event{At: t0.Add(time.Hour), Kind: workflow.EventReported, Actor: r.Requester})
	if disabled != nil {
		r.Events = append(r.Events, *disabled)
	}
	return r
}

func TestOversightMessagesGolden(t *testing.T) {
	facts := withFacts(sample(workflow.StatusPending))
	partial := sample(workflow.StatusPending)
	zero := 0
	partial.Facts = &workflow.Facts{ // the directory could not say when the lockout ends, nor give the rest
		SignIn: workflow.SignIn{Lockout: &workflow.Lockout{Locked: true, Forever: true}, BadPasswords: &zero,
			PasswordSet: &workflow.PasswordSet{MustChange: true}},
		Resets: &workflow.ResetHistory{},
		Hours:  &workflow.LocalTime{Zone: "America/New_York", Clock: "Wed 10:12"},
	}
	esc := escalated(withFacts(sample(workflow.StatusPending)))
	nobody := sample(workflow.StatusPending)
	nobody.Approvers, nobody.AskedAs, nobody.EscalateAt = []string{"UMGR"}, workflow.AskedManager, t0.Add(15*time.Minute)
	if err := nobody.Escalate(nobody.EscalateAt, []string{"UMGR"}); err != nil {
		t.Fatal(err)
	}
	reminded := withFacts(sample(workflow.StatusPending))
	reminded.RemindAt = t0.Add(10 * time.Minute)
	reminded.RemindIfDue(reminded.RemindAt)
	rows := queueRows(3)
	for _, r := range rows {
		r.RemindAt = r.CreatedAt.Add(10 * time.Minute)
		r.RemindIfDue(r.RemindAt)
	}
	rows[1] = withFacts(rows[1])
	denied := sample(workflow.StatusDenied)
	denied.Events = append(denied.Events, workflow.Event{At: denied.DecidedAt, Kind: workflow.EventDenied, Actor: "UAPP2",
		Reason: "You are on leave <!here>; call me"})
	notice, _ := EmployeeNotice(denied, denied.Events[1])
	escNotice, _ := EmployeeNotice(esc, esc.LastEvent())
	nobodyNotice, _ := EmployeeNotice(nobody, nobody.LastEvent())
	done := reported(&workflow.Event{At: t0.Add(time.Hour), Kind: workflow.EventDisabled, Detail: "the directory account was disabled"})
	refused := reported(&workflow.Event{At: t0.Add(time.Hour), Kind: workflow.EventDisabled, Code: workflow.CodeDirectoryMisconfigured,
		Detail: "the directory account could not be disabled: LDAP_BIND_DN lacks the delegated right <userAccountControl>"})
	mailed := sample(workflow.StatusCompleted)
	for name, msg := range map[string]Msg{
		"approval_facts":           ApprovalMessage(facts),
		"approval_facts_partial":   ApprovalMessage(partial),
		"approval_escalated_asked": QueueMessage("UAPP1", []*workflow.Request{esc}),
		"approval_escalated_mgr":   QueueMessage("UMGR", []*workflow.Request{esc}),
		"queue_facts":              QueueMessage("UAPP1", []*workflow.Request{rows[0], rows[1], esc}),
		"reminder_one":             ReminderMessage("UAPP1", []*workflow.Request{reminded}),
		"reminder_queue":           ReminderMessage("UAPP1", rows),
		"notice_denied_reason":     notice,
		"notice_escalated":         escNotice,
		"notice_escalated_nobody":  nobodyNotice,
		"audit_requested_facts":    AuditReply(facts, facts.Events[0]),
		"audit_denied_reason":      AuditReply(denied, denied.Events[1]),
		"audit_reminded":           AuditReply(reminded, reminded.LastEvent()),
		"audit_escalated":          AuditReply(esc, esc.LastEvent()),
		"audit_escalated_nobody":   AuditReply(nobody, nobody.LastEvent()),
		"audit_reported":           AuditReply(done, done.Events[1]),
		"audit_disabled":           AuditReply(done, done.LastEvent()),
		"audit_disable_refused":    AuditReply(refused, refused.LastEvent()),
		"audit_notified": AuditReply(mailed, workflow.Event{At: t0.Add(4 * time.Minute), Kind: workflow.EventNotified,
			Detail: "sent to 2 address(es)"}),
		"audit_notice_failed": AuditReply(mailed, workflow.Event{At: t0.Add(9 * time.Minute), Kind: workflow.EventNotified,
			Code: workflow.CodeNoticeFailed, Detail: "alice@corp.example.com after 4 attempt(s): connect: dial tcp: connection refused"}),
		"audit_parent_reported":    AuditParent(done),
		"report_alert":             ReportAlert(done, []string{"UHELP1", "S0HELPDESK"}),
		"report_alert_no_helpdesk": ReportAlert(done, nil),
		"reveal_reported":          RevealMessage(reported(nil)),
		"reveal_reported_disabled": RevealMessage(done),
		"reveal_reported_refused":  RevealMessage(refused),
	} {
		t.Run(name, func(t *testing.T) { golden(t, name, msg) })
	}
}

// TestReasonsAreShownAsPlainText: what people wrote never becomes a
// mention, a link or formatting: plain text blocks, or escaped inline
// code on one line.
func TestReasonsAreShownAsPlainText(t *testing.T) {
	r := sample(workflow.StatusPending)
	r.Events[0].Reason = "<!channel> <@UBOSS> `x` *urgent* <https://evil.example|click>"
	denied := sample(workflow.StatusDenied)
	denied.Events = append(denied.Events, workflow.Event{At: t0, Kind: workflow.EventDenied, Actor: "UAPP2", Reason: r.Events[0].Reason})
	notice, _ := EmployeeNotice(denied, denied.Events[1])
	rows := queueRows(2)
	rows[0].Events[0].Reason = r.Events[0].Reason
	for name, msg := range map[string]Msg{
		"card": ApprovalMessage(r), "queue": QueueMessage("UAPP1", rows), "reminder": ReminderMessage("UAPP1", rows),
		"audit requested": AuditReply(r, r.Events[0]), "audit denied": AuditReply(denied, denied.Events[1]), "notice": notice,
	} {
		var blocks []struct {
			Text *struct {
				Type, Text string
			} `json:"text"`
		}
		js, _ := json.Marshal(msg.Blocks)
		if err := json.Unmarshal(js, &blocks); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, b := range blocks {
			if b.Text == nil || !strings.Contains(b.Text.Text, "urgent") {
				continue
			}
			found = true
			if b.Text.Type == "mrkdwn" && (strings.Contains(b.Text.Text, "<!channel>") || strings.Contains(b.Text.Text, "<@UBOSS>") ||
				strings.Contains(b.Text.Text, "<https:") || strings.Contains(b.Text.Text, "*urgent*`")) {
				t.Errorf("%s: the reason reaches mrkdwn unescaped: %s", name, b.Text.Text)
			}
		}
		if !found {
			t.Errorf("%s: the reason is not shown: %s", name, js)
		}
		if strings.Contains(msg.Text, "<!channel>") {
			t.Errorf("%s: the reason reaches the notification text: %s", name, msg.Text)
		}
	}
}

// TestReminderFitsBlockKit: a reminder of the most rows it may hold stays
// within 50 blocks.
func TestReminderFitsBlockKit(t *testing.T) {
	rows := queueRows(maxQueueRows - 1)
	if n := len(ReminderMessage("UAPP1", rows).Blocks); n > 50 {
		t.Fatalf("%d blocks", n)
	}
}
