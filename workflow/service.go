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
	// RefusalQuiet is how long a refused attempt by one user with one code
	// is audited once only (default 10m): a user who keeps trying cannot
	// flood the audit channel.
	RefusalQuiet time.Duration

	PasswordLength      int // first try
	RetryPasswordLength int // second try after InvalidPasswordException

	Owner      string        // this replica's identity for leases
	ResetLease time.Duration // how long a replica owns an in-flight reset
	MaxReveals int           // reveal attempts before an interrupted reset fails
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
	def(&c.ResetLease, 2*time.Minute)
	def(&c.RefusalQuiet, 10*time.Minute)
	if c.Limit.Max <= 0 {
		c.Limit.Max = 3
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
	Notifier  Notifier
	Watcher   Watcher // nil: nobody is told about changes here (the store's marks still are)
	Clock     Clock   // nil: the system clock
	Metrics   Metrics // nil: none
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

// Submit creates a pending request for the chat user's own account (the
// store marks what chat must be told of it). Refusals by a guard or a
// limit are told to the audit channel.
//
// Errors: CodeOpenRequest (with that open request), CodeRateLimited, the
// Identity and Accounts errors, CodeNoApprovers, CodeUnavailable.
func (s *Service) Submit(ctx context.Context, user string) (*Request, error) {
	// The store's checks come first: a request that cannot be made costs
	// no chat or directory lookups.
	open, n, err := s.deps.Store.Standing(ctx, user, s.deps.Clock.Now().Add(-s.cfg.Limit.Window))
	switch {
	case err != nil:
		return nil, err
	case open != nil:
		return open, Errorf(CodeOpenRequest, "%s already has open request %s", user, open.ID)
	case n >= s.cfg.Limit.Max:
		err := Errorf(CodeRateLimited, "%s made %d attempts (requests and refusals they caused) in the last %s", user, n, s.cfg.Limit.Window)
		s.refused(ctx, user, nil, err)
		return nil, err
	}
	r, err := s.newRequest(ctx, user)
	if err == nil {
		err = s.deps.Store.Create(ctx, r, s.cfg.Limit)
	}
	if err != nil {
		if ErrorCode(err) == CodeOpenRequest {
			if open, oerr := s.deps.Store.Open(ctx, user); oerr == nil {
				return open, err
			}
		}
		s.refused(ctx, user, r, err)
		return nil, err
	}
	s.saved(r, 0)
	s.log(r).Info("request created", "approvers", len(r.Approvers), "asked_as", r.AskedAs)
	return r, nil
}

// newRequest resolves user's account, applies the guards and finds the
// approvers. On an error after the account is known, the returned request
// (not stored) names it.
func (s *Service) newRequest(ctx context.Context, user string) (*Request, error) {
	p, err := s.deps.Identity.Person(ctx, user)
	if err != nil {
		return nil, err
	}
	acct, err := s.deps.Accounts.Find(ctx, p)
	if err != nil {
		return nil, err
	}
	now := s.deps.Clock.Now()
	r := &Request{
		ID:          NewID(),
		Requester:   user,
		Account:     acct,
		DirectoryID: s.cfg.DirectoryID,
		Status:      StatusPending,
		CreatedAt:   now,
		DecideBy:    now.Add(s.cfg.RequestTTL),
		Events:      []Event{{At: now, Kind: EventRequested, Actor: user}},
	}
	if r.Account, err = s.deps.Accounts.Check(ctx, acct); err != nil {
		r.Account = acct
		return r, err
	}
	if r.Approvers, r.AskedAs, err = s.approvers(ctx, user, r.Account); err != nil {
		return r, err
	}
	return r, nil
}

// approvers returns who decides user's request for acct and why: the
// manager in the directory when ManagerApproval is on and they can, else
// the configured approvers. The requester is never among them.
//
// Errors: CodeNoApprovers, CodeLookupUnavailable, the Approvers' errors.
func (s *Service) approvers(ctx context.Context, user string, acct Account) ([]string, AskedAs, error) {
	asked := AskedApprovers
	if s.cfg.ManagerApproval {
		manager, why, err := s.manager(ctx, user, acct)
		if err != nil {
			return nil, "", err
		}
		if manager != "" {
			return []string{manager}, AskedManager, nil
		}
		asked = why
	}
	ids, err := s.deps.Approvers.For(ctx, user, acct)
	if err != nil {
		return nil, "", err
	}
	ids = slices.DeleteFunc(slices.Clone(ids), func(a string) bool { return a == user })
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) == 0 {
		return nil, "", Errorf(CodeNoApprovers, "nobody but %s could approve a request for %q (%s)", user, acct.UserName, cmp.Or(string(asked), "static approvers"))
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
}

// uncountedRefusals are the audited refusals that are not the employee's
// doing, or that counting would make permanent: the limit itself (else one
// stays limited for ever) and a deployment without approvers for them.
var uncountedRefusals = []Code{CodeRateLimited, CodeNoApprovers}

// countsAgainstLimit reports whether a refusal with code counts against
// the employee's request limit like a created request: the refusals the
// employee caused (a guard, their identity), so that nobody can probe the
// guards without limit. Outages, internal errors and an open request are
// not audited refusals, and do not count either.
func countsAgainstLimit(code Code) bool {
	return slices.Contains(refusalCodes, code) && !slices.Contains(uncountedRefusals, code)
}

// refused records a refused request in the audit log, counting it against
// the employee's limit when they caused it, before the refusal is
// answered (so that the next attempt sees it), and tells the audit channel
// in the background; a user who keeps trying is told to the channel about
// once per RefusalQuiet, and logged every time. r, when not nil, names the
// account.
func (s *Service) refused(ctx context.Context, user string, r *Request, err error) {
	code := ErrorCode(err)
	if !slices.Contains(refusalCodes, code) {
		return
	}
	f := Refusal{At: s.deps.Clock.Now(), User: user, Code: code, Detail: err.Error()}
	if r != nil {
		f.Account = r.Account.UserName
	}
	var limit Limit
	if countsAgainstLimit(code) {
		limit = s.cfg.Limit
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
		if first, cerr := s.deps.Store.Claim(ctx, "refusal:"+user+":"+string(code), s.cfg.RefusalQuiet); cerr != nil || !first {
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
func (s *Service) Decide(ctx context.Context, id, actor string, approve bool) (*Request, error) {
	if err := s.approverNow(ctx, actor); err != nil {
		s.deps.Log.Warn("an approver's click was refused: their own account may not decide now", "request_id", id, "approver", actor, "code", ErrorCode(err), "error", err)
		return nil, err
	}
	return s.transition(ctx, id, func(r *Request, now time.Time) error {
		return r.Decide(actor, approve, now, s.cfg.RevealTTL)
	})
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
		if r != nil && r.Requester != actor {
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
	return ended, nil
}

// reset finds and checks the account again, sets and delivers a new
// password, and returns the transition that records the outcome. The
// password lives only in this function's frame.
func (s *Service) reset(ctx context.Context, r *Request, display Display) func(*Request, time.Time) error {
	owner, log := s.cfg.Owner, s.log(r)
	fail := func(code Code, detail string) func(*Request, time.Time) error {
		return func(r *Request, now time.Time) error { return r.Fail(owner, now, code, detail) }
	}
	acct, err := s.accountNow(ctx, r)
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
// requester (their chat profile, then the directory) rather than from
// what the store holds, and applies every guard to it. It refuses with
// CodeAccountChanged unless it is the same directory object as the one the
// request was made for (by objectGUID when the directory gave one, else by
// name).
//
// Errors: the Identity and Accounts errors (CodeLookupUnavailable and
// CodeInternal mean it could not check), CodeAccountChanged.
func (s *Service) accountNow(ctx context.Context, r *Request) (Account, error) {
	p, err := s.deps.Identity.Person(ctx, r.Requester)
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
// user change the password at the next logon (when configured), shows the
// password to the employee, and returns the transition that records it.
func (s *Service) deliver(ctx context.Context, r *Request, acct Account, password string, display Display) func(*Request, time.Time) error {
	owner, log := s.cfg.Owner, s.log(r)
	var warning Code
	var warnDetail string
	d := Delivery{Password: password}
	if s.cfg.ForceChangeAtLogon {
		if err := s.deps.Accounts.ExpirePassword(ctx, acct); err != nil {
			warning, warnDetail = CodeForceChangeFailed, Redact(err.Error(), password)
			log.Error("password reset, but could not require a change at the next logon", "error", warnDetail)
		} else {
			d.MustChange = true
		}
	}
	if err := display.ShowPassword(ctx, r, d); err != nil {
		detail := "the password was set but could not be shown: " + Redact(err.Error(), password)
		log.Warn("password delivery failed; offering Reveal again", "error", Redact(err.Error(), password))
		return func(r *Request, now time.Time) error {
			return r.Interrupt(owner, now, s.cfg.RevealTTL, s.cfg.MaxReveals, CodeInterrupted, detail)
		}
	}
	log.Info("password reset and delivered", "length", len(password), "must_change", d.MustChange)
	return func(r *Request, now time.Time) error { return r.Complete(owner, now, warning, warnDetail) }
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
	r, err := s.deps.Store.Update(ctx, id, func(r *Request) error {
		now := s.deps.Clock.Now()
		before = len(r.Events)
		changed := r.ExpireIfDue(now)
		if r.Status == StatusResetting && !now.Before(r.ResetLease) {
			changed = r.Interrupt("", now, s.cfg.RevealTTL, s.cfg.MaxReveals, CodeInterrupted,
				"the replica doing the reset stopped before it finished") == nil
		}
		if !changed {
			return errNothingToDo
		}
		return nil
	})
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
	return s.deps.Log.With("request_id", r.ID, "requester", r.Requester, "account", r.Account.UserName, "status", r.Status)
}
