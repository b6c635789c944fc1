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

func TestDueRefreshToken(t *testing.T) {
	p := expiry.DefaultPolicy() // refresh 75 min ahead, keep alive 24 h, min age 15 min, window 7 d
	day := 24 * time.Hour
	oauth := func(status connection.Status, tokenLife, rtLife time.Duration) expiry.Facts {
		f := expiry.Facts{OAuth: true, Status: status, HasSecret: true, TokenExpiresAt: t0.Add(tokenLife), TokensAt: t0}
		if rtLife != 0 {
			f.RefreshTokenExpiresAt = t0.Add(rtLife)
		}
		return f
	}
	tests := []struct {
		name string
		f    expiry.Facts
		want time.Time // zero: nothing due
	}{
		{"no refresh token expiry: the refresh alone", oauth(connection.StatusActive, 8*time.Hour, 0), t0.Add(8*time.Hour - 75*time.Minute)},
		{"active, refresh token far off: the refresh", oauth(connection.StatusActive, 8*time.Hour, 90*day), t0.Add(8*time.Hour - 75*time.Minute)},
		{"active: the window's start when it comes first", oauth(connection.StatusActive, 90*day, 7*day+2*time.Hour), t0.Add(2 * time.Hour)},
		{"active, window opened before the tokens: at once (no minimum age)", oauth(connection.StatusActive, 8*time.Hour, 3*day), t0.Add(-4 * day)},
		{"active, window opens a second after the refresh: the refresh", oauth(connection.StatusActive, 8*time.Hour, 7*day+8*time.Hour-75*time.Minute+time.Second), t0.Add(8*time.Hour - 75*time.Minute)},
		{"expiring: the refresh before the expiry", oauth(connection.StatusExpiring, 8*time.Hour, 3*day), t0.Add(8*time.Hour - 75*time.Minute)},
		{"expiring: the expiry before the refresh, not held back by the minimum age", oauth(connection.StatusExpiring, 8*time.Hour, 10*time.Minute), t0.Add(10 * time.Minute)},
		{"expired: nothing", oauth(connection.StatusExpired, 8*time.Hour, 3*day), time.Time{}},
		{"pending: nothing", oauth(connection.StatusPendingAuthorization, 8*time.Hour, 3*day), time.Time{}},
		{"a password connection ignores a refresh token expiry", expiry.Facts{Status: connection.StatusActive, HasSecret: true, RefreshTokenExpiresAt: t0.Add(day)}, time.Time{}},
	}
	for _, tt := range tests {
		got, ok := p.Due(tt.f)
		if ok != !tt.want.IsZero() || !got.Equal(tt.want) {
			t.Errorf("%s: Due = %s %v, want %s", tt.name, got, ok, tt.want)
		}
	}
	// RefreshDue is the refresh part alone.
	if got := p.RefreshDue(oauth(connection.StatusActive, 8*time.Hour, 3*day)); !got.Equal(t0.Add(8*time.Hour - 75*time.Minute)) {
		t.Errorf("RefreshDue = %s", got)
	}
	// FactsOf reads the refresh token's expiry of OAuth connections only.
	c := &connection.Connection{Type: "oauth2-generic", Status: connection.StatusActive, SecretVersion: 1, RefreshTokenExpiresAt: t0}
	if f := expiry.FactsOf(c, t0); !f.OAuth || !f.RefreshTokenExpiresAt.Equal(t0) {
		t.Errorf("FactsOf an OAuth connection: %+v", f)
	}
	c.Type = "http-basic"
	if f := expiry.FactsOf(c, t0); !f.RefreshTokenExpiresAt.IsZero() {
		t.Errorf("FactsOf a password connection: %+v", f)
	}
}

func TestRefreshTokenTransitions(t *testing.T) {
	p := expiry.DefaultPolicy()
	rte := t0.Add(10 * 24 * time.Hour)
	window := rte.Add(-7 * 24 * time.Hour)
	const (
		expiringR = expiry.ReasonRefreshTokenExpiring
		expiredR  = expiry.ReasonRefreshTokenExpired
	)
	tests := []struct {
		name      string
		cur       connection.Status
		curReason string
		rte, now  time.Time
		to        connection.Status
		reason    string
		ok        bool
	}{
		{"active, far from expiry: nothing", connection.StatusActive, "", rte, t0, "", "", false},
		{"active a second before the window: nothing", connection.StatusActive, "", rte, window.Add(-time.Second), "", "", false},
		{"active at the window's first second: expiring", connection.StatusActive, "", rte, window, connection.StatusExpiring, expiringR, true},
		{"active past the expiry (a late check): straight to expired", connection.StatusActive, "", rte, rte, connection.StatusExpired, expiredR, true},
		{"expiring a second before the expiry: stays", connection.StatusExpiring, expiringR, rte, rte.Add(-time.Second), "", "", false},
		{"expiring at the expiry instant: expired", connection.StatusExpiring, expiringR, rte, rte, connection.StatusExpired, expiredR, true},
		{"expired stays expired", connection.StatusExpired, expiredR, rte, rte.Add(time.Hour), "", "", false},
		{"expiring whose refresh token now expires later: active", connection.StatusExpiring, expiringR, rte.Add(30 * 24 * time.Hour), window, connection.StatusActive, expiry.ReasonRefreshed, true},
		{"expired whose refresh token now expires in the window: expiring", connection.StatusExpired, expiredR, rte, window, connection.StatusExpiring, expiringR, true},
		{"expiring whose refresh token expiry is no longer known: active", connection.StatusExpiring, expiringR, time.Time{}, window, connection.StatusActive, expiry.ReasonRefreshed, true},
		{"active without a refresh token expiry: nothing", connection.StatusActive, "", time.Time{}, rte, "", "", false},
		{"expired by the provider: not the check's", connection.StatusExpired, "invalid_grant", rte.Add(30 * 24 * time.Hour), t0, "", "", false},
		{"expired for a password: not this rule's", connection.StatusExpired, expiry.ReasonPasswordExpired, time.Time{}, t0, "", "", false},
		{"pending authorization: waits for a person", connection.StatusPendingAuthorization, "", rte, rte, "", "", false},
		{"error: waits for a person", connection.StatusError, "", rte, rte, "", "", false},
	}
	for _, tt := range tests {
		to, reason, ok := p.RefreshTokenTransition(tt.cur, tt.curReason, tt.rte, tt.now)
		if to != tt.to || reason != tt.reason || ok != tt.ok {
			t.Errorf("%s: %s %q %v, want %s %q %v", tt.name, to, reason, ok, tt.to, tt.reason, tt.ok)
		}
	}
	// The window is the parameter's.
	if st, _ := (expiry.Policy{ExpiringWindow: 24 * time.Hour}).RefreshTokenStatus(rte, rte.Add(-2*24*time.Hour)); st != connection.StatusActive {
		t.Errorf("a 1-day window flags a refresh token 2 days out: %s", st)
	}
}

func TestAfterRefresh(t *testing.T) {
	p := expiry.DefaultPolicy()
	now := t0
	inWindow, beyond := now.Add(3*24*time.Hour), now.Add(7*24*time.Hour+time.Second)
	tests := []struct {
		name      string
		cur       connection.Status
		curReason string
		rte       time.Time
		to        connection.Status
		reason    string
		recovered bool
	}{
		{"active stays active, even in the window (the check moves it, with its event)", connection.StatusActive, "", inWindow, connection.StatusActive, "", false},
		{"active, unknown expiry", connection.StatusActive, "", time.Time{}, connection.StatusActive, "", false},
		{"expiring, the same or another expiry in the window: stays", connection.StatusExpiring, expiry.ReasonRefreshTokenExpiring, inWindow, connection.StatusExpiring, expiry.ReasonRefreshTokenExpiring, false},
		{"expiring, the expiry kept though passed: stays (the check expires it)", connection.StatusExpiring, expiry.ReasonRefreshTokenExpiring, now.Add(-time.Second), connection.StatusExpiring, expiry.ReasonRefreshTokenExpiring, false},
		{"expiring, a new expiry a second beyond the window: recovered", connection.StatusExpiring, expiry.ReasonRefreshTokenExpiring, beyond, connection.StatusActive, "", true},
		{"expiring, exactly at the window's edge: stays", connection.StatusExpiring, expiry.ReasonRefreshTokenExpiring, now.Add(7 * 24 * time.Hour), connection.StatusExpiring, expiry.ReasonRefreshTokenExpiring, false},
		{"expiring, a new refresh token without an expiry: recovered", connection.StatusExpiring, expiry.ReasonRefreshTokenExpiring, time.Time{}, connection.StatusActive, "", true},
		{"expired by the check while the refresh ran: recovered", connection.StatusExpired, expiry.ReasonRefreshTokenExpired, beyond, connection.StatusActive, "", true},
		{"expired by the provider while the refresh ran: recovered (the new tokens work)", connection.StatusExpired, "invalid_grant", inWindow, connection.StatusActive, "", true},
	}
	for _, tt := range tests {
		to, reason, rec := p.AfterRefresh(tt.cur, tt.curReason, tt.rte, now)
		if to != tt.to || reason != tt.reason || rec != tt.recovered {
			t.Errorf("%s: %s %q %v, want %s %q %v", tt.name, to, reason, rec, tt.to, tt.reason, tt.recovered)
		}
	}
}

func TestClientSecretNotices(t *testing.T) {
	p := expiry.DefaultPolicy()
	exp := t0.Add(30 * 24 * time.Hour)
	window := exp.Add(-7 * 24 * time.Hour)
	dues := []struct {
		sent expiry.Notice
		exp  time.Time
		want time.Time // zero: nothing due
	}{
		{expiry.NoticeNone, exp, window},
		{expiry.NoticeExpiring, exp, exp},
		{expiry.NoticeExpired, exp, time.Time{}},
		{expiry.NoticeNone, time.Time{}, time.Time{}},
	}
	for _, d := range dues {
		got, ok := p.ClientSecretDue(d.exp, d.sent)
		if ok != !d.want.IsZero() || !got.Equal(d.want) {
			t.Errorf("ClientSecretDue(%s, %q) = %s %v, want %s", d.exp, d.sent, got, ok, d.want)
		}
	}
	tests := []struct {
		name   string
		sent   expiry.Notice
		exp    time.Time
		now    time.Time
		want   expiry.Notice
		reason string
	}{
		{"before the window: nothing", expiry.NoticeNone, exp, window.Add(-time.Second), expiry.NoticeNone, ""},
		{"the window's first second: expiring", expiry.NoticeNone, exp, window, expiry.NoticeExpiring, expiry.ReasonClientSecretExpiring},
		{"expiring sent, a second before the date: nothing", expiry.NoticeExpiring, exp, exp.Add(-time.Second), expiry.NoticeNone, ""},
		{"expiring sent, at the date: expired", expiry.NoticeExpiring, exp, exp, expiry.NoticeExpired, expiry.ReasonClientSecretExpired},
		{"nothing sent, a late check past the date: expired only", expiry.NoticeNone, exp, exp.Add(time.Hour), expiry.NoticeExpired, expiry.ReasonClientSecretExpired},
		{"expired sent: nothing more", expiry.NoticeExpired, exp, exp.Add(365 * 24 * time.Hour), expiry.NoticeNone, ""},
		{"no date: nothing", expiry.NoticeNone, time.Time{}, exp, expiry.NoticeNone, ""},
	}
	for _, tt := range tests {
		n, reason, ok := p.ClientSecretNotice(tt.exp, tt.sent, tt.now)
		if n != tt.want || reason != tt.reason || ok != (tt.want != expiry.NoticeNone) {
			t.Errorf("%s: %q %q %v, want %q %q", tt.name, n, reason, ok, tt.want, tt.reason)
		}
	}
	// Seen from the window's first second: exp itself is inside the
	// window, a second later is not; a past date is not current either.
	for _, c := range []struct {
		exp  time.Time
		want bool
	}{{time.Time{}, true}, {exp.Add(time.Second), true}, {exp, false}, {exp.Add(-time.Hour), false}, {window.Add(-time.Hour), false}} {
		if got := p.ClientSecretCurrent(c.exp, window); got != c.want {
			t.Errorf("ClientSecretCurrent(%s) at %s = %v, want %v", c.exp, window, got, c.want)
		}
	}
}
