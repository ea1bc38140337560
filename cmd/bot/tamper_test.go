package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/example/resetbot/delivery"
	"github.com/example/resetbot/internal/slacktest"
	"github.com/example/resetbot/slackapp"
	redisstore "github.com/example/resetbot/store/redisstore"
	"github.com/example/resetbot/workflow"
)

// The attack of issue 13: whoever can write the bot's Redis changes a
// stored request. Each test makes the change with a plain Redis client (or
// by editing the embedded store's file), then has the employee click
// Reveal, and checks that nothing was reset, that the employee is told in
// words, and that the audit log and the audit channel say what happened.

// tamperRedis rewrites the stored record of request id in the world's
// Redis, failing the test unless the record holds old.
func (w *world) tamperRedis(id, old, new string) {
	w.t.Helper()
	ctx := context.Background()
	key := redisstore.KeyPrefix(w.prefix) + "req:" + id
	data, err := w.redis.Get(ctx, key).Bytes()
	if err != nil {
		w.t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(old)) {
		w.t.Fatalf("the stored request holds no %s: %s", old, data)
	}
	if err := w.redis.Set(ctx, key, bytes.Replace(data, []byte(old), []byte(new), 1), 0).Err(); err != nil {
		w.t.Fatal(err)
	}
}

// checkNothingReset checks the aftermath of a Reveal on a tampered request:
// no directory call, no password anywhere, the tampering in the audit log
// (read through the store) and in the audit channel, the record moved
// aside, and the employee able to ask again.
func (w *world) checkNothingReset(id, answer string, audit func() []workflow.AuditRecord) {
	w.t.Helper()
	if !strings.Contains(answer, "could not verify this request's record") {
		w.t.Errorf("the employee's answer: %q", answer)
	}
	w.wait("the audit channel to be told", func() bool {
		return strings.Contains(threadText(w.slack.Messages(auditChannel)), "was not acted on (`tampered`)")
	})
	if calls := w.ds.ResetCalls(); len(calls) != 0 {
		w.t.Errorf("a tampered request reset passwords: %+v", calls)
	}
	if eph := w.passwordMessages(); len(eph) != 0 {
		w.t.Errorf("ephemeral messages after a tampered Reveal: %+v", eph)
	}
	var found bool
	for _, rec := range audit() {
		if rec.Event == workflow.EventTampered && rec.RequestID == id && rec.Code == workflow.CodeTampered {
			found = true
		}
	}
	if !found {
		w.t.Errorf("no tampered record for %s in the audit log: %+v", id, audit())
	}
}

// auditLog returns every record of the world's Redis audit log.
func (w *world) auditLog() []workflow.AuditRecord {
	w.t.Helper()
	var recs []workflow.AuditRecord
	if err := w.store.Audit(context.Background(), workflow.AuditQuery{}, func(rec workflow.AuditRecord) error {
		recs = append(recs, rec)
		return nil
	}); err != nil {
		w.t.Fatal(err)
	}
	return recs
}

func TestTamperedAccountInRedis(t *testing.T) {
	w := newWorld(t)
	w.start()
	r, dms := w.request()
	reveal := w.approve(r, dms)
	// The attacker points the approved request at another account.
	w.tamperRedis(r.ID, `"user_name":"alice"`, `"user_name":"bob"`)

	answer := w.clickReply(employee, slackapp.ActionReveal, r.ID, reveal)
	w.checkNothingReset(r.ID, answer, w.auditLog)
	ctx := context.Background()
	if n, err := w.redis.Exists(ctx, redisstore.KeyPrefix(w.prefix)+"tampered:"+r.ID).Result(); err != nil || n != 1 {
		t.Errorf("the tampered record was not kept aside: %d, %v", n, err)
	}
	if ans := w.command(employee, ""); !idRe.MatchString(ans) || strings.Contains(ans, r.ID) {
		t.Errorf("the employee cannot ask again: %s", ans)
	}
}

func TestTamperedStatusInRedis(t *testing.T) {
	w := newWorld(t)
	w.start()
	r, _ := w.request()
	// The attacker approves the pending request in the store, and the
	// employee clicks a Reveal button (an old one, or a forged payload)
	// with its ID.
	w.tamperRedis(r.ID, `"status":"pending"`, `"status":"approved"`)
	w.tamperRedis(r.ID, `"decide_by"`, `"reveal_by":"2099-01-01T00:00:00Z","decided_by":"UAPP1","decide_by"`)

	answer := w.clickReply(employee, slackapp.ActionReveal, r.ID, slacktest.Message{Channel: slacktest.DMChannel(employee), TS: "1.000001"})
	w.checkNothingReset(r.ID, answer, w.auditLog)
}

// TestTamperedEmbeddedStore: the same attack on the embedded store's file,
// changed while the bot is stopped (bbolt locks it while the bot runs).
func TestTamperedEmbeddedStore(t *testing.T) {
	w := newWorld(t)
	delete(w.vars, "REDIS_URL")
	w.vars["DATA_DIR"] = t.TempDir()
	bot := w.start()
	w.command(employee, "")
	m := w.buttonMessage(slacktest.DMChannel(approver1), slackapp.ActionApprove)
	id := idRe.FindString(string(m.Blocks))
	w.clickAcked(approver1, slackapp.ActionApprove, id, m)
	reveal := w.buttonMessage(slacktest.DMChannel(employee), slackapp.ActionReveal)
	// Every chat lane the approval marked is done before the bot stops, so
	// that the Reveal click below is the first to read the tampered record.
	// (A lane that read it first would report it all the same, and the
	// click would then find no request: TestLaneReportsATamperedRequest.)
	w.wait("the bot's chat lanes to be done", func() bool {
		_, metrics := getURL(t, bot, "/metrics")
		return strings.Contains(metrics, "\nresetbot_chat_lanes_pending 0\n")
	})
	bot.stop()

	db, err := bolt.Open(filepath.Join(w.vars["DATA_DIR"], "resetbot.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("requests"))
		data := b.Get([]byte(id))
		if !bytes.Contains(data, []byte(`"user_name":"alice"`)) {
			t.Fatalf("the stored request holds no alice: %s", data)
		}
		return b.Put([]byte(id), bytes.Replace(data, []byte(`"user_name":"alice"`), []byte(`"user_name":"carol"`), 1))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	bot = w.start()
	answer := w.clickReply(employee, slackapp.ActionReveal, id, reveal)
	w.wait("the audit channel to be told", func() bool {
		return strings.Contains(threadText(w.slack.Messages(auditChannel)), "was not acted on (`tampered`)")
	})
	bot.stop()
	w.checkNothingReset(id, answer, func() []workflow.AuditRecord {
		recs, err := w.exportAudit()
		if err != nil {
			t.Fatal(err)
		}
		return recs
	})
}

// TestTamperedLaneRecordTellsNobodyElse: whoever can write the bot's Redis
// puts another employee's Reveal DM in the record of this employee's chat
// lane (the record of the stranger's lane copied over, or an edited one).
// The bot refuses the record (its seal binds it to its lane), audits it,
// and tells the employee from the request itself: the stranger's message
// is never touched, the password goes to the employee only.
func TestTamperedLaneRecordTellsNobodyElse(t *testing.T) {
	for _, how := range []string{"copied from the stranger's lane", "edited to the stranger's message"} {
		t.Run(how, func(t *testing.T) {
			w := newWorld(t)
			w.start()
			// The stranger's request, approved: their Reveal DM.
			sid := idRe.FindString(w.command(stranger, ""))
			w.clickAcked(approver1, slackapp.ActionApprove, sid, w.messageFor(slacktest.DMChannel(approver1), sid, slackapp.ActionApprove))
			theirs := w.messageFor(slacktest.DMChannel(stranger), sid, slackapp.ActionReveal)
			w.waitStatus(sid, workflow.StatusApproved)
			// The employee's, approved.
			r, dms := w.request()
			reveal := w.approve(r, dms)
			ctx := context.Background()
			mine := redisstore.KeyPrefix(w.prefix) + "lane:" + delivery.People(r.ID).String()
			stored, err := w.redis.Get(ctx, mine).Bytes()
			if err != nil {
				t.Fatal(err)
			}
			forged := bytes.ReplaceAll(stored, []byte(reveal.Channel), []byte(theirs.Channel))
			forged = bytes.ReplaceAll(forged, []byte(reveal.TS), []byte(theirs.TS))
			if how == "copied from the stranger's lane" {
				if forged, err = w.redis.Get(ctx, redisstore.KeyPrefix(w.prefix)+"lane:"+delivery.People(sid).String()).Bytes(); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.redis.Set(ctx, mine, forged, 0).Err(); err != nil {
				t.Fatal(err)
			}
			before := len(w.slack.Messages(slacktest.DMChannel(stranger)))
			w.clickAcked(employee, slackapp.ActionReveal, r.ID, reveal)
			w.waitStatus(r.ID, workflow.StatusCompleted)

			if got := w.message(theirs); got.Updates != 0 || !hasButton(got, slackapp.ActionReveal) {
				t.Errorf("the stranger's Reveal DM was changed: %d updates, %s", got.Updates, blocksText(got))
			}
			if n := len(w.slack.Messages(slacktest.DMChannel(stranger))); n != before {
				t.Errorf("%d messages posted to the stranger", n-before)
			}
			eph := w.passwordMessages()
			if len(eph) != 1 || eph[0].User != employee {
				t.Errorf("password messages %+v, want one to the employee", eph)
			}
			// The employee was told, from the request: their Reveal DM shows
			// the reset (through their click, or posted again).
			w.wait("the employee told of the reset", func() bool { return strings.Contains(w.dmTexts(employee), "Password reset at") })
			w.wait("the tampered record in the audit log", func() bool {
				for _, rec := range w.auditLog() {
					if rec.Event == workflow.EventTampered && rec.RequestID == r.ID && strings.Contains(rec.Detail, "delivery record") {
						return true
					}
				}
				return false
			})
		})
	}
}
