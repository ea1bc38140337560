package workflow

import (
	"context"
	"errors"
	"time"
)

// EventTampered is the AuditRecord event of a stored request that failed
// verification (CodeTampered): it was not acted on.
const EventTampered = "tampered"

// tamperQuiet is how long the audit channel is told about one tampered
// request once only (several replicas may meet it at the same moment).
const tamperQuiet = 24 * time.Hour

// watchedStore is the service's view of the store: every read that meets a
// record that failed verification is reported (log, audit log, audit
// channel) before its error goes on to the caller, whichever path met it:
// a command, a click or the sweeper.
type watchedStore struct {
	Store
	report func(ctx context.Context, t *Tampered, err error)
}

func (w watchedStore) watch(ctx context.Context, err error) {
	var t *Tampered
	if ErrorCode(err) == CodeTampered && errors.As(err, &t) {
		w.report(ctx, t, err)
	}
}

func (w watchedStore) Standing(ctx context.Context, requester string, action Action, since time.Time) (*Request, int, error) {
	open, n, err := w.Store.Standing(ctx, requester, action, since)
	w.watch(ctx, err)
	return open, n, err
}

func (w watchedStore) Get(ctx context.Context, id string) (*Request, error) {
	r, err := w.Store.Get(ctx, id)
	w.watch(ctx, err)
	return r, err
}

func (w watchedStore) Open(ctx context.Context, requester string) (*Request, error) {
	r, err := w.Store.Open(ctx, requester)
	w.watch(ctx, err)
	return r, err
}

func (w watchedStore) Update(ctx context.Context, id string, fn func(*Request) error) (*Request, error) {
	r, err := w.Store.Update(ctx, id, fn)
	w.watch(ctx, err)
	return r, err
}

// ReportTampered reports err when it is a stored request that failed
// verification (CodeTampered), met outside the service (the chat lanes
// read the store too), as the service reports those it meets; other
// errors are left alone.
func (s *Service) ReportTampered(ctx context.Context, err error) {
	var t *Tampered
	if ErrorCode(err) == CodeTampered && errors.As(err, &t) {
		s.tampered(ctx, t, err)
	}
}

// tampered reports a stored request that failed verification: an error
// log line at once, then, in the background, a record in the audit log
// and (once per request) a line in the audit channel that alerts helpdesk.
// The store has already moved the record aside; nothing in it was used.
func (s *Service) tampered(ctx context.Context, t *Tampered, err error) {
	s.deps.Log.Error("a stored request failed verification and was not acted on; check who can write to the store",
		"request_id", t.ID, "claimed_requester", t.Requester, "error", err)
	f := Refusal{At: s.deps.Clock.Now(), User: t.Requester, Code: CodeTampered,
		Detail: "stored request " + t.ID + " failed its signature check (" + err.Error() + "); it was moved aside and not acted on"}
	rec := RefusalRecord(f, s.cfg.DirectoryID)
	rec.Event, rec.RequestID, rec.Actor = EventTampered, t.ID, ""
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		ctx, stop := s.detach(ctx)
		defer stop()
		ctx, cancel := context.WithTimeout(ctx, noteTimeout)
		defer cancel()
		// Not the claimed requester's doing: it never counts against them.
		if rerr := s.deps.Store.Refused(ctx, rec, Limit{}); rerr != nil {
			s.deps.Log.Error("could not write a tampered request to the audit log", "request_id", t.ID, "error", rerr)
		}
		if first, cerr := s.deps.Store.Claim(ctx, "tampered:"+t.ID, tamperQuiet); cerr != nil || !first {
			return
		}
		if nerr := s.deps.Notifier.Refused(ctx, f); nerr != nil {
			s.deps.Log.Warn("could not tell the audit channel about a tampered request", "request_id", t.ID, "error", nerr)
		}
	}()
}
