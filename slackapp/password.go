package slackapp

import (
	"context"
	"log/slog"
	"strings"

	"github.com/slack-go/slack"

	"github.com/example/resetbot/workflow"
)

// PasswordReply shows a new password to the employee who clicked Reveal
// (workflow.Display; for an employee with no Slack account, the agent who
// asked for it: Request.Recipient), and to nobody else: as the ephemeral answer to
// their click (its response_url: response_type ephemeral, never
// replace_original, never in_channel), which spends none of the
// workspace's chat.postEphemeral budget; and when that fails, as an
// ephemeral message in their DM with the bot (chat.postEphemeral). Either
// way it is visible to them only and never stored. The App makes one per
// click.
type PasswordReply struct {
	API     *slack.Client
	Gate    *Gate
	Log     *slog.Logger
	User    string // who clicked
	Channel string // where the click came from
	Message string // the clicked message, "channel/ts" ("" when unknown)
	URL     string // the click's response_url ("" when none)
}

var _ workflow.Display = PasswordReply{}

// ShowPassword implements workflow.Display.
func (p PasswordReply) ShowPassword(ctx context.Context, r *workflow.Request, d workflow.Delivery) error {
	to := r.Recipient()
	if p.User != to {
		// Unreachable: only the recipient can begin a reset.
		return workflow.Errorf(workflow.CodeDeliveryFailed, "the click on Reveal was not the recipient's")
	}
	msg := PasswordMessage(r, d)
	if p.URL != "" {
		err := p.answer(ctx, msg)
		if err == nil {
			return nil
		}
		// The error is Slack's or the network's, never the message.
		p.log().Warn("could not show the password through the click's response_url; posting it with chat.postEphemeral", "request_id", r.ID, "error", err)
	}
	ch := p.Channel
	if !strings.HasPrefix(ch, "D") {
		var err error
		if ch, err = p.openDM(ctx, to); err != nil {
			return err
		}
	}
	err := p.Gate.Do(ctx, "chat.postEphemeral", PriorityNext, func() error {
		_, err := p.API.PostEphemeralContext(ctx, ch, to, msg.Options()...)
		return err
	})
	if err != nil {
		return workflow.Wrap(workflow.CodeDeliveryFailed, err, "chat.postEphemeral to "+ch)
	}
	return nil
}

// answer posts msg as the ephemeral answer to the click. slack-go checks
// the body: Slack's {"ok":false} is an error too, not only a non-2xx.
func (p PasswordReply) answer(ctx context.Context, msg Msg) error {
	key := "response_url:" + p.Message
	if !OwnKey(key) {
		key = "response_url:" + p.Channel + "/0.0"
	}
	return p.Gate.Do(ctx, key, PriorityNow, func() error {
		_, _, err := p.API.PostMessageContext(ctx, p.Channel, append(msg.Options(),
			slack.MsgOptionResponseURL(p.URL, slack.ResponseTypeEphemeral))...)
		return err
	})
}

func (p PasswordReply) log() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}

// openDM opens the DM with user; only needed when the click did not come
// from it.
func (p PasswordReply) openDM(ctx context.Context, user string) (string, error) {
	var ch *slack.Channel
	err := p.Gate.Do(ctx, "conversations.open", PriorityNext, func() error {
		var err error
		ch, _, _, err = p.API.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{user}})
		return err
	})
	if err != nil {
		return "", workflow.Wrap(workflow.CodeDeliveryFailed, err, "conversations.open with "+user)
	}
	return ch.ID, nil
}
