package main

import (
	"strings"
	"testing"
	"time"

	"github.com/example/resetbot/workflow"
)

// TestProbingTheGuardsIsLimited: an employee who keeps asking for an
// account the guards refuse (here Administrator, protected) is refused
// REQUEST_LIMIT times for that reason and then told they reached the
// limit, without the guards being asked again; each refusal is in the
// audit log, and another employee is not affected.
func TestProbingTheGuardsIsLimited(t *testing.T) {
	w := newWorld(t)
	w.vars["REQUEST_LIMIT"] = "2"
	w.start()
	for i := range 2 {
		if ans := w.command("UADMIN", ""); !strings.Contains(ans, "protected") {
			t.Fatalf("attempt %d: %s", i+1, ans)
		}
	}
	usersInfo := len(w.slack.Calls("users.info"))
	for i := range 3 {
		if ans := w.command("UADMIN", ""); !strings.Contains(ans, "reached the limit") {
			t.Fatalf("attempt %d past the limit: %s", i+3, ans)
		}
	}
	if n := len(w.slack.Calls("users.info")) - usersInfo; n != 0 {
		t.Errorf("the attempts past the limit asked Slack about the user %d times: the guards ran", n)
	}
	_, n, err := w.store.Standing(t.Context(), "UADMIN", workflow.ActionReset, time.Now().Add(-24*time.Hour))
	if err != nil || n != 2 {
		t.Errorf("Standing counts %d attempts (%v), want the 2 refusals", n, err)
	}
	w.wait("the refusals in the audit log", func() bool {
		recs, _ := w.exportAudit("--user", "UADMIN", "--status", "refused")
		return len(recs) == 5
	})
	recs, _ := w.exportAudit("--user", "UADMIN", "--status", "refused")
	if got := events(recs); got != strings.Repeat("refused//protected_account ", 2)+strings.TrimSpace(strings.Repeat("refused//rate_limited ", 3)) {
		t.Errorf("audit log: %s", got)
	}
	if r, _ := w.request(); r.Status != workflow.StatusPending {
		t.Errorf("another employee's request: %s", r.Status)
	}
}
