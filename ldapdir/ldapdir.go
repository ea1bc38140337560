// Package ldapdir reads Active Directory over LDAP (LDAPS or StartTLS, as a
// read-only service account): it implements accounts.Lookup. Users are
// searched under the base DN; protected groups are resolved by identity in
// the whole domain and membership is read from tokenGroups (groups.go).
//
// One *ldap.Conn is shared by every caller (go-ldap multiplexes concurrent
// operations on it). It is dialled when first needed and again after a
// network-level failure, and every operation runs under the caller's
// context and the configured timeout, so that a hung server cannot hang the
// bot.
package ldapdir

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/example/resetbot/accounts"
	"github.com/example/resetbot/workflow"
)

// DefaultTimeout bounds each operation, dialling included, when
// Options.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// groupCacheTTL is how long the resolved protected groups (the domain's
// SIDs, the groups' SIDs and DNs) are reused before they are looked up
// again.
const groupCacheTTL = 5 * time.Minute

// Options configures a Client. URL, BindDN, BindPassword and BaseDN are
// required.
type Options struct {
	URL             string        // ldaps://host:636, or ldap://host:389 which is upgraded with StartTLS
	Insecure        bool          // allow ldap:// WITHOUT StartTLS (plain text); the caller logs a warning
	BindDN          string        // read-only service account
	BindPassword    string        // never logged nor put in an error
	BaseDN          string        // where users are searched (subtree); protected groups are searched in the whole domain
	CAFile          string        // PEM bundle; "" = system roots
	ProtectedGroups []string      // PROTECTED_GROUPS: each a cn or sAMAccountName, a DN, or a SID; added to the built-in and AWS delegated groups, resolved and cached (5 min)
	AllowedOUs      []string      // DNs; empty = any
	Timeout         time.Duration // per operation incl. dial; default 5s
	Log             *slog.Logger  // nil: discard
}

// Client is an LDAP directory reader. It is safe for concurrent use.
type Client struct {
	server     string // scheme://host:port, for messages (never credentials)
	addr       string // host:port
	startTLS   bool   // ldap:// upgraded with StartTLS
	tls        *tls.Config
	bindDN     string
	bindPW     string
	baseDN     string
	groupRefs  []groupRef
	allowedOUs []*ldap.DN
	timeout    time.Duration
	log        *slog.Logger
	now        func() time.Time // for the group cache; tests move it

	dialing chan struct{} // a one-slot semaphore: one dial at a time, abandoned with ctx

	mu     sync.Mutex // guards conn and closed
	conn   *ldap.Conn
	closed bool

	groupsMu      sync.Mutex // guards groups, groupsExpiry, missingLogged
	groups        ProtectedGroups
	groupsExpiry  time.Time
	missingLogged map[string]bool

	policyMu     sync.Mutex // guards policy and policyExpiry
	policy       lockoutPolicy
	policyExpiry time.Time

	noticeMu sync.Mutex // guards noticed
	noticed  map[string]bool

	// beforeWrite, when set (by tests), runs between Disable's read and
	// its write.
	beforeWrite func()
}

var _ accounts.Lookup = (*Client)(nil)

// Problem is one thing wrong with Options, in the words of the setting
// that carries it (LDAP_URL, LDAP_BIND_DN, ...).
type Problem struct {
	Setting string // the environment variable, e.g. "LDAP_BASE_DN"
	Text    string // what is wrong, for the operator; never the password
}

func (p Problem) String() string { return p.Text }

// Problems returns everything wrong with o: the one check of the LDAP
// settings, which config runs at start-up (so that every problem of the
// configuration is reported at once) and New runs again. It reads the CA
// file; it does not dial.
func (o Options) Problems() []Problem {
	var out []Problem
	bad := func(setting, format string, args ...any) {
		out = append(out, Problem{setting, fmt.Sprintf(format, args...)})
	}
	parseURL(o.URL, o.Insecure, bad)
	if _, err := loadCA(o.CAFile); err != nil {
		bad("LDAP_CA_FILE", "%v", err)
	}
	if strings.TrimSpace(o.BindDN) == "" {
		bad("LDAP_BIND_DN", "LDAP_BIND_DN is required with LDAP_URL: the DN of a read-only service account")
	}
	if o.BindPassword == "" {
		bad("LDAP_BIND_PASSWORD", "LDAP_BIND_PASSWORD (or LDAP_BIND_PASSWORD_FILE) is required with LDAP_URL")
	}
	switch base := strings.TrimSpace(o.BaseDN); {
	case base == "":
		bad("LDAP_BASE_DN", "LDAP_BASE_DN is required with LDAP_URL: a DN like DC=corp,DC=example,DC=com where users and groups are searched")
	case !IsDN(base):
		bad("LDAP_BASE_DN", "LDAP_BASE_DN %q is not a DN like DC=corp,DC=example,DC=com", o.BaseDN)
	}
	for _, ou := range o.AllowedOUs {
		if !IsDN(strings.TrimSpace(ou)) {
			bad("ALLOWED_OUS", "ALLOWED_OUS entry %q is not a DN like OU=Users,OU=CORP,DC=corp,DC=example,DC=com (separate entries with ;)", ou)
		}
	}
	for _, g := range o.ProtectedGroups {
		if g = strings.TrimSpace(g); g == "" {
			continue
		}
		if _, err := parseGroupRef(g); err != nil {
			bad("PROTECTED_GROUPS", "%v", err)
		}
	}
	if o.Timeout < 0 {
		bad("LDAP_TIMEOUT", "LDAP_TIMEOUT must be longer than zero, not %s", o.Timeout)
	}
	return out
}

// IsDN reports whether v is a DN whose every comma-separated part is an
// attribute=value pair (ldap.ParseDN alone takes "Users" for a DN).
func IsDN(v string) bool {
	dn, err := ldap.ParseDN(v)
	if err != nil || len(dn.RDNs) == 0 {
		return false
	}
	for _, part := range strings.Split(v, ",") {
		if !strings.Contains(part, "=") {
			return false
		}
	}
	return true
}

// New checks o (Problems) and returns a Client; it does not dial. Every
// problem is reported at once in one *workflow.Error with code
// workflow.CodeLookupUnavailable.
func New(o Options) (*Client, error) {
	if ps := o.Problems(); len(ps) > 0 {
		texts := make([]string, len(ps))
		for i, p := range ps {
			texts[i] = p.Text
		}
		return nil, workflow.Errorf(workflow.CodeLookupUnavailable, "LDAP options: %s", strings.Join(texts, "; "))
	}
	c := &Client{
		bindDN:        o.BindDN,
		bindPW:        o.BindPassword,
		baseDN:        o.BaseDN,
		timeout:       cmp.Or(o.Timeout, DefaultTimeout),
		log:           o.Log,
		now:           time.Now,
		dialing:       make(chan struct{}, 1),
		missingLogged: map[string]bool{},
		noticed:       map[string]bool{},
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	u := parseURL(o.URL, o.Insecure, func(string, string, ...any) {})
	c.addr, c.server, c.startTLS = u.addr, u.server, u.startTLS
	pool, _ := loadCA(o.CAFile)
	c.tls = &tls.Config{ServerName: u.host, RootCAs: pool, MinVersion: tls.VersionTLS12}
	for _, ou := range o.AllowedOUs {
		dn, _ := ldap.ParseDN(strings.TrimSpace(ou))
		c.allowedOUs = append(c.allowedOUs, dn)
	}
	for _, g := range o.ProtectedGroups {
		if g = strings.TrimSpace(g); g != "" {
			r, _ := parseGroupRef(g)
			c.groupRefs = append(c.groupRefs, r)
		}
	}
	return c, nil
}

// server is where LDAP_URL points.
type server struct {
	host, addr, server string // host name (for the certificate), host:port, scheme://host:port (for messages)
	startTLS           bool   // ldap:// upgraded with StartTLS
}

// parseURL reads raw, an LDAP_URL; problems go to bad.
func parseURL(raw string, insecure bool, bad func(setting, format string, args ...any)) server {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || raw == "" {
		bad("LDAP_URL", "LDAP_URL %q must be a URL like ldaps://dc.example.com:636", raw)
		return server{}
	}
	var s server
	port := ""
	switch u.Scheme {
	case "ldaps":
		port = ldap.DefaultLdapsPort
		if insecure {
			bad("LDAP_INSECURE", "LDAP_INSECURE=true only applies to ldap:// URLs; remove it for ldaps://")
		}
	case "ldap":
		port = ldap.DefaultLdapPort
		s.startTLS = !insecure
	default:
		bad("LDAP_URL", "LDAP_URL %q must be ldaps://host:636, or ldap://host:389 (upgraded with StartTLS): the scheme must be ldaps or ldap", u.Redacted())
		return server{}
	}
	if u.User != nil {
		bad("LDAP_URL", "LDAP_URL must not hold credentials (use LDAP_BIND_DN and LDAP_BIND_PASSWORD)")
	}
	if u.Hostname() == "" {
		bad("LDAP_URL", "LDAP_URL %q has no host", u.Redacted())
		return server{}
	}
	if u.Port() != "" {
		port = u.Port()
	}
	s.host, s.addr = u.Hostname(), net.JoinHostPort(u.Hostname(), port)
	s.server = u.Scheme + "://" + s.addr
	return s
}

// loadCA returns the certificates in the PEM file path, or nil (the system
// roots) when path is empty.
func loadCA(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("LDAP_CA_FILE: cannot read %s: %v", path, cmp.Or(errors.Unwrap(err), err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("LDAP_CA_FILE %s holds no PEM certificate", path)
	}
	return pool, nil
}

// Close closes the shared connection; later operations fail with
// workflow.CodeLookupUnavailable. It returns nil.
func (c *Client) Close() error {
	c.mu.Lock()
	conn := c.conn
	c.conn, c.closed = nil, true
	c.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
	return nil
}
