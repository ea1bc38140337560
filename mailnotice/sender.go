package mailnotice

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/example/resetbot/workflow"
)

// Options tune a Sender. A zero field takes its default.
type Options struct {
	// OnResult is called once for every notice Notify accepted, when it
	// is done (sent, failed for good, or given up at Close), from a
	// goroutine of the Sender. It must return: Close waits for it.
	OnResult func(Result)
	Log      *slog.Logger // default: discard
	Queue    int          // notices accepted and not done at most, retries included; more are dropped (default 256)
	Workers  int          // attempts in flight at most (default 4)
	Attempts int          // tries per address (default 4)
	// Backoff is the wait after failed attempt n (from 1). Default: 2s,
	// 8s, 32s, 2m, each ±20%.
	Backoff func(n int) time.Duration
	Timeout time.Duration // one attempt, connecting included (default 30s)
}

// Sender sends notices in the background. Notify never blocks its
// caller; each address is tried up to Attempts times, with Backoff in
// between, except after a 5xx answer. Nothing is kept across restarts:
// a notice still queued when the process dies is lost.
type Sender struct {
	t      *transport
	o      Options
	slots  chan struct{} // one per attempt in flight
	abort  chan struct{} // closed when Close gives up waiting
	once   sync.Once
	mu     sync.Mutex
	closed bool
	queued int // accepted and not done
	wg     sync.WaitGroup
}

// New returns a Sender for c. It connects to nothing yet; its error
// lists every problem of c and never holds the password.
func New(c Config, o Options) (*Sender, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Queue <= 0 {
		o.Queue = 256
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Attempts <= 0 {
		o.Attempts = 4
	}
	if o.Backoff == nil {
		o.Backoff = DefaultBackoff
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	t, err := newTransport(c, o.Timeout)
	if err != nil {
		return nil, err
	}
	return &Sender{t: t, o: o, slots: make(chan struct{}, o.Workers), abort: make(chan struct{})}, nil
}

// DefaultBackoff waits 2s after the first failed attempt, then four times
// longer each time, at most 2 minutes, each ±20% so that a burst of
// notices does not come back all at once.
func DefaultBackoff(n int) time.Duration {
	d := 2 * time.Minute
	if n >= 1 && n <= 4 {
		d = min(d, 2*time.Second<<(2*(n-1)))
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// Notify queues n and returns at once. It returns nil when n was
// accepted: OnResult will get its Result. Otherwise n is not sent, and
// the error, a *workflow.Error (CodeInternal) wrapping an *Error, says
// why: FailureInvalid (Validate refused n, or it has no valid address),
// FailureQueueFull or FailureClosed.
func (s *Sender) Notify(n Notice) error {
	msg, err := Render(n, s.t.helpdesk)
	if err != nil {
		return notSent(n, FailureInvalid, err.Error())
	}
	to, skipped := n.Recipients()
	if len(to) == 0 {
		detail := "the account has no mail or otherMailbox"
		if len(skipped) > 0 {
			detail = "no valid address: " + describe(skipped)
		}
		return notSent(n, FailureInvalid, detail)
	}
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return notSent(n, FailureClosed, "the sender is closed")
	case s.queued >= s.o.Queue:
		s.mu.Unlock()
		s.o.Log.Error("notice email dropped: queue full", "request_id", n.RequestID, "queue", s.o.Queue)
		return notSent(n, FailureQueueFull, fmt.Sprintf("%d notices are waiting already", s.o.Queue))
	}
	s.queued++
	s.wg.Add(1)
	s.mu.Unlock()
	go s.deliver(job{id: n.RequestID, kind: n.Kind, to: to, skipped: skipped, msg: msg})
	return nil
}

// Close stops taking notices and waits until every accepted one is done
// or ctx ends. Then it stops the attempts still running (their
// connections are closed) and the waits between them, reports what is
// left as FailureShutdown, and returns an error saying how many.
func (s *Sender) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	left := s.queued
	s.mu.Unlock()
	s.once.Do(func() { close(s.abort) })
	<-done
	if left == 0 {
		return nil
	}
	return workflow.Wrap(workflow.CodeInternal, &Error{Failure: FailureShutdown, Detail: fmt.Sprintf("%d notice(s) not done when the sender closed", left)}, "mail notices")
}

// job is one accepted notice.
type job struct {
	id      string
	kind    Kind
	to      []string
	skipped []Skipped
	msg     Message
}

// deliver tries every address of j until each is sent or failed for good
// and reports the result.
func (s *Sender) deliver(j job) {
	defer func() {
		s.mu.Lock()
		s.queued--
		s.mu.Unlock()
		s.wg.Done()
	}()
	res := Result{RequestID: j.id, Kind: j.kind, Skipped: j.skipped}
	pending := j.to
	lastErr := map[string]error{}
	attempt := 0
	for len(pending) > 0 {
		if !s.acquire() {
			break
		}
		attempt++
		ctx, cancel := s.attemptContext()
		errs := s.t.send(ctx, pending, j.msg)
		ended := ctx.Err()
		cancel()
		<-s.slots
		var again []string
		for i, addr := range pending {
			err := errs[i]
			if err == nil {
				res.Sent = append(res.Sent, addr)
				continue
			}
			f, final := classify(err)
			switch {
			case s.aborted():
				f = FailureShutdown
			case errors.Is(ended, context.DeadlineExceeded):
				f = FailureTimeout
			}
			lastErr[addr] = s.failure(f, err)
			s.o.Log.Warn("notice email attempt failed", "request_id", j.id, "kind", j.kind, "address", addr,
				"attempt", attempt, "failure", f, "error", lastErr[addr])
			if final || attempt >= s.o.Attempts || s.aborted() {
				res.Failed = append(res.Failed, Failed{Address: addr, Attempts: attempt, Failure: f, Err: lastErr[addr]})
				continue
			}
			again = append(again, addr)
		}
		pending = again
		if len(pending) > 0 && !s.wait(s.o.Backoff(attempt)) {
			break
		}
	}
	for _, addr := range pending { // Close gave up on them
		detail := "the sender closed before it was sent"
		if err := lastErr[addr]; err != nil {
			detail += "; the last attempt: " + err.Error()
		}
		res.Failed = append(res.Failed, Failed{Address: addr, Attempts: attempt, Failure: FailureShutdown, Err: &Error{Failure: FailureShutdown, Detail: detail}})
	}
	if err := res.Err(); err != nil {
		s.o.Log.Error("notice email not sent", "request_id", j.id, "kind", j.kind, "sent", len(res.Sent), "failed", len(res.Failed), "error", err)
	} else {
		s.o.Log.Info("notice email sent", "request_id", j.id, "kind", j.kind, "addresses", len(res.Sent), "attempts", attempt, "skipped", len(res.Skipped))
	}
	if s.o.OnResult != nil {
		s.o.OnResult(res)
	}
}

// failure describes err, with the SMTP password taken out of whatever
// the server or a library put in it: as it is, and as AUTH PLAIN and
// LOGIN send it (base64).
func (s *Sender) failure(f Failure, err error) error {
	detail := err.Error()
	if p := s.t.password; p != "" {
		for _, secret := range []string{
			p,
			base64.StdEncoding.EncodeToString([]byte("\x00" + s.t.username + "\x00" + p)),
			base64.StdEncoding.EncodeToString([]byte(p)),
		} {
			detail = workflow.Redact(detail, secret)
		}
	}
	return &Error{Failure: f, Detail: oneLine(detail, 1000)}
}

// acquire takes a slot for one attempt; false when Close gave up.
func (s *Sender) acquire() bool {
	select {
	case s.slots <- struct{}{}:
		if s.aborted() {
			<-s.slots
			return false
		}
		return true
	case <-s.abort:
		return false
	}
}

func (s *Sender) aborted() bool {
	select {
	case <-s.abort:
		return true
	default:
		return false
	}
}

// attemptContext bounds one attempt: Timeout, or Close giving up.
func (s *Sender) attemptContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), s.o.Timeout)
	go func() {
		select {
		case <-s.abort:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// wait waits d; false when Close gave up meanwhile.
func (s *Sender) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.abort:
		return false
	}
}

// Result is how one accepted notice went.
type Result struct {
	RequestID string
	Kind      Kind
	Sent      []string  // the addresses the server took
	Failed    []Failed  // the addresses it did not
	Skipped   []Skipped // values of Mail and OtherMailboxes that are no valid address, never used
}

// Failed is an address the notice did not reach.
type Failed struct {
	Address  string
	Attempts int
	Failure  Failure
	Err      error // an *Error: for operators, never a secret
}

// Err returns nil when the notice reached every valid address, else a
// *workflow.Error (CodeInternal) that names each address that failed and
// why; FailureOf gives the first address's Failure.
func (r Result) Err() error {
	if len(r.Failed) == 0 {
		return nil
	}
	parts := make([]string, len(r.Failed))
	for i, f := range r.Failed {
		parts[i] = fmt.Sprintf("%s after %d attempt(s): %v", f.Address, f.Attempts, f.Err)
	}
	return workflow.Wrap(workflow.CodeInternal, &Error{Failure: r.Failed[0].Failure, Detail: strings.Join(parts, "; ")},
		fmt.Sprintf("notice email for request %s reached %d of %d address(es)", oneLine(r.RequestID, 80), len(r.Sent), len(r.Sent)+len(r.Failed)))
}

// Error is why a notice, or its email to one address, was not sent. Its
// text is for operators: one line, without the SMTP password.
type Error struct {
	Failure Failure
	Detail  string
}

func (e *Error) Error() string { return string(e.Failure) + ": " + e.Detail }

// FailureOf returns the Failure of the first *Error in err's chain, or ""
// when there is none.
func FailureOf(err error) Failure {
	var e *Error
	if errors.As(err, &e) {
		return e.Failure
	}
	return ""
}

func notSent(n Notice, f Failure, detail string) error {
	return workflow.Wrap(workflow.CodeInternal, &Error{Failure: f, Detail: detail}, fmt.Sprintf("notice email for request %s not sent", oneLine(n.RequestID, 80)))
}

// describe lists skipped values for an error message.
func describe(skipped []Skipped) string {
	parts := make([]string, len(skipped))
	for i, k := range skipped {
		parts[i] = k.Field + " " + k.Value + ": " + k.Reason
	}
	return strings.Join(parts, "; ")
}
