package workflow

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// Config holds the service's rules and timings.
type Config struct {
	DirectoryID string
	RequestTTL  time.Duration // decision window
	RevealTTL   time.Duration // reveal window
	Limit       Limit         // per-employee request limit
	// ManagerApproval asks the employee's manager in the directory,
	// falling back to the Approvers (APPROVER_SOURCE=manager).
	ManagerApproval bool
	// ForceChangeAtLogon makes the user change the temporary password at
	// the next logon (FORCE_CHANGE_AT_LOGON).
	ForceChangeAtLogon bool

	// Unlock allows unlock requests (they need the directory).
	Unlock bool
	// UnlockApproval makes unlocks wait for an approver's decision like
	// resets (UNLOCK_APPROVAL=approvers); without it an unlock happens at
	// once, after the guards, within UnlockLimit.
	UnlockApproval bool
	UnlockLimit    Limit // per-employee unlock limit (UNLOCK_LIMIT)
	// HelpdeskApproves makes a helpdesk agent's request on an employee's
	// behalf its own approval (HELPDESK_APPROVES), unless the password
	// would go to that agent.
	HelpdeskApproves bool
	// HelpdeskDelivery lets the agent receive the Reveal of a reset for an
	// employee who has no chat account (HELPDESK_DELIVERY); that password
	// is always "must change at next logon".
	HelpdeskDelivery bool
	// RefusalQuiet is how long a refused attempt by one user with one code
	// is audited once only (default 10m): a user who keeps trying cannot
	// flood the audit channel.
	RefusalQuiet time.Duration

	PasswordLength      int // first try
	RetryPasswordLength int // second try after InvalidPasswordException

	Owner      string        // this replica's identity for leases
	ResetLease time.Duration // how long a replica owns an in-flight reset
	MaxReveals int           // reveal attempts before an interrupted reset fails

	// Oversight (service_oversight.go). Zero durations: none.
	RemindAfter   time.Duration // approvers who have not decided are reminded once
	EscalateAfter time.Duration // with ManagerApproval, the fallback approvers are asked as well
	RequireReason bool          // a request needs the employee's reason
	WorkHours     WorkHours     // requests outside them are flagged
}

// withDefaults fills zero fields with the product defaults (README.md,
// Configuration).
func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.RequestTTL, 30*time.Minute)
	def(&c.RevealTTL, 15*time.Minute)
	def(&c.Limit.Window, 24*time.Hour)
	def(&c.UnlockLimit.Window, c.Limit.Window)
	def(&c.ResetLease, 2*time.Minute)
	def(&c.RefusalQuiet, 10*time.Minute)
	if c.Limit.Max <= 0 {
		c.Limit.Max = 3
	}
	if c.UnlockLimit.Max <= 0 {
		c.UnlockLimit.Max = 3
	}
	if c.PasswordLength <= 0 {
		c.PasswordLength = 20
	}
	if c.RetryPasswordLength <= c.PasswordLength {
		c.RetryPasswordLength = c.PasswordLength + 12
	}
	if c.MaxReveals <= 0 {
		c.MaxReveals = 3
	}
	if c.Owner == "" {
		c.Owner = NewID()
	}
	return c
}

// Deps are the service's collaborators.
type Deps struct {
	Store     Store
	Directory Directory
	Passwords Passwords
	Identity  Identity
	Accounts  Accounts
	Approvers Approvers
	Helpdesk  Helpdesk // nil: nobody may ask on another's behalf
	Notifier  Notifier
	Watcher   Watcher      // nil: nobody is told about changes here (the store's marks still are)
	Facts     FactSource   // nil: no directory facts for the approvers
	Disabler  Disabler     // nil: "This wasn't me" disables nothing (REPORT_DISABLES off)
	Notices   OwnerNotices // nil: no notice email
	Clock     Clock        // nil: the system clock
	Metrics   Metrics      // nil: none
	Log       *slog.Logger
}

// Service runs the reset flow. Its methods are called by the chat handlers
// after they acked, and by the sweeper.
type Service struct {
	cfg  Config
	deps Deps
	bg   sync.WaitGroup // audit-channel notes running in the background

	stopped context.Context // cancelled by Stop: work that outlives its caller ends
	stop    context.CancelFunc
}

// New returns a Service.
func New(cfg Config, d Deps) *Service {
	if d.Clock == nil {
		d.Clock = SystemClock{}
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	stopped, stop := context.WithCancel(context.Background())
	s := &Service{cfg: cfg.withDefaults(), deps: d, stopped: stopped, stop: stop}
	s.deps.Store = watchedStore{Store: d.Store, report: s.tampered}
	return s
}

// Stop ends the work that outlives its caller (a reset whose click
// handler is gone, an audit note): at shutdown, what is not done by then
// is left to the leases, which another replica, or the next start, takes
// over.
func (s *Service) Stop() { s.stop() }

// detach returns a context that does not end with ctx, but with Stop.
func (s *Service) detach(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	unhook := context.AfterFunc(s.stopped, cancel)
	return ctx, func() { unhook(); cancel() }
}

// Config returns the effective configuration.
func (s *Service) Config() Config { return s.cfg }

// errNothingToDo aborts an Update that has nothing to save.
var errNothingToDo = errors.New("nothing to do")

// Submit creates a pending reset request for the chat user's own account
// (see Ask).
func (s *Service) Submit(ctx context.Context, user string) (*Request, error) {
	return s.Ask(ctx, Ask{By: user, Action: ActionReset})
}

// SubmitWithReason is Submit with the employee's reason for the
// approvers (see Ask).
func (s *Service) SubmitWithReason(ctx context.Context, user, reason string) (*Request, error) {
	return s.Ask(ctx, Ask{By: user, Action: ActionReset, Reason: reason})
}

// Ask is what someone asked for with the command: an action, for
// themselves or, for a helpdesk member, on an employee's behalf.
type Ask struct {
	By     string // the chat user who asked
	Action Action // ActionReset ("" too) or ActionUnlock
	// For names the employee by chat user ID, ForEmail by email (who may
	// have no chat account). Both empty, or By themselves: By's own
	// account.
	For      string
	ForEmail string
	// Reason is the employee's reason for the approvers, cleaned by
	// CleanReason; with RequireReason an employee's reset of their own
	// account without one is refused.
	Reason string
}

// needsReason reports whether a must carry a reason under RequireReason:
// an employee's reset of their own account. An unlock (no secret, and
// no approval by default) and a helpdesk agent's request (the agent is
// named in every message and audit line) need none.
func (a Ask) needsReason() bool {
	return a.Action == ActionReset && (a.For == "" || a.For == a.By) && a.ForEmail == ""
}

// limit returns the per-employee limit of action a.
func (s *Service) limit(a Action) Limit {
	if a.Name() == ActionUnlock {
		return s.cfg.UnlockLimit
	}
	return s.cfg.Limit
}

// Ask makes the request a asks for (the store marks what chat must be
// told of it). A reset is stored pending (approved when the agent's
// request is the approval). An unlock that needs no decision is unlocked
// at once: Ask returns it ended (completed, or failed with the reason for
// the employee), not an error. Refusals by a guard or a limit are told to
// the audit channel, and counted against the employee's limit of that
// action when the employee's account or identity caused them.
//
// Errors: CodeOpenRequest (with that open request), CodeRateLimited,
// CodeNotHelpdesk, CodeNotInChat, CodeNotLocked, CodeUnlockDisabled,
// CodeInvalidInput (no reason when one is required), the Identity and
// Accounts errors, CodeNoApprovers, CodeUnavailable.
func (s *Service) Ask(ctx context.Context, a Ask) (*Request, error) {
	a.Action = a.Action.Name()
	a.Reason = CleanReason(a.Reason)
	if s.cfg.RequireReason && a.Reason == "" && a.needsReason() {
		return nil, Errorf(CodeInvalidInput, "%s gave no reason for a reset of their own account, and REQUIRE_REASON is on", a.By)
	}
	at, err := s.attempt(ctx, a)
	if err != nil {
		return nil, err
	}
	if a.Action == ActionUnlock && !s.cfg.Unlock {
		return nil, Errorf(CodeUnlockDisabled, "%s asked for an unlock, which needs the directory (LDAP_URL)", a.By)
	}
	limit := s.limit(a.Action)
	// The store's checks come first: a request that cannot be made costs
	// no chat or directory lookups.
	open, n, err := s.deps.Store.Standing(ctx, at.employee, a.Action, s.deps.Clock.Now().Add(-limit.Window))
	switch {
	case err != nil:
		return nil, err
	case open != nil:
		return open, Errorf(CodeOpenRequest, "%s already has open request %s", at.employee, open.ID)
	case n >= limit.Max:
		err := Errorf(CodeRateLimited, "%s made %d %s attempts (requests and refusals they caused) in the last %s", at.employee, n, a.Action, limit.Window)
		s.refused(ctx, at, nil, err)
		return nil, err
	}
	r, err := s.newRequest(ctx, at)
	if err == nil {
		err = s.deps.Store.Create(ctx, r, limit)
	}
	if err != nil {
		if ErrorCode(err) == CodeOpenRequest {
			if open, oerr := s.deps.Store.Open(ctx, at.employee); oerr == nil {
				return open, err
			}
		}
		s.refused(ctx, at, r, err)
		return nil, err
	}
	s.saved(r, 0)
	s.log(r).Info("request created", "action", r.Action, "agent", r.Agent, "approvers", len(r.Approvers), "asked_as", r.AskedAs)
	if r.Status == StatusResetting && r.IsUnlock() && r.ResetOwner == s.cfg.Owner {
		return s.runUnlock(ctx, r)
	}
	return r, nil
}

// attempt is one Ask as the service understood it: who asked, for whom.
type attempt struct {
	Ask
	employee string // Request.Requester: the employee's chat user ID, or MailRequester of their email
	agent    string // who asked on the employee's behalf, "" when they asked themselves
	person   *Person
}

// attempt finds the employee a names: By themselves, or, for a helpdesk
// member only, the chat user or the email they named. Naming oneself is
// asking for oneself.
//
// Errors: CodeNotHelpdesk (audited), Employee's errors (audited and
// counted as the employee's refusals), CodeInternal.
func (s *Service) attempt(ctx context.Context, a Ask) (attempt, error) {
	at := attempt{Ask: a, employee: a.By}
	if (a.For == "" || a.For == a.By) && a.ForEmail == "" {
		return at, nil
	}
	at.agent = a.By
	at.employee = a.For
	if a.ForEmail != "" {
		at.employee = MailRequester(a.ForEmail)
	}
	member := false
	if s.deps.Helpdesk != nil {
		var err error
		if member, err = s.deps.Helpdesk.Includes(ctx, a.By); err != nil {
			return at, err
		}
	}
	if !member {
		err := Errorf(CodeNotHelpdesk, "%s named another person (%s) but is not in HELPDESK; nothing was looked up", a.By, cmp.Or(a.For, a.ForEmail))
		s.refused(ctx, at, nil, err)
		return at, err
	}
	if a.ForEmail == "" {
		return at, nil
	}
	p, ok, err := s.deps.Identity.Employee(ctx, a.ForEmail)
	if err != nil {
		s.refused(ctx, at, nil, err)
		return at, err
	}
	if ok {
		at.employee, at.person = p.ID, &p
		if p.ID == a.By {
			at.agent = "" // their own email
		}
	}
	return at, nil
}

// person returns the employee of a request: their chat profile, checked,
// or, for an employee with no chat account, the email they were named by.
func (s *Service) person(ctx context.Context, requester string) (Person, error) {
	if email, ok := strings.CutPrefix(requester, mailRequester); ok {
		return Person{Email: email}, nil
	}
	return s.deps.Identity.Person(ctx, requester)
}

// newRequest resolves the employee's account, applies the guards, finds
// the approvers, and takes the steps that need nobody else (an unlock
// with no decision to wait for begins; the agent's request is the
// approval). On an error after the account is known, the returned request
// (not stored) names it.
func (s *Service) newRequest(ctx context.Context, at attempt) (*Request, error) {
	if email, ok := strings.CutPrefix(at.employee, mailRequester); ok && at.Action == ActionReset && !s.cfg.HelpdeskDelivery {
		// Refused before the directory is asked: nobody could be given
		// the password.
		return nil, Errorf(CodeNotInChat, "nobody in chat has %s, so a temporary password could only go to the agent %s, which HELPDESK_DELIVERY does not allow", email, at.agent)
	}
	var p Person
	if at.person != nil {
		p = *at.person
	} else {
		var err error
		if p, err = s.person(ctx, at.employee); err != nil {
			return nil, err
		}
	}
	acct, err := s.deps.Accounts.Find(ctx, p)
	if err != nil {
		return nil, err
	}
	now := s.deps.Clock.Now()
	r := &Request{
		ID:          NewID(),
		Requester:   at.employee,
		Action:      at.Action.Name(),
		Agent:       at.agent,
		Account:     acct,
		DirectoryID: s.cfg.DirectoryID,
		Status:      StatusPending,
		CreatedAt:   now,
		DecideBy:    now.Add(s.cfg.RequestTTL),
		Events:      []Event{{At: now, Kind: EventRequested, Actor: at.By, Reason: at.Reason}},
	}
	if r.Account, err = s.deps.Accounts.Check(ctx, acct); err != nil {
		r.Account = acct
		return r, err
	}
	if !r.InChat() && r.Account.Unchecked {
		// Only the directory can say whose account an email names when
		// no chat profile does.
		return r, Errorf(CodeNoAccount, "nobody in chat has %s, and without the directory (LDAP_URL) the bot cannot find the account", r.EmployeeEmail())
	}
	if r.IsUnlock() {
		lock, err := s.deps.Accounts.Lockout(ctx, r.Account)
		if err != nil {
			return r, err
		}
		if lock.Known && !lock.Locked {
			return r, Errorf(CodeNotLocked, "%q is not locked (msDS-User-Account-Control-Computed); nothing was written", r.Account.UserName)
		}
	}
	leaseUntil := now.Add(s.cfg.ResetLease)
	switch {
	case r.IsUnlock() && !s.cfg.UnlockApproval:
		// No decision to wait for: this replica unlocks it at once.
		return r, r.BeginUnlock(s.cfg.Owner, now, leaseUntil)
	case r.Agent != "" && s.cfg.HelpdeskApproves && r.InChat():
		// The agent's request is the approval (four eyes: the agent and
		// the employee). Not when the password would go to the agent.
		r.Approvers, r.AskedAs = []string{r.Agent}, AskedHelpdesk
		if err := r.Decide(r.Agent, true, now, s.cfg.RevealTTL); err != nil {
			return r, err
		}
		if r.IsUnlock() {
			return r, r.BeginUnlock(s.cfg.Owner, now, leaseUntil)
		}
		return r, nil
	}
	if r.Approvers, r.AskedAs, err = s.approvers(ctx, r); err != nil {
		return r, err
	}
	s.schedule(r)
	r.Facts = s.facts(ctx, p, r)
	return r, nil
}

// approvers returns who decides r and why: the employee's manager in the
// directory when ManagerApproval is on and they can, else the configured
// approvers. Neither the employee nor the agent who asked on their behalf
// is ever among them (HELPDESK_APPROVES makes the agent's request the
// approval before this is asked).
//
// Errors: CodeNoApprovers, CodeLookupUnavailable, the Approvers' errors.
func (s *Service) approvers(ctx context.Context, r *Request) ([]string, AskedAs, error) {
	user, acct := r.Requester, r.Account
	mayNot := func(a string) bool { return a == user || a == r.Agent }
	asked := AskedApprovers
	if s.cfg.ManagerApproval {
		manager, why, err := s.manager(ctx, user, acct)
		if err != nil {
			return nil, "", err
		}
		if manager != "" && !mayNot(manager) {
			return []string{manager}, AskedManager, nil
		}
		asked = why
		if manager != "" {
			asked = AskedManagerIsAgent
		}
	}
	ids, err := s.deps.Approvers.For(ctx, user, acct)
	if err != nil {
		return nil, "", err
	}
	ids = slices.DeleteFunc(slices.Clone(ids), mayNot)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) == 0 {
		return nil, "", Errorf(CodeNoApprovers, "nobody but %s could approve a request for %q (%s)", cmp.Or(r.Agent, user), acct.UserName, cmp.Or(string(asked), "static approvers"))
	}
	return ids, asked, nil
}

// manager returns the chat user ID of acct's manager, or "" and why the
// configured approvers must be asked instead.
func (s *Service) manager(ctx context.Context, user string, acct Account) (string, AskedAs, error) {
	m, ok, err := s.deps.Accounts.Manager(ctx, acct)
	switch {
	case err != nil:
		return "", "", err
	case !ok:
		return "", AskedNoManager, nil
	case m.Disabled:
		return "", AskedManagerDisabled, nil
	case m.Email == "":
		return "", AskedManagerNotInChat, nil
	}
	p, ok, err := s.deps.Identity.ByEmail(ctx, m.Email)
	switch {
	case err != nil:
		return "", "", err
	case !ok:
		return "", AskedManagerNotInChat, nil
	case p.ID == user:
		return "", AskedManagerIsRequester, nil
	}
	return p.ID, AskedManager, nil
}

// refusalCodes are the refusals worth an audit line: the guards, identity
// problems and the rate limit. Outages and internal errors are logged.
// Each but those in uncountedRefusals counts against the employee's
// request limit (countsAgainstLimit).
var refusalCodes = []Code{
	CodeRateLimited, CodeUnknownUser, CodeIneligibleUser, CodeNoEmail, CodeEmailDomain,
	CodeEmailUnconfirmed, CodeForeignUser, CodeEmailMismatch,
	CodeInvalidUserName, CodeProtectedAccount, CodeNoApprovers, CodeNoAccount,
	CodeAmbiguousAccount, CodeAccountDisabled, CodeProtectedGroup, CodeMachineAccount, CodeOutsideOU,
	CodeUncheckable, CodeAdminCount, // the fail-closed directory guards
	CodeNotLocked,                  // an unlock of an account that is not locked: it tells whether it is
	CodeNotHelpdesk, CodeNotInChat, // on behalf
}

// uncountedRefusals are the audited refusals that are not the employee's
// doing, or that counting would make permanent: the limit itself (else one
// stays limited for ever), a deployment without approvers for them, and
// the on-behalf refusals decided before the employee's account was looked
// at (someone not in HELPDESK naming another person; nobody in chat to
// give a password to), which tell nothing about the employee.
var uncountedRefusals = []Code{CodeRateLimited, CodeNoApprovers, CodeNotHelpdesk, CodeNotInChat}

// countsAgainstLimit reports whether a refusal with code counts against
// the employee's request limit like a created request: the refusals the
// employee caused (a guard, their identity), so that nobody can probe the
// guards without limit. Outages, internal errors and an open request are
// not audited refusals, and do not count either.
func countsAgainstLimit(code Code) bool {
	return slices.Contains(refusalCodes, code) && !slices.Contains(uncountedRefusals, code)
}

// refused records a refused request in the audit log, counting it against
// the employee's limit of the action when they caused it (on their behalf
// too: the limit bounds what is tried on one account, whoever asks),
// before the refusal is answered (so that the next attempt sees it), and
// tells the audit channel in the background; a user who keeps trying is
// told to the channel about once per RefusalQuiet, and logged every time.
// r, when not nil, names the account.
func (s *Service) refused(ctx context.Context, at attempt, r *Request, err error) {
	code := ErrorCode(err)
	if !slices.Contains(refusalCodes, code) {
		return
	}
	user := at.employee
	f := Refusal{At: s.deps.Clock.Now(), User: user, Action: at.Action.Name(), Agent: at.agent, Code: code, Detail: err.Error()}
	if r != nil {
		f.Account = r.Account.UserName
	}
	var limit Limit
	if countsAgainstLimit(code) {
		limit = s.limit(at.Action)
	}
	wctx, stop := s.detach(ctx)
	wctx, cancel := context.WithTimeout(wctx, 10*time.Second)
	if rerr := s.deps.Store.Refused(wctx, RefusalRecord(f, s.cfg.DirectoryID), limit); rerr != nil {
		s.deps.Log.Error("could not write a refused request to the audit log", "user", user, "code", code, "counted", limit.Max > 0, "error", rerr)
	}
	cancel()
	stop()
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		ctx, stop := s.detach(ctx)
		defer stop()
		ctx, cancel := context.WithTimeout(ctx, noteTimeout)
		defer cancel()
		if first, cerr := s.deps.Store.Claim(ctx, "refusal:"+user+":"+string(code)+":"+at.agent, s.cfg.RefusalQuiet); cerr != nil || !first {
			return
		}
		if nerr := s.deps.Notifier.Refused(ctx, f); nerr != nil {
			s.deps.Log.Warn("could not tell the audit channel about a refused request", "user", user, "code", code, "error", nerr)
		}
	}()
}

// noteTimeout bounds a note to the audit channel made in the background.
const noteTimeout = 2 * time.Minute

// Decide records approver actor's decision on request id. The first decision
// wins. On error the returned request, if any, is the current one, so that
// the caller can say who decided first.
//
// Errors: CodeNotFound, CodeSelfApproval, CodeNotApprover, CodeDecided,
// CodeExpired, CodeUnavailable, and approverNow's.
//
// The approval of an unlock begins it in the same change (so that one
// replica, this one, writes once however many clicks came), and Decide
// returns after the unlock ended.
func (s *Service) Decide(ctx context.Context, id, actor string, approve bool) (*Request, error) {
	return s.decide(ctx, id, actor, approve, "")
}

// decide is Decide with the reason of a denial ("" for none).
func (s *Service) decide(ctx context.Context, id, actor string, approve bool, reason string) (*Request, error) {
	if err := s.approverNow(ctx, actor); err != nil {
		s.deps.Log.Warn("an approver's click was refused: their own account may not decide now", "request_id", id, "approver", actor, "code", ErrorCode(err), "error", err)
		return nil, err
	}
	r, err := s.transition(ctx, id, func(r *Request, now time.Time) error {
		if err := r.Decide(actor, approve, now, s.cfg.RevealTTL); err != nil {
			return err
		}
		r.Events[len(r.Events)-1].Reason = reason
		if approve && r.IsUnlock() {
			return r.BeginUnlock(s.cfg.Owner, now, now.Add(s.cfg.ResetLease))
		}
		return nil
	})
	if err != nil || r.Status != StatusResetting || !r.IsUnlock() || r.ResetOwner != s.cfg.Owner {
		return r, err
	}
	return s.runUnlock(ctx, r)
}

// approverNow checks, at the moment of the click, that actor's own
// accounts let them decide: an active member of this workspace in chat,
// and, with a directory, an enabled directory account. Who was eligible
// when the request was made may have left since.
//
// Errors: CodeApproverInactive, CodeInternal (chat unreachable),
// CodeLookupUnavailable.
func (s *Service) approverNow(ctx context.Context, actor string) error {
	p, err := s.deps.Identity.Approver(ctx, actor)
	switch ErrorCode(err) {
	case "":
		return s.deps.Accounts.Approver(ctx, p)
	case CodeUnknownUser, CodeIneligibleUser, CodeForeignUser:
		return Wrap(CodeApproverInactive, err, "")
	}
	return err
}

// Cancel cancels actor's open request.
//
// Errors: CodeNoOpenRequest, CodeWrongState (a reset is in flight),
// CodeUnavailable.
func (s *Service) Cancel(ctx context.Context, actor string) (*Request, error) {
	open, err := s.deps.Store.Open(ctx, actor)
	if err != nil {
		return nil, err
	}
	return s.transition(ctx, open.ID, func(r *Request, now time.Time) error {
		return r.Cancel(actor, now)
	})
}

// Status returns actor's open request.
// Errors: CodeNoOpenRequest, CodeUnavailable.
func (s *Service) Status(ctx context.Context, actor string) (*Request, error) {
	return s.deps.Store.Open(ctx, actor)
}

// Get returns request id. Errors: CodeNotFound, CodeUnavailable.
func (s *Service) Get(ctx context.Context, id string) (*Request, error) {
	if !ValidID(id) {
		return nil, Errorf(CodeNotFound, "%q is not a request ID", id)
	}
	return s.deps.Store.Get(ctx, id)
}

// transition applies change to request id atomically (the store marks
// what chat must be told) and tells the Watcher. On error it returns the
// request as it was when change refused it.
func (s *Service) transition(ctx context.Context, id string, change func(*Request, time.Time) error) (*Request, error) {
	if !ValidID(id) {
		return nil, Errorf(CodeNotFound, "%q is not a request ID", id)
	}
	var seen *Request
	var before int
	r, err := s.deps.Store.Update(ctx, id, func(r *Request) error {
		now := s.deps.Clock.Now()
		before = len(r.Events)
		if err := change(r, now); err != nil {
			c := *r
			seen = &c
			return err
		}
		return nil
	})
	if err != nil {
		return seen, err
	}
	s.saved(r, before)
	s.log(r).Info("request changed", "event", r.LastEvent().Kind)
	return r, nil
}

// Reveal runs the reset for the requester's click on Reveal: it moves the
// request to resetting under a lease, sets a fresh password in the
// directory, shows it to the employee only (through display, the answer to
// their click), and ends the request. Directory failures end the request
// as failed (the employee is told through chat); they are not returned. It
// returns the request as it ended, or, on error, as it was when the click
// was refused (nil if unknown, or not actor's, so that nobody learns about
// other people's requests).
//
// Errors: CodeNotFound, CodeNotRequester, CodeExpired, CodeWrongState,
// CodeDecided, CodeUnavailable.
func (s *Service) Reveal(ctx context.Context, id, actor string, display Display) (*Request, error) {
	if !ValidID(id) {
		return nil, Errorf(CodeNotFound, "%q is not a request ID", id)
	}
	var leaseUntil time.Time
	r, err := s.transition(ctx, id, func(r *Request, now time.Time) error {
		leaseUntil = now.Add(s.cfg.ResetLease)
		return r.BeginReset(actor, s.cfg.Owner, now, leaseUntil)
	})
	if err != nil {
		if r != nil && r.Recipient() != actor {
			r = nil
		}
		return r, err
	}
	// Stop working well before the lease ends, so that the sweeper never
	// recovers a reset this replica is still doing.
	dctx, stop := s.detach(ctx)
	defer stop()
	wctx, cancel := context.WithDeadline(dctx, leaseUntil.Add(-s.cfg.ResetLease/4))
	defer cancel()

	end := s.reset(wctx, r, display)
	// Record the outcome even if the work used up its deadline; the
	// compare-and-set refuses it if the sweeper already took the reset over.
	ectx, ecancel := context.WithTimeout(dctx, 10*time.Second)
	defer ecancel()
	ended, err := s.transition(ectx, r.ID, end)
	if err != nil {
		s.log(r).Error("could not record the end of a reset", "error", err)
		return r, err
	}
	if ended.Status == StatusCompleted && s.deps.Notices != nil {
		// This replica recorded the completion: it, and only it, tells
		// the owner.
		s.deps.Notices.Completed(ended)
	}
	return ended, nil
}

// agentNow checks, at the moment an agent would receive a password for an
// employee with no chat account, that they may: an active member of this
// workspace, still in HELPDESK.
//
// Errors: CodeNotHelpdesk, CodeApproverInactive, CodeInternal,
// CodeLookupUnavailable.
func (s *Service) agentNow(ctx context.Context, agent string) error {
	if err := s.approverNow(ctx, agent); err != nil {
		return err
	}
	member := false
	if s.deps.Helpdesk != nil {
		var err error
		if member, err = s.deps.Helpdesk.Includes(ctx, agent); err != nil {
			return err
		}
	}
	if !member {
		return Errorf(CodeNotHelpdesk, "%s is no longer in HELPDESK", agent)
	}
	return nil
}

// reset finds and checks the account again, sets and delivers a new
// password, and returns the transition that records the outcome. The
// password lives only in this function's frame.
func (s *Service) reset(ctx context.Context, r *Request, display Display) func(*Request, time.Time) error {
	owner, log := s.cfg.Owner, s.log(r)
	fail := func(code Code, detail string) func(*Request, time.Time) error {
		return func(r *Request, now time.Time) error { return r.Fail(owner, now, code, detail) }
	}
	var acct Account
	var err error
	if !r.InChat() {
		// The password would go to the agent: they must still be one.
		err = s.agentNow(ctx, r.Agent)
	}
	if err == nil {
		acct, err = s.accountNow(ctx, r)
	}
	switch code := ErrorCode(err); {
	case code == CodeLookupUnavailable, code == CodeInternal:
		log.Warn("could not check the account before the reset; nothing changed", "error", err)
		return func(r *Request, now time.Time) error { return r.Postpone(owner, now, code, err.Error()) }
	case err != nil:
		log.Warn("the account may no longer be reset; nothing changed", "code", code, "error", err)
		return fail(code, "checked again at Reveal: "+err.Error())
	}
	if acct.UserName != r.Account.UserName {
		log.Info("the account was renamed since the request; resetting it under its current name", "now", acct.UserName)
	}
	for _, length := range []int{s.cfg.PasswordLength, s.cfg.RetryPasswordLength} {
		var password string
		password, err = s.deps.Passwords.New(length, acct)
		if err != nil {
			log.Error("could not generate a password", "error", err)
			return fail(CodeInternal, "could not generate a password")
		}
		err = s.deps.Directory.ResetPassword(ctx, acct.UserName, password)
		if s.deps.Metrics != nil {
			s.deps.Metrics.DirectoryCall(ErrorCode(err))
		}
		if err == nil {
			return s.deliver(ctx, r, acct, password, display)
		}
		detail := Redact(err.Error(), password)
		if ErrorCode(err) == CodeDirectoryUncertain {
			// The new password may be set, and nobody will ever know it:
			// offer Reveal again, which sets another one.
			log.Warn("the directory call ended without an answer; offering Reveal again", "error", detail)
			return func(r *Request, now time.Time) error {
				return r.Interrupt(owner, now, s.cfg.RevealTTL, s.cfg.MaxReveals, CodeDirectoryUncertain, detail)
			}
		}
		if ErrorCode(err) != CodeInvalidPassword {
			log.Warn("directory refused the reset", "code", ErrorCode(err), "error", detail)
			return fail(ErrorCode(err), detail)
		}
		log.Warn("directory rejected the generated password", "length", length, "error", detail)
		err = Wrap(CodeInvalidPassword, errors.New(detail), "")
	}
	return fail(CodeInvalidPassword, err.Error()+" (also with a longer password)")
}

// accountNow derives r's account again, as at the request, from the
// employee (their chat profile, or the email an employee with no chat
// account was named by, then the directory; never the agent) rather than from
// what the store holds, and applies every guard to it. It refuses with
// CodeAccountChanged unless it is the same directory object as the one the
// request was made for (by objectGUID when the directory gave one, else by
// name).
//
// Errors: the Identity and Accounts errors (CodeLookupUnavailable and
// CodeInternal mean it could not check), CodeAccountChanged.
func (s *Service) accountNow(ctx context.Context, r *Request) (Account, error) {
	p, err := s.person(ctx, r.Requester) // the employee's, never the agent's
	if err != nil {
		return Account{}, err
	}
	found, err := s.deps.Accounts.Find(ctx, p)
	if err != nil {
		return Account{}, err
	}
	switch {
	case found.GUID != r.Account.GUID:
		return Account{}, Errorf(CodeAccountChanged, "%s's account is now %q (objectGUID %s), not %q (objectGUID %s) as when the request was made",
			r.Requester, found.UserName, cmp.Or(found.GUID, "none"), r.Account.UserName, cmp.Or(r.Account.GUID, "none"))
	case found.GUID == "" && !strings.EqualFold(found.UserName, r.Account.UserName):
		return Account{}, Errorf(CodeAccountChanged, "%s's account is now %q, not %q as when the request was made", r.Requester, found.UserName, r.Account.UserName)
	}
	return s.deps.Accounts.Check(ctx, found)
}

// deliver finishes a reset that worked: it asks the directory to make the
// user change the password at the next logon (when configured, and always
// for a password the agent hands over), ends a lockout the account has,
// shows the password to its recipient, and returns the transition that
// records it.
func (s *Service) deliver(ctx context.Context, r *Request, acct Account, password string, display Display) func(*Request, time.Time) error {
	owner, log := s.cfg.Owner, s.log(r)
	var warning Code
	var warnDetail string
	d := Delivery{Password: password}
	if s.cfg.ForceChangeAtLogon || !r.InChat() {
		if err := s.deps.Accounts.ExpirePassword(ctx, acct); err != nil {
			detail := Redact(err.Error(), password)
			if !r.InChat() {
				// A password an agent hands over must be changed by its
				// owner at once; one that could not be made so is never
				// shown. Nobody knows it now: the account needs helpdesk.
				log.Error("password reset for the agent to hand over, but \"must change at next logon\" could not be set: not shown to anyone", "error", detail)
				return func(r *Request, now time.Time) error {
					return r.Fail(owner, now, CodeAgentNotDelivered, "the password was set but not shown to the agent, since \"must change at next logon\" could not be set: "+detail)
				}
			}
			warning, warnDetail = CodeForceChangeFailed, detail
			log.Error("password reset, but could not require a change at the next logon", "error", warnDetail)
		} else {
			d.MustChange = true
		}
	}
	unlockCode, unlockDetail := s.unlockAfterReset(ctx, r, acct, &d)
	if warning == "" {
		warning, warnDetail = unlockCode, unlockDetail
	} else if unlockDetail != "" {
		warnDetail += "; " + unlockDetail
	}
	if err := display.ShowPassword(ctx, r, d); err != nil {
		detail := "the password was set but could not be shown: " + Redact(err.Error(), password)
		log.Warn("password delivery failed; offering Reveal again", "error", Redact(err.Error(), password))
		return func(r *Request, now time.Time) error {
			return r.Interrupt(owner, now, s.cfg.RevealTTL, s.cfg.MaxReveals, CodeInterrupted, detail)
		}
	}
	log.Info("password reset and delivered", "length", len(password), "must_change", d.MustChange, "unlocked", d.Unlocked, "still_locked", d.StillLocked != nil)
	return func(r *Request, now time.Time) error {
		if err := r.Complete(owner, now, warning, warnDetail); err != nil {
			return err
		}
		r.Unlocked, r.StillLocked = d.Unlocked, d.StillLocked
		return nil
	}
}

// unlockAfterReset ends the lockout of an account whose password was just
// reset (a reset does not end it: the new password would be refused until
// the lockout runs out), when the directory says it is locked. It records
// what happened in d, and returns the warning for the completed event, if
// any: CodeUnlockNotPermitted (no right to write lockoutTime) or
// CodeUnlockFailed, with the detail for helpdesk.
func (s *Service) unlockAfterReset(ctx context.Context, r *Request, acct Account, d *Delivery) (Code, string) {
	log := s.log(r)
	lock, err := s.deps.Accounts.Lockout(ctx, acct)
	switch {
	case err != nil:
		log.Warn("could not read whether the account is locked after the reset", "error", Redact(err.Error(), d.Password))
		return "", ""
	case !lock.Known || !lock.Locked:
		return "", ""
	}
	err = s.deps.Accounts.Unlock(ctx, acct)
	code := ErrorCode(err)
	if s.deps.Metrics != nil {
		s.deps.Metrics.Unlock(ActionReset, code)
	}
	switch code {
	case "":
		d.Unlocked = true
		log.Info("the account was locked; the reset also unlocked it")
		return "", ""
	case CodeDirectoryMisconfigured:
		code = CodeUnlockNotPermitted
	default:
		code = CodeUnlockFailed
	}
	d.StillLocked = &lock
	detail := "the account is locked and stays locked: " + Redact(err.Error(), d.Password)
	log.Warn("password reset, but the account stays locked", "code", code, "error", detail)
	return code, detail
}

// runUnlock does the unlock of r, which this replica just moved to
// resetting, and records its outcome. It returns the request as it ended;
// a directory that refuses ends the request as failed, which is not an
// error.
func (s *Service) runUnlock(ctx context.Context, r *Request) (*Request, error) {
	// As for a reset: stop well before the lease ends, so that the sweeper
	// never takes over an unlock this replica is still doing.
	dctx, stop := s.detach(ctx)
	defer stop()
	wctx, cancel := context.WithDeadline(dctx, r.ResetLease.Add(-s.cfg.ResetLease/4))
	defer cancel()
	end := s.unlock(wctx, r)
	ectx, ecancel := context.WithTimeout(dctx, 10*time.Second)
	defer ecancel()
	ended, err := s.transition(ectx, r.ID, end)
	if err != nil {
		s.log(r).Error("could not record the end of an unlock", "error", err)
		return r, err
	}
	if ended.Status == StatusCompleted && s.deps.Notices != nil {
		s.deps.Notices.Completed(ended) // as for a reset: this replica recorded it
	}
	return ended, nil
}

// unlock derives the account again from the employee, applies every
// guard, reads whether it is still locked, ends the lockout, and returns
// the transition that records the outcome.
func (s *Service) unlock(ctx context.Context, r *Request) func(*Request, time.Time) error {
	owner, log := s.cfg.Owner, s.log(r)
	fail := func(code Code, detail string, still *Lockout) func(*Request, time.Time) error {
		return func(r *Request, now time.Time) error {
			if err := r.Fail(owner, now, code, detail); err != nil {
				return err
			}
			r.StillLocked = still
			return nil
		}
	}
	acct, err := s.accountNow(ctx, r)
	if err != nil {
		// An outage too ends the unlock: nobody would click again.
		log.Warn("the account may not be unlocked now; nothing was written", "code", ErrorCode(err), "error", err)
		return fail(ErrorCode(err), "checked again before the unlock: "+err.Error(), nil)
	}
	lock, err := s.deps.Accounts.Lockout(ctx, acct)
	switch {
	case err != nil:
		log.Warn("could not read whether the account is locked; nothing was written", "error", err)
		return fail(ErrorCode(err), err.Error(), nil)
	case lock.Known && !lock.Locked:
		log.Info("the account is no longer locked; nothing was written")
		return fail(CodeNotLocked, "the account is no longer locked (the lockout ran out, or someone unlocked it); nothing was written", nil)
	}
	err = s.deps.Accounts.Unlock(ctx, acct)
	code := ErrorCode(err)
	if s.deps.Metrics != nil {
		s.deps.Metrics.Unlock(ActionUnlock, code)
	}
	switch code {
	case "":
		log.Info("account unlocked", "lock_known", lock.Known)
		detail := ""
		if !lock.Known {
			detail = "whether the account was locked could not be read; lockoutTime was set to 0 all the same"
		}
		return func(r *Request, now time.Time) error { return r.Complete(owner, now, "", detail) }
	case CodeDirectoryMisconfigured:
		log.Warn("the bot may not unlock accounts: the account stays locked", "error", err)
		var still *Lockout
		if lock.Known {
			still = &lock
		}
		return fail(CodeUnlockNotPermitted, err.Error(), still)
	}
	log.Warn("the directory refused the unlock", "code", code, "error", err)
	return fail(code, err.Error(), nil)
}

// Sweep expires requests whose window passed and recovers resets whose
// replica died. Any replica may sweep at any time; the store's
// compare-and-set makes each change happen once.
func (s *Service) Sweep(ctx context.Context) error {
	ids, err := s.deps.Store.Due(ctx, s.deps.Clock.Now(), 100)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := s.sweep(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// sweep is Sweep for request id.
func (s *Service) sweep(ctx context.Context, id string) error {
	var before int
	var esc escalation
	var r *Request
	var err error
	for range 2 { // again once the fallback approvers are known
		r, err = s.deps.Store.Update(ctx, id, func(r *Request) error {
			now := s.deps.Clock.Now()
			before = len(r.Events)
			changed := r.ExpireIfDue(now)
			if r.Status == StatusResetting && !now.Before(r.ResetLease) {
				changed = r.Interrupt("", now, s.cfg.RevealTTL, s.cfg.MaxReveals, CodeInterrupted,
					"the replica doing the reset stopped before it finished") == nil
			}
			changed = r.RemindIfDue(now) || changed
			if r.EscalationDue(now) {
				if !esc.resolved {
					esc.requester, esc.account = r.Requester, r.Account
					return errNeedFallback
				}
				changed = esc.apply(r, now) || changed
			}
			if !changed {
				return errNothingToDo
			}
			return nil
		})
		if !errors.Is(err, errNeedFallback) {
			break
		}
		esc.resolve(ctx, s)
	}
	switch {
	case errors.Is(err, errNothingToDo), ErrorCode(err) == CodeNotFound:
		return nil
	case ErrorCode(err) == CodeTampered:
		return nil // reported, and moved out of the due index by the store
	case err != nil:
		return err
	}
	s.saved(r, before)
	s.log(r).Info("request changed by sweeper", "event", r.LastEvent().Kind)
	return nil
}

// RunSweeper sweeps every interval until ctx ends.
func (s *Service) RunSweeper(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.deps.Log.Warn("sweep failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Wait waits for the work started in the background (audit notes).
func (s *Service) Wait() { s.bg.Wait() }

// saved reports the events a change added to the Watcher and the metrics.
func (s *Service) saved(r *Request, before int) {
	if s.deps.Watcher != nil {
		s.deps.Watcher.Changed(r, before)
	}
	if s.deps.Metrics != nil {
		s.deps.Metrics.Saved(r, before)
	}
}

func (s *Service) log(r *Request) *slog.Logger {
	return s.deps.Log.With("request_id", r.ID, "requester", r.Requester, "account", r.Account.UserName, "status", r.Status, "action", r.Action.Name())
}
