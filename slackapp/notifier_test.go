package slackapp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/example/resetbot/internal/slacktest"
	"github.com/example/resetbot/workflow"
)

const auditChannel = "CAUDIT"

// notifierHarness is a Notifier with a Gate, talking to slacktest through
// the real slack-go client.
type notifierHarness struct {
	t    *testing.T
	srv  *slacktest.Server
	n    *Notifier
	logs *syncBuffer
}

func newNotifierHarness(t *testing.T, audit string) *notifierHarness {
	t.Helper()
	srv := slacktest.New()
	t.Cleanup(srv.Close)
	addPeople(srv)
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs)
		}
	})
	n := &Notifier{
		API:          slack.New(slacktest.BotToken, slack.OptionAPIURL(srv.APIURL())),
		AuditChannel: audit,
		Log:          slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Gate:         NewGate(),
	}
	return &notifierHarness{t: t, srv: srv, n: n, logs: logs}
}

// newRequest is a pending request of employeeID, asking both approvers.
func newRequest() *workflow.Request {
	now := time.Now()
	return &workflow.Request{
		ID: workflow.NewID(), Requester: employeeID,
		Account:     workflow.Account{UserName: "emp", Email: "emp@corp.example.com", DisplayName: "Emma Ployee"},
		DirectoryID: "d-1234567890", Approvers: []string{approver1ID, approver2ID},
		Status: workflow.StatusPending, CreatedAt: now, DecideBy: now.Add(30 * time.Minute),
		Events: []workflow.Event{{At: now, Kind: workflow.EventRequested, Actor: employeeID}},
	}
}

// sync runs Sync on lane l of r and keeps what it returns as the service
// does: the lane's bookkeeping always, and the events it handled.
func (h *notifierHarness) sync(ctx context.Context, r *workflow.Request, l workflow.Lane) (int, error) {
	h.t.Helper()
	before := len(r.Events)
	msgs, handled, err := h.n.Sync(ctx, r, l)
	if handled < 0 || r.Outbox[l].Done+handled > before {
		h.t.Fatalf("Sync handled %d of %d events (done %d)", handled, before, r.Outbox[l].Done)
	}
	switch l {
	case workflow.LanePeople:
		r.Messages.Approvers, r.Messages.Employee, r.Messages.Notified = msgs.Approvers, msgs.Employee, msgs.Notified
	case workflow.LaneAudit:
		r.Messages.Audit, r.Messages.Audited = msgs.Audit, msgs.Audited
	}
	r.Outbox[l].Done += handled
	return handled, err
}

// synced runs sync and fails the test on an error.
func (h *notifierHarness) synced(r *workflow.Request, l workflow.Lane) int {
	h.t.Helper()
	handled, err := h.sync(context.Background(), r, l)
	if err != nil {
		h.t.Fatalf("Sync(%s): %v", l, err)
	}
	return handled
}

// quiet checks that a sync of r with nothing new makes no call.
func (h *notifierHarness) quiet(r *workflow.Request, l workflow.Lane) {
	h.t.Helper()
	before := len(h.srv.Calls(""))
	if handled := h.synced(r, l); handled != 0 {
		h.t.Errorf("a sync without news handled %d events", handled)
	}
	if calls := h.srv.Calls("")[before:]; len(calls) != 0 {
		h.t.Errorf("a sync without news made %d calls, first %s", len(calls), calls[0].Method)
	}
}

// callsSince returns the calls of method after the first skip calls of it.
func (h *notifierHarness) callsSince(method string, skip int) []slacktest.Call {
	return h.srv.Calls(method)[skip:]
}

// only returns the one message in channel.
func (h *notifierHarness) only(channel string) slacktest.Message {
	h.t.Helper()
	msgs := h.srv.Messages(channel)
	if len(msgs) != 1 {
		h.t.Fatalf("%d messages in %s, want 1", len(msgs), channel)
	}
	return msgs[0]
}

func decide(t *testing.T, r *workflow.Request, approver string, approve bool) {
	t.Helper()
	if err := r.Decide(approver, approve, time.Now(), 15*time.Minute); err != nil {
		t.Fatal(err)
	}
}

// resetAndComplete takes r from approved through a reset to completed.
func resetAndComplete(t *testing.T, r *workflow.Request) {
	t.Helper()
	now := time.Now()
	if err := r.BeginReset(r.Requester, "replica-1", now, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := r.Complete("replica-1", now, "", ""); err != nil {
		t.Fatal(err)
	}
}

// buttons returns the action_id=value of every button in blocks.
func buttons(t *testing.T, blocks json.RawMessage) []string {
	t.Helper()
	var bs []struct {
		Elements []struct {
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
		} `json:"elements"`
	}
	if err := json.Unmarshal(blocks, &bs); err != nil {
		t.Fatalf("blocks %s: %v", blocks, err)
	}
	var out []string
	for _, b := range bs {
		for _, e := range b.Elements {
			if e.ActionID != "" {
				out = append(out, e.ActionID+"="+e.Value)
			}
		}
	}
	return out
}

// blockText returns every text in blocks, decoded, one per line.
func blockText(t *testing.T, blocks json.RawMessage) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(blocks, &v); err != nil {
		t.Fatalf("blocks %s: %v", blocks, err)
	}
	var texts []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if s, ok := v["text"].(string); ok {
				texts = append(texts, s)
			}
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(v)
	return strings.Join(texts, "\n")
}

func ref(t *testing.T, refs []workflow.MessageRef, user string) workflow.MessageRef {
	t.Helper()
	i := slices.IndexFunc(refs, func(r workflow.MessageRef) bool { return r.User == user })
	if i < 0 {
		t.Fatalf("no message recorded for %s in %+v", user, refs)
	}
	return refs[i]
}

func TestNotifierAsksEachApproverOnce(t *testing.T) {
	h := newNotifierHarness(t, auditChannel)
	r := newRequest()
	if handled := h.synced(r, workflow.LanePeople); handled != 1 {
		t.Errorf("handled %d events, want 1", handled)
	}
	posts := h.srv.Calls("chat.postMessage")
	var to []string
	for _, c := range posts {
		to = append(to, c.Params.Get("channel"))
	}
	slices.Sort(to)
	if !slices.Equal(to, []string{approver1ID, approver2ID}) {
		t.Errorf("posted to %v, want one DM to each approver's user ID", to)
	}
	want := ApprovalMessage(r)
	for _, a := range r.Approvers {
		m := h.only(slacktest.DMChannel(a))
		if got := buttons(t, m.Blocks); !slices.Equal(got, []string{ActionApprove + "=" + r.ID, ActionDeny + "=" + r.ID}) {
			t.Errorf("%s's DM has buttons %v", a, got)
		}
		if m.Text != want.Text {
			t.Errorf("%s's DM says %q", a, m.Text)
		}
		got := ref(t, r.Messages.Approvers, a)
		if got.Channel != m.Channel || got.TS != m.TS || got.Hash != digest(want) {
			t.Errorf("%s's ref %+v, want channel %s ts %s hash %s", a, got, m.Channel, m.TS, digest(want))
		}
	}
	if len(r.Messages.Approvers) != 2 || r.Messages.Notified != 1 {
		t.Errorf("bookkeeping %+v", r.Messages)
	}
	if msgs := h.srv.Messages(slacktest.DMChannel(employeeID)); len(msgs) != 0 {
		t.Errorf("the employee got %d DMs while pending", len(msgs))
	}
	if msgs := h.srv.Messages(auditChannel); len(msgs) != 0 {
		t.Errorf("the people lane posted %d audit messages", len(msgs))
	}
	h.quiet(r, workflow.LanePeople)
}

func TestNotifierAfterDecision(t *testing.T) {
	h := newNotifierHarness(t, auditChannel)
	r := newRequest()
	h.synced(r, workflow.LanePeople)
	decide(t, r, approver1ID, true)
	updates, posts := len(h.srv.Calls("chat.update")), len(h.srv.Calls("chat.postMessage"))

	if handled := h.synced(r, workflow.LanePeople); handled != 1 {
		t.Errorf("handled %d events, want 1", handled)
	}
	if n := len(h.callsSince("chat.update", updates)); n != 2 {
		t.Errorf("%d chat.update calls, want one per approver", n)
	}
	if n := len(h.callsSince("chat.postMessage", posts)); n != 1 {
		t.Errorf("%d chat.postMessage calls, want the employee's Reveal DM only", n)
	}
	for _, a := range r.Approvers {
		m := h.only(slacktest.DMChannel(a))
		if m.Updates != 1 || len(buttons(t, m.Blocks)) != 0 || !strings.Contains(blockText(t, m.Blocks), "Approved by <@"+approver1ID+">") {
			t.Errorf("%s's DM after approval: %d updates, buttons %v, blocks %s", a, m.Updates, buttons(t, m.Blocks), m.Blocks)
		}
		if got := ref(t, r.Messages.Approvers, a); got.Hash != digest(ApprovalMessage(r)) {
			t.Errorf("%s's ref hash %s not brought up to date", a, got.Hash)
		}
	}
	reveal := h.only(slacktest.DMChannel(employeeID))
	if got := buttons(t, reveal.Blocks); !slices.Equal(got, []string{ActionReveal + "=" + r.ID}) {
		t.Errorf("the employee's DM has buttons %v", got)
	}
	emp := r.Messages.Employee
	if emp.User != employeeID || emp.Channel != reveal.Channel || emp.TS != reveal.TS || emp.Hash != digest(RevealMessage(r)) {
		t.Errorf("employee ref %+v", emp)
	}
	h.quiet(r, workflow.LanePeople)

	// The reset changes the employee's message once; the approvers'
	// messages already show all they will ever show.
	resetAndComplete(t, r)
	h.synced(r, workflow.LanePeople)
	if m := h.only(slacktest.DMChannel(employeeID)); m.Updates != 1 || len(buttons(t, m.Blocks)) != 0 {
		t.Errorf("the Reveal DM after the reset: %d updates, buttons %v", m.Updates, buttons(t, m.Blocks))
	}
	for _, a := range r.Approvers {
		if m := h.only(slacktest.DMChannel(a)); m.Updates != 1 {
			t.Errorf("%s's DM was updated %d times, want once", a, m.Updates)
		}
	}
	h.quiet(r, workflow.LanePeople)
}

// clickFromSlack sends c through slacktest's Socket Mode and returns the
// InteractionCallback slack-go makes of it, response_url included.
func clickFromSlack(t *testing.T, srv *slacktest.Server, c slacktest.Click) slack.InteractionCallback {
	t.Helper()
	api := slack.New(slacktest.BotToken, slack.OptionAppLevelToken(slacktest.AppToken), slack.OptionAPIURL(srv.APIURL()))
	sm := socketmode.New(api, socketmode.OptionLog(discardLog()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- sm.RunContext(ctx) }()
	defer func() {
		cancel()
		if err := <-ran; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("socket mode: %v", err)
		}
	}()
	srv.Click(c)
	for {
		select {
		case evt := <-sm.Events:
			if cb, ok := evt.Data.(slack.InteractionCallback); ok && evt.Type == socketmode.EventTypeInteractive {
				return cb
			}
		case <-ctx.Done():
			t.Fatal("the click did not arrive")
		}
	}
}

func TestNotifierAnswersTheClickThroughItsResponseURL(t *testing.T) {
	h := newNotifierHarness(t, auditChannel)
	r := newRequest()
	h.synced(r, workflow.LanePeople)
	clicked := ref(t, r.Messages.Approvers, approver1ID)
	cb := clickFromSlack(t, h.srv, slacktest.Click{User: approver1ID, ActionID: ActionApprove, Value: r.ID, MessageTS: clicked.TS})
	if cb.ResponseURL == "" || cb.Channel.ID != clicked.Channel || cb.Container.MessageTs != clicked.TS {
		t.Fatalf("click %+v does not point at %+v", cb, clicked)
	}
	decide(t, r, approver1ID, true)
	updates := len(h.srv.Calls("chat.update"))

	if _, err := h.sync(withClick(context.Background(), cb), r, workflow.LanePeople); err != nil {
		t.Fatal(err)
	}
	answers := h.srv.ResponsePosts()
	if len(answers) != 1 || answers[0].URL != cb.ResponseURL || !answers[0].ReplaceOriginal || answers[0].Text != ApprovalMessage(r).Text {
		t.Fatalf("response_url posts %+v, want one replacing the clicked message", answers)
	}
	if m := h.only(clicked.Channel); m.Updates != 1 || len(buttons(t, m.Blocks)) != 0 {
		t.Errorf("the clicked message: %d updates, buttons %v", m.Updates, buttons(t, m.Blocks))
	}
	calls := h.callsSince("chat.update", updates)
	if len(calls) != 1 || calls[0].Params.Get("channel") != slacktest.DMChannel(approver2ID) {
		t.Errorf("chat.update calls %v, want one, for the other approver's message", calls)
	}
	for _, a := range r.Approvers {
		if got := ref(t, r.Messages.Approvers, a); got.Hash != digest(ApprovalMessage(r)) {
			t.Errorf("%s's ref hash not brought up to date", a)
		}
	}
	if _, err := h.sync(withClick(context.Background(), cb), r, workflow.LanePeople); err != nil {
		t.Fatal(err)
	}
	if n := len(h.srv.ResponsePosts()); n != 1 {
		t.Errorf("the click was answered %d times", n)
	}
	h.quiet(r, workflow.LanePeople)
}

func TestNotifierAuditThread(t *testing.T) {
	h := newNotifierHarness(t, auditChannel)
	r := newRequest()
	if handled := h.synced(r, workflow.LaneAudit); handled != 1 {
		t.Errorf("handled %d, want 1", handled)
	}
	msgs := h.srv.Messages(auditChannel)
	if len(msgs) != 2 {
		t.Fatalf("%d audit messages, want the parent and one reply", len(msgs))
	}
	parent, reply := msgs[0], msgs[1]
	if parent.ThreadTS != "" || parent.Text != AuditParent(r).Text {
		t.Errorf("parent %+v", parent)
	}
	if reply.ThreadTS != parent.TS || reply.Text != AuditReply(r, r.Events[0]).Text {
		t.Errorf("reply %q in thread %q", reply.Text, reply.ThreadTS)
	}
	if got := r.Messages.Audit; got.Channel != auditChannel || got.TS != parent.TS || got.Hash != digest(AuditParent(r)) || r.Messages.Audited != 1 {
		t.Errorf("audit bookkeeping %+v, audited %d", got, r.Messages.Audited)
	}
	if n := len(h.srv.Calls("chat.update")); n != 0 {
		t.Errorf("a parent that shows the current state was updated %d times", n)
	}
	if len(h.srv.Messages(slacktest.DMChannel(approver1ID))) != 0 {
		t.Error("the audit lane sent DMs")
	}
	h.quiet(r, workflow.LaneAudit)

	// Three events while the audit lane lagged: one reply with three
	// lines, and the parent updated once to the latest status.
	decide(t, r, approver1ID, true)
	resetAndComplete(t, r)
	posts := len(h.srv.Calls("chat.postMessage"))
	if handled := h.synced(r, workflow.LaneAudit); handled != 3 {
		t.Errorf("handled %d, want 3", handled)
	}
	if n := len(h.callsSince("chat.postMessage", posts)); n != 1 {
		t.Errorf("%d posts for three events, want one reply", n)
	}
	msgs = h.srv.Messages(auditChannel)
	if len(msgs) != 3 {
		t.Fatalf("%d audit messages, want 3", len(msgs))
	}
	last := msgs[2]
	lines := strings.Split(last.Text, "\n")
	if last.ThreadTS != parent.TS || len(lines) != 3 {
		t.Errorf("reply in thread %q with %d lines: %q", last.ThreadTS, len(lines), last.Text)
	}
	for i, ev := range r.Events[1:] {
		if i < len(lines) && lines[i] != AuditReply(r, ev).Text {
			t.Errorf("line %d %q, want %q", i, lines[i], AuditReply(r, ev).Text)
		}
	}
	p, ok := h.srv.Message(auditChannel, parent.TS)
	if !ok || p.Updates != 1 || p.Text != AuditParent(r).Text || !strings.HasSuffix(p.Text, ": completed") {
		t.Errorf("parent after completion: %d updates, %q", p.Updates, p.Text)
	}
	if r.Messages.Audited != 4 || r.Messages.Audit.Hash != digest(AuditParent(r)) {
		t.Errorf("audit bookkeeping %+v, audited %d", r.Messages.Audit, r.Messages.Audited)
	}
	h.quiet(r, workflow.LaneAudit)
}

// When the audit channel's posts are held back (a burst's replies queue
// there), the parent still shows the new state: it is updated first, under
// chat.update's own limit, and the reply is left for later.
func TestAuditParentBeforeTheQueuedReply(t *testing.T) {
	h := newNotifierHarness(t, auditChannel)
	r := newRequest()
	h.synced(r, workflow.LaneAudit)
	parent := h.srv.Messages(auditChannel)[0]
	decide(t, r, approver1ID, true)
	h.srv.ThrottleChannel(auditChannel, time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	handled, err := h.sync(ctx, r, workflow.LaneAudit)
	if !errors.Is(err, workflow.ErrDeferred) || handled != 0 {
		t.Errorf("Sync with the channel held back = %d, %v; want 0 handled, deferred", handled, err)
	}
	p, ok := h.srv.Message(auditChannel, parent.TS)
	if !ok || p.Updates != 1 || !strings.HasSuffix(p.Text, ": approved") {
		t.Errorf("parent while its reply waits: %d updates, %q; want the approved state", p.Updates, p.Text)
	}
	if r.Messages.Audit.Hash != digest(AuditParent(r)) || r.Messages.Audited != 1 {
		t.Errorf("audit bookkeeping %+v, audited %d; want the parent current, the reply still to post", r.Messages.Audit, r.Messages.Audited)
	}
}

// The people lane posts nothing for a reveal, as workflow.Notifier
// promises (the service does not save that round): it only brings the
// Reveal DM up to date.
func TestRevealPostsNothing(t *testing.T) {
	h := newNotifierHarness(t, auditChannel)
	r := newRequest()
	decide(t, r, approver1ID, true)
	h.synced(r, workflow.LanePeople)
	posts := len(h.srv.Calls("chat.postMessage")) + len(h.srv.Calls("chat.postEphemeral"))
	now := time.Now()
	if err := r.BeginReset(r.Requester, "replica-1", now, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if handled := h.synced(r, workflow.LanePeople); handled != 1 {
		t.Errorf("handled %d, want the reveal", handled)
	}
	if n := len(h.srv.Calls("chat.postMessage")) + len(h.srv.Calls("chat.postEphemeral")) - posts; n != 0 {
		t.Errorf("the reveal posted %d messages, want none", n)
	}
	if n := len(h.srv.Calls("chat.update")); n != 1 {
		t.Errorf("%d updates for the reveal, want the Reveal DM's", n)
	}
}

func TestNotifierWithoutAuditChannel(t *testing.T) {
	h := newNotifierHarness(t, "")
	r := newRequest()
	decide(t, r, approver1ID, false)
	if handled := h.synced(r, workflow.LaneAudit); handled != 2 || r.Messages.Audited != 2 {
		t.Errorf("handled %d, audited %d; want the lane complete", handled, r.Messages.Audited)
	}
	if err := h.n.Refused(context.Background(), workflow.Refusal{At: time.Now(), User: employeeID, Code: workflow.CodeRateLimited}); err != nil {
		t.Fatal(err)
	}
	if calls := h.srv.Calls(""); len(calls) != 0 {
		t.Errorf("without an audit channel %d calls were made, first %s", len(calls), calls[0].Method)
	}
}

func TestNotifierSkipsARefusedApprover(t *testing.T) {
	h := newNotifierHarness(t, auditChannel)
	h.srv.RefuseChannel(slacktest.DMChannel(approver1ID), "user_disabled")
	r := newRequest()
	if handled := h.synced(r, workflow.LanePeople); handled != 1 {
		t.Errorf("handled %d, want 1", handled)
	}
	if got := ref(t, r.Messages.Approvers, approver1ID); got.Channel != "" || got.TS != "" {
		t.Errorf("the refused approver's ref %+v, want no message", got)
	}
	h.only(slacktest.DMChannel(approver2ID))
	if len(h.srv.Messages(slacktest.DMChannel(approver1ID))) != 0 {
		t.Error("the refused approver has a message")
	}
	if !strings.Contains(h.logs.String(), "user_disabled") {
		t.Error("the refusal was not logged")
	}
	h.quiet(r, workflow.LanePeople) // nobody tries the refused approver again

	decide(t, r, approver2ID, true)
	updates := len(h.srv.Calls("chat.update"))
	h.synced(r, workflow.LanePeople)
	calls := h.callsSince("chat.update", updates)
	if len(calls) != 1 || calls[0].Params.Get("channel") != slacktest.DMChannel(approver2ID) {
		t.Errorf("chat.update calls %v, want one for the approver who got the request", calls)
	}
	h.only(slacktest.DMChannel(employeeID))
}

func TestNotifierSkipsADeletedMessage(t *testing.T) {
	h := newNotifierHarness(t, auditChannel)
	r := newRequest()
	h.synced(r, workflow.LanePeople)
	gone := ref(t, r.Messages.Approvers, approver1ID)
	if _, _, err := h.n.API.DeleteMessage(gone.Channel, gone.TS); err != nil {
		t.Fatal(err)
	}
	decide(t, r, approver2ID, false)
	h.synced(r, workflow.LanePeople)
	if m := h.only(slacktest.DMChannel(approver2ID)); m.Updates != 1 {
		t.Errorf("the other approver's message was updated %d times", m.Updates)
	}
	if !strings.Contains(h.logs.String(), "message_not_found") {
		t.Error("the deleted message was not logged")
	}
}

func TestNotifierOutageIsRetried(t *testing.T) {
	h := newNotifierHarness(t, auditChannel)
	h.srv.FailNext("chat.postMessage", "internal_error", 1)
	r := newRequest()
	handled, err := h.sync(context.Background(), r, workflow.LanePeople)
	if err == nil || errors.Is(err, workflow.ErrDeferred) {
		t.Fatalf("Sync during an outage: %v, want an error", err)
	}
	if handled != 0 || len(r.Messages.Approvers) != 1 || len(h.srv.Messages("")) != 1 {
		t.Errorf("during the outage: handled %d, refs %+v, %d messages; want the one that went through recorded", handled, r.Messages.Approvers, len(h.srv.Messages("")))
	}
	if handled := h.synced(r, workflow.LanePeople); handled != 1 {
		t.Errorf("the retry handled %d, want 1", handled)
	}
	for _, a := range r.Approvers {
		h.only(slacktest.DMChannel(a))
		ref(t, r.Messages.Approvers, a)
	}
	if n := len(h.srv.Calls("chat.postMessage")); n != 3 {
		t.Errorf("%d chat.postMessage calls, want 2 and the one retried", n)
	}
	h.quiet(r, workflow.LanePeople)
}

func TestNotifierDefersAThrottledApprover(t *testing.T) {
	h := newNotifierHarness(t, auditChannel)
	h.srv.ThrottleChannel(slacktest.DMChannel(approver2ID), time.Minute)
	r := newRequest()
	start := time.Now()
	handled, err := h.sync(context.Background(), r, workflow.LanePeople)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Sync took %s with a channel throttled for a minute", took)
	}
	if !errors.Is(err, workflow.ErrDeferred) {
		t.Fatalf("Sync: %v, want ErrDeferred", err)
	}
	// A deferred sync leaves its last event to be synced again.
	if handled != 0 || r.Messages.Notified != 1 {
		t.Errorf("handled %d, notified %d", handled, r.Messages.Notified)
	}
	h.only(slacktest.DMChannel(approver1ID))
	if len(r.Messages.Approvers) != 1 || r.Messages.Approvers[0].User != approver1ID {
		t.Errorf("refs %+v, want approver 1's only", r.Messages.Approvers)
	}

	// Within the Retry-After, a round makes no call to the throttled
	// channel and none to the approver who has the request.
	before := len(h.srv.Calls(""))
	if _, err := h.sync(context.Background(), r, workflow.LanePeople); !errors.Is(err, workflow.ErrDeferred) {
		t.Fatalf("second Sync: %v, want ErrDeferred", err)
	}
	if calls := h.srv.Calls("")[before:]; len(calls) != 0 {
		t.Errorf("a round inside the Retry-After made %d calls", len(calls))
	}
	if n := slacktest.Total(h.srv.RateStats().InWindow); n != 0 {
		t.Errorf("%d calls inside an announced Retry-After", n)
	}

	// A later round, once the window has passed, asks the approver left
	// out. Rather than wait a minute, the test makes the minute pass for
	// both sides: slacktest forgets the throttle and the Retry-After it
	// announced, and a fresh gate has no Retry-After to wait out.
	h.srv.ThrottleChannel(slacktest.DMChannel(approver2ID), 0)
	h.srv.SetRateLimits(slacktest.Limits{})
	h.n.Gate = NewGate()
	if handled := h.synced(r, workflow.LanePeople); handled != 1 {
		t.Errorf("the later round handled %d, want 1", handled)
	}
	for _, a := range r.Approvers {
		h.only(slacktest.DMChannel(a))
		ref(t, r.Messages.Approvers, a)
	}
	h.quiet(r, workflow.LanePeople)
}

func TestNotifierDeliverPassword(t *testing.T) {
	const password = "Xy7-secret-Pw-4711q"
	h := newNotifierHarness(t, auditChannel)
	r := newRequest()
	h.synced(r, workflow.LanePeople)
	h.synced(r, workflow.LaneAudit)
	decide(t, r, approver1ID, true)
	h.synced(r, workflow.LanePeople)
	h.synced(r, workflow.LaneAudit)
	if err := r.BeginReset(employeeID, "replica-1", time.Now(), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	before := len(h.srv.Calls(""))

	if err := h.n.DeliverPassword(context.Background(), r, workflow.Delivery{Password: password, MustChange: true}); err != nil {
		t.Fatal(err)
	}
	calls := h.srv.Calls("")[before:]
	if len(calls) != 1 || calls[0].Method != "chat.postEphemeral" {
		t.Fatalf("calls %v, want one chat.postEphemeral", calls)
	}
	if ch, u := calls[0].Params.Get("channel"), calls[0].Params.Get("user"); ch != slacktest.DMChannel(employeeID) || u != employeeID {
		t.Errorf("ephemeral to %s in %s, want the employee in their DM", u, ch)
	}
	eph := h.srv.Ephemerals()
	if len(eph) != 1 || !bytes.Contains(eph[0].Blocks, []byte(password)) || eph[0].User != employeeID {
		t.Fatalf("ephemerals %+v, want one with the password for the employee", eph)
	}

	// Finish the request and its chat: the password is nowhere else.
	if err := r.Complete("replica-1", time.Now(), "", ""); err != nil {
		t.Fatal(err)
	}
	h.synced(r, workflow.LanePeople)
	h.synced(r, workflow.LaneAudit)
	for i, c := range h.srv.Calls("") {
		has := bytes.Contains(c.Body, []byte(password))
		for _, vs := range c.Params {
			has = has || slices.ContainsFunc(vs, func(v string) bool { return strings.Contains(v, password) })
		}
		if has && i != before {
			t.Errorf("call %d (%s) carries the password", i, c.Method)
		}
	}
	for _, m := range h.srv.Messages("") {
		if strings.Contains(m.Text, password) || bytes.Contains(m.Blocks, []byte(password)) {
			t.Errorf("message %s/%s holds the password", m.Channel, m.TS)
		}
	}
	if strings.Contains(h.logs.String(), password) {
		t.Error("the password was logged")
	}
}

func TestNotifierDeliverPasswordFindsTheDM(t *testing.T) {
	const password = "Qz8-another-Pw-0815q"
	h := newNotifierHarness(t, auditChannel)
	r := newRequest()
	decide(t, r, approver1ID, true)

	// No DM known yet: it is opened.
	if err := h.n.DeliverPassword(context.Background(), r, workflow.Delivery{Password: password}); err != nil {
		t.Fatal(err)
	}
	if n := len(h.srv.Calls("conversations.open")); n != 1 {
		t.Errorf("%d conversations.open calls, want 1", n)
	}
	// The Reveal click came from the DM: its channel is used.
	cb := slack.InteractionCallback{User: slack.User{ID: employeeID}}
	cb.Channel.ID = slacktest.DMChannel(employeeID)
	if err := h.n.DeliverPassword(withClick(context.Background(), cb), r, workflow.Delivery{Password: password}); err != nil {
		t.Fatal(err)
	}
	if n := len(h.srv.Calls("conversations.open")); n != 1 {
		t.Errorf("with the click's channel, %d conversations.open calls, want still 1", n)
	}
	for _, e := range h.srv.Ephemerals() {
		if e.Channel != slacktest.DMChannel(employeeID) || e.User != employeeID {
			t.Errorf("ephemeral for %s in %s", e.User, e.Channel)
		}
	}

	h.srv.FailNext("chat.postEphemeral", "channel_not_found", 1)
	err := h.n.DeliverPassword(context.Background(), r, workflow.Delivery{Password: password})
	if workflow.ErrorCode(err) != workflow.CodeDeliveryFailed || strings.Contains(err.Error(), password) {
		t.Errorf("a failed delivery: %v, want %s without the password", err, workflow.CodeDeliveryFailed)
	}
}

func TestNotifierRefused(t *testing.T) {
	h := newNotifierHarness(t, auditChannel)
	f := workflow.Refusal{At: time.Now(), User: employeeID, Account: "administrator", Code: workflow.CodeProtectedAccount,
		Detail: "the account is in <Domain Admins> & more"}
	if err := h.n.Refused(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	if n := len(h.srv.Calls("")); n != 1 {
		t.Errorf("%d calls, want one post", n)
	}
	m := h.only(auditChannel)
	if m.Text != RefusalMessage(f).Text || m.ThreadTS != "" {
		t.Errorf("audit line %q (thread %q), want %q", m.Text, m.ThreadTS, RefusalMessage(f).Text)
	}
	if strings.Contains(m.Text, "<Domain Admins>") {
		t.Error("the detail was not escaped")
	}

	// A channel the bot is not in refuses for good: logged, not retried.
	h.srv.RefuseChannel(auditChannel, "not_in_channel")
	if err := h.n.Refused(context.Background(), f); err != nil {
		t.Errorf("a refused audit line: %v, want it logged and skipped", err)
	}
}
