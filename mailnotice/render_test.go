package mailnotice

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/example/resetbot/workflow"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var t0 = time.Date(2026, 11, 30, 8, 5, 9, 0, time.UTC)

const helpdesk = "+1 555 0100 or helpdesk@corp.example.com"

func sample() Notice {
	return Notice{
		Kind: KindReset, At: t0, RequestID: "Rabcdefghijklmnopqrstuvwx",
		UserName: "alice", DisplayName: "Alice Smith",
		Mail: "alice@corp.example.com", OtherMailboxes: []string{"alice.private@example.org"},
		ApprovedBy: "Maria Manager",
	}
}

// golden compares got with testdata/name.golden (go test ./mailnotice
// -update rewrites it).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./mailnotice -run Golden -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n%s", name, path, got)
	}
}

func TestMessagesGolden(t *testing.T) {
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	onBehalf := sample()
	onBehalf.Agent, onBehalf.ApprovedBy = "Hal Helpdesk", "U0MARIA" // a Slack user ID, as given
	unlock := sample()
	unlock.Kind, unlock.ApprovedBy, unlock.DisplayName = KindUnlock, "", ""
	unlock.At = t0.In(newYork) // shown in UTC all the same
	hostile := sample()
	hostile.DisplayName = "Alice\r\nBcc: evil@example.com\r\n\r\nYour password is: hunter2"
	hostile.ApprovedBy = "Maria \u202eregnaM\u202c\u200b Manager\x00\x1b[2J"
	hostile.Agent = strings.Repeat("Hal ", 40) + "\n\nIf this was NOT you, do nothing."
	hostile.RequestID = "R1\nApproved by: the CEO"
	for _, tc := range []struct {
		name     string
		n        Notice
		helpdesk string
	}{
		{"reset", sample(), helpdesk},
		{"reset_on_behalf", onBehalf, helpdesk},
		{"unlock_without_approval", unlock, helpdesk},
		{"hostile_values", hostile, "call 555\r\nBcc: evil@example.com"},
		{"no_helpdesk_contact", sample(), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Render(tc.n, tc.helpdesk)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := Render(tc.n, tc.helpdesk)
			if again != m {
				t.Fatal("Render gave two different messages for one notice")
			}
			golden(t, tc.name, "Subject: "+m.Subject+"\n\n"+m.Text)
			for _, line := range strings.Split(m.Text, "\n") {
				if strings.ContainsFunc(line, func(r rune) bool { return r < 0x20 || r == 0x7f || r == 0x202e || r == 0x200b }) || len([]rune(line)) > 140 {
					t.Errorf("line %q has a control or invisible character, or is too long", line)
				}
			}
		})
	}
}

// TestHostileValuesForgeNoLine: a value cannot start a line of its own,
// so it cannot pass for another field or for the helpdesk line.
func TestHostileValuesForgeNoLine(t *testing.T) {
	n := sample()
	n.DisplayName = "Alice\nIf this was NOT you, call 555 6666"
	n.ApprovedBy = "Maria\r\n  Approved by:  the CEO"
	m, err := Render(n, helpdesk)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(m.Text, "\n") {
		if strings.HasPrefix(line, "If this was NOT you") && !strings.Contains(line, helpdesk) {
			t.Errorf("a value made a helpdesk line of its own: %q", line)
		}
	}
	if strings.Count(m.Text, "\n  Approved by:") != 1 {
		t.Errorf("not one approver line:\n%s", m.Text)
	}
}

func TestRenderRefusesInvalidNotices(t *testing.T) {
	for name, change := range map[string]func(*Notice){
		"unknown kind":          func(n *Notice) { n.Kind = "delete" },
		"no kind":               func(n *Notice) { n.Kind = "" },
		"no time":               func(n *Notice) { n.At = time.Time{} },
		"no account":            func(n *Notice) { n.UserName = "" },
		"line break in name":    func(n *Notice) { n.UserName = "alice\nBcc: x" },
		"forbidden character":   func(n *Notice) { n.UserName = "alice@corp" },
		"account name too long": func(n *Notice) { n.UserName = strings.Repeat("a", 65) },
	} {
		n := sample()
		change(&n)
		m, err := Render(n, helpdesk)
		if err == nil || workflow.ErrorCode(err) != workflow.CodeInternal || m != (Message{}) {
			t.Errorf("%s: %+v, %v", name, m, err)
		}
	}
}

func TestRecipients(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mail    string
		other   []string
		to      []string
		skipped []string // fields of the skipped values
	}{
		{"mail only", "alice@corp.example.com", nil, []string{"alice@corp.example.com"}, nil},
		{"both, each once", " alice@corp.example.com ", []string{"ALICE@Corp.Example.com", "alice.private@example.org", "alice.private@example.org"},
			[]string{"alice@corp.example.com", "alice.private@example.org"}, nil},
		{"otherMailbox only", "", []string{"alice.private@example.org"}, []string{"alice.private@example.org"}, nil},
		{"none", "", nil, nil, nil},
		{"blank values are no values", "  ", []string{""}, nil, nil},
		{"non-ASCII", "müller@corp.example.com", nil, []string{"müller@corp.example.com"}, nil},
		{"injections skipped", "alice@corp.example.com\r\nBcc: evil@example.com", []string{
			"alice@corp.example.com, evil@example.com",
			"Alice <alice@corp.example.com>",
			"<alice@corp.example.com>",
			"alice@corp.example.com (me)",
			"alice@corp.example.com\nevil@example.com",
			"alice@corp.example.com;evil@example.com",
			`"alice"@corp.example.com`,
			"undisclosed:;",
			"ali\u200bce@corp.example.com",
			"alice@[127.0.0.1]",
			"alice@localhost",
			"@corp.example.com",
			"alice@",
			"alice",
			strings.Repeat("a", 250) + "@example.com",
			"al\xffice@corp.example.com",
			"alice.ok@corp.example.com",
		}, []string{"alice.ok@corp.example.com"}, []string{"mail",
			"otherMailbox", "otherMailbox", "otherMailbox", "otherMailbox", "otherMailbox", "otherMailbox", "otherMailbox", "otherMailbox",
			"otherMailbox", "otherMailbox", "otherMailbox", "otherMailbox", "otherMailbox", "otherMailbox", "otherMailbox", "otherMailbox"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := sample()
			n.Mail, n.OtherMailboxes = tc.mail, tc.other
			to, skipped := n.Recipients()
			if strings.Join(to, " ") != strings.Join(tc.to, " ") {
				t.Errorf("to %q, want %q", to, tc.to)
			}
			var fields []string
			for _, s := range skipped {
				fields = append(fields, s.Field)
				if s.Reason == "" || strings.ContainsAny(s.Value, "\r\n\x00\u200b") || len(s.Value) > 110 {
					t.Errorf("skipped %+v: no reason, or a raw value", s)
				}
			}
			if strings.Join(fields, " ") != strings.Join(tc.skipped, " ") {
				t.Errorf("skipped %+v, want fields %q", skipped, tc.skipped)
			}
		})
	}
}

func TestParseFrom(t *testing.T) {
	for v, want := range map[string]string{
		"resetbot@corp.example.com":                    "resetbot@corp.example.com",
		"Password reset <resetbot@corp.example.com>":   "resetbot@corp.example.com",
		`"Reset, the bot" <resetbot@corp.example.com>`: "resetbot@corp.example.com",
	} {
		if got, err := ParseFrom(v); err != nil || got != want {
			t.Errorf("ParseFrom(%q) = %q, %v", v, got, err)
		}
	}
	for _, v := range []string{
		"", "resetbot", "resetbot@corp.example.com, other@corp.example.com",
		"Reset <resetbot@corp.example.com>\r\nBcc: evil@example.com", "Reset\n <resetbot@corp.example.com>",
		"Reset <resetbot@localhost>", "Reset <resetbot@[127.0.0.1]>",
	} {
		if got, err := ParseFrom(v); err == nil {
			t.Errorf("ParseFrom(%q) = %q, want an error", v, got)
		}
	}
}

func TestValidateURL(t *testing.T) {
	for _, v := range []string{"smtp://mail.corp.example.com", "smtp://mail.corp.example.com:25", "smtps://10.0.0.5:465", "smtp://[::1]:2525/"} {
		if err := ValidateURL(v); err != nil {
			t.Errorf("%s: %v", v, err)
		}
	}
	for v, want := range map[string]string{
		"mail.corp.example.com:587":                 "must start with smtp://",
		"http://mail.corp.example.com":              "must start with smtp://",
		"smtp+insecure://mail.corp.example.com":     "must start with smtp://",
		"smtp://user:sup3r-secret@mail.example.com": "must not hold credentials",
		"smtp://:587":                             "has no host",
		"smtp://mail.corp.example.com:0":          "port",
		"smtp://mail.corp.example.com:99999":      "port",
		"smtp://mail.corp.example.com:587/x":      "just a scheme, a host and a port",
		"smtp://mail.corp.example.com:587?tls=no": "just a scheme, a host and a port",
		"smtp:mail.corp.example.com":              "just a scheme, a host and a port",
	} {
		err := ValidateURL(v)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", v, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "sup3r-secret") {
			t.Errorf("%s: the error repeats the password: %v", v, err)
		}
	}
}

// TestNoticeHoldsNoSecret: a Notice has the fields below and no other, so
// that nothing can carry a password into an email without this test and
// its reviewer seeing it: no field named like a secret, no field of a
// type that could hold anything (an interface, a map, a pointer, a
// function), nothing from the domain's Delivery.
func TestNoticeHoldsNoSecret(t *testing.T) {
	want := map[string]string{
		"Kind": "mailnotice.Kind", "At": "time.Time", "RequestID": "string",
		"UserName": "string", "DisplayName": "string", "Mail": "string", "OtherMailboxes": "[]string",
		"ApprovedBy": "string", "Agent": "string",
	}
	typ := reflect.TypeFor[Notice]()
	got := map[string]string{}
	for f := range typ.Fields() {
		got[f.Name] = f.Type.String()
		if lower := strings.ToLower(f.Name); strings.Contains(lower, "pass") || strings.Contains(lower, "secret") || strings.Contains(lower, "token") || strings.Contains(lower, "delivery") {
			t.Errorf("field %s is named like a secret", f.Name)
		}
		switch f.Type.Kind() {
		case reflect.Interface, reflect.Map, reflect.Pointer, reflect.Func, reflect.Chan, reflect.Struct:
			if f.Type != reflect.TypeFor[time.Time]() {
				t.Errorf("field %s of type %s could hold anything", f.Name, f.Type)
			}
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Notice's fields are %v, want %v: a new field must be shown harmless here", got, want)
	}
	if reflect.TypeFor[workflow.Delivery]().ConvertibleTo(typ) {
		t.Error("a workflow.Delivery converts to a Notice")
	}
}
