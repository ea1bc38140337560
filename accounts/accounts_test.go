package accounts

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/example/resetbot/workflow"
)

func TestNameRulesWithoutDirectory(t *testing.T) {
	a := New(Options{ProtectedUsers: append(DefaultProtectedUsers, "svc-backup")})
	ctx := context.Background()
	for _, tc := range []struct {
		email string
		want  workflow.Code
	}{
		{"alice@corp.example.com", ""},
		{"Jürgen.Müller@corp.example.com", ""},
		{"ａｄｍｉｎｉｓｔｒａｔｏｒ@corp.example.com", workflow.CodeProtectedAccount}, // full-width letters
		{"ADMINISTRATOR@corp.example.com", workflow.CodeProtectedAccount},
		{"admin\u200bistrator@corp.example.com", workflow.CodeInvalidUserName}, // zero-width space
		{"admin\u00adistrator@corp.example.com", workflow.CodeInvalidUserName}, // soft hyphen
		{"admin\u2060istrator@corp.example.com", workflow.CodeInvalidUserName}, // word joiner
		{"ad\u3164min@corp.example.com", workflow.CodeInvalidUserName},         // Hangul filler
		{"alice\u00a0@corp.example.com", workflow.CodeInvalidUserName},         // no-break space
		{"krbtgt@corp.example.com", workflow.CodeProtectedAccount},
		{"KRBTGT@corp.example.com", workflow.CodeProtectedAccount},
		{"Svc-Backup@corp.example.com", workflow.CodeProtectedAccount},
		{"dc01$@corp.example.com", workflow.CodeMachineAccount},
		{"dc01＄@corp.example.com", workflow.CodeMachineAccount}, // full-width dollar
		{"a+b@corp.example.com", workflow.CodeInvalidUserName},
		{strings.Repeat("x", 65) + "@corp.example.com", workflow.CodeInvalidUserName},
	} {
		acct, err := a.Find(ctx, workflow.Person{ID: "U1", Email: tc.email})
		if err == nil {
			_, err = a.Check(ctx, acct)
		}
		if got := workflow.ErrorCode(err); got != tc.want {
			t.Errorf("%q: got %q (%v), want %q", tc.email, got, err, tc.want)
		}
	}
}

func TestMapOverridesEmail(t *testing.T) {
	a := New(Options{Map: map[string]string{"U1": "asmith"}})
	acct, err := a.Find(context.Background(), workflow.Person{ID: "U1", Email: "alice@corp.example.com", Name: "Alice"})
	if err != nil || acct.UserName != "asmith" || acct.Email != "alice@corp.example.com" || acct.DisplayName != "Alice" {
		t.Fatalf("got %+v %v", acct, err)
	}
}

func TestParseMap(t *testing.T) {
	m, problems := ParseMap(strings.NewReader("# comment\n\nU0123ABCD alice.smith\n  W0456 = bob  \nU0123ABCD carol\nnope\nC0123 x\nU0789 krb$\nU0999 a b c\n"))
	if m["U0123ABCD"] != "alice.smith" || m["W0456"] != "bob" || len(m) != 2 {
		t.Errorf("map %v", m)
	}
	want := []string{"line 5: U0123ABCD is mapped twice", "line 6:", "line 7: \"C0123\" is not a Slack user ID", "line 8:", "line 9:"}
	if len(problems) != len(want) {
		t.Fatalf("problems %q", problems)
	}
	for i, w := range want {
		if !strings.HasPrefix(problems[i], w) {
			t.Errorf("problem %d: %q, want prefix %q", i, problems[i], w)
		}
	}
}

// fakeLookup is a directory of entries keyed by user name.
type fakeLookup struct {
	entries map[string]Entry
	groups  map[string]string // DN -> protected group
	err     error
	expired []string
}

func (f *fakeLookup) ByEmail(_ context.Context, email string) ([]Entry, error) {
	var out []Entry
	for _, e := range f.entries {
		if strings.EqualFold(e.Email, email) || strings.EqualFold(e.UPN, email) {
			out = append(out, e)
		}
	}
	return out, f.err
}

func (f *fakeLookup) ByName(_ context.Context, name string) (Entry, bool, error) {
	e, ok := f.entries[strings.ToLower(name)]
	return e, ok, f.err
}

func (f *fakeLookup) ByDN(_ context.Context, dn string) (Entry, bool, error) {
	for _, e := range f.entries {
		if e.DN == dn {
			return e, true, f.err
		}
	}
	return Entry{}, false, f.err
}

func (f *fakeLookup) ProtectedGroup(_ context.Context, dn string) (string, error) {
	return f.groups[dn], f.err
}

func (f *fakeLookup) ExpirePassword(_ context.Context, dn string) error {
	f.expired = append(f.expired, dn)
	return f.err
}

func entry(name, mail string, mod func(*Entry)) Entry {
	e := Entry{DN: "CN=" + name + ",OU=Users,DC=corp", UserName: name, Email: mail, DisplayName: strings.ToUpper(name)}
	if mod != nil {
		mod(&e)
	}
	return e
}

func TestGuardsWithDirectory(t *testing.T) {
	f := &fakeLookup{entries: map[string]Entry{
		"alice":     entry("alice", "alice@corp", func(e *Entry) { e.ManagerDN = "CN=maria,OU=Users,DC=corp" }),
		"maria":     entry("maria", "maria@corp", func(e *Entry) { e.Disabled = true }),
		"disabled1": entry("disabled1", "disabled1@corp", func(e *Entry) { e.Disabled = true }),
		"ws01$":     entry("ws01$", "ws01@corp", func(e *Entry) { e.Machine = true }),
		"svc":       entry("svc", "svc@corp", func(e *Entry) { e.Machine = true }),
		"outsider":  entry("outsider", "outsider@corp", func(e *Entry) { e.OutsideOUs = true }),
		"dadmin":    entry("dadmin", "dadmin@corp", nil),
		"twin1":     entry("twin1", "shared@corp", nil),
		"twin2":     entry("twin2", "shared@corp", nil),
		"upnonly":   entry("upnonly", "", func(e *Entry) { e.UPN = "upnonly@corp" }),
		"krbtgt":    entry("krbtgt", "krbtgt@corp", nil),
	}, groups: map[string]string{"CN=dadmin,OU=Users,DC=corp": "Domain Admins"}}
	a := New(Options{ProtectedUsers: DefaultProtectedUsers, Lookup: f})
	ctx := context.Background()
	for email, want := range map[string]workflow.Code{
		"alice@corp": "", "ALICE@CORP": "", "upnonly@corp": "",
		"disabled1@corp": workflow.CodeAccountDisabled, "ws01@corp": workflow.CodeMachineAccount,
		"svc@corp": workflow.CodeMachineAccount, "outsider@corp": workflow.CodeOutsideOU,
		"dadmin@corp": workflow.CodeProtectedGroup, "shared@corp": workflow.CodeAmbiguousAccount,
		"nobody@corp": workflow.CodeNoAccount, "krbtgt@corp": workflow.CodeProtectedAccount,
	} {
		acct, err := a.Find(ctx, workflow.Person{ID: "U1", Email: email, Name: "Slack Name"})
		if err == nil {
			acct, err = a.Check(ctx, acct)
		}
		if got := workflow.ErrorCode(err); got != want {
			t.Errorf("%s: got %q (%v), want %q", email, got, err, want)
		}
		if err == nil && (acct.DN == "" || acct.DisplayName == "Slack Name") {
			t.Errorf("%s: account %+v lacks the directory's DN and display name", email, acct)
		}
	}
	alice, _ := a.Find(ctx, workflow.Person{Email: "alice@corp"})
	m, ok, err := a.Manager(ctx, alice)
	if err != nil || !ok || m.UserName != "maria" || m.Email != "maria@corp" || !m.Disabled {
		t.Errorf("manager %+v %v %v", m, ok, err)
	}
	if err := a.ExpirePassword(ctx, alice); err != nil || len(f.expired) != 1 || f.expired[0] != alice.DN {
		t.Errorf("expire %v %v", err, f.expired)
	}
	f.err = workflow.Errorf(workflow.CodeLookupUnavailable, "down")
	if _, err := a.Check(ctx, alice); workflow.ErrorCode(err) != workflow.CodeLookupUnavailable {
		t.Errorf("outage: %v", err)
	}
	if _, err := a.Find(ctx, workflow.Person{Email: "alice@corp"}); !errors.Is(err, f.err) {
		t.Errorf("outage: %v", err)
	}
}
