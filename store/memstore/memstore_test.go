package memstore_test

import (
	"testing"
	"time"

	"github.com/example/resetbot/delivery"
	"github.com/example/resetbot/internal/testclock"
	"github.com/example/resetbot/store/memstore"
	"github.com/example/resetbot/store/storetest"
	"github.com/example/resetbot/workflow"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) workflow.Store { return memstore.New(storetest.Key) })
}

func TestTampering(t *testing.T) {
	storetest.RunTampering(t, func(t *testing.T) (workflow.Store, storetest.Tamper) {
		s := memstore.New(storetest.Key)
		return s, func(_ *testing.T, id string, edit func([]byte) []byte) { s.Tamper(id, edit) }
	})
}

func TestClaimExpiry(t *testing.T) {
	clock := testclock.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	s := memstore.New(storetest.Key, memstore.WithClock(clock))
	claim := func(want bool) {
		t.Helper()
		if ok, err := s.Claim(t.Context(), "envelope", time.Hour); ok != want || err != nil {
			t.Fatalf("Claim at %s = %v, %v; want %v", clock.Now().Format(time.TimeOnly), ok, err, want)
		}
	}
	claim(true)
	clock.Add(time.Hour - time.Nanosecond)
	claim(false)
	clock.Add(time.Nanosecond)
	claim(true)
}

func TestDown(t *testing.T) {
	s := memstore.New(storetest.Key)
	s.SetDown(true)
	if err := s.Ping(t.Context()); workflow.ErrorCode(err) != workflow.CodeUnavailable {
		t.Errorf("Ping while down: %v, want code %s", err, workflow.CodeUnavailable)
	}
	if _, err := s.Get(t.Context(), workflow.NewID()); workflow.ErrorCode(err) != workflow.CodeUnavailable {
		t.Errorf("Get while down: %v, want code %s", err, workflow.CodeUnavailable)
	}
	s.SetDown(false)
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping once up again: %v", err)
	}
}

func TestLanes(t *testing.T) {
	storetest.RunLanes(t, func(t *testing.T) storetest.LaneStore { return memstore.New(storetest.Key) })
}

func TestLaneTampering(t *testing.T) {
	storetest.RunLaneTampering(t, func(t *testing.T) (storetest.LaneStore, storetest.TamperLane) {
		s := memstore.New(storetest.Key)
		return s, func(_ *testing.T, l delivery.Lane, edit func([]byte) []byte) { s.TamperLane(l, edit) }
	})
}
