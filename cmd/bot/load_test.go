package main

// The load benchmark of docs/performance.md ("the Monday after a
// password-expiry wave", issue 7). Run it with
//
//	go test -run '^$' -bench 'Load|OpenRequests' -benchtime 1x -timeout 60m ./cmd/bot
//
// It runs the real bot binary as its own process (so that its CPU time and
// peak RSS can be read from /proc) against the Slack and Directory Service
// test servers and a real Redis, and prints a table per scenario.

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/example/resetbot/internal/slacktest"
	"github.com/example/resetbot/slackapp"
)

var (
	loadEmployees = flag.Int("load.n", 60, "load benchmark: employees who run /reset-password at once")
	loadApprovers = flag.Int("load.approvers", 10, "load benchmark: approvers in the many-approvers variant")
	loadManagers  = flag.Int("load.managers", 10, "load benchmark: managers in the managers variant (each employee's manager approves)")
	loadInterval  = flag.String("load.interval", "", "load benchmark: the bot's SLACK_MESSAGE_INTERVAL (empty: the bot's default)")
	loadTimeout   = flag.Duration("load.timeout", 8*time.Minute, "load benchmark: time allowed per scenario")
	loadOpen      = flag.Int("load.open", 10000, "BenchmarkOpenRequests: pending requests to create")
	loadThink     = flag.Duration("load.think", 0, "load benchmark: how long a person looks at a button before clicking it")
)

// loadScenario is one run of the Monday-morning burst.
type loadScenario struct {
	name      string
	limited   bool // Slack's rate limits on (slacktest.SlackLimits)
	approvers int  // 1: UAPP1 approves everything; more: all are asked, a random one clicks
	managers  int  // > 0: a Samba AD directory, APPROVER_SOURCE=manager, employees spread over this many managers
}

// BenchmarkLoad: N employees run /reset-password at once; an approver
// clicks Approve on each request as soon as its DM appears; each employee
// clicks Reveal as soon as their Reveal DM appears. Once with Slack
// answering instantly, once with Slack's rate limits; each with one
// approver and with many.
func BenchmarkLoad(b *testing.B) {
	for _, sc := range []loadScenario{
		{name: "instant/one-approver", approvers: 1},
		{name: "instant/many-approvers", approvers: *loadApprovers},
		{name: "limited/one-approver", limited: true, approvers: 1},
		{name: "limited/many-approvers", limited: true, approvers: *loadApprovers},
		{name: "instant/managers", managers: *loadManagers},
		{name: "limited/managers", limited: true, managers: *loadManagers},
	} {
		b.Run(sc.name, func(b *testing.B) {
			var res *loadResult
			for b.Loop() {
				res = runLoad(b, sc)
			}
			res.report(b)
		})
	}
}

// loadEmployee is one employee's side of a flow.
type loadEmployee struct {
	user       string
	env        string    // the slash command's envelope
	sent       time.Time // when the slash command was sent
	id         string    // the request ID from the bot's answer
	answer     string    // the bot's answer, when it has no request ID
	passwordAt time.Time // when the ephemeral password message was posted
}

// loadRequest is one request's side of a flow, as seen in Slack.
type loadRequest struct {
	id           string
	clicker      string    // the approver who clicks
	dmAt         time.Time // the clicker's DM was posted
	approveEnv   string
	approveAt    time.Time // Approve clicked
	approveFixed time.Time // the clicked DM lost its buttons
	revealDMAt   time.Time // the Reveal DM was posted
	revealEnv    string
	revealAt     time.Time // Reveal clicked
	revealFixed  time.Time // the Reveal DM lost its button
	revealShown  bool      // the Reveal DM shows its button
	revealAgain  int       // clicks on a Reveal button offered again
	auditDoneAt  time.Time // the audit parent showed an end state
	approverDMs  int       // approvers' DMs posted
}

// loadRun drives one scenario from the changes the Slack server journals.
type loadRun struct {
	w          *world
	sc         loadScenario
	approvers  []string
	isApprover map[string]bool
	employees  []*loadEmployee
	byUser     map[string]*loadEmployee
	requests   map[string]*loadRequest
	byMessage  map[string]*loadRequest // channel/ts of the clicked DMs
	rng        *rand.Rand
	seq        int

	auditPosts, auditUpdates int       // writes to the audit channel
	auditLast                time.Time // the last of them
	later                    []laterClick
}

// laterClick is a click a person makes once they have looked at the
// button for -load.think.
type laterClick struct {
	at    time.Time
	click func()
}

// click has user click the button action carrying id on message m, now or
// after -load.think; sent, when set, is told when and with which envelope.
func (r *loadRun) click(user, action, id string, m slacktest.Message, sent func(at time.Time, env string)) {
	click := func() {
		at := time.Now()
		env := r.w.slack.Click(slacktest.Click{User: user, ActionID: action, Value: id, Channel: m.Channel, MessageTS: m.TS})
		if sent != nil {
			sent(at, env)
		}
	}
	if *loadThink <= 0 {
		click()
		return
	}
	r.later = append(r.later, laterClick{time.Now().Add(*loadThink), click})
}

var endStateRe = regexp.MustCompile(`\b(completed|failed|denied|expired|cancelled)\b`)

func runLoad(b *testing.B, sc loadScenario) *loadResult {
	b.Helper()
	w := newWorld(b)
	n := *loadEmployees
	run := &loadRun{w: w, sc: sc, isApprover: map[string]bool{}, byUser: map[string]*loadEmployee{},
		requests: map[string]*loadRequest{}, byMessage: map[string]*loadRequest{}, rng: rand.New(rand.NewPCG(7, 7))}
	var employees []string
	switch {
	case sc.managers > 0:
		run.approvers, employees = useManagers(b, w, sc.managers, n)
	case sc.approvers <= 1:
		run.approvers = []string{approver1}
	default:
		for i := 1; i <= sc.approvers; i++ {
			id, name := fmt.Sprintf("UAPR%02d", i), fmt.Sprintf("approver%02d", i)
			w.slack.AddUser(slacktest.User{ID: id, Name: name, RealName: "Approver " + name, Email: name + "@corp.example.com"})
			run.approvers = append(run.approvers, id)
		}
	}
	for _, a := range run.approvers {
		run.isApprover[a] = true
	}
	if sc.managers == 0 {
		employees = w.addEmployees(n)
	}
	for _, u := range employees {
		e := &loadEmployee{user: u}
		run.employees = append(run.employees, e)
		run.byUser[u] = e
	}

	// The bot as users get it: default settings but for what the test
	// world must set (endpoints, tokens, a free HTTP port, the key prefix).
	useLoadPrefix(w)
	if sc.managers == 0 {
		w.vars["APPROVERS"] = strings.Join(run.approvers, ",")
	}
	for _, k := range []string{"LOG_LEVEL", "SWEEP_INTERVAL", "SLACK_MESSAGE_INTERVAL", "AWS_MAX_ATTEMPTS"} {
		delete(w.vars, k)
	}
	if *loadInterval != "" {
		w.vars["SLACK_MESSAGE_INTERVAL"] = *loadInterval
	}
	redisURL := w.vars["REDIS_URL"]
	proxy := countTurns(b, w) // the bot's Redis round trips
	bot := w.startProcess()
	pid := bot.cmd.Process.Pid
	if sc.limited {
		w.slack.SetRateLimits(slacktest.SlackLimits())
	}

	mon := startRedisMonitor(b, redisURL, loadKeyMark(w))
	before, err := readProc(pid)
	if err != nil {
		b.Fatal(err)
	}
	stats0 := w.slack.RateStats()
	run.seq = len(w.slack.Changes(0))

	turns0 := proxy.Turns()
	start := time.Now()
	for _, e := range run.employees {
		e.sent = time.Now()
		e.env = w.slack.SlashCommand(e.user, "")
	}
	deadline := start.Add(*loadTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	timedOut := false
	for !run.done() {
		if time.Now().After(deadline) {
			timedOut = true
			break
		}
		<-tick.C
		run.poll()
	}
	end := time.Now()
	time.Sleep(300 * time.Millisecond) // the last MONITOR lines
	run.poll()
	after, err := readProc(pid)
	if err != nil {
		b.Fatal(err)
	}
	redisCmds, redisLua := mon.stop()
	turns := proxy.Turns() - turns0
	stats := w.slack.RateStats().Since(stats0)
	bot.kill()

	res := run.result(start, end, after.CPU-before.CPU, after, stats, redisCmds, redisLua)
	res.timedOut = timedOut
	res.redisTurns = turns
	res.warnings = logWarnings(bot.logs.String())
	res.print(os.Stdout)
	if timedOut {
		b.Errorf("%s timed out after %v: %d/%d employees have their password, %d/%d requests show their end in the audit channel",
			sc.name, *loadTimeout, res.passwords, n, res.audited, n)
	}
	return res
}

// useLoadPrefix gives the world's bot a Redis key prefix of its own and
// removes its keys when the benchmark ends. The store may turn the prefix
// into a hash tag ("{p}:"), so keys are found by loadKeyMark.
func useLoadPrefix(w *world) {
	w.prefix = fmt.Sprintf("resetbot-load:%d:", time.Now().UnixNano())
	w.vars["REDIS_KEY_PREFIX"] = w.prefix
	pattern := "*" + loadKeyMark(w) + "*"
	w.t.Cleanup(func() {
		ctx := context.Background()
		iter := w.redis.Scan(ctx, 0, pattern, 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			if keys = append(keys, iter.Val()); len(keys) == 1000 {
				w.redis.Del(ctx, keys...)
				keys = keys[:0]
			}
		}
		if len(keys) > 0 {
			w.redis.Del(ctx, keys...)
		}
	})
}

// loadKeyMark is the part of the world's key prefix that every key of its
// bot contains, however the store frames the prefix.
func loadKeyMark(w *world) string { return strings.TrimSuffix(w.prefix, ":") }

// done reports whether every employee has their password and every
// request's end state shows in the audit channel.
func (r *loadRun) done() bool {
	for _, e := range r.employees {
		if e.passwordAt.IsZero() || e.id == "" || r.requests[e.id] == nil || r.requests[e.id].auditDoneAt.IsZero() {
			return false
		}
	}
	return true
}

// poll reads the bot's answers and the new message changes, and clicks.
func (r *loadRun) poll() {
	for _, e := range r.employees {
		if e.id != "" || e.answer != "" {
			continue
		}
		if rs := r.w.slack.Replies(e.env); len(rs) > 0 {
			if e.id = idRe.FindString(rs[0].Text); e.id == "" {
				e.answer = rs[0].Text
			}
		}
	}
	for _, c := range r.w.slack.Changes(r.seq) {
		r.seq = c.Seq
		r.handle(c)
	}
	for len(r.later) > 0 && !time.Now().Before(r.later[0].at) {
		c := r.later[0]
		r.later = r.later[1:]
		c.click()
	}
}

func (r *loadRun) request(id string) *loadRequest {
	rq := r.requests[id]
	if rq == nil {
		rq = &loadRequest{id: id, clicker: r.approvers[r.rng.IntN(len(r.approvers))]}
		r.requests[id] = rq
	}
	return rq
}

func (r *loadRun) handle(c slacktest.Change) {
	m := c.Message
	ref := m.Channel + "/" + m.TS
	switch {
	case c.Kind == slacktest.ChangeEphemeral:
		if e := r.byUser[strings.TrimPrefix(m.Channel, "D")]; e != nil && e.passwordAt.IsZero() && passwordRe.MatchString(blocksText(m)) {
			e.passwordAt = c.At
		}
	case m.Channel == auditChannel:
		switch c.Kind {
		case slacktest.ChangePosted:
			r.auditPosts++
		case slacktest.ChangeUpdated:
			r.auditUpdates++
		default:
			return
		}
		r.auditLast = c.At
		if m.ThreadTS != "" {
			return
		}
		if id, txt := idRe.FindString(m.Text), blocksText(m); id != "" && endStateRe.MatchString(txt) {
			if rq := r.request(id); rq.auditDoneAt.IsZero() {
				rq.auditDoneAt = c.At
			}
		}
	case strings.HasPrefix(m.Channel, "D") && r.isApprover[m.Channel[1:]]:
		approver := m.Channel[1:]
		switch c.Kind {
		case slacktest.ChangePosted:
			id := buttonValue(m.Blocks, slackapp.ActionApprove)
			if id == "" {
				return
			}
			rq := r.request(id)
			rq.approverDMs++
			if r.sc.managers > 0 {
				rq.clicker = approver // the employee's manager, the only one asked
			}
			if approver == rq.clicker && rq.dmAt.IsZero() {
				rq.dmAt = c.At
				r.byMessage[ref] = rq
				r.click(approver, slackapp.ActionApprove, id, m, func(at time.Time, env string) { rq.approveAt, rq.approveEnv = at, env })
			}
		case slacktest.ChangeUpdated:
			if rq := r.byMessage[ref]; rq != nil && rq.approveFixed.IsZero() && !hasButton(m, slackapp.ActionApprove) {
				rq.approveFixed = c.At
			}
		}
	case strings.HasPrefix(m.Channel, "D") && r.byUser[m.Channel[1:]] != nil:
		employee := m.Channel[1:]
		switch c.Kind {
		case slacktest.ChangePosted:
			id := buttonValue(m.Blocks, slackapp.ActionReveal)
			if id == "" {
				return
			}
			if rq := r.request(id); rq.revealDMAt.IsZero() {
				rq.revealDMAt = c.At
				rq.revealShown = true
				r.byMessage[ref] = rq
				r.click(employee, slackapp.ActionReveal, id, m, func(at time.Time, env string) { rq.revealAt, rq.revealEnv = at, env })
			}
		case slacktest.ChangeUpdated:
			rq := r.byMessage[ref]
			if rq == nil {
				return
			}
			shown := hasButton(m, slackapp.ActionReveal)
			switch {
			case !shown && rq.revealFixed.IsZero():
				rq.revealFixed = c.At
			case shown && !rq.revealShown:
				// The bot offers Reveal again (the password could not be
				// shown): the employee clicks again.
				rq.revealAgain++
				r.click(employee, slackapp.ActionReveal, rq.id, m, nil)
			}
			rq.revealShown = shown
		}
	}
}

// buttonValue returns the value of the button with action ID action in
// blocks, or "".
func buttonValue(blocks json.RawMessage, action string) string {
	var v any
	if json.Unmarshal(blocks, &v) != nil {
		return ""
	}
	var find func(v any) string
	find = func(v any) string {
		switch x := v.(type) {
		case map[string]any:
			if x["action_id"] == action {
				if s, ok := x["value"].(string); ok {
					return s
				}
			}
			for _, c := range x {
				if s := find(c); s != "" {
					return s
				}
			}
		case []any:
			for _, c := range x {
				if s := find(c); s != "" {
					return s
				}
			}
		}
		return ""
	}
	return find(v)
}

// loadResult is what one scenario measured.
type loadResult struct {
	name                   string
	limited                bool
	employees, approvers   int
	interval               string
	timedOut               bool
	elapsed                time.Duration
	passwords, audited     int
	refused                []string
	cmdToDM, cmdToPassword []time.Duration
	clickToRevealDM        []time.Duration
	approveAckToFixed      []time.Duration
	revealAckToFixed       []time.Duration
	revealToPassword       []time.Duration
	allPasswords, allAudit time.Duration
	approverDMs            int
	stillWithButtons       int
	revealAgain            int
	auditPosts             int
	auditUpdates           int
	auditLast              time.Duration // from the burst to the last audit write
	slack                  slacktest.RateStats
	managers               bool           // each request asks the employee's manager
	redis                  map[string]int // commands MONITOR saw, by name
	redisLua               int
	redisTurns             int64 // round trips through the counting proxy
	cpu                    time.Duration
	proc                   procStats
	warnings               map[string]int // the bot's warning and error log lines, by message
}

// logWarnings counts the bot's JSON log lines at WARN and ERROR by message.
func logWarnings(logs string) map[string]int {
	out := map[string]int{}
	for line := range strings.SplitSeq(logs, "\n") {
		var l struct{ Level, Msg string }
		if json.Unmarshal([]byte(line), &l) == nil && (l.Level == "WARN" || l.Level == "ERROR") {
			out[l.Level+": "+l.Msg]++
		}
	}
	return out
}

func (r *loadRun) result(start, end time.Time, cpu time.Duration, proc procStats, stats slacktest.RateStats, redisCmds map[string]int, lua int) *loadResult {
	res := &loadResult{name: r.sc.name, limited: r.sc.limited, managers: r.sc.managers > 0, employees: len(r.employees), approvers: len(r.approvers),
		interval: cmp.Or(*loadInterval, "default (1s)"), elapsed: end.Sub(start), slack: stats, redis: redisCmds,
		redisLua: lua, cpu: cpu, proc: proc, allPasswords: -1, allAudit: -1,
		auditPosts: r.auditPosts, auditUpdates: r.auditUpdates, auditLast: -1}
	if !r.auditLast.IsZero() {
		res.auditLast = r.auditLast.Sub(start)
	}
	var lastPassword, lastAudit time.Time
	for _, e := range r.employees {
		if e.answer != "" {
			res.refused = append(res.refused, e.answer)
		}
		if !e.passwordAt.IsZero() {
			res.passwords++
			res.cmdToPassword = append(res.cmdToPassword, e.passwordAt.Sub(e.sent))
			lastPassword = maxTime(lastPassword, e.passwordAt)
		}
		rq := r.requests[e.id]
		if e.id == "" || rq == nil {
			continue
		}
		res.approverDMs += rq.approverDMs
		res.revealAgain += rq.revealAgain
		if !rq.dmAt.IsZero() {
			res.cmdToDM = append(res.cmdToDM, rq.dmAt.Sub(e.sent))
		}
		if !rq.revealDMAt.IsZero() {
			res.clickToRevealDM = append(res.clickToRevealDM, rq.revealDMAt.Sub(rq.approveAt))
		}
		if ack, ok := r.w.slack.AckedAt(rq.approveEnv); ok && !rq.approveFixed.IsZero() {
			res.approveAckToFixed = append(res.approveAckToFixed, max(0, rq.approveFixed.Sub(ack)))
		}
		if rq.approveEnv != "" && rq.approveFixed.IsZero() {
			res.stillWithButtons++
		}
		if ack, ok := r.w.slack.AckedAt(rq.revealEnv); ok && !rq.revealFixed.IsZero() {
			res.revealAckToFixed = append(res.revealAckToFixed, max(0, rq.revealFixed.Sub(ack)))
		}
		if !e.passwordAt.IsZero() && !rq.revealAt.IsZero() {
			res.revealToPassword = append(res.revealToPassword, e.passwordAt.Sub(rq.revealAt))
		}
		if !rq.auditDoneAt.IsZero() {
			res.audited++
			lastAudit = maxTime(lastAudit, rq.auditDoneAt)
		}
	}
	if res.passwords == len(r.employees) {
		res.allPasswords = lastPassword.Sub(start)
	}
	if res.audited == len(r.employees) {
		res.allAudit = lastAudit.Sub(start)
	}
	return res
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// print writes the scenario's table in Markdown.
func (res *loadResult) print(w io.Writer) {
	slack := "instant (no limits)"
	if res.limited {
		slack = "Slack's limits (slacktest.SlackLimits)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n### %s: %d employees, %d approver(s), Slack %s, SLACK_MESSAGE_INTERVAL %s, clicks %s after the button shows\n\n",
		res.name, res.employees, res.approvers, slack, res.interval, *loadThink)
	status := "all done"
	if res.timedOut {
		status = "TIMED OUT"
	}
	fmt.Fprintf(&b, "%s after %s: %d/%d passwords shown, %d/%d audit parents at their end state",
		status, fmtDur(res.elapsed), res.passwords, res.employees, res.audited, res.employees)
	if len(res.refused) > 0 {
		fmt.Fprintf(&b, "; %d commands refused (first: %q)", len(res.refused), res.refused[0])
	}
	b.WriteString("\n\n| measure | n | p50 | p90 | max |\n|---|---|---|---|---|\n")
	row := func(name string, ds []time.Duration) {
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s |\n", name, len(ds),
			fmtDur(percentile(ds, 50)), fmtDur(percentile(ds, 90)), fmtDur(percentile(ds, 100)))
	}
	row("command → password (ephemeral posted)", res.cmdToPassword)
	row("command → the clicking approver's DM", res.cmdToDM)
	row("Approve click → Reveal DM", res.clickToRevealDM)
	row("Reveal click → password", res.revealToPassword)
	row("Approve ack → clicked DM without buttons", res.approveAckToFixed)
	row("Reveal ack → Reveal DM without button", res.revealAckToFixed)
	fmt.Fprintf(&b, "\nEvery password shown: %s after the burst; every audit parent at its end: %s after the burst.\n",
		fmtDur(res.allPasswords), fmtDur(res.allAudit))
	fmt.Fprintf(&b, "Audit channel: %d posts and %d updates, the last %s after the burst.\n", res.auditPosts, res.auditUpdates, fmtDur(res.auditLast))
	if res.managers {
		fmt.Fprintf(&b, "Approver DMs posted: %d of %d (each request asks the employee's manager).", res.approverDMs, res.employees)
	} else {
		fmt.Fprintf(&b, "Approver DMs posted: %d of %d (every request asks every approver).", res.approverDMs, res.employees*res.approvers)
	}
	if res.stillWithButtons > 0 {
		fmt.Fprintf(&b, " Clicked approver DMs still showing Approve/Deny at the end: %d.", res.stillWithButtons)
	}
	if res.revealAgain > 0 {
		fmt.Fprintf(&b, " Reveal offered again (password not shown) and clicked again: %d times.", res.revealAgain)
	}
	b.WriteString("\n")

	n := float64(res.employees)
	total := slacktest.Total(res.slack.Calls)
	b.WriteString("\n| Slack method | calls per flow | 429s | calls inside Retry-After |\n|---|---|---|---|\n")
	for _, m := range sortedByCount(res.slack.Calls) {
		fmt.Fprintf(&b, "| %s | %.2f | %d | %d |\n", m, float64(res.slack.Calls[m])/n, res.slack.Limited[m], res.slack.InWindow[m])
	}
	inWindow := slacktest.Total(res.slack.InWindow)
	fmt.Fprintf(&b, "| **all** | %.2f | %d | %d (%.2f%% of %d calls) |\n", float64(total)/n,
		slacktest.Total(res.slack.Limited), inWindow, pct(inWindow, total), total)
	if len(res.slack.LimitedByKey) > 0 {
		b.WriteString("\n429s by key: ")
		for i, k := range sortedByCount(res.slack.LimitedByKey) {
			if i == 8 {
				fmt.Fprintf(&b, ", … (%d keys)", len(res.slack.LimitedByKey))
				break
			}
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s %d", k, res.slack.LimitedByKey[k])
		}
		b.WriteString("\n")
	}

	cmds := slacktest.Total(res.redis)
	transitions := 4 * max(res.passwords, 1) // created, approved, revealed, completed
	fmt.Fprintf(&b, "\nRedis: %d round trips for %d transitions of %d completed flows = **%.2f per transition**; MONITOR saw %d commands on the bot's keys = %.2f per transition (%d more commands ran inside Lua scripts). By command: ",
		res.redisTurns, 4*res.passwords, res.passwords, float64(res.redisTurns)/float64(transitions), cmds, float64(cmds)/float64(transitions), res.redisLua)
	for i, c := range sortedByCount(res.redis) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", c, res.redis[c])
	}
	fmt.Fprintf(&b, ".\n\nBot process: %.3f s CPU in all = **%.1f ms CPU per flow**; peak RSS (VmHWM) **%.1f MB**, RSS at the end %.1f MB.\n",
		res.cpu.Seconds(), float64(res.cpu.Microseconds())/1000/n, mb(res.proc.HWM), mb(res.proc.RSS))
	if len(res.warnings) > 0 {
		b.WriteString("\nBot log warnings and errors: ")
		for i, m := range sortedByCount(res.warnings) {
			if i > 0 {
				b.WriteString("; ")
			}
			fmt.Fprintf(&b, "%q ×%d", m, res.warnings[m])
		}
		b.WriteString(".\n")
	}
	fmt.Fprint(w, b.String())
}

func pct(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

// report reports the headline numbers as benchmark metrics.
func (res *loadResult) report(b *testing.B) {
	if res == nil {
		return
	}
	secs := func(d time.Duration) float64 { return d.Seconds() }
	b.ReportMetric(float64(res.passwords), "passwords")
	b.ReportMetric(secs(percentile(res.cmdToPassword, 50)), "p50-password-s")
	b.ReportMetric(secs(percentile(res.cmdToPassword, 90)), "p90-password-s")
	b.ReportMetric(secs(percentile(res.cmdToPassword, 100)), "max-password-s")
	b.ReportMetric(secs(percentile(res.approveAckToFixed, 50))*1000, "p50-click-reflected-ms")
	b.ReportMetric(secs(res.allAudit), "audit-done-s")
	total := slacktest.Total(res.slack.Calls)
	b.ReportMetric(float64(total)/float64(res.employees), "slack-calls/flow")
	b.ReportMetric(float64(slacktest.Total(res.slack.Limited)), "slack-429s")
	b.ReportMetric(pct(slacktest.Total(res.slack.InWindow), total), "in-retry-after-%")
	b.ReportMetric(float64(res.redisTurns)/float64(4*max(res.passwords, 1)), "redis-rt/transition")
	b.ReportMetric(float64(slacktest.Total(res.redis))/float64(4*max(res.passwords, 1)), "redis-cmds/transition")
	b.ReportMetric(float64(res.cpu.Microseconds())/1000/float64(res.employees), "cpu-ms/flow")
	b.ReportMetric(mb(res.proc.HWM), "peak-rss-MB")
}

// BenchmarkOpenRequests creates -load.open pending requests through the bot
// (Slack answering instantly, one approver) and reports the bot's memory
// once every request's messages are posted. The bot's pacing would take
// that many seconds to post that many DMs to one approver, so
// SLACK_MESSAGE_INTERVAL is 0s here unless -load.interval says otherwise.
func BenchmarkOpenRequests(b *testing.B) {
	for b.Loop() {
		runOpenRequests(b)
	}
}

func runOpenRequests(b *testing.B) {
	n := *loadOpen
	w := newWorld(b)
	for i := 1; i <= n; i++ {
		id, name := fmt.Sprintf("UO%05d", i), fmt.Sprintf("open%05d", i)
		w.slack.AddUser(slacktest.User{ID: id, Name: name, RealName: "Open Request" + name, Email: name + "@corp.example.com"})
	}
	useLoadPrefix(w)
	w.vars["APPROVERS"] = approver1
	for _, k := range []string{"LOG_LEVEL", "SWEEP_INTERVAL", "AWS_MAX_ATTEMPTS"} {
		delete(w.vars, k)
	}
	w.vars["SLACK_MESSAGE_INTERVAL"] = cmp.Or(*loadInterval, "0s")
	bot := w.startProcess()
	pid := bot.cmd.Process.Pid
	idle, err := readProc(pid)
	if err != nil {
		b.Fatal(err)
	}

	start := time.Now()
	deadline := start.Add(*loadTimeout)
	const inFlight = 100
	answered := func() int { return w.slack.RateStats().Calls["response_url"] }
	for i := 1; i <= n; i++ {
		for i-1-answered() >= inFlight {
			if time.Now().After(deadline) {
				b.Fatalf("timed out after %v: %d of %d commands answered", *loadTimeout, answered(), n)
			}
			time.Sleep(2 * time.Millisecond)
		}
		w.slack.SlashCommand(fmt.Sprintf("UO%05d", i), "")
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	seq, dms, audit := 0, 0, 0
	err = w.slack.WaitFor(ctx, func() bool {
		for _, c := range w.slack.Changes(seq) {
			seq = c.Seq
			if c.Kind == slacktest.ChangePosted && c.Message.Channel == slacktest.DMChannel(approver1) {
				dms++
			}
			if c.Kind == slacktest.ChangePosted && c.Message.Channel == auditChannel && c.Message.ThreadTS == "" {
				audit++
			}
		}
		return answered() >= n && dms >= n && audit >= n
	})
	created := time.Since(start)
	if err != nil {
		b.Fatalf("timed out after %v: %d commands answered, %d approver DMs, %d audit parents of %d", *loadTimeout, answered(), dms, audit, n)
	}
	time.Sleep(2 * time.Second) // let the last syncs save their bookkeeping
	settled, err := readProc(pid)
	if err != nil {
		b.Fatal(err)
	}
	open := 0
	iter := w.redis.Scan(context.Background(), 0, "*"+loadKeyMark(w)+"*open:*", 1000).Iterator()
	for iter.Next(context.Background()) {
		open++
	}
	bot.kill()
	if open != n {
		b.Errorf("%d open requests in Redis, want %d", open, n)
	}
	fmt.Printf("\n### open requests: %d pending requests created in %s (SLACK_MESSAGE_INTERVAL %s)\n\n"+
		"| bot process | RSS (VmRSS) | peak RSS (VmHWM) | CPU |\n|---|---|---|---|\n"+
		"| connected, idle | %.1f MB | %.1f MB | %.2f s |\n| %d requests open, messages posted | %.1f MB | %.1f MB | %.2f s |\n",
		n, fmtDur(created), w.vars["SLACK_MESSAGE_INTERVAL"], mb(idle.RSS), mb(idle.HWM), idle.CPU.Seconds(),
		open, mb(settled.RSS), mb(settled.HWM), settled.CPU.Seconds())
	b.ReportMetric(mb(settled.RSS), "rss-MB")
	b.ReportMetric(mb(settled.HWM), "peak-rss-MB")
	b.ReportMetric(float64(open), "open-requests")
	b.ReportMetric(float64(n)/created.Seconds(), "requests/s")
}
