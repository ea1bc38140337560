package slackapp

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/example/resetbot/workflow"
)

// Notifier tells approvers, the employee and the audit channel what happens
// to a request, and delivers the password as an ephemeral message.
type Notifier struct {
	API          *slack.Client
	AuditChannel string // empty: no channel audit
	Log          *slog.Logger
	Pace         *Pacer // nil: no pacing
}

var _ workflow.Notifier = (*Notifier)(nil)

// Sync implements workflow.Notifier. For each new event it sends that
// event's DMs and audit reply once (the counters in Messages remember what
// was sent), then updates every earlier message to show the current status.
//
// A message Slack refuses for good (a deactivated approver, a bot not in the
// audit channel, a deleted message) is logged and skipped, so that one bad
// recipient cannot hold up everyone else; other failures (network, Slack
// down) are returned, and the sync is retried later.
func (n *Notifier) Sync(ctx context.Context, r *workflow.Request) (workflow.Messages, int, error) {
	m := r.Messages
	m.Approvers = slices.Clone(m.Approvers)
	for i := r.SyncedEvents; i < len(r.Events); i++ {
		if err := n.event(ctx, r, &m, i); err != nil {
			return m, i - r.SyncedEvents, err
		}
	}
	if err := n.refresh(ctx, r, &m); err != nil {
		// Leave the last event to be synced again: its posts are recorded
		// as done, so a retry only repeats these updates.
		return m, max(0, len(r.Events)-1-r.SyncedEvents), err
	}
	return m, len(r.Events) - r.SyncedEvents, nil
}

// event sends what event i needs, at most once.
func (n *Notifier) event(ctx context.Context, r *workflow.Request, m *workflow.Messages, i int) error {
	ev := r.Events[i]
	if i >= m.Notified {
		switch ev.Kind {
		case workflow.EventRequested:
			if err := n.askApprovers(ctx, r, m); err != nil {
				return err
			}
			if n.AuditChannel != "" && m.Audit.Channel == "" {
				ts, err := n.post(ctx, n.AuditChannel, AuditParent(r))
				if err := n.tolerate(r, err, "post to the audit channel (is the bot a member of AUDIT_CHANNEL?)"); err != nil {
					return err
				}
				m.Audit = workflow.MessageRef{Channel: n.AuditChannel, TS: ts} // TS "" if Slack refused it
			}
		case workflow.EventApproved:
			if m.Employee.TS == "" {
				if err := n.openEmployeeDM(ctx, r, m); err != nil {
					return n.tolerate(r, err, "open a DM with the employee")
				}
				ts, err := n.post(ctx, m.Employee.Channel, RevealMessage(r))
				if err := n.tolerate(r, err, "send the Reveal button to the employee"); err != nil {
					return err
				}
				m.Employee.TS = ts
			}
		default:
			if msg, ok := EmployeeNotice(r, ev); ok {
				err := n.openEmployeeDM(ctx, r, m)
				if err == nil {
					_, err = n.post(ctx, m.Employee.Channel, msg)
				}
				if err := n.tolerate(r, err, "tell the employee about "+string(ev.Kind)); err != nil {
					return err
				}
			}
		}
		m.Notified = i + 1
	}
	if i >= m.Audited {
		if m.Audit.TS != "" {
			_, err := n.post(ctx, m.Audit.Channel, AuditReply(r, ev), slack.MsgOptionTS(m.Audit.TS))
			if err := n.tolerate(r, err, "reply in the audit thread"); err != nil {
				return err
			}
		}
		m.Audited = i + 1
	}
	return nil
}

// askApprovers DMs every approver who has not got the request yet.
func (n *Notifier) askApprovers(ctx context.Context, r *workflow.Request, m *workflow.Messages) error {
	for _, a := range r.Approvers {
		if slices.ContainsFunc(m.Approvers, func(ref workflow.MessageRef) bool { return ref.User == a }) {
			continue
		}
		ch, err := n.openDM(ctx, a)
		var ts string
		if err == nil {
			ts, err = n.post(ctx, ch, ApprovalMessage(r))
		}
		// An approver Slack refuses for good is recorded without a
		// message, so that nobody tries again.
		if err := n.tolerate(r, err, "ask approver "+a); err != nil {
			return err
		}
		m.Approvers = append(m.Approvers, workflow.MessageRef{User: a, Channel: ch, TS: ts})
	}
	return nil
}

// refresh updates the approvers' DMs, the employee's Reveal DM and the audit
// parent to r's current status.
func (n *Notifier) refresh(ctx context.Context, r *workflow.Request, m *workflow.Messages) error {
	type target struct {
		ref workflow.MessageRef
		msg Msg
	}
	var targets []target
	if r.Status != workflow.StatusPending {
		approval := ApprovalMessage(r)
		for _, ref := range m.Approvers {
			targets = append(targets, target{ref, approval})
		}
	}
	targets = append(targets, target{m.Employee, RevealMessage(r)}, target{m.Audit, AuditParent(r)})
	for _, t := range targets {
		if t.ref.TS == "" {
			continue
		}
		if err := n.tolerate(r, n.update(ctx, t.ref, t.msg), "update message "+t.ref.Channel+"/"+t.ref.TS); err != nil {
			return err
		}
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
	if ch == "" {
		var err error
		if ch, err = n.openDM(ctx, r.Requester); err != nil {
			return err
		}
	}
	n.Pace.Wait(ctx, ch)
	if _, err := n.API.PostEphemeralContext(ctx, ch, r.Requester, PasswordMessage(r, d).Options()...); err != nil {
		return workflow.Wrap(workflow.CodeDeliveryFailed, err, "chat.postEphemeral to "+ch)
	}
	return nil
}

// Refused implements workflow.Notifier: one message in the audit channel.
func (n *Notifier) Refused(ctx context.Context, f workflow.Refusal) error {
	if n.AuditChannel == "" {
		return nil
	}
	_, err := n.post(ctx, n.AuditChannel, RefusalMessage(f))
	return n.tolerate(&workflow.Request{ID: "(refused, not stored)"}, err, "post a refusal to the audit channel")
}

func (n *Notifier) openEmployeeDM(ctx context.Context, r *workflow.Request, m *workflow.Messages) error {
	if m.Employee.Channel != "" {
		return nil
	}
	ch, err := n.openDM(ctx, r.Requester)
	if err != nil {
		return err
	}
	m.Employee = workflow.MessageRef{User: r.Requester, Channel: ch}
	return nil
}

func (n *Notifier) openDM(ctx context.Context, user string) (string, error) {
	ch, _, _, err := n.API.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{user}})
	if err != nil {
		return "", workflow.Wrap(workflow.CodeInternal, err, "conversations.open with "+user)
	}
	return ch.ID, nil
}

func (n *Notifier) post(ctx context.Context, channel string, msg Msg, opts ...slack.MsgOption) (string, error) {
	n.Pace.Wait(ctx, channel)
	_, ts, err := n.API.PostMessageContext(ctx, channel, append(msg.Options(), opts...)...)
	if err != nil {
		return "", workflow.Wrap(workflow.CodeInternal, err, "chat.postMessage to "+channel)
	}
	return ts, nil
}

func (n *Notifier) update(ctx context.Context, ref workflow.MessageRef, msg Msg) error {
	n.Pace.Wait(ctx, ref.Channel)
	if _, _, _, err := n.API.UpdateMessageContext(ctx, ref.Channel, ref.TS, msg.Options()...); err != nil {
		return workflow.Wrap(workflow.CodeInternal, err, "chat.update of "+ref.Channel+"/"+ref.TS)
	}
	return nil
}

// Pacer spaces messages to one channel at least Interval apart (Slack allows
// about one message per second per channel); a nil Pacer does not wait.
type Pacer struct {
	Interval time.Duration
	mu       sync.Mutex
	next     map[string]time.Time
}

// NewPacer returns a Pacer with the given interval.
func NewPacer(interval time.Duration) *Pacer {
	return &Pacer{Interval: interval, next: map[string]time.Time{}}
}

// Wait blocks until a message may go to channel, or ctx ends.
func (p *Pacer) Wait(ctx context.Context, channel string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	now := time.Now()
	at := p.next[channel]
	if at.Before(now) {
		at = now
	}
	p.next[channel] = at.Add(p.Interval)
	for ch, t := range p.next { // forget idle channels
		if t.Before(now) {
			delete(p.next, ch)
		}
	}
	p.mu.Unlock()
	if d := at.Sub(now); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}
