package workflow

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// WorkHours are the hours on which requests are expected (WORK_HOURS): a
// request made outside them, in the employee's own time zone, is flagged
// for the approver. The zero value is off: nothing is flagged.
type WorkHours struct {
	Start, End time.Duration // since midnight, local time; Start < End
	Days       [7]bool       // by time.Weekday
}

// DefaultWorkHours is WORK_HOURS when unset: 07:00 to 19:00, Monday to
// Friday.
const DefaultWorkHours = "07:00-19:00"

var weekdayNames = [7]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}

// ParseWorkHours reads hours like "07:00-19:00" (Monday to Friday),
// "07:00-19:00 Mon-Sat" or "08:30-17:00 Mon,Tue,Thu", or "off" for none.
// Times are HH:MM, 24-hour, 00:00 to 24:00, the start before the end;
// days are Mon Tue Wed Thu Fri Sat Sun (any case), ranges with "-" from
// one to a later day, lists with ",".
func ParseWorkHours(s string) (WorkHours, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "off") {
		return WorkHours{}, nil
	}
	fields := strings.Fields(s)
	if len(fields) == 0 || len(fields) > 2 {
		return WorkHours{}, fmt.Errorf("not hours like 07:00-19:00, optionally followed by days like Mon-Fri")
	}
	from, to, ok := strings.Cut(fields[0], "-")
	if !ok {
		return WorkHours{}, fmt.Errorf("%q is not hours like 07:00-19:00", fields[0])
	}
	var w WorkHours
	var err error
	if w.Start, err = clockTime(from); err != nil {
		return WorkHours{}, err
	}
	if w.End, err = clockTime(to); err != nil {
		return WorkHours{}, err
	}
	if w.Start >= w.End {
		return WorkHours{}, fmt.Errorf("the hours %s end before they start (hours over midnight are not supported)", fields[0])
	}
	days := "Mon-Fri"
	if len(fields) == 2 {
		days = fields[1]
	}
	for part := range strings.SplitSeq(days, ",") {
		a, b, isRange := strings.Cut(part, "-")
		first, err := weekday(a)
		if err != nil {
			return WorkHours{}, err
		}
		last := first
		if isRange {
			if last, err = weekday(b); err != nil {
				return WorkHours{}, err
			}
		}
		// Monday is the first day of a range: Mon-Sun is the whole week.
		if (first+6)%7 > (last+6)%7 {
			return WorkHours{}, fmt.Errorf("the days %s run backwards (write them from Mon to Sun)", part)
		}
		for d := first; ; d = (d + 1) % 7 {
			w.Days[d] = true
			if d == last {
				break
			}
		}
	}
	return w, nil
}

// clockTime reads HH:MM, 00:00 to 24:00.
func clockTime(s string) (time.Duration, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || len(h) != 2 || len(m) != 2 || err1 != nil || err2 != nil || hh < 0 || mm < 0 || mm > 59 || hh > 24 || hh == 24 && mm != 0 {
		return 0, fmt.Errorf("%q is not a time like 07:00 (00:00 to 24:00)", s)
	}
	return time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute, nil
}

func weekday(s string) (time.Weekday, error) {
	for i, n := range weekdayNames {
		if strings.EqualFold(n, s) {
			return time.Weekday(i), nil
		}
	}
	return 0, fmt.Errorf("%q is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)", s)
}

// On reports whether w flags anything.
func (w WorkHours) On() bool { return w.Start < w.End && w.Days != [7]bool{} }

// Outside reports whether t, read in its own location, is outside w.
func (w WorkHours) Outside(t time.Time) bool {
	if !w.On() {
		return false
	}
	since := time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute + time.Duration(t.Second())*time.Second
	return !w.Days[t.Weekday()] || since < w.Start || since >= w.End
}

// String writes w the way ParseWorkHours reads it, days always given.
func (w WorkHours) String() string {
	if !w.On() {
		return "off"
	}
	clock := func(d time.Duration) string { return fmt.Sprintf("%02d:%02d", int(d.Hours()), int(d.Minutes())%60) }
	var parts []string
	for i := 0; i < 7; {
		d := time.Weekday((i + 1) % 7) // from Monday
		if !w.Days[d] {
			i++
			continue
		}
		j := i
		for j+1 < 7 && w.Days[(j+2)%7] {
			j++
		}
		part := weekdayNames[d]
		if j > i {
			part += "-" + weekdayNames[(j+1)%7]
		}
		parts = append(parts, part)
		i = j + 1
	}
	return clock(w.Start) + "-" + clock(w.End) + " " + strings.Join(parts, ",")
}
