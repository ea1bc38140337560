package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/example/resetbot/workflow"
)

// Oversight holds what helps approvers decide in time and lets an
// account's owner notice a reset they did not ask for.
type Oversight struct {
	// RemindAfter is when approvers who have not decided get one reminder
	// (REMIND_AFTER); 0: none.
	RemindAfter time.Duration
	// EscalateAfter is when, with APPROVER_SOURCE=manager, the fallback
	// approvers (APPROVERS) are asked as well (ESCALATE_AFTER); 0: never.
	EscalateAfter time.Duration
	// RequireReason makes the command ask for a reason in a modal
	// (REQUIRE_REASON).
	RequireReason bool
	// WorkHours flag requests made outside them in the employee's time
	// zone (WORK_HOURS); off when zero.
	WorkHours workflow.WorkHours
	// ReportDisables makes "This wasn't me" disable the directory account
	// (REPORT_DISABLES); needs LDAP and the delegated right.
	ReportDisables bool
}

// Defaults of REMIND_AFTER and ESCALATE_AFTER.
const (
	DefaultRemindAfter   = 10 * time.Minute
	DefaultEscalateAfter = 15 * time.Minute
)

// oversight reads the Oversight settings; it runs after directory and
// timings (it needs APPROVER_SOURCE, LDAP_URL and REQUEST_TTL).
func (l *loader) oversight(c *Config) {
	o := &c.Oversight
	o.RemindAfter = l.optionalDuration("REMIND_AFTER", DefaultRemindAfter)
	if c.ManagerApproval {
		o.EscalateAfter = l.optionalDuration("ESCALATE_AFTER", DefaultEscalateAfter)
	} else if v := strings.TrimSpace(l.getenv("ESCALATE_AFTER")); v != "" && !off(v) {
		l.problem("ESCALATE_AFTER needs APPROVER_SOURCE=manager: without it the approvers asked are already APPROVERS (set it to off, or remove it)")
	}
	for _, s := range []struct {
		name string
		d    time.Duration
	}{{"REMIND_AFTER", o.RemindAfter}, {"ESCALATE_AFTER", o.EscalateAfter}} {
		if s.d > 0 && c.RequestTTL > 0 && s.d >= c.RequestTTL && !l.failed(s.name) {
			l.problem(fmt.Sprintf("%s %s must be shorter than REQUEST_TTL %s, or the request expires first: shorten it, or set it to off", s.name, s.d, c.RequestTTL))
		}
	}
	o.RequireReason = l.boolean("REQUIRE_REASON")
	hours := l.str("WORK_HOURS", workflow.DefaultWorkHours)
	wh, err := workflow.ParseWorkHours(hours)
	if err != nil {
		l.problem(fmt.Sprintf("WORK_HOURS %q: %v (like 07:00-19:00, 07:00-19:00 Mon-Sat, or off)", hours, err))
	}
	o.WorkHours = wh
	o.ReportDisables = l.boolean("REPORT_DISABLES")
	if o.ReportDisables && c.LDAPURL == "" {
		l.problem("REPORT_DISABLES needs LDAP_URL: it disables the account in the directory")
	}
}

// off reports whether v turns a setting off.
func off(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "off", "0", "false", "no":
		return true
	}
	return false
}

// optionalDuration reads a duration that "off" or 0 turns off (0), def
// when unset.
func (l *loader) optionalDuration(name string, def time.Duration) time.Duration {
	v := strings.TrimSpace(l.getenv(name))
	if off(v) {
		return 0
	}
	d := l.duration(name, def)
	if d < 0 && !l.failed(name) {
		l.fail(name, fmt.Sprintf("%s must be a duration like 10m, or off", name))
	}
	return max(d, 0)
}

// oversightLog is the Oversight part of the start-up log.
func (o Oversight) oversightLog() []any {
	return []any{
		"remind_after", o.RemindAfter.String(),
		"escalate_after", o.EscalateAfter.String(),
		"require_reason", o.RequireReason,
		"work_hours", o.WorkHours.String(),
		"report_disables", o.ReportDisables,
	}
}
