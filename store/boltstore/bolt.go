// Package boltstore keeps workflow requests in an embedded bbolt file, for a
// single instance of the bot without Redis. bbolt allows one writer at a
// time, so Create and Update are each one write transaction and need no
// retries. The file is locked by its process: replicas cannot share it.
//
// Buckets (and those of the delivery lanes, lanes.go):
//
//	requests    id -> the request, sealed (package seal: its JSON with an HMAC of a key the file
//	            never holds)
//	tampered    id -> a record that failed verification, moved aside for the operator
//	open        requester -> id of the open request
//	due         deadline (unix ms, 8 bytes big-endian) + id -> nothing
//	due_by_id   id -> its key in due, so that a new deadline replaces the old
//	rate        one bucket per requester and action (workflow.Counter), its attempts that count against
//	            that action's limit:
//	            time (unix ms, 8 bytes) + request id (a creation) or "refused:<id>" -> nothing
//	claims      key -> expiry (unix ns, 8 bytes)
//	audit       record time (unix ms, 8 bytes) + sequence (8 bytes) -> workflow.AuditRecord JSON,
//	            written in the same transaction as the change; trimmed to the audit retention
//	recent      created (unix ms, 8 bytes) + id -> nothing: the latest workflow.RecentKept requests
//	resets      one bucket per account (workflow.Account.AccountKey), the bot's completed resets of it:
//	            time (unix ms, 8 bytes) + request id -> nothing; those older than
//	            workflow.ResetHistoryWindow are dropped at the next one
package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/example/resetbot/delivery"
	"github.com/example/resetbot/store/seal"
	"github.com/example/resetbot/workflow"
	bolt "go.etcd.io/bbolt"
)

var _ workflow.Store = (*Store)(nil)

var (
	bucketRequests = []byte("requests")
	bucketOpen     = []byte("open")
	bucketDue      = []byte("due")
	bucketDueByID  = []byte("due_by_id")
	bucketRate     = []byte("rate")
	bucketClaims   = []byte("claims")
	bucketAudit    = []byte("audit")
	bucketTamper   = []byte("tampered")
	bucketResets   = []byte("resets")
	bucketRecent   = []byte("recent")
)

// Store is a workflow.Store in a bbolt file.
type Store struct {
	db        *bolt.DB
	seal      seal.Key
	clock     workflow.Clock
	auditKeep time.Duration
}

// DefaultAuditRetention is how long audit records are kept by default.
const DefaultAuditRetention = 400 * 24 * time.Hour

// WithAuditRetention sets how long the audit log keeps records (default
// DefaultAuditRetention).
func WithAuditRetention(d time.Duration) Option { return func(s *Store) { s.auditKeep = d } }

// Option configures a Store.
type Option func(*Store)

// WithClock sets the clock that Claim expiry reads (default: the system clock).
func WithClock(c workflow.Clock) Option { return func(s *Store) { s.clock = c } }

// Open opens or creates the store file at path, creating its directory.
// Every request is sealed with key; a Store with the zero key reads and
// writes no request (workflow.CodeInternal), only the audit log.
func Open(path string, key seal.Key, opts ...Option) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: the file is in use by another process (the embedded store serves one instance only)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range append([][]byte{bucketRequests, bucketOpen, bucketDue, bucketDueByID, bucketRate, bucketClaims, bucketAudit, bucketTamper, bucketResets, bucketRecent}, laneBuckets...) {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s := &Store{db: db, seal: key, clock: workflow.SystemClock{}, auditKeep: DefaultAuditRetention}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// Create implements workflow.Store. A Limit with Max or Window <= 0 means no limit.
func (s *Store) Create(_ context.Context, r *workflow.Request, limit workflow.Limit) error {
	if !workflow.ValidID(r.ID) || r.Requester == "" || r.Status.Terminal() || r.Status == "" {
		return workflow.Errorf(workflow.CodeInvalidInput, "only a new open request with an ID and a requester can be created")
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketOpen).Get([]byte(r.Requester)) != nil {
			return workflow.Errorf(workflow.CodeOpenRequest, "%s already has an open request", r.Requester)
		}
		if tx.Bucket(bucketRequests).Get([]byte(r.ID)) != nil {
			return workflow.Errorf(workflow.CodeConflict, "request %s already exists", r.ID)
		}
		if limit.Max > 0 && limit.Window > 0 {
			rate, err := tx.Bucket(bucketRate).CreateBucketIfNotExists([]byte(workflow.Counter(r.Requester, r.Action)))
			if err != nil {
				return err
			}
			if n, err := trim(rate, r.CreatedAt.Add(-limit.Window)); err != nil {
				return err
			} else if n >= limit.Max {
				return workflow.Errorf(workflow.CodeRateLimited, "%s made %d %s attempts in the last %s", r.Requester, n, r.Action.Name(), limit.Window)
			}
			if err := rate.Put(timeKey(r.CreatedAt, r.ID), nil); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketOpen).Put([]byte(r.Requester), []byte(r.ID)); err != nil {
			return err
		}
		if err := s.audit(tx, workflow.AuditRecords(r, 0)...); err != nil {
			return err
		}
		if err := s.mark(tx, delivery.Marks(r, 0)); err != nil {
			return err
		}
		if err := listRecent(tx.Bucket(bucketRecent), r); err != nil {
			return err
		}
		return s.put(tx, r)
	})
	return storeErr("create", err)
}

// Watched implements workflow.Store.
func (s *Store) Watched(context.Context) (int, error) {
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketDueByID).Stats().KeyN
		return nil
	})
	return n, storeErr("watched", err)
}

// Standing implements workflow.Store, in one read transaction.
func (s *Store) Standing(_ context.Context, requester string, action workflow.Action, since time.Time) (*workflow.Request, int, error) {
	var open *workflow.Request
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		if id := tx.Bucket(bucketOpen).Get([]byte(requester)); id != nil {
			r, err := s.get(tx, string(id))
			if err != nil && workflow.ErrorCode(err) != workflow.CodeNotFound {
				return err
			}
			if err == nil && !r.Status.Terminal() {
				open = r
			}
		}
		rate := tx.Bucket(bucketRate).Bucket([]byte(workflow.Counter(requester, action)))
		if rate == nil {
			return nil
		}
		after := timeKey(since, "")
		c := rate.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if bytes.Compare(k[:8], after) > 0 {
				n++
			}
		}
		return nil
	})
	if err != nil {
		return nil, 0, s.refuse(storeErr("standing", err))
	}
	return open, n, nil
}

// trim deletes the rate entries at or before cutoff and returns how many
// are left.
func trim(rate *bolt.Bucket, cutoff time.Time) (int, error) {
	var old [][]byte
	n := 0
	c := rate.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if bytes.Compare(k[:8], timeKey(cutoff, "")) <= 0 {
			old = append(old, bytes.Clone(k))
		} else {
			n++
		}
	}
	for _, k := range old {
		if err := rate.Delete(k); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// Get implements workflow.Store.
func (s *Store) Get(_ context.Context, id string) (*workflow.Request, error) {
	var r *workflow.Request
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		r, err = s.get(tx, id)
		return err
	})
	return r, s.refuse(storeErr("get", err))
}

// Open implements workflow.Store.
func (s *Store) Open(_ context.Context, requester string) (*workflow.Request, error) {
	var r *workflow.Request
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		id := tx.Bucket(bucketOpen).Get([]byte(requester))
		if id == nil {
			return workflow.Errorf(workflow.CodeNoOpenRequest, "%s has no open request", requester)
		}
		r, err = s.get(tx, string(id))
		return err
	})
	return r, s.refuse(storeErr("open", err))
}

// Update implements workflow.Store. fn runs inside the write transaction:
// it must not call the store.
func (s *Store) Update(_ context.Context, id string, fn func(*workflow.Request) error) (*workflow.Request, error) {
	var r *workflow.Request
	var fnErr error
	err := s.db.Update(func(tx *bolt.Tx) (err error) {
		if r, err = s.get(tx, id); err != nil {
			return err
		}
		requester, before := r.Requester, len(r.Events)
		if fnErr = fn(r); fnErr != nil {
			return fnErr
		}
		if r.ID != id || r.Requester != requester {
			return workflow.Errorf(workflow.CodeInternal, "an update of %s changed its ID or requester", id)
		}
		if r.Status.Terminal() {
			open := tx.Bucket(bucketOpen)
			if bytes.Equal(open.Get([]byte(requester)), []byte(id)) {
				if err := open.Delete([]byte(requester)); err != nil {
					return err
				}
			}
		}
		if err := s.audit(tx, workflow.AuditRecords(r, before)...); err != nil {
			return err
		}
		if err := s.mark(tx, delivery.Marks(r, before)); err != nil {
			return err
		}
		if at, ok := workflow.CompletedAt(r, before); ok {
			if err := s.completed(tx, r, at); err != nil {
				return err
			}
		}
		return s.put(tx, r)
	})
	if fnErr != nil {
		return nil, fnErr
	}
	if err != nil {
		return nil, s.refuse(storeErr("update", err))
	}
	return r, nil
}

// Due implements workflow.Store. limit <= 0 means no limit.
func (s *Store) Due(_ context.Context, now time.Time, limit int) ([]string, error) {
	var ids []string
	end := timeKey(now, "")
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketDue).Cursor()
		for k, _ := c.First(); k != nil && bytes.Compare(k[:8], end) <= 0; k, _ = c.Next() {
			if limit > 0 && len(ids) == limit {
				break
			}
			ids = append(ids, string(k[8:]))
		}
		return nil
	})
	return ids, storeErr("due", err)
}

// Claim implements workflow.Store. It also forgets expired claims.
func (s *Store) Claim(_ context.Context, key string, ttl time.Duration) (bool, error) {
	if key == "" {
		return false, workflow.Errorf(workflow.CodeInvalidInput, "empty claim key")
	}
	now := s.clock.Now().UnixNano()
	first := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		claims := tx.Bucket(bucketClaims)
		if v := claims.Get([]byte(key)); v != nil && now < int64(binary.BigEndian.Uint64(v)) {
			return nil
		}
		var expired [][]byte
		c := claims.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if now >= int64(binary.BigEndian.Uint64(v)) {
				expired = append(expired, bytes.Clone(k))
			}
		}
		for _, k := range expired {
			if err := claims.Delete(k); err != nil {
				return err
			}
		}
		first = true
		return claims.Put([]byte(key), binary.BigEndian.AppendUint64(nil, uint64(now+int64(ttl))))
	})
	return first, storeErr("claim", err)
}

// Ping implements workflow.Store; it fails once the store is closed.
func (s *Store) Ping(context.Context) error {
	return storeErr("ping", s.db.View(func(*bolt.Tx) error { return nil }))
}

// get reads and verifies request id.
func (s *Store) get(tx *bolt.Tx, id string) (*workflow.Request, error) {
	var data []byte
	if workflow.ValidID(id) {
		data = tx.Bucket(bucketRequests).Get([]byte(id))
	}
	if data == nil {
		return nil, workflow.Errorf(workflow.CodeNotFound, "no request %q", id)
	}
	return s.seal.Open(id, data)
}

// refuse returns err, after moving the record it names aside when err says
// that a stored request failed verification: so that no index leads to it
// again and the bot never acts on it.
func (s *Store) refuse(err error) error {
	var t *workflow.Tampered
	if !errors.As(err, &t) {
		return err
	}
	qerr := s.db.Update(func(tx *bolt.Tx) error {
		id := []byte(t.ID)
		data := tx.Bucket(bucketRequests).Get(id)
		if data == nil {
			return nil
		}
		if _, err := s.seal.Open(t.ID, data); workflow.ErrorCode(err) != workflow.CodeTampered {
			return nil // rewritten meanwhile
		}
		if err := tx.Bucket(bucketTamper).Put(id, bytes.Clone(data)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketRequests).Delete(id); err != nil {
			return err
		}
		if err := dropDeadline(tx, id); err != nil {
			return err
		}
		// Whoever the record names, drop every open entry that leads to it.
		var stale [][]byte
		open := tx.Bucket(bucketOpen)
		if err := open.ForEach(func(k, v []byte) error {
			if bytes.Equal(v, id) {
				stale = append(stale, bytes.Clone(k))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range stale {
			if err := open.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if qerr != nil {
		return errors.Join(err, storeErr("move a tampered request aside", qerr))
	}
	return err
}

// put seals and writes r and moves its entry in the due index to its
// NextDeadline.
func (s *Store) put(tx *bolt.Tx, r *workflow.Request) error {
	data, err := s.seal.Seal(r)
	if err != nil {
		return err
	}
	id := []byte(r.ID)
	if err := tx.Bucket(bucketRequests).Put(id, data); err != nil {
		return err
	}
	if err := dropDeadline(tx, id); err != nil {
		return err
	}
	due, byID := tx.Bucket(bucketDue), tx.Bucket(bucketDueByID)
	if t, ok := r.NextDeadline(); ok {
		k := timeKey(t, r.ID)
		if err := due.Put(k, nil); err != nil {
			return err
		}
		return byID.Put(id, k)
	}
	return nil
}

// dropDeadline removes request id from the due index.
func dropDeadline(tx *bolt.Tx, id []byte) error {
	due, byID := tx.Bucket(bucketDue), tx.Bucket(bucketDueByID)
	old := byID.Get(id)
	if old == nil {
		return nil
	}
	if err := due.Delete(bytes.Clone(old)); err != nil {
		return err
	}
	return byID.Delete(id)
}

// timeKey returns t in unix ms as 8 big-endian bytes (times before 1970
// count as 1970), followed by id: keys sort by time.
func timeKey(t time.Time, id string) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(max(t.UnixMilli(), 0))), id...)
}

// storeErr passes *workflow.Error through and reports anything else (I/O
// errors, a closed file) as CodeUnavailable.
func storeErr(op string, err error) error {
	var werr *workflow.Error
	if err == nil || errors.As(err, &werr) {
		return err
	}
	return workflow.Wrap(workflow.CodeUnavailable, err, "bolt "+op)
}

// audit appends recs to the audit bucket and trims records older than the
// retention.
func (s *Store) audit(tx *bolt.Tx, recs ...workflow.AuditRecord) error {
	b := tx.Bucket(bucketAudit)
	for _, rec := range recs {
		data, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		if err := b.Put(binary.BigEndian.AppendUint64(timeKey(rec.At, ""), seq), data); err != nil {
			return err
		}
	}
	cutoff := timeKey(s.clock.Now().Add(-s.auditKeep), "")
	c := b.Cursor()
	for k, _ := c.First(); k != nil && bytes.Compare(k[:8], cutoff) < 0; k, _ = c.First() {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

// Refused implements workflow.Store: one write transaction, which adds the
// record to the audit log and, with a limit, the attempt to the
// requester's rate bucket (keyed "refused:<id>" after the time), where
// Create and Standing count it.
func (s *Store) Refused(_ context.Context, rec workflow.AuditRecord, limit workflow.Limit) error {
	counted := limit.Max > 0 && limit.Window > 0
	if counted && rec.User == "" {
		return workflow.Errorf(workflow.CodeInvalidInput, "a refusal that counts against the limit needs the user")
	}
	return storeErr("audit", s.db.Update(func(tx *bolt.Tx) error {
		if counted {
			rate, err := tx.Bucket(bucketRate).CreateBucketIfNotExists([]byte(workflow.Counter(rec.User, rec.Action)))
			if err != nil {
				return err
			}
			if _, err := trim(rate, rec.At.Add(-limit.Window)); err != nil {
				return err
			}
			if err := rate.Put(timeKey(rec.At, "refused:"+workflow.NewID()), nil); err != nil {
				return err
			}
		}
		return s.audit(tx, rec)
	}))
}

// auditPage is how many records Audit reads per read transaction.
const auditPage = 1000

// Audit implements workflow.Store. It reads a page of records (auditPage
// keys) in one read transaction, hands those q selects to each outside it,
// and goes on after the page's last key: however slowly each consumes the
// records, memory holds one page and no transaction stays open.
func (s *Store) Audit(ctx context.Context, q workflow.AuditQuery, each func(workflow.AuditRecord) error) error {
	var after []byte // the last key read; nil: start at q.Since
	for {
		if err := ctx.Err(); err != nil {
			return storeErr("audit", err)
		}
		var page []workflow.AuditRecord
		done := false
		err := s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketAudit).Cursor()
			var k, v []byte
			switch {
			case after != nil:
				if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
					k, v = c.Next()
				}
			case !q.Since.IsZero():
				k, v = c.Seek(timeKey(q.Since, ""))
			default:
				k, v = c.First()
			}
			for n := 0; k != nil && n < auditPage; k, v = c.Next() {
				n++
				after = bytes.Clone(k)
				var rec workflow.AuditRecord
				if err := json.Unmarshal(v, &rec); err != nil {
					return err
				}
				if !q.Until.IsZero() && !rec.At.Before(q.Until) {
					done = true
					return nil
				}
				if q.Match(rec) {
					page = append(page, rec)
				}
			}
			done = k == nil
			return nil
		})
		if err != nil {
			return storeErr("audit", err)
		}
		for _, rec := range page {
			if err := each(rec); err != nil {
				return err
			}
		}
		if done {
			return nil
		}
	}
}

// completed adds the reset of r completed at to its account's history,
// and drops what is older than the history keeps.
func (s *Store) completed(tx *bolt.Tx, r *workflow.Request, at time.Time) error {
	b, err := tx.Bucket(bucketResets).CreateBucketIfNotExists([]byte(r.Account.AccountKey()))
	if err != nil {
		return err
	}
	cutoff := timeKey(at.Add(-workflow.ResetHistoryWindow), "")
	c := b.Cursor()
	for k, _ := c.First(); k != nil && bytes.Compare(k[:8], cutoff) < 0; k, _ = c.First() {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return b.Put(timeKey(at, r.ID), nil)
}

// Resets implements workflow.Store.
func (s *Store) Resets(_ context.Context, acct workflow.Account, since time.Time) (workflow.ResetHistory, error) {
	var done []time.Time
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketResets).Bucket([]byte(acct.AccountKey()))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, _ := c.Seek(timeKey(since, "")); k != nil; k, _ = c.Next() {
			done = append(done, time.UnixMilli(int64(binary.BigEndian.Uint64(k[:8]))).UTC())
		}
		return nil
	})
	if err != nil {
		return workflow.ResetHistory{}, storeErr("resets", err)
	}
	return workflow.Tally(done, since), nil
}

// listRecent adds r to the latest requests and forgets the oldest beyond
// workflow.RecentKept.
func listRecent(b *bolt.Bucket, r *workflow.Request) error {
	if err := b.Put(timeKey(r.CreatedAt, r.ID), nil); err != nil {
		return err
	}
	n := 0
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	for ; n > workflow.RecentKept; n-- {
		if k, _ := c.First(); k == nil {
			break
		}
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

// Recent implements workflow.Store.
func (s *Store) Recent(_ context.Context, max int) ([]string, error) {
	var ids []string
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRecent).Cursor()
		for k, _ := c.Last(); k != nil && len(ids) < max; k, _ = c.Prev() {
			ids = append(ids, string(k[8:]))
		}
		return nil
	})
	return ids, storeErr("recent", err)
}
