// Package workflow is the domain of the password-reset bot: a Request, its
// statuses, the one state machine that moves it, and the small interfaces the
// outside world (store, directory, chat, clock) implements. It depends on no
// other package of this module and on no outside library.
package workflow

import (
	"crypto/rand"
	"encoding/base32"
	"slices"
	"strings"
	"time"
)

// Status is where a Request is in its life.
type Status string

// The statuses. Pending, Approved and Resetting are open; the others are end
// states that never change again.
const (
	StatusPending   Status = "pending"   // waiting for an approver
	StatusApproved  Status = "approved"  // waiting for the employee to click Reveal
	StatusResetting Status = "resetting" // a replica holds a lease and is calling ResetUserPassword
	StatusCompleted Status = "completed"
	StatusFailed    Status = "failed"
	StatusDenied    Status = "denied"
	StatusExpired   Status = "expired"
	StatusCancelled Status = "cancelled"
)

// Terminal reports whether s is an end state.
func (s Status) Terminal() bool {
	switch s {
	case StatusPending, StatusApproved, StatusResetting:
		return false
	}
	return true
}

// transitions is the state machine: the only moves a Request can make.
// Pending -> resetting is an unlock that starts without an approver's
// decision (UNLOCK_APPROVAL=none, or the helpdesk agent's request is the
// approval); a reset always goes through approved (BeginReset refuses
// anything else).
var transitions = map[Status][]Status{
	StatusPending:   {StatusApproved, StatusDenied, StatusExpired, StatusCancelled, StatusResetting},
	StatusApproved:  {StatusResetting, StatusExpired, StatusCancelled},
	StatusResetting: {StatusCompleted, StatusFailed, StatusApproved},
}

// CanMove reports whether the state machine allows from -> to.
func CanMove(from, to Status) bool { return slices.Contains(transitions[from], to) }

// EventKind names a step in a request's history; each event becomes one line
// in the audit thread.
type EventKind string

// The event kinds.
const (
	EventRequested   EventKind = "requested"
	EventApproved    EventKind = "approved"
	EventDenied      EventKind = "denied"
	EventRevealed    EventKind = "revealed"    // the employee clicked Reveal; the reset starts
	EventUnlocking   EventKind = "unlocking"   // the unlock starts: at once, or on approval
	EventInterrupted EventKind = "interrupted" // the reset or its delivery was interrupted; Reveal is offered again
	EventPostponed   EventKind = "postponed"   // the account could not be checked at Reveal; nothing changed, Reveal works again
	EventCompleted   EventKind = "completed"
	EventFailed      EventKind = "failed"
	EventExpired     EventKind = "expired"
	EventCancelled   EventKind = "cancelled"

	// Events that change no status (oversight.go).
	EventReminded  EventKind = "reminded"  // the approvers who had not decided were reminded
	EventEscalated EventKind = "escalated" // the fallback approvers were asked as well (manager approval)
	EventReported  EventKind = "reported"  // the owner pressed "This wasn't me" after the reset
	EventDisabled  EventKind = "disabled"  // after a report, the directory account was disabled (Code set: it could not be)
	EventNotified  EventKind = "notified"  // the owner's notice email went out (Code set: it did not)
)

// Event is one step of a request's history. It never holds a secret.
type Event struct {
	At     time.Time `json:"at"`
	Kind   EventKind `json:"kind"`
	Actor  string    `json:"actor,omitempty"`  // Slack user ID, empty for the bot itself
	Code   Code      `json:"code,omitempty"`   // why, for failed, interrupted and postponed events; a warning on completed
	Detail string    `json:"detail,omitempty"` // operator detail for helpdesk
	// Reason is what a person wrote: the employee's reason on requested,
	// the approver's on denied (CleanReason). Untrusted text.
	Reason string `json:"reason,omitempty"`
}

// Request is one employee's request to reset their own password, or to
// unlock their own account (Action), made by themselves or by a helpdesk
// agent on their behalf (Agent).
type Request struct {
	ID string `json:"id"`
	// Requester is the employee whose account the request is for: their
	// chat user ID, or, for an employee with no chat account (named by
	// email on their behalf), MailRequester of their email (see InChat).
	// One open request per Requester; the limits count per Requester.
	Requester   string    `json:"requester"`
	Action      Action    `json:"action,omitempty"` // "" (records stored before actions) is a reset
	Agent       string    `json:"agent,omitempty"`  // chat user ID of the helpdesk member who asked on the employee's behalf; "" when the employee asked
	Account     Account   `json:"account"`
	DirectoryID string    `json:"directory_id"`
	Approvers   []string  `json:"approvers"` // Slack user IDs eligible to decide, frozen at creation
	AskedAs     AskedAs   `json:"asked_as,omitempty"`
	Status      Status    `json:"status"`
	CreatedAt   time.Time `json:"created_at"`
	DecideBy    time.Time `json:"decide_by"`          // pending until then at most
	RevealBy    time.Time `json:"reveal_by,omitzero"` // approved until then at most
	DecidedBy   string    `json:"decided_by,omitempty"`
	DecidedAt   time.Time `json:"decided_at,omitzero"`
	EndedAt     time.Time `json:"ended_at,omitzero"`
	Failure     Code      `json:"failure,omitempty"` // why a failed request failed

	// What helps the approvers decide, read once when the request was
	// made; nil when nothing could be read.
	Facts *Facts `json:"facts,omitempty"`
	// RemindAt is when the approvers who have not decided get one
	// reminder; EscalateAt when, with manager approval, the fallback
	// approvers are asked as well (Escalated: the approvers so added).
	// Zero: never.
	RemindAt   time.Time `json:"remind_at,omitzero"`
	EscalateAt time.Time `json:"escalate_at,omitzero"`
	Escalated  []string  `json:"escalated,omitempty"`

	// In-flight reset: the replica that moved the request to resetting owns it
	// until ResetLease; after that the sweeper recovers it.
	ResetLease  time.Time `json:"reset_lease,omitzero"`
	ResetOwner  string    `json:"reset_owner,omitempty"`
	RevealTries int       `json:"reveal_tries,omitempty"`

	// What the bot did about a lockout: Unlocked when the reset of a
	// locked account also ended its lockout; StillLocked, the lockout as
	// read, when the bot could not end it (no right to, or the write
	// failed), so that the employee is told until when it lasts.
	Unlocked    bool     `json:"unlocked,omitempty"`
	StillLocked *Lockout `json:"still_locked,omitempty"`

	Events []Event `json:"events"`
}

// Action is what a request does to the employee's account.
type Action string

// The actions.
const (
	ActionReset  Action = "reset"  // set a temporary password, shown to the employee at Reveal
	ActionUnlock Action = "unlock" // end a lockout (lockoutTime=0); the password stays as it is
)

// Name returns a's name, "reset" for the empty Action of records stored
// before actions existed.
func (a Action) Name() Action {
	if a == ActionUnlock {
		return ActionUnlock
	}
	return ActionReset
}

// Lockout is whether the directory refuses an account's logons after too
// many bad passwords, as read at one moment. Every field is what the
// directory said; nothing is guessed.
type Lockout struct {
	// Known is false when the directory did not say whether the account is
	// locked (the attribute is not readable, or there is no directory);
	// nothing else here then means anything.
	Known  bool      `json:"known,omitempty"`
	Locked bool      `json:"locked,omitempty"`
	Since  time.Time `json:"since,omitzero"` // when it was locked; zero when not known
	// Until is when the lockout ends by itself; zero when that is not
	// known, or never (Forever).
	Until time.Time `json:"until,omitzero"`
	// Forever is true when the lockout lasts until someone unlocks the
	// account (the lockout duration that applies is 0).
	Forever bool `json:"forever,omitempty"`
}

// mailRequester is the prefix of the Requester of an employee with no
// chat account. Chat user IDs never hold a colon.
const mailRequester = "mail:"

// MailRequester returns the Requester of a request for the employee with
// no chat account whose email is email.
func MailRequester(email string) string {
	return mailRequester + strings.ToLower(strings.TrimSpace(email))
}

// InChat reports whether the employee has a chat account: Requester is
// their chat user ID. A request for an employee without one (on their
// behalf, HELPDESK_DELIVERY) is delivered to its Agent.
func (r *Request) InChat() bool { return !strings.HasPrefix(r.Requester, mailRequester) }

// EmployeeEmail returns the email of an employee with no chat account, ""
// for one who has one.
func (r *Request) EmployeeEmail() string {
	email, _ := strings.CutPrefix(r.Requester, mailRequester)
	if email == r.Requester {
		return ""
	}
	return email
}

// Recipient is the chat user who may click Reveal and is shown the
// password: the employee, or, for an employee with no chat account, the
// agent who asked on their behalf.
func (r *Request) Recipient() string {
	if r.InChat() {
		return r.Requester
	}
	return r.Agent
}

// IsUnlock reports whether r unlocks the account rather than resetting
// its password.
func (r *Request) IsUnlock() bool { return r.Action == ActionUnlock }

// Account is a directory account as resolved from a Slack user.
type Account struct {
	UserName    string `json:"user_name"` // sAMAccountName, the API's UserName
	Email       string `json:"email,omitempty"`
	DisplayName string `json:"display_name,omitempty"`
	DN          string `json:"dn,omitempty"` // the directory entry, when looked up over LDAP
	// GUID is the directory object's objectGUID (dashed string form), when
	// looked up over LDAP: it never changes, so it says whether the account
	// found again at Reveal is the same object as the one asked for.
	GUID string `json:"guid,omitempty"`
	// Unchecked is true for an account found without the directory
	// (ALLOW_UNCHECKED_ACCOUNTS): nobody checked that it is enabled, not
	// an administrator, nor inside the allowed OUs. Every audit line says so.
	Unchecked bool `json:"unchecked,omitempty"`
}

// AskedAs says why a request's approvers were the ones asked.
type AskedAs string

// Why approvers were asked. The fallbacks ask the configured approvers
// (APPROVERS) when the manager source cannot name a manager who could.
const (
	AskedApprovers          AskedAs = ""                     // the configured approvers (APPROVER_SOURCE=static)
	AskedManager            AskedAs = "manager"              // the employee's manager in the directory
	AskedNoManager          AskedAs = "no_manager"           // fallback: no manager in the directory
	AskedManagerDisabled    AskedAs = "manager_disabled"     // fallback: the manager's account is disabled
	AskedManagerNotInChat   AskedAs = "manager_not_in_chat"  // fallback: the manager is not an active chat member
	AskedManagerIsRequester AskedAs = "manager_is_requester" // fallback: the employee is their own manager
	AskedManagerIsAgent     AskedAs = "manager_is_agent"     // fallback: the manager is the helpdesk agent who asked on the employee's behalf
	AskedHelpdesk           AskedAs = "helpdesk"             // the helpdesk agent who asked on the employee's behalf; their request was the approval (HELPDESK_APPROVES)
)

// NewID returns a new opaque request ID.
func NewID() string {
	var b [15]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return "R" + strings.ToLower(base32.StdEncoding.EncodeToString(b[:]))
}

// ValidID reports whether id has the shape NewID produces. Stores and
// handlers refuse anything else before touching storage.
func ValidID(id string) bool {
	if len(id) != 25 || id[0] != 'R' {
		return false
	}
	for _, c := range id[1:] {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// IsApprover reports whether user may decide r.
func (r *Request) IsApprover(user string) bool { return slices.Contains(r.Approvers, user) }

// LastEvent returns the most recent event, or a zero Event.
func (r *Request) LastEvent() Event {
	if len(r.Events) == 0 {
		return Event{}
	}
	return r.Events[len(r.Events)-1]
}

// move is the single place that changes Status: it refuses any move the
// state machine does not allow and records the event.
func (r *Request) move(to Status, ev Event) error {
	if !CanMove(r.Status, to) {
		if r.Status.Terminal() {
			return Errorf(CodeDecided, "request %s is already %s", r.ID, r.Status)
		}
		return Errorf(CodeWrongState, "request %s cannot go from %s to %s", r.ID, r.Status, to)
	}
	r.Status = to
	r.Events = append(r.Events, ev)
	if to.Terminal() {
		r.EndedAt = ev.At
		r.ResetLease, r.ResetOwner = time.Time{}, ""
	}
	return nil
}

// Decide records an approver's decision. The first decision wins; the
// requester can never decide, and only eligible approvers can.
//
// Errors: CodeSelfApproval, CodeNotApprover, CodeDecided (a decision was
// already made or the request ended), CodeExpired (the window passed).
func (r *Request) Decide(actor string, approve bool, now time.Time, revealTTL time.Duration) error {
	switch {
	case actor == r.Requester:
		return Errorf(CodeSelfApproval, "%s tried to decide their own request %s", actor, r.ID)
	case !r.IsApprover(actor):
		return Errorf(CodeNotApprover, "%s is not an approver of request %s", actor, r.ID)
	case r.Status != StatusPending:
		return Errorf(CodeDecided, "request %s is already %s", r.ID, r.Status)
	case !now.Before(r.DecideBy):
		return Errorf(CodeExpired, "request %s expired at %s", r.ID, r.DecideBy.Format(time.RFC3339))
	}
	to, kind := StatusDenied, EventDenied
	if approve {
		to, kind = StatusApproved, EventApproved
	}
	if err := r.move(to, Event{At: now, Kind: kind, Actor: actor}); err != nil {
		return err
	}
	r.DecidedBy, r.DecidedAt = actor, now
	if approve {
		r.RevealBy = now.Add(revealTTL)
	}
	return nil
}

// BeginReset moves an approved reset request to resetting on the click on
// Reveal of its Recipient (the employee; the agent for an employee with no
// chat account); owner holds the reset until leaseUntil.
//
// Errors: CodeNotRequester, CodeExpired, CodeWrongState (not approved yet,
// or an unlock, which has no Reveal), CodeDecided (already reset, failed
// or otherwise ended).
func (r *Request) BeginReset(actor, owner string, now, leaseUntil time.Time) error {
	switch {
	case actor == "" || actor != r.Recipient():
		return Errorf(CodeNotRequester, "%s is not the requester of %s", actor, r.ID)
	case r.IsUnlock():
		return Errorf(CodeWrongState, "request %s is an unlock: it has no Reveal", r.ID)
	case r.Status == StatusResetting:
		return Errorf(CodeWrongState, "request %s is already being reset", r.ID)
	case r.Status == StatusPending:
		return Errorf(CodeWrongState, "request %s is not approved yet", r.ID)
	case r.Status == StatusApproved && !now.Before(r.RevealBy):
		return Errorf(CodeExpired, "reveal window of %s ended at %s", r.ID, r.RevealBy.Format(time.RFC3339))
	}
	if err := r.move(StatusResetting, Event{At: now, Kind: EventRevealed, Actor: actor}); err != nil {
		return err
	}
	r.ResetOwner, r.ResetLease = owner, leaseUntil
	r.RevealTries++
	return nil
}

// BeginUnlock moves an unlock request to resetting, owner holding the
// unlock until leaseUntil: a pending one that needs no decision (it has no
// approvers: UNLOCK_APPROVAL=none), or an approved one (the service begins
// it in the same change as the approval, so that exactly one replica
// writes). Nobody clicks anything: an unlock has no secret to show.
//
// Errors: CodeWrongState (not an unlock, or pending with approvers to
// decide), CodeExpired, CodeDecided (already ended).
func (r *Request) BeginUnlock(owner string, now, leaseUntil time.Time) error {
	switch {
	case !r.IsUnlock():
		return Errorf(CodeWrongState, "request %s is not an unlock", r.ID)
	case r.Status == StatusPending && len(r.Approvers) > 0:
		return Errorf(CodeWrongState, "request %s waits for an approver's decision", r.ID)
	case r.Status == StatusPending && !now.Before(r.DecideBy):
		return Errorf(CodeExpired, "request %s expired at %s", r.ID, r.DecideBy.Format(time.RFC3339))
	case r.Status == StatusResetting:
		return Errorf(CodeWrongState, "request %s is already being unlocked", r.ID)
	}
	if err := r.move(StatusResetting, Event{At: now, Kind: EventUnlocking}); err != nil {
		return err
	}
	r.ResetOwner, r.ResetLease = owner, leaseUntil
	return nil
}

// Complete ends a reset that owner performed and delivered. A non-empty
// warning (with its detail) records something helpdesk should know about a
// reset that worked, such as CodeForceChangeFailed.
func (r *Request) Complete(owner string, now time.Time, warning Code, detail string) error {
	if r.Status != StatusResetting || r.ResetOwner != owner {
		return Errorf(CodeConflict, "request %s is no longer being reset by this replica", r.ID)
	}
	return r.move(StatusCompleted, Event{At: now, Kind: EventCompleted, Code: warning, Detail: detail})
}

// Postpone undoes owner's BeginReset when the reset could not start and
// nothing was changed (the directory lookup before the reset was
// unavailable): the request is approved again, the reveal window and the
// count of reveals unchanged, so that the employee can click again.
func (r *Request) Postpone(owner string, now time.Time, code Code, detail string) error {
	if r.Status != StatusResetting || r.ResetOwner != owner {
		return Errorf(CodeConflict, "request %s is no longer being reset by this replica", r.ID)
	}
	if err := r.move(StatusApproved, Event{At: now, Kind: EventPostponed, Code: code, Detail: detail}); err != nil {
		return err
	}
	r.ResetOwner, r.ResetLease = "", time.Time{}
	r.RevealTries--
	return nil
}

// Fail ends a reset that owner attempted with the directory's error code and
// an operator detail (which must not contain the password).
func (r *Request) Fail(owner string, now time.Time, code Code, detail string) error {
	if r.Status != StatusResetting || r.ResetOwner != owner {
		return Errorf(CodeConflict, "request %s is no longer being reset by this replica", r.ID)
	}
	if err := r.move(StatusFailed, Event{At: now, Kind: EventFailed, Code: code, Detail: detail}); err != nil {
		return err
	}
	r.Failure = code
	return nil
}

// Interrupt handles a reset that may have changed the password but whose
// password never reached the employee (delivery failed, or the owner's lease
// ran out). The password is never stored, so nobody can know it: the request
// goes back to approved with a fresh reveal window so that the employee gets
// a new password on the next click, or fails after maxTries reveals.
// owner "" means the sweeper, which may only act after the lease ended.
// An unlock whose owner stopped fails instead (CodeUnlockInterrupted):
// there is nothing to click again, and the write may have happened.
//
// code says why: CodeInterrupted (the replica stopped, or the password
// could not be shown) or CodeDirectoryUncertain (the directory call ended
// without an answer, so the password may or may not have changed).
func (r *Request) Interrupt(owner string, now time.Time, revealTTL time.Duration, maxTries int, code Code, detail string) error {
	if r.Status != StatusResetting {
		return Errorf(CodeConflict, "request %s is not being reset", r.ID)
	}
	if owner != "" && r.ResetOwner != owner {
		return Errorf(CodeConflict, "request %s is no longer being reset by this replica", r.ID)
	}
	if owner == "" && now.Before(r.ResetLease) {
		return Errorf(CodeConflict, "request %s is still leased until %s", r.ID, r.ResetLease.Format(time.RFC3339))
	}
	if r.IsUnlock() {
		// Nobody can click again for an unlock, and whether the write
		// happened is not known: it ends, and the employee is told to
		// try to sign in (and to ask again if still locked).
		if err := r.move(StatusFailed, Event{At: now, Kind: EventFailed, Code: CodeUnlockInterrupted, Detail: detail}); err != nil {
			return err
		}
		r.Failure = CodeUnlockInterrupted
		return nil
	}
	if r.RevealTries >= maxTries {
		if err := r.move(StatusFailed, Event{At: now, Kind: EventFailed, Code: CodeInterrupted, Detail: detail}); err != nil {
			return err
		}
		r.Failure = CodeInterrupted
		return nil
	}
	if err := r.move(StatusApproved, Event{At: now, Kind: EventInterrupted, Code: code, Detail: detail}); err != nil {
		return err
	}
	r.ResetOwner, r.ResetLease = "", time.Time{}
	r.RevealBy = now.Add(revealTTL)
	return nil
}

// Cancel ends the requester's own open request before the reset (or the
// unlock) starts.
//
// Errors: CodeNotRequester, CodeWrongState (a reset is in flight),
// CodeDecided (already ended).
func (r *Request) Cancel(actor string, now time.Time) error {
	if actor != r.Requester {
		return Errorf(CodeNotRequester, "%s is not the requester of %s", actor, r.ID)
	}
	if r.Status == StatusResetting {
		return Errorf(CodeWrongState, "request %s is being reset and can no longer be cancelled", r.ID)
	}
	return r.move(StatusCancelled, Event{At: now, Kind: EventCancelled, Actor: actor})
}

// ExpireIfDue expires a pending request whose decision window, or an approved
// request whose reveal window, has passed. It reports whether it did.
func (r *Request) ExpireIfDue(now time.Time) bool {
	var detail string
	switch {
	case r.Status == StatusPending && !now.Before(r.DecideBy):
		detail = "nobody decided in time"
	case r.Status == StatusApproved && !now.Before(r.RevealBy):
		detail = "the employee did not reveal the password in time"
	default:
		return false
	}
	return r.move(StatusExpired, Event{At: now, Kind: EventExpired, Detail: detail}) == nil
}

// NextDeadline is when the sweeper must next look at r: the end of the
// decision or reveal window, a reminder or escalation still to come, or
// the end of a reset lease. ok is false when r has ended. (What chat must
// still be told is not the request's concern: package delivery keeps it.)
func (r *Request) NextDeadline() (t time.Time, ok bool) {
	switch r.Status {
	case StatusPending:
		t = r.DecideBy
		for _, at := range []time.Time{r.remindAt(), r.escalateAt()} {
			if !at.IsZero() && at.Before(t) {
				t = at
			}
		}
		return t, true
	case StatusApproved:
		return r.RevealBy, true
	case StatusResetting:
		return r.ResetLease, true
	}
	return time.Time{}, false
}
