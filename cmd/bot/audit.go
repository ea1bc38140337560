package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/example/resetbot/config"
	"github.com/example/resetbot/store/seal"
	"github.com/example/resetbot/workflow"
)

// audit exports the audit log as JSON lines, one workflow.AuditRecord per
// line, oldest first. It needs only the store settings (REDIS_URL or
// DATA_DIR); with Redis it works while the bot runs.
func audit(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, now time.Time) error {
	fs := newFlags("audit", "bot audit [--since T] [--until T] [--user ID|account] [--status S]\nPrints the audit log as JSON lines, oldest first; the fields are described in README.md.", stdout)
	since := fs.String("since", "", "only records at or after this time: RFC 3339 (2026-11-28T09:00:00Z) or a duration before now (24h, 7d)")
	until := fs.String("until", "", "only records before this time: RFC 3339 or a duration before now")
	user := fs.String("user", "", "only records of this employee: Slack user ID or directory account")
	status := fs.String("status", "", "only records after which the request had this status (pending, approved, resetting, completed, failed, denied, expired, cancelled), or refused")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	q, err := auditQuery(*since, *until, *user, *status, now)
	if err != nil {
		return err
	}
	sc, err := config.LoadStore(getenv)
	if err != nil {
		return err
	}
	st, err := openStore(*sc, seal.Key{}) // the audit log only: no request is read
	if err != nil {
		return err
	}
	defer st.close()
	// Each record is written as it is read: memory holds a page of the
	// store and the output buffer, however long the log is.
	out := bufio.NewWriter(stdout)
	enc := json.NewEncoder(out)
	var werr error
	err = st.Audit(ctx, q, func(rec workflow.AuditRecord) error {
		if werr = enc.Encode(rec); werr != nil {
			return werr
		}
		return nil
	})
	switch {
	case werr != nil:
		return fmt.Errorf("writing the audit log: %w", werr)
	case err != nil:
		out.Flush() // what was read before the failure
		return fmt.Errorf("reading the audit log: %w", err)
	}
	if err := out.Flush(); err != nil {
		return fmt.Errorf("writing the audit log: %w", err)
	}
	return nil
}

// auditQuery checks the flags of audit and turns them into a query.
func auditQuery(since, until, user, status string, now time.Time) (workflow.AuditQuery, error) {
	q := workflow.AuditQuery{User: strings.TrimSpace(user), Status: strings.ToLower(strings.TrimSpace(status))}
	var problems []string
	for _, f := range []struct {
		name, value string
		into        *time.Time
	}{{"--since", since, &q.Since}, {"--until", until, &q.Until}} {
		if f.value == "" {
			continue
		}
		t, err := pointInTime(f.value, now)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s %q: %v", f.name, f.value, err))
		}
		*f.into = t
	}
	switch workflow.Status(q.Status) {
	case "", workflow.StatusPending, workflow.StatusApproved, workflow.StatusResetting, workflow.StatusCompleted,
		workflow.StatusFailed, workflow.StatusDenied, workflow.StatusExpired, workflow.StatusCancelled, workflow.EventRefused:
	default:
		problems = append(problems, fmt.Sprintf("--status %q is not a status (pending, approved, resetting, completed, failed, denied, expired, cancelled) nor refused", status))
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		problems = append(problems, "--since must be before --until")
	}
	if len(problems) > 0 {
		return q, errors.New(strings.Join(problems, "; "))
	}
	return q, nil
}

// pointInTime reads an RFC 3339 time or a duration before now.
func pointInTime(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if n, ok := strings.CutSuffix(v, "d"); ok {
		if days, err := strconv.Atoi(n); err == nil && days >= 0 {
			return now.AddDate(0, 0, -days), nil
		}
	}
	return time.Time{}, fmt.Errorf("not an RFC 3339 time like 2026-11-28T09:00:00Z nor a duration like 24h or 7d")
}
