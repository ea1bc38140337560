package config

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestOversightDefaults(t *testing.T) {
	c, err := Load(env(valid()))
	if err != nil {
		t.Fatal(err)
	}
	o := c.Oversight
	// Static approvers: nobody to escalate to.
	if o.RemindAfter != 10*time.Minute || o.EscalateAfter != 0 || o.RequireReason || o.ReportDisables ||
		o.WorkHours.String() != "07:00-19:00 Mon-Fri" || c.Helpdesk != nil || c.HelpdeskGroups != nil {
		t.Fatalf("defaults: %+v (hours %s)", o, o.WorkHours)
	}
	m := withLDAP(t)
	m["APPROVER_SOURCE"] = "manager"
	if c, err = Load(env(m)); err != nil {
		t.Fatal(err)
	}
	if c.EscalateAfter != 15*time.Minute || c.RemindAfter != 10*time.Minute {
		t.Fatalf("manager defaults: %+v", c.Oversight)
	}
}

func TestOversightSettings(t *testing.T) {
	m := withLDAP(t)
	m["APPROVER_SOURCE"] = "manager"
	m["REQUEST_TTL"] = "1h"
	m["REMIND_AFTER"] = "20m"
	m["ESCALATE_AFTER"] = "45m"
	m["REQUIRE_REASON"] = "true"
	m["WORK_HOURS"] = "08:00-18:00 Mon-Sat"
	m["REPORT_DISABLES"] = "true"
	m["HELPDESK"] = "U0HELP1, S0HELPERS,W0HELP2"
	c, err := Load(env(m))
	if err != nil {
		t.Fatal(err)
	}
	o := c.Oversight
	if o.RemindAfter != 20*time.Minute || o.EscalateAfter != 45*time.Minute || !o.RequireReason || !o.ReportDisables ||
		o.WorkHours.String() != "08:00-18:00 Mon-Sat" || fmt.Sprint(c.Helpdesk) != "[U0HELP1 W0HELP2]" || fmt.Sprint(c.HelpdeskGroups) != "[S0HELPERS]" {
		t.Fatalf("%+v", o)
	}
	for _, v := range []string{"off", "0", "OFF"} {
		m["REMIND_AFTER"], m["ESCALATE_AFTER"], m["WORK_HOURS"] = v, v, "off"
		if v == "0" {
			m["WORK_HOURS"] = "Off"
		}
		if c, err = Load(env(m)); err != nil {
			t.Fatal(err)
		}
		if c.RemindAfter != 0 || c.EscalateAfter != 0 || c.WorkHours.On() {
			t.Fatalf("%q: %+v", v, c.Oversight)
		}
	}
	// The start-up log says each setting.
	var buf strings.Builder
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("starting", "config", c)
	b := buf.String()
	for _, want := range []string{"remind_after", "escalate_after", "require_reason", "work_hours", "report_disables", "U0HELP1", "S0HELPERS"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the start-up log misses %s: %s", want, b)
		}
	}
}

func TestBadOversightSettings(t *testing.T) {
	for _, c := range []struct {
		name string
		set  map[string]string
		want []string
	}{
		{"longer than the request", map[string]string{"APPROVER_SOURCE": "manager", "REQUEST_TTL": "12m", "ESCALATE_AFTER": "12m"},
			[]string{"ESCALATE_AFTER 12m0s must be shorter than REQUEST_TTL 12m0s"}},
		{"default reminder too late", map[string]string{"REQUEST_TTL": "5m"},
			[]string{"REMIND_AFTER 10m0s must be shorter than REQUEST_TTL 5m0s"}},
		{"escalation without a manager", map[string]string{"ESCALATE_AFTER": "5m"},
			[]string{"ESCALATE_AFTER needs APPROVER_SOURCE=manager"}},
		{"not durations", map[string]string{"REMIND_AFTER": "soon", "APPROVER_SOURCE": "manager", "ESCALATE_AFTER": "-1m"},
			[]string{`REMIND_AFTER "soon" is not a duration`, "ESCALATE_AFTER must be a duration like 10m, or off"}},
		{"bad hours", map[string]string{"WORK_HOURS": "9-5"}, []string{`WORK_HOURS "9-5"`}},
		{"bad booleans", map[string]string{"REQUIRE_REASON": "please", "REPORT_DISABLES": "maybe"},
			[]string{`REQUIRE_REASON "please" must be true or false`, `REPORT_DISABLES "maybe" must be true or false`}},
		{"bad helpdesk", map[string]string{"HELPDESK": "U0OK,#helpdesk"}, []string{`HELPDESK entry "#helpdesk"`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := withLDAP(t)
			for k, v := range c.set {
				m[k] = v
			}
			_, err := Load(env(m))
			cerr, ok := err.(*Error)
			if !ok || len(cerr.Problems) != len(c.want) {
				t.Fatalf("want %d problems, got: %v", len(c.want), err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("missing %q in:\n%v", w, err)
				}
			}
		})
	}
	m := valid() // no LDAP
	m["REPORT_DISABLES"] = "true"
	if _, err := Load(env(m)); err == nil || !strings.Contains(err.Error(), "REPORT_DISABLES needs LDAP_URL") {
		t.Fatalf("REPORT_DISABLES without LDAP: %v", err)
	}
}
