package main

import (
	"context"
	"strings"
	"testing"

	"github.com/example/resetbot/internal/sambatest"
	"github.com/example/resetbot/internal/slacktest"
	"github.com/example/resetbot/slackapp"
	"github.com/example/resetbot/workflow"
)

// TestIdentityRulesAtRequest: who may ask (issue 13). Each Slack user the
// rules refuse gets their own words, nothing is stored, and the audit
// channel has a line with the cause.
func TestIdentityRulesAtRequest(t *testing.T) {
	w := newWorld(t)
	for _, u := range []slacktest.User{
		{ID: "UUNCONF", Name: "una", Email: "una@corp.example.com", Unconfirmed: true},
		{ID: "UCONNECT", Name: "pat", Email: "pat@corp.example.com", TeamID: "T0PARTNER"},
		{ID: "USTRANGE", Name: "sid", Email: "sid@corp.example.com", TeamID: "T0PARTNER", IsStranger: true},
	} {
		w.slack.AddUser(u)
	}
	w.start()
	for user, c := range map[string]struct{ words, code string }{
		"UUNCONF":  {"Slack has not confirmed the email address on your profile", "email_unconfirmed"},
		"UCONNECT": {"only for members of this Slack workspace", "foreign_user"},
		"USTRANGE": {"only for members of this Slack workspace", "foreign_user"},
	} {
		if ans := w.command(user, ""); !strings.Contains(ans, c.words) || idRe.MatchString(ans) {
			t.Errorf("%s was answered %q, want %q", user, ans, c.words)
		}
		if _, err := w.store.Open(context.Background(), user); workflow.ErrorCode(err) != workflow.CodeNoOpenRequest {
			t.Errorf("%s: a request was stored: %v", user, err)
		}
		w.wait(user+"'s refusal in the audit channel", func() bool {
			return strings.Contains(threadText(w.slack.Messages(auditChannel)), "<@"+user+"> asked to reset an account I could not determine: refused (`"+c.code+"`)")
		})
	}
}

// TestApproverDeactivatedAfterTheRequest: an approver who is deactivated
// in Slack after the request was made cannot decide it; another can.
func TestApproverDeactivatedAfterTheRequest(t *testing.T) {
	w := newWorld(t)
	w.start()
	r, dms := w.request()
	w.slack.AddUser(slacktest.User{ID: approver1, Name: "bob", RealName: "Bob Jones", Email: "bob@corp.example.com", Deleted: true})
	ans := w.clickReply(approver1, slackapp.ActionApprove, r.ID, dms[approver1])
	if !strings.Contains(ans, "could not confirm that your own account may approve") {
		t.Errorf("the deactivated approver was answered %q", ans)
	}
	if got := w.get(r.ID); got.Status != workflow.StatusPending || got.DecidedBy != "" {
		t.Fatalf("after the deactivated approver's click: %s by %q", got.Status, got.DecidedBy)
	}
	w.clickAcked(approver2, slackapp.ActionApprove, r.ID, dms[approver2])
	if got := w.waitStatus(r.ID, workflow.StatusApproved); got.DecidedBy != approver2 {
		t.Fatalf("decided by %q, want %s", got.DecidedBy, approver2)
	}
}

// TestADApproverDisabledInTheDirectory: a manager whose directory account
// was disabled after the request (they left, Slack not yet told) cannot
// approve it.
func TestADApproverDisabledInTheDirectory(t *testing.T) {
	w := newADWorld(t)
	w.vars["APPROVER_SOURCE"] = "manager"
	mgrID, mgr := w.employee("mgr", nil)
	empID, _ := w.employee("emp", func(u *sambatest.User) { u.Manager = w.admin.DN(mgr) })
	w.start()
	r, dm := w.requestAs(empID, mgrID)
	if r.AskedAs != workflow.AskedManager || len(r.Approvers) != 1 || r.Approvers[0] != mgrID {
		t.Fatalf("the manager was not asked: %+v", r)
	}
	w.admin.SetDisabled(mgr, true)
	ans := w.clickReply(mgrID, slackapp.ActionApprove, r.ID, dm)
	if !strings.Contains(ans, "could not confirm that your own account may approve") {
		t.Errorf("the disabled manager was answered %q", ans)
	}
	if got := w.get(r.ID); got.Status != workflow.StatusPending {
		t.Fatalf("a disabled manager decided: %s", got.Status)
	}
	w.admin.SetDisabled(mgr, false)
	w.clickAcked(mgrID, slackapp.ActionApprove, r.ID, dm)
	w.waitStatus(r.ID, workflow.StatusApproved)
}
