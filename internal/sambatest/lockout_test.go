package sambatest

import (
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// bindAs returns an LDAPS connection bound as dn with password.
func bindAs(t *testing.T, e *Env, dn, password string) *ldap.Conn {
	t.Helper()
	c, err := e.dial()
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Bind(dn, password); err != nil {
		t.Fatalf("bind as %s: %v", dn, err)
	}
	return c
}

func replace(c *ldap.Conn, dn, attr, value string) error {
	req := ldap.NewModifyRequest(dn, nil)
	req.Replace(attr, []string{value})
	return c.Modify(req)
}

// TestLockOutUnderPSO: a PSO with a threshold of 3 applied to a group
// locks its members after 3 bad passwords and nobody else: the domain's
// policy (threshold 0 here) is untouched.
func TestLockOutUnderPSO(t *testing.T) {
	t.Parallel()
	e := Require(t)
	a := e.Admin(t)
	ou := a.CreateOU(Unique("lockou"), "")
	member := Unique("lockm")
	memberDN := a.CreateUser(User{Name: member, OU: ou})
	other := Unique("locko")
	otherDN := a.CreateUser(User{Name: other, OU: ou})
	group := a.CreateGroupIn(Group{Name: Unique("lockg"), OU: ou})
	a.AddToGroup(member, group)
	pso := a.CreatePSO(PSO{LockoutThreshold: 3, AppliesTo: []string{group}})
	if got := a.ResultantPSO(member); !strings.EqualFold(got, pso) {
		t.Fatalf("msDS-ResultantPSO of the member = %q, want %q", got, pso)
	}
	if got := a.ResultantPSO(other); got != "" {
		t.Fatalf("msDS-ResultantPSO of a non-member = %q", got)
	}
	before := FileTime(time.Now().Add(-time.Minute))
	a.LockOut(member, 3)
	if n := a.BadPwdCount(member); n != 3 {
		t.Errorf("badPwdCount = %d, want 3", n)
	}
	if lt := a.LockoutTime(member); lt < before {
		t.Errorf("lockoutTime = %d, want at least %d", lt, before)
	}
	if err := e.Bind(memberDN, e.SeedPassword); !IsInvalidCredentials(err) || !strings.Contains(err.Error(), "data 775") {
		t.Errorf("bind with the right password while locked: %v, want data 775", err)
	}
	for i := 0; i < 3; i++ {
		e.Bind(otherDN, "Wrong-Passw0rd-9")
	}
	if a.Locked(other) {
		t.Errorf("a user outside the PSO's group is locked: the domain policy locks?")
	}
	if err := e.Bind(otherDN, e.SeedPassword); err != nil {
		t.Errorf("bind as the user outside the PSO: %v", err)
	}
}

// TestDelegateWrite: an account of the test's own may write exactly the
// delegated attribute of users under the OU, and nothing else.
func TestDelegateWrite(t *testing.T) {
	t.Parallel()
	e := Require(t)
	a := e.Admin(t)
	ou := a.CreateOU(Unique("delou"), "")
	op := Unique("delop")
	opDN := a.CreateUser(User{Name: op})
	inside := a.CreateUser(User{Name: Unique("deli"), OU: ou})
	outside := a.CreateUser(User{Name: Unique("delx")}) // OU=Users,OU=CORP: not under ou
	c := bindAs(t, e, opDN, e.SeedPassword)

	if err := replace(c, inside, AttrLockoutTime, "0"); !ldap.IsErrorWithCode(err, ldap.LDAPResultInsufficientAccessRights) {
		t.Fatalf("write lockoutTime before the delegation: %v, want LDAP 50", err)
	}
	a.DelegateWrite(ou, op, AttrLockoutTime)
	if err := replace(c, inside, AttrLockoutTime, "0"); err != nil {
		t.Errorf("write lockoutTime under the OU: %v", err)
	}
	if err := replace(c, outside, AttrLockoutTime, "0"); !ldap.IsErrorWithCode(err, ldap.LDAPResultInsufficientAccessRights) {
		t.Errorf("write lockoutTime outside the OU: %v, want LDAP 50", err)
	}
	if err := replace(c, inside, AttrUserAccountControl, "514"); !ldap.IsErrorWithCode(err, ldap.LDAPResultInsufficientAccessRights) {
		t.Errorf("write userAccountControl with only lockoutTime delegated: %v, want LDAP 50", err)
	}
	a.DelegateWrite(ou, op, AttrUserAccountControl)
	if err := replace(c, inside, AttrUserAccountControl, "514"); err != nil {
		t.Errorf("write userAccountControl after its delegation: %v", err)
	}
	if uac := a.UserAccountControl(inside); uac != 514 {
		t.Errorf("userAccountControl = %d, want 514", uac)
	}
}

// TestAllowRead: the service account cannot read a PSO's lockout duration
// until it is allowed to.
func TestAllowRead(t *testing.T) {
	t.Parallel()
	e := Require(t)
	a := e.Admin(t)
	pso := a.CreatePSO(PSO{LockoutThreshold: 3, LockoutDuration: 10 * time.Minute})
	svc := bindSvc(t, e)
	read := func() string {
		t.Helper()
		res, err := svc.Search(ldap.NewSearchRequest(pso, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
			1, 0, false, "(objectClass=*)", []string{"msDS-LockoutDuration"}, nil))
		if err != nil || len(res.Entries) != 1 {
			t.Fatalf("read %s: %v", pso, err)
		}
		return res.Entries[0].GetAttributeValue("msDS-LockoutDuration")
	}
	if v := read(); v != "" {
		t.Fatalf("the service account reads msDS-LockoutDuration before AllowRead: %q", v)
	}
	a.AllowRead(pso, e.BindDN, "msDS-LockoutDuration")
	if v := read(); v != "-6000000000" {
		t.Errorf("msDS-LockoutDuration = %q, want -6000000000 (10 minutes)", v)
	}
}

// TestRename: the object keeps its GUID, and is found under its new DN.
func TestRename(t *testing.T) {
	t.Parallel()
	e := Require(t)
	a := e.Admin(t)
	name := Unique("ren")
	dn := a.CreateUser(User{Name: name})
	guid := a.attr(name, "objectGUID")
	ou := a.CreateOU(Unique("renou"), "")
	newDN := a.Rename(dn, "CN=Renamed "+name, ou)
	if want := "CN=Renamed " + name + "," + ou; newDN != want || a.DN(name) != want {
		t.Errorf("Rename = %s, DN = %s, want %s", newDN, a.DN(name), want)
	}
	if a.attr(name, "objectGUID") != guid {
		t.Error("the objectGUID changed")
	}
}

func TestIntervalAndFileTime(t *testing.T) {
	if got := Interval(30 * time.Minute); got != -18000000000 {
		t.Errorf("Interval(30m) = %d, want -18000000000 (what the domain shows)", got)
	}
	if got := Interval(0); got != 0 {
		t.Errorf("Interval(0) = %d", got)
	}
	if got := FileTime(time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)); got != 116444736000000000 {
		t.Errorf("FileTime(Unix epoch) = %d", got)
	}
}
