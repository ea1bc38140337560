package slackapp

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/example/resetbot/workflow"
)

func TestModalsGolden(t *testing.T) {
	meta := modalMeta{URL: "https://hooks.slack.com/commands/T1/1/abc", Channel: "DUEMP"}.encode()
	r := sample(workflow.StatusPending)
	r.Account.UserName = "a<b>&c"
	for name, v := range map[string]any{
		"modal_reason": ReasonModal(meta),
		"modal_deny":   DenyModal(r, modalMeta{ID: r.ID, Message: "DUAPP1/1700000000.000001"}.encode()),
	} {
		t.Run(name, func(t *testing.T) { golden(t, name, v) })
	}
	for _, v := range []any{ReasonModal(meta), DenyModal(r, meta)} {
		js, _ := json.Marshal(v)
		var m struct {
			Title, Submit, Close struct{ Text string }
		}
		_ = json.Unmarshal(js, &m)
		for _, s := range []string{m.Title.Text, m.Submit.Text, m.Close.Text} {
			if s == "" || len([]rune(s)) > 24 {
				t.Errorf("title, submit or close %q: Slack takes 1 to 24 characters", s)
			}
		}
	}
}

// TestReasonModal: with REQUIRE_REASON the command opens the reason modal
// on its trigger and creates nothing; a submission with no real reason
// keeps the modal open with a message under the input; a reason makes the
// request (cleaned), answered where the command was typed.
func TestReasonModal(t *testing.T) {
	h := newAppHarness(t, func(a *App) { a.AskReason = true })
	cmd := h.command(employeeID, "")
	v := h.modal(employeeID, CallbackReason)
	h.acked(cmd)
	if h.store.Len() != 0 {
		t.Fatal("a request before the reason")
	}
	if meta := readMeta(v.PrivateMetadata); meta.URL != h.answers.url(cmd) || meta.Channel != "DUEMP" {
		t.Fatalf("metadata %+v", meta)
	}
	sub := h.submitView(v, " \n\u200b\u202e ")
	h.acked(sub)
	if ack, _ := h.srv.Ack(sub); !strings.Contains(string(ack), `"response_action":"errors"`) || !strings.Contains(string(ack), `"reason":"`+reasonNeeded) {
		t.Fatalf("an empty reason acked with %s", ack)
	}
	if h.store.Len() != 0 {
		t.Fatal("a request without a reason")
	}
	sub = h.submitView(v, "Locked out\nafter my holiday <!channel>")
	h.acked(sub)
	if ack, _ := h.srv.Ack(sub); len(ack) != 0 && string(ack) != "null" {
		t.Fatalf("a good reason acked with %s (the modal must close)", ack)
	}
	answer := h.answer(cmd)
	r, err := h.store.Open(context.Background(), employeeID)
	if err != nil || r.Reason() != "Locked out after my holiday <!channel>" || !strings.Contains(answer.Text, r.ID) {
		t.Fatalf("request %+v, %v; answer %q", r, err, answer.Text)
	}
	// Without a trigger in time, the employee is told.
	h2 := newAppHarness(t, func(a *App) { a.AskReason = true })
	env := h2.envelope()
	h2.dispatch(commandEvent(env, employeeID, "", h2.answers.url(env))) // a trigger the server never issued
	if got := h2.answer(env).Text; got != genericText {
		t.Fatalf("answered %q", got)
	}
}

// TestDenyModal: Deny opens a modal and decides nothing; its submission
// denies with the approver's reason; a Deny the state machine would
// refuse is answered at once, without a modal.
func TestDenyModal(t *testing.T) {
	h := newAppHarness(t, nil)
	r := h.submit(employeeID)
	click := h.click(approver1ID, ActionDeny, r.ID)
	v := h.modal(approver1ID, CallbackDeny)
	if meta := readMeta(v.PrivateMetadata); meta.ID != r.ID || meta.URL != h.answers.url(click) || meta.Message != "DUAPP1/1700000000.000001" {
		t.Fatalf("metadata %+v", meta)
	}
	if !strings.Contains(string(v.Blocks), "Deny \\u003c@UEMP\\u003e's request") {
		t.Fatalf("modal %s", v.Blocks)
	}
	h.settle()
	if got := h.request(r.ID); got.Status != workflow.StatusPending {
		t.Fatalf("the click decided: %s", got.Status)
	}
	h.acked(h.submitView(v, "  Not while you are on leave  "))
	denied := h.waitStatus(r.ID, workflow.StatusDenied)
	if denied.DecidedBy != approver1ID || denied.DenialReason() != "Not while you are on leave" {
		t.Fatalf("denied by %s because %q", denied.DecidedBy, denied.DenialReason())
	}
	h.settle()
	h.noAnswer(click)
	// The same modal submitted again: refused, answered through the click's URL.
	h.submitView(v, "again")
	if got := h.answer(click).Text; !strings.Contains(got, "already denied by <@"+approver1ID+">") {
		t.Fatalf("a second submission answered %q", got)
	}
	// Refused at once, without a modal.
	before := len(h.srv.Views(""))
	for _, tc := range []struct{ user, want string }{
		{approver2ID, "already denied"},
		{strangerID, "not an approver"},
	} {
		if got := h.answer(h.click(tc.user, ActionDeny, r.ID)).Text; !strings.Contains(got, tc.want) {
			t.Errorf("Deny by %s answered %q", tc.user, got)
		}
	}
	r2 := h.submit(employee2ID)
	if got := h.answer(h.click(employee2ID, ActionDeny, r2.ID)).Text; !strings.Contains(got, "your own") {
		t.Errorf("Deny by the requester answered %q", got)
	}
	if n := len(h.srv.Views("")); n != before {
		t.Errorf("%d modals opened for refused clicks", n-before)
	}
}
