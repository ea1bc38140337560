package main

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/example/resetbot/internal/slacktest"
	"github.com/example/resetbot/slackapp"
	redisstore "github.com/example/resetbot/store/redisstore"
	"github.com/example/resetbot/workflow"
)

// TestForgedRetryAfterCannotSilenceTheBot: someone who can write to the
// bot's Redis records and announces Retry-After windows of hours on the
// keys a flow needs (the lookups, the DMs, the updates) and on keys the
// bot does not use: the bot ignores them, logs each once, and a whole flow
// goes through at once. A window within the bound on a key the bot uses
// is still honoured.
func TestForgedRetryAfterCannotSilenceTheBot(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	hash := redisstore.KeyPrefix(w.prefix) + "slack-throttle"
	forge := func(key string, until time.Time) {
		t.Helper()
		ms := strconv.FormatInt(until.UnixMilli(), 10)
		if err := w.redis.HSet(ctx, hash, key, ms).Err(); err != nil {
			t.Fatal(err)
		}
		if err := w.redis.Publish(ctx, hash, ms+" "+key).Err(); err != nil {
			t.Fatal(err)
		}
	}
	hours := time.Now().Add(3 * time.Hour)
	// Read at start-up from the record.
	for _, key := range []string{"users.info", "conversations.open", "chat.postMessage:" + slacktest.DMChannel(approver1), "bogus", strings.Repeat("x", 300)} {
		forge(key, hours)
	}
	bot := w.start()
	start := time.Now()
	// Announced while the bot runs.
	for _, key := range []string{"chat.update", "chat.postEphemeral", "chat.postMessage:" + slacktest.DMChannel(employee), "chat.postMessage:#general"} {
		forge(key, hours)
	}
	honoured := time.Now().Add(3 * time.Second)
	forge("chat.postMessage:"+auditChannel, honoured)
	time.Sleep(200 * time.Millisecond) // the announcements arrive

	r, dms := w.request()
	reveal := w.approve(r, dms)
	w.clickAcked(employee, slackapp.ActionReveal, r.ID, reveal)
	w.waitStatus(r.ID, workflow.StatusCompleted)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the flow took %v under forged Retry-After windows", took)
	}
	if len(w.passwordMessages()) != 1 {
		t.Fatalf("%d password messages", len(w.passwordMessages()))
	}
	w.wait("the audit parent", func() bool { return len(w.slack.Messages(auditChannel)) > 0 })
	for _, c := range w.slack.Calls("chat.postMessage") {
		if c.Params.Get("channel") == auditChannel && c.At.Before(honoured.Add(-100*time.Millisecond)) {
			t.Errorf("the audit channel was posted to at %v, inside a shared window until %v", c.At.Format(time.StampMilli), honoured.Format(time.StampMilli))
		}
	}
	logs := bot.logs.String()
	for _, key := range []string{"users.info", "conversations.open", "chat.update", "bogus", "chat.postMessage:#general"} {
		if n := strings.Count(logs, fmt.Sprintf(`"key":%q`, key)); n != 1 {
			t.Errorf("the forged window of %s was logged %d times, want once", key, n)
		}
	}
	if strings.Contains(logs, strings.Repeat("x", 101)) {
		t.Error("a forged key was logged whole")
	}
	if strings.Contains(logs, `"key":"chat.postMessage:`+auditChannel+`"`) {
		t.Error("the honoured window was logged as ignored")
	}
}
