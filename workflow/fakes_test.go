package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// memStore is a small in-memory Store for the service's unit tests; the real
// stores pass the conformance suite in store/storetest.
type memStore struct {
	mu     sync.Mutex
	audit  []AuditRecord
	reqs   map[string][]byte
	down   bool
	claims map[string]bool // nil: every claim is the first
	// refusals are the times of each requester's refusals counted against
	// the limit (Refused with a limit).
	refusals map[string][]time.Time
}

// refusalsAfter counts requester's counted refusals after t. m.mu is held.
func (m *memStore) refusalsAfter(requester string, t time.Time) int {
	n := 0
	for _, at := range m.refusals[requester] {
		if at.After(t) {
			n++
		}
	}
	return n
}

func newMemStore() *memStore { return &memStore{reqs: map[string][]byte{}} }

func (m *memStore) load(id string) (*Request, error) {
	b, ok := m.reqs[id]
	if !ok {
		return nil, Errorf(CodeNotFound, "no request %s", id)
	}
	var r Request
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

func (m *memStore) save(r *Request) {
	b, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	m.reqs[r.ID] = b
}

func (m *memStore) check() error {
	if m.down {
		return Errorf(CodeUnavailable, "store is down")
	}
	return nil
}

func (m *memStore) Create(_ context.Context, r *Request, limit Limit) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return err
	}
	n := m.refusalsAfter(r.Requester, r.CreatedAt.Add(-limit.Window))
	for id := range m.reqs {
		o, _ := m.load(id)
		if o.Requester != r.Requester {
			continue
		}
		if !o.Status.Terminal() {
			return Errorf(CodeOpenRequest, "open request %s", o.ID)
		}
		if o.CreatedAt.After(r.CreatedAt.Add(-limit.Window)) {
			n++
		}
	}
	if n >= limit.Max {
		return Errorf(CodeRateLimited, "%d requests in window", n)
	}
	m.save(r)
	m.audit = append(m.audit, AuditRecords(r, 0)...)
	return nil
}

func (m *memStore) Watched(context.Context) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for id := range m.reqs {
		if r, _ := m.load(id); r != nil {
			if _, ok := r.NextDeadline(); ok {
				n++
			}
		}
	}
	return n, nil
}

func (m *memStore) Standing(_ context.Context, requester string, since time.Time) (*Request, int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return nil, 0, err
	}
	var open *Request
	n := m.refusalsAfter(requester, since)
	for id := range m.reqs {
		r, _ := m.load(id)
		if r.Requester != requester {
			continue
		}
		if r.CreatedAt.After(since) {
			n++
		}
		if !r.Status.Terminal() {
			open = r
		}
	}
	return open, n, nil
}

func (m *memStore) Get(_ context.Context, id string) (*Request, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return nil, err
	}
	return m.load(id)
}

func (m *memStore) Open(_ context.Context, requester string) (*Request, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return nil, err
	}
	for id := range m.reqs {
		r, _ := m.load(id)
		if r.Requester == requester && !r.Status.Terminal() {
			return r, nil
		}
	}
	return nil, Errorf(CodeNoOpenRequest, "none")
}

func (m *memStore) Update(_ context.Context, id string, fn func(*Request) error) (*Request, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return nil, err
	}
	r, err := m.load(id)
	if err != nil {
		return nil, err
	}
	before := len(r.Events)
	if err := fn(r); err != nil {
		return nil, err
	}
	m.save(r)
	m.audit = append(m.audit, AuditRecords(r, before)...)
	return r, nil
}

func (m *memStore) UpdateFrom(ctx context.Context, r *Request, fn func(*Request) error) (*Request, error) {
	return m.Update(ctx, r.ID, fn)
}

func (m *memStore) Due(_ context.Context, now time.Time, max int) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for id := range m.reqs {
		r, _ := m.load(id)
		if d, ok := r.NextDeadline(); ok && !d.After(now) && len(ids) < max {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

func (m *memStore) Claim(_ context.Context, key string, _ time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.claims == nil {
		return true, nil
	}
	first := !m.claims[key]
	m.claims[key] = true
	return first, nil
}
func (m *memStore) Ping(context.Context) error { return m.check() }

func (m *memStore) Refused(_ context.Context, rec AuditRecord, limit Limit) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return err
	}
	m.audit = append(m.audit, rec)
	if limit.Max > 0 && limit.Window > 0 {
		if m.refusals == nil {
			m.refusals = map[string][]time.Time{}
		}
		m.refusals[rec.User] = append(m.refusals[rec.User], rec.At)
	}
	return nil
}

func (m *memStore) Audit(_ context.Context, q AuditQuery, each func(AuditRecord) error) error {
	recs, _ := m.records(q)
	for _, rec := range recs {
		if err := each(rec); err != nil {
			return err
		}
	}
	return nil
}

// records returns the audit records q selects.
func (m *memStore) records(q AuditQuery) ([]AuditRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []AuditRecord
	for _, rec := range m.audit {
		if q.Match(rec) {
			out = append(out, rec)
		}
	}
	return out, nil
}

func (m *memStore) setDown(down bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.down = down
}

// raw returns everything stored, for leak checks.
func (m *memStore) raw() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	for _, v := range m.reqs {
		b.Write(v)
	}
	return b.String()
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

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
		return &Error{Code: ErrorCode(err), Message: "rejected " + password, Err: err}
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

func (p *fakePasswords) New(length int, _ Account) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	s := fmt.Sprintf("Pw%d-", p.n)
	return s + strings.Repeat("x", length-len(s)), nil
}

// fakeIdentity maps chat user IDs to people.
type fakeIdentity map[string]Person

func (f fakeIdentity) Person(_ context.Context, user string) (Person, error) {
	p, ok := f[user]
	if !ok {
		return Person{}, Errorf(CodeUnknownUser, "no user %s", user)
	}
	p.ID = user
	return p, nil
}

// Approver refuses the users whose Person has the name "deactivated".
func (f fakeIdentity) Approver(_ context.Context, user string) (Person, error) {
	p, ok := f[user]
	switch {
	case !ok:
		return Person{ID: user, Email: strings.ToLower(user) + "@corp.example.com"}, nil
	case p.Name == "deactivated":
		return Person{}, Errorf(CodeIneligibleUser, "%s is deactivated", user)
	}
	p.ID = user
	return p, nil
}

func (f fakeIdentity) ByEmail(_ context.Context, email string) (Person, bool, error) {
	for id, p := range f {
		if strings.EqualFold(p.Email, email) {
			p.ID = id
			return p, true, nil
		}
	}
	return Person{}, false, nil
}

// fakeAccounts is the directory's accounts keyed by email: the account,
// its state, and its manager's user name.
type fakeAccounts struct {
	mu        sync.Mutex
	byEmail   map[string]Account
	refuse    map[string]Code // user name -> guard code
	managers  map[string]Manager
	down      bool
	disabled  map[string]bool // emails whose directory account is disabled
	expired   []string
	expireErr error
}

func (f *fakeAccounts) Find(_ context.Context, p Person) (Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return Account{}, Errorf(CodeLookupUnavailable, "ldap down")
	}
	a, ok := f.byEmail[p.Email]
	if !ok {
		return Account{}, Errorf(CodeNoAccount, "nobody has %s", p.Email)
	}
	return a, nil
}

func (f *fakeAccounts) Check(_ context.Context, a Account) (Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return Account{}, Errorf(CodeLookupUnavailable, "ldap down")
	}
	if c, ok := f.refuse[a.UserName]; ok {
		return Account{}, Errorf(c, "%s refused", a.UserName)
	}
	return a, nil
}

func (f *fakeAccounts) Manager(_ context.Context, a Account) (Manager, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.managers[a.UserName]
	return m, ok, nil
}

func (f *fakeAccounts) Approver(_ context.Context, p Person) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return Errorf(CodeLookupUnavailable, "ldap down")
	}
	if f.disabled[p.Email] {
		return Errorf(CodeApproverInactive, "%s is disabled", p.Email)
	}
	return nil
}

func (f *fakeAccounts) ExpirePassword(_ context.Context, a Account) error {
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

func (f fakeApprovers) For(context.Context, string, Account) ([]string, error) { return f, nil }

type fakeNotifier struct {
	mu        sync.Mutex
	synced    []EventKind
	delivered []string
	musts     []bool // Delivery.MustChange of each delivery
	refusals  []Refusal
	failSync  int // fail this many Sync calls of the people lane
	failSend  int // fail this many DeliverPassword calls
}

func (n *fakeNotifier) Sync(_ context.Context, r *Request, l Lane) (Messages, int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.failSync > 0 && l == LanePeople {
		n.failSync--
		return r.Messages, 0, errors.New("slack is down")
	}
	done := r.Outbox[l].Done
	if l == LanePeople {
		for _, ev := range r.Events[done:] {
			// As the Notifier contract says, a reveal posts nothing: it
			// may be synced again after the reset ends.
			if ev.Kind != EventRevealed {
				n.synced = append(n.synced, ev.Kind)
			}
		}
	}
	return r.Messages, len(r.Events) - done, nil
}

func (n *fakeNotifier) DeliverPassword(_ context.Context, _ *Request, d Delivery) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.failSend > 0 {
		n.failSend--
		return Errorf(CodeDeliveryFailed, "channel_not_found")
	}
	n.delivered = append(n.delivered, d.Password)
	n.musts = append(n.musts, d.MustChange)
	return nil
}

func (n *fakeNotifier) Refused(_ context.Context, f Refusal) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.refusals = append(n.refusals, f)
	return nil
}

func (n *fakeNotifier) refused() []Refusal {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.refusals)
}

func (n *fakeNotifier) kinds() []EventKind {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.synced)
}

func (n *fakeNotifier) passwords() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.delivered)
}
