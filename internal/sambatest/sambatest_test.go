package sambatest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

// bindSvc returns an LDAPS connection bound as the service account.
func bindSvc(t *testing.T, e *Env) *ldap.Conn {
	t.Helper()
	c, err := ldap.DialURL(e.LDAPSURL, ldap.DialWithTLSConfig(e.TLSConfig()))
	if err != nil {
		t.Fatalf("dial %s: %v", e.LDAPSURL, err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Bind(e.BindDN, e.BindPassword); err != nil {
		t.Fatalf("bind as service account: %v", err)
	}
	return c
}

// search runs a subtree search under BaseDN and returns the entries.
func search(t *testing.T, c *ldap.Conn, e *Env, filter string, attrs ...string) []*ldap.Entry {
	t.Helper()
	res, err := c.Search(ldap.NewSearchRequest(e.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		0, 0, false, filter, attrs, nil))
	if err != nil {
		t.Fatalf("search %s: %v", filter, err)
	}
	return res.Entries
}

func names(entries []*ldap.Entry) []string {
	var out []string
	for _, en := range entries {
		out = append(out, en.GetAttributeValue("sAMAccountName"))
	}
	slices.Sort(out)
	return out
}

// The env file is in the bot's .env dialect (internal/dotenv), as
// scripts/samba.sh quotes it: an embedded quote is \'.
func TestLoadEnvQuoting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "env")
	content := "# comment\n\nSAMBA_LDAPS_URL=ldaps://127.0.0.1:636\nSAMBA_LDAP_URL=ldap://127.0.0.1:389\n" +
		"SAMBA_CA_FILE='/tmp/a dir/ca.pem'\nSAMBA_BASE_DN=DC=corp,DC=example,DC=com\n" +
		"SAMBA_ADMIN_DN=CN=Administrator,CN=Users,DC=corp,DC=example,DC=com\n" +
		"SAMBA_ADMIN_PASSWORD='it\\'s'\nSAMBA_BIND_DN=\"CN=svc,CN=Users\"\nSAMBA_BIND_PASSWORD=p=w\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := LoadEnv(path)
	if err != nil {
		t.Fatal(err)
	}
	if e.CAFile != "/tmp/a dir/ca.pem" || e.AdminPassword != "it's" || e.BindDN != "CN=svc,CN=Users" ||
		e.BindPassword != "p=w" || e.SeedPassword != SeedPassword {
		t.Errorf("LoadEnv = %+v", e)
	}
	if err := os.WriteFile(path, []byte("SAMBA_LDAPS_URL=x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadEnv(path); err == nil {
		t.Error("LoadEnv of an incomplete file: no error")
	}
}

func TestUnique(t *testing.T) {
	a, b := Unique("rb"), Unique("rb")
	if a == b || !strings.HasPrefix(a, "rb-") {
		t.Errorf("Unique(rb) = %q, %q", a, b)
	}
	if u := Unique("a-very-long-prefix-that-is-too-long"); len(u) > 20 {
		t.Errorf("Unique(long) = %q, %d characters", u, len(u))
	}
}

func TestEnvMatchesConstants(t *testing.T) {
	e := Require(t)
	if e.BaseDN != BaseDN || e.Realm != Realm || e.Domain != Domain || e.BindDN != ServiceAccountDN ||
		e.AdminDN != AdministratorDN || e.SeedPassword != SeedPassword {
		t.Errorf("env %+v does not match the package constants", *e)
	}
}

func TestServiceAccountLDAPS(t *testing.T) {
	t.Parallel()
	e := Require(t)
	c := bindSvc(t, e)
	got := search(t, c, e, "(&(objectCategory=person)(objectClass=user)(mail="+ldap.EscapeFilter(Mail(UserAlice))+"))",
		"sAMAccountName", "mail", "manager", "userAccountControl", "userPrincipalName")
	if len(got) != 1 || got[0].DN != UserAliceDN || got[0].GetAttributeValue("sAMAccountName") != UserAlice ||
		got[0].GetAttributeValue("userAccountControl") != "512" ||
		got[0].GetAttributeValue("userPrincipalName") != "alice@corp.example.com" {
		t.Fatalf("search alice by mail: %d entries", len(got))
	}
	users := search(t, c, e, "(&(objectCategory=person)(objectClass=user))", "sAMAccountName")
	all := names(users)
	for _, n := range []string{ManagerMaria, UserAlice, UserBob, UserCarol, UserDave, ManagerDisabled, UserDisabled,
		UserDomainAdmin, UserNestedAdmin, UserTwin1, UserTwin2, UserUPNOnly, UserOutsider, ServiceAccount} {
		if !slices.Contains(all, n) {
			t.Errorf("user %s not found; users: %v", n, all)
		}
	}
	if slices.Contains(all, ComputerWS01) {
		t.Errorf("(objectCategory=person) matched the computer %s", ComputerWS01)
	}
}

func TestServiceAccountStartTLS(t *testing.T) {
	t.Parallel()
	e := Require(t)
	c, err := ldap.DialURL(e.LDAPURL)
	if err != nil {
		t.Fatalf("dial %s: %v", e.LDAPURL, err)
	}
	defer c.Close()
	if err := c.StartTLS(e.TLSConfig()); err != nil {
		t.Fatalf("StartTLS: %v", err)
	}
	if st, ok := c.TLSConnectionState(); !ok || !st.HandshakeComplete {
		t.Fatal("no TLS after StartTLS")
	}
	if err := c.Bind(e.BindDN, e.BindPassword); err != nil {
		t.Fatalf("bind: %v", err)
	}
	got := search(t, c, e, "(sAMAccountName="+UserBob+")", "mail")
	if len(got) != 1 || got[0].GetAttributeValue("mail") != Mail(UserBob) {
		t.Fatalf("search bob: %v", got)
	}
}

func TestInChainDomainAdmins(t *testing.T) {
	t.Parallel()
	e := Require(t)
	c := bindSvc(t, e)
	got := names(search(t, c, e, "(&(objectClass=user)(memberOf:1.2.840.113556.1.4.1941:="+
		ldap.EscapeFilter(DomainAdminsDN)+"))", "sAMAccountName"))
	for _, n := range []string{UserDomainAdmin, UserNestedAdmin, Administrator} {
		if !slices.Contains(got, n) {
			t.Errorf("in-chain Domain Admins misses %s: %v", n, got)
		}
	}
	if slices.Contains(got, UserAlice) {
		t.Errorf("in-chain Domain Admins has alice: %v", got)
	}
	// Direct membership only: nested1 is not a direct member.
	direct := names(search(t, c, e, "(&(objectClass=user)(memberOf="+ldap.EscapeFilter(DomainAdminsDN)+"))",
		"sAMAccountName"))
	if slices.Contains(direct, UserNestedAdmin) || !slices.Contains(direct, UserDomainAdmin) {
		t.Errorf("direct Domain Admins = %v", direct)
	}
	tier0 := search(t, c, e, "(sAMAccountName="+ldap.EscapeFilter(GroupTier0)+")", "memberOf")
	if len(tier0) != 1 || tier0[0].DN != Tier0DN || tier0[0].GetAttributeValue("memberOf") != DomainAdminsDN {
		t.Errorf("Tier0 Ops: %v", tier0)
	}
}

func TestDisabledFilter(t *testing.T) {
	t.Parallel()
	e := Require(t)
	c := bindSvc(t, e)
	got := names(search(t, c, e, "(&(objectCategory=person)(userAccountControl:1.2.840.113556.1.4.803:=2))",
		"sAMAccountName"))
	if !slices.Contains(got, UserDisabled) || !slices.Contains(got, ManagerDisabled) || slices.Contains(got, UserAlice) {
		t.Errorf("disabled users = %v", got)
	}
}

func TestSeededAttributes(t *testing.T) {
	t.Parallel()
	e := Require(t)
	c := bindSvc(t, e)
	one := func(filter string, attrs ...string) *ldap.Entry {
		t.Helper()
		got := search(t, c, e, filter, attrs...)
		if len(got) != 1 {
			t.Fatalf("%s: %d entries", filter, len(got))
		}
		return got[0]
	}
	if m := one("(sAMAccountName=alice)", "manager").GetAttributeValue("manager"); m != ManagerMariaDN {
		t.Errorf("alice's manager = %q, want %q", m, ManagerMariaDN)
	}
	if m := one("(sAMAccountName=bob)", "manager").GetAttributeValue("manager"); m != ManagerMariaDN {
		t.Errorf("bob's manager = %q", m)
	}
	if m := one("(sAMAccountName=carol)", "manager").GetAttributeValue("manager"); m != "" {
		t.Errorf("carol's manager = %q", m)
	}
	if m := one("(sAMAccountName=dave)", "manager").GetAttributeValue("manager"); m != ManagerDisabledDN {
		t.Errorf("dave's manager = %q", m)
	}
	if got := names(search(t, c, e, "(mail="+SharedMail+")", "sAMAccountName")); !slices.Equal(got, []string{UserTwin1, UserTwin2}) {
		t.Errorf("users with %s = %v", SharedMail, got)
	}
	u := one("(userPrincipalName="+UPNOnly+")", "mail", "sAMAccountName")
	if u.GetAttributeValue("sAMAccountName") != UserUPNOnly || u.GetAttributeValue("mail") != "" {
		t.Errorf("upnonly: %v", u)
	}
	ws := one("(mail="+ComputerMail+")", "objectClass", "sAMAccountName", "userAccountControl")
	if ws.GetAttributeValue("sAMAccountName") != ComputerWS01 || !slices.Contains(ws.GetAttributeValues("objectClass"), "computer") ||
		ws.GetAttributeValue("userAccountControl") != "4096" {
		t.Errorf("ws01: %v", ws)
	}
	if o := one("(mail=" + Mail(UserOutsider) + ")"); !strings.HasSuffix(o.DN, ","+OUElsewhere) {
		t.Errorf("outsider DN = %s", o.DN)
	}
}

func TestSeededPasswordsWork(t *testing.T) {
	t.Parallel()
	e := Require(t)
	if err := e.Bind("alice@corp.example.com", e.SeedPassword); err != nil {
		t.Errorf("bind alice by UPN: %v", err)
	}
	if err := e.Bind(UserAliceDN, e.SeedPassword); err != nil {
		t.Errorf("bind alice by DN: %v", err)
	}
	if err := e.Bind(UserAliceDN, "Wrong-Passw0rd"); !IsInvalidCredentials(err) {
		t.Errorf("bind alice with a wrong password: %v", err)
	}
	if err := e.Bind(Mail(UserDisabled), e.SeedPassword); !IsInvalidCredentials(err) {
		t.Errorf("bind disabled1: %v", err)
	}
}

func TestCreateUserSetPasswordBind(t *testing.T) {
	t.Parallel()
	e := Require(t)
	a := e.Admin(t)
	name := Unique("rbt")
	dn := a.CreateUser(User{Name: name, GivenName: "Test", Surname: "User", DisplayName: "Test User",
		Mail: name + "@corp.example.com", Manager: ManagerMaria})
	if dn != "CN="+name+","+OUCorpUsers || a.DN(name) != dn {
		t.Fatalf("CreateUser = %s, DN = %s", dn, a.DN(name))
	}
	if uac := a.UserAccountControl(name); uac != 512 {
		t.Errorf("userAccountControl = %d", uac)
	}
	upn := name + "@corp.example.com"
	if err := e.Bind(upn, e.SeedPassword); err != nil {
		t.Fatalf("bind with the initial password: %v", err)
	}
	before := a.PwdLastSet(name)
	const newPW = "New-Passw0rd-42"
	if err := a.SetPassword(name, newPW); err != nil {
		t.Fatalf("SetPassword: %v", err)
	}
	if err := e.Bind(upn, newPW); err != nil {
		t.Errorf("bind with the new password: %v", err)
	}
	if err := e.Bind(dn, e.SeedPassword); !IsInvalidCredentials(err) {
		t.Errorf("bind with the old password: %v, want LDAP 49", err)
	}
	if after := a.PwdLastSet(name); after < before || after == 0 {
		t.Errorf("pwdLastSet %d -> %d", before, after)
	}

	a.SetMail(name, "other@corp.example.com")
	a.SetManager(name, "")
	res, err := a.Conn().Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"mail", "manager"}, nil))
	if err != nil || res.Entries[0].GetAttributeValue("mail") != "other@corp.example.com" ||
		res.Entries[0].GetAttributeValue("manager") != "" {
		t.Errorf("after SetMail/SetManager: %v %v", res, err)
	}
}

func TestCreateUserCleanup(t *testing.T) {
	t.Parallel()
	e := Require(t)
	name := Unique("rbt")
	t.Run("create", func(t *testing.T) {
		a := e.Admin(t)
		a.CreateUser(User{Name: name, Disabled: true})
		if uac := a.UserAccountControl(name); uac != 514 {
			t.Errorf("userAccountControl = %d, want 514", uac)
		}
	})
	a := e.Admin(t)
	if _, err := a.lookup(name); !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		t.Errorf("after the subtest, lookup(%s) = %v, want no such object", name, err)
	}
}

func TestSetDisabled(t *testing.T) {
	t.Parallel()
	e := Require(t)
	a := e.Admin(t)
	name := Unique("rbt")
	dn := a.CreateUser(User{Name: name})
	a.SetDisabled(name, true)
	if uac := a.UserAccountControl(name); uac != 514 {
		t.Errorf("userAccountControl = %d, want 514", uac)
	}
	err := e.Bind(dn, e.SeedPassword)
	if !IsInvalidCredentials(err) || !strings.Contains(err.Error(), "data 533") {
		t.Errorf("bind a disabled user: %v, want LDAP 49 data 533", err)
	}
	a.SetDisabled(name, false)
	if err := e.Bind(dn, e.SeedPassword); err != nil {
		t.Errorf("bind after enabling: %v", err)
	}
}

func TestPwdLastSetZero(t *testing.T) {
	t.Parallel()
	e := Require(t)
	a := e.Admin(t)
	name := Unique("rbt")
	dn := a.CreateUser(User{Name: name})
	if v := a.PwdLastSet(name); v <= 0 {
		t.Errorf("pwdLastSet of a new user = %d", v)
	}
	req := ldap.NewModifyRequest(dn, nil)
	req.Replace("pwdLastSet", []string{"0"})
	if err := a.Conn().Modify(req); err != nil {
		t.Fatalf("set pwdLastSet=0: %v", err)
	}
	if v := a.PwdLastSet(name); v != 0 {
		t.Errorf("pwdLastSet = %d, want 0", v)
	}
	if err := e.Bind(dn, e.SeedPassword); !IsInvalidCredentials(err) || !strings.Contains(err.Error(), "data 773") {
		t.Errorf("bind with must-change-password: %v, want LDAP 49 data 773", err)
	}
	a.SetPwdLastSet(name, -1)
	if v := a.PwdLastSet(name); v <= 0 {
		t.Errorf("pwdLastSet after -1 = %d", v)
	}
}

func TestSetPasswordRejected(t *testing.T) {
	t.Parallel()
	e := Require(t)
	a := e.Admin(t)
	name := Unique("rbt")
	a.CreateUser(User{Name: name})
	for _, pw := range []string{"Ab1-x", "alllowercaseletters"} {
		err := a.SetPassword(name, pw)
		if !IsConstraintViolation(err) {
			t.Errorf("SetPassword(%q) = %v, want LDAP 19", pw, err)
			continue
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("error contains the password: %v", err)
		}
	}
	err := a.SetPassword("no-such-user-xyz", "Valid-Passw0rd-9")
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) || strings.Contains(err.Error(), "Valid-Passw0rd-9") {
		t.Errorf("SetPassword(no such user) = %v, want LDAP 32 without the password", err)
	}
	err = a.SetPassword("CN=nobody,"+OUCorpUsers, "Valid-Passw0rd-9")
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		t.Errorf("SetPassword(no such DN) = %v, want LDAP 32", err)
	}
}

func TestGroups(t *testing.T) {
	t.Parallel()
	e := Require(t)
	a := e.Admin(t)
	user := Unique("rbt")
	group := Unique("rbg")
	a.CreateUser(User{Name: user})
	gdn := a.CreateGroup(group)
	a.AddToGroup(user, group)
	a.AddToGroup(group, GroupDomainAdmins)
	inChain := func() bool {
		res, err := a.Conn().Search(ldap.NewSearchRequest(e.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
			0, 0, false, "(&(sAMAccountName="+user+")(memberOf:1.2.840.113556.1.4.1941:="+
				ldap.EscapeFilter(DomainAdminsDN)+"))", []string{"dn"}, nil))
		if err != nil {
			t.Fatalf("search: %v", err)
		}
		return len(res.Entries) == 1
	}
	if !inChain() {
		t.Errorf("%s (in %s in Domain Admins) not found in chain", user, gdn)
	}
	a.RemoveFromGroup(group, GroupDomainAdmins)
	if inChain() {
		t.Errorf("%s still in Domain Admins after RemoveFromGroup", user)
	}
}

// TestDenyRead: after DenyRead the service account no longer sees the
// attribute (Administrator still does), and sees the others as before.
func TestDenyRead(t *testing.T) {
	t.Parallel()
	e := Require(t)
	a := e.Admin(t)
	svc := bindSvc(t, e)
	for _, attr := range []string{"userAccountControl", "objectSid", "tokenGroups", "objectGUID"} {
		t.Run(attr, func(t *testing.T) {
			name := Unique("deny")
			dn := a.CreateUser(User{Name: name, Mail: Mail(name)})
			read := func(c *ldap.Conn) *ldap.Entry {
				t.Helper()
				res, err := c.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
					1, 0, false, "(objectClass=*)", []string{attr, "mail"}, nil))
				if err != nil || len(res.Entries) != 1 {
					t.Fatalf("read %s: %v", dn, err)
				}
				return res.Entries[0]
			}
			if len(read(svc).GetRawAttributeValues(attr)) == 0 {
				t.Fatalf("the service account cannot read %s even before DenyRead", attr)
			}
			a.DenyRead(name, e.BindDN, attr)
			got := read(svc)
			if v := got.GetRawAttributeValues(attr); len(v) != 0 {
				t.Errorf("the service account still reads %s: %d values", attr, len(v))
			}
			if got.GetAttributeValue("mail") != Mail(name) {
				t.Errorf("mail is not readable any more: %+v", got.Attributes)
			}
			if len(read(a.Conn()).GetRawAttributeValues(attr)) == 0 {
				t.Errorf("Administrator no longer reads %s", attr)
			}
		})
	}
}

func TestSIDBytes(t *testing.T) {
	for _, s := range []string{"S-1-5-21-2762181868-1211527815-1696508331-512", "S-1-5-32-544", "S-1-1-0"} {
		b, err := sidBytes(s)
		if err != nil {
			t.Fatalf("sidBytes(%s): %v", s, err)
		}
		if back, err := sidString(b); err != nil || back != s {
			t.Errorf("round trip of %s = %s, %v", s, back, err)
		}
	}
	for _, s := range []string{"", "S-1", "S-2-5-32", "S-1-5-x", "X-1-5-32-544"} {
		if _, err := sidBytes(s); err == nil {
			t.Errorf("sidBytes(%q) = nil error", s)
		}
	}
}
