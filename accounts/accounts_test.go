package accounts

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	entries  map[string]Entry
	groups   map[string]Group // DN -> protected group
	groupErr error            // from ProtectedGroup only
	err      error
	expired  []string
	written  []string // "unlock <dn>", "disable <dn>": what was written, in order
	writeErr error    // from Unlock and Disable
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

func (f *fakeLookup) ProtectedGroup(_ context.Context, e Entry) (Group, bool, error) {
	if f.groupErr != nil {
		return Group{}, false, f.groupErr
	}
	g, ok := f.groups[e.DN]
	return g, ok, f.err
}

func (f *fakeLookup) ExpirePassword(_ context.Context, dn string) error {
	f.expired = append(f.expired, dn)
	return f.err
}

func (f *fakeLookup) ByGUID(_ context.Context, guid string) (Entry, bool, error) {
	for _, e := range f.entries {
		if e.GUID == guid {
			return e, true, f.err
		}
	}
	return Entry{}, false, f.err
}

func (f *fakeLookup) Unlock(_ context.Context, dn string) error {
	if f.writeErr != nil {
		return f.writeErr
	}
	f.written = append(f.written, "unlock "+dn)
	return nil
}

func (f *fakeLookup) Disable(_ context.Context, dn string) (bool, error) {
	if f.writeErr != nil {
		return false, f.writeErr
	}
	f.written = append(f.written, "disable "+dn)
	return true, nil
}

// entrySeq numbers the RIDs and GUIDs entry gives.
var entrySeq = 1100

func entry(name, mail string, mod func(*Entry)) Entry {
	entrySeq++
	e := Entry{DN: "CN=" + name + ",OU=Users,DC=corp", UserName: name, Email: mail, DisplayName: strings.ToUpper(name),
		SID:  fmt.Sprintf("S-1-5-21-1-2-3-%d", entrySeq),
		GUID: fmt.Sprintf("00000000-0000-0000-0000-%012d", entrySeq)}
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
	}, groups: map[string]Group{"CN=dadmin,OU=Users,DC=corp": {Name: "Domain Admins", SID: "S-1-5-21-1-2-3-512"}}}
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
		if err == nil && (acct.DN == "" || acct.GUID == "" || acct.DisplayName == "Slack Name") {
			t.Errorf("%s: account %+v lacks the directory's DN, GUID and display name", email, acct)
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

// TestEmailMustMatch: the entry the directory answers for an email counts
// only when its mail or UPN is that email, ASCII letters folded and
// nothing else; the account map is taken as the operator wrote it.
func TestEmailMustMatch(t *testing.T) {
	f := &fakeLookup{entries: map[string]Entry{
		"kate":  entry("kate", "kate@corp", nil),
		"upn":   entry("upn", "other@elsewhere", func(e *Entry) { e.UPN = "Upn.User@Corp" }),
		"other": entry("other", "someone@corp", func(e *Entry) { e.UPN = "other@corp" }),
	}}
	// A directory that folds Unicode, as AD may: the Kelvin sign matches k,
	// and a search by "someone-else@corp" answers "other" anyway (a
	// directory that answers what it should not).
	unicodeFolding := &foldingLookup{fakeLookup: f, alias: map[string]string{"someone-else@corp": "other"}}
	a := New(Options{Lookup: unicodeFolding, Map: map[string]string{"UMAPPED": "other"}})
	ctx := context.Background()
	for _, tc := range []struct {
		id, email string
		want      workflow.Code
		name      string
	}{
		{"U1", "kate@corp", "", "kate"},
		{"U1", "KATE@CORP", "", "kate"},
		{"U1", "\u212Aate@corp", workflow.CodeEmailMismatch, ""}, // Kelvin sign: strings.EqualFold would say equal
		{"U1", "upn.user@corp", "", "upn"},                       // by UPN; its mail is another address
		{"U1", "someone-else@corp", workflow.CodeEmailMismatch, ""},
		{"U1", "nobody@corp", workflow.CodeNoAccount, ""},
		{"UMAPPED", "whatever@corp", "", "other"}, // the map is the operator's choice
	} {
		acct, err := a.Find(ctx, workflow.Person{ID: tc.id, Email: tc.email})
		if got := workflow.ErrorCode(err); got != tc.want || acct.UserName != tc.name {
			t.Errorf("Find(%s, %q) = %q, %q (%v); want %q, %q", tc.id, tc.email, acct.UserName, got, err, tc.name, tc.want)
		}
	}
	if !strings.EqualFold("\u212Aate@corp", "kate@corp") {
		t.Fatal("the Kelvin case no longer shows what it should: strings.EqualFold folds U+212A to k")
	}
	for _, tc := range []struct {
		dir, email string
		want       bool
	}{
		{"a@b", "A@B", true}, {"", "", false}, {"a@b", "a@b ", false}, {"\u017Fam@b", "sam@b", false},
		{"müller@b", "MÜLLER@b", false}, {"müller@b", "müller@b", true},
	} {
		if got := sameEmail(tc.dir, tc.email); got != tc.want {
			t.Errorf("sameEmail(%q, %q) = %v", tc.dir, tc.email, got)
		}
	}
}

// foldingLookup answers ByEmail the way a Unicode-folding directory
// might, and with aliases of its own.
type foldingLookup struct {
	*fakeLookup
	alias map[string]string // email -> user name
}

func (f *foldingLookup) ByEmail(ctx context.Context, email string) ([]Entry, error) {
	if name, ok := f.alias[email]; ok {
		return []Entry{f.entries[name]}, nil
	}
	var out []Entry
	for _, e := range f.entries {
		if strings.EqualFold(e.Email, email) || strings.EqualFold(e.UPN, email) {
			out = append(out, e)
		}
	}
	return out, f.err
}

// TestFailClosed: what cannot be read refuses; it never passes.
func TestFailClosed(t *testing.T) {
	f := &fakeLookup{entries: map[string]Entry{
		"nouac":   entry("nouac", "nouac@corp", func(e *Entry) { e.Unreadable = []string{"userAccountControl"} }),
		"nosid":   entry("nosid", "nosid@corp", func(e *Entry) { e.Unreadable = []string{"objectSid"}; e.SID = "" }),
		"plain":   entry("plain", "plain@corp", nil),
		"renamed": entry("renamed", "renamed@corp", func(e *Entry) { e.SID = "S-1-5-21-1-2-3-500" }),
		"tgt":     entry("tgt", "tgt@corp", func(e *Entry) { e.SID = "S-1-5-21-1-2-3-502" }),
		"guest2":  entry("guest2", "guest@corp", func(e *Entry) { e.SID = "S-1-5-21-1-2-3-501" }),
		"rid1500": entry("rid1500", "rid1500@corp", func(e *Entry) { e.SID = "S-1-5-21-1-2-3-1500" }),
	}}
	a := New(Options{Lookup: f})
	ctx := context.Background()
	check := func(email string) error {
		t.Helper()
		acct, err := a.Find(ctx, workflow.Person{ID: "U1", Email: email})
		if err == nil {
			_, err = a.Check(ctx, acct)
		}
		return err
	}
	for email, want := range map[string]workflow.Code{
		"nouac@corp": workflow.CodeUncheckable, "nosid@corp": workflow.CodeUncheckable, "plain@corp": "",
		"renamed@corp": workflow.CodeProtectedAccount, "tgt@corp": workflow.CodeProtectedAccount,
		"guest@corp": workflow.CodeProtectedAccount, "rid1500@corp": "",
	} {
		if got := workflow.ErrorCode(check(email)); got != want {
			t.Errorf("%s: %q, want %q", email, got, want)
		}
	}
	// The group check cannot be made: refused with its code, never passed.
	for _, code := range []workflow.Code{workflow.CodeUncheckable, workflow.CodeLookupUnavailable} {
		f.groupErr = workflow.Errorf(code, "tokenGroups")
		if got := workflow.ErrorCode(check("plain@corp")); got != code {
			t.Errorf("group check failing with %s: %q", code, got)
		}
	}
	f.groupErr = nil

	// A manager whose userAccountControl is hidden counts as disabled.
	f.entries["emp"] = entry("emp", "emp@corp", func(e *Entry) { e.ManagerDN = f.entries["nouac"].DN })
	m, ok, err := a.Manager(ctx, workflow.Account{UserName: "emp"})
	if err != nil || !ok || !m.Disabled {
		t.Errorf("manager with a hidden userAccountControl: %+v, %v, %v; want disabled", m, ok, err)
	}
}

func TestAdminCount(t *testing.T) {
	f := &fakeLookup{entries: map[string]Entry{"held": entry("held", "held@corp", func(e *Entry) { e.AdminCount = true })}}
	ctx := context.Background()
	for _, refuse := range []bool{true, false} {
		a := New(Options{Lookup: f, RefuseAdminCount: refuse})
		_, passed, err := a.CheckSteps(ctx, workflow.Account{UserName: "held"})
		want := workflow.Code("")
		if refuse {
			want = workflow.CodeAdminCount
		}
		if got := workflow.ErrorCode(err); got != want {
			t.Errorf("RefuseAdminCount %v: %q (%v), want %q", refuse, got, err, want)
		}
		if !refuse && !slices.Contains(passed, "adminCount=1 allowed (REFUSE_ADMIN_COUNT=false)") {
			t.Errorf("passed %q", passed)
		}
	}
}

// TestCheckSteps: doctor learns which check decided.
func TestCheckSteps(t *testing.T) {
	f := &fakeLookup{entries: map[string]Entry{
		"alice":  entry("alice", "alice@corp", nil),
		"dadmin": entry("dadmin", "dadmin@corp", nil),
	}, groups: map[string]Group{"CN=dadmin,OU=Users,DC=corp": {Name: "Domain Admins", SID: "S-1-5-21-1-2-3-512"}}}
	a := New(Options{Lookup: f, RefuseAdminCount: true})
	ctx := context.Background()
	acct, passed, err := a.CheckSteps(ctx, workflow.Account{UserName: "alice"})
	if err != nil || acct.GUID != f.entries["alice"].GUID || len(passed) != 9 || passed[len(passed)-2] != "in no protected group (tokenGroups)" {
		t.Errorf("alice: %+v, %q, %v", acct, passed, err)
	}
	_, _, err = a.CheckSteps(ctx, workflow.Account{UserName: "dadmin"})
	if workflow.ErrorCode(err) != workflow.CodeProtectedGroup || !strings.Contains(err.Error(), "member of Domain Admins (S-1-5-21-1-2-3-512) through tokenGroups") {
		t.Errorf("dadmin: %v", err)
	}
	// The name is now another object than the one asked for.
	_, _, err = a.CheckSteps(ctx, workflow.Account{UserName: "alice", GUID: f.entries["dadmin"].GUID})
	if workflow.ErrorCode(err) != workflow.CodeAccountChanged {
		t.Errorf("another object: %v", err)
	}
}
