// Package delivery remembers what the bot told whom about each request,
// and brings chat up to date when a request changes. It is the bot's
// notification log (as Alertmanager's nflog is: apart from the alerts),
// kept apart from the request itself: workflow owns a request's state and
// history, delivery owns the messages that tell people about it.
//
// Chat work comes in lanes (Lane): one per request and audience (the
// employee's DMs, the audit channel) and one per approver (their queue of
// requests to decide). Each lane has one record in the store (Record:
// what was posted where and what it shows, sealed like the requests),
// written only by whoever holds the lane's lease. A transition marks the
// lanes it concerns due in the same atomic write as the change of the
// request (the stores call Marks), so that nothing a change must tell is
// lost when a replica dies; a fixed pool of workers (Engine) takes due
// lanes, oldest first, and hands each to the chat adapter (Sender), which
// says what it sent, when to look again, or that it waits for a
// rate-limited key (it is then woken when the key is free, not by a timer).
//
// Chat is at least once: a worker that dies after Slack answered and
// before its record was saved has the message sent again by the next
// holder. State is exactly once: that is the workflow's.
package delivery

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/example/resetbot/workflow"
)

// Kind is what a lane tells, and to whom.
type Kind string

// The kinds of lane.
const (
	// KindPeople: the employee's DMs about their request (the Reveal
	// button, what happened to the request). Subject: the request ID.
	KindPeople Kind = "people"
	// KindQueue: one approver's messages listing the requests they are
	// asked to decide. Subject: the approver's chat user ID. Its inbox
	// holds the IDs of the requests that joined or left their queue.
	KindQueue Kind = "queue"
	// KindHome: one person's Home tab in the app: the requests they are
	// asked to decide, their recent decisions, their own requests (and
	// for helpdesk the latest requests). Subject: their chat user ID. Its
	// inbox holds the IDs of the requests that changed for them.
	KindHome Kind = "home"
	// KindAudit: the audit channel's thread of a request. Subject: the
	// request ID.
	KindAudit Kind = "audit"
)

// Kinds are the lane kinds, the most urgent first: the order in which a
// worker takes lanes that are due at the same time.
var Kinds = []Kind{KindPeople, KindQueue, KindHome, KindAudit}

// Lane names one stream of chat work and its record.
type Lane struct {
	Kind    Kind
	Subject string
}

// String is the lane's name in the store: kind ":" subject.
func (l Lane) String() string { return string(l.Kind) + ":" + l.Subject }

// ParseLane returns the lane named s (Lane.String), or false.
func ParseLane(s string) (Lane, bool) {
	k, subject, ok := strings.Cut(s, ":")
	if !ok || subject == "" || !slices.Contains(Kinds, Kind(k)) {
		return Lane{}, false
	}
	return Lane{Kind(k), subject}, true
}

// People, Queue and Audit return the lanes of a request or an approver.
func People(requestID string) Lane { return Lane{KindPeople, requestID} }
func Queue(approver string) Lane   { return Lane{KindQueue, approver} }
func Audit(requestID string) Lane  { return Lane{KindAudit, requestID} }

// Home returns the lane of a person's Home tab.
func Home(user string) Lane { return Lane{KindHome, user} }

// Mark is a lane made due by a change, with an item for its inbox ("" for
// none).
type Mark struct {
	Lane Lane
	Item string
}

// Item is the inbox item that says request id changed to its version of
// n events: each change of a request is an item of its own, so that a
// change while the lane's holder works on an earlier one is not taken for
// it when the holder removes what it handled.
func Item(id string, n int) string { return id + "@" + strconv.Itoa(n) }

// ItemRequest returns the request ID of an inbox item.
func ItemRequest(item string) string {
	id, _, _ := strings.Cut(item, "@")
	return id
}

// Marks returns the lanes the change of r that added r.Events[before:]
// concerns: the audit channel's; the employee's unless the request was
// only made by the employee themselves (the answer to their command told
// them); and each approver's queue when the request joins it (requested,
// or escalated to them), is reminded or escalated (its card changes), or
// leaves it (decided, or
// expired or cancelled before anyone decided), with the request in the
// queue's inbox; and the Home lanes of the employee (at every change)
// and of the approvers (when their queue is marked), with the request in
// their inbox. A reveal alone marks nothing: its outcome follows within
// the reset's lease (or the sweeper's recovery does), and tells both the
// reveal and the outcome at once. The stores write these marks in the
// same atomic step as the change (see Store); the engine also runs them
// here at once (Engine.Changed).
func Marks(r *workflow.Request, before int) []Mark {
	added := r.Events[min(max(before, 0), len(r.Events)):]
	if !slices.ContainsFunc(added, func(ev workflow.Event) bool { return ev.Kind != workflow.EventRevealed }) {
		return nil
	}
	marks := []Mark{{Lane: Audit(r.ID)}}
	// A request the employee made themselves needs no DM (their command's
	// answer told them); one a helpdesk agent made on their behalf does.
	if r.Agent != "" || slices.ContainsFunc(added, func(ev workflow.Event) bool { return ev.Kind != workflow.EventRequested }) {
		marks = append(marks, Mark{Lane: People(r.ID)})
	}
	item := Item(r.ID, len(r.Events))
	if r.InChat() {
		marks = append(marks, Mark{Lane: Home(r.Requester), Item: item})
	}
	queue := false
	for _, ev := range added {
		switch ev.Kind {
		case workflow.EventRequested, workflow.EventApproved, workflow.EventDenied,
			workflow.EventReminded, workflow.EventEscalated:
			queue = true
		case workflow.EventExpired, workflow.EventCancelled:
			queue = queue || r.DecidedBy == ""
		}
	}
	if queue {
		for _, a := range r.Approvers {
			marks = append(marks, Mark{Lane: Queue(a), Item: item}, Mark{Lane: Home(a), Item: item})
		}
	}
	return marks
}

// Taken is a lane as its lease holder took it.
type Taken struct {
	Lane  Lane
	Data  []byte    // the record's data (what the lane told so far); nil for a lane never saved
	Inbox []string  // items marked for the lane and not yet handled
	Due   time.Time // the lane's due time as Take left it (its lease end, or later); zero when it was not due
	// Request is the request a request's lane tells about, read with the
	// lane (verified as Store.Get does); nil for an approver's lane, and
	// for a request that is gone or failed verification.
	Request *workflow.Request
}

// Request returns the ID of the request lane l tells about, or "" for
// a person's lane (an approver's queue, a Home tab).
func (l Lane) Request() string {
	if l.Kind == KindQueue || l.Kind == KindHome {
		return ""
	}
	return l.Subject
}

// Store keeps the lanes' records, leases, due times and inboxes. The
// workflow.Store's Create and Update write Marks(r, before) of each change
// in the same atomic step: each marked lane becomes due at the change's
// time (an earlier due time is kept) and gets the mark's item in its inbox.
// Records are sealed: a record that fails verification is refused with
// workflow.CodeTampered (its cause a *workflow.Tampered naming the lane)
// and moved aside, and the lane starts again from nothing.
type Store interface {
	// DueLanes returns up to max lanes due at or before now, the earliest
	// first. Errors: workflow.CodeUnavailable.
	DueLanes(ctx context.Context, now time.Time, max int) ([]Lane, error)

	// Take leases lane l to owner until until, unless another owner
	// holds its lease; ok is false then, and nothing changes. A lane due
	// at or before now becomes due at until, so that another replica
	// takes it over if owner stops. It reads the lane's request with it
	// (Taken.Request). Errors: workflow.CodeUnavailable,
	// workflow.CodeTampered (the record was moved aside; Take again).
	Take(ctx context.Context, l Lane, owner string, now, until time.Time) (t Taken, ok bool, err error)

	// Put saves data as lane t.Lane's record for owner, if owner still
	// holds its lease, removes the handled items from its inbox, and
	// sets its due time: unless the lane was marked again since Take
	// (then it stays due as marked), next, or not due when next is zero.
	// It lets the lease go when release is set, and keeps it otherwise
	// (the lane waits for a rate-limited key here).
	// Errors: workflow.CodeConflict (owner lost the lease: nothing was
	// saved), workflow.CodeUnavailable.
	Put(ctx context.Context, t Taken, owner string, data []byte, handled []string, next time.Time, release bool) error
}

// Reply is a way to replace one of a lane's messages without spending
// chat.update: the response URL of a click on it (Slack takes 5 posts
// within 30 minutes on one).
type Reply struct {
	Message string    // channel "/" ts of the clicked message
	URL     string    // where to post the replacement
	Expires time.Time // not used after this
	// Request is the request the click was on ("" when unknown): a lane
	// may keep the reply until the message shows the click's outcome.
	Request string
}

// Work is what a Sender gets to bring a lane up to date.
type Work struct {
	Lane    Lane
	Data    []byte   // what the lane told so far (nil: nothing yet)
	Inbox   []string // items marked for the lane since
	Replies []Reply  // clicks on the lane's messages whose answer may replace them
	// Request is the request of a request's lane as Take read it; nil
	// when the Sender must read it itself.
	Request *workflow.Request
}

// Result is what a Sender did.
type Result struct {
	Data    []byte   // what the lane has told now; saved as its record
	Handled []string // the inbox items dealt with
	// Next, when set, is when the lane must be looked at again although
	// nothing marks it (a coalescing window, a failure's retry).
	Next time.Time
	// Wait, when set, says that some messages wait for a rate-limited
	// key: the engine saves what was sent, keeps the lease, and calls
	// Wait with a function that makes the lane run again, which the
	// Sender calls (once) when the key is free for them.
	Wait func(wake func())
	// UsedReplies are the replies spent (their message was replaced).
	UsedReplies []Reply
}

// Sender brings chat up to date for one lane: the chat adapter
// (slackapp.Lanes) implements it. Send returns what it sent even when it
// fails part way, with the error: the engine saves that and tries again
// later.
type Sender interface {
	Send(ctx context.Context, w Work) (Result, error)
}
