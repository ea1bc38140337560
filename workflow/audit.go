package workflow

import (
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
	User        string    `json:"user"`                 // the employee's chat user ID
	Account     string    `json:"account,omitempty"`    // the directory account, "" when unknown
	DirectoryID string    `json:"directory_id,omitempty"`
	Actor       string    `json:"actor,omitempty"`     // who caused the step: the employee, an approver, "" for the bot
	Status      Status    `json:"status,omitempty"`    // the request's status after the step
	Approver    string    `json:"approver,omitempty"`  // who decided, once someone has
	Code        Code      `json:"code,omitempty"`      // why: a failure, a refusal, a warning
	Detail      string    `json:"detail,omitempty"`    // operator detail
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
			At: ev.At, Event: string(ev.Kind), RequestID: r.ID, User: r.Requester,
			Account: r.Account.UserName, DirectoryID: r.DirectoryID, Actor: ev.Actor,
			Status: r.Status, Approver: r.DecidedBy, Code: ev.Code, Detail: ev.Detail, Unchecked: r.Account.Unchecked,
		})
	}
	return out
}

// RefusalRecord is the audit record of a refused attempt.
func RefusalRecord(f Refusal, directoryID string) AuditRecord {
	return AuditRecord{At: f.At, Event: EventRefused, User: f.User, Account: f.Account,
		DirectoryID: directoryID, Actor: f.User, Code: f.Code, Detail: f.Detail}
}

// AuditQuery selects audit records. Zero fields select everything.
type AuditQuery struct {
	Since, Until time.Time // At in [Since, Until)
	User         string    // the employee's chat user ID or the account (case-insensitive)
	Status       string    // a Status the request had after the step, or "refused"
}

// Match reports whether rec is selected by q.
func (q AuditQuery) Match(rec AuditRecord) bool {
	switch {
	case !q.Since.IsZero() && rec.At.Before(q.Since):
		return false
	case !q.Until.IsZero() && !rec.At.Before(q.Until):
		return false
	case q.User != "" && q.User != rec.User && !strings.EqualFold(q.User, rec.Account):
		return false
	case q.Status == EventRefused:
		return rec.Event == EventRefused
	case q.Status != "" && string(rec.Status) != q.Status:
		return false
	}
	return true
}
