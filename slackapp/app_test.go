package slackapp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/example/resetbot/internal/slacktest"
	"github.com/example/resetbot/store/memstore"
	"github.com/example/resetbot/store/seal"
	"github.com/example/resetbot/workflow"
)

// The people of the test workspace.
const (
	employeeID  = "UEMP"
	employee2ID = "UEMP2"
	approver1ID = "UAPP1"
	approver2ID = "UAPP2"
	strangerID  = "UOTHER"
)

// addPeople adds the test workspace's people to srv.
func addPeople(srv *slacktest.Server) {
	for _, u := range []slacktest.User{
		{ID: employeeID, Name: "emp", RealName: "Emma Ployee", Email: "emp@corp.example.com"},
		{ID: employee2ID, Name: "emp2", RealName: "Emil Ployee", Email: "emp2@corp.example.com"},
		{ID: approver1ID, Name: "app1", RealName: "Ann Approver", Email: "app1@corp.example.com"},
		{ID: approver2ID, Name: "app2", RealName: "Abe Approver", Email: "app2@corp.example.com"},
		{ID: strangerID, Name: "other", RealName: "Otto Other", Email: "other@corp.example.com"},
	} {
		srv.AddUser(u)
	}
}

// appHarness is an App with a real workflow.Service, its Socket Mode client
// connected to slacktest, and a server that records what is posted to the
// response URLs of the events a test dispatches.
type appHarness struct {
	t       *testing.T
	srv     *slacktest.Server
	app     *App
	svc     *workflow.Service
	store   *memstore.Store
	dir     *recordingDirectory
	notes   *recordingNotifier
	answers *responseRecorder
	logs    *syncBuffer
	seq     atomic.Int64
}

// newAppHarness starts the App; configure, when set, adjusts it before Run.
func newAppHarness(t *testing.T, configure func(*App)) *appHarness {
	t.Helper()
	srv := slacktest.New()
	t.Cleanup(srv.Close)
	addPeople(srv)
	h := &appHarness{t: t, srv: srv, store: memstore.New(seal.Derive("slackapp tests", "requests")), dir: &recordingDirectory{},
		notes: &recordingNotifier{}, answers: newResponseRecorder(t), logs: &syncBuffer{}}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", h.logs)
		}
	})
	api := slack.New(slacktest.BotToken, slack.OptionAppLevelToken(slacktest.AppToken), slack.OptionAPIURL(srv.APIURL()))
	h.svc = workflow.New(workflow.Config{DirectoryID: "d-1234567890"}, workflow.Deps{
		Store:     h.store,
		Directory: h.dir,
		Passwords: &countingPasswords{},
		Identity:  &Identity{API: api, Domains: []string{"corp.example.com"}, Team: slacktest.TeamID},
		Accounts:  localPartAccounts{},
		Approvers: &StaticApprovers{API: api, Users: []string{approver1ID, approver2ID}, Log: log},
		Notifier:  h.notes,
		Log:       log.With("component", "workflow"),
	})
	h.app = &App{
		API:     api,
		Socket:  socketmode.New(api, socketmode.OptionLog(discardLog())),
		Flows:   h.svc,
		HTTP:    h.answers.srv.Client(),
		Log:     log.With("component", "slack"),
		Timeout: 10 * time.Second,
	}
	if configure != nil {
		configure(h.app)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- h.app.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-ran:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after its context ended")
		}
		h.app.Wait()
		h.svc.Wait()
	})
	h.waitUntil("the App is connected", h.app.Connected)
	return h
}

func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }

// waitUntil polls cond (every 10ms, for at most 10s).
func (h *appHarness) waitUntil(what string, cond func() bool) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.srv.WaitFor(ctx, cond); err != nil {
		h.t.Fatalf("%s: %v", what, err)
	}
}

// dispatch hands evt to the App the way the Socket Mode client does.
func (h *appHarness) dispatch(evt socketmode.Event) {
	h.t.Helper()
	select {
	case h.app.Socket.Events <- evt:
	case <-time.After(10 * time.Second):
		h.t.Fatal("the App does not read Socket.Events")
	}
}

func (h *appHarness) envelope() string { return fmt.Sprintf("test-envelope-%d", h.seq.Add(1)) }

// command dispatches /reset-password text typed by user and returns the
// envelope ID, which also names the event's response URL.
func (h *appHarness) command(user, text string) string {
	h.t.Helper()
	id := h.envelope()
	evt := commandEvent(id, user, text, h.answers.url(id))
	cmd := evt.Data.(slack.SlashCommand)
	cmd.TriggerID = h.srv.NewTrigger(user)
	evt.Data = cmd
	h.dispatch(evt)
	return id
}

// click dispatches user's click on the button actionID carrying value.
func (h *appHarness) click(user, actionID, value string) string {
	h.t.Helper()
	id := h.envelope()
	evt := clickEvent(id, user, h.answers.url(id), &slack.BlockAction{ActionID: actionID, Value: value})
	cb := evt.Data.(slack.InteractionCallback)
	cb.TriggerID = h.srv.NewTrigger(user)
	evt.Data = cb
	h.dispatch(evt)
	return id
}

// modal waits for the newest modal opened for user, of callback.
func (h *appHarness) modal(user, callback string) slacktest.View {
	h.t.Helper()
	var v slacktest.View
	h.waitUntil("a "+callback+" modal for "+user, func() bool {
		vs := h.srv.Views(user)
		if len(vs) > 0 {
			v = vs[len(vs)-1]
		}
		return v.CallbackID == callback
	})
	return v
}

// submitView dispatches the submission of modal v with reason typed in
// its reason input, and returns the envelope ID; the App's ack payload is
// then the server's Ack of it.
func (h *appHarness) submitView(v slacktest.View, reason string) string {
	h.t.Helper()
	id := h.envelope()
	h.dispatch(socketmode.Event{
		Type: socketmode.EventTypeInteractive,
		Data: slack.InteractionCallback{Type: slack.InteractionTypeViewSubmission, User: slack.User{ID: v.User},
			View: slack.View{ID: v.ID, Type: slack.VTModal, CallbackID: v.CallbackID, PrivateMetadata: v.PrivateMetadata,
				State: &slack.ViewState{Values: map[string]map[string]slack.BlockAction{inputReason: {actionReason: {Value: reason}}}}}},
		Request: &socketmode.Request{Type: "interactive", EnvelopeID: id},
	})
	return id
}

// answer waits for the first post to the response URL of envelope id.
func (h *appHarness) answer(id string) webhookPost {
	h.t.Helper()
	var p []webhookPost
	h.waitUntil("an answer to "+id, func() bool {
		p = h.answers.posts(id)
		return len(p) > 0
	})
	if p[0].ResponseType != slack.ResponseTypeEphemeral {
		h.t.Errorf("answer to %s has response_type %q, want ephemeral", id, p[0].ResponseType)
	}
	return p[0]
}

// settle waits until every event dispatched so far has been handled: a
// help command dispatched after them is answered, and then App.Wait
// returns. The service's background work is waited for too.
func (h *appHarness) settle() {
	h.t.Helper()
	h.answer(h.command(employeeID, "help"))
	h.app.Wait()
	h.svc.Wait()
}

// noAnswer checks, once settled, that nothing was posted for envelope id.
func (h *appHarness) noAnswer(id string) {
	h.t.Helper()
	if p := h.answers.posts(id); len(p) > 0 {
		h.t.Errorf("envelope %s was answered %q; want no answer", id, p[0].Text)
	}
}

// acked waits for the ack of envelope id on the Socket Mode connection.
func (h *appHarness) acked(id string) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := h.srv.WaitAck(ctx, id); err != nil {
		h.t.Fatalf("envelope %s was not acked: %v", id, err)
	}
}

// submit creates a pending request of user through the service.
func (h *appHarness) submit(user string) *workflow.Request {
	h.t.Helper()
	r, err := h.svc.Submit(context.Background(), user)
	if err != nil {
		h.t.Fatalf("Submit(%s): %v", user, err)
	}
	return r
}

// request returns the stored request id.
func (h *appHarness) request(id string) *workflow.Request {
	h.t.Helper()
	r, err := h.store.Get(context.Background(), id)
	if err != nil {
		h.t.Fatalf("Get(%s): %v", id, err)
	}
	return r
}

func (h *appHarness) waitStatus(id string, want workflow.Status) *workflow.Request {
	h.t.Helper()
	var r *workflow.Request
	h.waitUntil(fmt.Sprintf("request %s is %s", id, want), func() bool {
		var err error
		r, err = h.store.Get(context.Background(), id)
		return err == nil && r.Status == want
	})
	return r
}

func commandEvent(envelopeID, user, text, responseURL string) socketmode.Event {
	return socketmode.Event{
		Type: socketmode.EventTypeSlashCommand,
		Data: slack.SlashCommand{Command: DefaultCommand, UserID: user, UserName: strings.ToLower(user),
			ChannelID: slacktest.DMChannel(user), Text: text, ResponseURL: responseURL, TriggerID: "trigger-" + envelopeID},
		Request: &socketmode.Request{Type: "slash_commands", EnvelopeID: envelopeID, AcceptsResponsePayload: true},
	}
}

func clickEvent(envelopeID, user, responseURL string, actions ...*slack.BlockAction) socketmode.Event {
	ch := slack.Channel{}
	ch.ID = slacktest.DMChannel(user)
	return socketmode.Event{
		Type: socketmode.EventTypeInteractive,
		Data: slack.InteractionCallback{
			Type: slack.InteractionTypeBlockActions, User: slack.User{ID: user}, Channel: ch,
			ResponseURL: responseURL, TriggerID: "trigger-" + envelopeID,
			Container:      slack.Container{Type: "message", ChannelID: ch.ID, MessageTs: "1700000000.000001"},
			ActionCallback: slack.ActionCallbacks{BlockActions: actions},
		},
		Request: &socketmode.Request{Type: "interactive", EnvelopeID: envelopeID},
	}
}

func TestCommandHelp(t *testing.T) {
	h := newAppHarness(t, nil)
	want := HelpMessage(DefaultCommand, "").Text
	for _, text := range []string{"help", " HELP "} {
		if got := h.answer(h.command(employeeID, text)); got.Text != want {
			t.Errorf("%q answered %q, want the help", text, got.Text)
		}
	}
	if n := h.store.Len(); n != 0 {
		t.Errorf("help created %d requests", n)
	}
}

func TestCommandRequestStatusCancel(t *testing.T) {
	h := newAppHarness(t, nil)

	got := h.answer(h.command(employeeID, ""))
	open, err := h.store.Open(context.Background(), employeeID)
	if err != nil {
		t.Fatalf("no open request after the command: %v (answer %q)", err, got.Text)
	}
	if want := Receipt(open).Text; got.Text != want {
		t.Errorf("answer %q, want the receipt %q", got.Text, want)
	}
	if open.Status != workflow.StatusPending || open.Account.UserName != "emp" || !slices.Equal(open.Approvers, []string{approver1ID, approver2ID}) {
		t.Errorf("created %+v, want a pending request for emp asking both approvers", open)
	}

	got = h.answer(h.command(employeeID, ""))
	if want := ErrorText(workflow.Errorf(workflow.CodeOpenRequest, ""), open); got.Text != want {
		t.Errorf("second request answered %q, want %q", got.Text, want)
	}
	if !strings.Contains(got.Text, open.ID) {
		t.Errorf("second request's answer %q does not name the open request", got.Text)
	}

	if got, want := h.answer(h.command(employeeID, "status")).Text, StatusReply(open).Text; got != want {
		t.Errorf("status answered %q, want %q", got, want)
	}

	got = h.answer(h.command(employeeID, "cancel"))
	ended := h.request(open.ID)
	if ended.Status != workflow.StatusCancelled {
		t.Errorf("after cancel the request is %s", ended.Status)
	}
	if want := CancelReply(ended).Text; got.Text != want {
		t.Errorf("cancel answered %q, want %q", got.Text, want)
	}

	noOpen := text(workflow.CodeNoOpenRequest).employee
	for _, cmd := range []string{"status", "cancel"} {
		if got := h.answer(h.command(employeeID, cmd)).Text; got != noOpen {
			t.Errorf("%s without an open request answered %q, want %q", cmd, got, noOpen)
		}
	}
	if n := h.store.Len(); n != 1 {
		t.Errorf("%d requests stored, want 1", n)
	}
}

func TestCommandOddTextIsEscapedAndCut(t *testing.T) {
	h := newAppHarness(t, nil)
	long := strings.Repeat("x", 500)
	for _, tc := range []struct {
		text, shown string // shown: what the answer quotes
		never       []string
	}{
		{"reset bob", "`reset bob`", nil},
		{"<!channel>", "`&lt;!channel&gt;`", []string{"<!channel>"}},
		{"<@UAPP1> `approve` me & <https://evil.example|click>", "`&lt;@UAPP1&gt; 'approve' me &amp; &lt;https://evil.ex…`", []string{"<@UAPP1>", "<https://"}},
		{long, "`" + strings.Repeat("x", 40) + "…`", []string{strings.Repeat("x", 41)}},
		{strings.Repeat("€", 50), "`" + strings.Repeat("€", 40) + "…`", []string{"\uFFFD"}},
	} {
		got := h.answer(h.command(employeeID, tc.text))
		want := ":warning: I don't know the option " + tc.shown + "."
		if !strings.HasPrefix(got.Text, want+"\n\n") {
			t.Errorf("%.50q answered %q, want it to start with %q", tc.text, got.Text, want)
		}
		if !strings.HasSuffix(got.Text, HelpMessage(DefaultCommand, "").Text) {
			t.Errorf("%.50q: the answer does not end with the help: %q", tc.text, got.Text)
		}
		for _, s := range tc.never {
			if strings.Contains(got.Text, s) {
				t.Errorf("%.50q: the answer contains %q unescaped", tc.text, s)
			}
		}
		if !utf8.ValidString(got.Text) {
			t.Errorf("%.50q: the answer is not valid UTF-8", tc.text)
		}
	}
	h.settle()
	if n := h.store.Len(); n != 0 {
		t.Errorf("odd text created %d requests", n)
	}
	if calls := h.srv.Calls("users.info"); len(calls) != 0 {
		t.Errorf("odd text looked the user up %d times", len(calls))
	}
}

func TestClickDecisions(t *testing.T) {
	h := newAppHarness(t, nil)
	r := h.submit(employeeID)

	// Refused clicks change nothing and say why.
	for _, tc := range []struct {
		name, user, value, want string
	}{
		{"by the requester", employeeID, r.ID, text(workflow.CodeSelfApproval).employee},
		{"by a stranger", strangerID, r.ID, text(workflow.CodeNotApprover).employee},
		{"with a forged value", approver1ID, "Rzzzzzzzzzzzzzzzzzzzzzzzz", text(workflow.CodeNotFound).employee},
		{"with a value that is no ID", approver1ID, "../../etc/passwd", text(workflow.CodeNotFound).employee},
	} {
		for _, action := range []string{ActionApprove, ActionDeny} {
			if got := h.answer(h.click(tc.user, action, tc.value)).Text; got != tc.want {
				t.Errorf("%s %s: answered %q, want %q", action, tc.name, got, tc.want)
			}
		}
	}
	if got := h.request(r.ID); got.Status != workflow.StatusPending || len(got.Events) != 1 {
		t.Fatalf("after refused clicks the request is %s with %d events", got.Status, len(got.Events))
	}

	// An approver's click decides, without an error answer.
	approve := h.click(approver1ID, ActionApprove, " "+r.ID+" ")
	approved := h.waitStatus(r.ID, workflow.StatusApproved)
	if approved.DecidedBy != approver1ID || approved.RevealBy.IsZero() {
		t.Errorf("approved by %q, reveal by %v", approved.DecidedBy, approved.RevealBy)
	}

	// A second decision is refused with who decided first.
	for _, tc := range []struct{ user, action string }{{approver2ID, ActionDeny}, {approver2ID, ActionApprove}, {approver1ID, ActionApprove}} {
		got := h.answer(h.click(tc.user, tc.action, r.ID)).Text
		if want := ErrorText(workflow.Errorf(workflow.CodeDecided, ""), approved); got != want {
			t.Errorf("%s by %s after the approval: answered %q, want %q", tc.action, tc.user, got, want)
		}
		if !strings.Contains(got, "already approved by <@"+approver1ID+">") {
			t.Errorf("%q does not say who approved", got)
		}
	}
	h.settle()
	h.noAnswer(approve)
	if got := h.request(r.ID); got.Status != workflow.StatusApproved || got.DecidedBy != approver1ID {
		t.Errorf("after the second decisions: %s by %s", got.Status, got.DecidedBy)
	}

	// Deny works the same way.
	r2 := h.submit(employee2ID)
	deny := h.click(approver2ID, ActionDeny, r2.ID)
	h.settle()
	if got := h.request(r2.ID); got.Status != workflow.StatusPending {
		t.Fatalf("Deny decided before its modal was submitted: %s", got.Status)
	}
	h.submitView(h.modal(approver2ID, CallbackDeny), "")
	denied := h.waitStatus(r2.ID, workflow.StatusDenied)
	if denied.DecidedBy != approver2ID {
		t.Errorf("denied by %q", denied.DecidedBy)
	}
	if got := h.answer(h.click(approver1ID, ActionApprove, r2.ID)).Text; !strings.Contains(got, "already denied by <@"+approver2ID+">") {
		t.Errorf("approve after deny answered %q", got)
	}
	h.settle()
	h.noAnswer(deny)
}

func TestClickReveal(t *testing.T) {
	h := newAppHarness(t, nil)
	r := h.submit(employeeID)
	if _, err := h.svc.Decide(context.Background(), r.ID, approver1ID, true); err != nil {
		t.Fatal(err)
	}

	// Nobody but the requester may reveal, and they learn nothing.
	for _, user := range []string{approver1ID, strangerID} {
		if got, want := h.answer(h.click(user, ActionReveal, r.ID)).Text, text(workflow.CodeNotRequester).employee; got != want {
			t.Errorf("reveal by %s answered %q, want %q", user, got, want)
		}
	}
	h.settle()
	if resets := h.dir.resets(); len(resets) != 0 {
		t.Fatalf("a refused reveal reset %v", resets)
	}
	if got := h.request(r.ID); got.Status != workflow.StatusApproved {
		t.Fatalf("a refused reveal left the request %s", got.Status)
	}

	reveal := h.click(employeeID, ActionReveal, r.ID)
	done := h.waitStatus(r.ID, workflow.StatusCompleted)
	h.settle()
	resets := h.dir.resets()
	if len(resets) != 1 || resets[0].user != "emp" {
		t.Fatalf("directory resets %v, want one of emp", resets)
	}
	// The password is the ephemeral answer to the employee's own click:
	// through its response_url, never replacing the clicked message, never
	// in the channel; nothing else was posted.
	answers := h.answers.posts(reveal)
	if len(answers) != 1 {
		t.Fatalf("%d answers to the Reveal click, want the password only", len(answers))
	}
	d := answers[0]
	if !bytes.Contains(d.Raw, []byte(resets[0].password)) || d.ResponseType != slack.ResponseTypeEphemeral ||
		!bytes.Contains(d.Raw, []byte(`"replace_original":false`)) || d.ReplaceOriginal || d.DeleteOriginal {
		t.Errorf("password answer %s; the directory got %+v", d.Raw, resets[0])
	}
	if n := len(h.srv.Ephemerals()); n != 0 {
		t.Errorf("%d chat.postEphemeral calls besides the answer", n)
	}
	if done.Events[len(done.Events)-1].Kind != workflow.EventCompleted {
		t.Errorf("last event %s", done.LastEvent().Kind)
	}
	if strings.Contains(h.logs.String(), resets[0].password) {
		t.Error("the password was logged")
	}

	// A second Reveal after the reset is refused.
	if got := h.answer(h.click(employeeID, ActionReveal, r.ID)).Text; !strings.HasPrefix(got, "Nothing changed: this request") {
		t.Errorf("reveal after completion answered %q", got)
	}
}

// TestAckBeforeWork checks that a handler acks its envelope before it does
// the work: the ack arrives while the directory call still hangs.
func TestAckBeforeWork(t *testing.T) {
	h := newAppHarness(t, nil)
	r := h.submit(employeeID)
	if _, err := h.svc.Decide(context.Background(), r.ID, approver1ID, true); err != nil {
		t.Fatal(err)
	}
	release := h.dir.hold()
	defer release()
	id := h.click(employeeID, ActionReveal, r.ID)
	h.waitUntil("the reset has started", func() bool { return h.dir.waiting() == 1 })
	h.acked(id)
	if len(h.dir.resets()) != 0 {
		t.Fatal("the reset finished before the ack was checked")
	}
	release()
	h.waitStatus(r.ID, workflow.StatusCompleted)
}

func TestMalformedEventsAreAckedAndIgnored(t *testing.T) {
	h := newAppHarness(t, nil)
	r := h.submit(employeeID)
	ignored := map[string]socketmode.Event{}
	add := func(evt socketmode.Event) {
		if evt.Request != nil {
			ignored[evt.Request.EnvelopeID] = evt
		}
		h.dispatch(evt)
	}

	id := h.envelope()
	add(commandEvent(id, "", "", h.answers.url(id))) // no user
	id = h.envelope()
	noActions := clickEvent(id, approver1ID, h.answers.url(id))
	add(noActions)
	id = h.envelope()
	add(clickEvent(id, approver1ID, h.answers.url(id), &slack.BlockAction{ActionID: "explode", Value: r.ID}))
	id = h.envelope()
	add(clickEvent(id, "", h.answers.url(id), &slack.BlockAction{ActionID: ActionApprove, Value: r.ID})) // no user
	id = h.envelope()
	other := commandEvent(id, employeeID, "", h.answers.url(id))
	other.Data = slack.SlashCommand{Command: "/other-command", UserID: employeeID, ResponseURL: h.answers.url(id)}
	add(other)
	id = h.envelope()
	add(socketmode.Event{Type: socketmode.EventTypeEventsAPI,
		Data:    slackevents.EventsAPIEvent{Type: slackevents.CallbackEvent, InnerEvent: slackevents.EventsAPIInnerEvent{Type: "app_mention"}},
		Request: &socketmode.Request{Type: "events_api", EnvelopeID: id}})
	id = h.envelope()
	add(socketmode.Event{Type: socketmode.EventTypeSlashCommand, Data: "not a slash command",
		Request: &socketmode.Request{Type: "slash_commands", EnvelopeID: id}})
	id = h.envelope()
	add(socketmode.Event{Type: socketmode.EventTypeInteractive, Data: slack.SlashCommand{UserID: approver1ID},
		Request: &socketmode.Request{Type: "interactive", EnvelopeID: id}})
	id = h.envelope()
	add(socketmode.Event{Type: socketmode.EventTypeInteractive, Data: nil,
		Request: &socketmode.Request{Type: "interactive", EnvelopeID: id}})
	id = h.envelope()
	add(socketmode.Event{Type: socketmode.EventTypeInteractive,
		Data:    slack.InteractionCallback{Type: slack.InteractionTypeViewSubmission, User: slack.User{ID: approver1ID}},
		Request: &socketmode.Request{Type: "interactive", EnvelopeID: id}})
	// Without a Request there is nothing to ack, and nothing is done.
	add(socketmode.Event{Type: socketmode.EventTypeSlashCommand,
		Data: slack.SlashCommand{Command: DefaultCommand, UserID: employee2ID, ResponseURL: h.answers.url("no-request")}})
	add(socketmode.Event{Type: socketmode.EventTypeErrorBadMessage, Data: &socketmode.ErrorBadMessage{}})

	h.settle()
	for id, evt := range ignored {
		h.acked(id)
		if p := h.answers.posts(id); len(p) > 0 {
			t.Errorf("%s (%T) was answered %q", evt.Type, evt.Data, p[0].Text)
		}
	}
	if p := h.answers.posts("no-request"); len(p) > 0 {
		t.Errorf("a command without a Request was answered %q", p[0].Text)
	}
	if got := h.request(r.ID); got.Status != workflow.StatusPending || len(got.Events) != 1 {
		t.Errorf("malformed events changed the request: %s, %d events", got.Status, len(got.Events))
	}
	if n := h.store.Len(); n != 1 {
		t.Errorf("%d requests stored, want 1", n)
	}

	// The App keeps working.
	h.click(approver2ID, ActionApprove, r.ID)
	h.waitStatus(r.ID, workflow.StatusApproved)
}

// panickingClaimer panics on its first Claim, inside the handler of the
// first envelope, then claims like the store.
type panickingClaimer struct {
	once sync.Once
	*memstore.Store
}

func (p *panickingClaimer) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	p.once.Do(func() { panic("the store's client panicked") })
	return p.Store.Claim(ctx, key, ttl)
}

func TestPanicIsRecovered(t *testing.T) {
	h := newAppHarness(t, func(a *App) { a.Claims = &panickingClaimer{Store: memstore.New(seal.Key{})} })
	panicked := h.command(employeeID, "")
	if got := h.answer(panicked).Text; got != genericText {
		t.Errorf("a panic was answered %q, want %q", got, genericText)
	}
	h.acked(panicked)
	if got := h.answer(h.command(employeeID, "help")).Text; got != HelpMessage(DefaultCommand, "").Text {
		t.Errorf("after the panic, help answered %q", got)
	}
	h.answer(h.command(employeeID, ""))
	if _, err := h.store.Open(context.Background(), employeeID); err != nil {
		t.Errorf("after the panic, no request was made: %v", err)
	}
	h.settle()
	if !strings.Contains(h.logs.String(), "a handler panicked") || !strings.Contains(h.logs.String(), "envelope_id="+panicked) ||
		!strings.Contains(h.logs.String(), "the store's client panicked") {
		t.Error("the panic was not logged with its envelope")
	}
}

func TestRedeliveredEnvelopeTakesEffectOnce(t *testing.T) {
	h := newAppHarness(t, func(a *App) { a.Claims = memstore.New(seal.Key{}) })
	r := h.submit(employeeID)
	id := h.envelope()
	first := clickEvent(id, strangerID, h.answers.url(id), &slack.BlockAction{ActionID: ActionApprove, Value: r.ID})
	again := first
	again.Request = &socketmode.Request{Type: "interactive", EnvelopeID: id, RetryAttempt: 1, RetryReason: "timeout"}
	h.dispatch(first)
	h.dispatch(again)
	h.settle()
	if p := h.answers.posts(id); len(p) != 1 {
		t.Errorf("a redelivered click was answered %d times, want once", len(p))
	}
}

func TestHandlersCountsWhatDispatchStarts(t *testing.T) {
	a := &App{}
	act := func(ids ...string) []*slack.BlockAction {
		var out []*slack.BlockAction
		for _, id := range ids {
			out = append(out, &slack.BlockAction{ActionID: id, Value: "R"})
		}
		return out
	}
	view := clickEvent("e", approver1ID, "")
	cb := view.Data.(slack.InteractionCallback)
	cb.Type = slack.InteractionTypeViewSubmission
	cb.ActionCallback.BlockActions = act(ActionApprove)
	view.Data = cb
	for _, tc := range []struct {
		name string
		evt  socketmode.Event
		want int
	}{
		{"slash command", commandEvent("e", employeeID, "", ""), 1},
		{"approve", clickEvent("e", approver1ID, "", act(ActionApprove)...), 1},
		{"approve and deny", clickEvent("e", approver1ID, "", act(ActionApprove, ActionDeny)...), 2},
		{"all three", clickEvent("e", approver1ID, "", act(ActionApprove, ActionDeny, ActionReveal)...), 3},
		{"registered and unknown", clickEvent("e", approver1ID, "", act("explode", ActionReveal)...), 1},
		{"unknown", clickEvent("e", approver1ID, "", act("explode")...), 1},
		{"no actions", clickEvent("e", approver1ID, ""), 1},
		{"view submission", view, 1},
		{"wrong data", socketmode.Event{Type: socketmode.EventTypeInteractive, Data: "x"}, 1},
		{"connected", socketmode.Event{Type: socketmode.EventTypeConnected}, 1},
	} {
		if got := a.handlers(tc.evt); got != tc.want {
			t.Errorf("%s: handlers = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestWaitCountsEveryHandler dispatches a click that starts two handlers
// and checks that both answer and that Wait returns: had handlers counted
// fewer, a Done would panic; had it counted more, Wait would hang.
func TestWaitCountsEveryHandler(t *testing.T) {
	h := newAppHarness(t, nil)
	id := h.envelope()
	forged := "Rzzzzzzzzzzzzzzzzzzzzzzzz"
	h.dispatch(clickEvent(id, approver1ID, h.answers.url(id),
		&slack.BlockAction{ActionID: ActionApprove, Value: forged}, &slack.BlockAction{ActionID: ActionDeny, Value: forged}))
	h.waitUntil("both handlers answered", func() bool { return len(h.answers.posts(id)) == 2 })
	h.settle()
	waited := make(chan struct{})
	go func() {
		h.app.Wait()
		close(waited)
	}()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatal("App.Wait did not return after every handler finished")
	}
}

// TestEnvelopeThroughTheSocket sends a real slash_commands envelope
// through slacktest: slack-go parses it into the event the other tests
// build by hand, the App acks it and answers at its response_url.
func TestEnvelopeThroughTheSocket(t *testing.T) {
	h := newAppHarness(t, nil)
	id := h.srv.SlashCommand(employeeID, "help")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reply, err := h.srv.WaitReply(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if reply.Text != HelpMessage(DefaultCommand, "").Text || reply.ResponseType != slack.ResponseTypeEphemeral {
		t.Errorf("reply %q (%s), want the help, ephemeral", reply.Text, reply.ResponseType)
	}
	h.acked(id)
}

// responseRecorder is a response_url server: it records what the App
// posts to each URL it hands out.
type responseRecorder struct {
	srv   *httptest.Server
	mu    sync.Mutex
	byKey map[string][]webhookPost
}

type webhookPost struct {
	Text            string `json:"text"`
	ResponseType    string `json:"response_type"`
	ReplaceOriginal bool   `json:"replace_original"`
	DeleteOriginal  bool   `json:"delete_original"`
	Raw             []byte `json:"-"`
}

func newResponseRecorder(t *testing.T) *responseRecorder {
	rec := &responseRecorder{byKey: map[string][]webhookPost{}}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var p webhookPost
		if err == nil {
			err = json.Unmarshal(body, &p)
		}
		if err != nil || r.Method != http.MethodPost {
			http.Error(w, "bad post", http.StatusBadRequest)
			return
		}
		p.Raw = body
		rec.mu.Lock()
		defer rec.mu.Unlock()
		key := strings.TrimPrefix(r.URL.Path, "/")
		rec.byKey[key] = append(rec.byKey[key], p)
		w.Header().Set("Content-Type", "application/json") // as Slack answers
		fmt.Fprint(w, `{"ok":true}`)
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *responseRecorder) url(key string) string { return rec.srv.URL + "/" + key }

func (rec *responseRecorder) posts(key string) []webhookPost {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.byKey[key])
}

func (rec *responseRecorder) contains(s string) bool {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, ps := range rec.byKey {
		for _, p := range ps {
			if bytes.Contains(p.Raw, []byte(s)) {
				return true
			}
		}
	}
	return false
}

// syncBuffer is a bytes.Buffer safe for the loggers of several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// recordingDirectory records the passwords it is asked to set. hold makes
// the next calls wait until released.
type recordingDirectory struct {
	mu      sync.Mutex
	done    []directoryReset
	held    chan struct{}
	blocked int
}

type directoryReset struct{ user, password string }

func (d *recordingDirectory) ResetPassword(ctx context.Context, userName, password string) error {
	d.mu.Lock()
	held := d.held
	d.blocked++
	d.mu.Unlock()
	if held != nil {
		select {
		case <-held:
		case <-ctx.Done():
			return workflow.Wrap(workflow.CodeDirectoryUncertain, ctx.Err(), "waiting for the test")
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.blocked--
	d.done = append(d.done, directoryReset{userName, password})
	return nil
}

// hold makes ResetPassword wait until the returned func is first called.
func (d *recordingDirectory) hold() (release func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ch := make(chan struct{})
	d.held = ch
	return sync.OnceFunc(func() { close(ch) })
}

func (d *recordingDirectory) waiting() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.blocked
}

func (d *recordingDirectory) resets() []directoryReset {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.done)
}

// countingPasswords makes distinct passwords of the length asked for.
type countingPasswords struct{ n atomic.Int64 }

func (p *countingPasswords) New(length int, _ workflow.Account) (string, error) {
	s := fmt.Sprintf("Tmp-%d-Pw!", p.n.Add(1))
	return s + strings.Repeat("q", max(0, length-len(s))), nil
}

// localPartAccounts maps a person to the account named by their email's
// local part, and finds nothing to guard against.
type localPartAccounts struct{}

func (localPartAccounts) Find(_ context.Context, p workflow.Person) (workflow.Account, error) {
	name, _, ok := strings.Cut(p.Email, "@")
	if !ok || name == "" {
		return workflow.Account{}, workflow.Errorf(workflow.CodeNoAccount, "no account for %q", p.Email)
	}
	return workflow.Account{UserName: name, Email: p.Email, DisplayName: p.Name}, nil
}

func (localPartAccounts) Check(_ context.Context, a workflow.Account) (workflow.Account, error) {
	return a, nil
}

func (localPartAccounts) Manager(context.Context, workflow.Account) (workflow.Manager, bool, error) {
	return workflow.Manager{}, false, nil
}

func (localPartAccounts) ExpirePassword(context.Context, workflow.Account) error { return nil }

func (localPartAccounts) Approver(context.Context, workflow.Person) error { return nil }

// Lockout knows nothing (as without a directory); Unlock always works.
func (localPartAccounts) Lockout(context.Context, workflow.Account) (workflow.Lockout, error) {
	return workflow.Lockout{}, nil
}

func (localPartAccounts) Unlock(context.Context, workflow.Account) error { return nil }

// recordingNotifier is a workflow.Notifier that records the refusals.
type recordingNotifier struct {
	mu       sync.Mutex
	refusals []workflow.Refusal
}

func (n *recordingNotifier) Refused(_ context.Context, f workflow.Refusal) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.refusals = append(n.refusals, f)
	return nil
}
