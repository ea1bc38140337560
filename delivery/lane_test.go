package delivery_test

import (
	"slices"
	"testing"
	"time"

	"github.com/example/resetbot/delivery"
	"github.com/example/resetbot/workflow"
)

// Marks: which lanes each change concerns.
func TestMarks(t *testing.T) {
	r := &workflow.Request{ID: workflow.NewID(), Requester: "UEMP", Approvers: []string{"UAPP1", "UAPP2"}, Status: workflow.StatusPending,
		CreatedAt: t0, DecideBy: t0.Add(time.Hour), Events: []workflow.Event{{At: t0, Kind: workflow.EventRequested, Actor: "UEMP"}}}
	names := func(ms []delivery.Mark) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.Lane.String()+"="+m.Item)
		}
		slices.Sort(out)
		return out
	}
	check := func(what string, got []delivery.Mark, want ...string) {
		t.Helper()
		slices.Sort(want)
		if g := names(got); !slices.Equal(g, want) {
			t.Errorf("%s: marks %v, want %v", what, g, want)
		}
	}
	audit, people := delivery.Audit(r.ID).String()+"=", delivery.People(r.ID).String()+"="
	q := func(a string, n int) string { return delivery.Queue(a).String() + "=" + delivery.Item(r.ID, n) }
	h := func(a string, n int) string { return delivery.Home(a).String() + "=" + delivery.Item(r.ID, n) }
	// Made: the audit channel and the approvers' queues; the employee
	// was answered by the command.
	check("requested", delivery.Marks(r, 0), audit, h("UEMP", 1), q("UAPP1", 1), h("UAPP1", 1), q("UAPP2", 1), h("UAPP2", 1))
	check("nothing new", delivery.Marks(r, 1))
	// Made by a helpdesk agent on the employee's behalf: the employee did
	// not type the command, so their DM says who asked.
	onBehalf := *r
	onBehalf.Agent = "UAGENT"
	check("requested on behalf", delivery.Marks(&onBehalf, 0), audit, people, h("UEMP", 1), q("UAPP1", 1), h("UAPP1", 1), q("UAPP2", 1), h("UAPP2", 1))
	if err := r.Decide("UAPP1", true, t0.Add(time.Minute), time.Hour); err != nil {
		t.Fatal(err)
	}
	check("approved", delivery.Marks(r, 1), audit, people, h("UEMP", 2), q("UAPP1", 2), h("UAPP1", 2), q("UAPP2", 2), h("UAPP2", 2))
	if err := r.BeginReset("UEMP", "replica", t0.Add(2*time.Minute), t0.Add(4*time.Minute)); err != nil {
		t.Fatal(err)
	}
	check("a reveal alone", delivery.Marks(r, 2))
	if err := r.Complete("replica", t0.Add(3*time.Minute), "", ""); err != nil {
		t.Fatal(err)
	}
	check("completed (after the reveal)", delivery.Marks(r, 2), audit, people, h("UEMP", 4))
	// Expired after an approval: the queues showed the approval already.
	a := &workflow.Request{ID: workflow.NewID(), Requester: "UEMP", Approvers: []string{"UAPP1"}, Status: workflow.StatusPending,
		CreatedAt: t0, DecideBy: t0.Add(time.Hour), Events: []workflow.Event{{At: t0, Kind: workflow.EventRequested}}}
	if err := a.Decide("UAPP1", true, t0, time.Minute); err != nil {
		t.Fatal(err)
	}
	a.ExpireIfDue(t0.Add(time.Hour))
	if slices.ContainsFunc(delivery.Marks(a, 2), func(m delivery.Mark) bool { return m.Lane.Kind == delivery.KindQueue }) {
		t.Error("an approved request that expired marked the queues")
	}
	// Cancelled while pending: it leaves the queues.
	c := &workflow.Request{ID: workflow.NewID(), Requester: "UEMP", Approvers: []string{"UAPP1"}, Status: workflow.StatusPending,
		CreatedAt: t0, DecideBy: t0.Add(time.Hour), Events: []workflow.Event{{At: t0, Kind: workflow.EventRequested}}}
	if err := c.Cancel("UEMP", t0); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(delivery.Marks(c, 1), func(m delivery.Mark) bool { return m.Lane == delivery.Queue("UAPP1") }) {
		t.Error("a pending request cancelled did not mark its approver's queue")
	}
	for _, s := range []string{"people:R1", "queue:U1", "audit:R2"} {
		if l, ok := delivery.ParseLane(s); !ok || l.String() != s {
			t.Errorf("ParseLane(%q) = %v, %v", s, l, ok)
		}
	}
	for _, s := range []string{"", "people:", "other:R1", "people"} {
		if _, ok := delivery.ParseLane(s); ok {
			t.Errorf("ParseLane(%q) accepted", s)
		}
	}
}

// TestMarksOfRemindersAndEscalation: every change marks the audit thread
// and the employee's Home, and, but for the employee's own request, their
// DMs; the approvers' queues and Homes when the request joins, is reminded
// or escalated (their cards change, a reminder is due), or leaves them; a
// reveal alone nothing.
func TestMarksOfRemindersAndEscalation(t *testing.T) {
	at := time.Date(2030, 1, 2, 9, 0, 0, 0, time.UTC)
	r := &workflow.Request{ID: workflow.NewID(), Requester: "UEMP", Approvers: []string{"UMGR"}, Status: workflow.StatusPending,
		CreatedAt: at, DecideBy: at.Add(time.Hour), RemindAt: at.Add(10 * time.Minute), EscalateAt: at.Add(15 * time.Minute),
		AskedAs: workflow.AskedManager, Events: []workflow.Event{{At: at, Kind: workflow.EventRequested, Actor: "UEMP"}}}
	lanes := func(before int) []string {
		var out []string
		for _, m := range delivery.Marks(r, before) {
			out = append(out, m.Lane.String())
		}
		slices.Sort(out)
		return out
	}
	base := []string{delivery.Audit(r.ID).String(), delivery.Home("UEMP").String(), delivery.People(r.ID).String()}
	withQueues := func(approvers ...string) []string {
		out := slices.Clone(base)
		for _, a := range approvers {
			out = append(out, delivery.Queue(a).String(), delivery.Home(a).String())
		}
		slices.Sort(out)
		return out
	}
	requested := slices.DeleteFunc(withQueues("UMGR"), func(l string) bool { return l == delivery.People(r.ID).String() })
	if got := lanes(0); !slices.Equal(got, requested) {
		t.Errorf("requested: %v, want %v", got, requested)
	}
	r.RemindIfDue(r.RemindAt)
	if got, want := lanes(1), withQueues("UMGR"); !slices.Equal(got, want) {
		t.Errorf("reminded: %v, want %v", got, want)
	}
	if err := r.Escalate(r.EscalateAt, []string{"UAPP1"}); err != nil {
		t.Fatal(err)
	}
	if got, want := lanes(2), withQueues("UMGR", "UAPP1"); !slices.Equal(got, want) {
		t.Errorf("escalated: %v, want %v", got, want)
	}
	if err := r.Decide("UAPP1", true, at.Add(16*time.Minute), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := r.BeginReset("UEMP", "replica", at.Add(17*time.Minute), at.Add(20*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := lanes(4); got != nil {
		t.Errorf("a reveal alone marked %v", got)
	}
	if err := r.Complete("replica", at.Add(18*time.Minute), "", ""); err != nil {
		t.Fatal(err)
	}
	if err := r.Report("UEMP", at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, want := lanes(6), base; !slices.Equal(got, want) {
		t.Errorf("reported: %v, want %v", got, want)
	}
	for _, m := range delivery.Marks(r, 0) {
		if (m.Lane.Kind == delivery.KindQueue || m.Lane.Kind == delivery.KindHome) && m.Item != delivery.Item(r.ID, len(r.Events)) {
			t.Errorf("%s marked with item %q", m.Lane, m.Item)
		}
	}
}
