package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/example/resetbot/delivery"
	"github.com/example/resetbot/workflow"
)

// The delivery lanes (package delivery) live in these buckets:
//
//	lanes          lane -> its record, sealed for the lane (seal.SealLane)
//	lanes_tampered lane -> a record that failed verification, moved aside
//	lane_state     lane -> laneState JSON: lease, due time, inbox
//	lanes_due      due time (unix ms, 8 bytes) + lane -> nothing
var (
	bucketLanes        = []byte("lanes")
	bucketLaneTampered = []byte("lanes_tampered")
	bucketLaneState    = []byte("lane_state")
	bucketLanesDue     = []byte("lanes_due")
)

var laneBuckets = [][]byte{bucketLanes, bucketLaneTampered, bucketLaneState, bucketLanesDue}

var _ delivery.Store = (*Store)(nil)

// laneState is a lane's lease, due time and inbox.
type laneState struct {
	Owner string    `json:"owner,omitempty"`
	Until time.Time `json:"until,omitzero"`
	Due   time.Time `json:"due,omitzero"`
	Inbox []string  `json:"inbox,omitempty"`
}

func loadLane(tx *bolt.Tx, name string) (laneState, error) {
	var st laneState
	if b := tx.Bucket(bucketLaneState).Get([]byte(name)); b != nil {
		if err := json.Unmarshal(b, &st); err != nil {
			return st, err
		}
	}
	return st, nil
}

// saveLane writes st and moves the lane in the due index from old's due
// time to st's.
func saveLane(tx *bolt.Tx, name string, old, st laneState) error {
	due := tx.Bucket(bucketLanesDue)
	if !old.Due.IsZero() {
		if err := due.Delete(timeKey(old.Due, name)); err != nil {
			return err
		}
	}
	if !st.Due.IsZero() {
		if err := due.Put(timeKey(st.Due, name), nil); err != nil {
			return err
		}
	}
	if st.Owner == "" && st.Due.IsZero() && len(st.Inbox) == 0 {
		return tx.Bucket(bucketLaneState).Delete([]byte(name))
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketLaneState).Put([]byte(name), b)
}

// mark writes a change's delivery marks (delivery.Marks) in its
// transaction: each lane due now unless due earlier, its item in its inbox.
func (s *Store) mark(tx *bolt.Tx, marks []delivery.Mark) error {
	now := s.clock.Now()
	for _, m := range marks {
		name := m.Lane.String()
		old, err := loadLane(tx, name)
		if err != nil {
			return err
		}
		st := old
		st.Inbox = slices.Clone(old.Inbox)
		if st.Due.IsZero() || now.Before(st.Due) {
			st.Due = now
		}
		if m.Item != "" && !slices.Contains(st.Inbox, m.Item) {
			st.Inbox = append(st.Inbox, m.Item)
		}
		if err := saveLane(tx, name, old, st); err != nil {
			return err
		}
	}
	return nil
}

// DueLanes implements delivery.Store. limit <= 0 means no limit.
func (s *Store) DueLanes(_ context.Context, now time.Time, limit int) ([]delivery.Lane, error) {
	var out []delivery.Lane
	end := timeKey(now, "")
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketLanesDue).Cursor()
		for k, _ := c.First(); k != nil && bytes.Compare(k[:8], end) <= 0; k, _ = c.Next() {
			if limit > 0 && len(out) == limit {
				break
			}
			if l, ok := delivery.ParseLane(string(k[8:])); ok {
				out = append(out, l)
			}
		}
		return nil
	})
	return out, storeErr("due lanes", err)
}

// Take implements delivery.Store.
func (s *Store) Take(_ context.Context, l delivery.Lane, owner string, now, until time.Time) (delivery.Taken, bool, error) {
	name := l.String()
	var t delivery.Taken
	taken := false
	var refused error
	err := s.db.Update(func(tx *bolt.Tx) error {
		old, err := loadLane(tx, name)
		if err != nil {
			return err
		}
		if old.Owner != "" && old.Owner != owner && now.Before(old.Until) {
			return nil
		}
		if sealed := tx.Bucket(bucketLanes).Get([]byte(name)); sealed != nil {
			data, err := s.seal.OpenLane(name, sealed)
			if workflow.ErrorCode(err) == workflow.CodeTampered {
				// Moved aside in this transaction; nothing of it is used.
				refused = err
				if err := tx.Bucket(bucketLaneTampered).Put([]byte(name), bytes.Clone(sealed)); err != nil {
					return err
				}
				return tx.Bucket(bucketLanes).Delete([]byte(name))
			}
			if err != nil {
				return err
			}
			t.Data = bytes.Clone(data)
		}
		st := old
		st.Owner, st.Until = owner, until
		if !st.Due.IsZero() && !st.Due.After(now) {
			st.Due = until
		}
		t = delivery.Taken{Lane: l, Data: t.Data, Inbox: slices.Clone(st.Inbox), Due: st.Due}
		if id := l.Request(); id != "" {
			t.Request, _ = s.get(tx, id) // nil when gone or refused (moved aside by whoever reads it next)
		}
		taken = true
		return saveLane(tx, name, old, st)
	})
	if refused != nil && err == nil {
		return delivery.Taken{}, false, refused
	}
	if err != nil {
		return delivery.Taken{}, false, storeErr("take lane", err)
	}
	return t, taken, nil
}

// Put implements delivery.Store.
func (s *Store) Put(_ context.Context, t delivery.Taken, owner string, data []byte, handled []string, next time.Time, release bool) error {
	name := t.Lane.String()
	var sealed []byte
	if data != nil {
		var err error
		if sealed, err = s.seal.SealLane(name, data); err != nil {
			return err
		}
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		old, err := loadLane(tx, name)
		if err != nil {
			return err
		}
		if old.Owner != owner {
			return delivery.LeaseLost(t.Lane)
		}
		if sealed != nil {
			if err := tx.Bucket(bucketLanes).Put([]byte(name), sealed); err != nil {
				return err
			}
		}
		st := old
		st.Inbox = slices.DeleteFunc(slices.Clone(old.Inbox), func(item string) bool { return slices.Contains(handled, item) })
		if st.Due.Equal(t.Due) {
			st.Due = next
		}
		if release {
			st.Owner, st.Until = "", time.Time{}
		}
		return saveLane(tx, name, old, st)
	})
	return storeErr("put lane", err)
}
