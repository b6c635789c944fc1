package eventbus_test

import (
	"strings"
	"testing"
	"time"

	"github.com/connmgr/connmgr/local/eventbus"
)

func at(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05", s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestScheduleNext(t *testing.T) {
	cases := []struct {
		expr, after, want string // want "" means no further firing
	}{
		{"cron(0 * * * ? *)", "2030-01-02 03:04:05", "2030-01-02 04:00:00"},
		{"cron(0 * * * ? *)", "2030-01-02 04:00:00", "2030-01-02 05:00:00"}, // strictly after
		{"cron(0 * * * ? *)", "2030-01-02 03:59:59", "2030-01-02 04:00:00"},
		{"cron(*/15 * * * ? *)", "2030-01-02 03:04:00", "2030-01-02 03:15:00"},
		{"cron(0/15 * * * ? *)", "2030-01-02 03:45:00", "2030-01-02 04:00:00"},
		{"cron(5,35 * * * ? *)", "2030-01-02 03:05:00", "2030-01-02 03:35:00"},
		{"cron(0/20 8-10 * * ? *)", "2030-01-02 10:40:00", "2030-01-03 08:00:00"},
		{"cron(10-30/10 * * * ? *)", "2030-01-02 03:30:00", "2030-01-02 04:10:00"},
		{"cron(59 23 * * ? *)", "2030-12-31 23:59:00", "2031-01-01 23:59:00"}, // year end
		{"cron(0 0 1 * ? *)", "2030-01-31 12:00:00", "2030-02-01 00:00:00"},   // month end
		{"cron(0 0 31 * ? *)", "2030-01-31 00:00:00", "2030-03-31 00:00:00"},  // February has no 31st
		{"cron(0 0 31 * ? *)", "2030-03-31 00:00:00", "2030-05-31 00:00:00"},  // nor April
		{"cron(0 0 30 * ? *)", "2030-01-30 00:00:00", "2030-03-30 00:00:00"},  // nor a 30th
		{"cron(0 0 29 2 ? *)", "2030-01-01 00:00:00", "2032-02-29 00:00:00"},  // leap year
		{"cron(0 0 29 FEB ? *)", "2032-02-29 00:00:00", "2036-02-29 00:00:00"},
		{"cron(0 12 ? * MON-FRI *)", "2030-01-04 13:00:00", "2030-01-07 12:00:00"}, // Friday → Monday
		{"cron(0 12 ? * MON-FRI *)", "2030-01-04 11:00:00", "2030-01-04 12:00:00"},
		{"cron(0 9 ? * 1 *)", "2030-01-01 00:00:00", "2030-01-06 09:00:00"}, // 1 is Sunday
		{"cron(0 9 ? * SUN *)", "2030-01-06 09:00:00", "2030-01-13 09:00:00"},
		{"cron(0 9 ? * sat,sun *)", "2030-01-01 00:00:00", "2030-01-05 09:00:00"},
		{"cron(0 9 ? * 7 *)", "2030-01-01 00:00:00", "2030-01-05 09:00:00"}, // 7 is Saturday
		{"cron(0 0 1 jan,JUL ? *)", "2030-01-01 00:00:00", "2030-07-01 00:00:00"},
		{"cron(0 0 1 1 ? 2030-2034/2)", "2030-01-01 00:00:00", "2032-01-01 00:00:00"},
		{"cron(0 0 1 1 ? 2031)", "2031-01-01 00:00:00", ""},
		{"cron(0 0 1 1 ? *)", "2199-01-01 00:00:00", ""},
		{"cron(0 0 ? * 3 *)", "2030-01-01 00:00:00", "2030-01-08 00:00:00"}, // Tuesday → next Tuesday
	}
	for _, tc := range cases {
		t.Run(tc.expr+" after "+tc.after, func(t *testing.T) {
			s, err := eventbus.ParseSchedule(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := s.Next(at(tc.after))
			if tc.want == "" {
				if ok {
					t.Errorf("Next = %v, want none", got)
				}
				return
			}
			if !ok || !got.Equal(at(tc.want)) {
				t.Errorf("Next = %v %v, want %s", got, ok, tc.want)
			}
		})
	}
}

func TestRateSchedule(t *testing.T) {
	start := at("2030-01-02 03:04:05")
	cases := []struct {
		expr  string
		after time.Duration
		want  time.Duration
	}{
		{"rate(5 minutes)", 0, 5 * time.Minute},
		{"rate(5 minutes)", 5 * time.Minute, 10 * time.Minute},
		{"rate(5 minutes)", 7 * time.Minute, 10 * time.Minute},
		{"rate(1 minute)", 30 * time.Second, time.Minute},
		{"rate(1 hour)", 0, time.Hour},
		{"rate(2 hours)", 3 * time.Hour, 4 * time.Hour},
		{"rate(1 day)", 25 * time.Hour, 48 * time.Hour},
		{"rate(7 days)", 0, 7 * 24 * time.Hour},
		{"rate(1 hour)", -time.Hour, time.Hour}, // before the anchor: the first firing
	}
	for _, tc := range cases {
		s, err := eventbus.ParseSchedule(tc.expr)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := s.From(start).Next(start.Add(tc.after))
		if !ok || got.Sub(start) != tc.want {
			t.Errorf("%s: Next(start+%v) = start+%v, want start+%v", tc.expr, tc.after, got.Sub(start), tc.want)
		}
	}
}

func TestScheduleLatest(t *testing.T) {
	start := at("2030-01-02 03:04:05")
	hourly, _ := eventbus.ParseSchedule("rate(1 hour)")
	hourly = hourly.From(start)
	if got, ok := hourly.Latest(start, start.Add(10*time.Hour+30*time.Minute)); !ok || got != start.Add(10*time.Hour) {
		t.Errorf("rate Latest = %v %v", got, ok)
	}
	if _, ok := hourly.Latest(start.Add(time.Hour), start.Add(90*time.Minute)); ok {
		t.Error("rate Latest found a firing in an interval without one")
	}
	cron, _ := eventbus.ParseSchedule("cron(0 * * * ? *)")
	if got, ok := cron.Latest(start, start.Add(10*time.Hour)); !ok || !got.Equal(at("2030-01-02 13:00:00")) {
		t.Errorf("cron Latest = %v %v", got, ok)
	}
}

func TestParseScheduleRejects(t *testing.T) {
	for _, tc := range []struct{ expr, reason string }{
		{"every hour", "want rate(...) or cron(...)"},
		{"rate(5)", "want rate(value unit)"},
		{"rate(0 minutes)", "positive whole number"},
		{"rate(-1 minutes)", "positive whole number"},
		{"rate(1.5 hours)", "positive whole number"},
		{"rate(1 minutes)", "write rate(1 minute)"},
		{"rate(5 minute)", "rate(5 minutes)"},
		{"rate(2 weeks)", "minute(s), hour(s) or day(s)"},
		{"cron(0 * * * ?)", "want 6 fields"},
		{"cron(0 * * * * *)", "exactly one of day-of-month and day-of-week must be ?"},
		{"cron(0 * ? * ? *)", "exactly one of day-of-month and day-of-week must be ?"},
		{"cron(0 12 L * ? *)", "L, W and # are not supported"},
		{"cron(0 12 15W * ? *)", "L, W and # are not supported"},
		{"cron(0 12 ? * 6#3 *)", "L, W and # are not supported"},
		{"cron(0 12 ? * 5L *)", "L, W and # are not supported"},
		{"cron(60 * * * ? *)", "60 is outside 0-59"},
		{"cron(0 24 * * ? *)", "24 is outside 0-23"},
		{"cron(0 0 32 * ? *)", "32 is outside 1-31"},
		{"cron(0 0 0 * ? *)", "0 is outside 1-31"},
		{"cron(0 0 1 13 ? *)", "13 is outside 1-12"},
		{"cron(0 0 ? * 8 *)", "8 is outside 1-7"},
		{"cron(0 0 ? * FUNDAY *)", `"FUNDAY" is not a value`},
		{"cron(0 0 1 * ? 1969)", "1969 is outside 1970-2199"},
		{"cron(0 0 5-1 * ? *)", "runs backwards"},
		{"cron(*/0 * * * ? *)", "step"},
		{"cron(? * 1 * ? *)", "? is allowed only"},
	} {
		_, err := eventbus.ParseSchedule(tc.expr)
		if err == nil || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: error %v, want one mentioning %q", tc.expr, err, tc.reason)
		}
	}
}
