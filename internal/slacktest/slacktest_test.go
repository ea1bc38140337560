package slacktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

func newServer(t *testing.T, opts ...Option) *Server {
	t.Helper()
	s := New(opts...)
	t.Cleanup(s.Close)
	s.AddUser(User{ID: "U1", Name: "alice", RealName: "Alice A", Email: "alice@example.com"})
	s.AddUser(User{ID: "U2", Name: "bob", RealName: "Bob B", Email: "bob@example.com", IsRestricted: true})
	return s
}

func botClient(s *Server) *slack.Client {
	return slack.New(BotToken, slack.OptionAPIURL(s.APIURL()))
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// startSocket runs a real socketmode client against s until the test ends.
func startSocket(t *testing.T, s *Server, opts ...socketmode.Option) *socketmode.Client {
	t.Helper()
	api := slack.New(BotToken, slack.OptionAppLevelToken(AppToken), slack.OptionAPIURL(s.APIURL()))
	sm := socketmode.New(api, opts...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sm.RunContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("socketmode client did not stop")
		}
	})
	return sm
}

// nextEvent returns the next event of type typ, skipping others.
func nextEvent(t *testing.T, sm *socketmode.Client, typ socketmode.EventType) socketmode.Event {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case evt := <-sm.Events:
			if evt.Type == typ {
				return evt
			}
		case <-timeout:
			t.Fatalf("no %s event within 5s", typ)
		}
	}
}

func slackErr(t *testing.T, err error, want string) {
	t.Helper()
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) || se.Err != want {
		t.Fatalf("error = %v (%T), want SlackErrorResponse %q", err, err, want)
	}
}

func TestAuthTest(t *testing.T) {
	s := newServer(t)
	ctx := testCtx(t)
	resp, err := botClient(s).AuthTestContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if resp.UserID != BotUserID || resp.TeamID != TeamID || resp.BotID != BotID {
		t.Errorf("auth.test = %+v", resp)
	}
	for _, tok := range []string{"xoxb-wrong", "", AppToken} {
		_, err := slack.New(tok, slack.OptionAPIURL(s.APIURL())).AuthTestContext(ctx)
		slackErr(t, err, "invalid_auth")
	}
	calls := s.Calls("auth.test")
	if len(calls) != 4 || calls[0].Params.Get("token") != BotToken || calls[0].Status != 200 {
		t.Errorf("calls = %+v", calls)
	}
	// The bot token cannot open a socket; unknown methods are refused.
	_, _, err = botClient(s).StartSocketModeContext(ctx)
	slackErr(t, err, "invalid_auth")
	resp2, err := http.Post(s.APIURL()+"no.such", "application/x-www-form-urlencoded", strings.NewReader("token="+BotToken))
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	var body struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp2.Body).Decode(&body); err != nil || body.OK || body.Error != "unknown_method" {
		t.Errorf("unknown method answered %+v, %v", body, err)
	}
}

func TestPostUpdateMessages(t *testing.T) {
	s := newServer(t)
	ctx := testCtx(t)
	api := botClient(s)
	btn := slack.NewActionBlock("act", slack.NewButtonBlockElement("approve", "REQ-1",
		slack.NewTextBlockObject(slack.PlainTextType, "Approve", false, false)))
	ch, ts, err := api.PostMessageContext(ctx, "U1", slack.MsgOptionText("hello", false), slack.MsgOptionBlocks(btn))
	if err != nil {
		t.Fatal(err)
	}
	if ch != "DU1" || ts == "" {
		t.Fatalf("posted to %q at %q", ch, ts)
	}
	_, ts2, err := api.PostMessageContext(ctx, ch, slack.MsgOptionText("reply", false), slack.MsgOptionTS(ts))
	if err != nil {
		t.Fatal(err)
	}
	if ts2 <= ts {
		t.Errorf("ts not increasing: %q then %q", ts, ts2)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, ch, ts, slack.MsgOptionText("updated", false),
		slack.MsgOptionBlocks()); err != nil {
		t.Fatal(err)
	}
	msgs := s.Messages("DU1")
	if len(msgs) != 2 {
		t.Fatalf("messages = %+v", msgs)
	}
	m := msgs[0]
	if m.TS != ts || m.Text != "updated" || m.Updates != 1 || string(m.Blocks) != "[]" || m.User != BotUserID ||
		m.UpdatedAt.Before(m.PostedAt) || m.Ephemeral {
		t.Errorf("updated message = %+v (blocks %s)", m, m.Blocks)
	}
	if r := msgs[1]; r.ThreadTS != ts || r.Text != "reply" || r.Updates != 0 {
		t.Errorf("reply = %+v", r)
	}
	got, ok := s.Message("DU1", ts2)
	if !ok || got.Text != "reply" {
		t.Errorf("Message(DU1, %s) = %+v, %v", ts2, got, ok)
	}
	if len(s.Messages("C-other")) != 0 {
		t.Error("messages leaked into another channel")
	}
	// Returned records are copies.
	msgs[0].Blocks[0] = 'X'
	if m, _ := s.Message("DU1", ts); string(m.Blocks) != "[]" {
		t.Error("Messages returned shared blocks")
	}
	_, _, _, err = api.UpdateMessageContext(ctx, ch, "1.999", slack.MsgOptionText("x", false))
	slackErr(t, err, "message_not_found")
	_, _, err = api.PostMessageContext(ctx, "C1")
	slackErr(t, err, "no_text")
	if c := s.Calls("chat.update"); len(c) != 2 || c[0].Params.Get("text") != "updated" || c[0].Params.Get("ts") != ts {
		t.Errorf("chat.update calls = %+v", c)
	}
	if b := s.Calls("chat.postMessage")[0].Params.Get("blocks"); !strings.Contains(b, `"action_id":"approve"`) {
		t.Errorf("blocks param = %s", b)
	}
}

func TestConcurrentPosts(t *testing.T) {
	s := newServer(t)
	ctx := testCtx(t)
	api := botClient(s)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText(fmt.Sprint(i), false)); err != nil {
				t.Error(err)
			}
			_ = s.Messages("C1")
			_ = s.Calls("")
		})
	}
	wg.Wait()
	msgs := s.Messages("C1")
	if len(msgs) != 20 {
		t.Fatalf("%d messages", len(msgs))
	}
	for i := 1; i < len(msgs); i++ {
		if msgs[i].TS <= msgs[i-1].TS {
			t.Errorf("ts %q after %q", msgs[i].TS, msgs[i-1].TS)
		}
	}
}

func TestPostEphemeral(t *testing.T) {
	s := newServer(t)
	ctx := testCtx(t)
	api := botClient(s)
	ts, err := api.PostEphemeralContext(ctx, "C1", "U2", slack.MsgOptionText("only you", false))
	if err != nil {
		t.Fatal(err)
	}
	eph := s.Ephemerals()
	if len(eph) != 1 || eph[0].TS != ts || eph[0].User != "U2" || eph[0].Channel != "C1" ||
		eph[0].Text != "only you" || !eph[0].Ephemeral {
		t.Fatalf("ephemerals = %+v", eph)
	}
	if len(s.Messages("")) != 0 {
		t.Error("ephemeral message stored as a channel message")
	}
	_, _, _, err = api.UpdateMessageContext(ctx, "C1", ts, slack.MsgOptionText("x", false))
	slackErr(t, err, "message_not_found")
}

func TestConversationsOpen(t *testing.T) {
	s := newServer(t)
	ctx := testCtx(t)
	api := botClient(s)
	ch, _, already, err := api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{"U1"}})
	if err != nil {
		t.Fatal(err)
	}
	if ch.ID != DMChannel("U1") || ch.ID != "DU1" || already {
		t.Errorf("channel = %+v, already open %v", ch, already)
	}
	if _, _, already, _ = api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{"U1"}}); !already {
		t.Error("second open not already_open")
	}
	_, _, _, err = api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{"U404"}})
	slackErr(t, err, "user_not_found")
}

func TestUsers(t *testing.T) {
	s := newServer(t)
	s.AddUser(User{ID: "U3", Name: "gone", Email: "Gone@Example.com", Deleted: true, IsUltraRestricted: true, TeamID: "T9"})
	s.AddUser(User{ID: "UB", Name: "robot", IsBot: true})
	ctx := testCtx(t)
	api := botClient(s)
	u, err := api.GetUserInfoContext(ctx, "U2")
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != "U2" || u.Name != "bob" || u.RealName != "Bob B" || u.Profile.Email != "bob@example.com" ||
		u.Profile.RealName != "Bob B" || u.Profile.DisplayName != "bob" || !u.IsRestricted || u.IsBot ||
		u.Deleted || u.TeamID != TeamID {
		t.Errorf("users.info U2 = %+v", u)
	}
	u, err = api.GetUserByEmailContext(ctx, "gone@example.COM")
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != "U3" || !u.Deleted || !u.IsUltraRestricted || u.TeamID != "T9" {
		t.Errorf("lookupByEmail = %+v", u)
	}
	if u, err = api.GetUserInfoContext(ctx, "UB"); err != nil || !u.IsBot {
		t.Errorf("bot user = %+v, %v", u, err)
	}
	_, err = api.GetUserInfoContext(ctx, "U404")
	slackErr(t, err, "user_not_found")
	_, err = api.GetUserByEmailContext(ctx, "nobody@example.com")
	slackErr(t, err, "users_not_found")
}

func TestUserGroups(t *testing.T) {
	s := newServer(t)
	s.AddUserGroup("S1", "U1", "U2")
	s.AddUserGroup("S2")
	ctx := testCtx(t)
	api := botClient(s)
	got, err := api.GetUserGroupMembersContext(ctx, "S1")
	if err != nil || strings.Join(got, ",") != "U1,U2" {
		t.Errorf("members = %v, %v", got, err)
	}
	if got, err := api.GetUserGroupMembersContext(ctx, "S2"); err != nil || len(got) != 0 {
		t.Errorf("empty group = %v, %v", got, err)
	}
	_, err = api.GetUserGroupMembersContext(ctx, "S404")
	slackErr(t, err, "no_such_subteam")
}

func TestRateLimitAndFailNext(t *testing.T) {
	s := newServer(t)
	ctx := testCtx(t)
	api := botClient(s)
	s.RateLimit("chat.postMessage", 2, 1500*time.Millisecond)
	for range 2 {
		_, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("x", false))
		var rl *slack.RateLimitedError
		if !errors.As(err, &rl) || rl.RetryAfter != 2*time.Second {
			t.Fatalf("error = %v (%T), want RateLimitedError after 2s", err, err)
		}
	}
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("x", false)); err != nil {
		t.Fatalf("third call: %v", err)
	}
	calls := s.Calls("chat.postMessage")
	if len(calls) != 3 || calls[0].Status != 429 || calls[1].Status != 429 || calls[2].Status != 200 {
		t.Errorf("calls = %+v", calls)
	}
	if n := len(s.Messages("C1")); n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
	s.RateLimit("users.info", 1, 0)
	_, err := api.GetUserInfoContext(ctx, "U1")
	if rl, ok := errors.AsType[*slack.RateLimitedError](err); !ok || rl.RetryAfter != time.Second {
		t.Errorf("zero retryAfter: %v", err)
	}

	s.FailNext("users.info", "fatal_error", 2)
	for range 2 {
		_, err := api.GetUserInfoContext(ctx, "U1")
		slackErr(t, err, "fatal_error")
	}
	if _, err := api.GetUserInfoContext(ctx, "U1"); err != nil {
		t.Fatalf("after failures: %v", err)
	}
}

func TestSocketModeSlashCommandAndResponseURL(t *testing.T) {
	s := newServer(t)
	ctx := testCtx(t)
	sm := startSocket(t, s)
	if err := s.WaitConnections(ctx, 1); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, sm, socketmode.EventTypeHello)
	id := s.SlashCommand("U1", "now please")
	evt := nextEvent(t, sm, socketmode.EventTypeSlashCommand)
	cmd, ok := evt.Data.(slack.SlashCommand)
	if !ok {
		t.Fatalf("data is %T", evt.Data)
	}
	if evt.Request.EnvelopeID != id || cmd.Command != "/reset-password" || cmd.Text != "now please" ||
		cmd.UserID != "U1" || cmd.UserName != "alice" || cmd.ChannelID != "DU1" || cmd.TeamID != TeamID ||
		cmd.APIAppID != AppID || cmd.TriggerID == "" || !strings.HasPrefix(cmd.ResponseURL, s.URL()+"/response/") {
		t.Fatalf("slash command = %+v, envelope %q want %q", cmd, evt.Request.EnvelopeID, id)
	}
	if _, acked := s.Ack(id); acked {
		t.Fatal("acked before the client acked")
	}
	if err := sm.Ack(*evt.Request, map[string]string{"text": "working on it"}); err != nil {
		t.Fatal(err)
	}
	payload, err := s.WaitAck(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if string(payload) != `{"text":"working on it"}` {
		t.Errorf("ack payload = %s", payload)
	}
	if d, ok := s.AckDelay(id); !ok || d <= 0 || d > 5*time.Second {
		t.Errorf("ack delay = %v, %v", d, ok)
	}

	// Both ways slack-go posts to a response_url are recorded.
	if err := slack.PostWebhookContext(ctx, cmd.ResponseURL, &slack.WebhookMessage{Text: "hook",
		ResponseType: slack.ResponseTypeEphemeral}); err != nil {
		t.Fatal(err)
	}
	sec := slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "*done*", false, false), nil, nil)
	if _, err := botClient(s).PostEphemeralContext(ctx, cmd.ChannelID, cmd.UserID, slack.MsgOptionText("via api", false),
		slack.MsgOptionBlocks(sec), slack.MsgOptionResponseURL(cmd.ResponseURL, slack.ResponseTypeInChannel)); err != nil {
		t.Fatal(err)
	}
	posts := s.ResponsePosts()
	if len(posts) != 2 {
		t.Fatalf("response posts = %+v", posts)
	}
	if p := posts[0]; p.URL != cmd.ResponseURL || p.Text != "hook" || p.ResponseType != "ephemeral" ||
		p.Blocks != nil || p.ReplaceOriginal || len(p.Raw) == 0 {
		t.Errorf("webhook post = %+v", p)
	}
	if p := posts[1]; p.Text != "via api" || p.ResponseType != "in_channel" || !strings.Contains(string(p.Blocks), "*done*") {
		t.Errorf("PostEphemeral response post = %+v", p)
	}
	if c := s.Calls("response_url"); len(c) != 2 || c[0].Params.Get("text") != "hook" {
		t.Errorf("response_url calls = %+v", c)
	}
	if len(s.Ephemerals()) != 0 {
		t.Error("response_url post recorded as chat.postEphemeral")
	}
	// A URL the server did not issue is refused.
	err = slack.PostWebhookContext(ctx, s.URL()+"/response/999", &slack.WebhookMessage{Text: "x"})
	if sc, ok := errors.AsType[slack.StatusCodeError](err); !ok || sc.Code != http.StatusNotFound {
		t.Errorf("unknown response URL: %v", err)
	}
}

func TestClick(t *testing.T) {
	s := newServer(t)
	ctx := testCtx(t)
	api := botClient(s)
	btn := slack.NewActionBlock("decision", slack.NewButtonBlockElement("approve", "REQ-7",
		slack.NewTextBlockObject(slack.PlainTextType, "Approve", false, false)))
	ch, ts, err := api.PostMessageContext(ctx, "U2", slack.MsgOptionText("approve?", false), slack.MsgOptionBlocks(btn))
	if err != nil {
		t.Fatal(err)
	}
	sm := startSocket(t, s)
	if err := s.WaitConnections(ctx, 1); err != nil {
		t.Fatal(err)
	}
	id := s.Click(Click{User: "U2", ActionID: "approve", Value: "REQ-7", Channel: ch, MessageTS: ts})
	evt := nextEvent(t, sm, socketmode.EventTypeInteractive)
	cb, ok := evt.Data.(slack.InteractionCallback)
	if !ok {
		t.Fatalf("data is %T", evt.Data)
	}
	if evt.Request.EnvelopeID != id || cb.Type != slack.InteractionTypeBlockActions || cb.User.ID != "U2" ||
		cb.Channel.ID != ch || cb.Container.MessageTs != ts || cb.Container.ChannelID != ch ||
		cb.Message.Timestamp != ts || cb.Message.Text != "approve?" || cb.TriggerID == "" || cb.ResponseURL == "" {
		t.Fatalf("callback = %+v", cb)
	}
	if len(cb.ActionCallback.BlockActions) != 1 {
		t.Fatalf("block actions = %+v", cb.ActionCallback)
	}
	if a := cb.ActionCallback.BlockActions[0]; a.ActionID != "approve" || a.Value != "REQ-7" || a.BlockID != "decision" ||
		a.Type != "button" {
		t.Errorf("action = %+v", a)
	}
	if err := sm.Ack(*evt.Request); err != nil {
		t.Fatal(err)
	}
	if p, err := s.WaitAck(ctx, id); err != nil || p != nil {
		t.Errorf("ack = %s, %v", p, err)
	}
	// replace_original through the click's response_url updates the message.
	if err := slack.PostWebhookContext(ctx, cb.ResponseURL, &slack.WebhookMessage{Text: "approved",
		ReplaceOriginal: true}); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.Message(ch, ts); m.Text != "approved" || m.Updates != 1 || m.Blocks != nil {
		t.Errorf("after replace_original: %+v", m)
	}
}

func TestDisconnectReconnect(t *testing.T) {
	s := newServer(t)
	ctx := testCtx(t)
	sm := startSocket(t, s)
	if err := s.WaitConnections(ctx, 1); err != nil {
		t.Fatal(err)
	}
	s.Disconnect("refresh_requested")
	// Sent while the client reconnects: none may go to the old connection
	// and be lost.
	var ids []string
	for i := range 3 {
		ids = append(ids, s.SlashCommand("U1", fmt.Sprint("after refresh ", i)))
	}
	if err := s.WaitFor(ctx, func() bool { return s.TotalConnections() == 2 && s.Connections() == 1 }); err != nil {
		t.Fatalf("no reconnect: total %d open %d", s.TotalConnections(), s.Connections())
	}
	for i, id := range ids {
		evt := nextEvent(t, sm, socketmode.EventTypeSlashCommand)
		if evt.Request.EnvelopeID != id || evt.Data.(slack.SlashCommand).Text != fmt.Sprint("after refresh ", i) {
			t.Fatalf("got %+v, want envelope %s", evt.Request, id)
		}
	}
	// And one sent on the new connection.
	id2 := s.SlashCommand("U1", "again")
	if evt := nextEvent(t, sm, socketmode.EventTypeSlashCommand); evt.Request.EnvelopeID != id2 {
		t.Fatalf("got %q, want %q", evt.Request.EnvelopeID, id2)
	}
	if c := s.Calls("apps.connections.open"); len(c) != 2 || c[0].Status != 200 {
		t.Errorf("apps.connections.open calls = %d", len(c))
	}
}

func TestDropConnections(t *testing.T) {
	s := newServer(t)
	ctx := testCtx(t)
	sm := startSocket(t, s)
	if err := s.WaitConnections(ctx, 1); err != nil {
		t.Fatal(err)
	}
	s.DropConnections()
	if err := s.WaitFor(ctx, func() bool { return s.TotalConnections() == 2 && s.Connections() == 1 }); err != nil {
		t.Fatal(err)
	}
	id := s.Send("slash_commands", map[string]string{"command": Command, "user_id": "U9", "text": "x"})
	if evt := nextEvent(t, sm, socketmode.EventTypeSlashCommand); evt.Request.EnvelopeID != id ||
		evt.Data.(slack.SlashCommand).UserID != "U9" {
		t.Fatalf("got %+v", evt)
	}
}

func TestQueuedUntilConnected(t *testing.T) {
	s := newServer(t)
	ctx := testCtx(t)
	id1 := s.SlashCommand("U1", "first")
	id2 := s.SlashCommand("U2", "second")
	sm := startSocket(t, s)
	for _, want := range []string{id1, id2} {
		evt := nextEvent(t, sm, socketmode.EventTypeSlashCommand)
		if evt.Request.EnvelopeID != want {
			t.Fatalf("got %q, want %q", evt.Request.EnvelopeID, want)
		}
		if err := sm.Ack(*evt.Request); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.WaitAck(ctx, id2); err != nil {
		t.Fatal(err)
	}
	if d, ok := s.AckDelay(id1); !ok || d < 0 || d > 5*time.Second {
		t.Errorf("ack delay of queued envelope = %v, %v", d, ok)
	}
}

func TestRedeliveryAndMalformedFrames(t *testing.T) {
	s := newServer(t)
	ctx := testCtx(t)
	sm := startSocket(t, s)
	if err := s.WaitConnections(ctx, 1); err != nil {
		t.Fatal(err)
	}
	payload := map[string]string{"command": Command, "user_id": "U1"}
	s.SendRaw(0, []byte(`{not json`))
	nextEvent(t, sm, socketmode.EventTypeIncomingError)
	s.SendTo(0, "env-x", "slash_commands", payload)
	s.SendTo(0, "env-x", "slash_commands", payload)
	first := nextEvent(t, sm, socketmode.EventTypeSlashCommand)
	second := nextEvent(t, sm, socketmode.EventTypeSlashCommand)
	if first.Request.EnvelopeID != "env-x" || first.Request.RetryAttempt != 0 ||
		second.Request.EnvelopeID != "env-x" || second.Request.RetryAttempt != 1 || second.Request.RetryReason != "timeout" {
		t.Errorf("first %+v second %+v", first.Request, second.Request)
	}
	if s.Connections() != 1 || s.TotalConnections() != 1 {
		t.Error("malformed frame cost the connection")
	}
}

func TestPingKeepsConnectionAlive(t *testing.T) {
	s := newServer(t, WithPingInterval(50*time.Millisecond))
	ctx := testCtx(t)
	// Without a PING every 250ms the client drops and reconnects.
	sm := startSocket(t, s, socketmode.OptionPingInterval(250*time.Millisecond))
	if err := s.WaitConnections(ctx, 1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(800 * time.Millisecond)
	if n := s.TotalConnections(); n != 1 {
		t.Errorf("client reconnected %d times", n-1)
	}
	id := s.SlashCommand("U1", "")
	if evt := nextEvent(t, sm, socketmode.EventTypeSlashCommand); evt.Request.EnvelopeID != id {
		t.Fatal("wrong envelope")
	}
}

func TestSocketURLSingleUse(t *testing.T) {
	s := newServer(t)
	ctx := testCtx(t)
	api := slack.New(BotToken, slack.OptionAppLevelToken(AppToken), slack.OptionAPIURL(s.APIURL()))
	_, wsURL, err := api.StartSocketModeContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(wsURL, "ws://127.0.0.1:") || !strings.Contains(wsURL, "/socket/") {
		t.Fatalf("url = %q", wsURL)
	}
	if c := s.Calls("apps.connections.open"); len(c) != 1 || c[0].Status != 200 {
		t.Errorf("calls = %+v", c)
	}
	resp, err := http.Get(s.URL() + "/socket/999")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unissued socket URL: %d", resp.StatusCode)
	}
}

func TestConversationsInfoAndMembership(t *testing.T) {
	s := newServer(t)
	api := botClient(s)
	ctx := testCtx(t)
	s.AddChannel(Channel{ID: "CIN", Name: "audit", Member: true})
	s.AddChannel(Channel{ID: "COUT", Name: "general"})
	s.AddChannel(Channel{ID: "GSECRET", Name: "secret", Private: true})
	s.AddChannel(Channel{ID: "GPRIV", Name: "helpdesk", Private: true, Member: true})
	s.AddChannel(Channel{ID: "COLD", Name: "old", Member: true, Archived: true})

	info := func(id string) (*slack.Channel, error) {
		return api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: id})
	}
	if c, err := info("CIN"); err != nil || !c.IsMember || c.Name != "audit" || c.IsPrivate {
		t.Errorf("CIN: %+v, %v", c, err)
	}
	if c, err := info("COUT"); err != nil || c.IsMember {
		t.Errorf("COUT: %+v, %v", c, err)
	}
	if c, err := info("GPRIV"); err != nil || !c.IsMember || !c.IsPrivate {
		t.Errorf("GPRIV: %+v, %v", c, err)
	}
	for _, id := range []string{"GSECRET", "CNOWHERE"} {
		if _, err := info(id); err == nil || err.Error() != "channel_not_found" {
			t.Errorf("%s: %v, want channel_not_found", id, err)
		}
	}
	if c, err := info("DU1"); err != nil || !c.IsIM || c.User != "U1" {
		t.Errorf("DU1: %+v, %v", c, err)
	}

	// Posting follows membership.
	for id, want := range map[string]string{"CIN": "", "COUT": "not_in_channel", "GSECRET": "channel_not_found", "COLD": "is_archived", "CANY": ""} {
		_, _, err := api.PostMessageContext(ctx, id, slack.MsgOptionText("hi", false))
		if got := fmt.Sprint(err); (want == "" && err != nil) || (want != "" && got != want) {
			t.Errorf("post to %s: %v, want %q", id, err, want)
		}
	}

	// The scope that each kind of channel needs.
	s.SetScopes("chat:write", "channels:read")
	if _, err := info("GPRIV"); err == nil || err.Error() != "missing_scope" {
		t.Errorf("private channel without groups:read: %v", err)
	}
	if _, err := info("CIN"); err != nil {
		t.Errorf("public channel with channels:read: %v", err)
	}
}

// TestResponseURLAnswers: an ephemeral answer through a click's response
// URL is journalled as ChangeResponded for the clicker, in the click's
// channel; a URL takes MaxResponsePosts posts; FailResponses fails the
// next ones without effect.
func TestResponseURLAnswers(t *testing.T) {
	s := newServer(t)
	ctx := testCtx(t)
	sm := startSocket(t, s)
	nextEvent(t, sm, socketmode.EventTypeHello)
	s.Click(Click{User: "U2", ActionID: "reveal", Value: "R1", Channel: "DU2", MessageTS: "1.1"})
	evt := nextEvent(t, sm, socketmode.EventTypeInteractive)
	cb := evt.Data.(slack.InteractionCallback)

	s.FailResponses(http.StatusNotFound, "expired_url", 1)
	s.FailResponses(http.StatusOK, "invalid_blocks", 1)
	post := func(text string) error {
		return slack.PostWebhookContext(ctx, cb.ResponseURL, &slack.WebhookMessage{Text: text, ResponseType: slack.ResponseTypeEphemeral})
	}
	if err := post("lost"); err == nil {
		t.Error("a failed post (404) returned no error")
	}
	_, err := botClient(s).PostEphemeralContext(ctx, "DU2", "U2", slack.MsgOptionText("lost too", false),
		slack.MsgOptionResponseURL(cb.ResponseURL, slack.ResponseTypeEphemeral))
	slackErr(t, err, "invalid_blocks")
	for i := range MaxResponsePosts {
		if err := post(fmt.Sprint("answer ", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := post("one too many"); err == nil {
		t.Error("a post past MaxResponsePosts was accepted")
	}
	var answers []Change
	for _, c := range s.Changes(0) {
		if c.Kind == ChangeResponded {
			answers = append(answers, c)
		}
	}
	if len(answers) != MaxResponsePosts {
		t.Fatalf("%d answers journalled, want %d: %+v", len(answers), MaxResponsePosts, answers)
	}
	if m := answers[0].Message; m.Channel != "DU2" || m.User != "U2" || !m.Ephemeral || m.Text != "answer 0" {
		t.Errorf("answer = %+v", m)
	}
	posts := s.ResponsePosts()
	if len(posts) != MaxResponsePosts || posts[0].User != "U2" || posts[0].Channel != "DU2" {
		t.Errorf("response posts = %+v", posts)
	}
	if len(s.Ephemerals()) != 0 {
		t.Error("a response URL answer recorded as chat.postEphemeral")
	}
}
