package slackapp

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/example/resetbot/workflow"
)

// homeFixtures returns requests for the Home views: an employee's open
// request and past ones, an approver's queue and decisions, and the
// latest requests.
func homeFixtures() (mine, open, decisions, latest []*workflow.Request) {
	pending := withFacts(sample(workflow.StatusPending))
	done := sample(workflow.StatusCompleted)
	done.ID, done.CreatedAt = "Rdonedonedonedonedonedoneq", t0.Add(-48*time.Hour)
	denied := sample(workflow.StatusDenied)
	denied.ID, denied.CreatedAt = "Rdenieddenieddenieddeniedq", t0.Add(-72*time.Hour)
	mine = []*workflow.Request{pending, done, denied}
	open = queueRows(3)
	open[1] = withFacts(open[1])
	d1 := decided(queueRows(1)[0], "UAPP1", true, t0.Add(-time.Hour))
	d1.ID = "Rdecided1decided1decided1q"
	d2 := decided(queueRows(2)[1], "UAPP1", false, t0.Add(-2*time.Hour))
	d2.ID = "Rdecided2decided2decided2q"
	decisions = []*workflow.Request{d1, d2}
	reported := sample(workflow.StatusCompleted)
	reported.ID = "Rreportedreportedreportedq"
	reported.Events = append(reported.Events, workflow.Event{At: t0.Add(time.Hour), Kind: workflow.EventReported, Actor: reported.Requester})
	latest = []*workflow.Request{pending, reported, denied}
	return
}

// TestHomeViewsGolden: the Home tab of the three kinds of people (an
// employee, an approver, helpdesk), of one who is all three, and of
// someone who never asked anything.
func TestHomeViewsGolden(t *testing.T) {
	mine, open, decided, latest := homeFixtures()
	approved := sample(workflow.StatusApproved)
	for name, d := range map[string]HomeData{
		"home_employee":          {User: "UEMP", Mine: mine},
		"home_employee_approved": {User: "UEMP", Mine: []*workflow.Request{approved}},
		"home_approver":          {User: "UAPP1", Mine: nil, Open: open, Decided: decided},
		"home_helpdesk":          {User: "UHELP1", Latest: latest},
		"home_helpdesk_empty":    {User: "UHELP1", Latest: []*workflow.Request{}},
		"home_everything":        {User: "UAPP1", Mine: mine[1:], Open: open, Decided: decided, Latest: latest},
		"home_nobody":            {User: "UNEW"},
	} {
		t.Run(name, func(t *testing.T) { golden(t, name, HomeView(d)) })
	}
}

// TestHomeViewFitsSlack: with every list full the view stays within 100
// blocks and sections within 3000 characters, and each open request has
// Approve and Deny carrying its ID only.
func TestHomeViewFitsSlack(t *testing.T) {
	many := func(n int) []*workflow.Request {
		rs := queueRows(n)
		for i := range rs {
			rs[i] = withFacts(rs[i])
			rs[i].Events[0].Reason = strings.Repeat("r", workflow.MaxReason)
		}
		return rs
	}
	v := HomeView(HomeData{User: "UAPP1", Mine: many(40), Open: many(60), Decided: many(40), Latest: many(40)})
	if n := len(v.Blocks.BlockSet); n > 100 {
		t.Fatalf("%d blocks", n)
	}
	js, _ := json.Marshal(v)
	var blocks []struct {
		Type string
		Text *struct{ Text string }
	}
	_ = json.Unmarshal(js, &struct {
		Blocks *[]struct {
			Type string
			Text *struct{ Text string }
		}
	}{&blocks})
	for _, b := range blocks {
		if b.Text != nil && len(b.Text.Text) > 3000 {
			t.Errorf("a %s of %d characters", b.Type, len(b.Text.Text))
		}
	}
	if n := strings.Count(string(js), `"action_id":"approve"`); n != maxHomeOpen {
		t.Errorf("%d Approve buttons, want %d", n, maxHomeOpen)
	}
}
