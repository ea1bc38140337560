package boltstore_test

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/example/resetbot/internal/testclock"
	boltstore "github.com/example/resetbot/store/boltstore"
	"github.com/example/resetbot/store/storetest"
	"github.com/example/resetbot/workflow"
)

func open(t testing.TB, path string, opts ...boltstore.Option) *boltstore.Store {
	s, err := boltstore.Open(path, storetest.Key, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) workflow.Store {
		return open(t, filepath.Join(t.TempDir(), "store.db"))
	})
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "store.db") // Open creates the directory
	ctx := t.Context()
	now := time.Now().UTC().Round(0) // no monotonic reading, for DeepEqual
	s := open(t, path)
	r := storetest.NewRequest("UEMPLOYEE", now)
	r.DecideBy = now.Add(-time.Minute)
	if err := s.Create(ctx, r, workflow.Limit{Max: 1, Window: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Claim(ctx, "envelope", time.Hour); !ok || err != nil {
		t.Fatalf("Claim = %v, %v", ok, err)
	}
	if _, err := boltstore.Open(path, storetest.Key); err == nil {
		t.Fatal("a second Open of a file in use succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); workflow.ErrorCode(err) != workflow.CodeUnavailable {
		t.Errorf("Ping after Close: %v, want code %s", err, workflow.CodeUnavailable)
	}

	s = open(t, path)
	if got, err := s.Get(ctx, r.ID); err != nil || !reflect.DeepEqual(got, r) {
		t.Errorf("after reopening, Get = %+v, %v; want %+v", got, err, r)
	}
	if got, err := s.Open(ctx, r.Requester); err != nil || got.ID != r.ID {
		t.Errorf("after reopening, Open = %v, %v; want %s", got, err, r.ID)
	}
	if ids, err := s.Due(ctx, now, 10); err != nil || len(ids) != 1 || ids[0] != r.ID {
		t.Errorf("after reopening, Due = %v, %v; want [%s]", ids, err, r.ID)
	}
	if ok, err := s.Claim(ctx, "envelope", time.Hour); ok || err != nil {
		t.Errorf("after reopening, Claim = %v, %v; want false", ok, err)
	}
	if _, err := s.Update(ctx, r.ID, func(r *workflow.Request) error { return r.Cancel(r.Requester, now) }); err != nil {
		t.Fatal(err)
	}
	err := s.Create(ctx, storetest.NewRequest("UEMPLOYEE", now.Add(time.Minute)), workflow.Limit{Max: 1, Window: time.Hour})
	if workflow.ErrorCode(err) != workflow.CodeRateLimited {
		t.Errorf("after reopening, the rate limit was forgotten: Create error = %v", err)
	}
}

func TestClaimExpiry(t *testing.T) {
	clock := testclock.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	s := open(t, filepath.Join(t.TempDir(), "store.db"), boltstore.WithClock(clock))
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

func BenchmarkCreateUpdate(b *testing.B) {
	storetest.BenchCreateUpdate(b, open(b, filepath.Join(b.TempDir(), "store.db")))
}

func TestTampering(t *testing.T) {
	storetest.RunTampering(t, func(t *testing.T) (workflow.Store, storetest.Tamper) {
		s := open(t, filepath.Join(t.TempDir(), "store.db"))
		return s, s.Tamper
	})
}

func TestLanes(t *testing.T) {
	storetest.RunLanes(t, func(t *testing.T) storetest.LaneStore {
		return open(t, filepath.Join(t.TempDir(), "store.db"))
	})
}

func TestLaneTampering(t *testing.T) {
	storetest.RunLaneTampering(t, func(t *testing.T) (storetest.LaneStore, storetest.TamperLane) {
		s := open(t, filepath.Join(t.TempDir(), "store.db"))
		return s, s.TamperLane
	})
}
