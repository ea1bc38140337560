package main

import (
	"context"
	"strings"
	"testing"

	"github.com/example/resetbot/internal/slacktest"
	"github.com/example/resetbot/slackapp"
	"github.com/example/resetbot/workflow"
)

// TestReasonAndDenyModals: with REQUIRE_REASON, /reset-password opens a
// modal and nothing more; its submission makes the request, answered
// where the command was typed; the approver's card shows the reason as
// plain text; Deny opens the deny modal, whose reason the employee is
// shown (as plain text) and the audit thread keeps.
func TestReasonAndDenyModals(t *testing.T) {
	w := newWorld(t)
	w.vars["REQUIRE_REASON"] = "true"
	w.start()
	cmd := w.slack.SlashCommand(employee, "")
	var v slacktest.View
	w.wait("the reason modal", func() bool {
		vs := w.slack.Views(employee)
		if len(vs) > 0 {
			v = vs[0]
		}
		return len(vs) == 1 && v.CallbackID == slackapp.CallbackReason
	})
	if got := w.slack.Replies(cmd); len(got) != 0 {
		t.Fatalf("the command was answered besides the modal: %+v", got)
	}
	if ack := w.submit(v, "\u200b "); !strings.Contains(ack, `"response_action":"errors"`) {
		t.Fatalf("an empty reason: %s", ack)
	}
	reason := "Locked out after my holiday <!here> *now*"
	if ack := w.submit(v, reason); ack != "" && ack != "null" {
		t.Fatalf("a reason: %s", ack)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	receipt, err := w.slack.WaitReply(ctx, cmd)
	if err != nil || receipt.ResponseType != "ephemeral" {
		t.Fatalf("no receipt: %+v %v", receipt, err)
	}
	id := idRe.FindString(receipt.Text)
	r := w.waitStatus(id, workflow.StatusPending)
	if r.Reason() != reason {
		t.Fatalf("reason %q", r.Reason())
	}
	card := w.messageFor(slacktest.DMChannel(approver1), id, slackapp.ActionApprove)
	if !strings.Contains(string(card.Blocks), `{"type":"plain_text","text":"Reason given: Locked out after my holiday \u003c!here\u003e *now*"`) {
		t.Fatalf("the reason on the card: %s", card.Blocks)
	}
	w.deny(approver1, id, card, "Call me first")
	w.waitStatus(id, workflow.StatusDenied)
	var notice slacktest.Message
	w.wait("the employee's notice", func() bool {
		for _, m := range w.slack.Messages(slacktest.DMChannel(employee)) {
			if strings.Contains(m.Text, "denied your request") {
				notice = m
				return true
			}
		}
		return false
	})
	if !strings.Contains(string(notice.Blocks), `{"type":"plain_text","text":"Their reason: Call me first"`) {
		t.Fatalf("the notice: %s", notice.Blocks)
	}
	if lines := w.auditLines(id, "Denied by <@"+approver1+">. Reason: `Call me first`"); len(lines) != 1 {
		t.Fatalf("audit: %q", lines)
	}
	if lines := w.auditLines(id, "Reason: `Locked out after my holiday &lt;!here&gt; *now*`"); len(lines) != 1 {
		t.Fatalf("audit of the request: %q", lines)
	}
}

// TestReasonNotAskedOfHelpdesk: with REQUIRE_REASON, only an employee's
// reset of their own account opens the form; a helpdesk agent's request
// on an employee's behalf is made at once (the agent is named in every
// message and audit line), and reaches the employee's approvers.
func TestReasonNotAskedOfHelpdesk(t *testing.T) {
	w := newWorld(t)
	w.vars["REQUIRE_REASON"] = "true"
	w.vars["HELPDESK"] = agent
	w.start()
	answer := w.command(agent, "<@"+employee+">")
	id := idRe.FindString(answer)
	if id == "" {
		t.Fatalf("answer: %s", answer)
	}
	r := w.waitStatus(id, workflow.StatusPending)
	if r.Agent != agent || r.Requester != employee || r.Reason() != "" || len(r.Approvers) == 0 {
		t.Fatalf("request %+v", r)
	}
	if vs := w.slack.Views(agent); len(vs) != 0 {
		t.Fatalf("a form opened for the agent: %+v", vs)
	}
}
