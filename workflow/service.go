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
	SyncLease  time.Duration // how long a replica owns a chat sync
	SyncRetry  time.Duration // wait before retrying a failed chat sync
	MaxReveals int           // reveal attempts before an interrupted reset fails
	// MaxSyncs bounds the chat syncs running at once in this replica, per
	// lane (default 64); the others wait in a queue that holds only their
	// names, so that a burst of thousands of requests costs little memory.
	MaxSyncs int
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
	def(&c.SyncLease, 2*time.Minute)
	def(&c.SyncRetry, 15*time.Second)
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
	if c.MaxSyncs <= 0 {
		c.MaxSyncs = 64
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
	Clock     Clock   // nil: the system clock
	Metrics   Metrics // nil: none
	Log       *slog.Logger
}

// Service runs the reset flow. Its methods are called by the chat handlers
// after they acked, and by the sweeper.
type Service struct {
	cfg  Config
	deps Deps
	bg   sync.WaitGroup // chat syncs running in the background

	mu      sync.Mutex
	syncing map[syncKey]*pendingSync // lanes with a sync running or queued here
	running [2]int                   // sync workers per lane
	queue   [2][]syncKey             // per lane: syncs waiting for a worker, oldest first
	heads   map[string]*head         // requests something here works on

	stopped context.Context // cancelled by Stop: work that outlives its caller ends
	stop    context.CancelFunc
}

// syncKey names one lane of one request.
type syncKey struct {
	id   string
	lane Lane
}

// pendingSync is a sync running or waiting for a worker.
type pendingSync struct {
	// ctx is the context of whoever asked for it last: it carries the
	// click to answer, so that a click while a sync runs is answered
	// through its response_url by the next round.
	ctx   context.Context
	again bool // asked for again while running: run once more
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
	s := &Service{cfg: cfg.withDefaults(), deps: d, syncing: map[syncKey]*pendingSync{}, heads: map[string]*head{}, stopped: stopped, stop: stop}
	s.deps.Store = watchedStore{Store: d.Store, report: s.tampered}
	return s
}

// Stop ends the work that outlives its caller (chat syncs, a reset whose
// click handler is gone): at shutdown, what is not done by then is left to
// the leases, which another replica, or the next start, takes over.
func (s *Service) Stop() { s.stop() }

// detach returns a context that keeps ctx's values but not its
// cancellation, and that Stop ends.
func (s *Service) detach(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	unhook := context.AfterFunc(s.stopped, cancel)
	return ctx, func() { unhook(); cancel() }
}

// Config returns the effective configuration.
func (s *Service) Config() Config { return s.cfg }

// errNothingToDo aborts an Update that has nothing to save.
var errNothingToDo = errors.New("nothing to do")

// Submit creates a pending request for the chat user's own account and starts
// telling approvers and the audit channel about it. Refusals by a guard or a
// limit are also told to the audit channel.
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
	s.hold(r.ID).seen(r)
	s.syncInBackground(ctx, r)
	s.letGo(r.ID)
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
	r.AcquireSync(s.cfg.Owner, now, now.Add(s.cfg.SyncLease))
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
		ctx, cancel := context.WithTimeout(ctx, s.cfg.SyncLease)
		defer cancel()
		if first, cerr := s.deps.Store.Claim(ctx, "refusal:"+user+":"+string(code), s.cfg.RefusalQuiet); cerr != nil || !first {
			return
		}
		if nerr := s.deps.Notifier.Refused(ctx, f); nerr != nil {
			s.deps.Log.Warn("could not tell the audit channel about a refused request", "user", user, "code", code, "error", nerr)
		}
	}()
}

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

// transition applies change to request id atomically, takes the sync lease
// when free, and syncs chat in the background. On error it returns the
// request as it was when change refused it.
func (s *Service) transition(ctx context.Context, id string, change func(*Request, time.Time) error) (*Request, error) {
	if !ValidID(id) {
		return nil, Errorf(CodeNotFound, "%q is not a request ID", id)
	}
	defer s.letGo(id)
	var seen *Request
	var before int
	r, err := s.hold(id).update(ctx, s.deps.Store, id, func(r *Request) error {
		now := s.deps.Clock.Now()
		before = len(r.Events)
		if err := change(r, now); err != nil {
			c := *r
			seen = &c
			return err
		}
		r.AcquireSync(s.cfg.Owner, now, now.Add(s.cfg.SyncLease))
		return nil
	})
	if err != nil {
		return seen, err
	}
	s.saved(r, before)
	s.log(r).Info("request changed", "event", r.LastEvent().Kind)
	s.syncInBackground(ctx, r)
	return r, nil
}

// Reveal runs the reset for the requester's click on Reveal: it moves the
// request to resetting under a lease, sets a fresh password in the
// directory, shows it to the employee only, and ends the request. Directory
// failures end the request as failed (the employee is told through chat);
// they are not returned. It returns the request as it ended, or, on error,
// as it was when the click was refused (nil if unknown, or not actor's, so
// that nobody learns about other people's requests).
//
// Errors: CodeNotFound, CodeNotRequester, CodeExpired, CodeWrongState,
// CodeDecided, CodeUnavailable.
func (s *Service) Reveal(ctx context.Context, id, actor string) (*Request, error) {
	if !ValidID(id) {
		return nil, Errorf(CodeNotFound, "%q is not a request ID", id)
	}
	s.hold(id) // so that the end of the reset starts from the newest version
	defer s.letGo(id)
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

	end := s.reset(wctx, r)
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
func (s *Service) reset(ctx context.Context, r *Request) func(*Request, time.Time) error {
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
			return s.deliver(ctx, r, acct, password)
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
func (s *Service) deliver(ctx context.Context, r *Request, acct Account, password string) func(*Request, time.Time) error {
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
	if err := s.deps.Notifier.DeliverPassword(ctx, r, d); err != nil {
		detail := "the password was set but could not be shown: " + Redact(err.Error(), password)
		log.Warn("password delivery failed; offering Reveal again", "error", Redact(err.Error(), password))
		return func(r *Request, now time.Time) error {
			return r.Interrupt(owner, now, s.cfg.RevealTTL, s.cfg.MaxReveals, CodeInterrupted, detail)
		}
	}
	log.Info("password reset and delivered", "length", len(password), "must_change", d.MustChange)
	return func(r *Request, now time.Time) error { return r.Complete(owner, now, warning, warnDetail) }
}

// Sweep expires requests whose window passed, recovers resets whose replica
// died, and resumes chat syncs whose replica died. Any replica may sweep at
// any time; the store's compare-and-set makes each change happen once.
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
	defer s.letGo(id)
	var before int
	r, err := s.hold(id).update(ctx, s.deps.Store, id, func(r *Request) error {
		now := s.deps.Clock.Now()
		before = len(r.Events)
		changed := r.ExpireIfDue(now)
		if r.Status == StatusResetting && !now.Before(r.ResetLease) {
			changed = r.Interrupt("", now, s.cfg.RevealTTL, s.cfg.MaxReveals, CodeInterrupted,
				"the replica doing the reset stopped before it finished") == nil
		}
		if r.AcquireSync(s.cfg.Owner, now, now.Add(s.cfg.SyncLease)) || changed {
			return nil
		}
		return errNothingToDo
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
	if len(r.Events) > before {
		s.log(r).Info("request changed by sweeper", "event", r.LastEvent().Kind)
	}
	s.syncInBackground(ctx, r)
	return nil
}

// RunSweeper sweeps every interval until ctx ends, then waits for background
// chat syncs to finish.
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

// Wait waits for background chat syncs.
func (s *Service) Wait() { s.bg.Wait() }

// syncInBackground runs the chat sync of each lane of r whose lease this
// replica holds, one at a time per lane: a sync already running here is
// asked to look again when it ends. The lanes run independently, so that
// the audit channel never holds up what people wait for. The syncs outlive
// ctx's cancellation (a click's work must finish) but not the lease.
func (s *Service) syncInBackground(ctx context.Context, r *Request) {
	for _, l := range Lanes {
		if r.Outbox[l].Owner == s.cfg.Owner && r.SyncPending(l) {
			s.startSync(ctx, syncKey{r.ID, l})
		}
	}
}

// startSync runs the sync of k on a worker, or queues it when every worker
// of its lane is busy. A worker holds the request's head while it works on
// the request, and starts from the version there.
func (s *Service) startSync(ctx context.Context, k syncKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.syncing[k]; p != nil {
		p.ctx, p.again = ctx, true
		return
	}
	s.syncing[k] = &pendingSync{ctx: ctx}
	if s.running[k.lane] >= s.cfg.MaxSyncs {
		s.queue[k.lane] = append(s.queue[k.lane], k)
		return
	}
	s.running[k.lane]++
	s.holdLocked(k.id)
	s.bg.Add(1)
	go s.syncWorker(k)
}

// syncWorker runs the sync of k, again while asked to, then the queued
// syncs of the same lane until none is left or the service stops (the
// leases hand the rest on).
func (s *Service) syncWorker(k syncKey) {
	defer s.bg.Done()
	for {
		s.mu.Lock()
		p := s.syncing[k]
		p.again = false
		ctx, stop := s.detach(p.ctx)
		s.mu.Unlock()
		more := s.sync(ctx, k)
		stop()
		s.mu.Lock()
		if (more || p.again) && s.stopped.Err() == nil {
			s.mu.Unlock()
			continue
		}
		delete(s.syncing, k)
		s.letGoLocked(k.id)
		l := k.lane
		if len(s.queue[l]) == 0 || s.stopped.Err() != nil {
			for _, w := range s.queue[l] {
				delete(s.syncing, w)
			}
			s.queue[l] = nil
			s.running[l]--
			s.mu.Unlock()
			return
		}
		k, s.queue[l] = s.queue[l][0], s.queue[l][1:]
		s.holdLocked(k.id)
		s.mu.Unlock()
	}
}

// errLeaseLost stops a sync whose lease another replica took over.
var errLeaseLost = errors.New("sync lease lost")

// sync runs one round of lane k.lane of request k.id: it tells chat about
// the events not reflected yet and saves the lane's bookkeeping. It starts
// from the request's head (held by the worker), never from a caller's
// copy, which may be older than what an earlier round already sent. It
// reports whether the lane has more to do now.
func (s *Service) sync(ctx context.Context, k syncKey) (more bool) {
	l := k.lane
	s.mu.Lock()
	h := s.heads[k.id]
	s.mu.Unlock()
	r, err := h.read(ctx, s.deps.Store, k.id)
	if err != nil {
		s.deps.Log.Warn("could not load request for chat sync; the sweeper will retry", "request_id", k.id, "lane", l.String(), "error", err)
		return false
	}
	if r.Outbox[l].Owner != s.cfg.Owner || !r.SyncPending(l) {
		return false
	}
	if l == LaneAudit && s.ownReset(r) {
		// This replica's reset ends within its lease, and its end (or the
		// sweeper's recovery) starts this lane again, which this replica
		// owns: the audit thread then gets the reveal and its outcome in
		// one reply, and the parent one update, which spares the audit
		// channel's budget. (Another replica's end would not take over a
		// lane owned here.)
		return false
	}
	if s.deps.Clock.Now().After(r.Outbox[l].Until.Add(-s.cfg.SyncLease / 2)) {
		// The lease ran low while the sync waited for a worker.
		if r, err = s.renew(ctx, h, r, l); err != nil {
			s.deps.Log.Warn("could not renew the chat sync lease; the sweeper will retry", "request_id", k.id, "lane", l.String(), "error", err)
			return false
		}
	}
	sctx, cancel := context.WithDeadline(ctx, r.Outbox[l].Until.Add(-s.cfg.SyncLease/4))
	msgs, handled, serr := s.deps.Notifier.Sync(sctx, r, l)
	cancel()
	if serr == nil && s.onlyOwnReveal(r, l) && !msgs.posted(l, r.Messages) {
		// The round answered the Reveal click and posted nothing: the
		// round after the reset's end redoes those updates anyway, so
		// saving it would only cost a write.
		return false
	}
	next, err := s.saveRound(ctx, h, r, l, msgs, handled, serr)
	switch {
	case err != nil:
		s.log(r).Warn("could not save chat sync progress", "lane", l.String(), "error", err)
		return false
	case errors.Is(serr, ErrDeferred):
		s.log(r).Debug("chat sync left messages for later", "lane", l.String(), "retry_at", next.Outbox[l].Until)
		return false
	case serr != nil:
		s.log(r).Warn("chat sync failed; the sweeper will retry", "lane", l.String(), "error", serr, "retry_at", next.Outbox[l].Until)
		return false
	}
	s.log(next).Debug("chat synced", "lane", l.String(), "events", next.Outbox[l].Done)
	return next.Outbox[l].Owner == s.cfg.Owner && next.SyncPending(l)
}

// ownReset reports whether r is being reset by this replica: the reset's
// end (or the sweeper's recovery) starts r's chat lanes again, here.
func (s *Service) ownReset(r *Request) bool {
	return r.Status == StatusResetting && r.ResetOwner == s.cfg.Owner
}

// onlyOwnReveal reports whether the one event lane l of r has not reflected
// yet is the reveal of a reset this replica is doing.
func (s *Service) onlyOwnReveal(r *Request, l Lane) bool {
	return s.ownReset(r) && r.Outbox[l].Done == len(r.Events)-1 && r.LastEvent().Kind == EventRevealed
}

// saveRound saves what a round of lane l that started from r sent: msgs,
// and handled more events reflected. The lane keeps its lease for the next
// round, or until SyncRetry after a failure, and lets it go when done.
func (s *Service) saveRound(ctx context.Context, h *head, r *Request, l Lane, msgs Messages, handled int, serr error) (*Request, error) {
	done := min(r.Outbox[l].Done+handled, len(r.Events))
	return h.update(ctx, s.deps.Store, r.ID, func(cur *Request) error {
		o := &cur.Outbox[l]
		if o.Owner != s.cfg.Owner || o.Saves != r.Outbox[l].Saves {
			return errLeaseLost
		}
		now := s.deps.Clock.Now()
		cur.Messages.keep(l, msgs)
		o.Done = done
		o.Saves++
		switch {
		case serr != nil:
			o.Until = now.Add(s.cfg.SyncRetry)
		case !cur.SyncPending(l):
			o.Owner, o.Until = "", time.Time{}
		default:
			o.Until = now.Add(s.cfg.SyncLease)
		}
		return nil
	})
}

// renew extends this replica's lease of lane l of r, unless the lane
// changed hands or progressed since r was read.
func (s *Service) renew(ctx context.Context, h *head, r *Request, l Lane) (*Request, error) {
	return h.update(ctx, s.deps.Store, r.ID, func(cur *Request) error {
		o := &cur.Outbox[l]
		if o.Owner != s.cfg.Owner || o.Saves != r.Outbox[l].Saves {
			return errLeaseLost
		}
		o.Until = s.deps.Clock.Now().Add(s.cfg.SyncLease)
		return nil
	})
}

// saved reports the events a transition added.
func (s *Service) saved(r *Request, before int) {
	if s.deps.Metrics == nil {
		return
	}
	s.deps.Metrics.Saved(r, before)
}

func (s *Service) log(r *Request) *slog.Logger {
	return s.deps.Log.With("request_id", r.ID, "requester", r.Requester, "account", r.Account.UserName, "status", r.Status)
}
