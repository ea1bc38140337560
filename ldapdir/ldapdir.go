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
	"crypto/tls"
	"crypto/x509"
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

// New checks o and returns a Client; it does not dial. Every problem with
// o (URL scheme or host, missing bind DN, password or base DN, unreadable
// or unparsable CA file, a base DN or allowed OU that is not a DN, a
// protected group entry that looks like a SID or DN and is not one, a
// negative timeout) is reported at once in one *workflow.Error with code
// workflow.CodeLookupUnavailable.
func New(o Options) (*Client, error) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	c := &Client{
		bindDN:        o.BindDN,
		bindPW:        o.BindPassword,
		baseDN:        o.BaseDN,
		timeout:       o.Timeout,
		log:           o.Log,
		now:           time.Now,
		dialing:       make(chan struct{}, 1),
		missingLogged: map[string]bool{},
		noticed:       map[string]bool{},
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	} else if c.timeout < 0 {
		bad("timeout %s is negative", o.Timeout)
	}
	host := c.parseURL(o.URL, o.Insecure, bad)
	pool, err := loadCA(o.CAFile)
	if err != nil {
		bad("%v", err)
	}
	c.tls = &tls.Config{ServerName: host, RootCAs: pool, MinVersion: tls.VersionTLS12}
	if strings.TrimSpace(o.BindDN) == "" {
		bad("LDAP_BIND_DN is empty")
	}
	if o.BindPassword == "" {
		bad("LDAP_BIND_PASSWORD is empty")
	}
	if strings.TrimSpace(o.BaseDN) == "" {
		bad("LDAP_BASE_DN is empty")
	} else if _, err := ldap.ParseDN(o.BaseDN); err != nil {
		bad("LDAP_BASE_DN %q is not a DN: %v", o.BaseDN, err)
	}
	for _, ou := range o.AllowedOUs {
		dn, err := ldap.ParseDN(strings.TrimSpace(ou))
		if err != nil || len(dn.RDNs) == 0 {
			bad("allowed OU %q is not a DN", ou)
			continue
		}
		c.allowedOUs = append(c.allowedOUs, dn)
	}
	for _, g := range o.ProtectedGroups {
		if g = strings.TrimSpace(g); g == "" {
			continue
		}
		r, err := parseGroupRef(g)
		if err != nil {
			bad("%v", err)
			continue
		}
		c.groupRefs = append(c.groupRefs, r)
	}
	if len(problems) > 0 {
		return nil, workflow.Errorf(workflow.CodeLookupUnavailable, "LDAP options: %s", strings.Join(problems, "; "))
	}
	return c, nil
}

// parseURL sets server, addr and startTLS from raw and returns the host
// name to verify the certificate against; problems go to bad.
func (c *Client) parseURL(raw string, insecure bool, bad func(string, ...any)) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || raw == "" {
		bad("LDAP_URL %q is not a URL like ldaps://dc.example.com:636", raw)
		return ""
	}
	port := ""
	switch u.Scheme {
	case "ldaps":
		port = ldap.DefaultLdapsPort
	case "ldap":
		port = ldap.DefaultLdapPort
		c.startTLS = !insecure
	default:
		bad("LDAP_URL %q: the scheme must be ldaps:// or ldap://", u.Redacted())
		return ""
	}
	if u.User != nil {
		bad("LDAP_URL must not hold credentials (use LDAP_BIND_DN and LDAP_BIND_PASSWORD)")
	}
	if u.Hostname() == "" {
		bad("LDAP_URL %q has no host", u.Redacted())
		return ""
	}
	if u.Port() != "" {
		port = u.Port()
	}
	c.addr = net.JoinHostPort(u.Hostname(), port)
	c.server = u.Scheme + "://" + c.addr
	return u.Hostname()
}

// loadCA returns the certificates in the PEM file path, or nil (the system
// roots) when path is empty.
func loadCA(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("LDAP_CA_FILE: %v", err)
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
