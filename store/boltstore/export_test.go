package boltstore

import (
	"bytes"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/example/resetbot/delivery"
)

// Tamper rewrites the stored bytes of request id with edit, behind the
// store's back, for the conformance suite's tampering tests.
func (s *Store) Tamper(t *testing.T, id string, edit func([]byte) []byte) {
	t.Helper()
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRequests)
		return b.Put([]byte(id), edit(bytes.Clone(b.Get([]byte(id)))))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TamperLane rewrites the stored record of lane l with edit, behind the
// store's back, for the conformance suite's tampering tests.
func (s *Store) TamperLane(t *testing.T, l delivery.Lane, edit func([]byte) []byte) {
	t.Helper()
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLanes)
		return b.Put([]byte(l.String()), edit(bytes.Clone(b.Get([]byte(l.String())))))
	})
	if err != nil {
		t.Fatal(err)
	}
}
