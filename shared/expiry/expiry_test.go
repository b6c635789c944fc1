package expiry_test

import (
	"testing"
	"time"

	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/expiry"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC) // on an hour boundary

func TestBuckets(t *testing.T) {
	tests := []struct {
		name  string
		at    time.Time
		want  string
		start time.Time
	}{
		{"on the hour", t0, "2026030109", t0},
		{"a nanosecond before the hour", t0.Add(-time.Nanosecond), "2026030108", t0.Add(-time.Hour)},
		{"the last second of the hour", t0.Add(time.Hour - time.Second), "2026030109", t0},
		{"midnight rolls the day", time.Date(2026, 2, 28, 23, 59, 59, 0, time.UTC), "2026022823", time.Date(2026, 2, 28, 23, 0, 0, 0, time.UTC)},
		{"another zone is the same instant", t0.In(time.FixedZone("X", 5*3600+1800)), "2026030109", t0},
		{"before 1970 floors", time.Date(1969, 12, 31, 23, 30, 0, 0, time.UTC), "1969123123", time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC)},
		{"leap day", time.Date(2028, 2, 29, 12, 0, 0, 0, time.UTC), "2028022912", time.Date(2028, 2, 29, 12, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := expiry.BucketOf(tt.at)
			if b.String() != tt.want || !b.Start().Equal(tt.start) || !b.End().Equal(tt.start.Add(time.Hour)) {
				t.Fatalf("BucketOf(%s) = %s [%s, %s), want %s from %s", tt.at, b, b.Start(), b.End(), tt.want, tt.start)
			}
			back, err := expiry.ParseBucket(b.String())
			if err != nil || back != b {
				t.Fatalf("ParseBucket(%s) = %v, %v", b, back, err)
			}
			if b.Next().Start() != b.End() || b.Next()-b != 1 {
				t.Fatalf("Next of %s", b)
			}
		})
	}
	for _, bad := range []string{"", "202603010", "20260301099", "2026030124", "2026x30109", "DUE#2026030109", "-026030109"} {
		if _, err := expiry.ParseBucket(bad); err == nil {
			t.Errorf("ParseBucket(%q) accepted", bad)
		}
	}
	// Text order is bucket order, across days, months and years.
	seq := []time.Time{t0.Add(-24 * time.Hour), t0.Add(-time.Hour), t0, t0.Add(time.Hour), t0.AddDate(0, 1, 0), t0.AddDate(1, 0, 0)}
	for i := 1; i < len(seq); i++ {
		a, b := expiry.BucketOf(seq[i-1]), expiry.BucketOf(seq[i])
		if !(a < b) || !(a.String() < b.String()) {
			t.Errorf("%s and %s sort differently as numbers and text", a, b)
		}
	}
}

func TestFileAt(t *testing.T) {
	tests := []struct {
		name     string
		due, now time.Time
		want     time.Time // bucket start
	}{
		{"future due: its own hour", t0.Add(50 * time.Hour), t0, t0.Add(50 * time.Hour)},
		{"due later this hour", t0.Add(59 * time.Minute), t0.Add(time.Minute), t0},
		{"past due: now's hour, never a closed one", t0.Add(-72 * time.Hour), t0.Add(30 * time.Minute), t0},
		{"due a second before now's hour", t0.Add(-time.Second), t0, t0},
		{"due exactly at the next hour", t0.Add(time.Hour), t0.Add(59 * time.Minute), t0.Add(time.Hour)},
	}
	for _, tt := range tests {
		if got := expiry.FileAt(tt.due, tt.now); !got.Start().Equal(tt.want) {
			t.Errorf("%s: FileAt = %s, want %s", tt.name, got.Start(), tt.want)
		}
	}
}

func TestDueKey(t *testing.T) {
	k := expiry.DueKey(t0.Add(90*time.Minute + 7*time.Second + 400*time.Millisecond))
	if k != "20260301T103007Z" {
		t.Fatalf("DueKey = %s", k)
	}
	back, err := expiry.ParseDueKey(k)
	if err != nil || !back.Equal(t0.Add(90*time.Minute+7*time.Second)) {
		t.Fatalf("ParseDueKey = %s %v", back, err)
	}
	if expiry.DueKey(t0.Add(-time.Second)) >= expiry.DueKey(t0) || expiry.DueKey(t0)+"#C" >= expiry.DueKey(t0.Add(time.Second)) {
		t.Error("due keys do not sort by time, or a key with its suffix sorts after the next second")
	}
}

func TestPasswordStatus(t *testing.T) {
	p := expiry.Policy{ExpiringWindow: 7 * 24 * time.Hour}
	pe := t0.Add(30 * 24 * time.Hour)
	window := pe.Add(-7 * 24 * time.Hour)
	tests := []struct {
		now    time.Time
		want   connection.Status
		reason string
	}{
		{t0, connection.StatusActive, ""},
		{window.Add(-time.Second), connection.StatusActive, ""},
		{window, connection.StatusExpiring, expiry.ReasonPasswordExpiring},
		{pe.Add(-time.Nanosecond), connection.StatusExpiring, expiry.ReasonPasswordExpiring},
		{pe, connection.StatusExpired, expiry.ReasonPasswordExpired},
		{pe.Add(365 * 24 * time.Hour), connection.StatusExpired, expiry.ReasonPasswordExpired},
	}
	for _, tt := range tests {
		st, reason := p.PasswordStatus(pe, tt.now)
		if st != tt.want || reason != tt.reason {
			t.Errorf("at %s: %s %q, want %s %q", tt.now, st, reason, tt.want, tt.reason)
		}
	}
	// The window is the parameter's: 1 day instead of 7.
	if st, _ := (expiry.Policy{ExpiringWindow: 24 * time.Hour}).PasswordStatus(pe, pe.Add(-2*24*time.Hour)); st != connection.StatusActive {
		t.Errorf("a 1-day window flags a password 2 days out: %s", st)
	}
}

func TestTransitions(t *testing.T) {
	p := expiry.DefaultPolicy()
	pe := t0.Add(10 * 24 * time.Hour)
	inWindow, past := pe.Add(-24*time.Hour), pe.Add(time.Hour)
	tests := []struct {
		name      string
		cur       connection.Status
		curReason string
		pe, now   time.Time
		to        connection.Status
		reason    string
		ok        bool
	}{
		{"active, far from expiry: nothing", connection.StatusActive, "", pe, t0, "", "", false},
		{"active into the window: expiring", connection.StatusActive, "", pe, inWindow, connection.StatusExpiring, expiry.ReasonPasswordExpiring, true},
		{"active at the window's first second", connection.StatusActive, "", pe, pe.Add(-7 * 24 * time.Hour), connection.StatusExpiring, expiry.ReasonPasswordExpiring, true},
		{"active a second before the window", connection.StatusActive, "", pe, pe.Add(-7*24*time.Hour - time.Second), "", "", false},
		{"active past expiry (a late check): straight to expired", connection.StatusActive, "", pe, past, connection.StatusExpired, expiry.ReasonPasswordExpired, true},
		{"expiring stays expiring in the window", connection.StatusExpiring, expiry.ReasonPasswordExpiring, pe, inWindow, "", "", false},
		{"expiring at the expiry instant: expired", connection.StatusExpiring, expiry.ReasonPasswordExpiring, pe, pe, connection.StatusExpired, expiry.ReasonPasswordExpired, true},
		{"expiring a second before expiry: stays", connection.StatusExpiring, expiry.ReasonPasswordExpiring, pe, pe.Add(-time.Second), "", "", false},
		{"expired stays expired", connection.StatusExpired, expiry.ReasonPasswordExpired, pe, past, "", "", false},
		{"expiring whose expiry moved out: active", connection.StatusExpiring, expiry.ReasonPasswordExpiring, pe.Add(30 * 24 * time.Hour), inWindow, connection.StatusActive, expiry.ReasonPasswordRenewed, true},
		{"expired whose expiry moved into the window: expiring", connection.StatusExpired, expiry.ReasonPasswordExpired, pe, inWindow, connection.StatusExpiring, expiry.ReasonPasswordExpiring, true},
		{"expiring without an expiry any more: active", connection.StatusExpiring, expiry.ReasonPasswordExpiring, time.Time{}, inWindow, connection.StatusActive, expiry.ReasonPasswordRenewed, true},
		{"active without an expiry: nothing", connection.StatusActive, "", time.Time{}, inWindow, "", "", false},
		{"expired by the provider: not the check's", connection.StatusExpired, "invalid_grant", pe, t0, "", "", false},
		{"pending authorization: waits for a person", connection.StatusPendingAuthorization, "", pe, past, "", "", false},
		{"error: waits for a person", connection.StatusError, "", pe, past, "", "", false},
	}
	for _, tt := range tests {
		to, reason, ok := p.Transition(tt.cur, tt.curReason, tt.pe, tt.now)
		if to != tt.to || reason != tt.reason || ok != tt.ok {
			t.Errorf("%s: %s %q %v, want %s %q %v", tt.name, to, reason, ok, tt.to, tt.reason, tt.ok)
		}
	}
}

func TestDue(t *testing.T) {
	p := expiry.DefaultPolicy() // refresh 75 min ahead, keep alive 24 h, min age 15 min, window 7 d
	pe := t0.Add(30 * 24 * time.Hour)
	tests := []struct {
		name string
		f    expiry.Facts
		want time.Time // zero: nothing due
	}{
		{"password, active: the window's start", expiry.Facts{Status: connection.StatusActive, HasSecret: true, PasswordExpiresAt: pe}, pe.Add(-7 * 24 * time.Hour)},
		{"password, expiring: the expiry", expiry.Facts{Status: connection.StatusExpiring, HasSecret: true, PasswordExpiresAt: pe}, pe},
		{"password, expired: nothing", expiry.Facts{Status: connection.StatusExpired, HasSecret: true, PasswordExpiresAt: pe}, time.Time{}},
		{"no password expiry: nothing", expiry.Facts{Status: connection.StatusActive, HasSecret: true}, time.Time{}},
		{"OAuth, 8 h token: refresh ahead", expiry.Facts{OAuth: true, Status: connection.StatusActive, HasSecret: true, TokenExpiresAt: t0.Add(8 * time.Hour), TokensAt: t0}, t0.Add(8*time.Hour - 75*time.Minute)},
		{"OAuth, 90-day token: keep alive at 24 h", expiry.Facts{OAuth: true, Status: connection.StatusActive, HasSecret: true, TokenExpiresAt: t0.Add(90 * 24 * time.Hour), TokensAt: t0}, t0.Add(24 * time.Hour)},
		{"OAuth, 1 h token: not before the minimum age", expiry.Facts{OAuth: true, Status: connection.StatusActive, HasSecret: true, TokenExpiresAt: t0.Add(time.Hour), TokensAt: t0}, t0.Add(15 * time.Minute)},
		{"OAuth, unknown expiry: keep alive", expiry.Facts{OAuth: true, Status: connection.StatusActive, HasSecret: true, TokensAt: t0}, t0.Add(24 * time.Hour)},
		{"OAuth, tokens of unknown age: refresh ahead", expiry.Facts{OAuth: true, Status: connection.StatusActive, HasSecret: true, TokenExpiresAt: t0.Add(8 * time.Hour)}, t0.Add(8*time.Hour - 75*time.Minute)},
		{"OAuth, nothing known: now", expiry.Facts{OAuth: true, Status: connection.StatusActive, HasSecret: true}, time.Unix(0, 0).UTC()},
		{"OAuth, never authorized: nothing", expiry.Facts{OAuth: true, Status: connection.StatusActive}, time.Time{}},
		{"OAuth, pending: nothing", expiry.Facts{OAuth: true, Status: connection.StatusPendingAuthorization, HasSecret: true, TokensAt: t0}, time.Time{}},
		{"OAuth, expired: nothing", expiry.Facts{OAuth: true, Status: connection.StatusExpired, HasSecret: true, TokensAt: t0}, time.Time{}},
	}
	for _, tt := range tests {
		got, ok := p.Due(tt.f)
		if ok != !tt.want.IsZero() || !got.Equal(tt.want) {
			t.Errorf("%s: Due = %s %v, want %s", tt.name, got, ok, tt.want)
		}
	}
	if got := expiry.RunDue(t0.Add(240 * time.Hour)); !got.Equal(t0.Add(216 * time.Hour)) {
		t.Errorf("RunDue = %s", got)
	}
}

func TestPasswordExpiresAt(t *testing.T) {
	tests := []struct {
		v    any
		want time.Time
	}{
		{"2027-03-01T00:00:00Z", time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)},
		{"2027-03-01T02:00:00+02:00", time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)},
		{"tomorrow", time.Time{}},
		{float64(1e9), time.Time{}},
		{nil, time.Time{}},
	}
	for _, tt := range tests {
		got, ok := expiry.PasswordExpiresAt(map[string]any{"passwordExpiresAt": tt.v})
		if ok != !tt.want.IsZero() || !got.Equal(tt.want) {
			t.Errorf("%v: %s %v", tt.v, got, ok)
		}
	}
}
