package slackapp

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/example/resetbot/workflow"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var t0 = time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)

func sample(status workflow.Status) *workflow.Request {
	r := &workflow.Request{
		ID: "Rabcdefghijklmnopqrstuvwx", Requester: "UEMP",
		Account:     workflow.Account{UserName: "alice", Email: "alice@corp.example.com", DisplayName: "Alice Smith"},
		DirectoryID: "d-1234567890", Approvers: []string{"UAPP1", "UAPP2"},
		Status: status, CreatedAt: t0, DecideBy: t0.Add(30 * time.Minute),
		Events: []workflow.Event{{At: t0, Kind: workflow.EventRequested, Actor: "UEMP"}},
	}
	switch status {
	case workflow.StatusPending:
		return r
	case workflow.StatusDenied:
		r.DecidedBy, r.DecidedAt = "UAPP2", t0.Add(time.Minute)
		r.EndedAt = r.DecidedAt
		return r
	case workflow.StatusExpired:
		r.EndedAt = r.DecideBy
		return r
	}
	r.DecidedBy, r.DecidedAt, r.RevealBy = "UAPP1", t0.Add(time.Minute), t0.Add(16*time.Minute)
	switch status {
	case workflow.StatusCompleted, workflow.StatusCancelled:
		r.EndedAt = t0.Add(3 * time.Minute)
	case workflow.StatusFailed:
		r.EndedAt, r.Failure = t0.Add(3*time.Minute), workflow.CodeUserDoesNotExist
	}
	return r
}

func golden(t *testing.T, name string, v any) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	got := buf.Bytes()
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./slackapp -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s:\n%s", name, path, got)
	}
}

func TestMessagesGolden(t *testing.T) {
	interrupted := sample(workflow.StatusApproved)
	interrupted.Events = append(interrupted.Events, workflow.Event{At: t0.Add(5 * time.Minute), Kind: workflow.EventInterrupted})
	uncertain := sample(workflow.StatusApproved)
	uncertain.Events = append(uncertain.Events, workflow.Event{At: t0.Add(5 * time.Minute), Kind: workflow.EventInterrupted, Code: workflow.CodeDirectoryUncertain})
	postponed := sample(workflow.StatusApproved)
	postponed.Events = append(postponed.Events, workflow.Event{At: t0.Add(5 * time.Minute), Kind: workflow.EventPostponed, Code: workflow.CodeLookupUnavailable})
	managed := sample(workflow.StatusPending)
	managed.Approvers, managed.AskedAs = []string{"UMGR"}, workflow.AskedManager
	fallback := sample(workflow.StatusPending)
	fallback.AskedAs = workflow.AskedNoManager
	unchecked := sample(workflow.StatusPending)
	unchecked.Account.Unchecked = true
	cases := map[string]Msg{
		"approval_pending":         ApprovalMessage(sample(workflow.StatusPending)),
		"approval_approved":        ApprovalMessage(sample(workflow.StatusApproved)),
		"approval_denied":          ApprovalMessage(sample(workflow.StatusDenied)),
		"approval_expired":         ApprovalMessage(sample(workflow.StatusExpired)),
		"approval_completed":       ApprovalMessage(sample(workflow.StatusCompleted)),
		"reveal_approved":          RevealMessage(sample(workflow.StatusApproved)),
		"reveal_interrupted":       RevealMessage(interrupted),
		"reveal_resetting":         RevealMessage(sample(workflow.StatusResetting)),
		"reveal_completed":         RevealMessage(sample(workflow.StatusCompleted)),
		"reveal_failed":            RevealMessage(sample(workflow.StatusFailed)),
		"reveal_postponed":         RevealMessage(postponed),
		"approval_manager":         ApprovalMessage(managed),
		"approval_fallback":        ApprovalMessage(fallback),
		"audit_requested_fallback": AuditReply(fallback, fallback.Events[0]),
		"password":                 PasswordMessage(sample(workflow.StatusResetting), workflow.Delivery{Password: "Xy7#kP2!mQ9-vR4=tW8a"}),
		"password_must_change":     PasswordMessage(sample(workflow.StatusResetting), workflow.Delivery{Password: "Xy7#kP2!mQ9-vR4=tW8a", MustChange: true}),
		"refusal": RefusalMessage(workflow.Refusal{At: t0, User: "UEMP", Account: "dadmin", Code: workflow.CodeProtectedGroup,
			Detail: `"dadmin" (CN=dadmin,CN=Users,DC=corp) is a member of the protected group "Domain Admins"`}),
		"refusal_tampered": RefusalMessage(workflow.Refusal{At: t0, User: "UEMP", Code: workflow.CodeTampered,
			Detail: "stored request R1 failed its signature check (stored request refused: it does not carry this key's signature); it was moved aside and not acted on"}),
		"audit_completed_warning": AuditReply(sample(workflow.StatusCompleted), workflow.Event{At: t0.Add(3 * time.Minute), Kind: workflow.EventCompleted,
			Code: workflow.CodeForceChangeFailed, Detail: "LDAP modify pwdLastSet: Insufficient Access Rights"}),
		"audit_parent":              AuditParent(sample(workflow.StatusApproved)),
		"audit_parent_unchecked":    AuditParent(unchecked),
		"audit_requested_unchecked": AuditReply(unchecked, unchecked.Events[0]),
		"audit_failed": AuditReply(sample(workflow.StatusFailed), workflow.Event{At: t0.Add(3 * time.Minute), Kind: workflow.EventFailed,
			Code: workflow.CodeDirectoryAccessDenied, Detail: "AccessDeniedException: not authorized <to> & more"}),
		"receipt":    Receipt(sample(workflow.StatusPending)),
		"status":     StatusReply(sample(workflow.StatusApproved)),
		"help_error": HelpMessage("/reset-password", "I don't know the option "+code("<!channel> `rm`")+"."),
	}
	for name, msg := range cases {
		t.Run(name, func(t *testing.T) { golden(t, name, msg) })
	}
}

// queueRows returns n requests of different employees for one approver,
// a minute apart, all pending.
func queueRows(n int) []*workflow.Request {
	var rows []*workflow.Request
	for i := range n {
		r := sample(workflow.StatusPending)
		r.ID = fmt.Sprintf("Rqueue%019d", i)
		r.Requester = fmt.Sprintf("UEMP%02d", i)
		r.Account.UserName, r.Account.Email = fmt.Sprintf("emp%02d", i), fmt.Sprintf("emp%02d@corp.example.com", i)
		r.CreatedAt = t0.Add(time.Duration(i) * time.Minute)
		rows = append(rows, r)
	}
	return rows
}

// decided returns r decided by approver (approved, or denied).
func decided(r *workflow.Request, approver string, approve bool, at time.Time) *workflow.Request {
	c := *r
	if err := c.Decide(approver, approve, at, 15*time.Minute); err != nil {
		panic(err)
	}
	return &c
}

// TestQueueMessagesGolden: an approver's queue as it lists requests, as
// its rows are answered (who decided and when), and when every row is.
func TestQueueMessagesGolden(t *testing.T) {
	rows := queueRows(3)
	answered := []*workflow.Request{rows[0], decided(rows[1], "UAPP1", true, t0.Add(5*time.Minute)), rows[2]}
	done := []*workflow.Request{decided(rows[0], "UAPP1", false, t0.Add(6*time.Minute)), answered[1], decided(rows[2], "UAPP2", true, t0.Add(7*time.Minute))}
	for name, msg := range map[string]Msg{
		"queue_one":      QueueMessage("UAPP1", rows[:1]), // one request looks as a single one
		"queue_pending":  QueueMessage("UAPP1", rows),
		"queue_answered": QueueMessage("UAPP1", answered),
		"queue_done":     QueueMessage("UAPP1", done),
	} {
		t.Run(name, func(t *testing.T) { golden(t, name, msg) })
	}
	if got, want := QueueMessage("UAPP1", rows[:1]), ApprovalMessage(rows[0]); digest(got) != digest(want) {
		t.Error("a queue of one request does not look as the single request's message")
	}
}

// TestQueueMessageFitsBlockKit: a full queue message, whatever its rows'
// states, stays within Block Kit's limits (50 blocks, unique block IDs,
// 3000 characters a section, 4000 the text), and each pending row has
// Approve and Deny carrying its request ID only.
func TestQueueMessageFitsBlockKit(t *testing.T) {
	rows := queueRows(maxQueueRows)
	for i := range rows {
		if i%3 == 1 {
			rows[i] = decided(rows[i], "UAPP1", i%2 == 0, t0.Add(25*time.Minute))
		}
	}
	for n := 2; n <= maxQueueRows; n++ {
		msg := QueueMessage("UAPP1", rows[:n])
		if len(msg.Blocks) > 50 {
			t.Fatalf("%d rows: %d blocks", n, len(msg.Blocks))
		}
		if len(msg.Text) > 4000 {
			t.Fatalf("%d rows: text of %d characters", n, len(msg.Text))
		}
		js, _ := json.Marshal(msg)
		s := string(js)
		ids := map[string]bool{}
		for _, b := range msg.Blocks {
			if id := b.ID(); id != "" {
				if ids[id] {
					t.Fatalf("%d rows: block_id %q twice", n, id)
				}
				ids[id] = true
			}
		}
		for _, r := range rows[:n] {
			buttons := strings.Count(s, `"value":"`+r.ID+`"`)
			if want := map[bool]int{true: 2, false: 0}[r.Status == workflow.StatusPending]; buttons != want {
				t.Fatalf("%d rows: %s (%s) has %d buttons, want %d", n, r.ID, r.Status, buttons, want)
			}
		}
	}
	if full := QueueMessage("UAPP1", queueRows(maxQueueRows)); len(full.Blocks) != 50 {
		t.Errorf("a full queue of pending rows has %d blocks, want exactly 50 (maxQueueRows fits)", len(full.Blocks))
	}
}

// TestButtonsCarryOnlyTheRequestID: a button's value is the opaque request
// ID and nothing else; only pending requests have decision buttons and only
// approved ones a Reveal button; completed ones a "This wasn't me" button
// until it is pressed.
func TestButtonsCarryOnlyTheRequestID(t *testing.T) {
	for _, st := range []workflow.Status{workflow.StatusPending, workflow.StatusApproved, workflow.StatusResetting, workflow.StatusCompleted, workflow.StatusDenied, workflow.StatusExpired, workflow.StatusFailed, workflow.StatusCancelled} {
		r := sample(st)
		for name, msg := range map[string]Msg{"approval": ApprovalMessage(r), "reveal": RevealMessage(r)} {
			js, _ := json.Marshal(msg)
			s := string(js)
			buttons := strings.Count(s, `"type":"button"`)
			want := 0
			switch {
			case name == "approval" && st == workflow.StatusPending:
				want = 2
			case name == "reveal" && (st == workflow.StatusApproved || st == workflow.StatusCompleted):
				want = 1
			}
			if buttons != want {
				t.Errorf("%s message for %s has %d buttons, want %d", name, st, buttons, want)
			}
			if want > 0 && strings.Count(s, `"value":"`+r.ID+`"`) != want {
				t.Errorf("%s buttons do not carry the request ID: %s", name, s)
			}
		}
	}
	r := sample(workflow.StatusCompleted)
	r.Events = append(r.Events, workflow.Event{At: t0.Add(time.Hour), Kind: workflow.EventReported, Actor: r.Requester})
	if js, _ := json.Marshal(RevealMessage(r)); strings.Contains(string(js), `"type":"button"`) {
		t.Errorf("a reported reset still offers the button: %s", js)
	}
}

func TestUntrustedTextIsEscaped(t *testing.T) {
	r := sample(workflow.StatusPending)
	r.Account.UserName = "a`b<!here>"
	r.Account.Email = "x<!channel>@corp.example.com"
	js, _ := json.Marshal([]Msg{ApprovalMessage(r), AuditReply(r, r.Events[0]), Receipt(r)})
	for _, bad := range []string{"<!here>", "<!channel>"} {
		if strings.Contains(string(js), bad) {
			t.Errorf("unescaped %s in %s", bad, js)
		}
	}
}

func TestEveryCodeHasItsOwnWords(t *testing.T) {
	internal := map[workflow.Code]bool{workflow.CodeInternal: true, workflow.CodeConflict: true,
		workflow.CodeInvalidInput: true, workflow.CodeDirectoryMisconfigured: true}
	seen := map[string]workflow.Code{}
	for _, c := range workflow.Codes {
		entry, ok := texts[c]
		if !ok {
			t.Errorf("%s has no entry in the texts table", c)
			continue
		}
		s := ErrorText(workflow.Errorf(c, "detail that must not show"), nil)
		if s == "" || strings.Contains(s, "detail that must not show") || strings.Contains(s, "{command}") {
			t.Errorf("%s: %q", c, s)
		}
		if internal[c] != (entry.employee == genericText) {
			t.Errorf("%s: generic text %v, want %v", c, entry.employee == genericText, internal[c])
		}
		if other, dup := seen[s]; dup && !internal[c] {
			t.Errorf("%s and %s share %q", c, other, s)
		}
		seen[s] = c
	}
	if len(texts) != len(workflow.Codes) {
		t.Errorf("%d texts for %d codes", len(texts), len(workflow.Codes))
	}
	// The guards run again at Reveal, where they end the request as failed.
	for _, c := range []workflow.Code{workflow.CodeNoAccount, workflow.CodeAccountDisabled, workflow.CodeProtectedGroup,
		workflow.CodeMachineAccount, workflow.CodeOutsideOU, workflow.CodeProtectedAccount, workflow.CodeInvalidUserName} {
		if helpdeskHint(c) == "" && c != workflow.CodeMachineAccount && c != workflow.CodeOutsideOU && c != workflow.CodeInvalidUserName {
			t.Errorf("guard %s gives helpdesk no hint", c)
		}
	}
}
