package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/example/resetbot/internal/slacktest"
	"github.com/example/resetbot/slackapp"
	"github.com/example/resetbot/workflow"
)

const helpdesk1 = "UHELP1"

// homeText waits until user's Home view shows every one of want and
// returns its text.
func (w *world) homeText(user string, want ...string) string {
	w.t.Helper()
	var txt string
	w.wait(user+"'s Home showing "+strings.Join(want, ", "), func() bool {
		v, ok := w.slack.Home(user)
		if !ok {
			return false
		}
		txt = blocksText(slacktest.Message{Blocks: v.Blocks})
		for _, s := range want {
			if !strings.Contains(txt, s) {
				return false
			}
		}
		return true
	})
	return txt
}

// TestHomeTabs: the app's Home tab of an approver (the requests waiting
// for them, with Approve and Deny that work from there, and their recent
// decisions), of an employee (their open request and history) and of
// helpdesk (the latest requests), published when they open it and kept
// current afterwards; nobody who never opened it gets a views.publish.
func TestHomeTabs(t *testing.T) {
	w := newWorld(t)
	w.slack.AddUser(slacktest.User{ID: helpdesk1, Name: "hal", RealName: "Hal Desk", Email: "hal@corp.example.com"})
	w.vars["HELPDESK"] = helpdesk1
	w.start()
	r, dms := w.request()
	if n := len(w.slack.Calls("views.publish")); n != 0 {
		t.Fatalf("%d views.publish before anyone opened the Home tab", n)
	}
	for _, u := range []string{approver1, employee, helpdesk1} {
		w.slack.OpenHome(u)
	}
	w.homeText(approver1, "Waiting for your decision* (1)", "`alice`")
	if v, _ := w.slack.Home(approver1); !strings.Contains(string(v.Blocks), `"value":"`+r.ID+`"`) {
		t.Fatalf("no buttons in the approver's Home: %s", v.Blocks)
	}
	w.homeText(employee, "*Your open request*", r.ID, "waits for <@"+approver1+">, <@"+approver2+">")
	w.homeText(helpdesk1, "*Latest requests*", "<@"+employee+"> · `alice` · :large_yellow_circle: pending approval")

	// Approve from the Home tab.
	w.slack.ClickHome(approver1, slackapp.ActionApprove, r.ID)
	w.waitStatus(r.ID, workflow.StatusApproved)
	w.homeText(approver1, "*Your recent decisions*", "you approved it")
	if v, _ := w.slack.Home(approver1); strings.Contains(string(v.Blocks), `"value":"`+r.ID+`"`) {
		t.Errorf("the decided request still has buttons in the Home: %s", v.Blocks)
	}
	w.homeText(employee, "was approved by <@"+approver1+">")
	if m := w.message(dms[approver1]); hasButton(m, slackapp.ActionApprove) {
		t.Errorf("the approver's DM still has the buttons: %s", blocksText(m))
	}
	// A click that changes nothing, from the Home: answered in the DM.
	before := len(w.slack.Messages(slacktest.DMChannel(approver2)))
	w.slack.ClickHome(approver2, slackapp.ActionApprove, r.ID)
	w.wait("the answer in approver2's DM", func() bool {
		msgs := w.slack.Messages(slacktest.DMChannel(approver2))
		return len(msgs) > before && strings.Contains(msgs[len(msgs)-1].Text, "already approved")
	})

	// The reset completes; the employee's history says so, helpdesk's list too.
	w.clickAcked(employee, slackapp.ActionReveal, r.ID, w.buttonMessage(slacktest.DMChannel(employee), slackapp.ActionReveal))
	w.waitStatus(r.ID, workflow.StatusCompleted)
	w.homeText(employee, "*Your recent requests*", "completed, approved by <@"+approver1+">")
	w.slack.OpenHome(helpdesk1)
	w.homeText(helpdesk1, ":large_green_circle: completed")

	// Deny from the Home tab: the deny modal, then the denial.
	r2, _ := w.request()
	w.slack.OpenHome(approver2)
	w.homeText(approver2, "Waiting for your decision* (1)")
	before = len(w.slack.Views(approver2))
	w.slack.ClickHome(approver2, slackapp.ActionDeny, r2.ID)
	var modal slacktest.View
	w.wait("the deny modal", func() bool {
		vs := w.slack.Views(approver2)
		for _, v := range vs[before:] {
			if v.CallbackID == slackapp.CallbackDeny {
				modal = v
				return true
			}
		}
		return false
	})
	w.submit(modal, "Ask me in person")
	if got := w.waitStatus(r2.ID, workflow.StatusDenied); got.DenialReason() != "Ask me in person" {
		t.Fatalf("denial reason %q", got.DenialReason())
	}
	w.homeText(approver2, "you denied it")

	// Only those who opened the tab were published to.
	published := map[string]bool{}
	for _, c := range w.slack.Calls("views.publish") {
		var body struct {
			UserID string `json:"user_id"`
		}
		_ = json.Unmarshal(c.Body, &body)
		published[body.UserID] = true
	}
	for u := range published {
		if u != approver1 && u != approver2 && u != employee && u != helpdesk1 {
			t.Errorf("a Home was published for %s, who never opened it", u)
		}
	}
}
