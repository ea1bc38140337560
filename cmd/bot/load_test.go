package main

// The load benchmark of docs/performance.md ("the Monday after a
// password-expiry wave"). Run the report's scenarios, each over several
// variations of the Slack model, with
//
//	./scripts/bench.sh
//
// (BenchmarkLoadModels and BenchmarkOpenRequests), or one scenario with
//
//	go test -run '^$' -bench 'Load/limited/one-approver' -benchtime 1x -timeout 60m ./cmd/bot
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
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strconv"
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
	loadTimeout   = flag.Duration("load.timeout", 8*time.Minute, "load benchmark: time allowed per scenario")
	loadOpen      = flag.Int("load.open", 10000, "BenchmarkOpenRequests: pending requests to create")
	loadThink     = flag.Duration("load.think", 0, "load benchmark: how long a person looks at a button before clicking it")
	loadSpread    = flag.Duration("load.spread", 0, "load benchmark: the employees' commands arrive at random over this long (0: at once)")
	loadBurst     = flag.Float64("load.burst", 1, "load benchmark: the Slack model's bucket sizes, times this")
	loadRound     = flag.String("load.round", "up", "load benchmark: how the Slack model rounds Retry-After (up, nearest, up+1)")
	loadSeed      = flag.Uint64("load.seed", 7, "load benchmark: seed of the arrival times and of who clicks")
)

// loadModel is one variation of the world the bot meets: when people
// arrive, and how Slack's limits are modelled.
type loadModel struct {
	name   string
	spread time.Duration      // commands arrive at random over this long
	burst  float64            // bucket sizes, times this
	round  slacktest.Rounding // Retry-After rounding
	seed   uint64
}

// flagModel is the model the -load.* flags describe.
func flagModel(tb testing.TB) loadModel {
	round, ok := slacktest.ParseRounding(*loadRound)
	if !ok {
		tb.Fatalf("-load.round %q: want up, nearest or up+1", *loadRound)
	}
	return loadModel{name: "flags", spread: *loadSpread, burst: *loadBurst, round: round, seed: *loadSeed}
}

// limits returns Slack's limits (slacktest.SlackLimits) as m varies them.
func (m loadModel) limits() slacktest.Limits {
	l := slacktest.SlackLimits()
	scale := func(r slacktest.Rate) slacktest.Rate {
		r.Burst = max(1, int(math.Round(float64(r.Burst)*cmp.Or(m.burst, 1))))
		return r
	}
	l.PostPerChannel = scale(l.PostPerChannel)
	for k, r := range l.Methods {
		l.Methods[k] = scale(r)
	}
	l.Rounding = m.round
	return l
}

func (m loadModel) String() string {
	return fmt.Sprintf("arrivals over %s, buckets ×%.1f, Retry-After rounded %s, seed %d", fmtDur(m.spread), cmp.Or(m.burst, 1), m.round, m.seed)
}

// loadScenario is one run of the Monday-morning burst.
type loadScenario struct {
	name      string
	limited   bool // Slack's rate limits on (slacktest.SlackLimits)
	approvers int  // 1: UAPP1 approves everything; more: all are asked, a random one clicks
	managers  int  // > 0: a Samba AD directory, APPROVER_SOURCE=manager, employees spread over this many managers
	model     loadModel
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
			sc.model = flagModel(b)
			var res *loadResult
			for b.Loop() {
				res = runLoad(b, sc)
			}
			res.report(b)
		})
	}
}

// loadModels are the variations of the Slack model BenchmarkLoadModels
// runs a limited scenario under: the figures of one model are one guess
// at Slack, so the report gives their spread.
var loadModels = []loadModel{
	{name: "base", burst: 1, seed: 7},
	{name: "arrivals over 10 s", spread: 10 * time.Second, burst: 1, seed: 11},
	{name: "buckets ×0.5", burst: 0.5, seed: 7},
	{name: "buckets ×2", burst: 2, seed: 7},
	{name: "Retry-After to the nearest s", burst: 1, round: slacktest.RoundNearest, seed: 7},
	{name: "Retry-After +1 s", burst: 1, round: slacktest.RoundUpPlus1, seed: 7},
}

// BenchmarkLoadModels runs the report's scenarios (docs/performance.md)
// under each model of loadModels (instant Slack: the base model and
// spread arrivals only; managers: four models, each adds 70 Samba users)
// and prints, after each run's table, a summary of them all with the
// spread per scenario.
func BenchmarkLoadModels(b *testing.B) {
	type run struct {
		sc  loadScenario
		res *loadResult
	}
	var runs []run
	scenarios := []struct {
		sc     loadScenario
		models []loadModel
	}{
		{loadScenario{name: "limited/one-approver", limited: true, approvers: 1}, loadModels},
		{loadScenario{name: "limited/managers", limited: true, managers: *loadManagers}, []loadModel{loadModels[0], loadModels[1], loadModels[2], loadModels[5]}},
		{loadScenario{name: "instant/one-approver", approvers: 1}, loadModels[:2]},
	}
	for _, s := range scenarios {
		for _, m := range s.models {
			sc := s.sc
			sc.model = m
			b.Run(sc.name+"/"+strings.ReplaceAll(m.name, " ", "_"), func(b *testing.B) {
				var res *loadResult
				for b.Loop() {
					res = runLoad(b, sc)
				}
				res.report(b)
				runs = append(runs, run{sc, res})
			})
		}
	}
	var out strings.Builder
	out.WriteString("\n## Summary: every scenario and model\n\n" +
		"| scenario | model | passwords | command → password p50 / max | last password after the last command | audit ends after the last command | click reflected p50 / p99 / max | Slack calls per flow | 429s | calls after a 429's answer, inside its Retry-After | Redis round trips / commands per flow | CPU per flow | peak RSS |\n" +
		"|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	byScenario := map[string][]*loadResult{}
	var order []string
	for _, r := range runs {
		if byScenario[r.sc.name] == nil {
			order = append(order, r.sc.name)
		}
		byScenario[r.sc.name] = append(byScenario[r.sc.name], r.res)
		out.WriteString(r.res.summaryRow(r.sc.model.name))
	}
	out.WriteString("\n| scenario | runs | all passwords | command → password max: min / median / max over the runs | p50: min / median / max | audit ends after the last command: min / median / max | click reflected p99: min / max |\n|---|---|---|---|---|---|---|\n")
	for _, name := range order {
		out.WriteString(spreadRow(name, byScenario[name]))
	}
	fmt.Print(out.String())
}

// loadEmployee is one employee's side of a flow.
type loadEmployee struct {
	user       string
	at         time.Time // when the employee types the command
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
	approverDMs  int       // approvers' messages it appeared in
	shownTo      map[string]bool
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
	byMessage  map[string][]*loadRequest // channel/ts of the clicked approver messages -> the requests clicked there
	revealMsgs map[string]*loadRequest   // channel/ts of the Reveal DMs
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
		requests: map[string]*loadRequest{}, byMessage: map[string][]*loadRequest{}, revealMsgs: map[string]*loadRequest{},
		rng: rand.New(rand.NewPCG(sc.model.seed, 7))}
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
	for _, k := range []string{"LOG_LEVEL", "SWEEP_INTERVAL", "AWS_MAX_ATTEMPTS"} {
		delete(w.vars, k)
	}
	redisURL := w.vars["REDIS_URL"]
	proxy := countTurns(b, w) // the bot's Redis round trips
	bot := w.startProcess()
	pid := bot.cmd.Process.Pid
	if sc.limited {
		w.slack.SetRateLimits(sc.model.limits())
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
	arrivals := rand.New(rand.NewPCG(sc.model.seed, 1))
	for _, e := range run.employees {
		e.at = start
		if sc.model.spread > 0 {
			e.at = start.Add(time.Duration(arrivals.Int64N(int64(sc.model.spread))))
		}
	}
	run.arrive()
	deadline := start.Add(*loadTimeout + sc.model.spread)
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

// arrive sends the commands of the employees whose time has come.
func (r *loadRun) arrive() {
	now := time.Now()
	for _, e := range r.employees {
		if e.env == "" && !now.Before(e.at) {
			e.sent = time.Now()
			e.env = r.w.slack.SlashCommand(e.user, "")
		}
	}
}

// poll reads the bot's answers and the new message changes, and clicks.
func (r *loadRun) poll() {
	r.arrive()
	for _, e := range r.employees {
		if e.env == "" || e.id != "" || e.answer != "" {
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
		rq = &loadRequest{id: id, clicker: r.approvers[r.rng.IntN(len(r.approvers))], shownTo: map[string]bool{}}
		r.requests[id] = rq
	}
	return rq
}

func (r *loadRun) handle(c slacktest.Change) {
	m := c.Message
	ref := m.Channel + "/" + m.TS
	switch {
	case c.Kind == slacktest.ChangeEphemeral || c.Kind == slacktest.ChangeResponded:
		// The password: chat.postEphemeral in the employee's DM, or an
		// ephemeral answer to their Reveal click.
		e := r.byUser[strings.TrimPrefix(m.Channel, "D")]
		if c.Kind == slacktest.ChangeResponded {
			e = r.byUser[m.User]
		}
		if e != nil && e.passwordAt.IsZero() && passwordRe.MatchString(blocksText(m)) {
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
		if c.Kind != slacktest.ChangePosted && c.Kind != slacktest.ChangeUpdated {
			return
		}
		// A message may list several requests (an approver's queue):
		// each request is clicked when it first shows its Approve button,
		// and reflected once the message no longer has that button.
		approver := m.Channel[1:]
		for _, id := range buttonValues(m.Blocks, slackapp.ActionApprove) {
			rq := r.request(id)
			if !rq.shownTo[approver] {
				rq.shownTo[approver] = true
				rq.approverDMs++
				if r.sc.managers > 0 {
					rq.clicker = approver // the employee's manager, the only one asked
				}
			}
			if approver == rq.clicker && rq.dmAt.IsZero() {
				rq.dmAt = c.At
				r.byMessage[ref] = append(r.byMessage[ref], rq)
				r.click(approver, slackapp.ActionApprove, id, m, func(at time.Time, env string) { rq.approveAt, rq.approveEnv = at, env })
			}
		}
		if c.Kind == slacktest.ChangeUpdated {
			for _, rq := range r.byMessage[ref] {
				if rq.approveFixed.IsZero() && rq.approveEnv != "" && !slices.Contains(buttonValues(m.Blocks, slackapp.ActionApprove), rq.id) {
					rq.approveFixed = c.At
				}
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
				r.revealMsgs[ref] = rq
				r.click(employee, slackapp.ActionReveal, id, m, func(at time.Time, env string) { rq.revealAt, rq.revealEnv = at, env })
			}
		case slacktest.ChangeUpdated:
			rq := r.revealMsgs[ref]
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

// buttonValues returns the values of the buttons with action ID action in
// blocks, in order.
func buttonValues(blocks json.RawMessage, action string) []string {
	var v any
	if json.Unmarshal(blocks, &v) != nil {
		return nil
	}
	var out []string
	var find func(v any)
	find = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if x["action_id"] == action {
				if s, ok := x["value"].(string); ok {
					out = append(out, s)
				}
			}
			for _, k := range slices.Sorted(maps.Keys(x)) {
				find(x[k])
			}
		case []any:
			for _, c := range x {
				find(c)
			}
		}
	}
	find(v)
	return out
}

// buttonValue returns the value of the first button with action ID action
// in blocks, or "".
func buttonValue(blocks json.RawMessage, action string) string {
	if vs := buttonValues(blocks, action); len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// loadResult is what one scenario measured.
type loadResult struct {
	name                   string
	model                  loadModel
	limited                bool
	employees, approvers   int
	timedOut               bool
	elapsed                time.Duration
	passwords, audited     int
	refused                []string
	cmdToDM, cmdToPassword []time.Duration
	clickToRevealDM        []time.Duration
	approveAckToFixed      []time.Duration
	revealAckToFixed       []time.Duration
	revealToPassword       []time.Duration
	allPasswords, allAudit time.Duration // from the last command sent
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
	res := &loadResult{name: r.sc.name, model: r.sc.model, limited: r.sc.limited, managers: r.sc.managers > 0, employees: len(r.employees), approvers: len(r.approvers),
		elapsed: end.Sub(start), slack: stats, redis: redisCmds,
		redisLua: lua, cpu: cpu, proc: proc, allPasswords: -1, allAudit: -1,
		auditPosts: r.auditPosts, auditUpdates: r.auditUpdates, auditLast: -1}
	if !r.auditLast.IsZero() {
		res.auditLast = r.auditLast.Sub(start)
	}
	var lastPassword, lastAudit, lastSent time.Time
	for _, e := range r.employees {
		lastSent = maxTime(lastSent, e.sent)
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
		res.allPasswords = lastPassword.Sub(lastSent)
	}
	if res.audited == len(r.employees) {
		res.allAudit = lastAudit.Sub(lastSent)
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
	if res.limited {
		slack += ", " + res.model.String()
	} else {
		slack += fmt.Sprintf(", arrivals over %s", fmtDur(res.model.spread))
	}
	fmt.Fprintf(&b, "\n### %s (%s): %d employees, %d approver(s), Slack %s, clicks %s after the button shows\n\n",
		res.name, res.model.name, res.employees, res.approvers, slack, *loadThink)
	status := "all done"
	if res.timedOut {
		status = "TIMED OUT"
	}
	fmt.Fprintf(&b, "%s after %s: %d/%d passwords shown, %d/%d audit parents at their end state",
		status, fmtDur(res.elapsed), res.passwords, res.employees, res.audited, res.employees)
	if len(res.refused) > 0 {
		fmt.Fprintf(&b, "; %d commands refused (first: %q)", len(res.refused), res.refused[0])
	}
	b.WriteString("\n\n| measure | n | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|\n")
	row := func(name string, ds []time.Duration) {
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s |\n", name, len(ds),
			fmtDur(percentile(ds, 50)), fmtDur(percentile(ds, 90)), fmtDur(percentile(ds, 99)), fmtDur(percentile(ds, 100)))
	}
	row("command → password (ephemeral posted)", res.cmdToPassword)
	row("command → the clicking approver's DM", res.cmdToDM)
	row("Approve click → Reveal DM", res.clickToRevealDM)
	row("Reveal click → password", res.revealToPassword)
	row("Approve ack → clicked DM without buttons", res.approveAckToFixed)
	row("Reveal ack → Reveal DM without button", res.revealAckToFixed)
	fmt.Fprintf(&b, "\nEvery password shown: %s after the last command; every audit parent at its end: %s after the last command.\n",
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
	b.WriteString("\n| Slack method | calls per flow | 429s | calls inside Retry-After | of them sent after the 429 was answered |\n|---|---|---|---|---|\n")
	for _, m := range sortedByCount(res.slack.Calls) {
		after := strconv.Itoa(res.slack.AfterAnswer[m])
		if late := res.slack.Late[m]; late > 0 {
			after += fmt.Sprintf(" (the latest %s after the answer)", late.Round(time.Millisecond))
		}
		fmt.Fprintf(&b, "| %s | %.2f | %d | %d | %s |\n", m, float64(res.slack.Calls[m])/n, res.slack.Limited[m], res.slack.InWindow[m], after)
	}
	inWindow := slacktest.Total(res.slack.InWindow)
	fmt.Fprintf(&b, "| **all** | %.2f | %d | %d (%.2f%% of %d calls) | %d |\n", float64(total)/n,
		slacktest.Total(res.slack.Limited), inWindow, pct(inWindow, total), total, slacktest.Total(res.slack.AfterAnswer))
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
	fmt.Fprintf(&b, "\nRedis: %d round trips for %d completed flows = **%.1f per flow, %.2f per transition** (4 a flow); MONITOR saw %d commands on the bot's keys = %.1f per flow (%d more commands ran inside Lua scripts). By command: ",
		res.redisTurns, res.passwords, float64(res.redisTurns)/float64(max(res.passwords, 1)), float64(res.redisTurns)/float64(transitions),
		cmds, float64(cmds)/float64(max(res.passwords, 1)), res.redisLua)
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
	b.ReportMetric(secs(percentile(res.approveAckToFixed, 99))*1000, "p99-click-reflected-ms")
	b.ReportMetric(float64(slacktest.Total(res.slack.AfterAnswer)), "calls-after-429")
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

// summaryRow is res's line in BenchmarkLoadModels' summary.
func (res *loadResult) summaryRow(model string) string {
	flows := float64(max(res.passwords, 1))
	return fmt.Sprintf("| %s | %s | %d/%d | %s / %s | %s | %s | %s / %s / %s | %.1f | %d | %d | %.1f / %.1f | %.1f ms | %.1f MB |\n",
		res.name, model, res.passwords, res.employees,
		fmtDur(percentile(res.cmdToPassword, 50)), fmtDur(percentile(res.cmdToPassword, 100)),
		fmtDur(res.allPasswords), fmtDur(res.allAudit),
		fmtDur(percentile(res.approveAckToFixed, 50)), fmtDur(percentile(res.approveAckToFixed, 99)), fmtDur(percentile(res.approveAckToFixed, 100)),
		float64(slacktest.Total(res.slack.Calls))/float64(res.employees), slacktest.Total(res.slack.Limited), slacktest.Total(res.slack.AfterAnswer),
		float64(res.redisTurns)/flows, float64(slacktest.Total(res.redis))/flows,
		float64(res.cpu.Microseconds())/1000/float64(res.employees), mb(res.proc.HWM))
}

// spreadRow sums up the runs of one scenario: how their figures spread
// over the models. A run that did not get every password counts as the
// slowest (its figures are "-").
func spreadRow(name string, rs []*loadResult) string {
	all := 0
	var maxes, p50s, audits, clicks []time.Duration
	worst := func(d time.Duration, ok bool) time.Duration {
		if !ok || d < 0 {
			return time.Duration(math.MaxInt64)
		}
		return d
	}
	for _, r := range rs {
		done := r.passwords == r.employees
		if done {
			all++
		}
		maxes = append(maxes, worst(percentile(r.cmdToPassword, 100), done))
		p50s = append(p50s, worst(percentile(r.cmdToPassword, 50), done))
		audits = append(audits, worst(r.allAudit, true))
		clicks = append(clicks, worst(percentile(r.approveAckToFixed, 99), true))
	}
	three := func(ds []time.Duration) string {
		f := func(d time.Duration) string {
			if d == time.Duration(math.MaxInt64) {
				return "not all"
			}
			return fmtDur(d)
		}
		return fmt.Sprintf("%s / %s / %s", f(percentile(ds, 0)), f(percentile(ds, 50)), f(percentile(ds, 100)))
	}
	minmax := func(ds []time.Duration) string {
		f := func(d time.Duration) string {
			if d == time.Duration(math.MaxInt64) {
				return "-"
			}
			return fmtDur(d)
		}
		return fmt.Sprintf("%s / %s", f(percentile(ds, 0)), f(percentile(ds, 100)))
	}
	return fmt.Sprintf("| %s | %d | %d of %d runs | %s | %s | %s | %s |\n", name, len(rs), all, len(rs), three(maxes), three(p50s), three(audits), minmax(clicks))
}

// BenchmarkOpenRequests creates -load.open pending requests through the bot
// (Slack answering instantly, one approver) and reports the bot's memory
// once every request shows in the approver's messages and has its audit
// parent.
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
	seq, audit := 0, 0
	shown := map[string]bool{} // requests shown to the approver with their Approve button
	err = w.slack.WaitFor(ctx, func() bool {
		for _, c := range w.slack.Changes(seq) {
			seq = c.Seq
			if (c.Kind == slacktest.ChangePosted || c.Kind == slacktest.ChangeUpdated) && c.Message.Channel == slacktest.DMChannel(approver1) {
				for _, id := range buttonValues(c.Message.Blocks, slackapp.ActionApprove) {
					shown[id] = true
				}
			}
			if c.Kind == slacktest.ChangePosted && c.Message.Channel == auditChannel && c.Message.ThreadTS == "" {
				audit++
			}
		}
		return answered() >= n && len(shown) >= n && audit >= n
	})
	created := time.Since(start)
	if err != nil {
		b.Fatalf("timed out after %v: %d commands answered, %d requests shown to the approver, %d audit parents of %d", *loadTimeout, answered(), len(shown), audit, n)
	}
	time.Sleep(2 * time.Second) // let the last lanes save their records
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
	fmt.Printf("\n### open requests: %d pending requests created in %s\n\n"+
		"| bot process | RSS (VmRSS) | peak RSS (VmHWM) | CPU |\n|---|---|---|---|\n"+
		"| connected, idle | %.1f MB | %.1f MB | %.2f s |\n| %d requests open, messages posted | %.1f MB | %.1f MB | %.2f s |\n",
		n, fmtDur(created), mb(idle.RSS), mb(idle.HWM), idle.CPU.Seconds(),
		open, mb(settled.RSS), mb(settled.HWM), settled.CPU.Seconds())
	b.ReportMetric(mb(settled.RSS), "rss-MB")
	b.ReportMetric(mb(settled.HWM), "peak-rss-MB")
	b.ReportMetric(float64(open), "open-requests")
	b.ReportMetric(float64(n)/created.Seconds(), "requests/s")
}
