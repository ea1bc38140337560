package slacktest

import (
	"errors"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/example/resetbot/internal/testclock"
)

func withClock(now func() time.Time) Option { return func(s *Server) { s.clock = now } }

func newClockedServer(t *testing.T, l Limits) (*Server, *testclock.Clock) {
	t.Helper()
	clock := testclock.New(time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC))
	return newServer(t, withClock(clock.Now), WithRateLimits(l)), clock
}

// wantLimited fails unless err is a 429 with Retry-After of secs seconds.
func wantLimited(t *testing.T, err error, secs int) {
	t.Helper()
	rl, ok := errors.AsType[*slack.RateLimitedError](err)
	if !ok || rl.RetryAfter != time.Duration(secs)*time.Second {
		t.Fatalf("error = %v (%T), want 429 with Retry-After %ds", err, err, secs)
	}
}

func wantOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("error = %v, want none", err)
	}
}

func TestRateLimitsChannelBucket(t *testing.T) {
	s, clock := newClockedServer(t, Limits{PostPerChannel: Rate{Every: time.Second, Burst: 3}})
	ctx := testCtx(t)
	api := botClient(s)
	post := func(ch string) error {
		_, _, err := api.PostMessageContext(ctx, ch, slack.MsgOptionText("x", false))
		return err
	}
	for range 3 {
		wantOK(t, post("C1"))
	}
	wantLimited(t, post("C1"), 1)
	if n := len(s.Messages("C1")); n != 3 {
		t.Fatalf("%d messages in C1: a limited call was performed", n)
	}
	// Every channel has its own bucket; a user ID means the DM.
	for range 3 {
		wantOK(t, post("C2"))
	}
	wantOK(t, post("U1"))
	wantOK(t, post("DU1"))

	// Half a second later the bucket holds half a call, and C1 is still
	// inside the Retry-After it was given: a call now is a violation.
	clock.Add(500 * time.Millisecond)
	wantLimited(t, post("C1"), 1)
	st := s.RateStats()
	if st.InWindow["chat.postMessage"] != 1 || st.InWindowByKey[ChannelKey("C1")] != 1 {
		t.Fatalf("in window = %v / %v, want 1 in C1", st.InWindow, st.InWindowByKey)
	}
	// After the Retry-After, a call goes through; the next has no token
	// yet (0.1 left) and is limited, but that one is not a violation.
	clock.Add(600 * time.Millisecond)
	wantOK(t, post("C1"))
	wantLimited(t, post("C1"), 1)
	// A long pause refills the bucket to its burst, no more.
	clock.Add(time.Hour)
	for range 3 {
		wantOK(t, post("C1"))
	}
	wantLimited(t, post("C1"), 1)

	st = s.RateStats()
	if st.Calls["chat.postMessage"] != 16 || st.Limited["chat.postMessage"] != 4 ||
		st.LimitedByKey[ChannelKey("C1")] != 4 || Total(st.InWindow) != 1 || len(st.LimitedByKey) != 1 {
		t.Errorf("stats = %+v", st)
	}
	if n := len(s.Messages("C1")); n != 7 {
		t.Errorf("%d messages in C1, want 7", n)
	}
	var limited int
	for _, c := range s.Calls("chat.postMessage") {
		if c.Status == 429 {
			limited++
		}
	}
	if limited != 4 {
		t.Errorf("%d calls recorded with status 429, want 4", limited)
	}
}

func TestRateLimitsTieredMethods(t *testing.T) {
	s, clock := newClockedServer(t, Limits{Methods: map[string]Rate{"users.info": PerMinute(50, 2)}})
	ctx := testCtx(t)
	api := botClient(s)
	// The bucket is per method, across the workspace: two different users
	// use it up.
	_, err := api.GetUserInfoContext(ctx, "U1")
	wantOK(t, err)
	_, err = api.GetUserInfoContext(ctx, "U2")
	wantOK(t, err)
	_, err = api.GetUserInfoContext(ctx, "U1")
	wantLimited(t, err, 2) // 1.2s to the next call, in whole seconds
	// Other methods are not affected.
	for range 5 {
		_, err = api.GetUserByEmailContext(ctx, "alice@example.com")
		wantOK(t, err)
	}
	// The bucket has a call again after 1.2s, but the method stays limited
	// until the announced 2s have passed.
	clock.Add(1500 * time.Millisecond)
	_, err = api.GetUserInfoContext(ctx, "U1")
	wantLimited(t, err, 1)
	clock.Add(500 * time.Millisecond)
	_, err = api.GetUserInfoContext(ctx, "U1")
	wantOK(t, err)

	st := s.RateStats()
	if st.Calls["users.info"] != 5 || st.Calls["users.lookupByEmail"] != 5 || st.Limited["users.info"] != 2 ||
		st.InWindow["users.info"] != 1 || st.InWindowByKey["users.info"] != 1 || st.Limited["users.lookupByEmail"] != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestSlackLimits(t *testing.T) {
	l := SlackLimits()
	if l.PostPerChannel != (Rate{Every: time.Second, Burst: 25}) || l.Scale != 1 {
		t.Errorf("chat.postMessage: %+v, scale %v", l.PostPerChannel, l.Scale)
	}
	for method, perMinute := range map[string]int{"usergroups.users.list": 20, "chat.update": 50,
		"conversations.open": 50, "users.lookupByEmail": 50, "chat.postEphemeral": 100, "users.info": 100} {
		if r := l.Methods[method]; r.Every != time.Minute/time.Duration(perMinute) || r.Burst < 1 {
			t.Errorf("%s: %+v, want %d a minute", method, r, perMinute)
		}
	}
	// The defaults hold against a real client: 25 posts to one channel at
	// once, then 429 with Retry-After 1.
	s := newServer(t, WithRateLimits(l))
	ctx := testCtx(t)
	api := botClient(s)
	for range 25 {
		_, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("x", false))
		wantOK(t, err)
	}
	_, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("x", false))
	wantLimited(t, err, 1)
}

// TestRateLimitsScaledTime runs on the real clock, ten times as fast.
func TestRateLimitsScaledTime(t *testing.T) {
	s := newServer(t, WithRateLimits(Limits{PostPerChannel: Rate{Every: time.Second, Burst: 1}, Scale: 10}))
	ctx := testCtx(t)
	api := botClient(s)
	post := func() error {
		_, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("x", false))
		return err
	}
	wantOK(t, post())
	wantLimited(t, post(), 1) // one model second: 100ms
	time.Sleep(150 * time.Millisecond)
	wantOK(t, post())

	// A client that waits out Retry-After (slack-go's retries; literally
	// one real second here) never calls inside the window.
	s.SetRateLimits(Limits{Methods: map[string]Rate{"users.info": {Every: time.Second, Burst: 1}}, Scale: 10})
	polite := slack.New(BotToken, slack.OptionAPIURL(s.APIURL()),
		slack.OptionRetryConfig(slack.RetryConfig{MaxRetries: 2, RetryAfterJitter: 0}))
	before := s.RateStats()
	for range 2 {
		_, err := polite.GetUserInfoContext(ctx, "U1")
		wantOK(t, err)
	}
	st := s.RateStats().Since(before)
	if st.Calls["users.info"] != 3 || st.Limited["users.info"] != 1 || Total(st.InWindow) != 0 {
		t.Errorf("polite client: %+v", st)
	}
	// One that retries at once violates it.
	s.SetRateLimits(Limits{Methods: map[string]Rate{"users.info": {Every: time.Minute, Burst: 1}}, Scale: 10})
	_, err := api.GetUserInfoContext(ctx, "U1")
	wantOK(t, err)
	for range 3 {
		_, err = api.GetUserInfoContext(ctx, "U1")
		wantLimited(t, err, 60) // a minute to the next call, announced at the first 429
	}
	st = s.RateStats().Since(before)
	if st.InWindow["users.info"] != 2 || st.Limited["users.info"] != 4 {
		t.Errorf("impatient client: %+v", st)
	}
}

func TestThrottle(t *testing.T) {
	s, clock := newClockedServer(t, Limits{}) // no modelled limits: throttles work alone
	ctx := testCtx(t)
	api := botClient(s)
	post := func(ch string) error {
		_, _, err := api.PostMessageContext(ctx, ch, slack.MsgOptionText("x", false))
		return err
	}
	s.ThrottleChannel("C1", 2500*time.Millisecond)
	s.ThrottleChannel("U2", time.Second) // the DM with U2
	wantLimited(t, post("C1"), 3)
	wantLimited(t, post("DU2"), 1)
	wantOK(t, post("C2"))
	clock.Add(time.Second)
	wantLimited(t, post("C1"), 2) // inside the 3s announced
	wantOK(t, post("DU2"))
	clock.Add(2100 * time.Millisecond)
	wantOK(t, post("C1"))

	s.ThrottleMethod("chat.update", 10*time.Second)
	_, ts, err := api.PostMessageContext(ctx, "C3", slack.MsgOptionText("x", false))
	wantOK(t, err)
	_, _, _, err = api.UpdateMessageContext(ctx, "C3", ts, slack.MsgOptionText("y", false))
	wantLimited(t, err, 10)
	s.ThrottleMethod("chat.update", 0) // lifted; the announced window still holds
	_, _, _, err = api.UpdateMessageContext(ctx, "C3", ts, slack.MsgOptionText("y", false))
	wantLimited(t, err, 10)
	clock.Add(10 * time.Second)
	_, _, _, err = api.UpdateMessageContext(ctx, "C3", ts, slack.MsgOptionText("y", false))
	wantOK(t, err)

	st := s.RateStats()
	if st.LimitedByKey[ChannelKey("C1")] != 2 || st.LimitedByKey[ChannelKey("DU2")] != 1 ||
		st.InWindowByKey[ChannelKey("C1")] != 1 || st.InWindow["chat.update"] != 1 || st.Limited["chat.update"] != 2 {
		t.Errorf("stats = %+v", st)
	}
}

// TestRateLimitInjectionWithLimits: RateLimit's 429s come first, use no
// token and announce no window.
func TestRateLimitInjectionWithLimits(t *testing.T) {
	s, _ := newClockedServer(t, Limits{Methods: map[string]Rate{"users.info": {Every: time.Second, Burst: 1}}})
	ctx := testCtx(t)
	api := botClient(s)
	s.RateLimit("users.info", 2, 30*time.Second)
	for range 2 {
		_, err := api.GetUserInfoContext(ctx, "U1")
		wantLimited(t, err, 30)
	}
	_, err := api.GetUserInfoContext(ctx, "U1") // the bucket's one call
	wantOK(t, err)
	_, err = api.GetUserInfoContext(ctx, "U1")
	wantLimited(t, err, 1)
	st := s.RateStats()
	if st.Limited["users.info"] != 3 || Total(st.InWindow) != 0 {
		t.Errorf("stats = %+v", st)
	}
	// The zero Limits turns the model off.
	s.SetRateLimits(Limits{})
	for range 5 {
		_, err = api.GetUserInfoContext(ctx, "U1")
		wantOK(t, err)
	}
}

func TestChangesAndHistory(t *testing.T) {
	s := newServer(t)
	ctx := testCtx(t)
	api := botClient(s)
	start := time.Now()
	_, ts, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("one", false))
	wantOK(t, err)
	_, ts2, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("two", false))
	wantOK(t, err)
	_, _, _, err = api.UpdateMessageContext(ctx, "C1", ts, slack.MsgOptionText("one, updated", false))
	wantOK(t, err)
	_, err = api.PostEphemeralContext(ctx, "DU1", "U1", slack.MsgOptionText("secret", false))
	wantOK(t, err)
	_, _, err = api.DeleteMessageContext(ctx, "C1", ts2)
	wantOK(t, err)

	all := s.Changes(0)
	want := []struct {
		kind ChangeKind
		text string
	}{{ChangePosted, "one"}, {ChangePosted, "two"}, {ChangeUpdated, "one, updated"}, {ChangeEphemeral, "secret"}, {ChangeDeleted, "two"}}
	if len(all) != len(want) {
		t.Fatalf("changes = %+v", all)
	}
	for i, c := range all {
		if c.Seq != i+1 || c.Kind != want[i].kind || c.Message.Text != want[i].text || c.At.Before(start) ||
			(i > 0 && c.At.Before(all[i-1].At)) {
			t.Errorf("change %d = %+v, want %+v", i, c, want[i])
		}
	}
	if c := all[3]; !c.Message.Ephemeral || c.Message.User != "U1" || c.Message.PostedAt != c.At {
		t.Errorf("ephemeral change = %+v", c)
	}
	if c := all[2]; c.Message.UpdatedAt != c.At || c.Message.Updates != 1 {
		t.Errorf("update change = %+v", c)
	}
	if rest := s.Changes(3); len(rest) != 2 || rest[0].Seq != 4 {
		t.Errorf("Changes(3) = %+v", rest)
	}
	if rest := s.Changes(99); len(rest) != 0 {
		t.Errorf("Changes(99) = %+v", rest)
	}
	h := s.History("C1", ts)
	if len(h) != 2 || h[0].Kind != ChangePosted || h[1].Kind != ChangeUpdated || h[1].Message.Text != "one, updated" {
		t.Errorf("history = %+v", h)
	}
	// Returned changes are copies.
	all[0].Message.Text = "changed"
	if s.Changes(0)[0].Message.Text != "one" {
		t.Error("Changes returned shared state")
	}
}

func TestAckedAt(t *testing.T) {
	s := newServer(t)
	ctx := testCtx(t)
	sm := startSocket(t, s)
	if err := s.WaitConnections(ctx, 1); err != nil {
		t.Fatal(err)
	}
	id := s.SlashCommand("U1", "")
	if _, ok := s.AckedAt(id); ok {
		t.Fatal("acked before the client acked")
	}
	before := time.Now()
	evt := nextEvent(t, sm, socketmode.EventTypeSlashCommand)
	if err := sm.Ack(*evt.Request); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WaitAck(ctx, id); err != nil {
		t.Fatal(err)
	}
	if at, ok := s.AckedAt(id); !ok || at.Before(before) || time.Since(at) > 5*time.Second {
		t.Errorf("acked at %v, %v", at, ok)
	}
}

func TestRetryAfterRounding(t *testing.T) {
	// A call every 2.5 s, one spent a second ago: 1.5 s to wait.
	for _, tt := range []struct {
		r    Rounding
		secs int
	}{{RoundUp, 2}, {RoundNearest, 2}, {RoundUpPlus1, 3}} {
		s, clock := newClockedServer(t, Limits{Methods: map[string]Rate{"users.info": {Every: 2500 * time.Millisecond, Burst: 1}}, Rounding: tt.r})
		s.AddUser(User{ID: "U1", Email: "a@x.com"})
		api := botClient(s)
		_, err := api.GetUserInfoContext(testCtx(t), "U1")
		wantOK(t, err)
		clock.Add(time.Second)
		_, err = api.GetUserInfoContext(testCtx(t), "U1")
		wantLimited(t, err, tt.secs)
		if got, ok := ParseRounding(tt.r.String()); !ok || got != tt.r {
			t.Errorf("ParseRounding(%q) = %v, %v", tt.r.String(), got, ok)
		}
	}
	// Rounded to the nearest second, the window may end before the
	// bucket has a call: the call after it gets a 429 of its own, not
	// counted as inside a window.
	s, clock := newClockedServer(t, Limits{Methods: map[string]Rate{"users.info": {Every: 1400 * time.Millisecond, Burst: 1}}, Rounding: RoundNearest})
	s.AddUser(User{ID: "U1", Email: "a@x.com"})
	api := botClient(s)
	_, err := api.GetUserInfoContext(testCtx(t), "U1")
	wantOK(t, err)
	_, err = api.GetUserInfoContext(testCtx(t), "U1")
	wantLimited(t, err, 1) // 1.4 s rounds to 1
	clock.Add(time.Second)
	_, err = api.GetUserInfoContext(testCtx(t), "U1")
	wantLimited(t, err, 1)
	if st := s.RateStats(); Total(st.InWindow) != 0 || st.Limited["users.info"] != 2 {
		t.Errorf("stats = %+v", st)
	}
}

func TestAfterAnswer(t *testing.T) {
	// A call inside the window counts as sent after the 429 only once
	// InFlightMargin has passed since the 429 was answered.
	s, clock := newClockedServer(t, Limits{Methods: map[string]Rate{"users.info": {Every: 10 * time.Second, Burst: 1}}})
	s.AddUser(User{ID: "U1", Email: "a@x.com"})
	api := botClient(s)
	call := func() error { _, err := api.GetUserInfoContext(testCtx(t), "U1"); return err }
	wantOK(t, call())
	wantLimited(t, call(), 10)
	wantLimited(t, call(), 10) // at the same instant: in flight
	clock.Add(InFlightMargin + time.Millisecond)
	wantLimited(t, call(), 10)
	st := s.RateStats()
	if st.InWindow["users.info"] != 2 || st.AfterAnswer["users.info"] != 1 {
		t.Errorf("in window %v, after the answer %v; want 2 and 1", st.InWindow, st.AfterAnswer)
	}
	if want := InFlightMargin + time.Millisecond; st.Late["users.info"] != want {
		t.Errorf("late by %v, want %v", st.Late["users.info"], want)
	}
}
