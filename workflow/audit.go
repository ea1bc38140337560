package workflow

import (
	"cmp"
	"strings"
	"time"
)

// AuditRecord is one entry of the durable audit log: one step of a request
// (an event) or one refused attempt. It never holds a password. The JSON
// names are the export format of `bot audit` (documented in README.md).
type AuditRecord struct {
	At          time.Time `json:"at"`
	Event       string    `json:"event"`                // an EventKind, or "refused"
	RequestID   string    `json:"request_id,omitempty"` // "" for a refused attempt
	User        string    `json:"user"`                 // the employee: their chat user ID, or "mail:" and their email when they have no chat account
	Action      Action    `json:"action,omitempty"`     // reset or unlock ("" in records written before unlocks existed: a reset)
	Agent       string    `json:"agent,omitempty"`      // the helpdesk member who asked on the employee's behalf
	Account     string    `json:"account,omitempty"`    // the directory account, "" when unknown
	DirectoryID string    `json:"directory_id,omitempty"`
	Actor       string    `json:"actor,omitempty"`     // who caused the step: the employee, an approver, "" for the bot
	Status      Status    `json:"status,omitempty"`    // the request's status after the step
	Approver    string    `json:"approver,omitempty"`  // who decided, once someone has
	Code        Code      `json:"code,omitempty"`      // why: a failure, a refusal, a warning
	Detail      string    `json:"detail,omitempty"`    // operator detail
	Reason      string    `json:"reason,omitempty"`    // what a person wrote: the employee's reason (requested), the approver's (denied)
	Unchecked   bool      `json:"unchecked,omitempty"` // the account was not checked against the directory (ALLOW_UNCHECKED_ACCOUNTS)
}

// EventRefused is the AuditRecord event of a refused attempt.
const EventRefused = "refused"

// AuditRecords returns the audit records of r's events from index from on,
// as the store writes them in the same atomic step as the change.
func AuditRecords(r *Request, from int) []AuditRecord {
	var out []AuditRecord
	for _, ev := range r.Events[min(max(from, 0), len(r.Events)):] {
		out = append(out, AuditRecord{
			At: ev.At, Event: string(ev.Kind), RequestID: r.ID, User: r.Requester, Action: r.Action.Name(), Agent: r.Agent,
			Account: r.Account.UserName, DirectoryID: r.DirectoryID, Actor: ev.Actor,
			Status: r.Status, Approver: r.DecidedBy, Code: ev.Code, Detail: ev.Detail, Reason: ev.Reason, Unchecked: r.Account.Unchecked,
		})
	}
	return out
}

// RefusalRecord is the audit record of a refused attempt. Its actor is
// the agent when one asked on the employee's behalf.
func RefusalRecord(f Refusal, directoryID string) AuditRecord {
	return AuditRecord{At: f.At, Event: EventRefused, User: f.User, Action: f.Action, Agent: f.Agent, Account: f.Account,
		DirectoryID: directoryID, Actor: cmp.Or(f.Agent, f.User), Code: f.Code, Detail: f.Detail}
}

// Counter is the name under which a store counts requester's attempts of
// action a against the action's limit: each action has its own limit
// (REQUEST_LIMIT, UNLOCK_LIMIT), so its own count. Chat user IDs hold no
// colon, so the names of different actions never meet.
func Counter(requester string, a Action) string {
	if a.Name() == ActionUnlock {
		return "unlock:" + requester
	}
	return requester
}

// AuditQuery selects audit records. Zero fields select everything.
type AuditQuery struct {
	Since, Until time.Time // At in [Since, Until)
	User         string    // the employee's chat user ID, the agent's, or the account (case-insensitive)
	Status       string    // a Status the request had after the step, or "refused"
}

// Match reports whether rec is selected by q.
func (q AuditQuery) Match(rec AuditRecord) bool {
	switch {
	case !q.Since.IsZero() && rec.At.Before(q.Since):
		return false
	case !q.Until.IsZero() && !rec.At.Before(q.Until):
		return false
	case q.User != "" && q.User != rec.User && q.User != rec.Agent && !strings.EqualFold(q.User, rec.Account):
		return false
	case q.Status == EventRefused:
		return rec.Event == EventRefused
	case q.Status != "" && string(rec.Status) != q.Status:
		return false
	}
	return true
}
