package mailnotice

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/example/resetbot/internal/mailpittest"
	"github.com/example/resetbot/workflow"
)

const from = "Password reset <resetbot@corp.example.com>"

// starttls is the configuration for the STARTTLS Mailpit, with its
// credentials.
func starttls(env *mailpittest.Env) Config {
	return Config{URL: env.STARTTLS.SMTPURL, Username: env.Username, Password: env.Password,
		From: from, CAFile: env.CAFile, Helpdesk: helpdesk}
}

// run is a Sender under test: its results, its logs and how often it
// backed off.
type run struct {
	*Sender
	results  chan Result
	logs     *syncBuffer
	backoffs atomic.Int32
}

// start returns a Sender for c that tries 3 times, 10 ms apart, unless o
// says otherwise; it is closed when the test ends.
func start(t *testing.T, c Config, o Options) *run {
	t.Helper()
	r := &run{results: make(chan Result, 100), logs: &syncBuffer{}}
	if o.Attempts == 0 {
		o.Attempts = 3
	}
	backoff := o.Backoff
	o.Backoff = func(n int) time.Duration {
		r.backoffs.Add(1)
		if backoff != nil {
			return backoff(n)
		}
		return 10 * time.Millisecond
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	o.OnResult = func(res Result) { r.results <- res }
	o.Log = slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(c, o)
	if err != nil {
		t.Fatal(err)
	}
	r.Sender = s
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return r
}

// result waits for the next Result.
func (r *run) result(t *testing.T) Result {
	t.Helper()
	select {
	case res := <-r.results:
		return res
	case <-time.After(60 * time.Second):
		t.Fatal("no result within 60s")
		return Result{}
	}
}

// notice is a reset notice to a fresh address of its own (and the
// returned address).
func notice(t *testing.T) (Notice, string) {
	n := sample()
	local := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(t.Name()))
	n.Mail = mailpittest.Unique(local, "corp.example.com")
	n.OtherMailboxes = nil
	return n, n.Mail
}

// failed checks that res failed for addr alone, with failure after
// attempts attempts.
func failed(t *testing.T, res Result, addr string, failure Failure, attempts int) {
	t.Helper()
	if len(res.Sent) != 0 || len(res.Failed) != 1 {
		t.Fatalf("result %+v, want one failed address", res)
	}
	f := res.Failed[0]
	if f.Address != addr || f.Failure != failure || f.Attempts != attempts {
		t.Fatalf("failed %s with %s after %d attempt(s) (%v), want %s with %s after %d", f.Address, f.Failure, f.Attempts, f.Err, addr, failure, attempts)
	}
	err := res.Err()
	if workflow.ErrorCode(err) != workflow.CodeInternal || FailureOf(err) != failure || !strings.Contains(err.Error(), addr) ||
		strings.ContainsAny(err.Error(), "\r\n") {
		t.Fatalf("Result.Err() = %q", err)
	}
}

// TestNoticeReceived: through STARTTLS and with authentication, each
// valid address of the owner gets one message of its own, with the
// rendered text; the invalid one is skipped and reported, and nothing
// reaches the address it tried to add.
func TestNoticeReceived(t *testing.T) {
	env := mailpittest.Require(t)
	r := start(t, starttls(env), Options{})
	n, mail := notice(t)
	other := mailpittest.Unique("private", "example.org")
	evil := mailpittest.Unique("evil", "example.net")
	n.OtherMailboxes = []string{strings.ToUpper(mail), other, other + "\r\nBcc: " + evil, "x@example.org, " + evil}
	if err := r.Notify(n); err != nil {
		t.Fatal(err)
	}
	res := r.result(t)
	if res.Err() != nil || !slices.Equal(res.Sent, []string{mail, other}) || res.RequestID != n.RequestID || res.Kind != KindReset {
		t.Fatalf("result %+v (%v)", res, res.Err())
	}
	if len(res.Skipped) != 2 || res.Skipped[0].Field != "otherMailbox" || res.Skipped[1].Field != "otherMailbox" {
		t.Fatalf("skipped %+v", res.Skipped)
	}
	want, err := Render(n, helpdesk)
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{mail, other} {
		got := env.STARTTLS.WaitTo(t, addr, 1, 10*time.Second)
		if len(got) != 1 {
			t.Fatalf("%d messages to %s", len(got), addr)
		}
		m := env.STARTTLS.Detail(t, got[0].ID)
		if rcpts := m.Recipients(); !slices.Equal(rcpts, []string{addr}) {
			t.Errorf("message to %s has recipients %q: each address gets a message of its own", addr, rcpts)
		}
		if m.From.Address != "resetbot@corp.example.com" || m.From.Name != "Password reset" || m.Subject != SubjectReset {
			t.Errorf("from %+v, subject %q", m.From, m.Subject)
		}
		if m.Username != env.Username {
			t.Errorf("sent as SMTP user %q, want %q", m.Username, env.Username)
		}
		if text := strings.ReplaceAll(m.Text, "\r\n", "\n"); strings.TrimSpace(text) != strings.TrimSpace(want.Text) {
			t.Errorf("text:\n%s\nwant:\n%s", text, want.Text)
		}
		raw := env.STARTTLS.Raw(t, got[0].ID)
		headers, _, _ := strings.Cut(raw, "\r\n\r\n")
		for _, h := range []string{"Auto-Submitted: auto-generated", "X-Auto-Response-Suppress: All", "Content-Type: text/plain; charset=UTF-8", "@corp.example.com>"} {
			if !strings.Contains(headers, h) {
				t.Errorf("headers lack %q:\n%s", h, headers)
			}
		}
		lower := "\r\n" + strings.ToLower(headers)
		if strings.Contains(lower, "\r\nbcc:") || strings.Contains(lower, "\r\ncc:") || strings.Count(lower, "\r\nto:") != 1 ||
			strings.Contains(lower, "evil") || strings.Contains(lower, "\r\nuser-agent:") {
			t.Errorf("headers:\n%s", headers)
		}
	}
	if got := env.STARTTLS.To(t, evil); len(got) != 0 {
		t.Fatalf("the injected address got %d message(s)", len(got))
	}
}

// TestImplicitTLS: smtps:// sends over TLS from the first byte.
func TestImplicitTLS(t *testing.T) {
	env := mailpittest.Require(t)
	c := starttls(env)
	c.URL = env.TLS.SMTPURL
	r := start(t, c, Options{})
	n, mail := notice(t)
	n.Kind = KindUnlock
	if err := r.Notify(n); err != nil {
		t.Fatal(err)
	}
	if res := r.result(t); res.Err() != nil || !slices.Equal(res.Sent, []string{mail}) {
		t.Fatalf("result %+v (%v)", res, res.Err())
	}
	got := env.TLS.WaitTo(t, mail, 1, 10*time.Second)
	if got[0].Subject != SubjectUnlock || got[0].Username != env.Username {
		t.Fatalf("%+v", got[0])
	}
}

// TestNoPlainText: a server without STARTTLS (which even offers AUTH in
// plain text) is tried and never sent to; smtps:// to it fails the TLS
// handshake.
func TestNoPlainText(t *testing.T) {
	env := mailpittest.Require(t)
	for _, scheme := range []string{"smtp", "smtps"} {
		t.Run(scheme, func(t *testing.T) {
			c := starttls(env)
			u, _ := url.Parse(env.Plain.SMTPURL)
			u.Scheme = scheme
			c.URL = u.String()
			r := start(t, c, Options{})
			n, mail := notice(t)
			if err := r.Notify(n); err != nil {
				t.Fatal(err)
			}
			want := FailureNoSTARTTLS
			if scheme == "smtps" {
				want = FailureTLS
			}
			failed(t, r.result(t), mail, want, 3)
			if got := env.Plain.To(t, mail); len(got) != 0 {
				t.Fatalf("the plain-text server got %d message(s)", len(got))
			}
			if r.backoffs.Load() != 2 {
				t.Fatalf("%d backoffs for 3 attempts", r.backoffs.Load())
			}
		})
	}

	// On 127.0.0.1, where the library would allow AUTH PLAIN without
	// TLS: the credentials are never sent.
	t.Run("no AUTH", func(t *testing.T) {
		var mu sync.Mutex
		var verbs []string
		addr := fakeServer(t, nil, func(_ func(string), verb, _ string) bool {
			mu.Lock()
			defer mu.Unlock()
			verbs = append(verbs, verb)
			return false
		})
		r := start(t, Config{URL: "smtp://" + addr, Username: "notifier", Password: "n0t-in-plain-text", From: from}, Options{Attempts: 1})
		n, mail := notice(t)
		if err := r.Notify(n); err != nil {
			t.Fatal(err)
		}
		failed(t, r.result(t), mail, FailureNoSTARTTLS, 1)
		mu.Lock()
		defer mu.Unlock()
		if len(verbs) == 0 || slices.ContainsFunc(verbs, func(v string) bool { return v != "EHLO" && v != "QUIT" }) {
			t.Fatalf("the plain-text server was sent %q; want EHLO (and QUIT) only", verbs)
		}
	})
}

// TestBadCertificate: a certificate from a CA not trusted (the system's
// roots, or another CA) or for another name is refused, and nothing is
// sent.
func TestBadCertificate(t *testing.T) {
	env := mailpittest.Require(t)
	otherCA, _ := newCA(t)
	localhost := starttls(env)
	u, _ := url.Parse(localhost.URL)
	u.Host = net.JoinHostPort("localhost", u.Port())
	localhost.URL = u.String()
	for name, change := range map[string]func(*Config){
		"system roots": func(c *Config) { c.CAFile = "" },
		"another CA":   func(c *Config) { c.CAFile = otherCA },
		"wrong name":   func(c *Config) { *c = localhost },
		"smtps, another CA": func(c *Config) {
			c.URL, c.CAFile = env.TLS.SMTPURL, otherCA
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := starttls(env)
			change(&c)
			r := start(t, c, Options{Attempts: 1})
			n, mail := notice(t)
			if err := r.Notify(n); err != nil {
				t.Fatal(err)
			}
			failed(t, r.result(t), mail, FailureTLS, 1)
			for _, s := range []mailpittest.Server{env.STARTTLS, env.TLS} {
				if got := s.To(t, mail); len(got) != 0 {
					t.Fatalf("%s got %d message(s)", s.SMTPURL, len(got))
				}
			}
		})
	}
}

// TestAuthentication: wrong credentials, or none where the server wants
// them, fail at once (a 5xx is not tried again), and the password is in
// no error and no log line.
func TestAuthentication(t *testing.T) {
	env := mailpittest.Require(t)
	const wrong = "Wr0ng-Passw0rd-4-SMTP"
	for name, change := range map[string]func(*Config){
		"wrong password": func(c *Config) { c.Password = wrong },
		"wrong user":     func(c *Config) { c.Username = "mallory" },
		"no credentials": func(c *Config) { c.Username, c.Password = "", "" },
	} {
		t.Run(name, func(t *testing.T) {
			c := starttls(env)
			change(&c)
			r := start(t, c, Options{})
			n, mail := notice(t)
			if err := r.Notify(n); err != nil {
				t.Fatal(err)
			}
			res := r.result(t)
			failed(t, res, mail, FailureAuth, 1)
			if got := env.STARTTLS.To(t, mail); len(got) != 0 {
				t.Fatalf("sent without authenticating: %d message(s)", len(got))
			}
			for _, secret := range []string{wrong, env.Password} {
				if strings.Contains(res.Err().Error(), secret) || strings.Contains(r.logs.String(), secret) {
					t.Fatalf("the password is in the error or the logs: %v\n%s", res.Err(), r.logs)
				}
			}
		})
	}
}

// TestConnectionRefused: a server that is not there is tried Attempts
// times, with a backoff between tries, then reported.
func TestConnectionRefused(t *testing.T) {
	c := Config{URL: "smtp://" + closedPort(t), From: from, Helpdesk: helpdesk}
	r := start(t, c, Options{Attempts: 4})
	n, mail := notice(t)
	if err := r.Notify(n); err != nil {
		t.Fatal(err)
	}
	failed(t, r.result(t), mail, FailureConnect, 4)
	if r.backoffs.Load() != 3 {
		t.Fatalf("%d backoffs between 4 attempts", r.backoffs.Load())
	}
	if !strings.Contains(r.logs.String(), `"failure":"connect"`) || strings.Count(r.logs.String(), "notice email attempt failed") != 4 {
		t.Fatalf("logs:\n%s", r.logs)
	}
}

// TestServerErrors runs on the chaos server: a 5xx is final, a 4xx is
// tried again until it passes or the attempts run out.
func TestServerErrors(t *testing.T) {
	env := mailpittest.Require(t)
	chaos := env.Chaos
	t.Cleanup(func() { chaos.SetChaos(t, mailpittest.Chaos{}) })
	c := starttls(env)
	c.URL, c.Username, c.Password = chaos.SMTPURL, "", ""

	t.Run("5xx is final", func(t *testing.T) {
		chaos.SetChaos(t, mailpittest.Chaos{Recipient: mailpittest.Trigger{ErrorCode: 550, Probability: 100}})
		r := start(t, c, Options{})
		n, mail := notice(t)
		if err := r.Notify(n); err != nil {
			t.Fatal(err)
		}
		res := r.result(t)
		failed(t, res, mail, FailureRejected, 1)
		if r.backoffs.Load() != 0 || !strings.Contains(res.Err().Error(), "550") {
			t.Fatalf("%d backoffs; %v", r.backoffs.Load(), res.Err())
		}
	})
	t.Run("4xx every time", func(t *testing.T) {
		chaos.SetChaos(t, mailpittest.Chaos{Sender: mailpittest.Trigger{ErrorCode: 451, Probability: 100}})
		r := start(t, c, Options{})
		n, mail := notice(t)
		if err := r.Notify(n); err != nil {
			t.Fatal(err)
		}
		failed(t, r.result(t), mail, FailureTemporary, 3)
		if got := chaos.To(t, mail); len(got) != 0 {
			t.Fatalf("%d message(s)", len(got))
		}
	})
	t.Run("4xx, then the server recovers", func(t *testing.T) {
		chaos.SetChaos(t, mailpittest.Chaos{Sender: mailpittest.Trigger{ErrorCode: 451, Probability: 100}})
		r := start(t, c, Options{Backoff: func(int) time.Duration {
			chaos.SetChaos(t, mailpittest.Chaos{}) // the server recovers while the sender waits
			return 10 * time.Millisecond
		}})
		n, mail := notice(t)
		if err := r.Notify(n); err != nil {
			t.Fatal(err)
		}
		res := r.result(t)
		if res.Err() != nil || !slices.Equal(res.Sent, []string{mail}) || r.backoffs.Load() != 1 {
			t.Fatalf("result %+v (%v) after %d backoffs", res, res.Err(), r.backoffs.Load())
		}
		chaos.WaitTo(t, mail, 1, 10*time.Second)
		if !strings.Contains(r.logs.String(), `"failure":"temporary"`) {
			t.Fatalf("the failed first attempt is not logged:\n%s", r.logs)
		}
	})
}

// TestNeverBlocks: Notify returns at once while the server hangs; a full
// queue drops the notice with an error; Close gives up at its deadline,
// ends the hanging attempt and reports it; Notify after Close is refused.
func TestNeverBlocks(t *testing.T) {
	c := Config{URL: "smtp://" + hangingServer(t), From: from, Helpdesk: helpdesk}
	r := start(t, c, Options{Queue: 2, Workers: 1, Timeout: time.Minute})
	first, _ := notice(t)
	second, _ := notice(t)
	third, _ := notice(t)
	began := time.Now()
	for _, n := range []Notice{first, second} {
		if err := r.Notify(n); err != nil {
			t.Fatal(err)
		}
	}
	err := r.Notify(third)
	if took := time.Since(began); took > time.Second {
		t.Fatalf("Notify took %s", took)
	}
	if FailureOf(err) != FailureQueueFull || workflow.ErrorCode(err) != workflow.CodeInternal {
		t.Fatalf("a third notice with a queue of 2: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	began = time.Now()
	err = r.Close(ctx)
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("Close took %s with a deadline of 300ms", took)
	}
	if FailureOf(err) != FailureShutdown || !strings.Contains(err.Error(), "2 notice(s)") {
		t.Fatalf("Close: %v", err)
	}
	results := []Result{r.result(t), r.result(t)}
	for _, res := range results {
		if len(res.Failed) != 1 || res.Failed[0].Failure != FailureShutdown {
			t.Fatalf("result %+v", res)
		}
	}
	// One was in its attempt, the other waiting for the one worker.
	if a, b := results[0].Failed[0].Attempts, results[1].Failed[0].Attempts; a+b != 1 {
		t.Fatalf("results %+v: want one in its first attempt, one not tried", results)
	}
	if err := r.Notify(first); FailureOf(err) != FailureClosed {
		t.Fatalf("Notify after Close: %v", err)
	}
}

// TestTimeout: an attempt that takes longer than Timeout is ended and
// reported as such.
func TestTimeout(t *testing.T) {
	c := Config{URL: "smtp://" + hangingServer(t), From: from, Helpdesk: helpdesk}
	r := start(t, c, Options{Attempts: 2, Timeout: 200 * time.Millisecond})
	n, mail := notice(t)
	if err := r.Notify(n); err != nil {
		t.Fatal(err)
	}
	failed(t, r.result(t), mail, FailureTimeout, 2)
}

// TestCloseDrains: Close waits for the notices accepted before it, which
// all arrive.
func TestCloseDrains(t *testing.T) {
	env := mailpittest.Require(t)
	r := start(t, starttls(env), Options{Workers: 2})
	var addrs []string
	for range 6 {
		n, mail := notice(t)
		addrs = append(addrs, mail)
		if err := r.Notify(n); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	began := time.Now()
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Fatalf("Close took %s for 6 notices to a server that answers", took)
	}
	if len(r.results) != len(addrs) {
		t.Fatalf("%d results when Close returned, want %d", len(r.results), len(addrs))
	}
	for range addrs {
		if res := r.result(t); res.Err() != nil {
			t.Fatal(res.Err())
		}
	}
	for _, a := range addrs {
		env.STARTTLS.WaitTo(t, a, 1, 10*time.Second)
	}
}

// TestNotifyRefuses: notices that cannot be sent are refused at once,
// with the reason; nothing is queued for them.
func TestNotifyRefuses(t *testing.T) {
	r := start(t, Config{URL: "smtp://" + closedPort(t), From: from}, Options{})
	for name, change := range map[string]func(*Notice){
		"no address":       func(n *Notice) { n.Mail, n.OtherMailboxes = "", nil },
		"no valid address": func(n *Notice) { n.Mail, n.OtherMailboxes = "alice@corp.example.com\r\nBcc: evil@example.com", nil },
		"invalid notice":   func(n *Notice) { n.Kind = "" },
	} {
		n, _ := notice(t)
		change(&n)
		err := r.Notify(n)
		if FailureOf(err) != FailureInvalid || workflow.ErrorCode(err) != workflow.CodeInternal {
			t.Errorf("%s: %v", name, err)
		}
		if err != nil && strings.ContainsAny(err.Error(), "\r\n") {
			t.Errorf("%s: the error has a raw line break: %q", name, err)
		}
	}
	if len(r.results) != 0 {
		t.Fatal("a refused notice was reported as a result")
	}
}

// TestNewRefusesBadConfig: every problem at once, and no password.
func TestNewRefusesBadConfig(t *testing.T) {
	_, err := New(Config{URL: "smtp://u:Sup3r-Secret@mail.example.com", From: "bot\r\nBcc: x@example.com", Username: "u",
		CAFile: filepath.Join(t.TempDir(), "none.pem")}, Options{})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"must not hold credentials", "From has line breaks", "go together", "cannot read the CA file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "Sup3r-Secret") {
		t.Errorf("the error shows the password: %v", err)
	}
}

// TestNoSecretLeaves: the SMTP password is nowhere in what a sender puts
// out (the email as received, its results, its logs), not even when the
// server echoes it in an error; the headers carry none of the notice's
// free-text values.
func TestNoSecretLeaves(t *testing.T) {
	env := mailpittest.Require(t)
	r := start(t, starttls(env), Options{})
	n, mail := notice(t)
	n.DisplayName, n.ApprovedBy, n.Agent = "Dïsplay-Näme-7Q", "Appröver-Näme-8R", "Agent-Näme-9S"
	if err := r.Notify(n); err != nil {
		t.Fatal(err)
	}
	if res := r.result(t); res.Err() != nil {
		t.Fatal(res.Err())
	}
	got := env.STARTTLS.WaitTo(t, mail, 1, 10*time.Second)
	raw := env.STARTTLS.Raw(t, got[0].ID)
	headers, body, _ := strings.Cut(raw, "\r\n\r\n")
	for _, v := range []string{"7Q", "8R", "9S"} {
		if strings.Contains(headers, v) {
			t.Errorf("a notice value (%s) is in the headers:\n%s", v, headers)
		}
		if !strings.Contains(body, v) {
			t.Errorf("the body lacks %s: the check above would pass for nothing", v)
		}
	}
	if strings.Contains(raw, env.Password) || strings.Contains(r.logs.String(), env.Password) {
		t.Fatal("the SMTP password left the sender")
	}

	// A server that echoes the credentials in its refusal.
	ca, cert := newCA(t)
	const password = "Ech0ed-Passw0rd-5"
	e := start(t, Config{URL: "smtps://" + echoServer(t, cert), Username: "notifier", Password: password, From: from, CAFile: ca}, Options{})
	n, mail = notice(t)
	if err := e.Notify(n); err != nil {
		t.Fatal(err)
	}
	res := e.result(t)
	failed(t, res, mail, FailureAuth, 1)
	if !strings.Contains(res.Err().Error(), "[REDACTED]") {
		t.Fatalf("the echoing server did not echo, or nothing was redacted: %v", res.Err())
	}
	if strings.Contains(res.Err().Error(), password) || strings.Contains(e.logs.String(), password) {
		t.Fatalf("the password is in the error or the logs: %v\n%s", res.Err(), e.logs)
	}
}

// TestTakenIsSent: a message the server took counts as sent even when
// the connection breaks after it (no answer to QUIT), so that it is not
// sent again.
func TestTakenIsSent(t *testing.T) {
	ca, cert := newCA(t)
	addr := fakeServer(t, &cert, func(say func(string), verb, _ string) bool {
		if verb == "QUIT" {
			say("") // hang up without an answer
			return true
		}
		return false
	})
	r := start(t, Config{URL: "smtps://" + addr, From: from, CAFile: ca}, Options{})
	n, mail := notice(t)
	if err := r.Notify(n); err != nil {
		t.Fatal(err)
	}
	if res := r.result(t); res.Err() != nil || !slices.Equal(res.Sent, []string{mail}) || r.backoffs.Load() != 0 {
		t.Fatalf("result %+v (%v) after %d backoffs", res, res.Err(), r.backoffs.Load())
	}
}

// TestConnectionDropped: a server that hangs up in the middle is tried
// again, then reported on one line (the library joins two errors with a
// line break here).
func TestConnectionDropped(t *testing.T) {
	ca, cert := newCA(t)
	addr := fakeServer(t, &cert, func(say func(string), verb, _ string) bool {
		if verb == "NOOP" || verb == "MAIL" {
			say("") // hang up
			return true
		}
		return false
	})
	r := start(t, Config{URL: "smtps://" + addr, From: from, CAFile: ca}, Options{})
	n, mail := notice(t)
	if err := r.Notify(n); err != nil {
		t.Fatal(err)
	}
	failed(t, r.result(t), mail, FailureConnect, 3)
}

func TestDefaultBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{1: 2 * time.Second, 2: 8 * time.Second, 3: 32 * time.Second, 4: 2 * time.Minute, 9: 2 * time.Minute, 0: 2 * time.Minute} {
		for range 20 {
			if got := DefaultBackoff(n); got < want*8/10 || got > want*12/10 {
				t.Fatalf("DefaultBackoff(%d) = %s, want %s ±20%%", n, got, want)
			}
		}
	}
}

// closedPort returns a local address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// hangingServer accepts connections and never says a word.
func hangingServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// echoServer is an smtps server that refuses every AUTH with the
// credentials it was given in its answer, on two lines.
func echoServer(t *testing.T, cert tls.Certificate) string {
	return fakeServer(t, &cert, func(say func(string), verb, arg string) bool {
		if verb != "AUTH" {
			return false
		}
		_, blob, _ := strings.Cut(arg, " ")
		plain, _ := base64.StdEncoding.DecodeString(blob)
		say("535-5.7.8 refused " + strings.ReplaceAll(string(plain), "\x00", " ") + " (" + blob + ")\r\n535 5.7.8 on two lines")
		return true
	})
}

// fakeServer is an smtps server (a plain-text one without cert) that
// offers AUTH PLAIN and takes every message, except that handle may
// answer a command itself (then it returns true) or close the connection
// (say(""): no answer).
func fakeServer(t *testing.T, cert *tls.Certificate, handle func(say func(string), verb, arg string) bool) string {
	t.Helper()
	var l net.Listener
	var err error
	if cert != nil {
		l, err = tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{*cert}})
	} else {
		l, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				in := bufio.NewReader(c)
				closed := false
				say := func(s string) {
					if s == "" {
						closed = true
						c.Close()
						return
					}
					c.Write([]byte(s + "\r\n"))
				}
				say("220 fake ESMTP")
				for !closed {
					line, err := in.ReadString('\n')
					if err != nil {
						return
					}
					verb, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
					verb = strings.ToUpper(verb)
					if handle(say, verb, arg) {
						continue
					}
					switch verb {
					case "EHLO", "HELO":
						say("250-fake\r\n250 AUTH PLAIN")
					case "AUTH":
						say("235 2.7.0 ok")
					case "DATA":
						say("354 go on")
						for {
							l, err := in.ReadString('\n')
							if err != nil {
								return
							}
							if l == ".\r\n" {
								break
							}
						}
						say("250 2.0.0 taken")
					case "QUIT":
						say("221 bye")
						return
					default:
						say("250 ok")
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

// newCA makes a CA and a certificate it signs for 127.0.0.1, and returns
// the CA's PEM file and the certificate.
func newCA(t *testing.T) (string, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "another test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key}
}

// syncBuffer is a log sink safe for the sender's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
