package ldapdir

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/example/resetbot/accounts"
	"github.com/example/resetbot/internal/sambatest"
	"github.com/example/resetbot/workflow"
)

// lockedBuffer collects the client's debug log.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// baseOptions are the options of a client for env as the service account.
func baseOptions(env *sambatest.Env) Options {
	return Options{
		URL:             env.LDAPSURL,
		BindDN:          env.BindDN,
		BindPassword:    env.BindPassword,
		BaseDN:          env.BaseDN,
		CAFile:          env.CAFile,
		ProtectedGroups: []string{"AWS Delegated Administrators", sambatest.GroupDomainAdmins},
		Timeout:         5 * time.Second,
	}
}

// newClient returns a client with o (after logging at debug into the
// returned buffer); at cleanup it is closed and its log is checked for
// passwords.
func newClient(t *testing.T, o Options) (*Client, *lockedBuffer) {
	t.Helper()
	logs := &lockedBuffer{}
	o.Log = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		c.Close()
		if o.BindPassword != "" && strings.Contains(logs.String(), o.BindPassword) {
			t.Errorf("the log holds the bind password:\n%s", logs)
		}
	})
	return c, logs
}

// requireCode fails unless err is a *workflow.Error with
// CodeLookupUnavailable whose text has none of secrets.
func requireCode(t *testing.T, err error, secrets ...string) *workflow.Error {
	t.Helper()
	var we *workflow.Error
	if !errors.As(err, &we) || we.Code != workflow.CodeLookupUnavailable {
		t.Fatalf("error = %v (%T), want a *workflow.Error with code %s", err, err, workflow.CodeLookupUnavailable)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Fatalf("error text holds a secret: %v", err)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line: %q", err)
	}
	return we
}

func TestNewValidates(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := Options{URL: "ldaps://dc.example.com", BindDN: "CN=svc,DC=x", BindPassword: "Secret-Pw-9", BaseDN: "DC=x"}
	if c, err := New(good); err != nil {
		t.Fatalf("New(good) = %v", err)
	} else if c.addr != "dc.example.com:636" || c.timeout != DefaultTimeout || c.startTLS {
		t.Errorf("addr %q timeout %s startTLS %v", c.addr, c.timeout, c.startTLS)
	}
	for _, tc := range []struct {
		name string
		edit func(*Options)
		want []string
	}{
		{"scheme", func(o *Options) { o.URL = "http://dc:389" }, []string{"scheme"}},
		{"no host", func(o *Options) { o.URL = "ldaps://" }, []string{"no host"}},
		{"credentials in URL", func(o *Options) { o.URL = "ldap://u:Secret-Pw-9@dc" }, []string{"credentials"}},
		{"missing CA", func(o *Options) { o.CAFile = filepath.Join(dir, "nope.pem") }, []string{"LDAP_CA_FILE"}},
		{"CA not PEM", func(o *Options) { o.CAFile = notPEM }, []string{"no PEM certificate"}},
		{"OU not a DN", func(o *Options) { o.AllowedOUs = []string{"OU=CORP,DC=x", "not a dn"} }, []string{`"not a dn"`}},
		{"negative timeout", func(o *Options) { o.Timeout = -time.Second }, []string{"negative"}},
		{"all at once", func(o *Options) { *o = Options{BindPassword: "Secret-Pw-9"} }, []string{"LDAP_URL", "LDAP_BIND_DN", "LDAP_BASE_DN"}},
		{"no password", func(o *Options) { o.BindPassword = "" }, []string{"LDAP_BIND_PASSWORD"}},
		{"base not a DN", func(o *Options) { o.BaseDN = "corp.example.com" }, []string{"LDAP_BASE_DN"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			tc.edit(&o)
			_, err := New(o)
			requireCode(t, err, "Secret-Pw-9")
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestParseSIDAndMachine(t *testing.T) {
	// S-1-5-21-1907282976-1846032179-607540895-512 (Domain Admins in the fixture).
	b := []byte{1, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 0x20, 0xd4, 0xae, 0x71, 0x33, 0x37, 0x08, 0x6e, 0x9f, 0x56, 0x36, 0x24, 0, 2, 0, 0}
	if sid, rid := parseSID(b); sid != "S-1-5-21-1907282976-1846032179-607540895-512" || rid != 512 {
		t.Errorf("parseSID = %s, %d", sid, rid)
	}
	builtin := []byte{1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 2, 0, 0} // S-1-5-32-544
	if sid, rid := parseSID(builtin); sid != "S-1-5-32-544" || rid != 0 {
		t.Errorf("parseSID(builtin) = %s, %d", sid, rid)
	}
	if sid, _ := parseSID(b[:10]); sid != "" {
		t.Errorf("parseSID(short) = %s", sid)
	}
	for _, tc := range []struct {
		classes []string
		uac     uint32
		name    string
		want    bool
	}{
		{[]string{"top", "person", "user"}, 512, "alice", false},
		{[]string{"top", "user", "computer"}, 4096, "ws01$", true},
		{[]string{"top", "user", "computer", "msDS-GroupManagedServiceAccount"}, 4096, "gmsa$", true},
		{[]string{"user", "MSDS-MANAGEDSERVICEACCOUNT"}, 0, "smsa", true},
		{[]string{"user"}, 0x800 | 0x200, "TRUST", true}, // interdomain trust
		{[]string{"user"}, 0x2000, "dc", true},           // server trust
		{[]string{"user"}, 512, "odd$", true},
	} {
		if got := isMachine(tc.classes, tc.uac, tc.name); got != tc.want {
			t.Errorf("isMachine(%v, %#x, %q) = %v", tc.classes, tc.uac, tc.name, got)
		}
	}
	if parseUAC("-2147483136") != 0x80000200 {
		t.Errorf("negative userAccountControl not read as 32 bits")
	}
}

func TestByEmail(t *testing.T) {
	env := sambatest.Require(t)
	c, _ := newClient(t, baseOptions(env))
	ctx := context.Background()

	got, err := c.ByEmail(ctx, sambatest.Mail(sambatest.UserAlice))
	if err != nil {
		t.Fatal(err)
	}
	want := accounts.Entry{
		DN:          sambatest.UserAliceDN,
		UserName:    "alice",
		Email:       "alice@corp.example.com",
		UPN:         "alice@corp.example.com",
		DisplayName: "Alice Smith",
		ManagerDN:   sambatest.ManagerMariaDN,
	}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("ByEmail(alice) = %+v, want [%+v]", got, want)
	}
	for _, tc := range []struct {
		email string
		names []string
	}{
		{"ALICE@Corp.Example.COM", []string{"alice"}},
		{sambatest.SharedMail, []string{"twin1", "twin2"}},
		{sambatest.UPNOnly, []string{"upnonly"}},
		{"nobody@corp.example.com", nil},
		{"", nil},
		{"*", nil},                              // escaped: no wildcard
		{"alice@corp.example.com)(mail=*", nil}, // escaped: no injection
	} {
		got, err := c.ByEmail(ctx, tc.email)
		if err != nil {
			t.Fatalf("ByEmail(%q): %v", tc.email, err)
		}
		var names []string
		for _, e := range got {
			names = append(names, e.UserName)
		}
		sort.Strings(names)
		if strings.Join(names, ",") != strings.Join(tc.names, ",") {
			t.Errorf("ByEmail(%q) = %v, want %v", tc.email, names, tc.names)
		}
	}
	up, _ := c.ByEmail(ctx, sambatest.UPNOnly)
	if len(up) == 1 && (up[0].Email != "" || up[0].UPN != sambatest.UPNOnly) {
		t.Errorf("upnonly = %+v", up[0])
	}
	ws, err := c.ByEmail(ctx, sambatest.ComputerMail)
	if err != nil || len(ws) != 1 || !ws[0].Machine {
		t.Errorf("ByEmail(%s) = %+v, %v; want one machine account", sambatest.ComputerMail, ws, err)
	}
}

func TestByName(t *testing.T) {
	env := sambatest.Require(t)
	c, _ := newClient(t, baseOptions(env))
	ctx := context.Background()

	ws, ok, err := c.ByName(ctx, sambatest.ComputerWS01)
	if err != nil || !ok || !ws.Machine || ws.Disabled || ws.UserName != "ws01$" {
		t.Errorf("ByName(ws01$) = %+v, %v, %v; want an enabled machine", ws, ok, err)
	}
	d, ok, err := c.ByName(ctx, sambatest.UserDisabled)
	if err != nil || !ok || !d.Disabled || d.Machine {
		t.Errorf("ByName(disabled1) = %+v, %v, %v; want disabled", d, ok, err)
	}
	a, ok, err := c.ByName(ctx, "ALICE")
	if err != nil || !ok || a.DN != sambatest.UserAliceDN || a.Disabled || a.Machine || a.OutsideOUs {
		t.Errorf("ByName(ALICE) = %+v, %v, %v", a, ok, err)
	}
	for _, name := range []string{"nobody", "", "*", "ali*"} {
		if e, ok, err := c.ByName(ctx, name); err != nil || ok {
			t.Errorf("ByName(%q) = %+v, %v, %v; want not found", name, e, ok, err)
		}
	}
	carol, ok, err := c.ByName(ctx, sambatest.UserCarol)
	if err != nil || !ok || carol.ManagerDN != "" || carol.DisplayName != "carol" {
		t.Errorf("ByName(carol) = %+v, %v, %v; want no manager and the cn as display name", carol, ok, err)
	}
}

func TestByDN(t *testing.T) {
	env := sambatest.Require(t)
	c, _ := newClient(t, baseOptions(env))
	ctx := context.Background()

	alice, _, err := c.ByName(ctx, sambatest.UserAlice)
	if err != nil {
		t.Fatal(err)
	}
	m, ok, err := c.ByDN(ctx, alice.ManagerDN)
	if err != nil || !ok || m.UserName != sambatest.ManagerMaria || m.DisplayName != "Maria Manager" {
		t.Errorf("ByDN(%s) = %+v, %v, %v", alice.ManagerDN, m, ok, err)
	}
	dm, ok, err := c.ByDN(ctx, strings.ToLower(sambatest.ManagerDisabledDN))
	if err != nil || !ok || !dm.Disabled {
		t.Errorf("ByDN(dmanager) = %+v, %v, %v; want disabled", dm, ok, err)
	}
	for _, dn := range []string{
		"CN=Nobody," + sambatest.OUCorpUsers, // noSuchObject
		"CN=Nobody,OU=Nowhere," + env.BaseDN, // parent missing too
		sambatest.DomainAdminsDN,             // a group, not a user
		"",                                   // would be the root DSE
		"not a dn",
	} {
		if e, ok, err := c.ByDN(ctx, dn); err != nil || ok {
			t.Errorf("ByDN(%q) = %+v, %v, %v; want not found", dn, e, ok, err)
		}
	}
}

// setPrimaryGroup makes the group with relative ID rid the primary group of
// dn (sambatest has no helper for it).
func setPrimaryGroup(t *testing.T, admin *sambatest.Admin, dn string, rid string) {
	t.Helper()
	req := ldap.NewModifyRequest(dn, nil)
	req.Replace("primaryGroupID", []string{rid})
	if err := admin.Conn().Modify(req); err != nil {
		t.Fatalf("set primaryGroupID of %s to %s: %v", dn, rid, err)
	}
}

func TestProtectedGroup(t *testing.T) {
	env := sambatest.Require(t)
	c, logs := newClient(t, baseOptions(env))
	ctx := context.Background()
	admin := env.Admin(t)

	// A user whose primary group is Domain Admins: AD (and Samba) first want
	// it to be a member, then move the membership out of member/memberOf.
	pgName := sambatest.Unique("pgadmin")
	pgDN := admin.CreateUser(sambatest.User{Name: pgName})
	admin.AddToGroup(pgName, sambatest.GroupDomainAdmins)
	setPrimaryGroup(t, admin, pgDN, "512")
	res, err := admin.Conn().Search(ldap.NewSearchRequest(pgDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(memberOf:"+inChain+":="+sambatest.DomainAdminsDN+")", []string{"1.1"}, nil))
	if err != nil || len(res.Entries) != 0 {
		t.Logf("note: memberOf of a user whose primary group is Domain Admins: %v entries, %v", len(res.Entries), err)
	}

	for _, tc := range []struct{ dn, want string }{
		{admin.DN(sambatest.UserDomainAdmin), "Domain Admins"},
		{admin.DN(sambatest.UserNestedAdmin), "Domain Admins"},
		{sambatest.UserAliceDN, ""},
		{admin.DN(sambatest.ComputerWS01), ""},
		{pgDN, "Domain Admins"},
		{"CN=Nobody," + sambatest.OUCorpUsers, ""},
	} {
		got, err := c.ProtectedGroup(ctx, tc.dn)
		if err != nil || got != tc.want {
			t.Errorf("ProtectedGroup(%s) = %q, %v; want %q", tc.dn, got, err, tc.want)
		}
	}
	if _, err := c.ProtectedGroup(ctx, "not a dn"); err == nil {
		t.Errorf("ProtectedGroup(not a dn) = nil error")
	}
	if n := strings.Count(logs.String(), `protected group not found, skipped","group":"AWS Delegated Administrators"`); n != 1 {
		t.Errorf("the missing group was logged %d times, want once:\n%s", n, logs)
	}

	// Configured order decides which name is returned.
	o := baseOptions(env)
	o.ProtectedGroups = []string{sambatest.GroupTier0, sambatest.GroupDomainAdmins}
	c2, _ := newClient(t, o)
	for dn, want := range map[string]string{
		admin.DN(sambatest.UserNestedAdmin): sambatest.GroupTier0,
		admin.DN(sambatest.UserDomainAdmin): sambatest.GroupDomainAdmins,
	} {
		if got, err := c2.ProtectedGroup(ctx, dn); err != nil || got != want {
			t.Errorf("ProtectedGroup(%s) with Tier0 first = %q, %v; want %q", dn, got, err, want)
		}
	}
}

func TestProtectedGroupCache(t *testing.T) {
	env := sambatest.Require(t)
	admin := env.Admin(t)
	group := sambatest.Unique("prot")
	o := baseOptions(env)
	o.ProtectedGroups = []string{group}
	c, _ := newClient(t, o)
	now := time.Now()
	c.now = func() time.Time { return now }
	ctx := context.Background()

	user := sambatest.Unique("cacheu")
	dn := admin.CreateUser(sambatest.User{Name: user})
	if got, err := c.ProtectedGroup(ctx, dn); err != nil || got != "" {
		t.Fatalf("before the group exists: %q, %v", got, err)
	}
	admin.CreateGroup(group)
	admin.AddToGroup(user, group)
	if got, err := c.ProtectedGroup(ctx, dn); err != nil || got != "" {
		t.Errorf("within the cache time: %q, %v; want the cached (empty) group list", got, err)
	}
	now = now.Add(groupCacheTTL + time.Second)
	if got, err := c.ProtectedGroup(ctx, dn); err != nil || got != group {
		t.Errorf("after the cache expired: %q, %v; want %q", got, err, group)
	}
}

func TestAllowedOUs(t *testing.T) {
	env := sambatest.Require(t)
	o := baseOptions(env)
	o.AllowedOUs = []string{strings.ToLower(sambatest.OUCorp)} // compared case-insensitively
	c, _ := newClient(t, o)
	ctx := context.Background()
	for name, outside := range map[string]bool{
		sambatest.UserOutsider:  true,
		sambatest.UserAlice:     false,
		sambatest.ComputerWS01:  false,
		sambatest.Administrator: true, // CN=Users is not under OU=CORP
	} {
		e, ok, err := c.ByName(ctx, name)
		if err != nil || !ok || e.OutsideOUs != outside {
			t.Errorf("ByName(%s) = %+v, %v, %v; want OutsideOUs %v", name, e, ok, err, outside)
		}
	}
	plain, _ := newClient(t, baseOptions(env))
	if e, _, _ := plain.ByName(ctx, sambatest.UserOutsider); e.OutsideOUs {
		t.Errorf("without AllowedOUs, outsider is OutsideOUs")
	}
}

func TestExpirePassword(t *testing.T) {
	env := sambatest.Require(t)
	admin := env.Admin(t)
	name := sambatest.Unique("expire")
	dn := admin.CreateUser(sambatest.User{Name: name})
	admin.SetPwdLastSet(name, -1)
	if admin.PwdLastSet(name) == 0 {
		t.Fatal("pwdLastSet is already 0")
	}
	ctx := context.Background()

	ro, _ := newClient(t, baseOptions(env)) // the read-only service account
	err := ro.ExpirePassword(ctx, dn)
	if err == nil {
		t.Logf("note: the service account may write pwdLastSet")
	} else {
		requireCode(t, err, env.BindPassword)
		t.Logf("as the read-only account: %v", err)
	}

	o := baseOptions(env)
	o.BindDN, o.BindPassword = env.AdminDN, env.AdminPassword
	rw, _ := newClient(t, o)
	if err := rw.ExpirePassword(ctx, dn); err != nil {
		t.Fatalf("ExpirePassword as Administrator: %v", err)
	}
	if v := admin.PwdLastSet(name); v != 0 {
		t.Errorf("pwdLastSet = %d, want 0", v)
	}
	err = rw.ExpirePassword(ctx, "CN=Nobody,"+sambatest.OUCorpUsers)
	requireCode(t, err, env.AdminPassword)
}

// tlsState reports whether c's shared connection is encrypted.
func tlsState(t *testing.T, c *Client) bool {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		t.Fatal("no shared connection")
	}
	_, ok := c.conn.TLSConnectionState()
	return ok
}

func TestTransports(t *testing.T) {
	env := sambatest.Require(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		url      string
		insecure bool
		wantTLS  bool
	}{
		{"LDAPS", env.LDAPSURL, false, true},
		{"StartTLS", env.LDAPURL, false, true},
		{"plain with Insecure", env.LDAPURL, true, false},
		{"LDAPS ignores Insecure", env.LDAPSURL, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := baseOptions(env)
			o.URL, o.Insecure = tc.url, tc.insecure
			c, _ := newClient(t, o)
			if _, ok, err := c.ByName(ctx, sambatest.UserAlice); err != nil || !ok {
				t.Fatalf("ByName(alice) = %v, %v", ok, err)
			}
			if got := tlsState(t, c); got != tc.wantTLS {
				t.Errorf("TLS = %v, want %v", got, tc.wantTLS)
			}
			if err := c.Check(ctx); err != nil {
				t.Errorf("Check: %v", err)
			}
		})
	}
}

// otherCA writes the PEM of a CA that did not sign Samba's certificate.
func otherCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "not Samba's CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// refuseStartTLS serves LDAP connections that answer the first request
// (StartTLS, message ID 1) with protocolError and then hang up. It
// returns the ldap:// URL.
func refuseStartTLS(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	// ExtendedResponse: messageID 1, resultCode 2 (protocolError), "", "".
	reply := []byte{0x30, 0x0c, 0x02, 0x01, 0x01, 0x78, 0x07, 0x0a, 0x01, 0x02, 0x04, 0x00, 0x04, 0x00}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				buf := make([]byte, 512)
				if _, err := conn.Read(buf); err == nil {
					conn.Write(reply)
					io.Copy(io.Discard, conn)
				}
			}()
		}
	}()
	return "ldap://" + ln.Addr().String()
}

func TestNoPlainTextFallback(t *testing.T) {
	env := sambatest.Require(t)
	ctx := context.Background()

	// A server that refuses StartTLS: an error, not a plain-text bind.
	o := baseOptions(env)
	o.URL = refuseStartTLS(t)
	c, _ := newClient(t, o)
	_, _, err := c.ByName(ctx, sambatest.UserAlice)
	if we := requireCode(t, err, env.BindPassword); !strings.Contains(we.Message, "StartTLS") {
		t.Errorf("error %q does not name StartTLS", err)
	}

	// A certificate the CA file does not vouch for: refused on both paths.
	for _, url := range []string{env.LDAPURL, env.LDAPSURL} {
		o := baseOptions(env)
		o.URL, o.CAFile = url, otherCA(t)
		c, _ := newClient(t, o)
		_, _, err := c.ByName(ctx, sambatest.UserAlice)
		we := requireCode(t, err, env.BindPassword)
		if !strings.Contains(we.Message, "LDAP_CA_FILE") {
			t.Errorf("%s with another CA: %q does not point at LDAP_CA_FILE", url, err)
		}
		if err := c.Check(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("Check with another CA = %v", err)
		}
	}
}

func TestWrongBindPassword(t *testing.T) {
	env := sambatest.Require(t)
	o := baseOptions(env)
	o.BindPassword = "Wrong-Passw0rd-" + sambatest.Unique("x")
	c, logs := newClient(t, o)
	ctx := context.Background()
	_, err := c.ByEmail(ctx, sambatest.Mail(sambatest.UserAlice))
	we := requireCode(t, err, o.BindPassword, env.BindPassword)
	if !strings.Contains(we.Message, "LDAP_BIND_DN/LDAP_BIND_PASSWORD refused") || !strings.Contains(we.Message, env.LDAPSURL) {
		t.Errorf("error = %q", err)
	}
	t.Logf("wrong password: %v", err)
	err = c.Check(ctx)
	requireCode(t, err, o.BindPassword)
	if !strings.Contains(err.Error(), "refused") {
		t.Errorf("Check = %v", err)
	}
	if strings.Contains(logs.String(), o.BindPassword) {
		t.Errorf("log holds the password")
	}
}

func TestCheck(t *testing.T) {
	env := sambatest.Require(t)
	ctx := context.Background()
	c, _ := newClient(t, baseOptions(env))
	if err := c.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}

	o := baseOptions(env)
	o.BaseDN = "OU=Nowhere," + env.BaseDN
	c, _ = newClient(t, o)
	if err := c.Check(ctx); err == nil || !strings.Contains(err.Error(), "LDAP_BASE_DN") {
		t.Errorf("Check with a missing base DN = %v", err)
	}

	o = baseOptions(env)
	o.URL = "ldaps://" + closedPort(t)
	c, _ = newClient(t, o)
	err := c.Check(ctx)
	if we := requireCode(t, err, env.BindPassword); !strings.Contains(we.Message, "dial") {
		t.Errorf("Check on a closed port = %v", err)
	}
	t.Logf("closed port: %v", err)
}

// closedPort returns a 127.0.0.1 address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// silentServer accepts TCP connections and never answers.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	return ln.Addr().String()
}

func TestSilentServer(t *testing.T) {
	env := sambatest.Require(t)
	addr := silentServer(t)
	for _, tc := range []struct {
		name     string
		url      string
		insecure bool
	}{
		{"LDAPS handshake", "ldaps://" + addr, false},
		{"StartTLS", "ldap://" + addr, false},
		{"plain bind", "ldap://" + addr, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := baseOptions(env)
			o.URL, o.Insecure, o.Timeout = tc.url, tc.insecure, time.Second
			c, _ := newClient(t, o)
			start := time.Now()
			_, err := c.ByEmail(context.Background(), sambatest.Mail(sambatest.UserAlice))
			took := time.Since(start)
			requireCode(t, err, env.BindPassword)
			if took < 900*time.Millisecond || took > 1800*time.Millisecond {
				t.Errorf("took %s, want about the 1s timeout", took)
			}
			t.Logf("%s after %s", err, took.Round(time.Millisecond))

			// A shorter caller deadline wins.
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			start = time.Now()
			_, _, err = c.ByName(ctx, sambatest.UserAlice)
			requireCode(t, err)
			if took := time.Since(start); took > 600*time.Millisecond {
				t.Errorf("with a 200ms context: took %s", took)
			}
		})
	}
}

// proxy is a TCP proxy in front of Samba that tests can break.
type proxy struct {
	t      *testing.T
	target string
	addr   string

	mu       sync.Mutex
	ln       net.Listener
	conns    map[*proxyConn]bool
	accepted int
}

type proxyConn struct {
	client, server net.Conn
	doomed, frozen bool // guarded by proxy.mu
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	p := &proxy{t: t, target: target, conns: map[*proxyConn]bool{}}
	p.listen("127.0.0.1:0")
	t.Cleanup(p.cut)
	return p
}

// listen starts accepting on addr.
func (p *proxy) listen(addr string) {
	p.t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		p.t.Fatalf("proxy listen %s: %v", addr, err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
}

func (p *proxy) serve(client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	pc := &proxyConn{client: client, server: server}
	p.mu.Lock()
	p.conns[pc] = true
	p.accepted++
	p.mu.Unlock()
	go p.pipe(pc, server, client, false)
	p.pipe(pc, client, server, true)
}

// pipe copies from src to dst. Data of a frozen connection is dropped; a
// doomed connection is closed when the client sends its next request.
func (p *proxy) pipe(pc *proxyConn, src, dst net.Conn, fromClient bool) {
	defer func() { pc.client.Close(); pc.server.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		p.mu.Lock()
		doomed, frozen := pc.doomed, pc.frozen
		p.mu.Unlock()
		if fromClient && doomed {
			return
		}
		if frozen {
			continue
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

// each applies f to every current connection.
func (p *proxy) each(f func(*proxyConn)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for pc := range p.conns {
		f(pc)
	}
}

// cut closes the listener and every connection.
func (p *proxy) cut() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
	}
	p.mu.Unlock()
	p.each(func(pc *proxyConn) { pc.client.Close(); pc.server.Close() })
}

func (p *proxy) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

func TestOutageAndRedial(t *testing.T) {
	env := sambatest.Require(t)
	p := startProxy(t, strings.TrimPrefix(env.LDAPSURL, "ldaps://"))
	o := baseOptions(env)
	// Long enough that a busy machine (the whole suite at once, Samba on
	// the same cores) does not turn a healthy redial into a timeout.
	const timeout = 3 * time.Second
	o.URL, o.Timeout = "ldaps://"+p.addr, timeout
	c, logs := newClient(t, o)
	ctx := context.Background()
	lookup := func() error {
		_, ok, err := c.ByName(ctx, sambatest.UserAlice)
		if err == nil && !ok {
			t.Fatal("alice not found")
		}
		return err
	}
	if err := lookup(); err != nil {
		t.Fatal(err)
	}

	// The server goes away.
	p.cut()
	start := time.Now()
	err := lookup()
	requireCode(t, err, env.BindPassword)
	if took := time.Since(start); took > timeout*9/5 {
		t.Errorf("outage: took %s, want at most about the %s timeout", took, timeout)
	}
	t.Logf("outage: %v after %s", err, time.Since(start).Round(time.Millisecond))

	// It comes back on the same address: the next lookup dials again.
	p.listen(p.addr)
	if err := lookup(); err != nil {
		t.Fatalf("after the server came back: %v", err)
	}

	// The connection is dropped under a request: retried once, on a new one.
	before := p.count()
	p.each(func(pc *proxyConn) { pc.doomed = true })
	if err := lookup(); err != nil {
		t.Fatalf("after a dropped connection: %v", err)
	}
	if n := p.count() - before; n != 1 {
		t.Errorf("%d new connections after a dropped one, want 1", n)
	}
	if !strings.Contains(logs.String(), "retrying on a new one") {
		t.Errorf("the dropped connection was not retried:\n%s", logs)
	}

	// The server stops answering on the open connection: a timeout, then a
	// new connection.
	p.each(func(pc *proxyConn) { pc.frozen = true })
	start = time.Now()
	err = lookup()
	requireCode(t, err)
	if took := time.Since(start); took < timeout*9/10 || took > timeout*9/5 {
		t.Errorf("hung connection: took %s, want about the %s timeout", took, timeout)
	}
	if err := lookup(); err != nil {
		t.Fatalf("after a hung connection: %v", err)
	}
}

func TestConcurrentLookups(t *testing.T) {
	env := sambatest.Require(t)
	p := startProxy(t, strings.TrimPrefix(env.LDAPSURL, "ldaps://"))
	o := baseOptions(env)
	o.URL = "ldaps://" + p.addr
	c, _ := newClient(t, o)
	ctx := context.Background()
	names := []string{sambatest.UserAlice, sambatest.UserBob, sambatest.UserCarol, sambatest.UserDave}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			for j := range 5 {
				name := names[(i+j)%len(names)]
				e, ok, err := c.ByName(ctx, name)
				if err == nil && (!ok || e.UserName != name) {
					err = errors.New("wrong answer for " + name)
				}
				if err == nil {
					_, err = c.ProtectedGroup(ctx, e.DN)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := p.count(); n != 1 {
		t.Errorf("%d connections for concurrent lookups, want 1 shared", n)
	}
}

func TestCancelledContext(t *testing.T) {
	env := sambatest.Require(t)
	c, _ := newClient(t, baseOptions(env))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.ByEmail(ctx, sambatest.Mail(sambatest.UserAlice))
	if we := requireCode(t, err); !strings.Contains(we.Message, "cancelled") {
		t.Errorf("error = %v", err)
	}
	c.Close()
	_, _, err = c.ByName(context.Background(), sambatest.UserAlice)
	requireCode(t, err)
}
