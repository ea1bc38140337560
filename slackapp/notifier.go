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
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/example/resetbot/workflow"
)

// Notifier tells approvers, the employee and the audit channel what happens
// to a request, and delivers the password as an ephemeral message. Every
// Slack call goes through Gate with the priority of who waits for it.
type Notifier struct {
	API          *slack.Client
	HTTP         *http.Client // for response_url posts; nil: http.DefaultClient
	AuditChannel string       // empty: no channel audit
	Log          *slog.Logger
	Gate         *Gate // nil: no rate-limit handling beyond errors
}

var _ workflow.Notifier = (*Notifier)(nil)

// Sync implements workflow.Notifier. The people lane answers the click that
// caused the change first (the clicked message, through the click's
// response_url), then sends each new event's DMs once (Messages.Notified
// remembers), then brings the other messages up to date, skipping those
// that already show the current content. The audit lane posts the parent
// message once or updates it to the latest state, then posts one thread
// reply for all the events not yet in the thread.
//
// A message Slack refuses for good (a deactivated approver, a bot not in the
// audit channel, a deleted message) is logged and skipped, so that one bad
// recipient cannot hold up everyone else; other failures (network, Slack
// down) are returned, and the sync is retried later.
func (n *Notifier) Sync(ctx context.Context, r *workflow.Request, l workflow.Lane) (workflow.Messages, int, error) {
	m := r.Messages
	m.Approvers = slices.Clone(m.Approvers)
	done := r.Outbox[l].Done
	var err error
	sent := &m.Notified
	if l == workflow.LaneAudit {
		err, sent = n.audit(ctx, r, &m), &m.Audited
	} else {
		err = n.people(ctx, r, &m)
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			// The lane's time ran out while Slack held calls back: not a
			// failure, the lane goes on later.
			err = workflow.ErrDeferred
		}
		// What was sent is recorded in m; leave at least the last event to
		// be synced again so that a retry repeats only the updates.
		return m, max(0, min(*sent, len(r.Events)-1)-done), err
	}
	return m, len(r.Events) - done, nil
}

// deferAfter is the longest Retry-After the people lane waits out for a
// message that is not the next thing someone waits for (another
// approver's DM, an update of someone else's message): longer, and the
// message is left for a later round, so that one throttled channel does not
// hold up the rest of the request.
const deferAfter = 2 * time.Second

// people is the people lane of Sync.
func (n *Notifier) people(ctx context.Context, r *workflow.Request, m *workflow.Messages) error {
	n.answerClick(ctx, r, m)
	deferred := false
	if m.Notified > 0 && r.Status == workflow.StatusPending {
		// Approvers left for later on an earlier round.
		d, err := n.askApprovers(ctx, r, m)
		if err != nil {
			return err
		}
		deferred = deferred || d
	}
	for i := m.Notified; i < len(r.Events); i++ {
		d, err := n.event(ctx, r, m, i)
		if err != nil {
			return err
		}
		deferred = deferred || d
		m.Notified = i + 1
	}
	d, err := n.refresh(ctx, r, m)
	if err != nil {
		return err
	}
	if deferred || d {
		return workflow.ErrDeferred
	}
	return nil
}

// event sends the DMs event i needs; deferred says some were left for a
// later round.
func (n *Notifier) event(ctx context.Context, r *workflow.Request, m *workflow.Messages, i int) (deferred bool, err error) {
	switch ev := r.Events[i]; ev.Kind {
	case workflow.EventRequested:
		return n.askApprovers(ctx, r, m)
	case workflow.EventApproved:
		if m.Employee.TS != "" {
			return false, nil
		}
		msg := RevealMessage(r)
		ref, err := n.post(ctx, r.Requester, msg, PriorityNext)
		if err := n.tolerate(r, err, "send the Reveal button to the employee"); err != nil {
			return false, err
		}
		ref.User, ref.Hash = r.Requester, digest(msg)
		m.Employee = ref
	default:
		if msg, ok := EmployeeNotice(r, ev); ok {
			ref, err := n.post(ctx, r.Requester, msg, PriorityNext)
			if err := n.tolerate(r, err, "tell the employee about "+string(ev.Kind)); err != nil {
				return false, err
			}
			if m.Employee.Channel == "" && ref.Channel != "" {
				m.Employee = workflow.MessageRef{User: r.Requester, Channel: ref.Channel}
			}
		}
	}
	return false, nil
}

// askApprovers DMs, at the same time, every approver who has not got the
// request yet, but those whose channel Slack holds back for longer than
// deferAfter: they are left for a later round (deferred).
func (n *Notifier) askApprovers(ctx context.Context, r *workflow.Request, m *workflow.Messages) (deferred bool, err error) {
	msg := ApprovalMessage(r)
	var todo []string
	for _, a := range r.Approvers {
		switch {
		case slices.ContainsFunc(m.Approvers, func(ref workflow.MessageRef) bool { return ref.User == a }):
		default:
			todo = append(todo, a)
		}
	}
	refs, errs := make([]workflow.MessageRef, len(todo)), make([]error, len(todo))
	var wg sync.WaitGroup
	for i, a := range todo {
		wg.Go(func() {
			refs[i], errs[i] = n.postWithin(ctx, a, msg, PriorityNext, deferAfter)
			refs[i].User, refs[i].Hash = a, digest(msg)
			// An approver Slack refuses for good is recorded without a
			// message, so that nobody tries again.
			errs[i] = n.tolerate(r, errs[i], "ask approver "+a)
		})
	}
	wg.Wait()
	for i, err := range errs {
		switch {
		case errors.Is(err, ErrThrottled):
			deferred, errs[i] = true, nil
		case err == nil:
			m.Approvers = append(m.Approvers, refs[i])
		}
	}
	return deferred, errors.Join(errs...)
}

// target is a posted message and what it should show now.
type target struct {
	ref  *workflow.MessageRef
	msg  Msg
	prio Priority
}

// targets lists the people lane's messages with what they should show.
func targets(r *workflow.Request, m *workflow.Messages) []target {
	var ts []target
	if r.Status != workflow.StatusPending {
		approval := ApprovalMessage(r)
		for i := range m.Approvers {
			ts = append(ts, target{&m.Approvers[i], approval, PriorityOthers})
		}
	}
	if m.Employee.TS != "" {
		ts = append(ts, target{&m.Employee, RevealMessage(r), PriorityNext})
	}
	return ts
}

// refresh updates, at the same time, every message that does not show its
// current content yet; when Slack holds chat.update back for longer than
// deferAfter, they are left for a later round (deferred).
func (n *Notifier) refresh(ctx context.Context, r *workflow.Request, m *workflow.Messages) (deferred bool, err error) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, t := range targets(r, m) {
		h := digest(t.msg)
		if t.ref.TS == "" || t.ref.Hash == h {
			continue
		}
		wg.Go(func() {
			err := n.tolerate(r, n.updateWithin(ctx, *t.ref, t.msg, t.prio, deferAfter), "update message "+t.ref.Channel+"/"+t.ref.TS)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, ErrThrottled):
				deferred = true
			case err != nil:
				errs = append(errs, err)
			default:
				t.ref.Hash = h
			}
		})
	}
	wg.Wait()
	return deferred, errors.Join(errs...)
}

// answerClick updates the message whose button caused this change, first
// and through the click's response_url (which Slack does not count against
// chat.update's limit). A failure is left to refresh.
func (n *Notifier) answerClick(ctx context.Context, r *workflow.Request, m *workflow.Messages) {
	c, ok := clickFrom(ctx)
	if !ok || c.responseURL == "" {
		return
	}
	for _, t := range targets(r, m) {
		if t.ref.Channel != c.channel || t.ref.TS != c.ts || t.ref.Hash == digest(t.msg) {
			continue
		}
		// Slack limits each response_url on its own: one key per clicked
		// message, so that one person's answer never queues behind
		// another's.
		err := n.Gate.Do(ctx, "response_url:"+c.channel+"/"+c.ts, PriorityNow, func() error {
			return slack.PostWebhookCustomHTTPContext(ctx, c.responseURL, n.httpClient(), &slack.WebhookMessage{
				Text: t.msg.Text, Blocks: &slack.Blocks{BlockSet: t.msg.Blocks}, ReplaceOriginal: true,
			})
		})
		if err != nil {
			n.Log.Warn("could not update the clicked message through its response_url; updating it instead", "request_id", r.ID, "error", err)
			return
		}
		t.ref.Hash = digest(t.msg)
	}
}

// audit is the audit lane of Sync.
func (n *Notifier) audit(ctx context.Context, r *workflow.Request, m *workflow.Messages) error {
	if n.AuditChannel == "" {
		m.Audited = len(r.Events)
		return nil
	}
	if m.Audit.Channel == "" {
		parent := AuditParent(r)
		ref, err := n.post(ctx, n.AuditChannel, parent, PriorityAudit)
		if err := n.tolerate(r, err, "post to the audit channel (is the bot a member of AUDIT_CHANNEL?)"); err != nil {
			return err
		}
		// TS stays "" if Slack refused it for good: nobody tries again.
		m.Audit = workflow.MessageRef{Channel: n.AuditChannel, TS: ref.TS, Hash: digest(parent)}
	}
	if m.Audit.TS == "" {
		m.Audited = len(r.Events)
		return nil
	}
	// The parent first: it shows the state at a glance, and chat.update's
	// limit is not the channel's, where the replies of a burst queue up.
	parent := AuditParent(r)
	if h := digest(parent); h != m.Audit.Hash {
		if err := n.tolerate(r, n.update(ctx, m.Audit, parent, PriorityAudit), "update the audit parent"); err != nil {
			return err
		}
		m.Audit.Hash = h
	}
	for m.Audited < len(r.Events) {
		reply, next := AuditReplies(r, m.Audited)
		_, err := n.post(ctx, m.Audit.Channel, reply, PriorityAudit, slack.MsgOptionTS(m.Audit.TS))
		if err := n.tolerate(r, err, "reply in the audit thread"); err != nil {
			return err
		}
		m.Audited = next
	}
	return nil
}

// tolerate returns nil for nil and for errors Slack will give again on any
// retry (after logging them), and err itself for errors worth retrying.
func (n *Notifier) tolerate(r *workflow.Request, err error, what string) error {
	if err == nil || !permanent(err) {
		return err
	}
	n.Log.Error("Slack refused a message for good; skipping it", "request_id", r.ID, "what", what, "error", err)
	return nil
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

// DeliverPassword implements workflow.Notifier: an ephemeral message in the
// employee's DM with the bot, visible to them only and never stored.
func (n *Notifier) DeliverPassword(ctx context.Context, r *workflow.Request, d workflow.Delivery) error {
	ch := r.Messages.Employee.Channel
	if c, ok := clickFrom(ctx); ok && c.user == r.Requester && strings.HasPrefix(c.channel, "D") {
		ch = c.channel // the Reveal click came from the DM
	}
	if ch == "" {
		var err error
		if ch, err = n.openDM(ctx, r.Requester); err != nil {
			return err
		}
	}
	err := n.Gate.Do(ctx, "chat.postEphemeral", PriorityNext, func() error {
		_, err := n.API.PostEphemeralContext(ctx, ch, r.Requester, PasswordMessage(r, d).Options()...)
		return err
	})
	if err != nil {
		return workflow.Wrap(workflow.CodeDeliveryFailed, err, "chat.postEphemeral to "+ch)
	}
	return nil
}

// Refused implements workflow.Notifier: one message in the audit channel.
func (n *Notifier) Refused(ctx context.Context, f workflow.Refusal) error {
	if n.AuditChannel == "" {
		return nil
	}
	_, err := n.post(ctx, n.AuditChannel, RefusalMessage(f), PriorityAudit)
	return n.tolerate(&workflow.Request{ID: "(refused, not stored)"}, err, "post a refusal to the audit channel")
}

// openDM opens the DM with user; only needed when no message or click has
// told the channel yet.
func (n *Notifier) openDM(ctx context.Context, user string) (string, error) {
	var ch *slack.Channel
	err := n.Gate.Do(ctx, "conversations.open", PriorityNext, func() error {
		var err error
		ch, _, _, err = n.API.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{user}})
		return err
	})
	if err != nil {
		return "", workflow.Wrap(workflow.CodeInternal, err, "conversations.open with "+user)
	}
	return ch.ID, nil
}

// post sends msg to channel, which may be a user ID: Slack then posts in
// the bot's DM with that user and answers with the DM's channel ID (no
// conversations.open needed). DMs always go to the user ID, so that the
// gate sees one key per person.
func (n *Notifier) post(ctx context.Context, channel string, msg Msg, prio Priority, opts ...slack.MsgOption) (workflow.MessageRef, error) {
	return n.postWithin(ctx, channel, msg, prio, 0, opts...)
}

// postWithin is post for a message that waits at most maxWait for a
// Retry-After (0: no bound); past that it returns ErrThrottled.
func (n *Notifier) postWithin(ctx context.Context, channel string, msg Msg, prio Priority, maxWait time.Duration, opts ...slack.MsgOption) (workflow.MessageRef, error) {
	var ref workflow.MessageRef
	err := n.Gate.DoWithin(ctx, "chat.postMessage:"+channel, prio, maxWait, func() error {
		var err error
		ref.Channel, ref.TS, err = n.API.PostMessageContext(ctx, channel, append(msg.Options(), opts...)...)
		return err
	})
	if err != nil {
		return workflow.MessageRef{}, workflow.Wrap(workflow.CodeInternal, err, "chat.postMessage to "+channel)
	}
	return ref, nil
}

func (n *Notifier) update(ctx context.Context, ref workflow.MessageRef, msg Msg, prio Priority) error {
	return n.updateWithin(ctx, ref, msg, prio, 0)
}

// updateWithin is update for a message that waits at most maxWait for a
// Retry-After (0: no bound); past that it returns ErrThrottled.
func (n *Notifier) updateWithin(ctx context.Context, ref workflow.MessageRef, msg Msg, prio Priority, maxWait time.Duration) error {
	err := n.Gate.DoWithin(ctx, "chat.update", prio, maxWait, func() error {
		_, _, _, err := n.API.UpdateMessageContext(ctx, ref.Channel, ref.TS, msg.Options()...)
		return err
	})
	if err != nil {
		return workflow.Wrap(workflow.CodeInternal, err, "chat.update of "+ref.Channel+"/"+ref.TS)
	}
	return nil
}

func (n *Notifier) httpClient() *http.Client {
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

// click is the button click being handled, carried in the context from the
// Socket Mode handler to the chat sync it causes.
type click struct{ user, channel, ts, responseURL string }

type clickKey struct{}

// withClick returns ctx carrying the click cb.
func withClick(ctx context.Context, cb slack.InteractionCallback) context.Context {
	c := click{user: cb.User.ID, channel: cb.Channel.ID, ts: cb.Container.MessageTs, responseURL: cb.ResponseURL}
	if c.channel == "" {
		c.channel = cb.Container.ChannelID
	}
	if c.ts == "" {
		c.ts = cb.Message.Timestamp
	}
	return context.WithValue(ctx, clickKey{}, c)
}

func clickFrom(ctx context.Context) (click, bool) {
	c, ok := ctx.Value(clickKey{}).(click)
	return c, ok
}
