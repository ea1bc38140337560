package workflow

import (
	"context"
	"errors"
	"sync"
	"time"
)

// schedule sets when r's approvers are reminded and, when its manager
// was asked, when the fallback approvers are asked as well: each only if
// it comes before the decision window ends.
func (s *Service) schedule(r *Request) {
	if at := r.CreatedAt.Add(s.cfg.RemindAfter); s.cfg.RemindAfter > 0 && at.Before(r.DecideBy) {
		r.RemindAt = at
	}
	if at := r.CreatedAt.Add(s.cfg.EscalateAfter); s.cfg.EscalateAfter > 0 && r.AskedAs == AskedManager && at.Before(r.DecideBy) {
		r.EscalateAt = at
	}
}

// factsTimeout bounds the reading of a request's facts: what is not read
// by then is left out, and the request goes on without it.
const factsTimeout = 3 * time.Second

// facts reads, once, what helps r's approvers decide: the account's
// sign-in state from the directory, the bot's resets of it in the last
// ResetHistoryWindow, and the time of the request in the employee's time
// zone (p's). Whatever cannot be read is left out (logged), never
// guessed, and refuses nothing. nil when nothing could be read.
func (s *Service) facts(ctx context.Context, p Person, r *Request) *Facts {
	ctx, cancel := context.WithTimeout(ctx, factsTimeout)
	defer cancel()
	log := s.log(r)
	var f Facts
	var wg sync.WaitGroup
	if s.deps.Facts != nil {
		wg.Go(func() {
			in, err := s.deps.Facts.SignIn(ctx, r.Account)
			if err != nil {
				log.Info("the account's sign-in facts could not be read; the approvers will not see them", "code", ErrorCode(err), "error", err)
				return
			}
			f.SignIn = in
		})
	}
	wg.Go(func() {
		h, err := s.deps.Store.Resets(ctx, r.Account, r.CreatedAt.Add(-ResetHistoryWindow))
		if err != nil {
			log.Info("the account's reset history could not be read; the approvers will not see it", "error", err)
			return
		}
		f.Resets = &h
	})
	f.Hours = s.localTime(p, r.CreatedAt)
	wg.Wait()
	if f.Empty() {
		return nil
	}
	return &f
}

// localTime is at in p's time zone, flagged when outside WorkHours; nil
// when chat does not say where p is.
func (s *Service) localTime(p Person, at time.Time) *LocalTime {
	if p.TZ == "" {
		return nil
	}
	loc, err := time.LoadLocation(p.TZ)
	if err != nil {
		loc = time.FixedZone(p.TZ, p.TZOffset)
	}
	t := at.In(loc)
	return &LocalTime{Zone: p.TZ, Clock: t.Format("Mon 15:04"), Outside: s.cfg.WorkHours.Outside(t)}
}

// errNeedFallback stops a sweep's change that must first know the
// fallback approvers (read outside the compare-and-set).
var errNeedFallback = errors.New("the fallback approvers are needed")

// escalationRetry is how long an escalation waits when the fallback
// approvers could not be found.
const escalationRetry = time.Minute

// escalation is what a sweep found out for an escalation.
type escalation struct {
	resolved  bool
	requester string
	account   Account
	fallback  []string
	err       error
}

// resolve finds the fallback approvers (APPROVERS).
func (e *escalation) resolve(ctx context.Context, s *Service) {
	e.resolved = true
	e.fallback, e.err = s.deps.Approvers.For(ctx, e.requester, e.account)
	if e.err != nil {
		s.deps.Log.Warn("could not find the fallback approvers to escalate to; trying again in a minute", "requester", e.requester, "error", e.err)
	}
}

// apply escalates r, or, when the fallback approvers could not be found,
// tries again a little later. It reports whether r changed.
func (e *escalation) apply(r *Request, now time.Time) bool {
	if e.err != nil {
		r.EscalateAt = now.Add(escalationRetry)
		return true
	}
	return r.Escalate(now, e.fallback) == nil
}

// Deny is Decide denying request id, with the approver's reason (cleaned
// by CleanReason), which the employee is shown.
//
// Errors: Decide's.
func (s *Service) Deny(ctx context.Context, id, actor, reason string) (*Request, error) {
	return s.decide(ctx, id, actor, false, CleanReason(reason))
}

// Report records the owner's "This wasn't me" on request id, after its
// reset completed: helpdesk is alerted through chat, and, with a
// Disabler (REPORT_DISABLES), the directory account is disabled and the
// outcome recorded. It returns the request as it ends up (nil when the
// report was refused and the request is not actor's).
//
// Errors: CodeNotFound, CodeNotRequester, CodeWrongState (no completed
// reset), CodeAlreadyReported, CodeUnavailable.
func (s *Service) Report(ctx context.Context, id, actor string) (*Request, error) {
	r, err := s.transition(ctx, id, func(r *Request, now time.Time) error { return r.Report(actor, now) })
	if err != nil {
		if r != nil && r.Requester != actor {
			r = nil
		}
		return r, err
	}
	log := s.log(r)
	log.Warn("the owner reported a reset they did not ask for; helpdesk is alerted")
	if s.deps.Disabler == nil {
		return r, nil
	}
	// The disable goes on if the click's handler ends first.
	dctx, stop := s.detach(ctx)
	defer stop()
	dctx, cancel := context.WithTimeout(dctx, 30*time.Second)
	defer cancel()
	changed, derr := s.deps.Disabler.Disable(dctx, r.Account)
	code, detail := ErrorCode(derr), "the directory account was disabled"
	switch {
	case derr != nil:
		detail = "the directory account could not be disabled: " + derr.Error()
		log.Error("could not disable a reported account", "code", code, "error", derr)
	case !changed:
		detail = "the directory account was already disabled"
	}
	if code == "" {
		log.Warn(detail)
	}
	ended, err := s.transition(dctx, r.ID, func(r *Request, now time.Time) error { return r.RecordDisable(now, code, detail) })
	if err != nil {
		log.Error("could not record the outcome of disabling a reported account", "disable", detail, "error", err)
		return r, nil
	}
	return ended, nil
}

// RecordNotice records how the owner's notice email about request id
// went (for OwnerNotices): code "" when it reached every address, else
// CodeNoticeFailed and what failed.
//
// Errors: CodeNotFound, CodeWrongState, CodeUnavailable.
func (s *Service) RecordNotice(ctx context.Context, id string, code Code, detail string) error {
	_, err := s.transition(ctx, id, func(r *Request, now time.Time) error { return r.RecordNotice(now, code, detail) })
	return err
}
