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
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
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
		URL:          env.LDAPSURL,
		BindDN:       env.BindDN,
		BindPassword: env.BindPassword,
		BaseDN:       env.BaseDN,
		CAFile:       env.CAFile,
		Timeout:      5 * time.Second,
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
		{"negative timeout", func(o *Options) { o.Timeout = -time.Second }, []string{"LDAP_TIMEOUT must be longer than zero"}},
		{"all at once", func(o *Options) { *o = Options{BindPassword: "Secret-Pw-9"} }, []string{"LDAP_URL", "LDAP_BIND_DN", "LDAP_BASE_DN"}},
		{"no password", func(o *Options) { o.BindPassword = "" }, []string{"LDAP_BIND_PASSWORD"}},
		{"base not a DN", func(o *Options) { o.BaseDN = "corp.example.com" }, []string{"LDAP_BASE_DN"}},
		{"group SID", func(o *Options) { o.ProtectedGroups = []string{"Tier0", "S-1-5-21-x"} }, []string{`"S-1-5-21-x" is not a SID`}},
		{"group DN", func(o *Options) { o.ProtectedGroups = []string{"CN=A,,DC=x"} }, []string{`"CN=A,,DC=x" is not a DN`}},
		{"Insecure with LDAPS", func(o *Options) { o.Insecure = true }, []string{"LDAP_INSECURE=true only applies to ldap://"}},
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
	if v, ok := parseUAC("-2147483136"); !ok || v != 0x80000200 {
		t.Errorf("negative userAccountControl not read as 32 bits")
	}
	for _, bad := range []string{"", "x", "99999999999"} {
		if _, ok := parseUAC(bad); ok {
			t.Errorf("parseUAC(%q) ok", bad)
		}
	}
	// active-directory.md §8: raw 38cfb4a8 f2c9 b348 96f8... is a8b4cf38-c9f2-48b3-96f8-...
	raw := []byte{0x38, 0xcf, 0xb4, 0xa8, 0xf2, 0xc9, 0xb3, 0x48, 0x96, 0xf8, 1, 2, 3, 4, 5, 6}
	if g := formatGUID(raw); g != "a8b4cf38-c9f2-48b3-96f8-010203040506" {
		t.Errorf("formatGUID = %s", g)
	}
	if g := formatGUID(raw[:15]); g != "" {
		t.Errorf("formatGUID(15 bytes) = %s", g)
	}
	for _, s := range []string{"S-1-5-21-1907282976-1846032179-607540895-512", "S-1-5-32-544", "s-1-5-32-548"} {
		b, err := sidBytes(s)
		if got, _ := parseSID(b); err != nil || !strings.EqualFold(got, s) {
			t.Errorf("sidBytes(%s) round trip = %s, %v", s, got, err)
		}
	}
	for _, s := range []string{"S-1", "S-1-5", "S-1-5-x", "S-2-5-32", "T-1-5-32", "S-1-5-" + strings.Repeat("1-", 15) + "1"} {
		if _, err := sidBytes(s); err == nil {
			t.Errorf("sidBytes(%q) = nil error", s)
		}
	}
	for _, tc := range []struct {
		in   string
		kind byte
	}{{"Tier0 Ops", 'n'}, {"CN=Tier0 Ops,OU=CORP,DC=x", 'd'}, {"S-1-5-32-544", 's'}, {"Sales", 'n'}} {
		if r, err := parseGroupRef(tc.in); err != nil || r.kind != tc.kind {
			t.Errorf("parseGroupRef(%q) = %c, %v; want %c", tc.in, r.kind, err, tc.kind)
		}
	}
	for _, bad := range []string{"S-1-5-x", "CN=,,x"} {
		if _, err := parseGroupRef(bad); err == nil {
			t.Errorf("parseGroupRef(%q) = nil error", bad)
		}
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
	admin := env.Admin(t)
	want := accounts.Entry{
		DN:          sambatest.UserAliceDN,
		UserName:    "alice",
		Email:       "alice@corp.example.com",
		UPN:         "alice@corp.example.com",
		DisplayName: "Alice Smith",
		ManagerDN:   sambatest.ManagerMariaDN,
		SID:         admin.SID(sambatest.UserAlice),
	}
	if len(got) != 1 {
		t.Fatalf("ByEmail(alice) = %+v, want one entry", got)
	}
	guid := got[0].GUID
	got[0].GUID = ""
	// alice's facts: read, not locked; other tests bind her with a wrong
	// password, so her count varies (lockout_test.go checks the values).
	f := got[0].Facts
	if f.Lockout != (accounts.Lockout{Known: true}) || !f.BadPasswords.Known || !f.PasswordSet.Known || f.PasswordSet.At.IsZero() {
		t.Errorf("ByEmail(alice) facts = %+v", f)
	}
	got[0].Facts = accounts.Facts{}
	if !reflect.DeepEqual(got[0], want) {
		t.Fatalf("ByEmail(alice) = %+v, want %+v", got[0], want)
	}
	// The dashed GUID names the object: Samba finds alice by it.
	if dn := readByGUID(t, admin, guid); !strings.EqualFold(dn, sambatest.UserAliceDN) {
		t.Errorf("<GUID=%s> is %q, want alice", guid, dn)
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

// readByGUID returns the DN of the object <GUID=guid>, as Administrator.
func readByGUID(t *testing.T, admin *sambatest.Admin, guid string) string {
	t.Helper()
	res, err := admin.Conn().Search(ldap.NewSearchRequest("<GUID="+guid+">", ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		1, 0, false, "(objectClass=*)", []string{"1.1"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("read <GUID=%s>: %v", guid, err)
	}
	return res.Entries[0].DN
}

// userEntry returns the entry of the user name, found with c.
func userEntry(t *testing.T, c *Client, name string) accounts.Entry {
	t.Helper()
	e, ok, err := c.ByName(context.Background(), name)
	if err != nil || !ok {
		t.Fatalf("ByName(%s) = %v, %v", name, ok, err)
	}
	return e
}

// protectedGroup returns the name of the protected group e is in ("" for
// none), failing the test on an error.
func protectedGroup(t *testing.T, c *Client, e accounts.Entry) string {
	t.Helper()
	g, member, err := c.ProtectedGroup(context.Background(), e)
	if err != nil {
		t.Fatalf("ProtectedGroup(%s): %v", e.UserName, err)
	}
	if member != (g.SID != "") {
		t.Fatalf("ProtectedGroup(%s) = %+v, member %v", e.UserName, g, member)
	}
	return g.Name
}

// TestProtectedGroup: membership by tokenGroups, from a client whose base
// DN is the customer OU (where no privileged group lives): a Domain Admin,
// a nested one, one whose primary group is Domain Admins and one whose
// primary group is nested in Domain Admins, a member of an AWS delegated
// group (domain-local, in an OU of its own outside the base) and of a
// configured group; plain users and a computer are in none.
func TestProtectedGroup(t *testing.T) {
	env := sambatest.Require(t)
	admin := env.Admin(t)
	o := baseOptions(env)
	o.BaseDN = sambatest.OUCorp
	cfgGroup := sambatest.Unique("helpdesk")
	o.ProtectedGroups = []string{cfgGroup}

	// The configured group, in the customer OU; a delegated group in an OU
	// of its own outside it, as AWS has OU=AWS Delegated Groups.
	admin.CreateGroup(cfgGroup)
	awsOU := admin.CreateOU(sambatest.Unique("AWS Delegated Groups"), "")
	awsGroup := "AWS Delegated " + sambatest.Unique("Admins")
	admin.CreateGroupIn(sambatest.Group{Name: awsGroup, OU: awsOU, DomainLocal: true})
	// A near miss: not an AWS delegated group.
	nearMiss := "AWSDelegated " + sambatest.Unique("x")
	admin.CreateGroupIn(sambatest.Group{Name: nearMiss, OU: awsOU, DomainLocal: true})

	user := func(prefix string) string {
		name := sambatest.Unique(prefix)
		admin.CreateUser(sambatest.User{Name: name})
		return name
	}
	awsMember, cfgMember, nearMember := user("awsm"), user("cfgm"), user("near")
	admin.AddToGroup(awsMember, awsGroup)
	admin.AddToGroup(cfgMember, cfgGroup)
	admin.AddToGroup(nearMember, nearMiss)

	// A user whose primary group is Domain Admins: AD (and Samba) first want
	// it to be a member, then move the membership out of member/memberOf.
	pgAdmin := user("pgadmin")
	admin.AddToGroup(pgAdmin, sambatest.GroupDomainAdmins)
	admin.Replace(pgAdmin, "primaryGroupID", "512")

	// A user whose primary group is a group nested in Domain Admins, and in
	// no other group at all.
	nestedPG := sambatest.Unique("pgnest")
	admin.CreateGroup(nestedPG)
	admin.AddToGroup(nestedPG, sambatest.GroupDomainAdmins)
	pgNested := user("pgn")
	admin.AddToGroup(pgNested, nestedPG)
	rid := admin.SID(nestedPG)[strings.LastIndexByte(admin.SID(nestedPG), '-')+1:]
	admin.Replace(pgNested, "primaryGroupID", rid)
	if res, err := admin.Conn().Search(ldap.NewSearchRequest(admin.DN(pgNested), ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"memberOf"}, nil)); err != nil || slices.ContainsFunc(res.Entries[0].GetAttributeValues("memberOf"),
		func(g string) bool { return strings.Contains(g, nestedPG) }) {
		t.Fatalf("%s has %s in memberOf (%v): the test would not show the primary group", pgNested, nestedPG, err)
	}

	c, _ := newClient(t, o)
	for name, want := range map[string]string{
		sambatest.UserDomainAdmin: "Domain Admins",
		sambatest.UserNestedAdmin: "Domain Admins",
		pgAdmin:                   "Domain Admins",
		pgNested:                  "Domain Admins",
		awsMember:                 awsGroup,
		cfgMember:                 cfgGroup,
		nearMember:                "",
		sambatest.UserAlice:       "",
		sambatest.ComputerWS01:    "",
	} {
		if got := protectedGroup(t, c, userEntry(t, c, name)); got != want {
			t.Errorf("ProtectedGroup(%s) = %q, want %q", name, got, want)
		}
	}
}

// TestProtectedGroups: the resolved set: every built-in SID (with its
// object when the domain has one: Samba has no Key Admins), the AWS
// delegated groups anywhere in the domain, PROTECTED_GROUPS by name, DN
// or SID, each group once; an entry that matches nothing is Missing, and
// then every account is refused as uncheckable.
func TestProtectedGroups(t *testing.T) {
	env := sambatest.Require(t)
	admin := env.Admin(t)
	domainSID := admin.SID(sambatest.DomainAdminsDN)
	domainSID = domainSID[:strings.LastIndexByte(domainSID, '-')]
	byName, byDN, bySID := sambatest.Unique("pgname"), sambatest.Unique("pgdn"), sambatest.Unique("pgsid")
	admin.CreateGroup(byName)
	dn := admin.CreateGroup(byDN)
	admin.CreateGroup(bySID)
	awsOU := admin.CreateOU(sambatest.Unique("AWS Delegated Groups"), "")
	aws := "aws delegated " + sambatest.Unique("Server Admins") // the cn is matched without regard to ASCII case
	admin.CreateGroupIn(sambatest.Group{Name: aws, OU: awsOU, DomainLocal: true})

	o := baseOptions(env)
	o.BaseDN = sambatest.OUCorpUsers // groups are not searched there
	o.ProtectedGroups = []string{strings.ToUpper(byName), strings.ToLower(dn), admin.SID(bySID), "Domain Admins", "S-1-5-32-544"}
	c, _ := newClient(t, o)
	set, err := c.ProtectedGroups(context.Background())
	if err != nil || set.Err() != nil {
		t.Fatalf("ProtectedGroups: %v, %v", err, set.Err())
	}
	if set.DefaultNamingContext != env.BaseDN || set.DomainSID != domainSID || set.RootDomainSID != domainSID || len(set.Missing) != 0 {
		t.Errorf("set %+v", set)
	}
	got := map[string]accounts.Group{}
	for _, g := range set.Groups {
		if _, dup := got[g.SID]; dup {
			t.Errorf("%s twice", g.SID)
		}
		got[g.SID] = g
	}
	for sid, want := range map[string]accounts.Group{
		domainSID + "-512": {Name: "Domain Admins", DN: sambatest.DomainAdminsDN, Source: accounts.SourceBuiltIn},
		domainSID + "-519": {Name: "Enterprise Admins", DN: "CN=Enterprise Admins,CN=Users," + env.BaseDN, Source: accounts.SourceBuiltIn},
		domainSID + "-518": {Name: "Schema Admins", DN: "CN=Schema Admins,CN=Users," + env.BaseDN, Source: accounts.SourceBuiltIn},
		domainSID + "-516": {Name: "Domain Controllers", DN: "CN=Domain Controllers,CN=Users," + env.BaseDN, Source: accounts.SourceBuiltIn},
		domainSID + "-521": {Name: "Read-only Domain Controllers", DN: "CN=Read-only Domain Controllers,CN=Users," + env.BaseDN, Source: accounts.SourceBuiltIn},
		domainSID + "-520": {Name: "Group Policy Creator Owners", DN: "CN=Group Policy Creator Owners,CN=Users," + env.BaseDN, Source: accounts.SourceBuiltIn},
		domainSID + "-526": {Name: "Key Admins", Source: accounts.SourceBuiltIn},            // no object on Samba 4.17
		domainSID + "-527": {Name: "Enterprise Key Admins", Source: accounts.SourceBuiltIn}, // no object on Samba 4.17
		"S-1-5-32-544":     {Name: "Administrators", DN: "CN=Administrators,CN=Builtin," + env.BaseDN, Source: accounts.SourceBuiltIn},
		"S-1-5-32-548":     {Name: "Account Operators", DN: "CN=Account Operators,CN=Builtin," + env.BaseDN, Source: accounts.SourceBuiltIn},
		"S-1-5-32-549":     {Name: "Server Operators", DN: "CN=Server Operators,CN=Builtin," + env.BaseDN, Source: accounts.SourceBuiltIn},
		"S-1-5-32-550":     {Name: "Print Operators", DN: "CN=Print Operators,CN=Builtin," + env.BaseDN, Source: accounts.SourceBuiltIn},
		"S-1-5-32-551":     {Name: "Backup Operators", DN: "CN=Backup Operators,CN=Builtin," + env.BaseDN, Source: accounts.SourceBuiltIn},
		"S-1-5-32-552":     {Name: "Replicator", DN: "CN=Replicator,CN=Builtin," + env.BaseDN, Source: accounts.SourceBuiltIn},
		admin.SID(aws):     {Name: aws, DN: admin.DN(aws), Source: accounts.SourceAWSDelegated},
		admin.SID(byName):  {Name: byName, DN: admin.DN(byName), Source: accounts.SourceConfigured},
		admin.SID(byDN):    {Name: byDN, DN: dn, Source: accounts.SourceConfigured},
		admin.SID(bySID):   {Name: bySID, DN: admin.DN(bySID), Source: accounts.SourceConfigured},
	} {
		want.SID = sid
		if g := got[sid]; !strings.EqualFold(g.DN, want.DN) || g.Name != want.Name || g.Source != want.Source {
			t.Errorf("%s = %+v, want %+v", sid, g, want)
		}
	}
	if n := len(builtinGroups); set.Groups[0].Name != "Domain Admins" || set.Groups[n-1].Name != "Enterprise Key Admins" || set.Groups[n].Source != accounts.SourceAWSDelegated {
		t.Errorf("order: %+v", set.Groups)
	}

	// A group found whose SID the bind account may not read: uncheckable,
	// whether it is configured or an AWS delegated one. The ACE names a bind
	// account of this test's own, so that the hidden AWS group does not
	// make the tests running beside this one refuse everybody.
	reader := sambatest.Unique("svcread")
	readerDN := admin.CreateUser(sambatest.User{Name: reader, OU: sambatest.UsersContainer})
	for _, configured := range []bool{true, false} {
		hidden := sambatest.Unique("pghide")
		o := baseOptions(env)
		o.BindDN, o.BindPassword = readerDN, env.SeedPassword
		if configured {
			admin.CreateGroup(hidden)
			o.ProtectedGroups = []string{hidden}
		} else {
			hidden = "AWS Delegated " + hidden
			admin.CreateGroupIn(sambatest.Group{Name: hidden, OU: awsOU, DomainLocal: true})
		}
		admin.DenyRead(hidden, readerDN, "objectSid")
		c, _ := newClient(t, o)
		set, err := c.ProtectedGroups(context.Background())
		if err != nil || len(set.Missing) != 0 || len(set.NoSID) != 1 || !strings.Contains(fmt.Sprint(set.Err()), "objectSid of protected group") ||
			workflow.ErrorCode(set.Err()) != workflow.CodeUncheckable {
			t.Errorf("configured %v, objectSid hidden: %+v, %v, %v", configured, set.NoSID, set.Err(), err)
		}
	}

	// Entries that match nothing: each named, and every account refused.
	o.ProtectedGroups = []string{byName, "No Such Group " + sambatest.Unique("x"), "CN=Nothing,OU=CORP," + env.BaseDN, domainSID + "-99999"}
	c, logs := newClient(t, o)
	set, err = c.ProtectedGroups(context.Background())
	if err != nil || len(set.Missing) != 3 || set.Missing[0] != o.ProtectedGroups[1] {
		t.Fatalf("missing: %q, %v", set.Missing, err)
	}
	var we *workflow.Error
	if err := set.Err(); !errors.As(err, &we) || we.Code != workflow.CodeUncheckable || !strings.Contains(err.Error(), `PROTECTED_GROUPS entry "`+o.ProtectedGroups[3]+`" matches no group in `+env.BaseDN) {
		t.Errorf("Err() = %v", err)
	}
	_, _, err = c.ProtectedGroup(context.Background(), userEntry(t, c, sambatest.UserAlice))
	if workflow.ErrorCode(err) != workflow.CodeUncheckable {
		t.Errorf("alice with a missing protected group: %v, want %s", err, workflow.CodeUncheckable)
	}
	if n := strings.Count(logs.String(), "PROTECTED_GROUPS entry matches no group"); n != 3 {
		t.Errorf("%d log lines for 3 missing groups:\n%s", n, logs)
	}
}

func TestProtectedGroupCache(t *testing.T) {
	env := sambatest.Require(t)
	admin := env.Admin(t)
	o := baseOptions(env)
	c, _ := newClient(t, o)
	now := time.Now()
	c.now = func() time.Time { return now }

	user := sambatest.Unique("cacheu")
	admin.CreateUser(sambatest.User{Name: user})
	e := userEntry(t, c, user)
	if got := protectedGroup(t, c, e); got != "" {
		t.Fatalf("before the group exists: %q", got)
	}
	awsOU := admin.CreateOU(sambatest.Unique("AWS Delegated Groups"), "")
	group := "AWS Delegated " + sambatest.Unique("Cache")
	admin.CreateGroupIn(sambatest.Group{Name: group, OU: awsOU, DomainLocal: true})
	admin.AddToGroup(user, group)
	if got := protectedGroup(t, c, e); got != "" {
		t.Errorf("within the cache time: %q; want the cached set, without the new group", got)
	}
	now = now.Add(groupCacheTTL + time.Second)
	if got := protectedGroup(t, c, e); got != group {
		t.Errorf("after the cache expired: %q; want %q", got, group)
	}
}

// TestUnreadable: an attribute the bind account may not read (an ACE
// denies it) is named in Entry.Unreadable, or, for tokenGroups, refuses
// the group check as uncheckable; it is never read as harmless.
func TestUnreadable(t *testing.T) {
	env := sambatest.Require(t)
	admin := env.Admin(t)
	c, _ := newClient(t, baseOptions(env))
	for _, attr := range []string{"userAccountControl", "objectSid", "objectGUID"} {
		name := sambatest.Unique("hide")
		admin.CreateUser(sambatest.User{Name: name})
		if e := userEntry(t, c, name); len(e.Unreadable) != 0 || e.SID == "" || e.GUID == "" {
			t.Fatalf("before the ACE: %+v", e)
		}
		admin.DenyRead(name, env.BindDN, attr)
		if e := userEntry(t, c, name); !slices.Equal(e.Unreadable, []string{attr}) {
			t.Errorf("%s denied: Unreadable = %q", attr, e.Unreadable)
		}
	}

	name := sambatest.Unique("hidetg")
	admin.CreateUser(sambatest.User{Name: name})
	admin.AddToGroup(name, sambatest.GroupDomainAdmins)
	e := userEntry(t, c, name)
	if got := protectedGroup(t, c, e); got != "Domain Admins" {
		t.Fatalf("before the ACE: %q", got)
	}
	admin.DenyRead(name, env.BindDN, "tokenGroups")
	g, member, err := c.ProtectedGroup(context.Background(), e)
	var we *workflow.Error
	if !errors.As(err, &we) || we.Code != workflow.CodeUncheckable || member || !strings.Contains(err.Error(), "tokenGroups") {
		t.Errorf("tokenGroups denied: %+v, %v, %v; want %s", g, member, err, workflow.CodeUncheckable)
	}

	// The object went away between the two reads: try again, never "no".
	gone := sambatest.Unique("gone")
	admin.CreateUser(sambatest.User{Name: gone})
	e = userEntry(t, c, gone)
	if err := admin.Conn().Del(ldap.NewDelRequest(e.DN, nil)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ProtectedGroup(context.Background(), e); workflow.ErrorCode(err) != workflow.CodeLookupUnavailable {
		t.Errorf("deleted account: %v, want %s", err, workflow.CodeLookupUnavailable)
	}
}

// TestAdminCountRead: adminCount=1 is read as AdminCount; Administrator
// (which Samba provisions with it) has it, alice does not.
func TestAdminCountRead(t *testing.T) {
	env := sambatest.Require(t)
	admin := env.Admin(t)
	c, _ := newClient(t, baseOptions(env))
	name := sambatest.Unique("held")
	admin.CreateUser(sambatest.User{Name: name})
	if userEntry(t, c, name).AdminCount {
		t.Fatal("a new user has AdminCount")
	}
	admin.Replace(name, "adminCount", "1")
	for who, want := range map[string]bool{name: true, sambatest.Administrator: true, sambatest.UserAlice: false} {
		if got := userEntry(t, c, who).AdminCount; got != want {
			t.Errorf("%s: AdminCount %v, want %v", who, got, want)
		}
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
					_, _, err = c.ProtectedGroup(ctx, e)
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

// TestWholeSecondTimeLimit: AD and Samba count a search's time limit in
// whole seconds from the second it arrived in (Samba's deadline is
// starttime+limit at .000), so a limit of 1 second ends a search that
// arrives at x.998 two milliseconds later with "Time Limit Exceeded". The
// bot's own deadline bounds the wait; the limit it sends must never be
// the reason a quick search fails.
func TestWholeSecondTimeLimit(t *testing.T) {
	env := sambatest.Require(t)
	o := baseOptions(env)
	o.Timeout = time.Second
	c, _ := newClient(t, o)
	ctx := context.Background()
	if _, err := c.ByEmail(ctx, sambatest.Mail(sambatest.UserAlice)); err != nil {
		t.Fatal(err) // connected and bound before the timed tries
	}
	for i := range 5 {
		now := time.Now()
		next := now.Truncate(time.Second).Add(time.Second)
		time.Sleep(time.Until(next.Add(-3 * time.Millisecond)))
		if _, err := c.ByEmail(ctx, sambatest.Mail(sambatest.UserAlice)); err != nil {
			t.Fatalf("search %d, sent just before a second began: %v", i, err)
		}
	}
}
