package accounts_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/example/resetbot/accounts"
	"github.com/example/resetbot/internal/sambatest"
	"github.com/example/resetbot/ldapdir"
	"github.com/example/resetbot/workflow"
)

// These tests run Accounts on the real directory (Samba AD through
// ldapdir): the unlock and disable of the very object a request was made
// for, by an account with the delegations the README asks for.

// directory returns Accounts on env, bound as bindDN.
func directory(t *testing.T, env *sambatest.Env, bindDN, password string) *accounts.Accounts {
	t.Helper()
	c, err := ldapdir.New(ldapdir.Options{URL: env.LDAPSURL, BindDN: bindDN, BindPassword: password, BaseDN: env.BaseDN,
		CAFile: env.CAFile, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return accounts.New(accounts.Options{ProtectedUsers: accounts.DefaultProtectedUsers, Lookup: c, RefuseAdminCount: true})
}

// lockedUser creates a user in o, finds and checks its account as a
// request would, then locks it out.
func lockedUser(t *testing.T, admin *sambatest.Admin, a *accounts.Accounts, o sambatest.LockoutOU) workflow.Account {
	t.Helper()
	name := sambatest.Unique("acct")
	admin.CreateLockableUser(o, sambatest.User{Name: name, Mail: sambatest.Mail(name)})
	ctx := context.Background()
	acct, err := a.Find(ctx, workflow.Person{ID: "U1", Email: sambatest.Mail(name)})
	if err == nil {
		acct, err = a.Check(ctx, acct)
	}
	if err != nil {
		t.Fatalf("the account of %s: %v", name, err)
	}
	admin.LockOut(name, 3)
	return acct
}

func TestUnlockOnSamba(t *testing.T) {
	t.Parallel()
	env := sambatest.Require(t)
	admin := env.Admin(t)
	o := admin.CreateLockoutOU(sambatest.PSO{LockoutThreshold: 3})
	a := directory(t, env, o.Operator, env.SeedPassword)
	ctx := context.Background()

	t.Run("unlocks the object asked for", func(t *testing.T) {
		admin := env.Admin(t) // one per subtest: its failures must stop this one
		acct := lockedUser(t, admin, a, o)
		f, err := a.Facts(ctx, acct)
		if err != nil || !f.Lockout.Locked || !f.Lockout.End.UntilUnlocked || f.BadPasswords.Count != 3 {
			t.Fatalf("Facts = %+v, %v; want locked until unlocked, 3 bad passwords", f, err)
		}
		if err := a.Unlock(ctx, acct); err != nil {
			t.Fatalf("Unlock: %v", err)
		}
		if admin.Locked(acct.UserName) || admin.BadPwdCount(acct.UserName) != 0 {
			t.Errorf("after Unlock: locked %v, badPwdCount %d", admin.Locked(acct.UserName), admin.BadPwdCount(acct.UserName))
		}
		if err := env.Bind(acct.DN, env.SeedPassword); err != nil {
			t.Errorf("the old password after Unlock: %v", err)
		}
	})

	t.Run("refuses a stale DN", func(t *testing.T) {
		admin := env.Admin(t)
		acct := lockedUser(t, admin, a, o)
		admin.Rename(acct.DN, "CN=Renamed "+acct.UserName, "")
		if err := a.Unlock(ctx, acct); workflow.ErrorCode(err) != workflow.CodeAccountChanged {
			t.Errorf("Unlock after a rename = %v, want %s", err, workflow.CodeAccountChanged)
		}
		if _, err := a.Facts(ctx, acct); workflow.ErrorCode(err) != workflow.CodeAccountChanged {
			t.Errorf("Facts after a rename = %v, want %s", err, workflow.CodeAccountChanged)
		}
		if !admin.Locked(acct.UserName) {
			t.Error("the renamed account was unlocked")
		}
	})

	t.Run("refuses another object's GUID", func(t *testing.T) {
		admin := env.Admin(t)
		x, y := lockedUser(t, admin, a, o), lockedUser(t, admin, a, o)
		forged := x
		forged.GUID = y.GUID
		if err := a.Unlock(ctx, forged); workflow.ErrorCode(err) != workflow.CodeAccountChanged {
			t.Errorf("Unlock with another object's GUID = %v, want %s", err, workflow.CodeAccountChanged)
		}
		if !admin.Locked(x.UserName) || !admin.Locked(y.UserName) {
			t.Error("an object was unlocked")
		}
	})

	t.Run("applies the guards", func(t *testing.T) {
		admin := env.Admin(t)
		acct := lockedUser(t, admin, a, o)
		admin.AddToGroup(acct.DN, sambatest.GroupDomainAdmins)
		defer admin.RemoveFromGroup(acct.DN, sambatest.GroupDomainAdmins)
		if err := a.Unlock(ctx, acct); workflow.ErrorCode(err) != workflow.CodeProtectedGroup {
			t.Errorf("Unlock of a Domain Admin = %v, want %s", err, workflow.CodeProtectedGroup)
		}
		if !admin.Locked(acct.UserName) {
			t.Error("a Domain Admin was unlocked")
		}
	})

	t.Run("without the right", func(t *testing.T) {
		admin := env.Admin(t)
		acct := lockedUser(t, admin, a, o)
		ro := directory(t, env, env.BindDN, env.BindPassword)
		err := ro.Unlock(ctx, acct)
		if !errors.Is(err, accounts.ErrNotPermitted) || workflow.ErrorCode(err) != workflow.CodeDirectoryMisconfigured ||
			strings.Contains(err.Error(), env.BindPassword) {
			t.Errorf("Unlock without the right = %v; want ErrNotPermitted", err)
		}
		if !admin.Locked(acct.UserName) || admin.BadPwdCount(acct.UserName) != 3 {
			t.Error("a refused unlock changed the account")
		}
	})
}

func TestDisableOnSamba(t *testing.T) {
	t.Parallel()
	env := sambatest.Require(t)
	admin := env.Admin(t)
	o := admin.CreateLockoutOU(sambatest.PSO{LockoutThreshold: 3})
	a := directory(t, env, o.Operator, env.SeedPassword)
	ctx := context.Background()
	name := sambatest.Unique("acctd")
	admin.CreateLockableUser(o, sambatest.User{Name: name, Mail: sambatest.Mail(name)})
	acct, err := a.Find(ctx, workflow.Person{ID: "U1", Email: sambatest.Mail(name)})
	if err != nil {
		t.Fatal(err)
	}
	stale := acct
	stale.DN = "CN=Elsewhere," + sambatest.OUCorpUsers
	if _, err := a.Disable(ctx, stale); workflow.ErrorCode(err) != workflow.CodeAccountChanged {
		t.Errorf("Disable with a stale DN = %v, want %s", err, workflow.CodeAccountChanged)
	}
	if changed, err := a.Disable(ctx, acct); err != nil || !changed {
		t.Fatalf("Disable = %v, %v", changed, err)
	}
	if err := env.Bind(acct.DN, env.SeedPassword); err == nil || !strings.Contains(err.Error(), "data 533") {
		t.Errorf("bind after Disable: %v, want data 533", err)
	}
	if _, err := a.Check(ctx, acct); workflow.ErrorCode(err) != workflow.CodeAccountDisabled {
		t.Errorf("Check after Disable = %v, want %s", err, workflow.CodeAccountDisabled)
	}
}
