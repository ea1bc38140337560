// Package sambatest gives tests a real Active Directory: the throw-away
// Samba 4 domain controller that scripts/samba.sh starts and seeds.
//
//	scripts/samba.sh start /tmp/resetbot-samba
//	SAMBA_ENV_FILE=/tmp/resetbot-samba/env go test ./...
//
// Require reads the env file the script writes and checks that Samba
// answers; without it a test is skipped, or fails when $CI is set. Admin is an
// LDAPS connection bound as Administrator with small helpers to create users
// and groups (removed again when the test ends) and to change them.
//
// The seeded directory is described by the constants below and in the comment
// at the top of scripts/samba.sh. Tests must not change seeded entries (other
// tests, possibly in other packages running at the same time, rely on them);
// create their own with Admin.CreateUser and names from Unique instead.
package sambatest

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/go-ldap/ldap/v3"

	"github.com/example/resetbot/internal/dotenv"
)

// The seeded domain.
const (
	Realm     = "CORP.EXAMPLE.COM"
	DNSDomain = "corp.example.com"
	Domain    = "CORP" // NetBIOS name
	BaseDN    = "DC=corp,DC=example,DC=com"

	OUCorp          = "OU=CORP," + BaseDN              // the customer OU, as in AWS Managed AD
	OUCorpUsers     = "OU=Users,OU=CORP," + BaseDN     // where the ordinary users live; CreateUser's default
	OUCorpComputers = "OU=Computers,OU=CORP," + BaseDN // holds ComputerWS01
	OUElsewhere     = "OU=Elsewhere," + BaseDN         // outside the customer OU; holds UserOutsider
	UsersContainer  = "CN=Users," + BaseDN             // AD's default container (Administrator, svc-resetbot, Domain Admins)

	GroupDomainAdmins = "Domain Admins"
	DomainAdminsDN    = "CN=Domain Admins,CN=Users," + BaseDN
	GroupTier0        = "Tier0 Ops" // a global group that is a member of Domain Admins
	Tier0DN           = "CN=Tier0 Ops," + OUCorp

	ServiceAccount = "svc-resetbot" // Env.BindDN: a plain Domain User with a random password
	Administrator  = "Administrator"

	// SeedPassword is the password of every seeded user (not of
	// Administrator and ServiceAccount).
	SeedPassword = "Seed-Passw0rd-1"
)

// Seeded accounts (sAMAccountNames). Each has the mail address Mail(name)
// and the userPrincipalName name@corp.example.com, is enabled and lives in
// OUCorpUsers, unless said otherwise.
const (
	ManagerMaria    = "mmanager"  // CN=Maria Manager (Maria Manager)
	UserAlice       = "alice"     // CN=Alice Smith (Alice Smith), manager ManagerMaria
	UserBob         = "bob"       // CN=Bob Jones (Bob Jones), manager ManagerMaria
	UserCarol       = "carol"     // no manager
	UserDave        = "dave"      // manager ManagerDisabled
	ManagerDisabled = "dmanager"  // disabled (514)
	UserDisabled    = "disabled1" // disabled (514)
	UserDomainAdmin = "dadmin"    // a direct member of Domain Admins
	UserNestedAdmin = "nested1"   // a member of GroupTier0 only, so of Domain Admins through nesting
	UserTwin1       = "twin1"     // mail SharedMail
	UserTwin2       = "twin2"     // mail SharedMail
	UserUPNOnly     = "upnonly"   // no mail; userPrincipalName UPNOnly
	UserOutsider    = "outsider"  // in OUElsewhere
	ComputerWS01    = "ws01$"     // CN=ws01 in OUCorpComputers: a computer account (4096), mail ComputerMail
)

// Seeded addresses.
const (
	SharedMail   = "shared@corp.example.com" // the mail of both UserTwin1 and UserTwin2
	UPNOnly      = "upnonly@corp.example.com"
	ComputerMail = "ws01@corp.example.com"
)

// Seeded DNs, for tests that check what a lookup returns.
const (
	ManagerMariaDN    = "CN=Maria Manager," + OUCorpUsers
	UserAliceDN       = "CN=Alice Smith," + OUCorpUsers
	UserBobDN         = "CN=Bob Jones," + OUCorpUsers
	ManagerDisabledDN = "CN=dmanager," + OUCorpUsers
	ServiceAccountDN  = "CN=svc-resetbot," + UsersContainer
	AdministratorDN   = "CN=Administrator," + UsersContainer
)

// Mail returns the seeded mail address of the seeded user name
// (name@corp.example.com). UserUPNOnly has none; the twins have SharedMail.
func Mail(name string) string { return name + "@" + DNSDomain }

// userAccountControl flags.
const (
	UACAccountDisable = 0x2
	UACNormalAccount  = 0x200 // 512
)

// Env is a Samba AD started by scripts/samba.sh.
type Env struct {
	LDAPSURL       string // ldaps://127.0.0.1:636
	LDAPURL        string // ldap://127.0.0.1:389 (StartTLS, or plain simple binds)
	CAFile         string // PEM of the CA that signed Samba's certificate
	BaseDN         string
	Realm          string
	Domain         string // NetBIOS name
	AdminDN        string
	AdminPassword  string
	BindDN         string // the read-only service account
	BindPassword   string
	RWBindDN       string // a service account that may also write pwdLastSet and lockoutTime under OU=CORP (a Samba seeded before lockoutTime was added lacks it: tests of writes grant their own with DelegateWrite)
	RWBindPassword string
	SeedPassword   string // the password of every seeded user
}

// EnvFileVar names the environment variable that holds the path of the env
// file scripts/samba.sh writes.
const EnvFileVar = "SAMBA_ENV_FILE"

var (
	cacheMu sync.Mutex
	cache   = map[string]Env{} // env file path -> an Env that answered
)

// Require returns the running Samba described by the file named in
// $SAMBA_ENV_FILE. With that unset/unreadable or Samba not answering:
// tb.Skip on a laptop, tb.Fatal when $CI is set (CI must never skip).
func Require(tb testing.TB) *Env {
	tb.Helper()
	path := os.Getenv(EnvFileVar)
	unavailable := func(format string, args ...any) {
		tb.Helper()
		msg := "sambatest: " + fmt.Sprintf(format, args...) +
			" (run `scripts/samba.sh start /tmp/resetbot-samba` and set " + EnvFileVar + "=/tmp/resetbot-samba/env)"
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
	if err := e.Bind(e.BindDN, e.BindPassword); err != nil {
		unavailable("Samba at %s does not answer: %v", e.LDAPSURL, err)
		return nil
	}
	cacheMu.Lock()
	cache[path] = *e
	cacheMu.Unlock()
	return e
}

// LoadEnv reads an env file written by scripts/samba.sh, in the bot's .env
// dialect (internal/dotenv).
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
		LDAPSURL:       vars["SAMBA_LDAPS_URL"],
		LDAPURL:        vars["SAMBA_LDAP_URL"],
		CAFile:         vars["SAMBA_CA_FILE"],
		BaseDN:         vars["SAMBA_BASE_DN"],
		Realm:          vars["SAMBA_REALM"],
		Domain:         vars["SAMBA_DOMAIN"],
		AdminDN:        vars["SAMBA_ADMIN_DN"],
		AdminPassword:  vars["SAMBA_ADMIN_PASSWORD"],
		BindDN:         vars["SAMBA_BIND_DN"],
		BindPassword:   vars["SAMBA_BIND_PASSWORD"],
		RWBindDN:       vars["SAMBA_RW_BIND_DN"],
		RWBindPassword: vars["SAMBA_RW_BIND_PASSWORD"],
		SeedPassword:   vars["SAMBA_SEED_PASSWORD"],
	}
	for k, v := range map[string]string{
		"SAMBA_LDAPS_URL": e.LDAPSURL, "SAMBA_LDAP_URL": e.LDAPURL, "SAMBA_CA_FILE": e.CAFile,
		"SAMBA_BASE_DN": e.BaseDN, "SAMBA_ADMIN_DN": e.AdminDN, "SAMBA_ADMIN_PASSWORD": e.AdminPassword,
		"SAMBA_BIND_DN": e.BindDN, "SAMBA_BIND_PASSWORD": e.BindPassword,
	} {
		if v == "" {
			return nil, fmt.Errorf("%s: %s is missing", path, k)
		}
	}
	if e.SeedPassword == "" {
		e.SeedPassword = SeedPassword
	}
	return e, nil
}

// TLSConfig returns a TLS configuration that trusts only CAFile, with the
// ServerName of LDAPSURL's host (which StartTLS needs). It returns a config
// that fails every handshake when CAFile cannot be read.
func (e *Env) TLSConfig() *tls.Config {
	pool := x509.NewCertPool()
	if pem, err := os.ReadFile(e.CAFile); err == nil {
		pool.AppendCertsFromPEM(pem)
	}
	host := "127.0.0.1"
	if u, err := url.Parse(e.LDAPSURL); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	return &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}
}

// dialTimeout bounds connecting and each LDAP operation.
const dialTimeout = 10 * time.Second

// dial opens a fresh LDAPS connection, not bound.
func (e *Env) dial() (*ldap.Conn, error) {
	c, err := ldap.DialURL(e.LDAPSURL, ldap.DialWithTLSConfig(e.TLSConfig()))
	if err != nil {
		return nil, err
	}
	c.SetTimeout(dialTimeout)
	return c, nil
}

// Bind opens a fresh LDAPS connection, does a simple bind as
// userPrincipalOrDN (a DN, user@corp.example.com or CORP\user) and closes it.
// It returns the bind error, e.g. LDAP 49 with "data 52e" (wrong password) or
// "data 533" (disabled).
func (e *Env) Bind(userPrincipalOrDN, password string) error {
	c, err := e.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Bind(userPrincipalOrDN, password)
}

// Admin is an LDAPS connection bound as Administrator. Its methods fail the
// test it was made for (use one Admin per test or subtest: tb.Fatal must run
// on that test's goroutine), except SetPassword which returns the error.
type Admin struct {
	tb   testing.TB
	env  *Env
	conn *ldap.Conn
}

// Admin returns an LDAPS connection bound as Administrator; it is closed by
// tb.Cleanup.
func (e *Env) Admin(tb testing.TB) *Admin {
	tb.Helper()
	c, err := e.dial()
	if err != nil {
		tb.Fatalf("sambatest: dial %s: %v", e.LDAPSURL, err)
	}
	if err := c.Bind(e.AdminDN, e.AdminPassword); err != nil {
		c.Close()
		tb.Fatalf("sambatest: bind as %s: %v", e.AdminDN, err)
	}
	tb.Cleanup(func() { c.Close() })
	return &Admin{tb: tb, env: e, conn: c}
}

// Conn returns the underlying connection, bound as Administrator, for what
// the helpers do not cover.
func (a *Admin) Conn() *ldap.Conn { return a.conn }

// Unique returns prefix followed by "-" and a short random suffix, at most 20
// characters in all (the sAMAccountName limit); a long prefix is cut.
func Unique(prefix string) string {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	suffix := "-" + hex.EncodeToString(b[:])
	if max := 20 - len(suffix); len(prefix) > max {
		prefix = prefix[:max]
	}
	return prefix + suffix
}

// User describes a user for CreateUser. Only Name is required.
type User struct {
	Name        string // sAMAccountName (≤ 20 characters); also the CN
	GivenName   string
	Surname     string
	DisplayName string
	Mail        string
	UPN         string // userPrincipalName; default Name@corp.example.com (lower-case realm)
	Password    string // default Env.SeedPassword
	OU          string // DN of the parent; default OUCorpUsers under Env.BaseDN
	Disabled    bool   // userAccountControl 514 instead of 512
	Manager     string // sAMAccountName of the manager
}

// CreateUser adds a user with its password set and returns its DN
// (CN=<Name>,<OU>). A tb.Cleanup deletes it.
func (a *Admin) CreateUser(u User) string {
	a.tb.Helper()
	if u.Name == "" {
		a.tb.Fatal("sambatest: CreateUser: Name is empty")
	}
	if u.OU == "" {
		u.OU = "OU=Users,OU=CORP," + a.env.BaseDN
	}
	if u.UPN == "" {
		u.UPN = u.Name + "@" + strings.ToLower(a.env.Realm)
	}
	if u.Password == "" {
		u.Password = a.env.SeedPassword
	}
	dn := "CN=" + ldap.EscapeDN(u.Name) + "," + u.OU
	req := ldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "user"})
	req.Attribute("sAMAccountName", []string{u.Name})
	req.Attribute("userPrincipalName", []string{u.UPN})
	for attr, v := range map[string]string{
		"givenName": u.GivenName, "sn": u.Surname, "displayName": u.DisplayName, "mail": u.Mail,
	} {
		if v != "" {
			req.Attribute(attr, []string{v})
		}
	}
	if u.Manager != "" {
		req.Attribute("manager", []string{a.DN(u.Manager)})
	}
	req.Attribute("unicodePwd", []string{encodePassword(u.Password)})
	uac := UACNormalAccount
	if u.Disabled {
		uac |= UACAccountDisable
	}
	req.Attribute("userAccountControl", []string{strconv.Itoa(uac)})
	if err := a.conn.Add(req); err != nil {
		a.tb.Fatalf("sambatest: create user %s: %v", dn, err)
	}
	a.deleteOnCleanup(dn)
	return dn
}

// CreateGroup adds a global security group name (sAMAccountName and CN) in
// OUCorp and returns its DN. A tb.Cleanup deletes it.
func (a *Admin) CreateGroup(name string) string {
	a.tb.Helper()
	dn := "CN=" + ldap.EscapeDN(name) + ",OU=CORP," + a.env.BaseDN
	req := ldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"top", "group"})
	req.Attribute("sAMAccountName", []string{name})
	if err := a.conn.Add(req); err != nil {
		a.tb.Fatalf("sambatest: create group %s: %v", dn, err)
	}
	a.deleteOnCleanup(dn)
	return dn
}

func (a *Admin) deleteOnCleanup(dn string) {
	a.tb.Cleanup(func() {
		err := a.conn.Del(ldap.NewDelRequest(dn, nil))
		if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			a.tb.Errorf("sambatest: cleanup: delete %s: %v", dn, err)
		}
	})
}

// find returns the DN of the one entry matching filter under BaseDN, or an
// *ldap.Error with code NoSuchObject when there is none.
func (a *Admin) find(filter, what string) (string, error) {
	res, err := a.conn.Search(ldap.NewSearchRequest(a.env.BaseDN, ldap.ScopeWholeSubtree,
		ldap.NeverDerefAliases, 2, 0, false, filter, []string{"dn"}, nil))
	if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		return "", err
	}
	switch {
	case res == nil || len(res.Entries) == 0:
		return "", ldap.NewError(ldap.LDAPResultNoSuchObject, fmt.Errorf("sambatest: no %s", what))
	case len(res.Entries) > 1:
		return "", fmt.Errorf("sambatest: more than one %s", what)
	}
	return res.Entries[0].DN, nil
}

// lookup returns the DN of the account with sAMAccountName name, or name
// itself when it is already a DN (contains "=").
func (a *Admin) lookup(name string) (string, error) {
	if strings.Contains(name, "=") {
		return name, nil
	}
	return a.find("(sAMAccountName="+ldap.EscapeFilter(name)+")", fmt.Sprintf("account %q", name))
}

// DN returns the DN of the account (user, group or computer) with
// sAMAccountName name; it fails the test when there is none.
func (a *Admin) DN(name string) string {
	a.tb.Helper()
	dn, err := a.lookup(name)
	if err != nil {
		a.tb.Fatalf("sambatest: DN(%q): %v", name, err)
	}
	return dn
}

// groupDN returns the DN of the group whose sAMAccountName or CN is group.
func (a *Admin) groupDN(group string) string {
	a.tb.Helper()
	if strings.Contains(group, "=") {
		return group
	}
	g := ldap.EscapeFilter(group)
	dn, err := a.find("(&(objectClass=group)(|(sAMAccountName="+g+")(cn="+g+")))", fmt.Sprintf("group %q", group))
	if err != nil {
		a.tb.Fatalf("sambatest: group %q: %v", group, err)
	}
	return dn
}

// modify applies one change to the entry dn and fails the test on error.
func (a *Admin) modify(dn, what string, change func(*ldap.ModifyRequest)) {
	a.tb.Helper()
	req := ldap.NewModifyRequest(dn, nil)
	change(req)
	if err := a.conn.Modify(req); err != nil {
		a.tb.Fatalf("sambatest: %s on %s: %v", what, dn, err)
	}
}

// attr reads one attribute of the account name ("" when it has none).
func (a *Admin) attr(name, attr string) string {
	a.tb.Helper()
	dn := a.DN(name)
	res, err := a.conn.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject,
		ldap.NeverDerefAliases, 1, 0, false, "(objectClass=*)", []string{attr}, nil))
	if err != nil || len(res.Entries) != 1 {
		a.tb.Fatalf("sambatest: read %s of %s: %v", attr, dn, err)
	}
	return res.Entries[0].GetAttributeValue(attr)
}

// AddToGroup makes member (a user, group or computer sAMAccountName, or a DN)
// a direct member of group (sAMAccountName or CN, e.g. "Domain Admins").
func (a *Admin) AddToGroup(member, group string) {
	a.tb.Helper()
	m := a.DN(member)
	a.modify(a.groupDN(group), "add member "+m, func(r *ldap.ModifyRequest) { r.Add("member", []string{m}) })
}

// RemoveFromGroup removes member from the direct members of group.
func (a *Admin) RemoveFromGroup(member, group string) {
	a.tb.Helper()
	m := a.DN(member)
	a.modify(a.groupDN(group), "remove member "+m, func(r *ldap.ModifyRequest) { r.Delete("member", []string{m}) })
}

// SetDisabled sets or clears the ACCOUNTDISABLE bit of userAccountControl.
func (a *Admin) SetDisabled(name string, disabled bool) {
	a.tb.Helper()
	uac := a.UserAccountControl(name)
	if disabled {
		uac |= UACAccountDisable
	} else {
		uac &^= UACAccountDisable
	}
	a.modify(a.DN(name), "set userAccountControl", func(r *ldap.ModifyRequest) {
		r.Replace("userAccountControl", []string{strconv.Itoa(uac)})
	})
}

// SetManager sets the manager of name to the account manager (a
// sAMAccountName or DN); an empty manager removes it.
func (a *Admin) SetManager(name, manager string) {
	a.tb.Helper()
	var v []string
	if manager != "" {
		v = []string{a.DN(manager)}
	}
	a.modify(a.DN(name), "set manager", func(r *ldap.ModifyRequest) { r.Replace("manager", v) })
}

// SetMail sets the mail attribute of name; an empty mail removes it.
func (a *Admin) SetMail(name, mail string) {
	a.tb.Helper()
	var v []string
	if mail != "" {
		v = []string{mail}
	}
	a.modify(a.DN(name), "set mail", func(r *ldap.ModifyRequest) { r.Replace("mail", v) })
}

// SetPwdLastSet replaces pwdLastSet: 0 means "must change password at next
// logon", -1 sets it to now.
func (a *Admin) SetPwdLastSet(name string, v int64) {
	a.tb.Helper()
	a.modify(a.DN(name), "set pwdLastSet", func(r *ldap.ModifyRequest) {
		r.Replace("pwdLastSet", []string{strconv.FormatInt(v, 10)})
	})
}

// UserAccountControl returns the userAccountControl of name (512 enabled,
// 514 disabled, 4096 a workstation).
func (a *Admin) UserAccountControl(name string) int {
	a.tb.Helper()
	v, err := strconv.Atoi(a.attr(name, "userAccountControl"))
	if err != nil {
		a.tb.Fatalf("sambatest: userAccountControl of %s: %v", name, err)
	}
	return v
}

// PwdLastSet returns the pwdLastSet of name: a Windows FILETIME (100 ns
// intervals since 1601), 0 when the password must be changed at next logon.
func (a *Admin) PwdLastSet(name string) int64 {
	a.tb.Helper()
	v, err := strconv.ParseInt(a.attr(name, "pwdLastSet"), 10, 64)
	if err != nil {
		a.tb.Fatalf("sambatest: pwdLastSet of %s: %v", name, err)
	}
	return v
}

// SetPassword resets the password of name (a sAMAccountName or DN) as an
// administrator: a replace of unicodePwd. It returns the LDAP error unchanged,
// e.g. code 19 (constraint violation) for a password the policy rejects, and
// an *ldap.Error with code 32 (no such object) when there is no such account.
// The errors it makes itself never contain the password.
func (a *Admin) SetPassword(name, password string) error {
	dn, err := a.lookup(name)
	if err != nil {
		return err
	}
	req := ldap.NewModifyRequest(dn, nil)
	req.Replace("unicodePwd", []string{encodePassword(password)})
	return a.conn.Modify(req)
}

// encodePassword returns the unicodePwd value for password: the password in
// double quotes, encoded UTF-16LE.
func encodePassword(password string) string {
	u := utf16.Encode([]rune(`"` + password + `"`))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return string(b)
}

// IsConstraintViolation reports whether err is LDAP result 19, what Samba
// returns for a password the policy rejects.
func IsConstraintViolation(err error) bool {
	return ldap.IsErrorWithCode(err, ldap.LDAPResultConstraintViolation)
}

// IsInvalidCredentials reports whether err is LDAP result 49, a failed bind.
func IsInvalidCredentials(err error) bool {
	return ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials)
}

// ResetBackend plays AWS Directory Service's ResetUserPassword on this
// domain (it satisfies dstest.Backend): it sets the password as an
// administrator and, as AWS does, enables the account if it was disabled.
// It answers "" or the API exception, and is safe for concurrent use.
type ResetBackend struct{ a *Admin }

// ResetBackend returns the backend for a Directory Service test server.
func (a *Admin) ResetBackend() ResetBackend { return ResetBackend{a} }

// SetPassword resets user's password like ResetUserPassword.
func (b ResetBackend) SetPassword(user, password string) string {
	dn, err := b.a.lookup(user)
	switch {
	case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
		return "UserDoesNotExistException"
	case err != nil:
		return "ServiceException"
	}
	if err := b.a.SetPassword(dn, password); err != nil {
		if IsConstraintViolation(err) {
			return "InvalidPasswordException"
		}
		return "ServiceException"
	}
	res, err := b.a.conn.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		1, 0, false, "(objectClass=*)", []string{"userAccountControl"}, nil))
	if err != nil || len(res.Entries) != 1 {
		return "ServiceException"
	}
	uac, _ := strconv.Atoi(res.Entries[0].GetAttributeValue("userAccountControl"))
	if uac&UACAccountDisable != 0 {
		req := ldap.NewModifyRequest(dn, nil)
		req.Replace("userAccountControl", []string{strconv.Itoa(uac &^ UACAccountDisable)})
		if err := b.a.conn.Modify(req); err != nil {
			return "ServiceException"
		}
	}
	return ""
}
