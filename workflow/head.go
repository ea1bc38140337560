package workflow

import (
	"context"
	"sync"
)

// head is the newest version of one request this replica has seen, shared
// by everything here that works on the request at the same time: the
// transitions, and the chat syncs of both lanes. Each change starts its
// compare-and-set from it (Store.UpdateFrom), so that work that follows
// other work here needs no read and seldom a retry, and a sync starts from
// it without reading the request. The reads and writes through a head are
// one at a time, and the store's versions only move forward, so the last
// one seen is the newest: a sync never starts from a version older than
// progress another sync here already saved (it would send the same
// messages again). A head lives while something holds it.
type head struct {
	mu   sync.Mutex
	r    *Request // nil until read or saved
	refs int      // guarded by Service.mu
}

// hold returns the head of request id, creating it, and keeps it until the
// matching letGo. s.mu must not be held.
func (s *Service) hold(id string) *head {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.holdLocked(id)
}

func (s *Service) holdLocked(id string) *head {
	h := s.heads[id]
	if h == nil {
		h = &head{}
		s.heads[id] = h
	}
	h.refs++
	return h
}

// letGo ends a hold of request id's head.
func (s *Service) letGo(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.letGoLocked(id)
}

func (s *Service) letGoLocked(id string) {
	if h := s.heads[id]; h != nil {
		if h.refs--; h.refs <= 0 {
			delete(s.heads, id)
		}
	}
}

// seen records r, just read or saved by the caller, as the newest version.
func (h *head) seen(r *Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.r = r
}

// read returns the newest version seen here, reading it from st when none
// was.
func (h *head) read(ctx context.Context, st Store, id string) (*Request, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.r != nil {
		return h.r, nil
	}
	r, err := st.Get(ctx, id)
	if err == nil {
		h.r = r
	}
	return r, err
}

// update is Store.Update of request id, starting from the newest version
// seen here.
func (h *head) update(ctx context.Context, st Store, id string, fn func(*Request) error) (*Request, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var r *Request
	var err error
	if h.r != nil {
		r, err = st.UpdateFrom(ctx, h.r, fn)
	} else {
		r, err = st.Update(ctx, id, fn)
	}
	if err == nil {
		h.r = r
	}
	return r, err
}
