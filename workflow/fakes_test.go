package workflow_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/example/resetbot/workflow"
)

type fakeDirectory struct {
	mu    sync.Mutex
	calls []string // passwords received
	users []string // the user names they were for
	errs  []error  // returned in order, then nil
	echo  bool     // put the password into the error message (a misbehaving lower layer)
}

func (d *fakeDirectory) ResetPassword(_ context.Context, user, password string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, password)
	d.users = append(d.users, user)
	if len(d.errs) == 0 {
		return nil
	}
	err := d.errs[0]
	d.errs = d.errs[1:]
	if d.echo && err != nil {
		return &workflow.Error{Code: workflow.ErrorCode(err), Message: "rejected " + password, Err: err}
	}
	return err
}

func (d *fakeDirectory) passwords() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.calls)
}

// resetUsers returns the user names of the resets received, in order.
func (d *fakeDirectory) resetUsers() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.users)
}

type fakePasswords struct {
	mu sync.Mutex
	n  int
}

func (p *fakePasswords) New(length int, _ workflow.Account) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	s := fmt.Sprintf("Pw%d-", p.n)
	return s + strings.Repeat("x", length-len(s)), nil
}

// fakeIdentity maps chat user IDs to people.
type fakeIdentity map[string]workflow.Person

func (f fakeIdentity) Person(_ context.Context, user string) (workflow.Person, error) {
	p, ok := f[user]
	if !ok {
		return workflow.Person{}, workflow.Errorf(workflow.CodeUnknownUser, "no user %s", user)
	}
	p.ID = user
	return p, nil
}

// Approver refuses the users whose Person has the name "deactivated".
func (f fakeIdentity) Approver(_ context.Context, user string) (workflow.Person, error) {
	p, ok := f[user]
	switch {
	case !ok:
		return workflow.Person{ID: user, Email: strings.ToLower(user) + "@corp.example.com"}, nil
	case p.Name == "deactivated":
		return workflow.Person{}, workflow.Errorf(workflow.CodeIneligibleUser, "%s is deactivated", user)
	}
	p.ID = user
	return p, nil
}

// Employee finds the person with email; the domain must be corp.example.com.
func (f fakeIdentity) Employee(ctx context.Context, email string) (workflow.Person, bool, error) {
	if !strings.HasSuffix(strings.ToLower(email), "@corp.example.com") {
		return workflow.Person{}, false, workflow.Errorf(workflow.CodeEmailDomain, "%s is elsewhere", email)
	}
	return f.ByEmail(ctx, email)
}

func (f fakeIdentity) ByEmail(_ context.Context, email string) (workflow.Person, bool, error) {
	for id, p := range f {
		if strings.EqualFold(p.Email, email) {
			p.ID = id
			return p, true, nil
		}
	}
	return workflow.Person{}, false, nil
}

// fakeAccounts is the directory's accounts keyed by email: the account,
// its state, and its manager's user name.
type fakeAccounts struct {
	mu        sync.Mutex
	byEmail   map[string]workflow.Account
	refuse    map[string]workflow.Code // user name -> guard code
	managers  map[string]workflow.Manager
	down      bool
	disabled  map[string]bool // emails whose directory account is disabled
	expired   []string
	expireErr error
	locks     map[string]workflow.Lockout // user name -> lockout; absent: not known
	unlocked  []string                    // user names unlocked, in order
	unlockErr error
}

func (f *fakeAccounts) Lockout(_ context.Context, a workflow.Account) (workflow.Lockout, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return workflow.Lockout{}, workflow.Errorf(workflow.CodeLookupUnavailable, "ldap down")
	}
	return f.locks[a.UserName], nil
}

// Unlock applies the guards of Check, then unlocks.
func (f *fakeAccounts) Unlock(_ context.Context, a workflow.Account) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.refuse[a.UserName]; ok {
		return workflow.Errorf(c, "%s refused", a.UserName)
	}
	if f.unlockErr != nil {
		return f.unlockErr
	}
	f.unlocked = append(f.unlocked, a.UserName)
	if l, ok := f.locks[a.UserName]; ok {
		f.locks[a.UserName] = workflow.Lockout{Known: l.Known}
	}
	return nil
}

func (f *fakeAccounts) unlocks() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.unlocked)
}

func (f *fakeAccounts) Find(_ context.Context, p workflow.Person) (workflow.Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return workflow.Account{}, workflow.Errorf(workflow.CodeLookupUnavailable, "ldap down")
	}
	a, ok := f.byEmail[p.Email]
	if !ok {
		return workflow.Account{}, workflow.Errorf(workflow.CodeNoAccount, "nobody has %s", p.Email)
	}
	return a, nil
}

func (f *fakeAccounts) Check(_ context.Context, a workflow.Account) (workflow.Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return workflow.Account{}, workflow.Errorf(workflow.CodeLookupUnavailable, "ldap down")
	}
	if c, ok := f.refuse[a.UserName]; ok {
		return workflow.Account{}, workflow.Errorf(c, "%s refused", a.UserName)
	}
	return a, nil
}

func (f *fakeAccounts) Manager(_ context.Context, a workflow.Account) (workflow.Manager, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.managers[a.UserName]
	return m, ok, nil
}

func (f *fakeAccounts) Approver(_ context.Context, p workflow.Person) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return workflow.Errorf(workflow.CodeLookupUnavailable, "ldap down")
	}
	if f.disabled[p.Email] {
		return workflow.Errorf(workflow.CodeApproverInactive, "%s is disabled", p.Email)
	}
	return nil
}

func (f *fakeAccounts) ExpirePassword(_ context.Context, a workflow.Account) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.expireErr != nil {
		return f.expireErr
	}
	f.expired = append(f.expired, a.UserName)
	return nil
}

func (f *fakeAccounts) set(fn func(f *fakeAccounts)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

type fakeApprovers []string

func (f fakeApprovers) For(context.Context, string, workflow.Account) ([]string, error) {
	return f, nil
}

// fakeNotifier records the refusals told to the audit channel.
type fakeNotifier struct {
	mu       sync.Mutex
	refusals []workflow.Refusal
}

func (n *fakeNotifier) Refused(_ context.Context, f workflow.Refusal) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.refusals = append(n.refusals, f)
	return nil
}

func (n *fakeNotifier) refused() []workflow.Refusal {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.refusals)
}

// fakeDisplay records the passwords shown; fail makes that many fail.
type fakeDisplay struct {
	mu    sync.Mutex
	shown []string
	musts []bool // Delivery.MustChange of each
	to    []string
	all   []workflow.Delivery
	fail  int
}

func (d *fakeDisplay) last() workflow.Delivery {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.all) == 0 {
		return workflow.Delivery{}
	}
	return d.all[len(d.all)-1]
}

func (d *fakeDisplay) ShowPassword(_ context.Context, r *workflow.Request, del workflow.Delivery) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail > 0 {
		d.fail--
		return workflow.Errorf(workflow.CodeDeliveryFailed, "channel_not_found")
	}
	d.shown = append(d.shown, del.Password)
	d.musts = append(d.musts, del.MustChange)
	d.to = append(d.to, r.Recipient())
	d.all = append(d.all, del)
	return nil
}

func (d *fakeDisplay) passwords() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.shown)
}

// changeWatcher records the kinds of the events of every change the
// service reports.
type changeWatcher struct {
	mu    sync.Mutex
	kinds []workflow.EventKind
}

func (w *changeWatcher) Changed(r *workflow.Request, before int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ev := range r.Events[before:] {
		w.kinds = append(w.kinds, ev.Kind)
	}
}

func (w *changeWatcher) told() []workflow.EventKind {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.kinds)
}
