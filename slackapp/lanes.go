package slackapp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/example/resetbot/delivery"
	"github.com/example/resetbot/workflow"
)

// Requests reads the requests the lanes tell about (the workflow.Store).
type Requests interface {
	Get(ctx context.Context, id string) (*workflow.Request, error)
}

// manyRequests is a Requests that reads several requests in one round
// trip (redisstore); ok is false for each that is gone or was refused.
type manyRequests interface {
	GetMany(ctx context.Context, ids []string) ([]*workflow.Request, error)
}

// Lanes tells people what happens to requests, one delivery lane at a
// time (delivery.Sender): the employee's DMs, each approver's queue, and
// the audit channel's thread. Every Slack call goes through Gate with the
// priority of who waits for it; a call that would wait long for a
// rate-limited key is left for when the gate says the key is free (the
// lane is parked there, without a goroutine).
//
// Who is told comes from the request, as the store verified it, never
// from a lane's record: a record only says which messages were posted and
// what they show.
type Lanes struct {
	API          *slack.Client
	HTTP         *http.Client // for response_url posts; nil: http.DefaultClient
	AuditChannel string       // empty: no channel audit
	Requests     Requests
	Gate         *Gate // nil: no rate-limit handling beyond errors
	Log          *slog.Logger
	// Window is how long after posting to an approver new requests wait
	// to share one message (QueueWindow when zero; negative: none).
	Window time.Duration
	// Helpdesk are the user and user-group IDs the audit channel's alert
	// mentions when an owner reports a reset they did not ask for.
	Helpdesk []string
	// OnTampered, when set, is told about a request whose stored record
	// failed verification when a lane read it (the store moved it aside),
	// so that it is reported as the workflow reports those it meets.
	OnTampered func(ctx context.Context, err error)
	// IsHelpdesk, when set, says whether a person is helpdesk (their Home
	// lists the latest requests, read from Recent).
	IsHelpdesk func(ctx context.Context, user string) (bool, error)
	Recent     interface {
		Recent(ctx context.Context, max int) ([]string, error)
	}
}

var _ delivery.Sender = (*Lanes)(nil)

// waitLonger is the longest a lane's call waits in the gate for a
// rate-limited key while holding a worker; past that, the lane is parked
// and a worker goes on with other lanes.
const waitLonger = time.Second

// ref is a message the lane posted, and a digest of what it shows.
type ref struct {
	Channel string `json:"channel"`
	TS      string `json:"ts"`
	Hash    string `json:"hash,omitempty"`
}

func (r ref) id() string { return r.Channel + "/" + r.TS }

// Send implements delivery.Sender.
func (n *Lanes) Send(ctx context.Context, w delivery.Work) (delivery.Result, error) {
	s := &send{n: n, w: w}
	var err error
	switch w.Lane.Kind {
	case delivery.KindPeople:
		err = s.people(ctx)
	case delivery.KindAudit:
		err = s.audit(ctx)
	case delivery.KindQueue:
		err = s.queue(ctx)
	case delivery.KindHome:
		err = s.home(ctx)
	default:
		return delivery.Result{}, workflow.Errorf(workflow.CodeInternal, "no such lane kind %q", w.Lane.Kind)
	}
	if errors.Is(err, errParked) {
		err = nil
		key, prio, ticket := s.parkKey, s.parkPrio, w.Lane.String()
		s.res.Wait = func(wake func()) { n.Gate.Park(key, prio, ticket, wake) }
	}
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		// The lane's time ran out while Slack held calls back: not a
		// failure; the lane goes on later.
		err = nil
		s.res.Next = time.Now()
	}
	return s.res, err
}

// send is one Send: the lane, what it found, and what it did.
type send struct {
	n        *Lanes
	w        delivery.Work
	res      delivery.Result
	parkKey  string
	parkPrio Priority
	failed   []delivery.Reply // replies whose post failed: not used again
}

// errParked stops a lane whose next call waits for a rate-limited key.
var errParked = errors.New("waiting for a rate-limited key")

// call runs fn on key under the gate for this lane: when the key would
// keep it waiting longer than waitLonger, it returns errParked and the
// lane is parked on the key.
func (s *send) call(ctx context.Context, key string, prio Priority, fn func() error) error {
	err := s.n.Gate.DoFor(ctx, key, prio, waitLonger, s.w.Lane.String(), fn)
	if errors.Is(err, ErrThrottled) {
		s.parkKey, s.parkPrio = key, prio
		return errParked
	}
	return err
}

// request reads request id; ok is false when it is gone or was refused
// (a tampered record is reported by whoever read it in the workflow; here
// it is only not used).
func (s *send) request(ctx context.Context, id string) (*workflow.Request, bool, error) {
	r, err := s.n.Requests.Get(ctx, id)
	switch workflow.ErrorCode(err) {
	case "":
		return r, true, nil
	case workflow.CodeNotFound, workflow.CodeTampered:
		s.n.Log.Warn("a chat lane's request is gone or was refused; nothing told", "lane", s.w.Lane.String(), "error", err)
		if workflow.ErrorCode(err) == workflow.CodeTampered && s.n.OnTampered != nil {
			s.n.OnTampered(ctx, err)
		}
		return nil, false, nil
	}
	return nil, false, err
}

// subject returns the request of a request's lane: as Take read it, or
// read now.
func (s *send) subject(ctx context.Context) (*workflow.Request, bool, error) {
	if r := s.w.Request; r != nil && r.ID == s.w.Lane.Subject {
		return r, true, nil
	}
	return s.request(ctx, s.w.Lane.Subject)
}

// reply returns the reply of a click on message m, if any.
func (s *send) reply(m ref) (delivery.Reply, bool) {
	for _, r := range s.w.Replies {
		if r.Message == m.id() && !slices.Contains(s.res.UsedReplies, r) {
			return r, true
		}
	}
	return delivery.Reply{}, false
}

// replace makes message m show msg: through the reply of a click on it
// when there is one (not counted against chat.update; the answer the
// clicker waits for), else with chat.update at prio. It returns m's new
// digest.
func (s *send) replace(ctx context.Context, m ref, msg Msg, prio Priority) (string, error) {
	h := digest(msg)
	if m.TS == "" || m.Hash == h {
		return m.Hash, nil
	}
	if r, ok := s.reply(m); ok {
		// Slack limits each response_url on its own: one key per clicked
		// message, so that one person's answer never queues behind another's.
		err := s.n.Gate.Do(ctx, "response_url:"+m.id(), PriorityNow, func() error {
			return slack.PostWebhookCustomHTTPContext(ctx, r.URL, s.n.httpClient(), &slack.WebhookMessage{
				Text: msg.Text, Blocks: &slack.Blocks{BlockSet: msg.Blocks}, ReplaceOriginal: true,
			})
		})
		s.res.UsedReplies = append(s.res.UsedReplies, r)
		if err == nil {
			return h, nil
		}
		s.failed = append(s.failed, r)
		s.n.Log.Warn("could not replace the clicked message through its response_url; updating it instead", "lane", s.w.Lane.String(), "error", err)
	}
	err := s.call(ctx, "chat.update", prio, func() error {
		_, _, _, err := s.n.API.UpdateMessageContext(ctx, m.Channel, m.TS, msg.Options()...)
		return err
	})
	if err := s.tolerate(err, "update message "+m.id()); err != nil {
		return m.Hash, err
	}
	return h, nil
}

// post sends msg to channel, which may be a user ID: Slack then posts in
// the bot's DM with that user and answers with the DM's channel ID (no
// conversations.open needed). DMs always go to the user ID, so that the
// gate sees one key per person. A message Slack refuses for good comes
// back without a TS, and nil.
func (s *send) post(ctx context.Context, channel string, msg Msg, prio Priority, opts ...slack.MsgOption) (ref, error) {
	var m ref
	err := s.call(ctx, "chat.postMessage:"+channel, prio, func() error {
		var err error
		m.Channel, m.TS, err = s.n.API.PostMessageContext(ctx, channel, append(msg.Options(), opts...)...)
		return err
	})
	if err != nil {
		if errors.Is(err, errParked) {
			return ref{}, err
		}
		return ref{}, s.tolerate(workflow.Wrap(workflow.CodeInternal, err, "chat.postMessage to "+channel), "post to "+channel)
	}
	m.Hash = digest(msg)
	return m, nil
}

// tolerate returns nil for nil and for errors Slack will give again on any
// retry (after logging them), and err itself for errors worth retrying.
func (s *send) tolerate(err error, what string) error {
	if err == nil || errors.Is(err, errParked) || !permanent(err) {
		return err
	}
	s.n.Log.Error("Slack refused a message for good; skipping it", "lane", s.w.Lane.String(), "what", what, "error", err)
	return nil
}

// decode reads the lane's record into v (left as it is for a new lane).
func (s *send) decode(v any) error {
	if s.w.Data == nil {
		return nil
	}
	if err := json.Unmarshal(s.w.Data, v); err != nil {
		return workflow.Wrap(workflow.CodeInternal, err, "decode the record of lane "+s.w.Lane.String())
	}
	return nil
}

// encode sets the lane's new record to v.
func (s *send) encode(v any) {
	b, err := json.Marshal(v)
	if err != nil { // the records are plain structs
		panic(err)
	}
	s.res.Data = b
}

// peopleRecord is what the employee's lane told: the events reflected,
// the Reveal DM and the DM channel.
type peopleRecord struct {
	Done   int `json:"done"`
	Reveal ref `json:"reveal"`
}

// people brings the employee's DMs up to date: the Reveal button once a
// reset is approved, a notice for each event that needs one, and the
// Reveal DM showing the request's state (through the Reveal click's reply
// when there is one). A reset in progress is left alone: its outcome
// follows within the reset's lease.
func (s *send) people(ctx context.Context) error {
	var rec peopleRecord
	if err := s.decode(&rec); err != nil {
		return err
	}
	defer s.encode(&rec)
	r, ok, err := s.subject(ctx)
	if !ok || err != nil {
		return err
	}
	if r.Status == workflow.StatusResetting {
		return nil
	}
	// The employee's DMs; for an employee with no Slack account, the
	// agent's who asked (they get the Reveal).
	to := r.Recipient()
	for ; rec.Done < len(r.Events); rec.Done++ {
		switch ev := r.Events[rec.Done]; {
		case ev.Kind == workflow.EventApproved && !r.IsUnlock():
			if rec.Reveal.TS != "" {
				continue
			}
			m, err := s.post(ctx, to, RevealMessage(r), PriorityNext)
			if err != nil {
				return err
			}
			rec.Reveal = m
		default:
			if msg, ok := EmployeeNotice(r, ev); ok {
				if _, err := s.post(ctx, to, msg, PriorityNext); err != nil {
					return err
				}
			}
		}
	}
	h, err := s.replace(ctx, rec.Reveal, RevealMessage(r), PriorityNext)
	rec.Reveal.Hash = h
	return err
}

// auditRecord is what the audit lane told: the parent message, the
// events in its thread, and whether the owner's report was alerted.
type auditRecord struct {
	Parent  ref  `json:"parent"`
	Audited int  `json:"audited"`
	Alerted bool `json:"alerted,omitempty"`
}

// audit brings the request's thread in the audit channel up to date: an
// owner's report ("This wasn't me") first, as an alert of its own; the
// parent message then (posted once, then updated to the latest state:
// it shows the state at a glance, and chat.update's limit is not the
// channel's, where the replies of a burst queue up), then one reply for
// all the events not in the thread yet.
func (s *send) audit(ctx context.Context) error {
	var rec auditRecord
	if err := s.decode(&rec); err != nil {
		return err
	}
	defer s.encode(&rec)
	r, ok, err := s.subject(ctx)
	if !ok || err != nil {
		return err
	}
	if s.n.AuditChannel == "" {
		rec.Audited = len(r.Events)
		return nil
	}
	if r.Reported() && !rec.Alerted {
		// Helpdesk is told at once, in a message of its own that mentions
		// them, ahead of the thread.
		if _, err := s.post(ctx, s.n.AuditChannel, ReportAlert(r, s.n.Helpdesk), PriorityNow); err != nil {
			return err
		}
		rec.Alerted = true
	}
	if rec.Parent.Channel == "" {
		m, err := s.post(ctx, s.n.AuditChannel, AuditParent(r), PriorityAudit)
		if err != nil {
			return err
		}
		// TS stays "" if Slack refused it for good: nobody tries again.
		rec.Parent = ref{Channel: s.n.AuditChannel, TS: m.TS, Hash: m.Hash}
	}
	if rec.Parent.TS == "" {
		rec.Audited = len(r.Events)
		return nil
	}
	if rec.Parent.Hash, err = s.replace(ctx, rec.Parent, AuditParent(r), PriorityAudit); err != nil {
		return err
	}
	for rec.Audited < len(r.Events) {
		reply, next := AuditReplies(r, rec.Audited)
		if _, err := s.post(ctx, rec.Parent.Channel, reply, PriorityAuditReply, slack.MsgOptionTS(rec.Parent.TS)); err != nil {
			return err
		}
		rec.Audited = next
	}
	return nil
}

// QueueWindow is how long new requests for an approver wait after the
// last post to them, so that those of a burst share one message.
const QueueWindow = 300 * time.Millisecond

// maxQueueRows is how many requests one approver message lists: Block
// Kit's 50 blocks, less the 2 of the heading, at 2 a pending row.
const maxQueueRows = (50 - 2) / 2

// queueRecord is what an approver's lane told: the messages that list
// requests not all decided yet (or whose last state is not shown yet),
// when the last one was posted, and the requests whose reminder was
// posted (or needed none: listed for the first time after it).
type queueRecord struct {
	Messages []queueMessage `json:"messages,omitempty"`
	Posted   time.Time      `json:"posted,omitzero"`
	Reminded []string       `json:"reminded,omitempty"`
}

// queueMessage is one message of an approver's queue and its rows.
type queueMessage struct {
	ref
	Rows     []string `json:"rows"`               // request IDs, in the order shown
	Stale    bool     `json:"stale,omitempty"`    // a row's request changed since it was drawn
	Reminder bool     `json:"reminder,omitempty"` // a reminder (ReminderMessage)
}

// draw is m's message with rows.
func (m queueMessage) draw(approver string, rows []*workflow.Request) Msg {
	if m.Reminder {
		return ReminderMessage(approver, rows)
	}
	return QueueMessage(approver, rows)
}

// queue brings an approver's messages up to date, in the order people
// wait for them: first the messages someone clicked (redrawn through the
// click's reply, which costs no chat.update); then the requests that
// joined the queue (the lane's inbox) in new messages, those of one
// window together, and the requests whose reminder is due and not yet
// posted in a reminder, a new message (so that Slack notifies), those of
// one window together; last the other messages whose requests changed
// (another approver decided, they expired, they were reminded), with
// chat.update. A request lists only if the approver is one of its
// approvers. Items whose post did not happen stay in the inbox. Which
// messages are stale is saved with the record, so that a lane left
// waiting for a rate-limited key redraws them when it runs again.
func (s *send) queue(ctx context.Context) error {
	var rec queueRecord
	if err := s.decode(&rec); err != nil {
		return err
	}
	defer s.encode(&rec)
	defer func() {
		rec.Messages = slices.DeleteFunc(rec.Messages, func(m queueMessage) bool { return m.Rows == nil })
		rec.Reminded = slices.DeleteFunc(rec.Reminded, func(id string) bool {
			return !slices.ContainsFunc(rec.Messages, func(m queueMessage) bool { return slices.Contains(m.Rows, id) })
		})
	}()
	approver := s.w.Lane.Subject
	var ids []string
	for _, item := range s.w.Inbox {
		ids = append(ids, delivery.ItemRequest(item))
	}
	byID := map[string]*workflow.Request{}
	if err := s.readInto(ctx, ids, byID); err != nil {
		return err // nothing handled: the inbox waits for the next round
	}
	keep := map[string]bool{} // requests whose items stay in the inbox: not posted yet
	defer func() {
		for _, item := range s.w.Inbox {
			if !keep[delivery.ItemRequest(item)] {
				s.res.Handled = append(s.res.Handled, item)
			}
		}
	}()
	var fresh, remind []*workflow.Request
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		r := byID[id]
		if r == nil || !r.IsApprover(approver) {
			continue
		}
		listed := false
		for i := range rec.Messages {
			if slices.Contains(rec.Messages[i].Rows, id) {
				rec.Messages[i].Stale, listed = true, true
			}
		}
		switch {
		case r.Status != workflow.StatusPending:
		case !listed:
			fresh = append(fresh, r)
			keep[id] = true
		case r.Reminded() && !slices.Contains(rec.Reminded, id):
			remind = append(remind, r)
			keep[id] = true
		}
	}
	// The clicked messages: the answer someone waits for.
	for i := range rec.Messages {
		if _, ok := s.reply(rec.Messages[i].ref); ok {
			if err := s.redraw(ctx, &rec.Messages[i], byID); err != nil {
				return err
			}
		}
	}
	if err := s.postRows(ctx, &rec, fresh, remind, keep); err != nil {
		return err
	}
	for i := range rec.Messages {
		if rec.Messages[i].Stale {
			if err := s.redraw(ctx, &rec.Messages[i], byID); err != nil {
				return err
			}
		}
	}
	return nil
}

// redraw makes message m show its rows as they are now.
func (s *send) redraw(ctx context.Context, m *queueMessage, byID map[string]*workflow.Request) error {
	rows, err := s.rows(ctx, m.Rows, byID)
	if err != nil {
		return err
	}
	h, err := s.replace(ctx, m.ref, m.draw(s.w.Lane.Subject, rows), PriorityOthers)
	m.Hash = h
	if err != nil {
		return err
	}
	m.Stale = false
	s.settle(m.ref, rows)
	if !slices.ContainsFunc(rows, func(r *workflow.Request) bool { return r.Status == workflow.StatusPending }) {
		m.Rows = nil // all decided and shown: done with it
	}
	return nil
}

// settle sorts the replies of the clicks on message m, now drawn with
// rows: a reply whose request the message still shows pending (the
// click's change was not saved yet when it was drawn) is kept for the
// next run, which then shows the click's outcome through it rather than
// with chat.update; a reply whose request it shows decided has nothing
// more to show, and is used. A reply whose post failed is not used again.
func (s *send) settle(m ref, rows []*workflow.Request) {
	pending := func(id string) bool {
		return slices.ContainsFunc(rows, func(r *workflow.Request) bool { return r.ID == id && r.Status == workflow.StatusPending })
	}
	for _, r := range s.w.Replies {
		if r.Message != m.id() || r.Request == "" || slices.Contains(s.failed, r) {
			continue
		}
		used := slices.Contains(s.res.UsedReplies, r)
		switch {
		case used && pending(r.Request):
			s.res.UsedReplies = slices.DeleteFunc(s.res.UsedReplies, func(u delivery.Reply) bool { return u == r })
		case !used && !pending(r.Request):
			s.res.UsedReplies = append(s.res.UsedReplies, r)
		}
	}
}

// postRows lists the requests fresh in new messages and the requests
// remind in reminders, oldest first, as many to a message as Block Kit
// allows; within the window after the last post it leaves them for one
// post at the window's end. What it posts it takes out of keep; the
// rest stays in the inbox for the next round.
func (s *send) postRows(ctx context.Context, rec *queueRecord, fresh, remind []*workflow.Request, keep map[string]bool) error {
	if len(fresh)+len(remind) == 0 {
		return nil
	}
	window := s.n.Window
	if window == 0 {
		window = QueueWindow
	}
	if next := rec.Posted.Add(window); window > 0 && time.Now().Before(next) {
		// Others may join these in a moment: one post for them all.
		s.res.Next = next
		return nil
	}
	approver := s.w.Lane.Subject
	for _, batch := range []struct {
		rows     []*workflow.Request
		reminder bool
		size     int
	}{{fresh, false, maxQueueRows}, {remind, true, maxQueueRows - 1}} {
		slices.SortStableFunc(batch.rows, func(a, b *workflow.Request) int { return a.CreatedAt.Compare(b.CreatedAt) })
		for rows := range slices.Chunk(batch.rows, batch.size) {
			m := queueMessage{Reminder: batch.reminder}
			posted, err := s.post(ctx, approver, m.draw(approver, rows), PriorityNext)
			if err != nil {
				return err // not posted: these rows and those after them stay in the inbox
			}
			rec.Posted = time.Now()
			for _, r := range rows {
				delete(keep, r.ID)
				if r.Reminded() {
					rec.Reminded = append(rec.Reminded, r.ID)
				}
			}
			if posted.TS == "" {
				continue // refused for good (a deactivated approver): nothing to update later
			}
			m.ref = posted
			for _, r := range rows {
				m.Rows = append(m.Rows, r.ID)
			}
			rec.Messages = append(rec.Messages, m)
		}
	}
	return nil
}

// readInto reads the requests ids not in byID into it: in one round trip
// when the store can (manyRequests), and one by one those it did not
// return (so that a refused one is reported as request does). A request
// that is gone or was refused is left out.
func (s *send) readInto(ctx context.Context, ids []string, byID map[string]*workflow.Request) error {
	var want []string
	for _, id := range ids {
		if byID[id] == nil && !slices.Contains(want, id) {
			want = append(want, id)
		}
	}
	if many, ok := s.n.Requests.(manyRequests); ok && len(want) > 1 {
		rs, err := many.GetMany(ctx, want)
		if err != nil {
			return err
		}
		for _, r := range rs {
			if r != nil {
				byID[r.ID] = r
			}
		}
	}
	for _, id := range want {
		if byID[id] != nil {
			continue
		}
		r, ok, err := s.request(ctx, id)
		if err != nil {
			return err
		}
		if ok {
			byID[id] = r
		}
	}
	return nil
}

// many reads the requests ids (see readInto).
func (s *send) many(ctx context.Context, ids []string) (map[string]*workflow.Request, error) {
	out := map[string]*workflow.Request{}
	return out, s.readInto(ctx, ids, out)
}

// rows reads the requests ids, those in byID from there; a request that
// is gone or not the approver's is left out.
func (s *send) rows(ctx context.Context, ids []string, byID map[string]*workflow.Request) ([]*workflow.Request, error) {
	if err := s.readInto(ctx, ids, byID); err != nil {
		return nil, err
	}
	var out []*workflow.Request
	for _, id := range ids {
		if r := byID[id]; r != nil && r.IsApprover(s.w.Lane.Subject) {
			out = append(out, r)
		}
	}
	return out, nil
}

// Refused tells the audit channel about a refusal (workflow.Notifier).
func (n *Lanes) Refused(ctx context.Context, f workflow.Refusal) error {
	if n.AuditChannel == "" {
		return nil
	}
	s := &send{n: n, w: delivery.Work{Lane: delivery.Lane{Kind: delivery.KindAudit, Subject: "refusal"}}}
	_, err := s.post(ctx, n.AuditChannel, RefusalMessage(f), PriorityAudit)
	if errors.Is(err, errParked) {
		// Not a lane: wait for the key in the gate.
		return n.Gate.Do(ctx, "chat.postMessage:"+n.AuditChannel, PriorityAudit, func() error {
			_, _, err := n.API.PostMessageContext(ctx, n.AuditChannel, RefusalMessage(f).Options()...)
			return err
		})
	}
	return err
}

// permanent reports whether Slack answered err with a refusal that a retry
// would meet again (such as channel_not_found, not_in_channel,
// user_disabled), rather than an outage or rate limit.
func permanent(err error) bool {
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) {
		return false
	}
	switch se.Err {
	case "ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout", "team_added_to_org":
		return false
	}
	return true
}

func (n *Lanes) httpClient() *http.Client {
	if n.HTTP != nil {
		return n.HTTP
	}
	return http.DefaultClient
}

// digest identifies a message's content, so that a message already showing
// it is not updated again.
func digest(m Msg) string {
	b, _ := json.Marshal(m)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// clickedMessage is the message a click came from, "channel/ts".
func clickedMessage(cb slack.InteractionCallback) string {
	ch, ts := cb.Channel.ID, cb.Container.MessageTs
	if ch == "" {
		ch = cb.Container.ChannelID
	}
	if ts == "" {
		ts = cb.Message.Timestamp
	}
	if ch == "" || ts == "" {
		return ""
	}
	return ch + "/" + ts
}

// replyUntil is how long a click's response_url is used to replace the
// clicked message: Slack accepts posts for 30 minutes.
const replyUntil = 25 * time.Minute

// clickReply is the reply of click cb, for the lane that drew the clicked
// message; ok is false when the click has no response_url or message.
func clickReply(cb slack.InteractionCallback, now time.Time) (delivery.Reply, bool) {
	m := clickedMessage(cb)
	if m == "" || !strings.HasPrefix(cb.ResponseURL, "http") {
		return delivery.Reply{}, false
	}
	return delivery.Reply{Message: m, URL: cb.ResponseURL, Expires: now.Add(replyUntil)}, true
}
