package slackapp

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/slack-go/slack"

	"github.com/example/resetbot/internal/slacktest"
	"github.com/example/resetbot/workflow"
)

// The password goes as the ephemeral answer to the employee's own Reveal
// click (response_type ephemeral, replace_original false); when the
// response_url fails (HTTP 404, or Slack's ok:false), as chat.postEphemeral
// in the employee's DM; never anywhere else, never in the log.
func TestPasswordReplyAndItsFallback(t *testing.T) {
	const password = "Xy7#kP2!mQ9-vR4=tW8a"
	for _, tc := range []struct {
		name     string
		fail     func(*slacktest.Server)
		fallback bool
	}{
		{"response_url", func(*slacktest.Server) {}, false},
		{"expired response_url", func(s *slacktest.Server) { s.FailResponses(http.StatusNotFound, "expired_url", 1) }, true},
		{"response_url answering ok:false", func(s *slacktest.Server) { s.FailResponses(http.StatusOK, "invalid_blocks", 1) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := slacktest.New()
			t.Cleanup(srv.Close)
			addPeople(srv)
			var logs syncBuffer
			r := sample(workflow.StatusResetting)
			r.Requester = employeeID
			env := srv.Click(slacktest.Click{User: employeeID, ActionID: ActionReveal, Value: r.ID, MessageTS: "1700000000.000001"})
			tc.fail(srv)
			p := PasswordReply{API: slack.New(slacktest.BotToken, slack.OptionAPIURL(srv.APIURL())), Gate: NewGate(),
				Log: slog.New(slog.NewTextHandler(&logs, nil)), User: employeeID, Channel: slacktest.DMChannel(employeeID),
				Message: slacktest.DMChannel(employeeID) + "/1700000000.000001", URL: srv.ResponseURL(env)}
			if err := p.ShowPassword(context.Background(), r, workflow.Delivery{Password: password}); err != nil {
				t.Fatal(err)
			}
			posts, eph := srv.ResponsePosts(), srv.Ephemerals()
			if tc.fallback {
				if len(posts) != 0 || len(eph) != 1 || eph[0].User != employeeID || eph[0].Channel != slacktest.DMChannel(employeeID) ||
					!strings.Contains(string(eph[0].Blocks), password) {
					t.Errorf("fallback: response posts %+v, ephemerals %+v; want the password in one chat.postEphemeral to the employee", posts, eph)
				}
			} else {
				if len(eph) != 0 || len(posts) != 1 || posts[0].User != employeeID || posts[0].ResponseType != "ephemeral" ||
					posts[0].ReplaceOriginal || posts[0].DeleteOriginal || !bytes.Contains(posts[0].Raw, []byte(`"replace_original":false`)) ||
					!strings.Contains(string(posts[0].Blocks), password) {
					t.Errorf("response posts %+v, ephemerals %+v; want the password as one ephemeral answer", posts, eph)
				}
			}
			if strings.Contains(logs.String(), password) {
				t.Errorf("the password is in the log: %s", logs.String())
			}
			if msgs := srv.Changes(0); len(msgs) != 1 || !msgs[0].Message.Ephemeral {
				t.Errorf("changes %+v: want one ephemeral message, nothing persistent", msgs)
			}
		})
	}
	// A click that is not the requester's never gets a password.
	r := sample(workflow.StatusResetting)
	err := PasswordReply{User: strangerID}.ShowPassword(context.Background(), r, workflow.Delivery{Password: password})
	if workflow.ErrorCode(err) != workflow.CodeDeliveryFailed {
		t.Errorf("someone else's click: %v, want code %s", err, workflow.CodeDeliveryFailed)
	}
}
