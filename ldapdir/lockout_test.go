package ldapdir

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/example/resetbot/accounts"
	"github.com/example/resetbot/internal/sambatest"
	"github.com/example/resetbot/workflow"
)

// Lockout on the shared Samba: its domain policy never locks, so each test
// has an OU of its own with a PSO that does (sambatest.CreateLockoutOU),
// and reads and writes as that OU's operator, an account of its own with
// the delegations the README asks operators for.

// operatorClient returns a client bound as o's operator.
func operatorClient(t *testing.T, env *sambatest.Env, o sambatest.LockoutOU) *Client {
	t.Helper()
	opts := baseOptions(env)
	opts.BindDN, opts.BindPassword = o.Operator, env.SeedPassword
	c, _ := newClient(t, opts)
	return c
}

// facts reads name's facts through c by name.
func facts(t *testing.T, c *Client, name string) accounts.Facts {
	t.Helper()
	return userEntry(t, c, name).Facts
}

// fileTime is the time of the FILETIME v.
func fileTime(t *testing.T, v int64) time.Time {
	t.Helper()
	at, ok := accounts.FileTime(v)
	if !ok {
		t.Fatalf("%d is not a FILETIME", v)
	}
	return at
}

// requireNotPermitted fails unless err is the refusal for a missing
// delegation of attr.
func requireNotPermitted(t *testing.T, err error, attr string, secrets ...string) {
	t.Helper()
	var we *workflow.Error
	if !errors.Is(err, accounts.ErrNotPermitted) || !errors.As(err, &we) || we.Code != workflow.CodeDirectoryMisconfigured ||
		!strings.Contains(err.Error(), "may not write "+attr) || !strings.Contains(err.Error(), "00002098") {
		t.Fatalf("error = %v; want accounts.ErrNotPermitted with code %s naming %s and Samba's 00002098", err, workflow.CodeDirectoryMisconfigured, attr)
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Fatalf("error holds a secret: %v", err)
		}
	}
}

// TestLockoutUntilUnlocked: a user locked by 3 bad passwords under a PSO
// with a duration of 0 reads as locked since lockoutTime until an
// unlock, with its bad password count; the read-only account may not
// unlock it and changes nothing; the operator's Unlock clears it, zeroes
// the count, and the old password binds again.
func TestLockoutUntilUnlocked(t *testing.T) {
	t.Parallel()
	env := sambatest.Require(t)
	admin := env.Admin(t)
	o := admin.CreateLockoutOU(sambatest.PSO{LockoutThreshold: 3, LockoutDuration: 0})
	c := operatorClient(t, env, o)
	ro, _ := newClient(t, baseOptions(env))
	ctx := context.Background()
	name := sambatest.Unique("lock0")
	dn := admin.CreateLockableUser(o, sambatest.User{Name: name})

	f := facts(t, c, name)
	if f.Lockout != (accounts.Lockout{Known: true}) || f.BadPasswords != (accounts.BadPasswords{Known: true}) ||
		!f.PasswordSet.Known || f.PasswordSet.MustChange || time.Since(f.PasswordSet.At) > time.Minute || time.Since(f.PasswordSet.At) < -time.Minute {
		t.Fatalf("a new user's facts: %+v", f)
	}
	for i := 0; i < 2; i++ {
		env.Bind(dn, "Wrong-Passw0rd-0")
	}
	if f := facts(t, c, name); f.Lockout != (accounts.Lockout{Known: true}) || f.BadPasswords != (accounts.BadPasswords{Known: true, Count: 2}) {
		t.Fatalf("after 2 bad passwords: %+v", f)
	}
	admin.LockOut(name, 1) // the third
	lockoutTime := admin.LockoutTime(name)
	f = facts(t, c, name)
	want := accounts.Lockout{Known: true, Locked: true, Since: fileTime(t, lockoutTime), End: accounts.LockEnd{Known: true, UntilUnlocked: true}}
	if f.Lockout != want || f.BadPasswords != (accounts.BadPasswords{Known: true, Count: 3}) {
		t.Fatalf("locked: %+v, want lockout %+v and 3 bad passwords", f, want)
	}
	guid := userEntry(t, c, name).GUID

	// Without the right: refused, nothing changes.
	requireNotPermitted(t, ro.Unlock(ctx, guidDN(guid)), "lockoutTime", env.BindPassword)
	if !admin.Locked(name) || admin.LockoutTime(name) != lockoutTime || admin.BadPwdCount(name) != 3 {
		t.Fatalf("a refused unlock changed the account: locked %v, lockoutTime %d, badPwdCount %d", admin.Locked(name), admin.LockoutTime(name), admin.BadPwdCount(name))
	}

	if err := c.Unlock(ctx, guidDN(guid)); err != nil {
		t.Fatalf("Unlock as the operator: %v", err)
	}
	if admin.Locked(name) || admin.LockoutTime(name) != 0 || admin.BadPwdCount(name) != 0 {
		t.Errorf("after Unlock: locked %v, lockoutTime %d, badPwdCount %d; want false, 0, 0", admin.Locked(name), admin.LockoutTime(name), admin.BadPwdCount(name))
	}
	if f := facts(t, c, name); f.Lockout != (accounts.Lockout{Known: true}) || f.BadPasswords != (accounts.BadPasswords{Known: true}) {
		t.Errorf("facts after Unlock: %+v", f)
	}
	if err := env.Bind(dn, env.SeedPassword); err != nil {
		t.Errorf("bind with the old password after Unlock: %v", err)
	}

	// Unlock by DN works too; an object that does not exist is no account.
	if err := c.Unlock(ctx, dn); err != nil {
		t.Errorf("Unlock by DN: %v", err)
	}
	for _, gone := range []string{guidDN("00000000-0000-0000-0000-000000000001"), "CN=Nobody," + o.DN} {
		if err := c.Unlock(ctx, gone); workflow.ErrorCode(err) != workflow.CodeNoAccount {
			t.Errorf("Unlock(%s) = %v, want %s", gone, err, workflow.CodeNoAccount)
		}
	}
	if err := c.Unlock(ctx, ""); workflow.ErrorCode(err) != workflow.CodeNoAccount {
		t.Errorf("Unlock(\"\") = %v", err)
	}
}

// TestLockoutUntil: under a PSO with a duration, the lockout ends at
// lockoutTime plus that duration. Whoever may not read the PSO's duration,
// or the account's msDS-ResultantPSO, gets "locked" with the end unknown:
// never the domain's duration instead.
func TestLockoutUntil(t *testing.T) {
	t.Parallel()
	env := sambatest.Require(t)
	admin := env.Admin(t)
	o := admin.CreateLockoutOU(sambatest.PSO{LockoutThreshold: 3, LockoutDuration: 10 * time.Minute})
	c := operatorClient(t, env, o)
	name := sambatest.Unique("lock10")
	admin.CreateLockableUser(o, sambatest.User{Name: name})
	admin.LockOut(name, 3)
	since := fileTime(t, admin.LockoutTime(name))

	want := accounts.Lockout{Known: true, Locked: true, Since: since, End: accounts.LockEnd{Known: true, At: since.Add(10 * time.Minute)}}
	if f := facts(t, c, name); f.Lockout != want {
		t.Errorf("operator: %+v, want %+v", f.Lockout, want)
	}

	// The read-only account may not read the PSO's msDS-LockoutDuration
	// (Samba's default ACL): the end is unknown, the rest is known.
	ro, logs := newClient(t, baseOptions(env))
	noEnd := accounts.Lockout{Known: true, Locked: true, Since: since}
	if f := facts(t, ro, name); f.Lockout != noEnd {
		t.Errorf("read-only account: %+v, want %+v", f.Lockout, noEnd)
	}
	if !strings.Contains(logs.String(), "msDS-LockoutDuration of a password settings object is not readable") {
		t.Errorf("no warning about the unreadable PSO:\n%s", logs)
	}

	// msDS-ResultantPSO hidden: "no PSO" cannot be told from "hidden", and
	// the domain's policy (threshold 0 here) cannot have locked it.
	admin.DenyRead(name, o.Operator, "msDS-ResultantPSO")
	if f := facts(t, c, name); f.Lockout != noEnd {
		t.Errorf("msDS-ResultantPSO hidden: %+v, want %+v", f.Lockout, noEnd)
	}
}

// TestLockoutRanOut: when the duration has passed the account reads as not
// locked, though lockoutTime is still set (it stays until a good logon):
// Locked comes from msDS-User-Account-Control-Computed, not lockoutTime.
func TestLockoutRanOut(t *testing.T) {
	t.Parallel()
	env := sambatest.Require(t)
	admin := env.Admin(t)
	o := admin.CreateLockoutOU(sambatest.PSO{LockoutThreshold: 3, LockoutDuration: 2 * time.Second})
	c := operatorClient(t, env, o)
	name := sambatest.Unique("lock2s")
	admin.CreateLockableUser(o, sambatest.User{Name: name})
	admin.LockOut(name, 3)
	since := fileTime(t, admin.LockoutTime(name))
	if f := facts(t, c, name); f.Lockout.End != (accounts.LockEnd{Known: true, At: since.Add(2 * time.Second)}) || !f.Lockout.Locked {
		t.Fatalf("locked for 2 s: %+v", f.Lockout)
	}
	deadline := time.Now().Add(15 * time.Second)
	for admin.Locked(name) {
		if time.Now().After(deadline) {
			t.Fatal("still locked 15 s after a 2 s lockout")
		}
		time.Sleep(250 * time.Millisecond)
	}
	if admin.LockoutTime(name) == 0 {
		t.Fatal("lockoutTime was cleared: the test no longer shows that lockoutTime over-reports")
	}
	if f := facts(t, c, name); f.Lockout != (accounts.Lockout{Known: true}) {
		t.Errorf("after the lockout ran out: %+v, want known and not locked", f.Lockout)
	}
}

// TestFactsUnreadable: a fact whose attribute the bind account may not read
// is unknown, never a harmless value, and never refuses the account (the
// guards' attributes are still all read).
func TestFactsUnreadable(t *testing.T) {
	t.Parallel()
	env := sambatest.Require(t)
	admin := env.Admin(t)
	o := admin.CreateLockoutOU(sambatest.PSO{LockoutThreshold: 3})
	c := operatorClient(t, env, o)
	for _, tc := range []struct {
		attr   string
		locked bool
		check  func(accounts.Facts) bool
	}{
		{"msDS-User-Account-Control-Computed", true, func(f accounts.Facts) bool {
			return f.Lockout == accounts.Lockout{} && f.BadPasswords.Known && f.PasswordSet.Known
		}},
		{"lockoutTime", true, func(f accounts.Facts) bool {
			return f.Lockout == accounts.Lockout{Known: true, Locked: true} && f.BadPasswords.Known
		}},
		{"badPwdCount", false, func(f accounts.Facts) bool {
			return f.BadPasswords == accounts.BadPasswords{} && f.Lockout.Known && f.PasswordSet.Known
		}},
		{"pwdLastSet", false, func(f accounts.Facts) bool {
			return f.PasswordSet == accounts.PasswordSet{} && f.Lockout.Known && f.BadPasswords.Known
		}},
	} {
		t.Run(tc.attr, func(t *testing.T) {
			admin := env.Admin(t) // one per subtest: its failures must stop this one
			name := sambatest.Unique("hidef")
			admin.CreateLockableUser(o, sambatest.User{Name: name})
			if tc.locked {
				admin.LockOut(name, 3)
			}
			admin.DenyRead(name, o.Operator, tc.attr)
			e := userEntry(t, c, name)
			if !tc.check(e.Facts) {
				t.Errorf("%s hidden: facts %+v", tc.attr, e.Facts)
			}
			if len(e.Unreadable) != 0 {
				t.Errorf("%s hidden: Unreadable = %q; facts are not guards", tc.attr, e.Unreadable)
			}
		})
	}
}

// TestPwdLastSetZero: pwdLastSet 0 reads as "must change at next logon".
func TestPwdLastSetZero(t *testing.T) {
	t.Parallel()
	env := sambatest.Require(t)
	admin := env.Admin(t)
	c, _ := newClient(t, baseOptions(env))
	name := sambatest.Unique("mustch")
	admin.CreateUser(sambatest.User{Name: name})
	admin.SetPwdLastSet(name, 0)
	if f := facts(t, c, name); f.PasswordSet != (accounts.PasswordSet{Known: true, MustChange: true}) {
		t.Errorf("pwdLastSet 0: %+v", f.PasswordSet)
	}
}

// TestDisable: Disable sets bit 2 and keeps the others (the user then gets
// data 533), does nothing to a disabled account, is refused without the
// right, and never overwrites a change made between its read and its
// write.
func TestDisable(t *testing.T) {
	t.Parallel()
	env := sambatest.Require(t)
	admin := env.Admin(t)
	o := admin.CreateLockoutOU(sambatest.PSO{LockoutThreshold: 3})
	c := operatorClient(t, env, o)
	ro, _ := newClient(t, baseOptions(env))
	ctx := context.Background()
	const dontExpire = 0x10000 // DONT_EXPIRE_PASSWORD: a bit Disable must keep
	user := func() (string, string) {
		name := sambatest.Unique("dis")
		dn := admin.CreateLockableUser(o, sambatest.User{Name: name})
		admin.Replace(name, "userAccountControl", "66048") // 0x10200
		return name, dn
	}

	name, dn := user()
	if _, err := ro.Disable(ctx, dn); true {
		requireNotPermitted(t, err, "userAccountControl", env.BindPassword)
	}
	if uac := admin.UserAccountControl(name); uac != 0x10200 {
		t.Fatalf("a refused Disable changed userAccountControl to %#x", uac)
	}
	changed, err := c.Disable(ctx, dn)
	if err != nil || !changed {
		t.Fatalf("Disable = %v, %v", changed, err)
	}
	if uac := admin.UserAccountControl(name); uac != 0x10202 {
		t.Errorf("userAccountControl = %#x, want 0x10202", uac)
	}
	if err := env.Bind(dn, env.SeedPassword); err == nil || !strings.Contains(err.Error(), "data 533") {
		t.Errorf("bind after Disable: %v, want data 533", err)
	}
	if changed, err := c.Disable(ctx, dn); err != nil || changed {
		t.Errorf("Disable of a disabled account = %v, %v; want false, nil", changed, err)
	}

	// Someone else clears DONT_EXPIRE_PASSWORD between the read and the
	// write: the write is refused, Disable reads again and keeps their
	// change.
	name, dn = user()
	calls := 0
	c.beforeWrite = func() {
		calls++
		if calls == 1 {
			admin.Replace(name, "userAccountControl", "512")
		}
	}
	if changed, err := c.Disable(ctx, dn); err != nil || !changed || calls != 2 {
		t.Errorf("Disable with a change in between = %v, %v after %d writes; want true, nil after 2", changed, err, calls)
	}
	if uac := admin.UserAccountControl(name); uac != 0x202 {
		t.Errorf("userAccountControl = %#x, want 0x202 (the other change kept)", uac)
	}

	// It changes under every attempt: a conflict, and it is not disabled.
	name, dn = user()
	uac := 0x10200
	c.beforeWrite = func() {
		uac ^= dontExpire
		admin.Replace(name, "userAccountControl", strconv.Itoa(uac))
	}
	if _, err := c.Disable(ctx, dn); workflow.ErrorCode(err) != workflow.CodeConflict {
		t.Errorf("Disable under constant change = %v, want %s", err, workflow.CodeConflict)
	}
	if got := admin.UserAccountControl(name); got&sambatest.UACAccountDisable != 0 {
		t.Errorf("userAccountControl = %#x after a conflict; it must not be disabled", got)
	}
	c.beforeWrite = nil

	// Hidden userAccountControl: its other bits cannot be kept.
	name, dn = user()
	admin.DenyRead(name, o.Operator, "userAccountControl")
	if _, err := c.Disable(ctx, dn); workflow.ErrorCode(err) != workflow.CodeUncheckable {
		t.Errorf("Disable with userAccountControl hidden = %v, want %s", err, workflow.CodeUncheckable)
	}
	if got := admin.UserAccountControl(name); got != 0x10200 {
		t.Errorf("userAccountControl = %#x; want it unchanged", got)
	}
	if _, err := c.Disable(ctx, guidDN("00000000-0000-0000-0000-000000000001")); workflow.ErrorCode(err) != workflow.CodeNoAccount {
		t.Errorf("Disable of no object = %v", err)
	}
}

// TestByGUID: the account is found by its objectGUID wherever it moved;
// an unknown or malformed GUID finds nothing.
func TestByGUID(t *testing.T) {
	t.Parallel()
	env := sambatest.Require(t)
	admin := env.Admin(t)
	c, _ := newClient(t, baseOptions(env))
	ctx := context.Background()
	name := sambatest.Unique("byguid")
	admin.CreateUser(sambatest.User{Name: name, Mail: sambatest.Mail(name)})
	// otherMailbox is free text: the entry carries it as the directory has it.
	other := []string{name + "@home.example", "Name <x@y.example>"}
	admin.Replace(name, "otherMailbox", other...)
	e := userEntry(t, c, name)
	moved := admin.Rename(e.DN, "CN=Moved "+name, sambatest.OUElsewhere)
	got, ok, err := c.ByGUID(ctx, strings.ToUpper(e.GUID))
	if err != nil || !ok || got.DN != moved || got.UserName != name || got.GUID != e.GUID || !got.Facts.Lockout.Known {
		t.Fatalf("ByGUID = %+v, %v, %v; want %s at %s", got, ok, err, name, moved)
	}
	slices.Sort(got.Other)
	if got.Email != sambatest.Mail(name) || !slices.Equal(got.Other, []string{"Name <x@y.example>", other[0]}) {
		t.Fatalf("mail %q, otherMailbox %q", got.Email, got.Other)
	}
	for _, guid := range []string{"00000000-0000-0000-0000-000000000001", "", "not-a-guid", e.GUID + ">,CN=x", "<GUID=" + e.GUID + ">"} {
		if _, ok, err := c.ByGUID(ctx, guid); ok || err != nil {
			t.Errorf("ByGUID(%q) = %v, %v; want nothing", guid, ok, err)
		}
	}
}

// TestDomainDuration: the domain's duration is taken for an account with no
// resultant PSO only when the domain's policy could have locked it.
func TestDomainDuration(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	at := func(d time.Duration) int64 { return sambatest.FileTime(now.Add(d)) }
	thirty := sambatest.Interval(30 * time.Minute)
	for _, tc := range []struct {
		name        string
		policy      lockoutPolicy
		lockoutTime int64
		ok          bool
	}{
		{"locked 10 minutes ago, 30 minute policy", lockoutPolicy{known: true, threshold: 3, duration: thirty}, at(-10 * time.Minute), true},
		{"policy until unlocked", lockoutPolicy{known: true, threshold: 3, duration: 0}, at(-48 * time.Hour), true},
		{"within the clock skew", lockoutPolicy{known: true, threshold: 3, duration: thirty}, at(-30*time.Minute - 30*time.Second), true},
		{"should have ended an hour ago", lockoutPolicy{known: true, threshold: 3, duration: thirty}, at(-90 * time.Minute), false},
		{"the domain never locks", lockoutPolicy{known: true, threshold: 0, duration: thirty}, at(-time.Minute), false},
		{"the policy is not readable", lockoutPolicy{}, at(-time.Minute), false},
		{"no lockoutTime", lockoutPolicy{known: true, threshold: 3, duration: thirty}, 0, false},
	} {
		d, ok := domainDuration(tc.policy, tc.lockoutTime, now)
		if ok != tc.ok || (ok && d != tc.policy.duration) {
			t.Errorf("%s: %d, %v; want ok %v", tc.name, d, ok, tc.ok)
		}
	}
}
