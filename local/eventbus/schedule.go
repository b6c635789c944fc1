package eventbus

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule is a parsed schedule expression of a scheduled rule, evaluated
// in UTC as EventBridge rules are.
type Schedule struct {
	expr   string
	rate   time.Duration // rate(...)
	anchor time.Time     // where a rate counts from
	cron   *cronSpec     // cron(...)
}

// maxCronYear is the last year AWS cron expressions allow.
const maxCronYear = 2199

// ParseSchedule parses rate(N minute|minutes|hour|hours|day|days) (N ≥ 1,
// the singular unit only for 1, as AWS requires) and
// cron(minutes hours day-of-month month day-of-week year) with AWS's
// fields: values, names (JAN-DEC, SUN-SAT; day-of-week 1 is Sunday),
// * , - / and ?, where exactly one of day-of-month and day-of-week is ?.
// L, W and # are refused.
func ParseSchedule(expr string) (Schedule, error) {
	s := Schedule{expr: expr}
	fail := func(format string, args ...any) (Schedule, error) {
		return Schedule{}, fmt.Errorf("eventbus: schedule %q: %s", expr, fmt.Sprintf(format, args...))
	}
	switch {
	case strings.HasPrefix(expr, "rate(") && strings.HasSuffix(expr, ")"):
		f := strings.Fields(expr[len("rate(") : len(expr)-1])
		if len(f) != 2 {
			return fail("want rate(value unit)")
		}
		n, err := strconv.Atoi(f[0])
		if err != nil || n < 1 {
			return fail("the value must be a positive whole number")
		}
		units := map[string]time.Duration{"minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour}
		unit, ok := strings.CutSuffix(f[1], "s")
		if d, known := units[unit]; !known {
			return fail("the unit must be minute(s), hour(s) or day(s)")
		} else if ok == (n == 1) {
			return fail("write rate(1 %s) for one and rate(%d %ss) for more", unit, max(n, 2), unit)
		} else {
			s.rate = time.Duration(n) * d
		}
		return s, nil
	case strings.HasPrefix(expr, "cron(") && strings.HasSuffix(expr, ")"):
		c, err := parseCron(expr[len("cron(") : len(expr)-1])
		if err != nil {
			return fail("%v", err)
		}
		s.cron = c
		return s, nil
	}
	return fail("want rate(...) or cron(...)")
}

// String is the expression.
func (s Schedule) String() string { return s.expr }

// From anchors a rate schedule at start: it fires at start + k × rate,
// k ≥ 1 (a rate starts counting when the rule is created). Cron schedules
// are unchanged.
func (s Schedule) From(start time.Time) Schedule {
	s.anchor = start
	return s
}

// Next is the first firing strictly after t; false when there is none
// (a cron schedule whose years have all passed).
func (s Schedule) Next(t time.Time) (time.Time, bool) {
	if s.cron != nil {
		return s.cron.next(t)
	}
	if s.rate <= 0 {
		return time.Time{}, false
	}
	anchor := s.anchor
	if anchor.IsZero() || anchor.After(t) {
		if anchor.IsZero() {
			anchor = t
		}
		return anchor.Add(s.rate), true
	}
	k := t.Sub(anchor)/s.rate + 1
	return anchor.Add(k * s.rate), true
}

// Latest is the last firing in (after, upTo], false when there is none.
func (s Schedule) Latest(after, upTo time.Time) (time.Time, bool) {
	if s.cron == nil && s.rate > 0 && !s.anchor.IsZero() && !upTo.Before(s.anchor) {
		k := upTo.Sub(s.anchor) / s.rate
		last := s.anchor.Add(k * s.rate)
		return last, k > 0 && last.After(after)
	}
	var last time.Time
	found := false
	// A cron schedule is walked one firing at a time: at most one per
	// minute, so a clock moved a year fires a per-minute rule in ~0.5M steps.
	for t, ok := s.Next(after); ok && !t.After(upTo); t, ok = s.Next(t) {
		last, found = t, true
	}
	return last, found
}

// cronSpec holds the allowed values of each field.
type cronSpec struct {
	minutes, hours, dom, months, dow [64]bool
	years                            map[int]bool // nil: every year
	anyDOM                           bool         // day-of-month is ?
}

var (
	monthNames = map[string]int{"JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6,
		"JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12}
	dayNames = map[string]int{"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
)

func parseCron(body string) (*cronSpec, error) {
	f := strings.Fields(body)
	if len(f) != 6 {
		return nil, fmt.Errorf("want 6 fields (minutes hours day-of-month month day-of-week year), got %d", len(f))
	}
	c := &cronSpec{}
	if (f[2] == "?") == (f[4] == "?") {
		return nil, fmt.Errorf("exactly one of day-of-month and day-of-week must be ?")
	}
	c.anyDOM = f[2] == "?"
	type spec struct {
		name     string
		text     string
		min, max int
		names    map[string]int
		dst      *[64]bool
	}
	for _, sp := range []spec{
		{"minutes", f[0], 0, 59, nil, &c.minutes},
		{"hours", f[1], 0, 23, nil, &c.hours},
		{"day-of-month", f[2], 1, 31, nil, &c.dom},
		{"month", f[3], 1, 12, monthNames, &c.months},
		{"day-of-week", f[4], 1, 7, dayNames, &c.dow},
	} {
		if (sp.name == "day-of-month" && strings.ContainsAny(sp.text, "LW")) ||
			(sp.name == "day-of-week" && (strings.Contains(sp.text, "#") || strings.HasSuffix(sp.text, "L"))) {
			return nil, fmt.Errorf("%s %q: L, W and # are not supported by the local scheduler", sp.name, sp.text)
		}
		if sp.text == "?" {
			if sp.name != "day-of-month" && sp.name != "day-of-week" {
				return nil, fmt.Errorf("%s: ? is allowed only in day-of-month and day-of-week", sp.name)
			}
			continue
		}
		vals, err := parseField(sp.text, sp.min, sp.max, sp.names)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %v", sp.name, sp.text, err)
		}
		for _, v := range vals {
			sp.dst[v] = true
		}
	}
	if f[5] != "*" {
		vals, err := parseField(f[5], 1970, maxCronYear, nil)
		if err != nil {
			return nil, fmt.Errorf("year %q: %v", f[5], err)
		}
		c.years = map[int]bool{}
		for _, v := range vals {
			c.years[v] = true
		}
	}
	return c, nil
}

// parseField expands a comma list of *, N, A-B, with an optional /STEP.
func parseField(text string, lo, hi int, names map[string]int) ([]int, error) {
	num := func(s string) (int, error) {
		if v, ok := names[strings.ToUpper(s)]; ok {
			return v, nil
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			return 0, fmt.Errorf("%q is not a value", s)
		}
		if n < lo || n > hi {
			return 0, fmt.Errorf("%d is outside %d-%d", n, lo, hi)
		}
		return n, nil
	}
	var out []int
	for _, part := range strings.Split(text, ",") {
		rng, stepText, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("step %q must be a positive whole number", stepText)
			}
			step = n
		}
		from, to := lo, hi
		switch a, b, isRange := strings.Cut(rng, "-"); {
		case rng == "*":
		case isRange:
			var err error
			if from, err = num(a); err != nil {
				return nil, err
			}
			if to, err = num(b); err != nil {
				return nil, err
			}
			if from > to {
				return nil, fmt.Errorf("range %s runs backwards", rng)
			}
		default:
			n, err := num(rng)
			if err != nil {
				return nil, err
			}
			from = n
			if !hasStep {
				to = n
			}
		}
		for v := from; v <= to; v += step {
			out = append(out, v)
		}
	}
	return out, nil
}

func (c *cronSpec) dayMatches(t time.Time) bool {
	if c.anyDOM {
		return c.dow[int(t.Weekday())+1]
	}
	return c.dom[t.Day()]
}

// next walks forward from the minute after t, skipping whole years,
// months, days and hours that cannot match.
func (c *cronSpec) next(t time.Time) (time.Time, bool) {
	t = t.UTC().Truncate(time.Minute).Add(time.Minute)
	for t.Year() <= maxCronYear {
		y, mo, d := t.Date()
		switch {
		case c.years != nil && !c.years[y]:
			t = time.Date(y+1, 1, 1, 0, 0, 0, 0, time.UTC)
		case !c.months[mo]:
			t = time.Date(y, mo+1, 1, 0, 0, 0, 0, time.UTC)
		case !c.dayMatches(t):
			t = time.Date(y, mo, d+1, 0, 0, 0, 0, time.UTC)
		case !c.hours[t.Hour()]:
			t = time.Date(y, mo, d, t.Hour()+1, 0, 0, 0, time.UTC)
		case !c.minutes[t.Minute()]:
			t = t.Add(time.Minute)
		default:
			return t, true
		}
	}
	return time.Time{}, false
}
