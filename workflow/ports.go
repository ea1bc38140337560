package workflow

import (
	"context"
	"time"
)

// Store keeps requests. Every method is safe for concurrent use by many
// processes sharing the same backing store.
type Store interface {
	// Create saves r, which must be pending, if r.Requester has no open
	// request and created fewer than limit.Max requests in the limit.Window
	// before r.CreatedAt. Both checks and the write are one atomic step.
	// Errors: CodeOpenRequest, CodeRateLimited, CodeUnavailable.
	Create(ctx context.Context, r *Request, limit Limit) error

	// Get returns the request with id.
	// Errors: CodeNotFound, CodeUnavailable.
	Get(ctx context.Context, id string) (*Request, error)

	// Open returns requester's open (pending, approved or resetting) request.
	// Errors: CodeNoOpenRequest, CodeUnavailable.
	Open(ctx context.Context, requester string) (*Request, error)

	// Update applies fn to the current version of request id and saves the
	// result only if nobody changed the request meanwhile (compare-and-set),
	// calling fn again on the newer version otherwise. If fn returns an error
	// nothing is saved and Update returns that error unchanged. Update keeps
	// the store's indexes (open request per requester, deadlines) in step.
	// Errors: CodeNotFound, CodeConflict (too much contention),
	// CodeUnavailable, and fn's errors.
	Update(ctx context.Context, id string, fn func(*Request) error) (*Request, error)

	// Due returns up to max IDs of requests whose NextDeadline is at or
	// before now. Errors: CodeUnavailable.
	Due(ctx context.Context, now time.Time, max int) ([]string, error)

	// Claim records key for ttl and reports whether this call was the first
	// to do so; it makes redelivered Slack envelopes take effect once.
	// Errors: CodeUnavailable.
	Claim(ctx context.Context, key string, ttl time.Duration) (bool, error)

	// Ping checks that the store answers. Errors: CodeUnavailable.
	Ping(ctx context.Context) error
}

// Limit is the per-employee request limit: at most Max requests per Window.
type Limit struct {
	Max    int
	Window time.Duration
}

// Directory resets passwords in the directory.
type Directory interface {
	// ResetPassword sets the password of userName. Errors carry the code of
	// the directory's exception (CodeUserDoesNotExist, CodeInvalidPassword,
	// CodeDirectoryUnavailable, CodeUnsupportedOperation,
	// CodeDirectoryDoesNotExist, CodeDirectoryClient, CodeDirectoryService,
	// CodeDirectoryThrottled, CodeDirectoryAccessDenied) and never the
	// password.
	ResetPassword(ctx context.Context, userName, password string) error
}

// Passwords makes temporary passwords.
type Passwords interface {
	// New returns a random password of length characters that meets the
	// directory's complexity rules for acct (it contains neither the account
	// name nor any 3+ character part of the display name).
	New(length int, acct Account) (string, error)
}

// Identity resolves a chat user to their own directory account.
type Identity interface {
	// Account returns the directory account of chat user.
	// Errors: CodeUnknownUser, CodeIneligibleUser, CodeNoEmail,
	// CodeEmailDomain, CodeInvalidUserName, CodeUnavailable.
	Account(ctx context.Context, user string) (Account, error)
}

// Approvers says who may decide a request.
type Approvers interface {
	// For returns the chat user IDs that may approve requester's request for
	// acct. It may include requester; the service removes them.
	For(ctx context.Context, requester string, acct Account) ([]string, error)
}

// Notifier tells people what happens: approvers, the employee and the audit
// channel.
type Notifier interface {
	// Sync makes chat reflect r.Events[r.SyncedEvents:] and r's current
	// status. It returns the updated message bookkeeping and how many of
	// those events it fully handled, also when it fails part way.
	Sync(ctx context.Context, r *Request) (msgs Messages, handled int, err error)

	// DeliverPassword shows password to the requester and nobody else. Apart
	// from the directory call, it is the only place the password goes.
	DeliverPassword(ctx context.Context, r *Request, password string) error
}

// Clock tells the time; tests move it.
type Clock interface{ Now() time.Time }

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// Metrics receives counts; nil means none.
type Metrics interface {
	// Event is called once for every event a transition saved.
	Event(kind EventKind, code Code)
}
