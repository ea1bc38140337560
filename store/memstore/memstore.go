// Package memstore keeps workflow requests in memory. It is the store of
// the tests (workflow, slackapp): a real implementation that passes the
// conformance suite of store/storetest like Redis and bbolt, rather than a
// hand-written fake per package. One process only, nothing survives it.
//
// Requests are sealed as in the other stores (package seal), so that no
// caller shares memory with the store and the tampering suite applies:
// Tamper (for tests) rewrites a record behind the store's back.
package memstore

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/example/resetbot/delivery"
	"github.com/example/resetbot/store/seal"
	"github.com/example/resetbot/workflow"
)

var (
	_ workflow.Store = (*Store)(nil)
	_ delivery.Store = (*Store)(nil)
)

// Store is a workflow.Store in memory. The zero Store is not usable; call
// New.
type Store struct {
	seal  seal.Key
	clock workflow.Clock

	mu       sync.Mutex
	reqs     map[string][]byte      // id -> sealed request
	tampered map[string][]byte      // id -> a record that failed verification, moved aside
	open     map[string]string      // requester -> id of the open request
	due      map[string]time.Time   // id -> NextDeadline
	rate     map[string][]time.Time // workflow.Counter(requester, action) -> attempts that count against the limit
	claims   map[string]time.Time   // key -> expiry
	audit    []workflow.AuditRecord
	resets   map[string][]time.Time // account key -> the bot's completed resets
	recent   []string               // the latest requests created, oldest first
	lanes    map[string]*lane       // by delivery.Lane.String()
	down     bool
}

// lane is a delivery lane's record, lease, due time and inbox.
type lane struct {
	data  []byte // sealed; nil: never saved
	owner string
	until time.Time // the lease's end
	due   time.Time // zero: not due
	inbox map[string]bool
}

// Option configures a Store.
type Option func(*Store)

// WithClock sets the clock that Claim expiry reads (default: the system
// clock).
func WithClock(c workflow.Clock) Option { return func(s *Store) { s.clock = c } }

// New returns an empty store that seals requests with key.
func New(key seal.Key, opts ...Option) *Store {
	s := &Store{seal: key, clock: workflow.SystemClock{}, reqs: map[string][]byte{}, tampered: map[string][]byte{},
		open: map[string]string{}, due: map[string]time.Time{}, rate: map[string][]time.Time{}, claims: map[string]time.Time{}, resets: map[string][]time.Time{},
		lanes: map[string]*lane{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// SetDown makes every call fail with workflow.CodeUnavailable while down
// is true, as an unreachable store would.
func (s *Store) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// Len returns how many requests the store holds.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

// Dump returns everything the store holds, as text: the sealed requests
// and the audit records, for tests that look for what must never be
// stored.
func (s *Store) Dump() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, id := range sortedKeys(s.reqs) {
		b.Write(s.reqs[id])
		b.WriteByte('\n')
	}
	for _, rec := range s.audit {
		b.WriteString(rec.Detail + " " + rec.Account + " " + string(rec.Code) + "\n")
	}
	return b.String()
}

// Tamper rewrites the stored bytes of request id with edit, behind the
// store's back, as whoever can write to a shared store could.
func (s *Store) Tamper(id string, edit func(stored []byte) []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs[id] = edit(bytes.Clone(s.reqs[id]))
}

func (s *Store) checkLocked() error {
	if s.down {
		return workflow.Errorf(workflow.CodeUnavailable, "the in-memory store is down (SetDown)")
	}
	return nil
}

// Create implements workflow.Store. A Limit with Max or Window <= 0 means
// no limit.
func (s *Store) Create(_ context.Context, r *workflow.Request, limit workflow.Limit) error {
	if !workflow.ValidID(r.ID) || r.Requester == "" || r.Status.Terminal() || r.Status == "" {
		return workflow.Errorf(workflow.CodeInvalidInput, "only a new open request with an ID and a requester can be created")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(); err != nil {
		return err
	}
	if id, ok := s.open[r.Requester]; ok {
		return workflow.Errorf(workflow.CodeOpenRequest, "%s already has open request %s", r.Requester, id)
	}
	if _, ok := s.reqs[r.ID]; ok {
		return workflow.Errorf(workflow.CodeConflict, "request %s already exists", r.ID)
	}
	data, err := s.seal.Seal(r)
	if err != nil {
		return err
	}
	if limit.Max > 0 && limit.Window > 0 {
		counter := workflow.Counter(r.Requester, r.Action)
		if n := s.trimLocked(counter, r.CreatedAt.Add(-limit.Window)); n >= limit.Max {
			return workflow.Errorf(workflow.CodeRateLimited, "%s made %d %s attempts in the last %s", r.Requester, n, r.Action.Name(), limit.Window)
		}
		s.rate[counter] = append(s.rate[counter], r.CreatedAt)
	}
	s.open[r.Requester] = r.ID
	s.putLocked(r, data)
	s.audit = append(s.audit, workflow.AuditRecords(r, 0)...)
	s.markLocked(delivery.Marks(r, 0))
	s.recent = append(s.recent, r.ID)
	if len(s.recent) > workflow.RecentKept {
		s.recent = slices.Clone(s.recent[len(s.recent)-workflow.RecentKept:])
	}
	return nil
}

// trimLocked forgets the attempts counted under counter
// (workflow.Counter) at or before cutoff and returns how many are left.
func (s *Store) trimLocked(counter string, cutoff time.Time) int {
	s.rate[counter] = slices.DeleteFunc(s.rate[counter], func(at time.Time) bool { return !at.After(cutoff) })
	return len(s.rate[counter])
}

// putLocked stores r, sealed as data, and moves its deadline.
func (s *Store) putLocked(r *workflow.Request, data []byte) {
	s.reqs[r.ID] = data
	if t, ok := r.NextDeadline(); ok {
		s.due[r.ID] = t
	} else {
		delete(s.due, r.ID)
	}
}

// getLocked reads and verifies request id; a record that fails
// verification is moved aside, out of every index.
func (s *Store) getLocked(id string) (*workflow.Request, error) {
	data, ok := s.reqs[id]
	if !workflow.ValidID(id) || !ok {
		return nil, workflow.Errorf(workflow.CodeNotFound, "no request %q", id)
	}
	r, err := s.seal.Open(id, data)
	var t *workflow.Tampered
	if errors.As(err, &t) {
		s.tampered[id] = data
		delete(s.reqs, id)
		delete(s.due, id)
		for requester, open := range s.open {
			if open == id {
				delete(s.open, requester)
			}
		}
	}
	return r, err
}

// Standing implements workflow.Store.
func (s *Store) Standing(_ context.Context, requester string, action workflow.Action, since time.Time) (*workflow.Request, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(); err != nil {
		return nil, 0, err
	}
	var open *workflow.Request
	if id, ok := s.open[requester]; ok {
		r, err := s.getLocked(id)
		switch {
		case workflow.ErrorCode(err) == workflow.CodeNotFound:
		case err != nil:
			return nil, 0, err
		case !r.Status.Terminal():
			open = r
		}
	}
	n := 0
	for _, at := range s.rate[workflow.Counter(requester, action)] {
		if at.After(since) {
			n++
		}
	}
	return open, n, nil
}

// Get implements workflow.Store.
func (s *Store) Get(_ context.Context, id string) (*workflow.Request, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(); err != nil {
		return nil, err
	}
	return s.getLocked(id)
}

// Open implements workflow.Store.
func (s *Store) Open(_ context.Context, requester string) (*workflow.Request, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(); err != nil {
		return nil, err
	}
	id, ok := s.open[requester]
	if !ok {
		return nil, workflow.Errorf(workflow.CodeNoOpenRequest, "%s has no open request", requester)
	}
	r, err := s.getLocked(id)
	if workflow.ErrorCode(err) == workflow.CodeNotFound || err == nil && (r.Status.Terminal() || r.Requester != requester) {
		return nil, workflow.Errorf(workflow.CodeNoOpenRequest, "%s has no open request", requester)
	}
	return r, err
}

// Update implements workflow.Store. fn runs under the store's lock, so
// that the compare-and-set never has to retry: it must not call the
// store.
func (s *Store) Update(_ context.Context, id string, fn func(*workflow.Request) error) (*workflow.Request, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(); err != nil {
		return nil, err
	}
	r, err := s.getLocked(id)
	if err != nil {
		return nil, err
	}
	requester, before := r.Requester, len(r.Events)
	if err := fn(r); err != nil {
		return nil, err
	}
	if r.ID != id || r.Requester != requester {
		return nil, workflow.Errorf(workflow.CodeInternal, "an update of %s changed its ID or requester", id)
	}
	data, err := s.seal.Seal(r)
	if err != nil {
		return nil, err
	}
	if r.Status.Terminal() && s.open[requester] == id {
		delete(s.open, requester)
	}
	s.putLocked(r, data)
	s.audit = append(s.audit, workflow.AuditRecords(r, before)...)
	s.markLocked(delivery.Marks(r, before))
	if at, ok := workflow.CompletedAt(r, before); ok {
		key := r.Account.AccountKey()
		s.resets[key] = append(s.resets[key], at)
	}
	// The caller gets its own copy, as from the other stores.
	return s.seal.Open(id, data)
}

// Due implements workflow.Store. limit <= 0 means no limit.
func (s *Store) Due(_ context.Context, now time.Time, limit int) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(); err != nil {
		return nil, err
	}
	var ids []string
	for _, id := range sortedKeys(s.due) {
		if !s.due[id].After(now) {
			ids = append(ids, id)
		}
	}
	slices.SortStableFunc(ids, func(a, b string) int { return s.due[a].Compare(s.due[b]) })
	if limit > 0 && len(ids) > limit {
		ids = ids[:limit]
	}
	return ids, nil
}

// Watched implements workflow.Store.
func (s *Store) Watched(context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(); err != nil {
		return 0, err
	}
	return len(s.due), nil
}

// Claim implements workflow.Store.
func (s *Store) Claim(_ context.Context, key string, ttl time.Duration) (bool, error) {
	if key == "" {
		return false, workflow.Errorf(workflow.CodeInvalidInput, "empty claim key")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(); err != nil {
		return false, err
	}
	now := s.clock.Now()
	if until, ok := s.claims[key]; ok && now.Before(until) {
		return false, nil
	}
	for k, until := range s.claims {
		if !now.Before(until) {
			delete(s.claims, k)
		}
	}
	s.claims[key] = now.Add(ttl)
	return true, nil
}

// Ping implements workflow.Store.
func (s *Store) Ping(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkLocked()
}

// Refused implements workflow.Store.
func (s *Store) Refused(_ context.Context, rec workflow.AuditRecord, limit workflow.Limit) error {
	counted := limit.Max > 0 && limit.Window > 0
	if counted && rec.User == "" {
		return workflow.Errorf(workflow.CodeInvalidInput, "a refusal that counts against the limit needs the user")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(); err != nil {
		return err
	}
	if counted {
		counter := workflow.Counter(rec.User, rec.Action)
		s.trimLocked(counter, rec.At.Add(-limit.Window))
		s.rate[counter] = append(s.rate[counter], rec.At)
	}
	s.audit = append(s.audit, rec)
	return nil
}

// Audit implements workflow.Store. The records are handed over outside
// the lock, from a copy, so that each may take its time.
func (s *Store) Audit(ctx context.Context, q workflow.AuditQuery, each func(workflow.AuditRecord) error) error {
	s.mu.Lock()
	if err := s.checkLocked(); err != nil {
		s.mu.Unlock()
		return err
	}
	recs := slices.Clone(s.audit)
	s.mu.Unlock()
	slices.SortStableFunc(recs, func(a, b workflow.AuditRecord) int { return a.At.Compare(b.At) })
	for _, rec := range recs {
		if !q.Match(rec) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return workflow.Wrap(workflow.CodeUnavailable, err, "audit")
		}
		if err := each(rec); err != nil {
			return err
		}
	}
	return nil
}

// markLocked makes the lanes of marks due now (an earlier due time is
// kept) and puts their items in their inboxes.
func (s *Store) markLocked(marks []delivery.Mark) {
	now := s.clock.Now()
	for _, m := range marks {
		l := s.laneLocked(m.Lane)
		if l.due.IsZero() || now.Before(l.due) {
			l.due = now
		}
		if m.Item != "" {
			l.inbox[m.Item] = true
		}
	}
}

func (s *Store) laneLocked(l delivery.Lane) *lane {
	ln := s.lanes[l.String()]
	if ln == nil {
		ln = &lane{inbox: map[string]bool{}}
		s.lanes[l.String()] = ln
	}
	return ln
}

// DueLanes implements delivery.Store.
func (s *Store) DueLanes(_ context.Context, now time.Time, limit int) ([]delivery.Lane, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(); err != nil {
		return nil, err
	}
	var names []string
	for _, name := range sortedKeys(s.lanes) {
		if d := s.lanes[name].due; !d.IsZero() && !d.After(now) {
			names = append(names, name)
		}
	}
	slices.SortStableFunc(names, func(a, b string) int { return s.lanes[a].due.Compare(s.lanes[b].due) })
	var out []delivery.Lane
	for _, name := range names {
		if l, ok := delivery.ParseLane(name); ok && (limit <= 0 || len(out) < limit) {
			out = append(out, l)
		}
	}
	return out, nil
}

// Take implements delivery.Store.
func (s *Store) Take(_ context.Context, l delivery.Lane, owner string, now, until time.Time) (delivery.Taken, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(); err != nil {
		return delivery.Taken{}, false, err
	}
	ln := s.laneLocked(l)
	if ln.owner != "" && ln.owner != owner && now.Before(ln.until) {
		return delivery.Taken{}, false, nil
	}
	var data []byte
	if ln.data != nil {
		var err error
		if data, err = s.seal.OpenLane(l.String(), ln.data); err != nil {
			if workflow.ErrorCode(err) == workflow.CodeTampered {
				s.tampered[l.String()] = ln.data
				ln.data = nil
			}
			return delivery.Taken{}, false, err
		}
	}
	ln.owner, ln.until = owner, until
	if !ln.due.IsZero() && !ln.due.After(now) {
		ln.due = until
	}
	t := delivery.Taken{Lane: l, Data: data, Inbox: sortedKeys(ln.inbox), Due: ln.due}
	if id := l.Request(); id != "" {
		t.Request, _ = s.getLocked(id) // nil when gone or refused
	}
	return t, true, nil
}

// Put implements delivery.Store.
func (s *Store) Put(_ context.Context, t delivery.Taken, owner string, data []byte, handled []string, next time.Time, release bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(); err != nil {
		return err
	}
	ln := s.laneLocked(t.Lane)
	if ln.owner != owner {
		return delivery.LeaseLost(t.Lane)
	}
	if data != nil {
		sealed, err := s.seal.SealLane(t.Lane.String(), data)
		if err != nil {
			return err
		}
		ln.data = sealed
	}
	for _, item := range handled {
		delete(ln.inbox, item)
	}
	if ln.due.Equal(t.Due) {
		ln.due = next
	}
	if release {
		ln.owner, ln.until = "", time.Time{}
	}
	if ln.data == nil && ln.owner == "" && ln.due.IsZero() && len(ln.inbox) == 0 {
		delete(s.lanes, t.Lane.String())
	}
	return nil
}

// TamperLane rewrites the stored record of lane l with edit, behind the
// store's back.
func (s *Store) TamperLane(l delivery.Lane, edit func(stored []byte) []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ln := s.laneLocked(l)
	ln.data = edit(bytes.Clone(ln.data))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Resets implements workflow.Store.
func (s *Store) Resets(_ context.Context, acct workflow.Account, since time.Time) (workflow.ResetHistory, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(); err != nil {
		return workflow.ResetHistory{}, err
	}
	return workflow.Tally(s.resets[acct.AccountKey()], since), nil
}

// Recent implements workflow.Store.
func (s *Store) Recent(_ context.Context, max int) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(); err != nil {
		return nil, err
	}
	var out []string
	for i := len(s.recent) - 1; i >= 0 && len(out) < max; i-- {
		out = append(out, s.recent[i])
	}
	return out, nil
}
