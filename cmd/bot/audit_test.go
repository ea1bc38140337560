package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/example/resetbot/internal/slacktest"
	"github.com/example/resetbot/slackapp"
	redisstore "github.com/example/resetbot/store/redisstore"
	"github.com/example/resetbot/workflow"
)

// exportAudit runs `bot audit args...` with the world's settings and
// returns the records printed.
func (w *world) exportAudit(args ...string) ([]workflow.AuditRecord, error) {
	w.t.Helper()
	var out syncBuffer
	err := run(context.Background(), append([]string{"bot", "audit"}, args...), func(k string) string { return w.vars[k] }, &out)
	var recs []workflow.AuditRecord
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if line == "" || err != nil {
			continue
		}
		var rec workflow.AuditRecord
		if jerr := json.Unmarshal([]byte(line), &rec); jerr != nil {
			w.t.Fatalf("bot audit printed a line that is not a record: %q", line)
		}
		recs = append(recs, rec)
	}
	return recs, err
}

func events(recs []workflow.AuditRecord) string {
	var s []string
	for _, r := range recs {
		s = append(s, r.Event+"/"+string(r.Status)+"/"+string(r.Code))
	}
	return strings.Join(s, " ")
}

// TestAuditExport: `bot audit` prints every step of a completed reset, a
// denial and a refused attempt, with who, which account and the outcome,
// and each filter selects.
func TestAuditExport(t *testing.T) {
	w := newWorld(t)
	bot := w.start()
	start := time.Now()
	r, dms := w.request()
	reveal := w.approve(r, dms)
	w.clickAcked(employee, slackapp.ActionReveal, r.ID, reveal)
	w.waitStatus(r.ID, workflow.StatusCompleted)
	denied, dms := w.request()
	w.deny(approver2, denied.ID, dms[approver2], "")
	w.waitStatus(denied.ID, workflow.StatusDenied)
	if ans := w.command("UADMIN", ""); !strings.Contains(ans, "protected") {
		t.Fatalf("admin request: %s", ans)
	}
	w.wait("the refusal in the audit channel", func() bool { return len(w.slack.Messages(auditChannel)) >= 3 })
	bot.stop()

	all, err := w.exportAudit()
	if err != nil {
		t.Fatal(err)
	}
	want := "requested/pending/ approved/approved/ revealed/resetting/ completed/completed/ " +
		"requested/pending/ denied/denied/ refused//protected_account"
	if got := events(all); got != want {
		t.Fatalf("audit log:\n%s\nwant\n%s", got, want)
	}
	done := all[3]
	if done.RequestID != r.ID || done.User != employee || done.Account != "alice" || done.Approver != approver1 ||
		done.DirectoryID != testDirectory || done.At.Before(start) {
		t.Errorf("completed record %+v", done)
	}
	if ref := all[6]; ref.User != "UADMIN" || ref.Account != "Administrator" || ref.RequestID != "" {
		t.Errorf("refused record %+v", ref)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--status", "denied"}, "denied/denied/"},
		{[]string{"--status", "refused"}, "refused//protected_account"},
		{[]string{"--user", "UADMIN"}, "refused//protected_account"},
		{[]string{"--user", "ALICE", "--status", "completed"}, "completed/completed/"},
		{[]string{"--since", "1h", "--status", "approved"}, "approved/approved/"},
		{[]string{"--until", start.Add(-time.Minute).Format(time.RFC3339)}, ""},
		{[]string{"--since", time.Now().Add(time.Minute).Format(time.RFC3339)}, ""},
	} {
		got, err := w.exportAudit(c.args...)
		if err != nil || events(got) != c.want {
			t.Errorf("bot audit %v: %q (%v), want %q", c.args, events(got), err, c.want)
		}
	}
	for _, bad := range [][]string{{"--since", "yesterday"}, {"--status", "happy"}, {"--since", "1h", "--until", "2h"}, {"--frobnicate"}} {
		if _, err := w.exportAudit(bad...); err == nil {
			t.Errorf("bot audit %v was accepted", bad)
		}
	}
}

// TestAuditExportEmbedded: with the embedded store, `bot audit` reads the
// file once the bot has stopped (bbolt locks it while the bot runs).
func TestAuditExportEmbedded(t *testing.T) {
	w := newWorld(t)
	delete(w.vars, "REDIS_URL")
	w.vars["DATA_DIR"] = t.TempDir()
	bot := w.start()
	id := idRe.FindString(w.command(employee, ""))
	m := w.buttonMessage(slacktest.DMChannel(approver2), slackapp.ActionDeny)
	w.deny(approver2, id, m, "")
	w.wait("the employee to be told", func() bool { return strings.Contains(w.dmTexts(employee), "denied your request") })
	w.command("UADMIN", "")
	w.wait("the refusal in the audit channel", func() bool {
		return strings.Contains(threadText(w.slack.Messages(auditChannel)), "refused (`protected_account`)")
	})
	if _, err := w.exportAudit(); err == nil {
		t.Error("bot audit read the embedded store while the bot holds it")
	}
	bot.stop()
	all, err := w.exportAudit()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := events(all), "requested/pending/ denied/denied/ refused//protected_account"; got != want {
		t.Fatalf("audit log %q, want %q", got, want)
	}
}

// failingWriter accepts n writes, then fails.
type failingWriter struct{ n, writes int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.writes++; f.writes > f.n {
		return 0, errors.New("the pipe is closed")
	}
	return len(p), nil
}

// TestAuditExportStreams: `bot audit` prints a log longer than the pages
// the store reads (Redis XRANGE with COUNT 1000), every record once and in
// order, and stops at once, saying so, when it cannot write.
func TestAuditExportStreams(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	const n = 2500
	at := time.Now().Add(-time.Hour).UTC()
	pipe := w.redis.Pipeline()
	for i := range n {
		rec := workflow.AuditRecord{At: at.Add(time.Duration(i) * time.Millisecond), Event: workflow.EventRefused,
			User: fmt.Sprintf("U%04d", i), Code: workflow.CodeProtectedAccount}
		b, _ := json.Marshal(rec)
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: redisstore.KeyPrefix(w.prefix) + "audit", Values: []any{"r", b}})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	recs, err := w.exportAudit("--since", "2h")
	if err != nil || len(recs) != n {
		t.Fatalf("bot audit printed %d records (%v), want %d", len(recs), err, n)
	}
	for i, rec := range recs {
		if rec.User != fmt.Sprintf("U%04d", i) {
			t.Fatalf("record %d is %s's: out of order or repeated", i, rec.User)
		}
	}

	fw := &failingWriter{n: 1}
	err = run(ctx, []string{"bot", "audit"}, func(k string) string { return w.vars[k] }, fw)
	if err == nil || !strings.Contains(err.Error(), "writing the audit log: the pipe is closed") || fw.writes != 2 {
		t.Errorf("bot audit into a closed pipe: %v after %d writes, want a write error on the second write", err, fw.writes)
	}
}
