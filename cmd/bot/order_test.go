package main

import (
	"strings"
	"testing"
	"time"

	"github.com/example/resetbot/delivery"
	"github.com/example/resetbot/internal/slacktest"
	"github.com/example/resetbot/slackapp"
	"github.com/example/resetbot/workflow"
)

// TestAuditThrottledFlowCompletes: with the audit channel answering 429
// for a minute, the employee's whole flow still completes at once: the
// people lane never waits for the audit lane.
func TestAuditThrottledFlowCompletes(t *testing.T) {
	w := newWorld(t)
	w.slack.ThrottleChannel(auditChannel, time.Minute)
	w.start()
	start := time.Now()
	answer := w.command(employee, "")
	id := idRe.FindString(answer)
	dm := w.messageFor(slacktest.DMChannel(approver1), id, slackapp.ActionApprove)
	w.clickAcked(approver1, slackapp.ActionApprove, id, dm)
	reveal := w.messageFor(slacktest.DMChannel(employee), id, slackapp.ActionReveal)
	w.clickAcked(employee, slackapp.ActionReveal, id, reveal)
	w.wait("the password", func() bool { return len(w.passwordMessages()) == 1 })
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the flow took %v behind a throttled audit channel", took)
	}
	if n := len(w.slack.Messages(auditChannel)); n != 0 {
		t.Fatalf("%d audit messages went through a channel answering 429", n)
	}
	w.wait("the employee's lane to finish", func() bool {
		return w.get(id).Status == workflow.StatusCompleted && !w.laneDue(delivery.People(id))
	})
	if !w.laneDue(delivery.Audit(id)) {
		t.Fatalf("the audit lane has nothing left to do behind a throttled channel")
	}
	if st := w.slack.RateStats(); slacktest.Total(st.InWindow) != 0 {
		t.Errorf("calls inside a Retry-After window: %v", st.InWindow)
	}
}

// TestAuditCatchesUp: when the audit channel comes back, its thread gets
// every step, several to a reply, and the parent shows the end state.
func TestAuditCatchesUp(t *testing.T) {
	w := newWorld(t)
	w.slack.ThrottleChannel(auditChannel, 3*time.Second)
	w.start()
	id := idRe.FindString(w.command(employee, ""))
	w.clickAcked(approver1, slackapp.ActionApprove, id, w.messageFor(slacktest.DMChannel(approver1), id, slackapp.ActionApprove))
	w.clickAcked(employee, slackapp.ActionReveal, id, w.messageFor(slacktest.DMChannel(employee), id, slackapp.ActionReveal))
	done := w.waitStatus(id, workflow.StatusCompleted) // both lanes synced
	parent, replies := w.auditThread(id)
	if n := auditSteps(replies); n != len(done.Events) {
		t.Errorf("%d steps in %d audit replies for %d events", n, len(replies), len(done.Events))
	}
	if len(replies) >= len(done.Events) {
		t.Errorf("%d replies for %d events: the backlog was not coalesced", len(replies), len(done.Events))
	}
	if txt := blocksText(parent); !strings.Contains(txt, "completed") {
		t.Errorf("audit parent: %s", txt)
	}
	if st := w.slack.RateStats(); slacktest.Total(st.InWindow) != 0 {
		t.Errorf("calls inside a Retry-After window: %v", st.InWindow)
	}
}

// TestThrottledApproverDoesNotHoldUpAnother: one approver's DM channel
// answering 429 does not delay the other approver's DM, nor the flow.
func TestThrottledApproverDoesNotHoldUpAnother(t *testing.T) {
	w := newWorld(t)
	w.slack.ThrottleChannel(slacktest.DMChannel(approver2), time.Minute)
	w.start()
	start := time.Now()
	id := idRe.FindString(w.command(employee, ""))
	dm := w.messageFor(slacktest.DMChannel(approver1), id, slackapp.ActionApprove)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("approver 1's DM took %v", took)
	}
	w.clickAcked(approver1, slackapp.ActionApprove, id, dm)
	reveal := w.messageFor(slacktest.DMChannel(employee), id, slackapp.ActionReveal)
	w.clickAcked(employee, slackapp.ActionReveal, id, reveal)
	w.wait("the password", func() bool { return len(w.passwordMessages()) == 1 })
	if n := len(w.slack.Messages(slacktest.DMChannel(approver2))); n != 0 {
		t.Fatalf("approver 2's throttled channel got %d messages", n)
	}
}
