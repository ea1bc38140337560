// Package slackapp is the Slack edge of the bot: Socket Mode handlers for the
// slash command and the buttons, the Block Kit messages, the notifier that
// keeps approvers, employee and audit channel informed, and the identity and
// approver lookups through the Slack Web API.
package slackapp

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/mail"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/example/resetbot/delivery"
	"github.com/example/resetbot/workflow"
)

// DefaultCommand is the slash command, as manifest.yaml creates it.
const DefaultCommand = "/reset-password"

// Claimer makes a redelivered envelope take effect once.
type Claimer interface {
	Claim(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// Flows are the workflow calls the App makes: one per subcommand and per
// button. *workflow.Service implements them; the App depends on nothing
// else of the domain, so that a test can hand it any implementation.
type Flows interface {
	Ask(ctx context.Context, a workflow.Ask) (*workflow.Request, error)
	SubmitWithReason(ctx context.Context, user, reason string) (*workflow.Request, error)
	Get(ctx context.Context, id string) (*workflow.Request, error)
	Status(ctx context.Context, user string) (*workflow.Request, error)
	Cancel(ctx context.Context, user string) (*workflow.Request, error)
	Decide(ctx context.Context, id, actor string, approve bool) (*workflow.Request, error)
	Deny(ctx context.Context, id, actor, reason string) (*workflow.Request, error)
	Reveal(ctx context.Context, id, actor string, display workflow.Display) (*workflow.Request, error)
	Report(ctx context.Context, id, actor string) (*workflow.Request, error)
}

var _ Flows = (*workflow.Service)(nil)

// Replies takes the replies of clicks: the response_url that may replace
// the clicked message, for the delivery lane that drew it
// (*delivery.Engine).
type Replies interface {
	Expect(l delivery.Lane, r delivery.Reply)
}

// Homes runs people's Home lanes.
type Homes interface {
	Expect(l delivery.Lane, r delivery.Reply)
	Wake(l delivery.Lane)
}

// App receives Socket Mode envelopes and turns them into workflow calls. Every
// handler acks at once and works afterwards under its own deadline.
type App struct {
	API     *slack.Client
	Socket  *socketmode.Client
	Flows   Flows
	Claims  Claimer      // nil: no redelivery check
	Replies Replies      // nil: clicked messages are updated by their lanes with chat.update
	Gate    *Gate        // for the password's Slack calls
	HTTP    *http.Client // for response_url posts
	Log     *slog.Logger
	Timeout time.Duration // per envelope, default 60s
	// OnConnect, when set, is told about each Socket Mode connection.
	OnConnect func()
	// Watch, when set, watches the Socket Mode connections (its Dialer is
	// the Socket client's), so that a reconnection's warning says why the
	// connection ended.
	Watch *ConnWatch
	// AskReason makes the command open a modal that asks the employee for
	// a reason, whose submission makes the request (REQUIRE_REASON).
	AskReason bool
	// Homes, when set, keeps people's Home tabs current
	// (*delivery.Engine): a person opening the tab runs their Home lane.
	Homes Homes

	hooks     testHooks // empty unless built with -tags resetbot_testhooks
	connected atomic.Bool
	inflight  sync.WaitGroup
	base      context.Context // parent of every handler's context; Stop cancels it
	stop      context.CancelFunc
	once      sync.Once
}

func (a *App) init() {
	a.once.Do(func() {
		a.base, a.stop = context.WithCancel(context.Background())
		if a.Timeout <= 0 {
			a.Timeout = 60 * time.Second
		}
	})
}

// Wait waits for every handler dispatched so far.
func (a *App) Wait() { a.inflight.Wait() }

// Stop ends the work of handlers still running (at shutdown, once the
// grace period is over); what they left undone is left to the leases.
func (a *App) Stop() {
	a.init()
	a.stop()
}

// Connected reports whether the Socket Mode connection is up.
func (a *App) Connected() bool { return a.connected.Load() }

// Run handles envelopes until ctx ends or the Socket Mode client fails for
// good (a refused app token), which it returns. Handlers still running go on
// (Wait waits for them, Stop ends them).
func (a *App) Run(ctx context.Context) error {
	a.init()
	h := socketmode.NewSocketmodeHandler(a.Socket)
	h.HandleSlashCommand(DefaultCommand, a.handle(a.onCommand))
	for _, b := range a.buttons() {
		h.HandleInteractionBlockAction(b.action, a.handle(a.onClick(b)))
	}
	h.HandleViewSubmission(CallbackReason, a.submitted(checkReason, a.onReason))
	h.HandleViewSubmission(CallbackDeny, a.submitted(nil, a.onDeny))
	h.HandleEvents(slackevents.AppHomeOpened, a.handle(a.onHomeOpened))
	h.HandleDefault(a.counted(a.onOther))
	// The handler runs every handler in its own goroutine, so connection
	// events could be seen out of order; track the connection state here,
	// in order, and count the handlers an event will start before
	// dispatching it, so that Wait cannot miss one.
	dctx, stopDispatch := context.WithCancel(ctx)
	dispatched := make(chan struct{})
	go func() {
		defer close(dispatched)
		for {
			select {
			case evt, ok := <-a.Socket.Events:
				if !ok || dctx.Err() != nil {
					return // nothing is dispatched once Run is over
				}
				a.track(evt)
				a.inflight.Add(a.handlers(evt))
				h.DispatchEvent(evt)
			case <-dctx.Done():
				return
			}
		}
	}()
	err := a.Socket.RunContext(ctx)
	a.connected.Store(false)
	stopDispatch()
	<-dispatched // so that Wait, after Run, cannot miss a handler
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// handlers returns how many handlers DispatchEvent starts for evt: one per
// registered button among a click's actions, else one (the command's
// handler, or the default one).
func (a *App) handlers(evt socketmode.Event) int {
	cb, ok := evt.Data.(slack.InteractionCallback)
	if evt.Type != socketmode.EventTypeInteractive || !ok || cb.Type != slack.InteractionTypeBlockActions {
		return 1
	}
	n := 0
	for _, act := range cb.ActionCallback.BlockActions {
		if slices.ContainsFunc(a.buttons(), func(b clickable) bool { return b.action == act.ActionID }) {
			n++
		}
	}
	return max(n, 1)
}

// counted marks a handler done for Wait, and recovers a panic in it: the
// envelope was acked first; the person gets a short generic answer.
func (a *App) counted(f socketmode.SocketmodeHandlerFunc) socketmode.SocketmodeHandlerFunc {
	return func(evt *socketmode.Event, c *socketmode.Client) {
		defer a.inflight.Done()
		defer func() {
			if p := recover(); p != nil {
				a.recovered(evt, p)
			}
		}()
		f(evt, c)
	}
}

// recovered logs a handler's panic with the envelope and request it was
// about, and tells the person that nothing was changed.
func (a *App) recovered(evt *socketmode.Event, p any) {
	log := a.Log.With("panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	var responseURL, channel, user string
	switch d := evt.Data.(type) {
	case slack.SlashCommand:
		responseURL, channel, user = d.ResponseURL, d.ChannelID, d.UserID
	case slack.InteractionCallback:
		responseURL, channel, user = d.ResponseURL, d.Channel.ID, d.User.ID
		if len(d.ActionCallback.BlockActions) > 0 {
			log = log.With("request_id", d.ActionCallback.BlockActions[0].Value)
		}
	}
	if evt.Request != nil {
		log = log.With("envelope_id", evt.Request.EnvelopeID)
	}
	log.Error("a handler panicked; the bot serves on", "user", user)
	if user != "" {
		a.reply(a.base, log, responseURL, channel, user, TextMessage(ErrorText(workflow.Errorf(workflow.CodeInternal, "panic"), nil)))
	}
}

// handle wraps an envelope handler: ack at once, skip redeliveries, then
// work under a deadline that survives shutdown so that a started change ends
// cleanly.
func (a *App) handle(work func(ctx context.Context, log *slog.Logger, evt *socketmode.Event)) socketmode.SocketmodeHandlerFunc {
	return a.counted(func(evt *socketmode.Event, c *socketmode.Client) {
		if evt.Request == nil {
			return
		}
		a.ack(c, evt.Request)
		a.process(evt, work)
	})
}

// process runs work for an acked envelope, once however often Slack
// delivers it, under a deadline that survives shutdown so that a started
// change ends cleanly.
func (a *App) process(evt *socketmode.Event, work func(ctx context.Context, log *slog.Logger, evt *socketmode.Event)) {
	ctx, cancel := context.WithTimeout(a.base, a.Timeout)
	defer cancel()
	log := a.Log.With("envelope_id", evt.Request.EnvelopeID, "envelope_type", evt.Request.Type)
	log.Debug("envelope received", "retry_attempt", evt.Request.RetryAttempt)
	if a.Claims != nil {
		first, err := a.Claims.Claim(ctx, "envelope:"+evt.Request.EnvelopeID, time.Hour)
		switch {
		case err != nil:
			log.Warn("could not check for redelivery; handling the envelope anyway", "error", err)
		case !first:
			log.Info("ignoring a redelivered envelope")
			return
		}
	}
	work(ctx, log, evt)
}

// ack acknowledges an envelope, giving up after a few seconds (the
// connection may be closing during shutdown).
func (a *App) ack(c *socketmode.Client, req *socketmode.Request) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.AckCtx(ctx, req.EnvelopeID, nil); err != nil {
		a.Log.Warn("could not ack envelope", "envelope_id", req.EnvelopeID, "error", err)
	}
}

// track follows the Socket Mode connection state, in event order.
func (a *App) track(evt socketmode.Event) {
	switch evt.Type {
	case socketmode.EventTypeConnected:
		a.connected.Store(true)
		a.Log.Info("connected to Slack")
		if a.OnConnect != nil {
			a.OnConnect()
		}
	case socketmode.EventTypeConnecting:
		// slack-go reconnects by itself after Slack's disconnect message,
		// missing pings or a failed read, and says only that it connects
		// again; the watch on the connection knows why it ended.
		if a.connected.Swap(false) {
			cause := cmp.Or(a.Watch.Cause(), "the reason is unknown")
			a.Log.Warn("Slack connection lost ("+cause+"); reconnecting", "event", evt.Type, "cause", cause)
		}
	case socketmode.EventTypeConnectionError:
		a.connected.Store(false)
		cause, attrs := disconnectCause(evt)
		a.Log.Warn("could not connect to Slack ("+cause+"); trying again", append(attrs, "event", evt.Type)...)
	}
}

// disconnectCause says why a connection attempt failed, with the attempt
// and the wait before the next one.
func disconnectCause(evt socketmode.Event) (string, []any) {
	d, ok := evt.Data.(*slack.ConnectionErrorEvent)
	if !ok || d.ErrorObj == nil {
		return "the reason is unknown", nil
	}
	cause := d.Error()
	if d.Attempt > 0 {
		cause += fmt.Sprintf(", attempt %d, next in %s", d.Attempt, d.Backoff.Round(time.Millisecond))
	}
	return cause, []any{"error", d.Error(), "attempt", d.Attempt, "backoff", d.Backoff.String()}
}

// malformed reports whether err, from reading Socket Mode, is a message
// that could not be decoded (the connection goes on) rather than a broken
// connection.
func malformed(err error) bool {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	return errors.As(err, &se) || errors.As(err, &te)
}

// onOther acks anything else.
func (a *App) onOther(evt *socketmode.Event, c *socketmode.Client) {
	switch evt.Type {
	case socketmode.EventTypeErrorBadMessage:
		a.Log.Warn("ignoring a malformed message from Slack", "event", evt.Type)
	case socketmode.EventTypeIncomingError:
		if e, ok := evt.Data.(*slack.IncomingEventError); ok && malformed(e.ErrorObj) {
			a.Log.Warn("ignoring a malformed message from Slack", "event", evt.Type, "error", e.Error())
		}
	case socketmode.EventTypeInvalidAuth:
		a.Log.Error("Slack refused the app token")
	}
	if evt.Request != nil && evt.Request.EnvelopeID != "" {
		a.ack(c, evt.Request)
		a.Log.Info("ignoring an envelope this bot does not handle", "envelope_id", evt.Request.EnvelopeID, "envelope_type", evt.Request.Type)
	}
}

func (a *App) onCommand(ctx context.Context, log *slog.Logger, evt *socketmode.Event) {
	cmd, ok := evt.Data.(slack.SlashCommand)
	if !ok || cmd.UserID == "" {
		log.Warn("ignoring a malformed slash command")
		return
	}
	log = log.With("user", cmd.UserID)
	if msg, ok := a.command(ctx, log, cmd); ok {
		a.reply(ctx, log, cmd.ResponseURL, cmd.ChannelID, cmd.UserID, msg)
	}
}

// command runs one /reset-password and returns the answer; ok is false
// when a modal answered it (REQUIRE_REASON: its submission is answered).
func (a *App) command(ctx context.Context, log *slog.Logger, cmd slack.SlashCommand) (msg Msg, ok bool) {
	text := strings.TrimSpace(cmd.Text)
	a.commandHook(text)
	line, problem := parseCommand(text)
	if problem != "" {
		return HelpMessage(DefaultCommand, problem), true
	}
	if line.own() && line.action == workflow.ActionReset && a.AskReason {
		return a.askReason(ctx, log, cmd)
	}
	subcommands := map[string]struct {
		run    func(context.Context, string) (*workflow.Request, error)
		answer func(*workflow.Request) Msg
	}{
		"status": {a.Flows.Status, StatusReply},
		"cancel": {a.Flows.Cancel, CancelReply},
	}
	if line.sub == "help" {
		return HelpMessage(DefaultCommand, ""), true
	}
	if sub, ok := subcommands[line.sub]; ok {
		r, err := sub.run(ctx, cmd.UserID)
		if err != nil {
			a.logError(log.With("subcommand", line.sub), "command refused", err)
			return TextMessage(ErrorText(err, r)), true
		}
		return sub.answer(r), true
	}
	ask := workflow.Ask{By: cmd.UserID, Action: line.action, For: line.user, ForEmail: line.email}
	r, err := a.Flows.Ask(ctx, ask)
	if err != nil {
		a.logError(log.With("action", line.action, "for", cmp.Or(line.user, line.email)), "command refused", err)
		onBehalf := (line.user != "" && line.user != cmd.UserID) || line.email != ""
		if !onBehalf || workflow.ErrorCode(err) == workflow.CodeNotHelpdesk {
			return TextMessage(ActionErrorText(err, line.action, r)), true
		}
		who := code(line.email)
		if line.user != "" {
			who = user(line.user)
		}
		return TextMessage(OnBehalfErrorText(err, line.action, who, r)), true
	}
	return AskReply(r, cmd.UserID), true
}

// commandLine is what the text of /reset-password asks for.
type commandLine struct {
	sub    string          // "status", "cancel", "help"; "" for a request
	action workflow.Action // of a request
	user   string          // the employee named by a mention (chat user ID)
	email  string          // the employee named by "for <email>"
}

// own reports whether the line asks for a request for the caller's own
// account (no subcommand, nobody named).
func (l commandLine) own() bool { return l.sub == "" && l.user == "" && l.email == "" }

// mentionRe is a user mention as Slack escapes it in command text
// (should_escape): <@U123> or <@U123|name>.
var mentionRe = regexp.MustCompile(`^<@([UW][A-Z0-9]+)(?:\|[^<>]*)?>$`)

// parseCommand reads the command's text: "", "unlock", "status",
// "cancel", "help", or, on someone's behalf, a mention or "for <email>"
// with "unlock" before or after it. problem, when not "", says what was
// wrong, for the help.
func parseCommand(text string) (commandLine, string) {
	words := strings.Fields(text)
	var line commandLine
	if len(words) == 1 {
		switch w := strings.ToLower(words[0]); w {
		case "status", "cancel", "help":
			line.sub = w
			return line, ""
		}
	}
	line.action = workflow.ActionReset
	if i := slices.IndexFunc(words, func(w string) bool { return strings.EqualFold(w, "unlock") }); i >= 0 {
		line.action = workflow.ActionUnlock
		words = slices.Delete(words, i, i+1)
	}
	switch {
	case len(words) == 0:
		return line, ""
	case len(words) == 1 && mentionRe.MatchString(words[0]):
		line.user = mentionRe.FindStringSubmatch(words[0])[1]
		return line, ""
	case len(words) == 2 && strings.EqualFold(words[0], "for"):
		if email, ok := commandEmail(words[1]); ok {
			line.email = email
			return line, ""
		}
		return line, fmt.Sprintf("%s is not an email address.", code(shorten(words[1])))
	case len(words) == 1 && strings.HasPrefix(words[0], "@"):
		return line, fmt.Sprintf("Slack did not tell me who %s is. Pick the person from the list Slack offers as you type their name, or use `for their@email`.", code(shorten(words[0])))
	}
	return line, fmt.Sprintf("I don't know the option %s.", code(shorten(text)))
}

// commandEmail reads an email address as typed, or as Slack may link it
// (<mailto:a@b.c|a@b.c>).
func commandEmail(w string) (string, bool) {
	if inner, ok := strings.CutPrefix(w, "<mailto:"); ok && strings.HasSuffix(inner, ">") {
		w, _, _ = strings.Cut(strings.TrimSuffix(inner, ">"), "|")
	}
	addr, err := mail.ParseAddress(w)
	if err != nil || addr.Address != w || addr.Name != "" {
		return "", false
	}
	return w, true
}

// shorten cuts what the user typed to 40 characters, for an answer.
func shorten(s string) string {
	if r := []rune(s); len(r) > 40 {
		return string(r[:40]) + "…"
	}
	return s
}

// clickable is a Block Kit button the App handles: its action_id and what a
// click on it does. The click's work returns the request as the refusal
// found it (nil: nobody is told more than the refusal) and the refusal.
type clickable struct {
	action string
	work   func(ctx context.Context, cb slack.InteractionCallback, id string) (*workflow.Request, error)
}

// buttons are every button the App handles, the one table Run registers
// and counts handlers from. Who clicked comes from the payload's user;
// the button's value is only the request ID. The click is passed on as
// values: its reply (the response_url that replaces the clicked message)
// to the lane that drew the message, before the change that lane will
// draw; the password's way to the clicker to Reveal.
func (a *App) buttons() []clickable {
	decide := func(approve bool) func(context.Context, slack.InteractionCallback, string) (*workflow.Request, error) {
		return func(ctx context.Context, cb slack.InteractionCallback, id string) (*workflow.Request, error) {
			a.expect(delivery.Queue(cb.User.ID), cb, id)
			return a.Flows.Decide(ctx, id, cb.User.ID, approve)
		}
	}
	return []clickable{
		{ActionApprove, decide(true)},
		{ActionDeny, a.denyClick},
		{ActionReveal, func(ctx context.Context, cb slack.InteractionCallback, id string) (*workflow.Request, error) {
			if workflow.ValidID(id) {
				a.expect(delivery.People(id), cb, id)
			}
			return a.Flows.Reveal(ctx, id, cb.User.ID, PasswordReply{API: a.API, Gate: a.Gate, Log: a.Log,
				User: cb.User.ID, Channel: clickChannel(cb), Message: clickedMessage(cb), URL: cb.ResponseURL})
		}},
		{ActionReport, func(ctx context.Context, cb slack.InteractionCallback, id string) (*workflow.Request, error) {
			if workflow.ValidID(id) {
				a.expect(delivery.People(id), cb, id) // the DM then says what the report did
			}
			return a.Flows.Report(ctx, id, cb.User.ID)
		}},
	}
}

// expect hands the reply of click cb on request id to lane l.
func (a *App) expect(l delivery.Lane, cb slack.InteractionCallback, id string) {
	if a.Replies == nil {
		return
	}
	if r, ok := clickReply(cb, time.Now()); ok {
		r.Request = id
		a.Replies.Expect(l, r)
	}
}

// clickChannel is the channel a click came from.
func clickChannel(cb slack.InteractionCallback) string {
	if cb.Channel.ID != "" {
		return cb.Channel.ID
	}
	return cb.Container.ChannelID
}

// onClick handles a click on button b: a refusal is answered privately
// to whoever clicked.
func (a *App) onClick(b clickable) func(context.Context, *slog.Logger, *socketmode.Event) {
	return func(ctx context.Context, log *slog.Logger, evt *socketmode.Event) {
		cb, id, ok := blockAction(evt, b.action)
		if !ok {
			log.Warn("ignoring a malformed button click")
			return
		}
		log = log.With("user", cb.User.ID, "request_id", id, "action", b.action)
		if r, err := b.work(ctx, cb, id); err != nil {
			a.logError(log, b.action+" refused", err)
			a.reply(ctx, log, cb.ResponseURL, cb.Channel.ID, cb.User.ID, TextMessage(ErrorText(err, r)))
		}
	}
}

// blockAction extracts the click and the request ID from a block action.
// actionID is the button the handler serves: the value read is that
// button's, whatever else the payload carries.
func blockAction(evt *socketmode.Event, actionID string) (slack.InteractionCallback, string, bool) {
	cb, ok := evt.Data.(slack.InteractionCallback)
	if !ok || cb.User.ID == "" {
		return cb, "", false
	}
	for _, act := range cb.ActionCallback.BlockActions {
		if act.ActionID == actionID {
			return cb, strings.TrimSpace(act.Value), true
		}
	}
	return cb, "", false
}

// replyTimeout bounds an answer to the user. The answer gets its own time:
// a command whose work used up the handler's deadline (Slack holding its
// lookups back) still tells the user to try again.
const replyTimeout = 10 * time.Second

// reply answers the user privately: through the response URL when Slack gave
// one, else as an ephemeral message in the channel.
func (a *App) reply(ctx context.Context, log *slog.Logger, responseURL, channel, user string, msg Msg) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), replyTimeout)
	defer cancel()
	var err error
	if responseURL == "" && channel == "" {
		// A click in the app's Home: no response URL, no channel. The
		// answer goes to the DM with the bot.
		err = a.Gate.Do(ctx, "chat.postMessage:"+user, PriorityNow, func() error {
			_, _, err := a.API.PostMessageContext(ctx, user, msg.Options()...)
			return err
		})
	} else if responseURL != "" {
		client := a.HTTP
		if client == nil {
			client = http.DefaultClient
		}
		err = slack.PostWebhookCustomHTTPContext(ctx, responseURL, client, &slack.WebhookMessage{
			Text: msg.Text, Blocks: &slack.Blocks{BlockSet: msg.Blocks}, ResponseType: slack.ResponseTypeEphemeral,
		})
	} else {
		_, err = a.API.PostEphemeralContext(ctx, channel, user, msg.Options()...)
	}
	if err != nil {
		log.Warn("could not answer the user", "error", err)
	}
}

// logError logs err at a level that fits its cause: users' mistakes are
// info, outages warn, bugs error.
func (a *App) logError(log *slog.Logger, msg string, err error) {
	switch workflow.ErrorCode(err) {
	case workflow.CodeInternal:
		log.Error(msg, "code", workflow.ErrorCode(err), "error", err)
	case workflow.CodeUnavailable, workflow.CodeConflict:
		log.Warn(msg, "code", workflow.ErrorCode(err), "error", err)
	default:
		log.Info(msg, "code", workflow.ErrorCode(err), "error", err)
	}
}

// RequiredScopes are the bot token scopes the bot uses; manifest.yaml asks
// for exactly these.
var RequiredScopes = []string{"commands", "chat:write", "im:write", "users:read", "users:read.email", "usergroups:read", "channels:read", "groups:read"}
