package workflow_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/example/resetbot/workflow"
)

// fakeHelpdesk is HELPDESK: a list of chat user IDs.
type fakeHelpdesk struct {
	mu      sync.Mutex
	members []string
}

func (f *fakeHelpdesk) Includes(_ context.Context, user string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.members, user), nil
}

// withHelpdesk makes UDESK (and UAPP1, also an approver) helpdesk
// members; UDESK has a chat profile and a directory account of their own.
func withHelpdesk(h **fakeHelpdesk) option {
	return func(c *workflow.Config, d *workflow.Deps) {
		*h = &fakeHelpdesk{members: []string{"UDESK", "UAPP1"}}
		d.Helpdesk = *h
		d.Identity.(fakeIdentity)["UDESK"] = workflow.Person{Email: "desk@corp.example.com"}
		d.Accounts.(*fakeAccounts).byEmail["desk@corp.example.com"] = workflow.Account{UserName: "desk"}
	}
}

func (h *harness) ask(a workflow.Ask) (*workflow.Request, error) {
	return h.svc.Ask(context.Background(), a)
}

// TestOnBehalfWhoMay: only helpdesk members may name someone else;
// anyone else is refused with their own words, nothing is looked up or
// stored, the attempt is audited and counts against nobody; naming
// oneself is asking for oneself.
func TestOnBehalfWhoMay(t *testing.T) {
	var desk *fakeHelpdesk
	h := newHarness(t, withHelpdesk(&desk), withUnlock(false))
	h.people["UOTHER"] = workflow.Person{Email: "other@corp.example.com"}
	for _, a := range []workflow.Ask{{By: "UOTHER", For: "UEMP"}, {By: "UOTHER", ForEmail: "alice@corp.example.com"}, {By: "UOTHER", For: "UEMP", Action: workflow.ActionUnlock}} {
		if _, err := h.ask(a); workflow.ErrorCode(err) != workflow.CodeNotHelpdesk {
			t.Fatalf("%+v: %v", a, err)
		}
	}
	if _, err := h.store.Open(context.Background(), "UEMP"); workflow.ErrorCode(err) != workflow.CodeNoOpenRequest {
		t.Fatalf("a request was stored: %v", err)
	}
	h.svc.Wait()
	told := h.note.refused()
	if !slices.ContainsFunc(told, func(f workflow.Refusal) bool {
		return f.Code == workflow.CodeNotHelpdesk && f.Agent == "UOTHER" && f.User == "UEMP"
	}) {
		t.Fatalf("refusals told %+v", told)
	}
	for _, u := range []string{"UEMP", "UOTHER"} {
		if _, n, _ := h.store.Standing(context.Background(), u, workflow.ActionReset, t0.Add(-1)); n != 0 {
			t.Errorf("%s has %d counted attempts", u, n)
		}
	}
	// Naming oneself, by mention or by email, is one's own request.
	r, err := h.ask(workflow.Ask{By: "UEMP", For: "UEMP"})
	if err != nil || r.Agent != "" || r.Requester != "UEMP" {
		t.Fatalf("naming oneself: %v %+v", err, r)
	}
}

// TestOnBehalfByMention: the request is the employee's (their account,
// guards, approvers); the agent is recorded, is not among the approvers,
// cannot reveal; the employee reveals; at Reveal the account is derived
// from the employee, never from the agent.
func TestOnBehalfByMention(t *testing.T) {
	var desk *fakeHelpdesk
	h := newHarness(t, withHelpdesk(&desk))
	ctx := context.Background()
	r, err := h.ask(workflow.Ask{By: "UAPP1", For: "UEMP"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Requester != "UEMP" || r.Agent != "UAPP1" || r.Account.UserName != "alice" || r.Events[0].Actor != "UAPP1" || r.Status != workflow.StatusPending {
		t.Fatalf("request %+v", r)
	}
	if slices.Contains(r.Approvers, "UAPP1") || slices.Contains(r.Approvers, "UEMP") || len(r.Approvers) != 1 {
		t.Fatalf("approvers %v: neither the agent nor the employee may decide", r.Approvers)
	}
	if _, err := h.svc.Decide(ctx, r.ID, "UAPP1", true); workflow.ErrorCode(err) != workflow.CodeNotApprover {
		t.Fatalf("the agent approved: %v", err)
	}
	if _, err := h.svc.Decide(ctx, r.ID, "UAPP2", true); err != nil {
		t.Fatal(err)
	}
	if _, err := h.reveal(r.ID, "UAPP1"); workflow.ErrorCode(err) != workflow.CodeNotRequester {
		t.Fatalf("the agent revealed: %v", err)
	}
	// The agent's account means nothing; the employee's changed.
	h.people["UEMP"] = workflow.Person{Email: "bob@corp.example.com"}
	if _, err := h.reveal(r.ID, "UEMP"); err != nil {
		t.Fatal(err)
	}
	if got := h.get(t, r.ID); got.Failure != workflow.CodeAccountChanged || len(h.dir.passwords()) != 0 {
		t.Fatalf("account derived from someone else: %s %s", got.Status, got.Failure)
	}
	recs, _ := h.records(workflow.AuditQuery{User: "UAPP1"})
	if len(recs) == 0 || recs[0].Agent != "UAPP1" || recs[0].User != "UEMP" || recs[0].Actor != "UAPP1" {
		t.Fatalf("audit by agent: %+v", recs)
	}
}

// TestOnBehalfHelpdeskApproves: with HELPDESK_APPROVES the agent's
// request is the approval: approved at once (the employee reveals), an
// unlock done at once; never when the named employee is the agent.
func TestOnBehalfHelpdeskApproves(t *testing.T) {
	var desk *fakeHelpdesk
	h := newHarness(t, withHelpdesk(&desk), withUnlock(true), func(c *workflow.Config, _ *workflow.Deps) { c.HelpdeskApproves = true })
	r, err := h.ask(workflow.Ask{By: "UDESK", For: "UEMP"})
	if err != nil || r.Status != workflow.StatusApproved || r.DecidedBy != "UDESK" || r.AskedAs != workflow.AskedHelpdesk {
		t.Fatalf("request %v %+v", err, r)
	}
	if _, err := h.reveal(r.ID, "UEMP"); err != nil {
		t.Fatal(err)
	}
	if d := h.display.last(); d.Password == "" || h.display.to[0] != "UEMP" {
		t.Fatalf("shown to %v", h.display.to)
	}
	h.lock("alice", locked)
	u, err := h.ask(workflow.Ask{By: "UDESK", For: "UEMP", Action: workflow.ActionUnlock})
	if err != nil || u.Status != workflow.StatusCompleted || len(h.accts.unlocks()) != 1 {
		t.Fatalf("unlock: %v %+v", err, u)
	}
	// Their own request is not on behalf: someone else approves.
	own, err := h.ask(workflow.Ask{By: "UDESK", For: "UDESK"})
	if err != nil || own.Agent != "" || own.Status != workflow.StatusPending || slices.Contains(own.Approvers, "UDESK") {
		t.Fatalf("own request of an agent: %v %+v", err, own)
	}
}

// TestOnBehalfByEmail: an email names the chat member who has it; one
// outside the allowed domains is refused; nobody in chat has it: refused
// unless HELPDESK_DELIVERY, then the agent (and only them) reveals a
// password that must be changed at the next logon, never approved by
// themselves; when that cannot be set, nobody sees the password.
func TestOnBehalfByEmail(t *testing.T) {
	ctx := context.Background()
	var desk *fakeHelpdesk
	h := newHarness(t, withHelpdesk(&desk), withUnlock(false))
	r, err := h.ask(workflow.Ask{By: "UDESK", ForEmail: "ALICE@corp.example.com"})
	if err != nil || r.Requester != "UEMP" || r.Agent != "UDESK" {
		t.Fatalf("by email of a chat member: %v %+v", err, r)
	}
	if _, err := h.ask(workflow.Ask{By: "UDESK", ForEmail: "erin@elsewhere.example"}); workflow.ErrorCode(err) != workflow.CodeEmailDomain {
		t.Fatalf("another domain: %v", err)
	}
	h.accts.set(func(f *fakeAccounts) {
		f.byEmail["erin@corp.example.com"] = workflow.Account{UserName: "erin", DN: "CN=erin", GUID: "g-erin"}
	})
	// Refused before the directory is asked (it is down here).
	h.accts.set(func(f *fakeAccounts) { f.down = true })
	if _, err := h.ask(workflow.Ask{By: "UDESK", ForEmail: "erin@corp.example.com"}); workflow.ErrorCode(err) != workflow.CodeNotInChat {
		t.Fatalf("nobody in chat, no HELPDESK_DELIVERY: %v", err)
	}
	h.accts.set(func(f *fakeAccounts) { f.down = false })
	// An unlock hands nothing over: it goes ahead without HELPDESK_DELIVERY.
	h.lock("erin", locked)
	u, err := h.ask(workflow.Ask{By: "UDESK", ForEmail: "erin@corp.example.com", Action: workflow.ActionUnlock})
	if err != nil || u.Status != workflow.StatusCompleted || u.InChat() || !slices.Equal(h.accts.unlocks(), []string{"erin"}) {
		t.Fatalf("unlock for someone with no chat account: %v %+v", err, u)
	}
	if _, err := h.store.Open(ctx, workflow.MailRequester("erin@corp.example.com")); workflow.ErrorCode(err) != workflow.CodeNoOpenRequest {
		t.Fatalf("open: %v", err)
	}

	h = newHarness(t, withHelpdesk(&desk), func(c *workflow.Config, _ *workflow.Deps) { c.HelpdeskDelivery, c.HelpdeskApproves = true, true })
	h.accts.set(func(f *fakeAccounts) {
		f.byEmail["erin@corp.example.com"] = workflow.Account{UserName: "erin", DN: "CN=erin", GUID: "g-erin"}
	})
	r, err = h.ask(workflow.Ask{By: "UAPP1", ForEmail: "erin@corp.example.com"})
	if err != nil || r.InChat() || r.Recipient() != "UAPP1" || r.Status != workflow.StatusPending || slices.Contains(r.Approvers, "UAPP1") {
		t.Fatalf("for the agent to hand over: %v %+v", err, r)
	}
	if _, err := h.svc.Decide(ctx, r.ID, "UAPP1", true); workflow.ErrorCode(err) != workflow.CodeNotApprover {
		t.Fatalf("the agent approved a password for themselves: %v", err)
	}
	mustDecideAs(t, h, r.ID, "UAPP2")
	if _, err := h.reveal(r.ID, "UAPP2"); workflow.ErrorCode(err) != workflow.CodeNotRequester {
		t.Fatalf("another person revealed: %v", err)
	}
	if _, err := h.reveal(r.ID, "UAPP1"); err != nil {
		t.Fatal(err)
	}
	got := h.get(t, r.ID)
	if got.Status != workflow.StatusCompleted || !slices.Equal(h.display.to, []string{"UAPP1"}) || !h.display.last().MustChange || !slices.Equal(h.accts.expired, []string{"erin"}) {
		t.Fatalf("handed over: %s to %v, must change %v", got.Status, h.display.to, h.display.last().MustChange)
	}
	assertNoLeak(t, h, h.display.last().Password)

	// "Must change" cannot be set: the password is dropped.
	h.accts.set(func(f *fakeAccounts) { f.expireErr = workflow.Errorf(workflow.CodeLookupUnavailable, "write refused") })
	r, _ = h.ask(workflow.Ask{By: "UAPP1", ForEmail: "erin@corp.example.com"})
	mustDecideAs(t, h, r.ID, "UAPP2")
	if _, err := h.reveal(r.ID, "UAPP1"); err != nil {
		t.Fatal(err)
	}
	if got := h.get(t, r.ID); got.Failure != workflow.CodeAgentNotDelivered || len(h.display.to) != 1 || len(h.dir.passwords()) != 2 {
		t.Fatalf("not delivered: %s, shown %d times", got.Failure, len(h.display.to))
	}

	// An agent who left helpdesk receives nothing.
	h.accts.set(func(f *fakeAccounts) { f.expireErr = nil })
	r, _ = h.ask(workflow.Ask{By: "UAPP1", ForEmail: "erin@corp.example.com"})
	mustDecideAs(t, h, r.ID, "UAPP2")
	desk.mu.Lock()
	desk.members = []string{"UDESK"}
	desk.mu.Unlock()
	if _, err := h.reveal(r.ID, "UAPP1"); err != nil {
		t.Fatal(err)
	}
	if got := h.get(t, r.ID); got.Failure != workflow.CodeNotHelpdesk || len(h.dir.passwords()) != 2 {
		t.Fatalf("agent no longer in helpdesk: %s, %d resets", got.Failure, len(h.dir.passwords()))
	}
}

func mustDecideAs(t *testing.T, h *harness, id, approver string) {
	t.Helper()
	if _, err := h.svc.Decide(context.Background(), id, approver, true); err != nil {
		t.Fatal(err)
	}
}
