package ldapdir

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/example/resetbot/workflow"
)

// opContext bounds one operation: the caller's deadline or Timeout,
// whichever comes first.
func (c *Client) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

// unavailable returns the error of every failure: code
// workflow.CodeLookupUnavailable and an operator message naming the step
// and the server. The message never holds the bind password.
func (c *Client) unavailable(err error, format string, args ...any) *workflow.Error {
	msg := "LDAP " + fmt.Sprintf(format, args...)
	if err != nil {
		err = oneLine{err}
	}
	return workflow.Wrap(workflow.CodeLookupUnavailable, err, msg)
}

// oneLine keeps an error on one line: servers end diagnostic messages with
// a newline (Samba does), and errors end up in one-line logs.
type oneLine struct{ err error }

func (e oneLine) Error() string { return strings.Join(strings.Fields(e.err.Error()), " ") }
func (e oneLine) Unwrap() error { return e.err }

// timedOut describes an operation that ctx ended.
func (c *Client) timedOut(ctx context.Context, step string) *workflow.Error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return c.unavailable(ctx.Err(), "%s on %s: cancelled", step, c.server)
	}
	return c.unavailable(ctx.Err(), "%s on %s: no answer in time (timeout %s)", step, c.server, c.timeout)
}

// dial opens a new connection: TCP, TLS (LDAPS or StartTLS unless
// Insecure), then a simple bind. Every step runs under ctx: the socket
// deadline follows it, so neither a silent server nor a stalled TLS
// handshake can outlast it. Errors are *workflow.Error naming the step.
func (c *Client) dial(ctx context.Context) (*ldap.Conn, error) {
	start := time.Now()
	d := &net.Dialer{Timeout: c.timeout}
	raw, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, c.timedOut(ctx, "dial")
		}
		return nil, c.unavailable(err, "dial %s failed (check LDAP_URL and that the server is reachable from here)", c.server)
	}
	if deadline, ok := ctx.Deadline(); ok {
		raw.SetDeadline(deadline)
	}
	// Cancelling ctx must also unblock a read in progress.
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	conn, err := c.setup(ctx, raw)
	if err != nil {
		raw.Close()
		return nil, err
	}
	if !stop() { // ctx ended just as the bind succeeded
		conn.Close()
		return nil, c.timedOut(ctx, "connect")
	}
	raw.SetDeadline(time.Time{})
	c.log.Debug("ldap connected", "server", c.server, "starttls", c.startTLS, "duration", time.Since(start))
	return conn, nil
}

// setup runs TLS and the bind on raw and returns the LDAP connection.
func (c *Client) setup(ctx context.Context, raw net.Conn) (*ldap.Conn, error) {
	const tlsHint = "check LDAP_CA_FILE and that the certificate names the host in LDAP_URL"
	var conn *ldap.Conn
	if strings.HasPrefix(c.server, "ldaps:") {
		tc := tls.Client(raw, c.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, c.stepError(ctx, err, "TLS handshake", tlsHint)
		}
		conn = ldap.NewConn(tc, true)
	} else {
		conn = ldap.NewConn(raw, false)
	}
	conn.Start()
	// Backstop for operations whose caller stopped waiting (see await).
	conn.SetTimeout(c.timeout)
	if c.startTLS {
		if err := conn.StartTLS(c.tls); err != nil {
			conn.Close()
			return nil, c.stepError(ctx, err, "StartTLS", tlsHint+"; or use ldaps://")
		}
	}
	if err := conn.Bind(c.bindDN, c.bindPW); err != nil {
		conn.Close()
		if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			return nil, c.bindRefused(err)
		}
		return nil, c.stepError(ctx, err, "bind as "+strconv.Quote(c.bindDN), "check LDAP_BIND_DN")
	}
	return conn, nil
}

// stepError describes a failed step of dial: a timeout as such, anything
// else with hint, what to check.
func (c *Client) stepError(ctx context.Context, err error, step, hint string) *workflow.Error {
	if ctx.Err() != nil || isTimeout(err) {
		return c.unavailable(err, "%s with %s: no answer in time (timeout %s)", step, c.server, c.timeout)
	}
	return c.unavailable(err, "%s with %s failed (%s)", step, c.server, hint)
}

// isTimeout reports a socket deadline or go-ldap request timeout; go-ldap
// passes some of them on only as text.
func isTimeout(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "i/o timeout") || strings.Contains(msg, "timed out")
}

// bindRefused describes a bind answered with invalid credentials (49);
// AD's "data NNN" codes are put in words.
func (c *Client) bindRefused(err error) *workflow.Error {
	reason := "invalid credentials"
	for code, why := range map[string]string{
		"data 52e": "wrong password or unknown account",
		"data 525": "unknown account",
		"data 530": "not permitted to log on at this time",
		"data 532": "password expired",
		"data 533": "account disabled",
		"data 701": "account expired",
		"data 773": "password must be changed",
		"data 775": "account locked out",
	} {
		if strings.Contains(err.Error(), code) {
			reason = why
		}
	}
	return c.unavailable(err, "bind as %q to %s: LDAP_BIND_DN/LDAP_BIND_PASSWORD refused (%s)", c.bindDN, c.server, reason)
}

// current returns the shared connection, or nil when there is none or it
// is closing (the server or the network dropped it).
func (c *Client) current() (*ldap.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, c.unavailable(nil, "client for %s is closed", c.server)
	}
	if c.conn != nil && c.conn.IsClosing() {
		c.conn = nil
	}
	return c.conn, nil
}

// connection returns the shared connection, dialling it when needed. One
// caller dials at a time; the others wait for it, or for their ctx.
func (c *Client) connection(ctx context.Context) (*ldap.Conn, error) {
	if conn, err := c.current(); conn != nil || err != nil {
		return conn, err
	}
	select {
	case c.dialing <- struct{}{}:
		defer func() { <-c.dialing }()
	case <-ctx.Done():
		return nil, c.timedOut(ctx, "dial")
	}
	if conn, err := c.current(); conn != nil || err != nil {
		return conn, err // dialled while we waited
	}
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		conn.Close()
		return nil, c.unavailable(nil, "client for %s is closed", c.server)
	}
	c.conn = conn
	return conn, nil
}

// discard forgets conn (if it is still the shared one) and closes it, so
// that the next operation dials again.
func (c *Client) discard(conn *ldap.Conn) {
	c.mu.Lock()
	if c.conn == conn {
		c.conn = nil
	}
	c.mu.Unlock()
	conn.Close()
}

// isNetworkError reports whether err is about the connection rather than
// an LDAP result from the server (which would be the same on a new one).
func isNetworkError(err error, conn *ldap.Conn) bool {
	if conn.IsClosing() {
		return true
	}
	var le *ldap.Error
	if errors.As(err, &le) {
		return le.ResultCode == ldap.ErrorNetwork
	}
	// go-ldap reports a failed write or a bad packet as a plain error.
	return true
}

type outcome[T any] struct {
	v   T
	err error
}

// await runs op on conn and returns its result, or ctx's error as soon as
// ctx ends. An abandoned op ends by itself: go-ldap's request timeout
// (SetTimeout) or the connection being closed releases it.
func await[T any](ctx context.Context, conn *ldap.Conn, op func(*ldap.Conn) (T, error)) (T, error) {
	done := make(chan outcome[T], 1)
	go func() {
		v, err := op(conn)
		done <- outcome[T]{v, err}
	}()
	select {
	case o := <-done:
		return o.v, o.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// do runs op on the shared connection under opContext. After a
// network-level error it dials again and retries op once; an LDAP result
// error (e.g. noSuchObject) is returned as the *ldap.Error, unretried.
// Every other failure is a *workflow.Error naming step.
func do[T any](ctx context.Context, c *Client, step string, op func(*ldap.Conn) (T, error)) (T, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	var zero T
	for attempt := 1; ; attempt++ {
		conn, err := c.connection(ctx)
		if err != nil {
			return zero, err
		}
		v, err := await(ctx, conn, op)
		switch {
		case err == nil:
			return v, nil
		case ctx.Err() != nil:
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				c.discard(conn) // a silent connection: start afresh next time
			}
			return zero, c.timedOut(ctx, step)
		case !isNetworkError(err, conn):
			return zero, err
		}
		c.discard(conn)
		if attempt == 2 {
			return zero, c.unavailable(err, "%s on %s failed", step, c.server)
		}
		c.log.Debug("ldap connection lost, retrying on a new one", "op", step, "server", c.server, "error", err)
	}
}
