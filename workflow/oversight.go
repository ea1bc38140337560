package workflow

import (
	"fmt"
	"slices"
	"time"
)

// The steps that record something about a request without moving its
// status: a reminder and an escalation while it waits for a decision,
// and, after a reset, the owner's report ("This wasn't me"), what the bot
// did about it, and the owner's notice email. Each is an event, so that
// it is written in the same compare-and-set as any change (it happens
// once, whichever replica makes it) and reaches the audit log and chat
// the same way.

// hasEvent reports whether r has an event of kind.
func (r *Request) hasEvent(kind EventKind) bool {
	return slices.ContainsFunc(r.Events, func(ev Event) bool { return ev.Kind == kind })
}

// remindAt is when r's reminder is due, zero when none is to come.
func (r *Request) remindAt() time.Time {
	if r.RemindAt.IsZero() || r.hasEvent(EventReminded) {
		return time.Time{}
	}
	return r.RemindAt
}

// escalateAt is when r's escalation is due, zero when none is to come.
func (r *Request) escalateAt() time.Time {
	if r.EscalateAt.IsZero() || r.hasEvent(EventEscalated) {
		return time.Time{}
	}
	return r.EscalateAt
}

// RemindIfDue records the reminder of the approvers of a pending request
// whose RemindAt has come, once. It reports whether it did.
func (r *Request) RemindIfDue(now time.Time) bool {
	at := r.remindAt()
	if r.Status != StatusPending || at.IsZero() || now.Before(at) {
		return false
	}
	r.Events = append(r.Events, Event{At: now, Kind: EventReminded})
	return true
}

// EscalationDue reports whether r, pending, must now be escalated: its
// EscalateAt has come and it was not escalated yet.
func (r *Request) EscalationDue(now time.Time) bool {
	at := r.escalateAt()
	return r.Status == StatusPending && !at.IsZero() && !now.Before(at)
}

// Escalate asks the fallback approvers as well as those asked so far:
// they become approvers of r (the requester never does) and are listed in
// Escalated. It happens once; with no one new to ask, the event still
// records that the time came.
//
// Errors: CodeWrongState (not due: decided, ended, or already escalated).
func (r *Request) Escalate(now time.Time, fallback []string) error {
	if !r.EscalationDue(now) {
		return Errorf(CodeWrongState, "request %s is not due for escalation", r.ID)
	}
	var added []string
	for _, a := range fallback {
		if a != "" && a != r.Requester && !r.IsApprover(a) && !slices.Contains(added, a) {
			added = append(added, a)
		}
	}
	slices.Sort(added)
	r.Approvers = append(r.Approvers, added...)
	r.Escalated = added
	detail := fmt.Sprintf("asked %d fallback approver(s) as well", len(added))
	if len(added) == 0 {
		detail = "nobody else could be asked"
	}
	r.Events = append(r.Events, Event{At: now, Kind: EventEscalated, Detail: detail})
	return nil
}

// Reported reports whether the owner reported r ("This wasn't me").
func (r *Request) Reported() bool { return r.hasEvent(EventReported) }

// Report records the owner's "This wasn't me" after a completed reset,
// once. Only the requester may report.
//
// Errors: CodeNotRequester, CodeWrongState (no completed reset to
// report), CodeAlreadyReported.
func (r *Request) Report(actor string, now time.Time) error {
	switch {
	case actor != r.Requester:
		return Errorf(CodeNotRequester, "%s is not the requester of %s", actor, r.ID)
	case r.Status != StatusCompleted || r.IsUnlock():
		return Errorf(CodeWrongState, "request %s is %s %s: there is no reset to report", r.ID, r.Action, r.Status)
	case r.Reported():
		return Errorf(CodeAlreadyReported, "request %s was already reported", r.ID)
	}
	r.Events = append(r.Events, Event{At: now, Kind: EventReported, Actor: actor})
	return nil
}

// RecordDisable records what came of disabling the account after r was
// reported: code "" when it was disabled (detail says whether it already
// was), else why not. Once.
//
// Errors: CodeWrongState (not reported, or already recorded).
func (r *Request) RecordDisable(now time.Time, code Code, detail string) error {
	if !r.Reported() || r.hasEvent(EventDisabled) {
		return Errorf(CodeWrongState, "request %s: no disable to record", r.ID)
	}
	r.Events = append(r.Events, Event{At: now, Kind: EventDisabled, Code: code, Detail: detail})
	return nil
}

// RecordNotice records how the owner's notice email went: code "" when
// it reached every address, else CodeNoticeFailed with detail. Once,
// after the reset completed.
//
// Errors: CodeWrongState (not completed, or already recorded).
func (r *Request) RecordNotice(now time.Time, code Code, detail string) error {
	if r.Status != StatusCompleted || r.hasEvent(EventNotified) {
		return Errorf(CodeWrongState, "request %s: no notice to record", r.ID)
	}
	r.Events = append(r.Events, Event{At: now, Kind: EventNotified, Code: code, Detail: detail})
	return nil
}

// Reminded reports whether r's approvers were reminded.
func (r *Request) Reminded() bool { return r.hasEvent(EventReminded) }
