package workflow

import (
	"context"
	"time"
)

// Store keeps requests. Every method is safe for concurrent use by many
// processes sharing the same backing store.
type Store interface {
	// Create saves r, which must be open (pending; approved or resetting
	// when its first steps need nobody else), if r.Requester has no open
	// request and made fewer than limit.Max attempts of r's action that
	// count against the limit (requests created, and the refusals Refused
	// counted, under Counter(r.Requester, r.Action)) in the limit.Window
	// before r.CreatedAt; r then counts too. Both checks
	// and the write are one atomic step, which also appends
	// AuditRecords(r, 0) to the audit log. A Limit with Max or Window <= 0
	// means no limit.
	// Errors: CodeOpenRequest, CodeRateLimited, CodeUnavailable.
	Create(ctx context.Context, r *Request, limit Limit) error

	// Standing returns requester's open request (nil when none, as Open
	// would say) and how many of their attempts of action after since
	// count against that action's limit: requests created, and refusals
	// Refused counted. It lets a request that cannot be made be refused
	// before anything else is asked. Errors: CodeUnavailable.
	Standing(ctx context.Context, requester string, action Action, since time.Time) (open *Request, attempts int, err error)

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
	// the store's indexes (open request per requester, deadlines) in step
	// and, in the same atomic step, appends the audit records of the events
	// fn added (AuditRecords(new, len(old.Events))) and marks what chat must
	// be told of them (the chat delivery's own records, which the domain
	// does not read).
	// Errors: CodeNotFound, CodeConflict (too much contention),
	// CodeUnavailable, and fn's errors.
	Update(ctx context.Context, id string, fn func(*Request) error) (*Request, error)

	// Due returns up to max IDs of requests whose NextDeadline is at or
	// before now. Errors: CodeUnavailable.
	Due(ctx context.Context, now time.Time, max int) ([]string, error)

	// Watched returns how many requests have a deadline the sweeper
	// watches: the open ones.
	// Errors: CodeUnavailable.
	Watched(ctx context.Context) (int, error)

	// Claim records key for ttl and reports whether this call was the first
	// to do so; it makes redelivered Slack envelopes take effect once.
	// Errors: CodeUnavailable.
	Claim(ctx context.Context, key string, ttl time.Duration) (bool, error)

	// Ping checks that the store answers. Errors: CodeUnavailable.
	Ping(ctx context.Context) error

	// Recent returns the IDs of the latest requests created, newest
	// first, at most max; the store keeps at least the last RecentKept.
	// Create records each in the same atomic step. Errors:
	// CodeUnavailable.
	Recent(ctx context.Context, max int) ([]string, error)

	// Resets returns how many times the bot completed a reset of the
	// account acct (by AccountKey) since since, and when it last did (to the millisecond).
	// Update records each completion in the same atomic step as the
	// change; the store may forget those older than ResetHistoryWindow.
	// Errors: CodeUnavailable.
	Resets(ctx context.Context, acct Account, since time.Time) (ResetHistory, error)

	// Refused appends the record of a refused attempt to the audit log.
	// With a limit (Max and Window > 0) the attempt, for rec.User at
	// rec.At, also counts against the limit of rec.Action (under
	// Counter(rec.User, rec.Action)) like a created request, in the same
	// atomic step: Standing counts it and Create refuses once limit.Max
	// attempts are in the window. The service counts the refusals the
	// employee caused (a guard, their identity), so that nobody can probe
	// the guards without limit, and not the others (an outage, the limit
	// itself), with a zero Limit.
	// Errors: CodeUnavailable.
	Refused(ctx context.Context, rec AuditRecord, limit Limit) error

	// Audit calls each with every audit record q selects, oldest first,
	// as it reads them: a page of records at a time, so that memory stays
	// flat however long the log is (a year of records). Records older
	// than the store's retention are gone. Audit stops at the first error
	// each returns and returns that error unchanged.
	// Errors: CodeUnavailable, and each's errors.
	Audit(ctx context.Context, q AuditQuery, each func(AuditRecord) error) error
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

// Identity tells who a chat user is.
type Identity interface {
	// Person returns chat user's profile after checking that they may use
	// the bot: an active member of this workspace (not a guest, bot,
	// deactivated account or another organisation's user) with a confirmed
	// email in an allowed domain.
	// Errors: CodeUnknownUser, CodeIneligibleUser, CodeForeignUser,
	// CodeNoEmail, CodeEmailUnconfirmed, CodeEmailDomain, CodeInternal
	// (chat unreachable).
	Person(ctx context.Context, user string) (Person, error)

	// Approver returns chat user's profile after checking that they may
	// decide a request now: an active member of this workspace (not a
	// guest, bot, deactivated account or another organisation's user).
	// Errors: CodeUnknownUser, CodeIneligibleUser, CodeForeignUser,
	// CodeInternal (chat unreachable).
	Approver(ctx context.Context, user string) (Person, error)

	// ByEmail returns the chat member with email who could be asked to
	// approve; ok is false when there is none (no such member, or one who
	// could not: deactivated, a guest or bot, another organisation's, or
	// with an unconfirmed email or one outside the allowed domains).
	// Errors: CodeInternal (chat unreachable).
	ByEmail(ctx context.Context, email string) (p Person, ok bool, err error)

	// Employee returns the chat member whose profile email is email, for
	// a request on their behalf, checked as Person checks them; ok is
	// false when chat has no member with that email (the employee has no
	// chat account: a deactivated member counts as none). An email
	// outside the allowed domains is refused before anyone is asked.
	// Errors: Person's, CodeInternal (chat unreachable).
	Employee(ctx context.Context, email string) (p Person, ok bool, err error)
}

// Accounts finds directory accounts and applies the guards: the rules that
// say which accounts must never be reset here.
type Accounts interface {
	// Find returns the directory account of p: from the account map, else
	// the directory entry whose mail or userPrincipalName is p.Email, else
	// (without a directory lookup) the email's local part. With a
	// directory the account carries its DN and objectGUID.
	// Errors: CodeNoAccount, CodeAmbiguousAccount, CodeEmailMismatch,
	// CodeInvalidUserName, CodeMachineAccount, CodeLookupUnavailable.
	Find(ctx context.Context, p Person) (Account, error)

	// Check reads acct again and returns it refreshed (DN, objectGUID,
	// display name), or an error when it must not be reset now. The service
	// calls it when a request is made and again right before the reset.
	// Anything it cannot read is a refusal (CodeUncheckable), never a pass.
	// Errors: CodeInvalidUserName, CodeProtectedAccount, CodeMachineAccount,
	// CodeAccountDisabled, CodeOutsideOU, CodeProtectedGroup, CodeAdminCount,
	// CodeUncheckable, CodeAccountChanged (acct.GUID is set and the name is
	// now another object), CodeNoAccount, CodeLookupUnavailable.
	Check(ctx context.Context, acct Account) (Account, error)

	// Manager returns acct's manager in the directory; ok is false when the
	// account has none (or it names an entry that does not exist).
	// Errors: CodeLookupUnavailable.
	Manager(ctx context.Context, acct Account) (m Manager, ok bool, err error)

	// Approver checks that p's own directory account lets them decide a
	// request now: no account with p's email is disabled (or a computer).
	// Without a directory it returns nil.
	// Errors: CodeApproverInactive, CodeLookupUnavailable.
	Approver(ctx context.Context, p Person) error

	// ExpirePassword makes the account's user change the password at the
	// next logon (pwdLastSet=0). Errors: CodeLookupUnavailable, CodeInternal.
	ExpirePassword(ctx context.Context, acct Account) error

	// Lockout says whether acct is locked now, and since and until when,
	// read again from the very object acct names (its objectGUID). What
	// the directory did not say is left unknown in the answer, not an
	// error; without a directory nothing is known.
	// Errors: CodeUncheckable (acct carries no directory object),
	// CodeNoAccount, CodeAccountChanged, CodeLookupUnavailable.
	Lockout(ctx context.Context, acct Account) (Lockout, error)

	// Unlock ends acct's lockout (lockoutTime=0, and nothing else is ever
	// written) on the very object acct names, after applying every guard
	// of Check to it again. It does not ask whether the account is
	// locked. Errors: the guards' codes (CodeAccountDisabled,
	// CodeProtectedGroup, ...), CodeUncheckable, CodeNoAccount,
	// CodeAccountChanged, CodeDirectoryMisconfigured (the bind account
	// lacks the delegated right Write lockoutTime),
	// CodeLookupUnavailable, CodeInternal (no directory).
	Unlock(ctx context.Context, acct Account) error
}

// Helpdesk says who may ask on an employee's behalf (HELPDESK).
type Helpdesk interface {
	// Includes reports whether chat user is a helpdesk member now.
	// Errors: CodeInternal (chat could not list a group).
	Includes(ctx context.Context, user string) (bool, error)
}

// Person is a chat user as the identity source describes them.
type Person struct {
	ID    string // chat user ID
	Email string
	Name  string // real name, for messages and the password rule
	// TZ is the person's time zone as chat has it (an IANA name such as
	// Europe/Berlin), "" when unknown; TZOffset its offset from UTC now,
	// in seconds, for when the name is not one this system knows.
	TZ       string
	TZOffset int
}

// Manager is an account's manager as the directory describes them.
type Manager struct {
	UserName string
	Email    string
	Name     string
	Disabled bool
}

// Approvers says who may decide a request when the manager is not asked.
type Approvers interface {
	// For returns the chat user IDs that may approve requester's request for
	// acct. It may include requester; the service removes them.
	For(ctx context.Context, requester string, acct Account) ([]string, error)
}

// Notifier tells the audit channel what no request records: refusals.
// (What happens to requests reaches chat through the store's marks and the
// chat delivery, outside the domain.)
type Notifier interface {
	// Refused tells the audit channel about a request that was refused
	// before it existed (a guard, the rate limit, an unknown user), or a
	// stored record that failed verification. The service calls it at
	// most once per user and code in a while.
	Refused(ctx context.Context, f Refusal) error
}

// Display shows a new password to the requester, and nobody else: the
// answer to their click on Reveal. Apart from the directory call, it is
// the only place the password goes. The chat adapter makes one per click
// (it knows where the click came from) and hands it to Service.Reveal.
type Display interface {
	// ShowPassword shows d to r's requester.
	// Errors: CodeDeliveryFailed (the password could not be shown).
	ShowPassword(ctx context.Context, r *Request, d Delivery) error
}

// Watcher is told about every change the service saved, so that chat can
// be told at once (the store has also marked it, for whoever takes over).
type Watcher interface {
	// Changed is called with r as saved, r.Events[before:] new. It must
	// not block.
	Changed(r *Request, before int)
}

// FactSource reads what the directory says about an account's sign-in
// state, for the approvers (Facts).
type FactSource interface {
	// SignIn returns acct's sign-in facts as the directory has them now;
	// each is nil when it could not be read. An error means none could.
	SignIn(ctx context.Context, acct Account) (SignIn, error)
}

// Disabler turns a directory account off, for an owner who reports a
// reset they did not ask for (REPORT_DISABLES).
type Disabler interface {
	// Disable disables acct's directory account, the very object the
	// request was made for; changed is false when it already was.
	// Errors: CodeDirectoryMisconfigured (the bind account may not),
	// CodeAccountChanged, CodeNoAccount, CodeUncheckable,
	// CodeLookupUnavailable, CodeConflict, CodeInternal.
	Disable(ctx context.Context, acct Account) (changed bool, err error)
}

// OwnerNotices tells an account's owner, outside chat, about a completed
// reset: the notice email.
type OwnerNotices interface {
	// Completed is told about r, just completed, once, by the replica
	// that recorded the completion. It must not block; how the notice
	// went it records with Service.RecordNotice.
	Completed(r *Request)
}

// Delivery is what the employee (or, for an employee with no chat
// account, the agent) is shown after a reset.
type Delivery struct {
	Password string
	// MustChange is true when the directory will make the user change the
	// password at the next logon (FORCE_CHANGE_AT_LOGON worked, or always
	// for a password the agent hands over).
	MustChange bool
	// Unlocked is true when the account was locked and the reset also
	// ended its lockout.
	Unlocked bool
	// StillLocked is the account's lockout when it was locked and the bot
	// could not end it: the new password works once it ends.
	StillLocked *Lockout
}

// Refusal is a request refused before it was stored.
type Refusal struct {
	At      time.Time
	User    string // the employee: chat user ID (or MailRequester of their email); whoever asked when nobody was named
	Action  Action // what was asked for
	Agent   string // the helpdesk member who asked on the employee's behalf, or who named someone without being one
	Account string // the account asked for, "" when unknown
	Code    Code
	Detail  string // operator detail; never a secret
}

// Clock tells the time; tests move it.
type Clock interface{ Now() time.Time }

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// Metrics receives what the service measures; nil means none. Whatever
// implements it must not put user data (IDs, accounts) in labels.
type Metrics interface {
	// Saved is called once for every change saved: r after it, and how
	// many events r had before.
	Saved(r *Request, before int)
	// DirectoryCall is called after each ResetUserPassword call with the
	// code of its error, "" for success.
	DirectoryCall(code Code)
	// Unlock is called after each attempt to end a lockout, by an unlock
	// request or after the reset of a locked account (during), with the
	// code of its error, "" for success.
	Unlock(during Action, code Code)
}

// RecentKept is how many of the latest requests a store keeps listed for
// Recent.
const RecentKept = 100
