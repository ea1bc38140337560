package storetest

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/example/resetbot/workflow"
)

// BenchCreateUpdate measures the hot path of a request: one Create and one
// approval through Update per operation, serially and from parallel
// goroutines (as several handlers or replicas would).
func BenchCreateUpdate(b *testing.B, s workflow.Store) {
	var n atomic.Int64
	op := func() error {
		r := NewRequest("UBENCH"+strconv.FormatInt(n.Add(1), 10), base)
		if err := s.Create(b.Context(), r, noLimit); err != nil {
			return err
		}
		_, err := s.Update(b.Context(), r.ID, func(r *workflow.Request) error {
			return r.Decide(r.Approvers[0], true, base, 15*time.Minute)
		})
		return err
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := op(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := op(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
