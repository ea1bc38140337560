package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/example/resetbot/internal/slacktest"
	"github.com/example/resetbot/slackapp"
	redisstore "github.com/example/resetbot/store/redisstore"
	"github.com/example/resetbot/workflow"
)

// request makes the employee ask for a reset and returns the request and
// the approvers' DMs.
func (w *world) request() (*workflow.Request, map[string]slacktest.Message) {
	w.t.Helper()
	answer := w.command(employee, "")
	id := idRe.FindString(answer)
	if id == "" {
		w.t.Fatalf("no request ID in the answer: %s", answer)
	}
	for _, want := range []string{"`alice`", "<@" + approver1 + ">", "<@" + approver2 + ">", "<!date^"} {
		if !strings.Contains(answer, want) {
			w.t.Errorf("answer lacks %q: %s", want, answer)
		}
	}
	if strings.Contains(answer, "<@"+employee+">") {
		w.t.Errorf("the employee was named as their own approver: %s", answer)
	}
	dms := map[string]slacktest.Message{}
	for _, a := range []string{approver1, approver2} {
		dms[a] = w.buttonMessage(slacktest.DMChannel(a), slackapp.ActionApprove)
	}
	r := w.waitStatus(id, workflow.StatusPending)
	return r, dms
}

// approve has approver1 approve and returns the employee's Reveal DM.
func (w *world) approve(r *workflow.Request, dms map[string]slacktest.Message) slacktest.Message {
	w.t.Helper()
	w.clickAcked(approver1, slackapp.ActionApprove, r.ID, dms[approver1])
	w.waitStatus(r.ID, workflow.StatusApproved)
	return w.buttonMessage(slacktest.DMChannel(employee), slackapp.ActionReveal)
}

func TestHappyPath(t *testing.T) {
	w := newWorld(t)
	bot := w.start()
	r, dms := w.request()
	if len(w.slack.Messages(slacktest.DMChannel(employee))) != 0 {
		t.Fatalf("the employee got a DM before approval: %s", w.dmTexts(employee))
	}
	if r.Account.UserName != "alice" || r.DirectoryID != testDirectory || fmt.Sprint(r.Approvers) != "[UAPP1 UAPP2]" {
		t.Fatalf("request %+v", r)
	}

	reveal := w.approve(r, dms)
	for a, m := range dms {
		m = w.message(m)
		if hasButton(m, slackapp.ActionApprove) || !strings.Contains(blocksText(m), "Approved by <@"+approver1+">") {
			t.Errorf("%s's DM after approval: %s", a, blocksText(m))
		}
	}
	w.clickAcked(employee, slackapp.ActionReveal, r.ID, reveal)
	done := w.waitStatus(r.ID, workflow.StatusCompleted)

	eph := w.passwordMessages()
	if len(eph) != 1 || eph[0].User != employee || eph[0].Channel != slacktest.DMChannel(employee) || !eph[0].Ephemeral {
		t.Fatalf("ephemeral messages: %+v", eph)
	}
	// The answer to the Reveal click, through its response_url: no
	// chat.postEphemeral spent on it.
	if n := len(w.slack.Calls("chat.postEphemeral")); n != 0 {
		t.Errorf("%d chat.postEphemeral calls; want the password as the click's answer", n)
	}
	got := passwordIn(t, eph[0])
	set, ok := w.ds.Password("alice")
	if !ok || got != set {
		t.Fatalf("the employee got %q but the directory got %q", got, set)
	}
	if calls := w.ds.ResetCalls(); len(calls) != 1 || calls[0].UserName != "alice" || calls[0].DirectoryID != testDirectory {
		t.Fatalf("reset calls: %+v", calls)
	}
	if m := w.message(reveal); hasButton(m, slackapp.ActionReveal) || !strings.Contains(blocksText(m), "Password reset at") {
		t.Errorf("reveal message after the reset: %s", blocksText(m))
	}
	parent, replies := w.auditThread(r.ID)
	if !strings.Contains(blocksText(parent), "completed") {
		t.Errorf("audit parent: %s", blocksText(parent))
	}
	var thread []string
	for _, m := range replies {
		thread = append(thread, blocksText(m))
	}
	all := strings.Join(thread, "\n")
	for _, want := range []string{"requested a reset of `alice`", "Approved by <@UAPP1>", "clicked Reveal", "Password reset"} {
		if !strings.Contains(all, want) {
			t.Errorf("audit thread lacks %q:\n%s", want, all)
		}
	}
	if n := auditSteps(replies); n != len(done.Events) {
		t.Errorf("%d steps in the audit thread for %d events", n, len(done.Events))
	}
	bot.stop()
}

func TestDeny(t *testing.T) {
	w := newWorld(t)
	w.start()
	r, dms := w.request()
	w.deny(approver2, r.ID, dms[approver2], "")
	w.waitStatus(r.ID, workflow.StatusDenied)
	if txt := w.dmTexts(employee); !strings.Contains(txt, "denied your request") {
		t.Fatalf("employee not told: %s", txt)
	}
	for _, m := range dms {
		if m = w.message(m); hasButton(m, slackapp.ActionApprove) || !strings.Contains(blocksText(m), "Denied by <@"+approver2+">") {
			t.Errorf("approver DM after deny: %s", blocksText(m))
		}
	}
	ans := w.clickReply(approver1, slackapp.ActionApprove, r.ID, dms[approver1])
	if !strings.Contains(ans, "already denied by <@"+approver2+">") {
		t.Fatalf("late approve answered: %s", ans)
	}
	if got := w.get(r.ID); got.Status != workflow.StatusDenied || len(w.ds.ResetCalls()) != 0 {
		t.Fatalf("after a late approve: %s, %d resets", got.Status, len(w.ds.ResetCalls()))
	}
	if strings.Contains(w.command(employee, "status"), r.ID) {
		t.Fatal("a denied request is still open")
	}
}

func TestExpiryOfTheDecisionWindow(t *testing.T) {
	w := newWorld(t)
	w.vars["REQUEST_TTL"] = "1500ms"
	w.vars["REMIND_AFTER"] = "off" // it must be shorter than REQUEST_TTL
	w.start()
	r, dms := w.request()
	w.waitStatus(r.ID, workflow.StatusExpired)
	if txt := w.dmTexts(employee); !strings.Contains(txt, "Nobody approved your request") {
		t.Fatalf("employee not told: %s", txt)
	}
	for _, m := range dms {
		if m = w.message(m); hasButton(m, slackapp.ActionApprove) || !strings.Contains(blocksText(m), "Expired") {
			t.Errorf("approver DM after expiry: %s", blocksText(m))
		}
	}
	if ans := w.clickReply(approver1, slackapp.ActionApprove, r.ID, dms[approver1]); !strings.Contains(ans, "this request already expired") {
		t.Fatalf("approve after expiry: %s", ans)
	}
	_, replies := w.auditThread(r.ID)
	if !strings.Contains(blocksText(replies[len(replies)-1]), "nobody decided in time") {
		t.Errorf("audit: %s", blocksText(replies[len(replies)-1]))
	}
}

func TestExpiryOfTheRevealWindow(t *testing.T) {
	w := newWorld(t)
	w.vars["REVEAL_TTL"] = "1500ms"
	w.start()
	r, dms := w.request()
	reveal := w.approve(r, dms)
	w.waitStatus(r.ID, workflow.StatusExpired)
	if txt := w.dmTexts(employee); !strings.Contains(txt, "did not reveal your temporary password in time") {
		t.Fatalf("employee not told: %s", txt)
	}
	if m := w.message(reveal); hasButton(m, slackapp.ActionReveal) {
		t.Fatal("the Reveal button survived expiry")
	}
	if ans := w.clickReply(employee, slackapp.ActionReveal, r.ID, reveal); !strings.Contains(ans, "this request already expired") {
		t.Fatalf("reveal after expiry: %s", ans)
	}
	if len(w.ds.ResetCalls()) != 0 || len(w.passwordMessages()) != 0 {
		t.Fatal("a password was set after expiry")
	}
}

func TestCancelAndStatus(t *testing.T) {
	w := newWorld(t)
	w.start()
	if ans := w.command(employee, "status"); !strings.Contains(ans, "no open password reset request") {
		t.Fatalf("status without request: %s", ans)
	}
	if ans := w.command(employee, "cancel"); !strings.Contains(ans, "no open password reset request") {
		t.Fatalf("cancel without request: %s", ans)
	}
	r, dms := w.request()
	if ans := w.command(employee, " STATUS "); !strings.Contains(ans, r.ID) || !strings.Contains(ans, "waiting for approval") {
		t.Fatalf("status: %s", ans)
	}
	if ans := w.command(employee, ""); !strings.Contains(ans, "already have an open request") || !strings.Contains(ans, r.ID) {
		t.Fatalf("second request: %s", ans)
	}
	if ans := w.command(employee, "cancel"); !strings.Contains(ans, "Cancelled your request") {
		t.Fatalf("cancel: %s", ans)
	}
	w.waitStatus(r.ID, workflow.StatusCancelled)
	for _, m := range dms {
		if m = w.message(m); hasButton(m, slackapp.ActionApprove) || !strings.Contains(blocksText(m), "Cancelled") {
			t.Errorf("approver DM after cancel: %s", blocksText(m))
		}
	}
	if ans := w.clickReply(approver1, slackapp.ActionApprove, r.ID, dms[approver1]); !strings.Contains(ans, "this request was already cancelled") {
		t.Fatalf("approve after cancel: %s", ans)
	}
	if ans := w.command(employee, "status"); !strings.Contains(ans, "no open password reset request") {
		t.Fatalf("status after cancel: %s", ans)
	}
	if ans := w.command(employee, "help"); !strings.Contains(ans, "/reset-password status") {
		t.Fatalf("help: %s", ans)
	}
}

// TestDirectoryExceptions: each ResetUserPassword exception ends the
// request as failed, with its own message to the employee and a detailed
// line for helpdesk; transient ones are retried first.
func TestDirectoryExceptions(t *testing.T) {
	tests := []struct {
		exception string
		code      workflow.Code
		calls     int // with AWS_MAX_ATTEMPTS=2
	}{
		{"UserDoesNotExistException", workflow.CodeUserDoesNotExist, 1},
		{"InvalidPasswordException", workflow.CodeInvalidPassword, 2}, // once more with a longer password
		{"DirectoryUnavailableException", workflow.CodeDirectoryUnavailable, 2},
		{"UnsupportedOperationException", workflow.CodeUnsupportedOperation, 1},
		{"EntityDoesNotExistException", workflow.CodeDirectoryDoesNotExist, 1},
		{"ClientException", workflow.CodeDirectoryClient, 1},
		{"ServiceException", workflow.CodeDirectoryService, 2},
		{"ThrottlingException", workflow.CodeDirectoryThrottled, 2},
		{"AccessDeniedException", workflow.CodeDirectoryAccessDenied, 1},
	}
	w := newWorld(t)
	w.vars["REQUEST_LIMIT"] = "100"
	w.start()
	for _, tt := range tests {
		t.Run(tt.exception, func(t *testing.T) {
			w.t = t
			before := len(w.ds.ResetCalls())
			w.ds.FailUser("alice", tt.exception)
			defer w.ds.FailUser("alice", "")
			r, dms := w.request()
			reveal := w.approve(r, dms)
			w.clickAcked(employee, slackapp.ActionReveal, r.ID, reveal)
			got := w.waitStatus(r.ID, workflow.StatusFailed)
			if got.Failure != tt.code {
				t.Fatalf("failure %s, want %s", got.Failure, tt.code)
			}
			if n := len(w.ds.ResetCalls()) - before; n != tt.calls {
				t.Errorf("%d ResetUserPassword calls, want %d", n, tt.calls)
			}
			if txt := w.dmTexts(employee); !strings.Contains(txt, slackapp.FailureText(tt.code)) {
				t.Errorf("employee not told %q:\n%s", slackapp.FailureText(tt.code), txt)
			}
			_, replies := w.auditThread(r.ID)
			last := blocksText(replies[len(replies)-1])
			if !strings.Contains(last, string(tt.code)) || !strings.Contains(last, tt.exception) {
				t.Errorf("audit line lacks the code or exception: %s", last)
			}
			if len(w.passwordMessages()) != 0 {
				t.Error("a password was shown after a failed reset")
			}
		})
	}
	w.t = t
}

func TestInvalidPasswordRetriedLonger(t *testing.T) {
	w := newWorld(t)
	w.start()
	w.ds.FailNext("InvalidPasswordException", 1)
	r, dms := w.request()
	reveal := w.approve(r, dms)
	w.clickAcked(employee, slackapp.ActionReveal, r.ID, reveal)
	w.waitStatus(r.ID, workflow.StatusCompleted)
	calls := w.ds.ResetCalls()
	if len(calls) != 2 || len(calls[1].NewPassword) <= len(calls[0].NewPassword) {
		t.Fatalf("calls %d, lengths %d then %d", len(calls), len(calls[0].NewPassword), len(calls[len(calls)-1].NewPassword))
	}
	if got := passwordIn(t, w.passwordMessages()[0]); got != calls[1].NewPassword {
		t.Fatal("the employee did not get the password that was set")
	}
}

// TestClicksThatChangeNothing: the wrong people and forged values get a
// clear answer and change nothing.
func TestClicksThatChangeNothing(t *testing.T) {
	w := newWorld(t)
	w.start()
	r, dms := w.request()
	ownDM := slacktest.Message{Channel: slacktest.DMChannel(employee)}
	cases := []struct {
		name, user, action, value, want string
	}{
		{"self approval", employee, slackapp.ActionApprove, r.ID, "cannot approve or deny your own"},
		{"self denial", employee, slackapp.ActionDeny, r.ID, "cannot approve or deny your own"},
		{"non-approver", stranger, slackapp.ActionApprove, r.ID, "not an approver"},
		{"reveal before approval", employee, slackapp.ActionReveal, r.ID, "not been approved yet"},
		{"forged ID", approver1, slackapp.ActionApprove, "Raaaaaaaaaaaaaaaaaaaaaaaa", "don't know that request"},
		{"garbage value", approver1, slackapp.ActionApprove, "../../etc/passwd", "don't know that request"},
		{"empty value", approver1, slackapp.ActionDeny, "", "don't know that request"},
	}
	for _, c := range cases {
		msg := dms[approver1]
		if c.user == employee || c.user == stranger {
			msg = ownDM
		}
		if ans := w.clickReply(c.user, c.action, c.value, msg); !strings.Contains(ans, c.want) {
			t.Errorf("%s: answer %q lacks %q", c.name, ans, c.want)
		}
		if got := w.get(r.ID); got.Status != workflow.StatusPending || len(got.Events) != 1 {
			t.Fatalf("%s changed the request: %s, %d events", c.name, got.Status, len(got.Events))
		}
	}
	reveal := w.approve(r, dms)
	if ans := w.clickReply(approver2, slackapp.ActionDeny, r.ID, dms[approver2]); !strings.Contains(ans, "already approved by <@"+approver1+">") {
		t.Errorf("click after the decision: %s", ans)
	}
	for _, u := range []string{stranger, approver1} {
		if ans := w.clickReply(u, slackapp.ActionReveal, r.ID, reveal); !strings.Contains(ans, "Only the person who asked") {
			t.Errorf("reveal by %s: %s", u, ans)
		}
	}
	if got := w.get(r.ID); got.Status != workflow.StatusApproved || len(w.ds.ResetCalls()) != 0 {
		t.Fatalf("after refused clicks: %s, %d resets", got.Status, len(w.ds.ResetCalls()))
	}
}

// TestDoubleClicks: two approvers at once (one approving, twice, the
// other denying through the deny modal and approving) and a double click
// give one decision; a double Reveal gives one reset.
func TestDoubleClicks(t *testing.T) {
	w := newWorld(t)
	w.start()
	r, dms := w.request()
	denial, denyClick := w.denyModal(approver2, r.ID, dms[approver2])
	envs := []string{denyClick} // the denial is answered through its click's response_url
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range []struct{ user, action string }{
		{approver1, slackapp.ActionApprove}, {approver1, slackapp.ActionApprove},
		{approver2, "submit the deny modal"}, {approver2, slackapp.ActionApprove},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c.action != slackapp.ActionApprove {
				w.slack.SubmitView(denial, map[string]map[string]string{"reason": {"reason": "not now"}})
				return
			}
			e := w.click(c.user, c.action, r.ID, dms[c.user])
			mu.Lock()
			envs = append(envs, e)
			mu.Unlock()
		}()
	}
	wg.Wait()
	w.wait("every click to be answered or acked", func() bool {
		answered, replaced := 0, 0
		for _, e := range envs {
			for _, p := range w.slack.Replies(e) {
				if p.ReplaceOriginal {
					replaced++
				} else {
					answered++
				}
			}
		}
		// One click won; the three others were told why nothing changed.
		// The winner's message is redrawn through the response_url of a
		// click on it; the other approver's too when their click came
		// before the decision was drawn (else with chat.update).
		return answered == 3 && replaced >= 1
	})
	w.wait("both approvers' messages to show the decision", func() bool {
		return !hasButton(w.message(dms[approver1]), slackapp.ActionApprove) && !hasButton(w.message(dms[approver2]), slackapp.ActionApprove)
	})
	got := w.get(r.ID)
	decisions := 0
	for _, ev := range got.Events {
		if ev.Kind == workflow.EventApproved || ev.Kind == workflow.EventDenied {
			decisions++
		}
	}
	if decisions != 1 || got.DecidedBy == "" {
		t.Fatalf("%d decisions: %+v", decisions, got.Events)
	}
	if got.Status == workflow.StatusDenied {
		return
	}
	reveal := w.buttonMessage(slacktest.DMChannel(employee), slackapp.ActionReveal)
	e1 := w.click(employee, slackapp.ActionReveal, r.ID, reveal)
	e2 := w.click(employee, slackapp.ActionReveal, r.ID, reveal)
	w.waitStatus(r.ID, workflow.StatusCompleted)
	w.wait("both reveal clicks acked", func() bool {
		_, a := w.slack.Ack(e1)
		_, b := w.slack.Ack(e2)
		return a && b
	})
	time.Sleep(200 * time.Millisecond) // let a wrongly second reset show up
	if n := len(w.ds.ResetCalls()); n != 1 {
		t.Fatalf("%d resets for one request", n)
	}
	if n := len(w.passwordMessages()); n != 1 {
		t.Fatalf("%d password messages", n)
	}
}

// TestBadInput: odd command text and users the bot cannot serve get a
// clear answer, and nothing is created.
func TestBadInput(t *testing.T) {
	w := newWorld(t)
	w.start()
	long := strings.Repeat("x", 500)
	for _, text := range []string{"reset bob", "<!channel>", "`whoami`", "status please", long, "cancel cancel"} {
		ans := w.command(employee, text)
		if !strings.Contains(ans, "I don't know the option") || !strings.Contains(ans, "/reset-password status") {
			t.Errorf("text %q answered %q", text, ans)
		}
		if strings.Contains(ans, "<!channel>") || strings.Contains(ans, long) {
			t.Errorf("text %q echoed unsafely: %q", text, ans)
		}
	}
	users := map[string]workflow.Code{
		"UNKNOWN":   workflow.CodeUnknownUser,
		"UGUEST":    workflow.CodeIneligibleUser,
		"USINGLE":   workflow.CodeIneligibleUser,
		"UROBOT":    workflow.CodeIneligibleUser,
		"UGONE":     workflow.CodeIneligibleUser,
		"UNOMAIL":   workflow.CodeNoEmail,
		"UOUTSIDE":  workflow.CodeEmailDomain,
		"UBADNAME":  workflow.CodeInvalidUserName,
		"ULONGNAME": workflow.CodeInvalidUserName,
		"UADMIN":    workflow.CodeProtectedAccount,
		"UWIDE":     workflow.CodeProtectedAccount, // full-width letters
		"UZWSP":     workflow.CodeInvalidUserName,  // a zero-width space
		"UMACHINE":  workflow.CodeMachineAccount,   // a name ending in $
	}
	for user, code := range users {
		if ans := w.command(user, ""); ans != slackapp.ErrorText(workflow.Errorf(code, ""), nil) {
			t.Errorf("%s: answered %q, want the %s message", user, ans, code)
		}
	}
	ctx := context.Background()
	if keys, _ := w.redis.Keys(ctx, redisstore.KeyPrefix(w.prefix)+"req:*").Result(); len(keys) != 0 {
		t.Fatalf("requests were created: %v", keys)
	}
	for _, a := range []string{approver1, approver2} {
		if n := len(w.slack.Messages(slacktest.DMChannel(a))); n != 0 {
			t.Fatalf("approver %s got %d DMs", a, n)
		}
	}
	// Each refusal is one line in the audit channel, naming the user and
	// the code; asking again does not repeat it.
	for user := range users {
		w.command(user, "")
	}
	w.wait("one audit line per refused user", func() bool { return len(w.slack.Messages(auditChannel)) >= len(users) })
	audit := w.slack.Messages(auditChannel)
	if len(audit) != len(users) {
		t.Fatalf("%d audit messages for %d refused users", len(audit), len(users))
	}
	for user, code := range users {
		found := false
		for _, m := range audit {
			txt := blocksText(m)
			found = found || strings.Contains(txt, "<@"+user+">") && strings.Contains(txt, "refused (`"+string(code)+"`)")
		}
		if !found {
			t.Errorf("no audit line for %s refused with %s", user, code)
		}
	}
	// Malformed frames and envelopes do not stop the bot.
	w.slack.SendRaw(-1, []byte(`{"envelope_id":`))
	w.slack.SendRaw(-1, []byte(`not json at all`))
	w.slack.Send("interactive", map[string]any{"type": "block_actions", "user": map[string]any{"id": approver1}, "actions": []any{}})
	w.slack.Send("interactive", map[string]any{"type": "block_actions", "user": map[string]any{"id": approver1},
		"actions": []any{map[string]any{"action_id": "self_destruct", "block_id": "b", "type": "button", "value": "x"}}})
	env := w.slack.Send("events_api", map[string]any{"type": "event_callback", "event": map[string]any{"type": "app_mention"}})
	ctx2, cancel := context.WithTimeout(ctx, waitLong)
	defer cancel()
	if _, err := w.slack.WaitAck(ctx2, env); err != nil {
		t.Fatal("an unhandled envelope was not acked")
	}
	if ans := w.command(employee, "help"); !strings.Contains(ans, "/reset-password cancel") {
		t.Fatalf("bot stopped answering after malformed input: %s", ans)
	}
}

// TestRateLimitPerEmployee: the fourth request within the window is
// refused.
func TestRateLimitPerEmployee(t *testing.T) {
	w := newWorld(t)
	w.start()
	for i := range 3 {
		r, _ := w.request()
		if ans := w.command(employee, "cancel"); !strings.Contains(ans, "Cancelled") {
			t.Fatalf("cancel %d: %s", i, ans)
		}
		w.waitStatus(r.ID, workflow.StatusCancelled)
	}
	if ans := w.command(employee, ""); ans != slackapp.ErrorText(workflow.Errorf(workflow.CodeRateLimited, ""), nil) {
		t.Fatalf("fourth request: %s", ans)
	}
}

// TestAckFirstThenWork: a slow directory does not delay the ack; the reset
// is still running when Slack gets it.
func TestAckFirstThenWork(t *testing.T) {
	w := newWorld(t)
	w.start()
	r, dms := w.request()
	reveal := w.approve(r, dms)
	w.ds.SetDelay(2 * time.Second)
	env := w.click(employee, slackapp.ActionReveal, r.ID, reveal)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if _, err := w.slack.WaitAck(ctx, env); err != nil {
		t.Fatal(err)
	}
	if got := w.get(r.ID); got.Status.Terminal() {
		t.Fatalf("the ack came after the work: %s", got.Status)
	}
	w.waitStatus(r.ID, workflow.StatusCompleted)
}

// getURL fetches path from the bot's health listener.
func getURL(t *testing.T, bot *testBot, path string) (int, string) {
	return getFrom(t, bot, "health", path)
}

// getFrom fetches path from the bot's listener ("health" or "metrics").
func getFrom(t *testing.T, bot *testBot, listener, path string) (int, string) {
	t.Helper()
	addr := regexp.MustCompile(`"msg":"` + listener + ` listening","addr":"([^"]+)"`).FindStringSubmatch(bot.logs.String())
	if addr == nil {
		t.Fatalf("no listening address in the logs:\n%s", bot.logs.String())
	}
	resp, err := http.Get("http://" + addr[1] + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHealthReadinessMetrics(t *testing.T) {
	w := newWorld(t)
	bot := w.start()
	get := func(path string) (int, string) { return getURL(t, bot, path) }
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("healthz %d %q", code, body)
	}
	if code, body := get("/readyz"); code != 200 {
		t.Fatalf("readyz %d %q", code, body)
	}
	r, dms := w.request()
	w.deny(approver2, r.ID, dms[approver2], "")
	w.waitStatus(r.ID, workflow.StatusDenied)
	r, dms = w.request()
	w.clickAcked(employee, slackapp.ActionReveal, r.ID, w.approve(r, dms))
	w.waitStatus(r.ID, workflow.StatusCompleted)
	w.command("UADMIN", "")
	_, metrics := get("/metrics")
	for _, want := range []string{
		`resetbot_request_events_total{code="",kind="requested"} 2`, `resetbot_request_events_total{code="",kind="denied"} 1`,
		`resetbot_requests_total{code="",outcome="denied"} 1`, `resetbot_requests_total{code="",outcome="completed"} 1`,
		"resetbot_time_to_decision_seconds_count 2", "resetbot_time_to_reveal_seconds_count 1", "resetbot_time_to_completion_seconds_count 1",
		`resetbot_directory_calls_total{result="ok"} 1`, `resetbot_slack_calls_total{method="chat.postMessage",result="ok"}`,
		`resetbot_slack_calls_total{method="users.info",result="ok"}`, "resetbot_slack_connections_total 1",
		"resetbot_requests_open 0", "resetbot_chat_calls_waiting 0", "resetbot_chat_lanes_pending 0", "go_goroutines",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// No label holds a user, an account or a request.
	for _, private := range []string{employee, approver1, "alice", "UADMIN", "dministrator", r.ID} {
		if strings.Contains(metrics, private) {
			t.Errorf("metrics show %q", private)
		}
	}
}

// TestMetricsAddr: METRICS_ADDR puts /metrics on its own listener and off
// the health one.
func TestMetricsAddr(t *testing.T) {
	w := newWorld(t)
	w.vars["METRICS_ADDR"] = "127.0.0.1:0"
	bot := w.start()
	if code, body := getFrom(t, bot, "metrics", "/metrics"); code != 200 || !strings.Contains(body, "resetbot_slack_connections_total 1") {
		t.Fatalf("metrics listener: %d\n%s", code, body)
	}
	if code, _ := getFrom(t, bot, "health", "/metrics"); code != 404 {
		t.Errorf("/metrics on the health listener: %d", code)
	}
	if code, _ := getFrom(t, bot, "health", "/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
}

func TestStartupRefusesBadConfiguration(t *testing.T) {
	var out syncBuffer
	env := map[string]string{"SLACK_BOT_TOKEN": "xoxb-secret-token-value", "DIRECTORY_ID": "d-12", "APPROVERS": "#helpdesk"}
	err := run(context.Background(), []string{"bot"}, func(k string) string { return env[k] }, &out)
	if err == nil {
		t.Fatal("started with a bad configuration")
	}
	for _, want := range []string{"SLACK_APP_TOKEN is required", `DIRECTORY_ID "d-12"`, "AWS_REGION is required", `APPROVERS entry "#helpdesk"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error()+out.String(), "secret-token-value") {
		t.Error("a secret was printed")
	}
	if err := run(context.Background(), []string{"bot", "frobnicate"}, func(string) string { return "" }, &out); err == nil || !strings.Contains(err.Error(), "unknown subcommand") {
		t.Errorf("unknown subcommand: %v", err)
	}
}

func TestStartupRefusesAWrongBotToken(t *testing.T) {
	w := newWorld(t)
	w.vars["SLACK_BOT_TOKEN"] = "xoxb-not-the-right-one"
	var out syncBuffer
	err := run(context.Background(), []string{"bot"}, func(k string) string { return w.vars[k] }, &out)
	if err == nil || !strings.Contains(err.Error(), "invalid_auth") || strings.Contains(err.Error(), "not-the-right-one") {
		t.Fatalf("start with a wrong token: %v", err)
	}
	// Like the app token's refusal, it says what to do.
	if want := "Slack refused SLACK_BOT_TOKEN (invalid_auth): set SLACK_BOT_TOKEN to the Bot User OAuth Token (xoxb-...) on the app's OAuth & Permissions page"; !strings.Contains(err.Error(), want) {
		t.Errorf("no fix line: %v\nwant %q", err, want)
	}
}

// TestRecipientsSlackRefusesDoNotBlockTheFlow: a deactivated approver and an
// audit channel the bot is not in are logged and skipped; everyone else is
// told and the reset completes.
func TestRecipientsSlackRefusesDoNotBlockTheFlow(t *testing.T) {
	w := newWorld(t)
	w.slack.RefuseChannel(auditChannel, "not_in_channel")
	bot := w.start()
	w.slack.RefuseChannel(slacktest.DMChannel(approver1), "user_disabled")
	answer := w.command(employee, "")
	id := idRe.FindString(answer)
	m := w.messageFor(slacktest.DMChannel(approver2), id, slackapp.ActionApprove)
	w.waitStatus(id, workflow.StatusPending)
	if n := len(w.slack.Messages(slacktest.DMChannel(approver1))); n != 0 {
		t.Fatalf("the refused approver got %d DMs", n)
	}
	w.clickAcked(approver2, slackapp.ActionApprove, id, m)
	w.waitStatus(id, workflow.StatusApproved)
	reveal := w.buttonMessage(slacktest.DMChannel(employee), slackapp.ActionReveal)
	w.clickAcked(employee, slackapp.ActionReveal, id, reveal)
	w.waitStatus(id, workflow.StatusCompleted)
	if len(w.passwordMessages()) != 1 {
		t.Fatal("no password")
	}
	for _, want := range []string{"not_in_channel", "user_disabled", "Slack refused a message for good"} {
		if !strings.Contains(bot.logs.String(), want) {
			t.Errorf("the log does not say %q", want)
		}
	}
}

// TestApproverGroupSlackCannotList: a user group Slack cannot list leaves
// the other approvers; with no approver left the employee is told.
func TestApproverGroupSlackCannotList(t *testing.T) {
	w := newWorld(t)
	w.start()
	w.slack.FailNext("usergroups.users.list", "no_such_subteam", 1)
	answer := w.command(employee, "")
	r := w.waitStatus(idRe.FindString(answer), workflow.StatusPending)
	if fmt.Sprint(r.Approvers) != "[UAPP1]" {
		t.Fatalf("approvers %v", r.Approvers)
	}

	w2 := newWorld(t)
	w2.vars["APPROVERS"] = "S0HELPDESK"
	w2.start()
	w2.slack.FailNext("usergroups.users.list", "no_such_subteam", 1)
	if ans := w2.command(employee, ""); !strings.Contains(ans, "Something went wrong on my side") {
		t.Fatalf("no approvers at all: %s", ans)
	}
	if _, err := w2.store.Open(context.Background(), employee); workflow.ErrorCode(err) != workflow.CodeNoOpenRequest {
		t.Fatalf("a request was created without approvers: %v", err)
	}
}

// TestDirectoryTimeout: a ResetUserPassword call that gets no answer in
// time may or may not have set the password; the employee is told so and
// Reveal is offered again, which sets a new one.
func TestDirectoryTimeout(t *testing.T) {
	w := newWorld(t)
	w.vars["WORK_LEASE"] = "2s" // the reset's work ends at 1.5s
	w.vars["AWS_MAX_ATTEMPTS"] = "1"
	w.start()
	r, dms := w.request()
	reveal := w.approve(r, dms)
	w.ds.SetDelay(5 * time.Second)
	w.clickAcked(employee, slackapp.ActionReveal, r.ID, reveal)
	w.wait("Reveal offered again", func() bool {
		got := w.get(r.ID)
		return got.Status == workflow.StatusApproved && got.LastEvent().Code == workflow.CodeDirectoryUncertain && w.settled(got)
	})
	if txt := w.dmTexts(employee); !strings.Contains(txt, "may or may not have changed") {
		t.Fatalf("employee not told:\n%s", txt)
	}
	w.ds.SetDelay(0)
	w.clickAcked(employee, slackapp.ActionReveal, r.ID, w.message(reveal))
	w.waitStatus(r.ID, workflow.StatusCompleted)
	set, _ := w.ds.Password("alice")
	if eph := w.passwordMessages(); len(eph) != 1 || passwordIn(t, eph[0]) != set {
		t.Fatal("the password shown is not the one the directory has")
	}
}
