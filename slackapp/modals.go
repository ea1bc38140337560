package slackapp

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/example/resetbot/delivery"
	"github.com/example/resetbot/workflow"
)

// The modals: the employee's reason (REQUIRE_REASON) and the approver's
// optional reason for a denial. A modal opens on the trigger_id of the
// command or click, which works once within 3 seconds of it; the
// submission is checked before it is acked (what needs fixing keeps the
// modal open with a message under the input), then acked, which closes
// it, and then acted on like a click.

// viewOpenTimeout bounds views.open: the trigger lasts 3 seconds.
const viewOpenTimeout = 3 * time.Second

// openView opens modal v on trigger.
func (a *App) openView(ctx context.Context, trigger string, v slack.ModalViewRequest) error {
	if trigger == "" {
		return workflow.Errorf(workflow.CodeInternal, "no trigger_id to open the %s modal with", v.CallbackID)
	}
	ctx, cancel := context.WithTimeout(ctx, viewOpenTimeout)
	defer cancel()
	err := a.Gate.Do(ctx, "views.open", PriorityNow, func() error {
		_, err := a.API.OpenViewContext(ctx, trigger, v)
		return err
	})
	if err != nil {
		return workflow.Wrap(workflow.CodeInternal, err, "views.open "+v.CallbackID)
	}
	return nil
}

// askReason answers the command cmd with the reason modal; only when it
// cannot be opened is there something to say at once.
func (a *App) askReason(ctx context.Context, log *slog.Logger, cmd slack.SlashCommand) (Msg, bool) {
	meta := modalMeta{URL: cmd.ResponseURL, Channel: cmd.ChannelID}.encode()
	if err := a.openView(ctx, cmd.TriggerID, ReasonModal(meta)); err != nil {
		a.logError(log, "could not ask for a reason", err)
		return TextMessage(ErrorText(err, nil)), true
	}
	return Msg{}, false
}

// denyClick is a click on Deny: it opens the deny modal, whose
// submission denies. A click the state machine would refuse anyway (not
// an approver, already decided, expired, the requester) is answered at
// once, without a modal; nothing changes either way until the modal is
// submitted.
func (a *App) denyClick(ctx context.Context, cb slack.InteractionCallback, id string) (*workflow.Request, error) {
	r, err := a.Flows.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	check := *r
	check.Events = slices.Clone(r.Events)
	if err := check.Decide(cb.User.ID, false, time.Now(), 0); err != nil {
		if !r.IsApprover(cb.User.ID) {
			r = nil // nothing about the request for whoever may not decide it
		}
		return r, err
	}
	meta := modalMeta{URL: cb.ResponseURL, Channel: clickChannel(cb), ID: id, Message: clickedMessage(cb)}
	return nil, a.openView(ctx, cb.TriggerID, DenyModal(r, meta.encode()))
}

// submitted wraps a view_submission handler: check (nil: none) runs
// before the ack and returns messages for the inputs to fix, which keep
// the modal open; otherwise the ack closes the modal and work runs, once
// per envelope, as a click's does.
func (a *App) submitted(check func(slack.InteractionCallback) map[string]string,
	work func(context.Context, *slog.Logger, slack.InteractionCallback)) socketmode.SocketmodeHandlerFunc {
	return a.counted(func(evt *socketmode.Event, c *socketmode.Client) {
		if evt.Request == nil {
			return
		}
		cb, ok := evt.Data.(slack.InteractionCallback)
		if !ok || cb.User.ID == "" {
			a.ack(c, evt.Request)
			a.Log.Warn("ignoring a malformed view submission", "envelope_id", evt.Request.EnvelopeID)
			return
		}
		if check != nil {
			if problems := check(cb); len(problems) > 0 {
				a.ackWith(c, evt.Request, slack.NewErrorsViewSubmissionResponse(problems))
				return
			}
		}
		a.ack(c, evt.Request)
		a.process(evt, func(ctx context.Context, log *slog.Logger, _ *socketmode.Event) {
			work(ctx, log.With("user", cb.User.ID, "view", cb.View.CallbackID), cb)
		})
	})
}

// ackWith acknowledges an envelope with a payload (a view submission's
// response_action).
func (a *App) ackWith(c *socketmode.Client, req *socketmode.Request, payload any) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.AckCtx(ctx, req.EnvelopeID, payload); err != nil {
		a.Log.Warn("could not ack envelope", "envelope_id", req.EnvelopeID, "error", err)
	}
}

// submittedReason is the reason typed in a modal.
func submittedReason(cb slack.InteractionCallback) string {
	if cb.View.State == nil {
		return ""
	}
	return cb.View.State.Values[inputReason][actionReason].Value
}

// checkReason keeps the reason modal open while its reason is empty
// once cleaned (spaces, invisible characters).
func checkReason(cb slack.InteractionCallback) map[string]string {
	if workflow.CleanReason(submittedReason(cb)) == "" {
		return map[string]string{inputReason: reasonNeeded}
	}
	return nil
}

// onReason makes the request of the reason modal's submission and
// answers where the command was typed.
func (a *App) onReason(ctx context.Context, log *slog.Logger, cb slack.InteractionCallback) {
	meta := readMeta(cb.View.PrivateMetadata)
	r, err := a.Flows.SubmitWithReason(ctx, cb.User.ID, submittedReason(cb))
	msg := Msg{}
	if err != nil {
		a.logError(log, "request refused", err)
		msg = TextMessage(ErrorText(err, r))
	} else {
		msg = Receipt(r)
	}
	a.reply(ctx, log, meta.URL, meta.Channel, cb.User.ID, msg)
}

// onDeny denies the request of the deny modal's submission with its
// reason. The clicked message is then redrawn through the click's
// response_url; a refusal is answered to the approver.
func (a *App) onDeny(ctx context.Context, log *slog.Logger, cb slack.InteractionCallback) {
	meta := readMeta(cb.View.PrivateMetadata)
	log = log.With("request_id", meta.ID)
	if a.Replies != nil && meta.Message != "" && meta.URL != "" {
		a.Replies.Expect(delivery.Queue(cb.User.ID), delivery.Reply{Message: meta.Message, URL: meta.URL, Expires: time.Now().Add(replyUntil), Request: meta.ID})
	}
	r, err := a.Flows.Deny(ctx, meta.ID, cb.User.ID, submittedReason(cb))
	if err != nil {
		a.logError(log, "deny refused", err)
		a.reply(ctx, log, meta.URL, meta.Channel, cb.User.ID, TextMessage(ErrorText(err, r)))
	}
}
