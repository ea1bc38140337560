package slackapp

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/example/resetbot/workflow"
)

// lockedUntil is a lockout that ends by itself at t0+30m.
var lockedUntil = &workflow.Lockout{Known: true, Locked: true, Since: t0.Add(-time.Minute), Until: t0.Add(30 * time.Minute)}

// unlockSample is sample(status) as an unlock request; without approvers
// (UNLOCK_APPROVAL=none) it never was pending.
func unlockSample(status workflow.Status, approvers bool) *workflow.Request {
	r := sample(status)
	r.Action = workflow.ActionUnlock
	if !approvers {
		r.Approvers, r.DecidedBy, r.DecidedAt, r.RevealBy = nil, "", time.Time{}, time.Time{}
	}
	return r
}

// onBehalf is sample(status) asked by the helpdesk agent UDESK.
func onBehalf(status workflow.Status) *workflow.Request {
	r := sample(status)
	r.Agent = "UDESK"
	r.Events[0].Actor = "UDESK"
	return r
}

// forAgent is a reset for an employee with no Slack account, whose
// password goes to the agent UDESK.
func forAgent(status workflow.Status) *workflow.Request {
	r := onBehalf(status)
	r.Requester = workflow.MailRequester("erin@corp.example.com")
	r.Account = workflow.Account{UserName: "erin", Email: "erin@corp.example.com", DisplayName: "Erin Example"}
	return r
}

// TestUnlockAndOnBehalfMessagesGolden: every message of an unlock, of a
// reset that met a lockout, and of a request on an employee's behalf
// (delivered to them, or to the agent when they have no Slack account).
func TestUnlockAndOnBehalfMessagesGolden(t *testing.T) {
	at := t0.Add(3 * time.Minute)
	unlocked := unlockSample(workflow.StatusCompleted, false)
	notPermitted := unlockSample(workflow.StatusFailed, true)
	notPermitted.Failure, notPermitted.StillLocked = workflow.CodeUnlockNotPermitted, lockedUntil
	forever := unlockSample(workflow.StatusFailed, false)
	forever.Failure, forever.StillLocked = workflow.CodeUnlockNotPermitted, &workflow.Lockout{Known: true, Locked: true, Forever: true}
	resetUnlocked := sample(workflow.StatusCompleted)
	resetUnlocked.Unlocked = true
	resetStill := sample(workflow.StatusCompleted)
	resetStill.StillLocked = lockedUntil
	helpdeskApproved := onBehalf(workflow.StatusApproved)
	helpdeskApproved.AskedAs, helpdeskApproved.Approvers, helpdeskApproved.DecidedBy = workflow.AskedHelpdesk, []string{"UDESK"}, "UDESK"
	agentPending := forAgent(workflow.StatusPending)
	agentPending.Approvers = []string{"UAPP2"}
	password := workflow.Delivery{Password: "Xy7#kP2!mQ9-vR4=tW8a"}

	cases := map[string]Msg{
		// Unlocks.
		"unlock_done":               UnlockReply(unlocked),
		"unlock_pending":            UnlockReply(unlockSample(workflow.StatusPending, true)),
		"unlock_not_permitted":      UnlockReply(notPermitted),
		"unlock_not_permitted_ever": UnlockReply(forever),
		"unlock_approval_pending":   ApprovalMessage(unlockSample(workflow.StatusPending, true)),
		"unlock_audit_parent":       AuditParent(unlocked),
		"unlock_audit_requested":    AuditReply(unlocked, unlocked.Events[0]),
		"unlock_audit_unlocking":    AuditReply(unlocked, workflow.Event{At: t0, Kind: workflow.EventUnlocking}),
		"unlock_audit_completed":    AuditReply(unlocked, workflow.Event{At: at, Kind: workflow.EventCompleted}),
		"unlock_audit_not_permitted": AuditReply(notPermitted, workflow.Event{At: at, Kind: workflow.EventFailed, Code: workflow.CodeUnlockNotPermitted,
			Detail: `LDAP unlock (lockoutTime=0) of <GUID=x> on dc1: LDAP_BIND_DN "CN=svc" may not write lockoutTime`}),
		"unlock_notice_completed": noticeOf(t, unlockSample(workflow.StatusCompleted, true), workflow.Event{At: at, Kind: workflow.EventCompleted}),
		"unlock_notice_failed":    noticeOf(t, notPermitted, workflow.Event{At: at, Kind: workflow.EventFailed, Code: workflow.CodeUnlockNotPermitted}),
		"unlock_notice_denied":    noticeOf(t, unlockSample(workflow.StatusDenied, true), workflow.Event{At: at, Kind: workflow.EventDenied, Actor: "UAPP2"}),
		"unlock_notice_expired":   noticeOf(t, unlockSample(workflow.StatusExpired, true), workflow.Event{At: at, Kind: workflow.EventExpired}),
		"unlock_status":           StatusReply(unlockSample(workflow.StatusPending, true)),
		"unlock_cancel":           CancelReply(unlockSample(workflow.StatusCancelled, true)),
		"unlock_refusal": RefusalMessage(workflow.Refusal{At: t0, User: "UEMP", Action: workflow.ActionUnlock, Account: "alice", Code: workflow.CodeNotLocked,
			Detail: `"alice" is not locked (msDS-User-Account-Control-Computed); nothing was written`}),
		"unlock_queue": QueueMessage("UAPP1", []*workflow.Request{queueRows(1)[0], unlockSample(workflow.StatusPending, true)}),

		// A reset that met a lockout.
		"password_unlocked":        PasswordMessage(sample(workflow.StatusResetting), workflow.Delivery{Password: password.Password, Unlocked: true}),
		"password_still_locked":    PasswordMessage(sample(workflow.StatusResetting), workflow.Delivery{Password: password.Password, StillLocked: lockedUntil}),
		"reveal_completed_still":   RevealMessage(resetStill),
		"audit_completed_unlocked": AuditReply(resetUnlocked, workflow.Event{At: at, Kind: workflow.EventCompleted}),
		"audit_completed_still_locked": AuditReply(resetStill, workflow.Event{At: at, Kind: workflow.EventCompleted, Code: workflow.CodeUnlockNotPermitted,
			Detail: "the account is locked and stays locked: LDAP_BIND_DN may not write lockoutTime"}),

		// On behalf, delivered to the employee.
		"behalf_receipt":          AgentReceipt(onBehalf(workflow.StatusPending)),
		"behalf_receipt_approved": AgentReceipt(helpdeskApproved),
		"behalf_receipt_unlocked": AgentReceipt(func() *workflow.Request {
			r := unlockSample(workflow.StatusCompleted, false)
			r.Agent = "UDESK"
			return r
		}()),
		"behalf_notice":          noticeOf(t, onBehalf(workflow.StatusPending), onBehalf(workflow.StatusPending).Events[0]),
		"behalf_notice_approved": noticeOf(t, helpdeskApproved, helpdeskApproved.Events[0]),
		"behalf_approval":        ApprovalMessage(onBehalf(workflow.StatusPending)),
		"behalf_reveal":          RevealMessage(onBehalf(workflow.StatusApproved)),
		"behalf_reveal_helpdesk": RevealMessage(helpdeskApproved),
		"behalf_audit_parent":    AuditParent(onBehalf(workflow.StatusPending)),
		"behalf_audit_requested": AuditReply(onBehalf(workflow.StatusPending), onBehalf(workflow.StatusPending).Events[0]),
		"behalf_audit_helpdesk":  AuditReply(helpdeskApproved, helpdeskApproved.Events[0]),
		"behalf_status":          StatusReply(onBehalf(workflow.StatusPending)),
		"behalf_cancel":          CancelReply(onBehalf(workflow.StatusCancelled)),
		"behalf_refusal": RefusalMessage(workflow.Refusal{At: t0, User: "UEMP", Agent: "UDESK", Action: workflow.ActionReset, Account: "alice", Code: workflow.CodeAccountDisabled,
			Detail: `"alice" (CN=alice) is disabled in the directory`}),
		"behalf_not_helpdesk": RefusalMessage(workflow.Refusal{At: t0, User: workflow.MailRequester("bob@corp.example.com"), Agent: "UOTHER", Action: workflow.ActionReset,
			Code: workflow.CodeNotHelpdesk, Detail: "UOTHER named another person (bob@corp.example.com) but is not in HELPDESK; nothing was looked up"}),

		// On behalf of an employee with no Slack account: the agent reveals.
		"agent_receipt":         AgentReceipt(agentPending),
		"agent_approval":        ApprovalMessage(agentPending),
		"agent_reveal":          RevealMessage(forAgent(workflow.StatusApproved)),
		"agent_reveal_done":     RevealMessage(forAgent(workflow.StatusCompleted)),
		"agent_password":        PasswordMessage(forAgent(workflow.StatusResetting), workflow.Delivery{Password: password.Password, MustChange: true}),
		"agent_audit_parent":    AuditParent(agentPending),
		"agent_audit_completed": AuditReply(forAgent(workflow.StatusCompleted), workflow.Event{At: at, Kind: workflow.EventCompleted}),
		"agent_notice_failed": noticeOf(t, func() *workflow.Request {
			r := forAgent(workflow.StatusFailed)
			r.Failure = workflow.CodeAgentNotDelivered
			return r
		}(), workflow.Event{At: at, Kind: workflow.EventFailed, Code: workflow.CodeAgentNotDelivered}),
		"agent_queue": QueueMessage("UAPP2", []*workflow.Request{queueRows(1)[0], agentPending}),

		// What an agent reads about a refusal.
		"behalf_error_disabled": TextMessage(OnBehalfErrorText(workflow.Errorf(workflow.CodeAccountDisabled, "detail"), workflow.ActionReset, user("UEMP"), nil)),
		"behalf_error_not_chat": TextMessage(OnBehalfErrorText(workflow.Errorf(workflow.CodeNotInChat, "detail"), workflow.ActionReset, code("erin@corp.example.com"), nil)),
		"behalf_error_open":     TextMessage(OnBehalfErrorText(workflow.Errorf(workflow.CodeOpenRequest, "detail"), workflow.ActionUnlock, user("UEMP"), sample(workflow.StatusPending))),
		"help":                  HelpMessage("/reset-password", ""),
	}
	for name, msg := range cases {
		t.Run(name, func(t *testing.T) { golden(t, name, msg) })
	}
}

// noticeOf is EmployeeNotice(r, ev), which must tell someone.
func noticeOf(t *testing.T, r *workflow.Request, ev workflow.Event) Msg {
	t.Helper()
	msg, ok := EmployeeNotice(r, ev)
	if !ok {
		t.Fatalf("no notice for %s of a %s request", ev.Kind, r.Action.Name())
	}
	return msg
}

// TestWhoIsToldWhat: the employee who unlocked their own account at once
// read the outcome in the command's answer and gets no DM; with an
// approval, or on their behalf, they get one; an employee with no Slack
// account gets none (the agent read the answer); the employee is told
// who asked on their behalf, and the approver that the password goes to
// the agent.
func TestWhoIsToldWhat(t *testing.T) {
	done := workflow.Event{At: t0, Kind: workflow.EventCompleted}
	if _, ok := EmployeeNotice(unlockSample(workflow.StatusCompleted, false), done); ok {
		t.Error("a DM for an unlock the command already answered")
	}
	if _, ok := EmployeeNotice(unlockSample(workflow.StatusCompleted, true), done); !ok {
		t.Error("no DM for an approved unlock")
	}
	behalf := unlockSample(workflow.StatusCompleted, false)
	behalf.Agent = "UDESK"
	if _, ok := EmployeeNotice(behalf, done); !ok {
		t.Error("no DM for an unlock made on the employee's behalf")
	}
	if _, ok := EmployeeNotice(sample(workflow.StatusPending), sample(workflow.StatusPending).Events[0]); ok {
		t.Error("a DM to the employee about their own request")
	}
	msg, ok := EmployeeNotice(onBehalf(workflow.StatusPending), onBehalf(workflow.StatusPending).Events[0])
	if !ok || !strings.Contains(msg.Text, "<@UDESK> (helpdesk)") || !strings.Contains(msg.Text, "on your behalf") {
		t.Errorf("the employee is not told who asked: %+v", msg)
	}
	if txt := ApprovalMessage(forAgent(workflow.StatusPending)).Blocks; !strings.Contains(mustJSON(t, txt), "the temporary password goes to <@UDESK>") {
		t.Errorf("the approver is not told the password goes to the agent: %s", mustJSON(t, txt))
	}
	for _, st := range []workflow.Status{workflow.StatusPending, workflow.StatusCompleted, workflow.StatusFailed} {
		if s := mustJSON(t, AuditParent(forAgent(st))); !strings.Contains(s, "HELPDESK_DELIVERY=true") {
			t.Errorf("the audit parent of a %s request for the agent does not say where the password goes: %s", st, s)
		}
	}
	// Nothing addressed to a "mail:" key ever becomes a mention.
	for _, m := range []Msg{ApprovalMessage(forAgent(workflow.StatusPending)), AuditParent(forAgent(workflow.StatusPending)), RevealMessage(forAgent(workflow.StatusApproved))} {
		if s := mustJSON(t, m); strings.Contains(s, "<@mail:") {
			t.Errorf("a mail key as a mention: %s", s)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestParseCommand: what the command's text asks for, with Slack's
// escaped mentions and links, and what it refuses.
func TestParseCommand(t *testing.T) {
	good := map[string]commandLine{
		"":                                 {action: workflow.ActionReset},
		"unlock":                           {action: workflow.ActionUnlock},
		"UNLOCK":                           {action: workflow.ActionUnlock},
		" STATUS ":                         {sub: "status"},
		"cancel":                           {sub: "cancel"},
		"help":                             {sub: "help"},
		"<@U123ABC>":                       {action: workflow.ActionReset, user: "U123ABC"},
		"<@W123ABC|erin>":                  {action: workflow.ActionReset, user: "W123ABC"},
		"<@U123ABC|erin> unlock":           {action: workflow.ActionUnlock, user: "U123ABC"},
		"unlock <@U123ABC>":                {action: workflow.ActionUnlock, user: "U123ABC"},
		"for erin@corp.example.com":        {action: workflow.ActionReset, email: "erin@corp.example.com"},
		"FOR erin@corp.example.com unlock": {action: workflow.ActionUnlock, email: "erin@corp.example.com"},
		"for <mailto:e@corp.example.com|e@corp.example.com>": {action: workflow.ActionReset, email: "e@corp.example.com"},
	}
	for text, want := range good {
		got, problem := parseCommand(text)
		if problem != "" || got != want {
			t.Errorf("parseCommand(%q) = %+v, %q; want %+v", text, got, problem, want)
		}
	}
	for _, text := range []string{"reset bob", "<!channel>", "@erin", "for erin", "for <@U1>", "<@U1> <@U2>", "status please",
		"for a@b.c d@e.f", "<@u123>", "<@U123|x><!here>", "for Erin <erin@corp.example.com>", "unlock unlock", "<#C123|general>"} {
		if got, problem := parseCommand(text); problem == "" {
			t.Errorf("parseCommand(%q) = %+v, accepted", text, got)
		}
	}
}

// TestAgentWords: every code an agent may read about a refusal has words
// with the employee named and nothing left to fill in.
func TestAgentWords(t *testing.T) {
	for _, c := range workflow.Codes {
		for _, a := range []workflow.Action{workflow.ActionReset, workflow.ActionUnlock} {
			s := OnBehalfErrorText(workflow.Errorf(c, "detail that must not show"), a, "<@UEMP>", nil)
			if s == "" || strings.Contains(s, "detail that must not show") || strings.ContainsAny(s, "{}") {
				t.Errorf("%s, %s: %q", c, a, s)
			}
			if u := ActionErrorText(workflow.Errorf(c, "x"), a, nil); u == "" || strings.ContainsAny(u, "{}") {
				t.Errorf("%s, %s: employee words %q", c, a, u)
			}
		}
	}
}
