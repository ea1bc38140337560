package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/example/resetbot/delivery"
	"github.com/example/resetbot/internal/dstest"
	"github.com/example/resetbot/internal/slacktest"
	"github.com/example/resetbot/slackapp"
	redisstore "github.com/example/resetbot/store/redisstore"
	"github.com/example/resetbot/store/seal"
	"github.com/example/resetbot/workflow"
)

const (
	testDirectory = "d-0a1b2c3d4e"
	auditChannel  = "C0AUDIT"
	employee      = "UEMP"
	approver1     = "UAPP1"
	approver2     = "UAPP2"
	stranger      = "USTRANGER"
	waitLong      = 20 * time.Second
)

// testRedisURL returns the Redis the tests use. Without one, a developer's
// run skips; CI fails.
func testRedisURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("REDIS_URL")
	if u == "" {
		u = "redis://127.0.0.1:6379/0"
	}
	opts, err := redis.ParseURL(u)
	if err != nil {
		t.Fatalf("REDIS_URL: %v", err)
	}
	c := redis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Redis at %s is required in CI: %v", u, err)
		}
		t.Skipf("no Redis at %s (run ./scripts/test.sh to start one): %v", u, err)
	}
	return u
}

// syncBuffer collects the bot's log output.
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

// world is one test's Slack, directory and Redis, shared by its bots.
type world struct {
	t      testing.TB
	slack  *slacktest.Server
	ds     *dstest.Server
	redis  *redis.Client
	store  *redisstore.Store
	prefix string
	vars   map[string]string
	bots   []*syncBuffer // logs of the bots started, shown when a wait times out
}

func newWorld(t testing.TB) *world {
	t.Helper()
	redisURL := testRedisURL(t)
	w := &world{t: t, slack: slacktest.New(slacktest.WithPingInterval(time.Second)), ds: dstest.New(testDirectory)}
	t.Cleanup(w.ds.Close)
	t.Cleanup(w.slack.Close)
	for _, u := range []slacktest.User{
		{ID: employee, Name: "alice", RealName: "Alice Smith", Email: "alice@corp.example.com"},
		{ID: approver1, Name: "bob", RealName: "Bob Jones", Email: "bob@corp.example.com"},
		{ID: approver2, Name: "carol", RealName: "Carol White", Email: "carol@corp.example.com"},
		{ID: stranger, Name: "dave", RealName: "Dave Black", Email: "dave@corp.example.com"},
		{ID: "UGUEST", Name: "gina", Email: "gina@corp.example.com", IsRestricted: true},
		{ID: "USINGLE", Name: "sam", Email: "sam@corp.example.com", IsUltraRestricted: true},
		{ID: "UROBOT", Name: "robot", Email: "robot@corp.example.com", IsBot: true},
		{ID: "UGONE", Name: "gone", Email: "gone@corp.example.com", Deleted: true},
		{ID: "UNOMAIL", Name: "nomail"},
		{ID: "UOUTSIDE", Name: "eve", Email: "eve@gmail.com"},
		{ID: "UBADNAME", Name: "weird", Email: "a+b@corp.example.com"},
		{ID: "ULONGNAME", Name: "long", Email: strings.Repeat("x", 65) + "@corp.example.com"},
		{ID: "UADMIN", Name: "administrator", Email: "Administrator@corp.example.com"},
		{ID: "UWIDE", Name: "wide", Email: "ａｄｍｉｎｉｓｔｒａｔｏｒ@corp.example.com"},
		{ID: "UZWSP", Name: "zwsp", Email: "admin\u200bistrator@corp.example.com"},
		{ID: "UMACHINE", Name: "dc01", Email: "dc01$@corp.example.com"},
	} {
		w.slack.AddUser(u)
	}
	w.slack.AddChannel(slacktest.Channel{ID: auditChannel, Name: "resetbot-audit", Private: true, Member: true})
	// The employee is in the approver group too: they must never be asked
	// to approve their own request.
	w.slack.AddUserGroup("S0HELPDESK", approver2, employee)
	for _, u := range []string{"alice", "bob", "carol", "dave", "administrator"} {
		w.ds.AddUser(u)
	}
	w.ds.SetDisplayName("alice", "Alice Smith")

	w.prefix = fmt.Sprintf("resetbot-test:%s:%d:", t.Name(), time.Now().UnixNano())
	w.useRedis(redisURL)
	w.vars = map[string]string{
		"SLACK_BOT_TOKEN":                    slacktest.BotToken,
		"SLACK_APP_TOKEN":                    slacktest.AppToken,
		"SLACK_API_URL":                      w.slack.APIURL(),
		"DIRECTORY_ID":                       testDirectory,
		"AWS_REGION":                         "us-east-1",
		"AWS_ENDPOINT_URL_DIRECTORY_SERVICE": w.ds.URL(),
		"AWS_ACCESS_KEY_ID":                  "AKIDTEST",
		"AWS_SECRET_ACCESS_KEY":              "test-secret",
		"AWS_MAX_ATTEMPTS":                   "2",
		"REDIS_URL":                          redisURL,
		"REDIS_KEY_PREFIX":                   w.prefix,
		"APPROVERS":                          approver1 + ",S0HELPDESK",
		"ALLOWED_EMAIL_DOMAINS":              "corp.example.com",
		"AUDIT_CHANNEL":                      auditChannel,
		"HTTP_ADDR":                          "127.0.0.1:0",
		"LOG_LEVEL":                          "debug",
		"SWEEP_INTERVAL":                     "100ms",
		"ALLOW_INSECURE_ENDPOINTS":           "true", // the test servers speak plain http
		"ALLOW_UNCHECKED_ACCOUNTS":           "true", // tests with LDAP (ad_test.go) remove it
	}
	return w
}

// useRedis points the world (and the bots started after) at the Redis at
// url, and removes the world's keys there when the test ends.
func (w *world) useRedis(url string) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		w.t.Fatal(err)
	}
	client := redis.NewClient(opts)
	w.t.Cleanup(func() {
		ctx := context.Background()
		iter := client.Scan(ctx, 0, redisstore.KeyPrefix(w.prefix)+"*", 1000).Iterator()
		for iter.Next(ctx) {
			client.Del(ctx, iter.Val())
		}
		client.Close()
	})
	w.redis = client
	// The key config.SealKey derives from the app token without STATE_KEY.
	w.store = redisstore.New(client, w.prefix, seal.Derive(slacktest.AppToken, "requests"))
	if w.vars != nil {
		w.vars["REDIS_URL"] = url
	}
}

// testBot is one running bot (a replica) in a world.
type testBot struct {
	w      *world
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

// start runs a bot with the world's settings and waits until it is
// connected to Socket Mode.
func (w *world) start() *testBot {
	w.t.Helper()
	vars := make(map[string]string, len(w.vars))
	for k, v := range w.vars {
		vars[k] = v
	}
	before := w.slack.TotalConnections()
	ctx, cancel := context.WithCancel(context.Background())
	b := &testBot{w: w, logs: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	w.bots = append(w.bots, b.logs)
	go func() { b.done <- run(ctx, []string{"bot"}, func(k string) string { return vars[k] }, b.logs) }()
	w.t.Cleanup(b.stop)
	w.wait("the bot to connect", func() bool { return w.slack.TotalConnections() > before })
	w.wait("the bot to report itself connected", func() bool { return strings.Contains(b.logs.String(), "connected to Slack") })
	return b
}

// stop shuts the bot down as SIGTERM would and checks it ended cleanly.
func (b *testBot) stop() {
	if b.cancel == nil {
		return
	}
	b.cancel()
	b.cancel = nil
	select {
	case err := <-b.done:
		if err != nil {
			b.w.t.Errorf("bot ended with %v", err)
		}
	case <-time.After(waitLong):
		b.w.t.Errorf("bot did not stop within %v", waitLong)
	}
}

func (w *world) wait(what string, cond func() bool) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := w.slack.WaitFor(ctx, cond); err != nil {
		for i, logs := range w.bots {
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			w.t.Logf("bot %d, last log lines:\n%s", i, strings.Join(lines[max(0, len(lines)-25):], "\n"))
		}
		w.t.Fatalf("timed out waiting for %s", what)
	}
}

// command types /reset-password text as user and returns the bot's private
// answer.
func (w *world) command(user, text string) string {
	w.t.Helper()
	env := w.slack.SlashCommand(user, text)
	return w.reply(env)
}

// reply waits for the ack and the private answer to an envelope.
func (w *world) reply(env string) string {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if _, err := w.slack.WaitAck(ctx, env); err != nil {
		w.t.Fatalf("envelope %s not acked", env)
	}
	r, err := w.slack.WaitReply(ctx, env)
	if err != nil {
		w.t.Fatalf("no answer to envelope %s", env)
	}
	if r.ResponseType != "ephemeral" {
		w.t.Fatalf("answer is not ephemeral: %+v", r)
	}
	return r.Text
}

// click clicks a button and returns the envelope ID.
func (w *world) click(user, action, value string, msg slacktest.Message) string {
	return w.slack.Click(slacktest.Click{User: user, ActionID: action, Value: value, Channel: msg.Channel, MessageTS: msg.TS})
}

// clickReply clicks and waits for the private answer (clicks that change
// nothing get one).
func (w *world) clickReply(user, action, value string, msg slacktest.Message) string {
	w.t.Helper()
	return w.reply(w.click(user, action, value, msg))
}

// clickAcked clicks and waits for the ack only.
func (w *world) clickAcked(user, action, value string, msg slacktest.Message) {
	w.t.Helper()
	env := w.click(user, action, value, msg)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if _, err := w.slack.WaitAck(ctx, env); err != nil {
		w.t.Fatalf("click not acked")
	}
}

var idRe = regexp.MustCompile(`R[a-z2-7]{24}`)

// open returns user's open request from the store.
func (w *world) open(user string) *workflow.Request {
	w.t.Helper()
	r, err := w.store.Open(context.Background(), user)
	if err != nil {
		w.t.Fatalf("open request of %s: %v", user, err)
	}
	return r
}

func (w *world) get(id string) *workflow.Request {
	w.t.Helper()
	r, err := w.store.Get(context.Background(), id)
	if err != nil {
		w.t.Fatalf("request %s: %v", id, err)
	}
	return r
}

// waitStatus waits until request id has status and chat was told all
// about it.
func (w *world) waitStatus(id string, st workflow.Status) *workflow.Request {
	w.t.Helper()
	var r *workflow.Request
	w.wait(fmt.Sprintf("request %s to be %s", id, st), func() bool {
		got, err := w.store.Get(context.Background(), id)
		if err == nil {
			r = got
		}
		return err == nil && got.Status == st && w.settled(got)
	})
	return r
}

// laneDue reports whether lane l has work left: due now or later (a
// lease, a retry, a coalescing window).
func (w *world) laneDue(l delivery.Lane) bool {
	w.t.Helper()
	lanes, err := w.store.DueLanes(context.Background(), time.Now().Add(24*time.Hour), 0)
	if err != nil {
		w.t.Fatal(err)
	}
	return slices.Contains(lanes, l)
}

// settled reports whether chat was told all about r: none of its lanes
// (the employee's, the audit channel's, its approvers' queues) has work
// left.
func (w *world) settled(r *workflow.Request) bool {
	w.t.Helper()
	for _, m := range delivery.Marks(r, 0) {
		if w.laneDue(m.Lane) {
			return false
		}
	}
	return true
}

// hasButton reports whether m has a button with action ID action.
func hasButton(m slacktest.Message, action string) bool {
	return strings.Contains(string(m.Blocks), `"action_id":"`+action+`"`)
}

// buttonMessage waits for the newest message in channel with a button
// action and returns it.
func (w *world) buttonMessage(channel, action string) slacktest.Message {
	w.t.Helper()
	var found slacktest.Message
	w.wait("a message with a "+action+" button in "+channel, func() bool {
		msgs := w.slack.Messages(channel)
		for i := len(msgs) - 1; i >= 0; i-- {
			if hasButton(msgs[i], action) {
				found = msgs[i]
				return true
			}
		}
		return false
	})
	return found
}

// message returns the current state of a message.
func (w *world) message(m slacktest.Message) slacktest.Message {
	w.t.Helper()
	got, ok := w.slack.Message(m.Channel, m.TS)
	if !ok {
		w.t.Fatalf("message %s/%s is gone", m.Channel, m.TS)
	}
	return got
}

// blocksText returns the visible text of a message.
func blocksText(m slacktest.Message) string {
	var blocks any
	_ = json.Unmarshal(m.Blocks, &blocks)
	var b strings.Builder
	b.WriteString(m.Text)
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if t, ok := x["text"].(string); ok {
				b.WriteString("\n" + t)
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(blocks)
	return b.String()
}

// passwordMessages returns the messages that showed a password, oldest
// first: the ephemeral answers to Reveal clicks (their response_url) and
// chat.postEphemeral's fallback.
func (w *world) passwordMessages() []slacktest.Message {
	var out []slacktest.Message
	for _, c := range w.slack.Changes(0) {
		if (c.Kind == slacktest.ChangeResponded || c.Kind == slacktest.ChangeEphemeral) && passwordRe.MatchString(blocksText(c.Message)) {
			out = append(out, c.Message)
		}
	}
	return out
}

// passwordIn extracts the password from the ephemeral password message.
var passwordRe = regexp.MustCompile("```([^`]+)```")

func passwordIn(t *testing.T, m slacktest.Message) string {
	t.Helper()
	got := passwordRe.FindStringSubmatch(blocksText(m))
	if got == nil {
		t.Fatalf("no password in %s", blocksText(m))
	}
	return got[1]
}

// dmTexts returns the visible texts of the messages in user's DM.
func (w *world) dmTexts(user string) string {
	var b strings.Builder
	for _, m := range w.slack.Messages(slacktest.DMChannel(user)) {
		b.WriteString(blocksText(m) + "\n---\n")
	}
	return b.String()
}

// auditThread returns the audit parent of request id and its replies.
func (w *world) auditThread(id string) (slacktest.Message, []slacktest.Message) {
	w.t.Helper()
	var parent slacktest.Message
	var replies []slacktest.Message
	for _, m := range w.slack.Messages(auditChannel) {
		// The first: an alert about the request (This wasn't me) comes later.
		if m.ThreadTS == "" && strings.Contains(blocksText(m), id) {
			parent = m
			break
		}
	}
	if parent.TS == "" {
		w.t.Fatalf("no audit parent for %s", id)
	}
	for _, m := range w.slack.Messages(auditChannel) {
		if m.ThreadTS == parent.TS {
			replies = append(replies, m)
		}
	}
	return parent, replies
}

// auditSteps counts the steps in audit replies: one line each, starting
// with its time; a reply may carry several.
func auditSteps(replies []slacktest.Message) int {
	n := 0
	for _, m := range replies {
		for _, line := range strings.Split(m.Text, "\n") {
			if strings.HasPrefix(line, "<!date^") && strings.Contains(line, "> · ") {
				n++
			}
		}
	}
	return n
}

// denyModal has approver press Deny on msg and returns the modal that
// opened (deny, with its optional reason) and the click's envelope.
func (w *world) denyModal(approver, id string, msg slacktest.Message) (slacktest.View, string) {
	w.t.Helper()
	before := len(w.slack.Views(approver))
	env := w.click(approver, slackapp.ActionDeny, id, msg)
	var v slacktest.View
	w.wait("the deny modal of "+approver, func() bool {
		vs := w.slack.Views(approver)
		if len(vs) > before {
			v = vs[len(vs)-1]
		}
		return v.CallbackID == slackapp.CallbackDeny
	})
	return v, env
}

// submit submits modal v with reason in its reason input and waits for
// the ack; it returns the ack's payload.
func (w *world) submit(v slacktest.View, reason string) string {
	w.t.Helper()
	env := w.slack.SubmitView(v, map[string]map[string]string{"reason": {"reason": reason}})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	payload, err := w.slack.WaitAck(ctx, env)
	if err != nil {
		w.t.Fatalf("view submission not acked")
	}
	return string(payload)
}

// deny has approver deny request id from msg, with reason ("" for none).
func (w *world) deny(approver, id string, msg slacktest.Message, reason string) {
	w.t.Helper()
	v, _ := w.denyModal(approver, id, msg)
	if ack := w.submit(v, reason); ack != "" && ack != "null" {
		w.t.Fatalf("the deny modal stayed open: %s", ack)
	}
}
