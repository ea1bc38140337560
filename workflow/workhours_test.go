package workflow

import (
	"strings"
	"testing"
	"time"
)

func TestParseWorkHours(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"07:00-19:00", "07:00-19:00 Mon-Fri"},
		{"  08:30-17:15   mon-SAT ", "08:30-17:15 Mon-Sat"},
		{"00:00-24:00 Mon-Sun", "00:00-24:00 Mon-Sun"},
		{"09:00-17:00 Mon,Wed,Fri", "09:00-17:00 Mon,Wed,Fri"},
		{"09:00-17:00 Sun", "09:00-17:00 Sun"},
		{"09:00-17:00 Sat-Sun,Mon", "09:00-17:00 Mon,Sat-Sun"},
		{"off", "off"},
		{"OFF", "off"},
	} {
		w, err := ParseWorkHours(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if w.String() != c.want {
			t.Errorf("%q reads as %q, want %q", c.in, w.String(), c.want)
		}
		if again, err := ParseWorkHours(w.String()); err != nil || again != w {
			t.Errorf("%q does not read back: %v %v", w.String(), again, err)
		}
	}
	for _, c := range []struct{ in, problem string }{
		{"", "not hours"},
		{"7-19", "not a time"},
		{"0700", "not hours like"},
		{"7:00-19:00", "not a time"},
		{"07:00-25:00", "not a time"},
		{"07:00-24:30", "not a time"},
		{"07:60-19:00", "not a time"},
		{"19:00-07:00", "end before they start"},
		{"07:00-07:00", "end before they start"},
		{"07:00-19:00 Fri-Mon", "run backwards"},
		{"07:00-19:00 Sun-Sat", "run backwards"},
		{"07:00-19:00 Weekdays", "not a day"},
		{"07:00-19:00 Mon-Fri extra", "not hours"},
	} {
		if _, err := ParseWorkHours(c.in); err == nil || !strings.Contains(err.Error(), c.problem) {
			t.Errorf("%q: %v, want a problem with %q", c.in, err, c.problem)
		}
	}
}

func TestOutsideWorkHours(t *testing.T) {
	w, err := ParseWorkHours(DefaultWorkHours)
	if err != nil {
		t.Fatal(err)
	}
	berlin := time.FixedZone("CET", 3600)
	for _, c := range []struct {
		at      time.Time
		outside bool
	}{
		{time.Date(2026, 12, 2, 7, 0, 0, 0, berlin), false},  // Wednesday, opening
		{time.Date(2026, 12, 2, 6, 59, 59, 0, berlin), true}, // before
		{time.Date(2026, 12, 2, 18, 59, 59, 0, berlin), false},
		{time.Date(2026, 12, 2, 19, 0, 0, 0, berlin), true}, // closing
		{time.Date(2026, 12, 5, 12, 0, 0, 0, berlin), true}, // Saturday
		{time.Date(2026, 12, 6, 12, 0, 0, 0, berlin), true}, // Sunday
		// 20:30 UTC on a Wednesday is 07:30 on Thursday in Auckland: inside.
		{time.Date(2026, 12, 2, 20, 30, 0, 0, time.UTC).In(time.FixedZone("NZDT", 13*3600)), false},
	} {
		if got := w.Outside(c.at); got != c.outside {
			t.Errorf("%s: outside %v, want %v", c.at.Format(time.RFC1123), got, c.outside)
		}
	}
	if (WorkHours{}).Outside(time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)) || (WorkHours{}).On() {
		t.Error("off flags something")
	}
}
