package accounts

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/example/resetbot/workflow"
)

// TestWritesByIdentity: Unlock, Disable and Facts read the account again
// by its objectGUID and refuse, writing nothing, unless it is still the
// object the request describes; a write goes to <GUID=...>.
func TestWritesByIdentity(t *testing.T) {
	locked := Facts{Lockout: Lockout{Known: true, Locked: true}, BadPasswords: BadPasswords{Known: true, Count: 3}}
	f := &fakeLookup{entries: map[string]Entry{
		"alice":  entry("alice", "alice@corp", func(e *Entry) { e.Facts, e.Other = locked, []string{"alice@home.example"} }),
		"bob":    entry("bob", "bob@corp", nil),
		"dadmin": entry("dadmin", "dadmin@corp", nil),
		"off":    entry("off", "off@corp", func(e *Entry) { e.Disabled = true }),
	}, groups: map[string]Group{"CN=dadmin,OU=Users,DC=corp": {Name: "Domain Admins", SID: "S-1-5-21-1-2-3-512"}}}
	a := New(Options{ProtectedUsers: DefaultProtectedUsers, Lookup: f})
	ctx := context.Background()
	acct := func(name string) workflow.Account {
		e := f.entries[name]
		return workflow.Account{UserName: e.UserName, DN: e.DN, GUID: e.GUID}
	}
	alice, bob := acct("alice"), acct("bob")

	for _, tc := range []struct {
		name string
		acct workflow.Account
		want workflow.Code
	}{
		{"no GUID", workflow.Account{UserName: "alice", DN: alice.DN}, workflow.CodeUncheckable},
		{"no DN", workflow.Account{UserName: "alice", GUID: alice.GUID}, workflow.CodeUncheckable},
		{"unchecked, from the email alone", workflow.Account{UserName: "alice", Unchecked: true}, workflow.CodeUncheckable},
		{"the object is gone", workflow.Account{UserName: "alice", DN: alice.DN, GUID: "00000000-0000-0000-0000-999999999999"}, workflow.CodeNoAccount},
		{"stale DN (moved or renamed)", workflow.Account{UserName: "alice", DN: "CN=alice,OU=Old,DC=corp", GUID: alice.GUID}, workflow.CodeAccountChanged},
		{"another object's GUID", workflow.Account{UserName: "alice", DN: alice.DN, GUID: bob.GUID}, workflow.CodeAccountChanged},
		{"the name is now another", workflow.Account{UserName: "alice2", DN: alice.DN, GUID: alice.GUID}, workflow.CodeAccountChanged},
	} {
		err := a.Unlock(ctx, tc.acct)
		_, derr := a.Disable(ctx, tc.acct)
		_, ferr := a.Facts(ctx, tc.acct)
		_, serr := a.SignIn(ctx, tc.acct)
		_, _, merr := a.Mailboxes(ctx, tc.acct)
		for what, err := range map[string]error{"Unlock": err, "Disable": derr, "Facts": ferr, "SignIn": serr, "Mailboxes": merr} {
			if got := workflow.ErrorCode(err); got != tc.want {
				t.Errorf("%s: %s = %q (%v), want %q", tc.name, what, got, err, tc.want)
			}
		}
	}
	if len(f.written) != 0 {
		t.Fatalf("refused accounts were written: %q", f.written)
	}

	// Unlock applies the guards to the fresh entry; Disable does not.
	for name, want := range map[string]workflow.Code{"dadmin": workflow.CodeProtectedGroup, "off": workflow.CodeAccountDisabled} {
		if err := a.Unlock(ctx, acct(name)); workflow.ErrorCode(err) != want {
			t.Errorf("Unlock(%s) = %v, want %s", name, err, want)
		}
	}
	if len(f.written) != 0 {
		t.Fatalf("guarded accounts were unlocked: %q", f.written)
	}

	// DN compared case-insensitively, as AD does.
	same := alice
	same.DN = "cn=ALICE,ou=users,dc=CORP"
	if err := a.Unlock(ctx, same); err != nil {
		t.Fatalf("Unlock(alice): %v", err)
	}
	if changed, err := a.Disable(ctx, bob); err != nil || !changed {
		t.Fatalf("Disable(bob) = %v, %v", changed, err)
	}
	want := []string{"unlock <GUID=" + alice.GUID + ">", "disable <GUID=" + bob.GUID + ">"}
	if !slices.Equal(f.written, want) {
		t.Errorf("written %q, want %q", f.written, want)
	}
	facts, err := a.Facts(ctx, alice)
	if err != nil || facts != locked {
		t.Errorf("Facts(alice) = %+v, %v; want %+v", facts, err, locked)
	}
	if in, err := a.SignIn(ctx, alice); err != nil || in.Lockout == nil || !in.Lockout.Locked || *in.BadPasswords != 3 || in.PasswordSet != nil {
		t.Errorf("SignIn(alice) = %+v, %v", in, err)
	}
	if mail, other, err := a.Mailboxes(ctx, alice); err != nil || mail != "alice@corp" || !slices.Equal(other, []string{"alice@home.example"}) {
		t.Errorf("Mailboxes(alice) = %q, %q, %v", mail, other, err)
	}

	// The directory's refusal comes back as it is.
	f.writeErr = workflow.Wrap(workflow.CodeDirectoryMisconfigured, ErrNotPermitted, "no right")
	if err := a.Unlock(ctx, alice); !errors.Is(err, ErrNotPermitted) {
		t.Errorf("Unlock without the right: %v", err)
	}
	f.writeErr = nil
	f.err = workflow.Errorf(workflow.CodeLookupUnavailable, "down")
	if err := a.Unlock(ctx, alice); workflow.ErrorCode(err) != workflow.CodeLookupUnavailable {
		t.Errorf("Unlock with the directory down: %v", err)
	}
	if len(f.written) != 2 {
		t.Errorf("written %q", f.written)
	}

	// Without a directory there is nothing to write to.
	none := New(Options{})
	if err := none.Unlock(ctx, alice); workflow.ErrorCode(err) != workflow.CodeInternal {
		t.Errorf("Unlock without LDAP: %v", err)
	}
}
