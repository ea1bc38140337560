package slackapp

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/example/resetbot/delivery"
	"github.com/example/resetbot/internal/slacktest"
	"github.com/example/resetbot/store/memstore"
	"github.com/example/resetbot/store/seal"
	"github.com/example/resetbot/workflow"
)

// laneHarness runs lanes against slacktest, with requests in a memstore.
type laneHarness struct {
	t     *testing.T
	srv   *slacktest.Server
	store *memstore.Store
	lanes *Lanes
	data  map[delivery.Lane][]byte // what each lane saved
}

func newLaneHarness(t *testing.T) *laneHarness {
	srv := slacktest.New()
	t.Cleanup(srv.Close)
	addPeople(srv)
	h := &laneHarness{t: t, srv: srv, store: memstore.New(seal.Derive("lane tests", "requests")), data: map[delivery.Lane][]byte{}}
	h.lanes = &Lanes{API: slack.New(slacktest.BotToken, slack.OptionAPIURL(srv.APIURL())), AuditChannel: "C0AUDIT",
		Requests: h.store, Gate: NewGate(), Log: slog.New(slog.DiscardHandler), Window: -1}
	return h
}

// request stores a pending request of employeeID asked to the approvers.
func (h *laneHarness) request(approvers ...string) *workflow.Request {
	return h.requestOf(employeeID, approvers...)
}

// requestOf stores a pending request of requester asked to the approvers.
func (h *laneHarness) requestOf(requester string, approvers ...string) *workflow.Request {
	h.t.Helper()
	now := time.Now()
	r := &workflow.Request{ID: workflow.NewID(), Requester: requester, Account: workflow.Account{UserName: "emp", Email: "emp@corp.example.com"},
		DirectoryID: "d-1234567890", Approvers: approvers, Status: workflow.StatusPending, CreatedAt: now, DecideBy: now.Add(30 * time.Minute),
		Events: []workflow.Event{{At: now, Kind: workflow.EventRequested, Actor: requester}}}
	if err := h.store.Create(context.Background(), r, workflow.Limit{}); err != nil {
		h.t.Fatal(err)
	}
	return r
}

// change applies fn to request id and returns it.
func (h *laneHarness) change(id string, fn func(r *workflow.Request, now time.Time) error) *workflow.Request {
	h.t.Helper()
	r, err := h.store.Update(context.Background(), id, func(r *workflow.Request) error { return fn(r, time.Now()) })
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// send runs lane l once, with inbox and replies, keeping what it saved.
func (h *laneHarness) send(l delivery.Lane, inbox []string, replies ...delivery.Reply) delivery.Result {
	h.t.Helper()
	res, err := h.lanes.Send(context.Background(), delivery.Work{Lane: l, Data: h.data[l], Inbox: inbox, Replies: replies})
	if err != nil {
		h.t.Fatalf("Send(%s): %v", l, err)
	}
	if res.Data != nil {
		h.data[l] = res.Data
	}
	return res
}

func TestPeopleLaneRevealDMAndItsClick(t *testing.T) {
	h := newLaneHarness(t)
	r := h.request(approver1ID)
	l := delivery.People(r.ID)
	h.send(l, nil)
	if msgs := h.srv.Messages(slacktest.DMChannel(employeeID)); len(msgs) != 0 {
		t.Fatalf("a pending request posted %d DMs to the employee", len(msgs))
	}
	r = h.change(r.ID, func(r *workflow.Request, now time.Time) error { return r.Decide(approver1ID, true, now, time.Hour) })
	h.send(l, nil)
	h.send(l, nil) // nothing new: nothing posted again
	msgs := h.srv.Messages(slacktest.DMChannel(employeeID))
	if len(msgs) != 1 || !strings.Contains(string(msgs[0].Blocks), `"action_id":"reveal"`) {
		t.Fatalf("employee's DMs after the approval: %+v, want one Reveal DM", msgs)
	}
	reveal := msgs[0]

	// A reset in progress is left alone; its end redraws the Reveal DM
	// through the click's reply, not chat.update.
	h.change(r.ID, func(r *workflow.Request, now time.Time) error {
		return r.BeginReset(employeeID, "replica", now, now.Add(time.Minute))
	})
	h.send(l, nil)
	if got, _ := h.srv.Message(reveal.Channel, reveal.TS); got.Updates != 0 {
		t.Fatal("the Reveal DM was updated while the reset ran")
	}
	h.change(r.ID, func(r *workflow.Request, now time.Time) error { return r.Complete("replica", now, "", "") })
	click := h.srv.Click(slacktest.Click{User: employeeID, ActionID: ActionReveal, Value: r.ID, MessageTS: reveal.TS})
	url := h.srv.ResponseURL(click)
	reply := delivery.Reply{Message: reveal.Channel + "/" + reveal.TS, URL: url, Expires: time.Now().Add(time.Minute)}
	res := h.send(l, nil, reply)
	if len(res.UsedReplies) != 1 {
		t.Errorf("used replies %v, want the click's", res.UsedReplies)
	}
	got, _ := h.srv.Message(reveal.Channel, reveal.TS)
	if strings.Contains(string(got.Blocks), `"action_id":"reveal"`) || !strings.Contains(blocksOf(got), "Password reset at") {
		t.Errorf("the Reveal DM after the reset: %s", blocksOf(got))
	}
	if n := len(h.srv.Calls("chat.update")); n != 0 {
		t.Errorf("%d chat.update calls: the click's reply was not used", n)
	}
	posts := h.srv.ResponsePosts()
	if len(posts) != 1 || !posts[0].ReplaceOriginal || posts[0].ResponseType == "in_channel" {
		t.Errorf("response_url posts %+v, want one replace_original", posts)
	}
}

func TestAuditLaneParentThenOneReply(t *testing.T) {
	h := newLaneHarness(t)
	r := h.request(approver1ID)
	l := delivery.Audit(r.ID)
	h.send(l, nil)
	r = h.change(r.ID, func(r *workflow.Request, now time.Time) error { return r.Decide(approver1ID, true, now, time.Hour) })
	r = h.change(r.ID, func(r *workflow.Request, now time.Time) error {
		return r.BeginReset(employeeID, "replica", now, now.Add(time.Minute))
	})
	h.change(r.ID, func(r *workflow.Request, now time.Time) error { return r.Complete("replica", now, "", "") })
	h.send(l, nil)
	h.send(l, nil)
	msgs := h.srv.Messages("C0AUDIT")
	if len(msgs) != 3 || msgs[0].ThreadTS != "" || msgs[1].ThreadTS != msgs[0].TS || msgs[2].ThreadTS != msgs[0].TS {
		t.Fatalf("audit channel: %+v, want a parent and two replies", msgs)
	}
	if !strings.Contains(blocksOf(msgs[0]), "completed") {
		t.Errorf("parent: %s", blocksOf(msgs[0]))
	}
	if n := strings.Count(msgs[2].Text, " · "); n != 3 {
		t.Errorf("the second reply tells %d steps, want the 3 after the request in one reply: %s", n, msgs[2].Text)
	}
	// The parent was brought up to date before the reply.
	var order []string
	for _, c := range h.srv.Changes(0) {
		if c.Message.Channel == "C0AUDIT" {
			order = append(order, string(c.Kind)+":"+c.Message.ThreadTS)
		}
	}
	if want := []string{"posted:", "posted:" + msgs[0].TS, "updated:", "posted:" + msgs[0].TS}; strings.Join(order, " ") != strings.Join(want, " ") {
		t.Errorf("audit changes %v, want %v", order, want)
	}
}

// An approver's queue lists the requests of its inbox that are pending
// and theirs to decide (never anyone else's), and redraws a message whose
// request was decided, through the click's reply.
func TestQueueLaneAsksOnlyItsApprover(t *testing.T) {
	h := newLaneHarness(t)
	mine := h.request(approver1ID)
	other := h.requestOf(employee2ID, approver2ID)
	q := delivery.Queue(approver1ID)
	res := h.send(q, []string{delivery.Item(mine.ID, 1), delivery.Item(other.ID, 1)})
	if len(res.Handled) != 2 {
		t.Errorf("handled %v, want both items", res.Handled)
	}
	msgs := h.srv.Messages(slacktest.DMChannel(approver1ID))
	if len(msgs) != 1 || !strings.Contains(string(msgs[0].Blocks), mine.ID) || strings.Contains(string(msgs[0].Blocks), other.ID) {
		t.Fatalf("approver 1's DMs: %+v, want their request only", msgs)
	}
	if n := len(h.srv.Messages(slacktest.DMChannel(approver2ID))); n != 0 {
		t.Fatalf("approver 1's lane posted to approver 2")
	}
	h.change(mine.ID, func(r *workflow.Request, now time.Time) error { return r.Decide(approver1ID, false, now, time.Hour) })
	click := h.srv.Click(slacktest.Click{User: approver1ID, ActionID: ActionDeny, Value: mine.ID, MessageTS: msgs[0].TS})
	reply := delivery.Reply{Message: msgs[0].Channel + "/" + msgs[0].TS, URL: h.srv.ResponseURL(click), Expires: time.Now().Add(time.Minute)}
	h.send(q, []string{delivery.Item(mine.ID, 2)}, reply)
	got, _ := h.srv.Message(msgs[0].Channel, msgs[0].TS)
	if strings.Contains(string(got.Blocks), `"action_id":"approve"`) || !strings.Contains(got.Text, "denied") || !strings.Contains(blocksOf(got), "Denied by \\u003c@"+approver1ID) {
		t.Errorf("the clicked message: %s", blocksOf(got))
	}
	if n := len(h.srv.Calls("chat.update")); n != 0 {
		t.Errorf("%d chat.update calls for a clicked message", n)
	}
	var rec queueRecord
	if err := json.Unmarshal(h.data[q], &rec); err != nil || len(rec.Messages) != 0 {
		t.Errorf("queue record %s (%v): want no message left to follow", h.data[q], err)
	}
}

// A lane whose key Slack holds back for longer than a worker may wait
// is parked: it keeps what it sent, and says so.
func TestLaneParksOnAThrottledKey(t *testing.T) {
	h := newLaneHarness(t)
	h.srv.ThrottleChannel("C0AUDIT", time.Minute)
	r := h.request(approver1ID)
	res := h.send(delivery.Audit(r.ID), nil)
	if res.Wait == nil {
		t.Fatal("a lane behind a throttled channel did not park")
	}
	woken := make(chan struct{})
	res.Wait(func() { close(woken) })
	if n := h.lanes.Gate.Waiting(); n != 1 {
		t.Errorf("%d parked at the gate, want 1", n)
	}
	select {
	case <-woken:
		t.Error("woken while the channel is throttled")
	case <-time.After(50 * time.Millisecond):
	}
}

// A message Slack refuses for good (a deactivated approver) is skipped,
// not retried for ever, and does not stop the lane.
func TestQueueLaneSkipsARefusedApprover(t *testing.T) {
	h := newLaneHarness(t)
	h.srv.RefuseChannel(approver1ID, "user_disabled")
	r := h.request(approver1ID)
	res := h.send(delivery.Queue(approver1ID), []string{delivery.Item(r.ID, 1)})
	if len(res.Handled) != 1 || res.Wait != nil {
		t.Errorf("result %+v, want the item handled", res)
	}
}

func TestRefusedGoesToTheAuditChannel(t *testing.T) {
	h := newLaneHarness(t)
	f := workflow.Refusal{At: time.Now(), User: strangerID, Account: "Administrator", Code: workflow.CodeProtectedAccount, Detail: "protected"}
	if err := h.lanes.Refused(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	if msgs := h.srv.Messages("C0AUDIT"); len(msgs) != 1 || !strings.Contains(msgs[0].Text, "protected_account") {
		t.Errorf("audit channel: %+v", msgs)
	}
	h.lanes.AuditChannel = ""
	if err := h.lanes.Refused(context.Background(), f); err != nil {
		t.Fatal(err)
	}
}

func blocksOf(m slacktest.Message) string { return m.Text + " " + string(m.Blocks) }

// A burst of requests for one approver is listed in as few messages as
// Block Kit allows (maxQueueRows each), oldest first; requests that come
// within the window after a post wait to share the next one.
func TestQueueLaneListsABurstTogether(t *testing.T) {
	h := newLaneHarness(t)
	h.lanes.Window = time.Hour
	var inbox []string
	for i := range 30 {
		user := fmt.Sprintf("UBURST%02d", i)
		r := h.requestOf(user, approver1ID)
		inbox = append(inbox, delivery.Item(r.ID, 1))
	}
	q := delivery.Queue(approver1ID)
	res := h.send(q, inbox)
	msgs := h.srv.Messages(slacktest.DMChannel(approver1ID))
	if len(msgs) != 2 || len(res.Handled) != 30 {
		t.Fatalf("%d messages for 30 requests (handled %d), want 2: %d and %d rows", len(msgs), len(res.Handled), maxQueueRows, 30-maxQueueRows)
	}
	if n := strings.Count(string(msgs[0].Blocks), `"action_id":"approve"`); n != maxQueueRows {
		t.Errorf("the first message lists %d requests, want %d", n, maxQueueRows)
	}
	if n := strings.Count(string(msgs[1].Blocks), `"action_id":"approve"`); n != 30-maxQueueRows {
		t.Errorf("the second message lists %d requests, want %d", n, 30-maxQueueRows)
	}
	// Within the window, a new request waits (its item stays) for the next
	// post, which the lane asks to run at the window's end.
	late := h.requestOf("ULATE", approver1ID)
	res = h.send(q, []string{delivery.Item(late.ID, 1)})
	if len(res.Handled) != 0 || res.Next.IsZero() || time.Until(res.Next) < 59*time.Minute {
		t.Errorf("within the window: handled %v, next %v; want it left for the window's end", res.Handled, res.Next)
	}
	if n := len(h.srv.Messages(slacktest.DMChannel(approver1ID))); n != 2 {
		t.Errorf("%d messages: a request within the window was posted at once", n)
	}
	// A click on a row of the full message: it is redrawn through the
	// click's reply, that row says who decided, the others keep their buttons.
	var first queueRecord
	if err := json.Unmarshal(h.data[q], &first); err != nil {
		t.Fatal(err)
	}
	row := first.Messages[0].Rows[3]
	h.change(row, func(r *workflow.Request, now time.Time) error { return r.Decide(approver1ID, true, now, time.Hour) })
	click := h.srv.Click(slacktest.Click{User: approver1ID, ActionID: ActionApprove, Value: row, MessageTS: msgs[0].TS})
	reply := delivery.Reply{Message: msgs[0].Channel + "/" + msgs[0].TS, URL: h.srv.ResponseURL(click), Expires: time.Now().Add(time.Minute)}
	h.send(q, []string{delivery.Item(row, 2)}, reply)
	got, _ := h.srv.Message(msgs[0].Channel, msgs[0].TS)
	if n := strings.Count(string(got.Blocks), `"action_id":"approve"`); n != maxQueueRows-1 || strings.Contains(string(got.Blocks), `"value":"`+row+`"`) {
		t.Errorf("after the click the message has %d Approve buttons (want %d) and the clicked row's buttons: %v", n, maxQueueRows-1, strings.Contains(string(got.Blocks), row))
	}
	if !strings.Contains(string(got.Blocks), "Approved by \\u003c@"+approver1ID) {
		t.Errorf("the clicked row does not say who decided: %s", got.Blocks)
	}
	if n := len(h.srv.Calls("chat.update")); n != 0 {
		t.Errorf("%d chat.update calls for a clicked message", n)
	}
}

// A message whose request another approver decided is redrawn with
// chat.update; when that waits for a rate limit, the lane parks and
// remembers the message is stale, and redraws it when it runs again,
// although nothing new is in its inbox. New requests are not held up
// behind it.
func TestQueueLaneRemembersStaleMessages(t *testing.T) {
	h := newLaneHarness(t)
	r := h.request(approver1ID, approver2ID)
	q := delivery.Queue(approver1ID)
	h.send(q, []string{delivery.Item(r.ID, 1)})
	h.change(r.ID, func(r *workflow.Request, now time.Time) error { return r.Decide(approver2ID, true, now, time.Hour) })
	h.srv.ThrottleMethod("chat.update", 1500*time.Millisecond)                                               // answered with Retry-After: 2, longer than a lane waits
	h.lanes.Gate.DoWithin(context.Background(), "chat.update", PriorityNow, time.Millisecond, func() error { // the gate learns the Retry-After
		_, _, _, err := h.lanes.API.UpdateMessageContext(context.Background(), "D0", "1.1", slack.MsgOptionText("x", false))
		return err
	})
	late := h.requestOf(employee2ID, approver1ID)
	res := h.send(q, []string{delivery.Item(r.ID, 2), delivery.Item(late.ID, 1)})
	if res.Wait == nil {
		t.Fatal("the redraw behind a throttled chat.update did not park")
	}
	msgs := h.srv.Messages(slacktest.DMChannel(approver1ID))
	if len(msgs) != 2 || !strings.Contains(string(msgs[1].Blocks), late.ID) {
		t.Fatalf("the new request was held up behind the redraw: %d messages", len(msgs))
	}
	var rec queueRecord
	if err := json.Unmarshal(h.data[q], &rec); err != nil || len(rec.Messages) != 2 || !rec.Messages[0].Stale {
		t.Fatalf("record %s (%v): want the first message stale", h.data[q], err)
	}
	time.Sleep(2100 * time.Millisecond) // the window ends
	h.send(q, nil)
	got, _ := h.srv.Message(msgs[0].Channel, msgs[0].TS)
	if hasAction(got, ActionApprove) || !strings.Contains(blocksOf(got), "Approved by \\u003c@"+approver2ID) {
		t.Errorf("the stale message after the window: %s", blocksOf(got))
	}
}

func hasAction(m slacktest.Message, action string) bool {
	return strings.Contains(string(m.Blocks), `"action_id":"`+action+`"`)
}

// A lane that meets a request whose record failed verification tells
// nobody about the request, and reports the record (OnTampered), as the
// workflow does for what it meets: whichever reads it first, it is told.
func TestLaneReportsATamperedRequest(t *testing.T) {
	h := newLaneHarness(t)
	var reported []error
	h.lanes.OnTampered = func(_ context.Context, err error) { reported = append(reported, err) }
	r := h.request(approver1ID)
	h.store.Tamper(r.ID, func(stored []byte) []byte { return []byte(strings.Replace(string(stored), `"emp"`, `"root"`, 1)) })
	h.send(delivery.Audit(r.ID), nil)
	if len(reported) != 1 || workflow.ErrorCode(reported[0]) != workflow.CodeTampered {
		t.Fatalf("reported %v", reported)
	}
	if msgs := h.srv.Messages(""); len(msgs) != 0 {
		t.Fatalf("a tampered request was told: %+v", msgs)
	}
}

// Two clicks on one queue message, the second's change saved after the
// lane drew the first's: the second click's reply is not spent on a
// message that still shows its request pending. It is kept, and the next
// run shows the second decision through it, not with chat.update; a
// reply whose request the message shows decided is used up.
func TestQueueReplyKeptUntilItsClickIsShown(t *testing.T) {
	h := newLaneHarness(t)
	a, b := h.request(approver1ID), h.requestOf(employee2ID, approver1ID)
	q := delivery.Queue(approver1ID)
	h.send(q, []string{delivery.Item(a.ID, 1), delivery.Item(b.ID, 1)})
	msgs := h.srv.Messages(slacktest.DMChannel(approver1ID))
	if len(msgs) != 1 {
		t.Fatalf("%d queue messages, want one listing both", len(msgs))
	}
	m := msgs[0]
	reply := func(id string) delivery.Reply {
		click := h.srv.Click(slacktest.Click{User: approver1ID, ActionID: ActionApprove, Value: id, MessageTS: m.TS})
		return delivery.Reply{Message: m.Channel + "/" + m.TS, URL: h.srv.ResponseURL(click), Expires: time.Now().Add(time.Minute), Request: id}
	}
	ra, rb := reply(a.ID), reply(b.ID)
	h.change(a.ID, func(r *workflow.Request, now time.Time) error { return r.Decide(approver1ID, true, now, time.Hour) })
	res := h.send(q, []string{delivery.Item(a.ID, 2)}, rb, ra) // b's change is not saved yet; its reply comes first
	if !slices.Contains(res.UsedReplies, ra) || slices.Contains(res.UsedReplies, rb) {
		t.Fatalf("used replies %+v: want a's used and b's kept", res.UsedReplies)
	}
	h.change(b.ID, func(r *workflow.Request, now time.Time) error { return r.Decide(approver1ID, true, now, time.Hour) })
	res = h.send(q, []string{delivery.Item(b.ID, 2)}, rb)
	if !slices.Contains(res.UsedReplies, rb) {
		t.Fatalf("used replies %+v: want b's", res.UsedReplies)
	}
	if got, _ := h.srv.Message(m.Channel, m.TS); hasAction(got, ActionApprove) {
		t.Errorf("the message after both decisions: %s", blocksOf(got))
	}
	if n := len(h.srv.Calls("chat.update")); n != 0 {
		t.Errorf("%d chat.update calls: a click's reply went unused", n)
	}
	if n := len(h.srv.ResponsePosts()); n != 2 {
		t.Errorf("%d response_url posts, want one a run", n)
	}
}
