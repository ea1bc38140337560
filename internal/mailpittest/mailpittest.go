// Package mailpittest gives tests real SMTP servers: the Mailpit servers
// that scripts/mailpit.sh starts, and what each one received, read through
// its HTTP API.
//
//	scripts/mailpit.sh start /tmp/resetbot-mailpit
//	MAILPIT_ENV_FILE=/tmp/resetbot-mailpit/env go test ./...
//
// Require reads the env file the script writes and checks that every
// server answers; without it a test is skipped, or fails when $CI is set.
// Servers are shared by every test and package: a test writes to
// addresses of its own (Unique) and reads back only those.
package mailpittest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/example/resetbot/internal/dotenv"
)

// EnvFileVar names the environment variable that holds the path of the env
// file scripts/mailpit.sh writes.
const EnvFileVar = "MAILPIT_ENV_FILE"

// Env is the set of Mailpit servers scripts/mailpit.sh started. Their
// certificate is for 127.0.0.1 and CertName (not localhost), signed by
// CAFile.
type Env struct {
	STARTTLS Server // STARTTLS required, authentication (Username, Password) required
	TLS      Server // smtps: TLS from the first byte, authentication required
	Plain    Server // no TLS at all, and AUTH offered in plain text
	Chaos    Server // STARTTLS required, no authentication; SetChaos makes it fail
	CAFile   string
	Username string
	Password string
}

// CertName is the DNS name in the servers' certificate.
const CertName = "mailpit.test"

// Server is one Mailpit: where to send, and its API.
type Server struct {
	SMTPURL string // smtp://127.0.0.1:port or smtps://127.0.0.1:port
	API     string // http://127.0.0.1:port
}

var (
	cacheMu sync.Mutex
	cache   = map[string]Env{} // env file path -> an Env that answered
)

// Require returns the servers described by the file named in
// $MAILPIT_ENV_FILE. With that unset or unreadable, or a server not
// answering: tb.Skip on a laptop, tb.Fatal when $CI is set (CI must never
// skip).
func Require(tb testing.TB) *Env {
	tb.Helper()
	path := os.Getenv(EnvFileVar)
	unavailable := func(format string, args ...any) {
		tb.Helper()
		msg := "mailpittest: " + fmt.Sprintf(format, args...) +
			" (run `scripts/mailpit.sh start /tmp/resetbot-mailpit` and set " + EnvFileVar + "=/tmp/resetbot-mailpit/env)"
		if os.Getenv("CI") != "" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	if path == "" {
		unavailable("%s is not set", EnvFileVar)
		return nil
	}
	cacheMu.Lock()
	cached, ok := cache[path]
	cacheMu.Unlock()
	if ok {
		e := cached
		return &e
	}
	e, err := LoadEnv(path)
	if err != nil {
		unavailable("%v", err)
		return nil
	}
	for _, s := range []Server{e.STARTTLS, e.TLS, e.Plain, e.Chaos} {
		if _, err := s.get("/api/v1/info"); err != nil {
			unavailable("Mailpit at %s does not answer: %v", s.API, err)
			return nil
		}
	}
	cacheMu.Lock()
	cache[path] = *e
	cacheMu.Unlock()
	return e
}

// LoadEnv reads an env file written by scripts/mailpit.sh, in the bot's
// .env dialect (internal/dotenv).
func LoadEnv(path string) (*Env, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	vars, err := dotenv.Parse(data, nil)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	e := &Env{
		STARTTLS: Server{SMTPURL: vars["MAILPIT_SMTP_URL"], API: vars["MAILPIT_SMTP_API"]},
		TLS:      Server{SMTPURL: vars["MAILPIT_SMTPS_URL"], API: vars["MAILPIT_SMTPS_API"]},
		Plain:    Server{SMTPURL: vars["MAILPIT_PLAIN_URL"], API: vars["MAILPIT_PLAIN_API"]},
		Chaos:    Server{SMTPURL: vars["MAILPIT_CHAOS_URL"], API: vars["MAILPIT_CHAOS_API"]},
		CAFile:   vars["MAILPIT_CA_FILE"],
		Username: vars["MAILPIT_USERNAME"],
		Password: vars["MAILPIT_PASSWORD"],
	}
	var missing []string
	for _, k := range []string{
		"MAILPIT_SMTP_URL", "MAILPIT_SMTP_API", "MAILPIT_SMTPS_URL", "MAILPIT_SMTPS_API",
		"MAILPIT_PLAIN_URL", "MAILPIT_PLAIN_API", "MAILPIT_CHAOS_URL", "MAILPIT_CHAOS_API",
		"MAILPIT_CA_FILE", "MAILPIT_USERNAME", "MAILPIT_PASSWORD",
	} {
		if vars[k] == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: %s missing", path, strings.Join(missing, ", "))
	}
	return e, nil
}

// Unique returns an address no other test uses: prefix, random hex, @domain.
func Unique(prefix, domain string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b) + "@" + domain
}

// Address is a mailbox as Mailpit shows it.
type Address struct {
	Name    string
	Address string
}

// Message is a received message as Mailpit lists it.
type Message struct {
	ID        string
	MessageID string
	From      Address
	To        []Address
	Cc        []Address
	Bcc       []Address
	ReplyTo   []Address
	Subject   string
	Username  string // the SMTP user that sent it; "" without authentication
	Created   time.Time
}

// Recipients returns every To, Cc and Bcc address of m.
func (m Message) Recipients() []string {
	var out []string
	for _, list := range [][]Address{m.To, m.Cc, m.Bcc} {
		for _, a := range list {
			out = append(out, a.Address)
		}
	}
	return out
}

// Detail is one message in full, as Mailpit parsed it.
type Detail struct {
	Message
	Text string
	HTML string
}

// Messages returns every message the server holds, newest first, each
// once: a message that arrives while the pages are read moves the older
// ones down a place, so a page may repeat the previous page's last.
func (s Server) Messages(tb testing.TB) []Message {
	tb.Helper()
	var out []Message
	seen := map[string]bool{}
	for start := 0; ; {
		var page struct {
			Total    int
			Messages []Message
		}
		s.getJSON(tb, fmt.Sprintf("/api/v1/messages?start=%d&limit=500", start), &page)
		for _, m := range page.Messages {
			if !seen[m.ID] {
				seen[m.ID] = true
				out = append(out, m)
			}
		}
		start += len(page.Messages)
		if len(page.Messages) == 0 || start >= page.Total {
			return out
		}
	}
}

// To returns the messages that have addr (compared ignoring case) among
// their recipients.
func (s Server) To(tb testing.TB, addr string) []Message {
	tb.Helper()
	var out []Message
	for _, m := range s.Messages(tb) {
		if slices.ContainsFunc(m.Recipients(), func(a string) bool { return strings.EqualFold(a, addr) }) {
			out = append(out, m)
		}
	}
	return out
}

// WaitTo waits up to timeout for n messages to addr and returns them; it
// fails the test when fewer arrive.
func (s Server) WaitTo(tb testing.TB, addr string, n int, timeout time.Duration) []Message {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := s.To(tb, addr)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			tb.Fatalf("mailpittest: %d message(s) to %s at %s after %s, want %d", len(got), addr, s.SMTPURL, timeout, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Detail returns message id in full.
func (s Server) Detail(tb testing.TB, id string) Detail {
	tb.Helper()
	var d Detail
	s.getJSON(tb, "/api/v1/message/"+url.PathEscape(id), &d)
	return d
}

// Raw returns message id as the server received it: headers and body.
func (s Server) Raw(tb testing.TB, id string) string {
	tb.Helper()
	b, err := s.get("/api/v1/message/" + url.PathEscape(id) + "/raw")
	if err != nil {
		tb.Fatalf("mailpittest: %v", err)
	}
	return string(b)
}

// Trigger makes one SMTP step fail: ErrorCode (400-599) with
// Probability percent.
type Trigger struct {
	ErrorCode   int
	Probability int
}

// Chaos is what the chaos server fails: MAIL FROM (Sender), RCPT TO
// (Recipient) or AUTH (Authentication). The zero value fails nothing.
type Chaos struct {
	Sender         Trigger `json:",omitzero"`
	Recipient      Trigger `json:",omitzero"`
	Authentication Trigger `json:",omitzero"`
}

// SetChaos sets the triggers of a server started with chaos on (Env.Chaos)
// until the next SetChaos; tests that use it must not run in parallel
// with each other.
func (s Server) SetChaos(tb testing.TB, c Chaos) {
	tb.Helper()
	body, _ := json.Marshal(c)
	req, err := http.NewRequest(http.MethodPut, s.API+"/api/v1/chaos", bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatalf("mailpittest: set chaos: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		tb.Fatalf("mailpittest: set chaos: %s: %s", resp.Status, b)
	}
}

var client = &http.Client{Timeout: 10 * time.Second}

func (s Server) get(path string) ([]byte, error) {
	resp, err := client.Get(s.API + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s%s: %s: %s", s.API, path, resp.Status, b)
	}
	return b, nil
}

func (s Server) getJSON(tb testing.TB, path string, v any) {
	tb.Helper()
	b, err := s.get(path)
	if err != nil {
		tb.Fatalf("mailpittest: %v", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		tb.Fatalf("mailpittest: GET %s: %v", path, err)
	}
}
