package slackapp

import (
	"context"
	"net/http"
	"strings"

	"github.com/slack-go/slack"

	"github.com/example/resetbot/workflow"
)

// PasswordReply shows a new password to the employee who clicked Reveal
// (workflow.Display), and to nobody else: an ephemeral message in their DM
// with the bot (chat.postEphemeral), visible to them only and never
// stored. The App makes one per click.
type PasswordReply struct {
	API     *slack.Client
	HTTP    *http.Client // for response_url posts; nil: http.DefaultClient
	Gate    *Gate
	User    string // who clicked
	Channel string // where the click came from
	URL     string // the click's response_url
}

var _ workflow.Display = PasswordReply{}

// ShowPassword implements workflow.Display.
func (p PasswordReply) ShowPassword(ctx context.Context, r *workflow.Request, d workflow.Delivery) error {
	if p.User != r.Requester {
		// Unreachable: only the requester can begin a reset.
		return workflow.Errorf(workflow.CodeDeliveryFailed, "the click on Reveal was not the requester's")
	}
	ch := p.Channel
	if !strings.HasPrefix(ch, "D") {
		var err error
		if ch, err = p.openDM(ctx, r.Requester); err != nil {
			return err
		}
	}
	err := p.Gate.Do(ctx, "chat.postEphemeral", PriorityNext, func() error {
		_, err := p.API.PostEphemeralContext(ctx, ch, r.Requester, PasswordMessage(r, d).Options()...)
		return err
	})
	if err != nil {
		return workflow.Wrap(workflow.CodeDeliveryFailed, err, "chat.postEphemeral to "+ch)
	}
	return nil
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
