package mailnotice

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base32"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/example/resetbot/workflow"
)

// Config is how to reach the SMTP server and what every notice says
// besides its Notice. Load it from the bot's configuration (SMTP_URL,
// SMTP_USERNAME, SMTP_PASSWORD, SMTP_FROM, SMTP_CA_FILE, HELPDESK_CONTACT).
type Config struct {
	// URL is smtp://host[:port] (port 587 by default; the connection
	// must be upgraded with STARTTLS, or nothing is sent) or
	// smtps://host[:port] (465 by default; TLS from the first byte).
	URL      string
	Username string // "" to send without authenticating (a relay that trusts this host)
	Password string
	From     string // one address, bare or with a name: Password reset <resetbot@example.com>
	CAFile   string // PEM bundle that signs the server's certificate; "" for the system's roots
	Helpdesk string // how to reach helpdesk, shown in every notice
}

// endpoint is a parsed SMTP URL.
type endpoint struct {
	host        string
	port        int
	implicitTLS bool // smtps://
}

// ValidateURL checks an SMTP URL as Config.URL takes it. Its errors
// never repeat the URL (which might hold a password).
func ValidateURL(raw string) error {
	_, err := parseURL(raw)
	return err
}

func parseURL(raw string) (endpoint, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return endpoint{}, errors.New("not a URL like smtp://mail.example.com:587 or smtps://mail.example.com:465")
	}
	var e endpoint
	switch u.Scheme {
	case "smtp":
		e.port = 587
	case "smtps":
		e.port, e.implicitTLS = 465, true
	default:
		return endpoint{}, errors.New("must start with smtp:// (STARTTLS) or smtps:// (TLS); plain-text SMTP is not offered")
	}
	switch {
	case u.User != nil:
		return endpoint{}, errors.New("must not hold credentials: set SMTP_USERNAME and SMTP_PASSWORD (or SMTP_PASSWORD_FILE)")
	case u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return endpoint{}, errors.New("must be just a scheme, a host and a port, like smtp://mail.example.com:587")
	case u.Hostname() == "":
		return endpoint{}, errors.New("has no host: write smtp://mail.example.com:587 or smtps://mail.example.com:465")
	}
	e.host = u.Hostname()
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return endpoint{}, errors.New("has a port that is not a number from 1 to 65535")
		}
		e.port = n
	}
	return e, nil
}

// transport sends messages over one SMTP connection per attempt.
type transport struct {
	ep       endpoint
	tls      *tls.Config
	username string
	password string
	from     string // as configured, maybe with a name
	fromAddr string // the bare address: the envelope sender and the Message-ID's domain
	helpdesk string
	timeout  time.Duration
}

func newTransport(c Config, timeout time.Duration) (*transport, error) {
	var problems []string
	ep, err := parseURL(c.URL)
	if err != nil {
		problems = append(problems, "SMTP URL "+err.Error())
	}
	fromAddr, err := ParseFrom(c.From)
	if err != nil {
		problems = append(problems, "From "+err.Error())
	}
	if (c.Username == "") != (c.Password == "") {
		problems = append(problems, "a username and a password go together (or neither)")
	}
	var roots *x509.CertPool // nil: the system's
	if c.CAFile != "" {
		if roots, err = LoadCAFile(c.CAFile); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		return nil, workflow.Errorf(workflow.CodeInternal, "mail notices: %s", strings.Join(problems, "; "))
	}
	return &transport{
		ep:       ep,
		tls:      &tls.Config{ServerName: ep.host, RootCAs: roots, MinVersion: tls.VersionTLS12},
		username: c.Username,
		password: c.Password,
		from:     c.From,
		fromAddr: fromAddr,
		helpdesk: c.Helpdesk,
		timeout:  timeout,
	}, nil
}

// LoadCAFile reads a PEM bundle of CA certificates.
func LoadCAFile(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the CA file %s: %v", path, errors.Unwrap(err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("the CA file %s holds no PEM certificate", path)
	}
	return pool, nil
}

// message builds the email of content m for one recipient.
func (t *transport) message(to string, m Message) (*gomail.Msg, error) {
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	if err := msg.From(t.from); err != nil {
		return nil, err
	}
	if err := msg.To(to); err != nil {
		return nil, err
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	msg.SetMessageIDWithValue(randomID() + "@" + domainOf(t.fromAddr))
	// RFC 3834, and Exchange's equivalent: no out-of-office answers.
	msg.SetGenHeader(gomail.Header("Auto-Submitted"), "auto-generated")
	msg.SetGenHeader(gomail.HeaderXAutoResponseSuppress, "All")
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	return msg, nil
}

// send makes one attempt to send m to each of to, over one connection,
// and returns the error for each address (nil when the server took it).
// ctx ends the attempt wherever it is: the connection is closed.
func (t *transport) send(ctx context.Context, to []string, m Message) []error {
	errs := make([]error, len(to))
	msgs := make([]*gomail.Msg, 0, len(to))
	index := make([]int, 0, len(to)) // msgs[i] is for to[index[i]]
	for i, addr := range to {
		msg, err := t.message(addr, m)
		if err != nil {
			errs[i] = err
			continue
		}
		msgs = append(msgs, msg)
		index = append(index, i)
	}
	if len(msgs) == 0 {
		return errs
	}
	opts := []gomail.Option{
		gomail.WithPort(t.ep.port),
		gomail.WithTimeout(t.timeout),
		gomail.WithTLSConfig(t.tls),
		gomail.WithDialContextFunc(t.dialer(ctx)),
		gomail.WithTLSPolicy(gomail.TLSMandatory),
	}
	if t.ep.implicitTLS {
		opts = append(opts, gomail.WithSSL()) // no STARTTLS on a connection dial made TLS already
	}
	if t.username != "" {
		// Opportunistic: the first of these the server offers, else the
		// library's pick of the others. AUTH happens only after TLS.
		opts = append(opts, gomail.WithUsername(t.username), gomail.WithPassword(t.password),
			gomail.WithOpportunisticSMTPAuth(gomail.SMTPAuthSCRAMSHA256PLUS, gomail.SMTPAuthSCRAMSHA256, gomail.SMTPAuthPlain, gomail.SMTPAuthLogin))
	}
	client, err := gomail.NewClient(t.ep.host, opts...)
	if err == nil {
		err = client.DialAndSendWithContext(ctx, msgs...)
	}
	for j, msg := range msgs {
		switch {
		case msg.HasSendError():
			errs[index[j]] = msg.SendError()
		case err != nil && !sentAll(msgs, err):
			// The connection failed before or outside the messages: every
			// one of them failed with it.
			errs[index[j]] = err
		}
	}
	return errs
}

// sentAll reports whether err came after every message was sent without
// a message error of its own (closing the connection failed): the server
// has them all.
func sentAll(msgs []*gomail.Msg, err error) bool {
	for _, m := range msgs {
		if m.HasSendError() {
			return false
		}
	}
	return strings.HasPrefix(err.Error(), "failed to close connection")
}

// dialer returns the function that opens the connection of attempt:
// TCP, and TLS at once for smtps. The connection is closed when attempt
// ends (its timeout, or Close giving up), which ends the attempt
// wherever it is; the library's own context only bounds the dial.
func (t *transport) dialer(attempt context.Context) gomail.DialContextFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		var conn net.Conn
		var err error
		if t.ep.implicitTLS {
			conn, err = (&tls.Dialer{NetDialer: &d, Config: t.tls}).DialContext(ctx, network, addr)
		} else {
			conn, err = d.DialContext(ctx, network, addr)
		}
		if err != nil {
			return nil, err
		}
		context.AfterFunc(attempt, func() { conn.Close() })
		return conn, nil
	}
}

// Failure says why a notice was not sent to an address. The values are
// stable: the audit and the tests compare them.
type Failure string

// The failures.
const (
	FailureConnect    Failure = "connect"     // the server could not be reached, or the connection broke
	FailureTLS        Failure = "tls"         // the TLS handshake failed: an untrusted or wrong certificate, or no TLS at all on smtps://
	FailureNoSTARTTLS Failure = "no_starttls" // the server does not offer STARTTLS: nothing was sent in plain text
	FailureAuth       Failure = "auth"        // the server refused the username and password, or offers no AUTH
	FailureRejected   Failure = "rejected"    // the server answered 5xx: permanent, not tried again
	FailureTemporary  Failure = "temporary"   // the server answered 4xx on every attempt
	FailureTimeout    Failure = "timeout"     // an attempt took longer than its time
	FailureShutdown   Failure = "shutdown"    // the sender closed before the notice went out
	FailureInvalid    Failure = "invalid"     // the notice cannot be sent as it is (Notice.Validate, no valid address)
	FailureQueueFull  Failure = "queue_full"  // too many notices waiting: this one was dropped
	FailureClosed     Failure = "closed"      // Notify after Close
	FailureOther      Failure = "other"
)

// classify names why err happened and whether another attempt may work:
// only a 5xx answer is final (RFC 5321 asks clients not to repeat it);
// anything else (a broken connection, a refused certificate, a missing
// STARTTLS, a 4xx) may be a passing state of the network or server.
func classify(err error) (f Failure, final bool) {
	code := 0
	var se *gomail.SendError
	var te *textproto.Error
	switch {
	case errors.As(err, &se) && se.ErrorCode() > 0:
		code = se.ErrorCode()
	case errors.As(err, &te):
		code = te.Code
	}
	msg := err.Error()
	// 530: authentication required; 535: credentials refused (RFC 4954).
	auth := strings.Contains(strings.ToLower(msg), "smtp auth") || code == 530 || code == 535
	switch {
	case auth && code >= 500:
		return FailureAuth, true
	case auth && code == 0:
		return FailureAuth, false
	case code >= 500:
		return FailureRejected, true
	case code >= 400:
		return FailureTemporary, false
	case strings.Contains(msg, "does not support STARTTLS"):
		return FailureNoSTARTTLS, false
	case isTLSError(err):
		return FailureTLS, false
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return FailureTimeout, false
	case errors.Is(err, context.Canceled):
		return FailureShutdown, false
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, net.ErrClosed) || strings.Contains(msg, "EOF") {
		return FailureConnect, false
	}
	return FailureOther, false
}

func isTLSError(err error) bool {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	var rh tls.RecordHeaderError
	var ae tls.AlertError
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci) ||
		errors.As(err, &rh) || errors.As(err, &ae) || strings.Contains(err.Error(), "tls: ")
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// randomID returns 128 random bits for a Message-ID.
func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

func domainOf(addr string) string {
	_, d, _ := strings.Cut(addr, "@")
	return d
}
