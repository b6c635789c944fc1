package oauth_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/expiry"
	"github.com/connmgr/connmgr/shared/oauth"
	"github.com/connmgr/connmgr/shared/secret"
	"github.com/connmgr/connmgr/shared/store"
)

// TestRefreshTokenExpiry: refresh_token_expires_in is read from the grant
// and from every refresh, stored beside the access token's expiry, extended
// by a provider that rolls its refresh tokens, and kept when a refresh
// brings no new refresh token or the same fixed expiry.
func TestRefreshTokenExpiry(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	p := f.provider(t, "oauth2-generic")
	day := 24 * time.Hour

	t0 := f.env.Clock.Now()
	ts := f.authorized(t, "none")
	if !ts.RefreshExpiresAt().IsZero() {
		t.Fatalf("a provider that says nothing: %s", ts.RefreshExpiresAt())
	}

	f.idp.SetRefreshExpiresIn(30*day, false) // rolling
	ts = f.authorized(t, "roll")
	if want := t0.Add(30 * day); !ts.RefreshExpiresAt().Equal(want) {
		t.Fatalf("from the grant: %s, want %s", ts.RefreshExpiresAt(), want)
	}
	rec, err := f.env.Store.Get(ctx, "t1", "roll")
	if err != nil || !rec.Conn.RefreshTokenExpiresAt.Equal(t0.Add(30*day)) {
		t.Fatalf("stored by the callback: %v %v", rec.Conn.RefreshTokenExpiresAt, err)
	}
	f.env.Clock.Advance(time.Hour)
	next, err := p.Refresh(ctx, ts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(time.Hour + 30*day); !next.RefreshExpiresAt().Equal(want) {
		t.Fatalf("a rolling refresh: %s, want %s", next.RefreshExpiresAt(), want)
	}
	pt, _ := next.Encode()
	if back, err := oauth.DecodeTokenSet(pt); err != nil || !back.RefreshExpiresAt().Equal(next.RefreshExpiresAt()) {
		t.Fatalf("sealed form: %v %v", back, err)
	}
	f.idp.OmitRefreshToken(true)
	f.env.Clock.Advance(time.Hour)
	kept, err := p.Refresh(ctx, next, nil)
	f.idp.OmitRefreshToken(false)
	if err != nil {
		t.Fatal(err)
	}
	if kept.RefreshToken() != next.RefreshToken() || !kept.RefreshExpiresAt().Equal(next.RefreshExpiresAt()) {
		t.Fatalf("no new refresh token: expiry %s, want the old %s", kept.RefreshExpiresAt(), next.RefreshExpiresAt())
	}

	f.idp.SetRefreshExpiresIn(8*day, true) // fixed at the grant's
	t1 := f.env.Clock.Now()
	ts = f.authorized(t, "fixed")
	f.env.Clock.Advance(5 * time.Hour)
	next, err = p.Refresh(ctx, ts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if next.RefreshToken() == ts.RefreshToken() || !next.RefreshExpiresAt().Equal(t1.Add(8*day)) {
		t.Fatalf("a fixed expiry: %s, want %s", next.RefreshExpiresAt(), t1.Add(8*day))
	}
	// The provider holds its refresh tokens to it.
	f.env.Clock.Advance(8 * day)
	if _, err := p.Refresh(ctx, next, nil); err == nil {
		t.Fatal("the provider honoured a refresh token past its expiry")
	}
}

// TestRefreshTokenExpiresIn: the forms refresh_token_expires_in arrives in,
// what is ignored, and what a refresh keeps.
func TestRefreshTokenExpiresIn(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	prevExp := now.Add(48 * time.Hour)
	var body, contentType string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		fmt.Fprint(w, body)
	}))
	defer srv.Close()
	typ, _ := connection.Lookup("oauth2-generic", "type")
	p, err := oauth.NewProvider(typ, &store.OAuthClient{ClientID: "c", AuthorizeURL: srv.URL + "/authorize", TokenURL: srv.URL + "/token"},
		[]byte("s"), oauth.ProviderOptions{HTTPClient: localHTTP, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	const jsonCT, formCT = "application/json", "application/x-www-form-urlencoded"
	tests := []struct {
		name        string
		contentType string
		body        string
		want        time.Time // zero: unknown
	}{
		{"a JSON number", jsonCT, `{"access_token":"a","refresh_token":"rt2","expires_in":3600,"refresh_token_expires_in":86400}`, now.Add(24 * time.Hour)},
		{"a JSON string", jsonCT, `{"access_token":"a","refresh_token":"rt2","refresh_token_expires_in":"86400"}`, now.Add(24 * time.Hour)},
		{"form-encoded", formCT, `access_token=a&refresh_token=rt2&refresh_token_expires_in=86400`, now.Add(24 * time.Hour)},
		{"a fraction of a second is dropped", jsonCT, `{"access_token":"a","refresh_token":"rt2","refresh_token_expires_in":60.9}`, now.Add(time.Minute)},
		{"a new refresh token without one: unknown", jsonCT, `{"access_token":"a","refresh_token":"rt2"}`, time.Time{}},
		{"zero is ignored", jsonCT, `{"access_token":"a","refresh_token":"rt2","refresh_token_expires_in":0}`, time.Time{}},
		{"negative is ignored", jsonCT, `{"access_token":"a","refresh_token":"rt2","refresh_token_expires_in":-5}`, time.Time{}},
		{"not a number is ignored", jsonCT, `{"access_token":"a","refresh_token":"rt2","refresh_token_expires_in":"soon"}`, time.Time{}},
		{"absurd is ignored", jsonCT, `{"access_token":"a","refresh_token":"rt2","refresh_token_expires_in":1e12}`, time.Time{}},
		{"no refresh token: the old one's expiry stays", jsonCT, `{"access_token":"a"}`, prevExp},
		{"the same refresh token again: its expiry stays", jsonCT, `{"access_token":"a","refresh_token":"rt1"}`, prevExp},
		{"no refresh token but a new expiry: the provider's word", jsonCT, `{"access_token":"a","refresh_token_expires_in":3600}`, now.Add(time.Hour)},
	}
	for _, tt := range tests {
		body, contentType = tt.body, tt.contentType
		prev := oauth.NewTokenSet("a0", "rt1", "Bearer", now, now.Add(-time.Hour)).WithRefreshExpiresAt(prevExp)
		next, err := p.Refresh(context.Background(), prev, nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if !next.RefreshExpiresAt().Equal(tt.want) {
			t.Errorf("%s: refresh token expires %s, want %s", tt.name, next.RefreshExpiresAt(), tt.want)
		}
	}
	// A grant without a refresh token has no refresh token expiry.
	body, contentType = `{"access_token":"a","refresh_token_expires_in":3600}`, jsonCT
	if ts, err := p.ClientCredentials(context.Background(), nil); err != nil || !ts.RefreshExpiresAt().IsZero() {
		t.Errorf("client credentials: %v %v", ts, err)
	}
}

// TestRegistrySecretExpiry: clientSecretExpiresAt is validated, shown, kept
// across updates, cleared by a new secret when it described the old one,
// and what was announced of it holds only while the secret and date do.
func TestRegistrySecretExpiry(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const typ = "oauth2-client-credentials"
	day := 24 * time.Hour
	now := f.env.Clock.Now()
	date := func(at time.Time) *string { s := at.UTC().Format(time.RFC3339); return &s }
	str := func(s string) *string { return &s }
	in := func(sec string, exp *string) oauth.ClientInput {
		i := oauth.ClientInput{ClientID: "crm-app", TokenURL: "https://idp.example.test/token", ClientSecretExpiresAt: exp}
		if sec != "" {
			i.ClientSecret = secret.New(sec)
		}
		return i
	}
	for _, bad := range []struct {
		name string
		exp  *string
		code string
	}{
		{"not a date", str("next spring"), "invalid_format"},
		{"a date without a zone", str("2030-01-01T00:00:00"), "invalid_format"},
		{"a date only", str("2030-01-01"), "invalid_format"},
		{"in the past", date(now.Add(-time.Hour)), "invalid_value"},
		{"now", date(now), "invalid_value"},
		// Placeholders are refused, never taken for "no expiry".
		{"the zero time", str("0001-01-01T00:00:00Z"), "out_of_range"},
		{"the Unix epoch", str("1970-01-01T00:00:00Z"), "out_of_range"},
		{"before 2000", str("1999-12-31T23:59:59Z"), "out_of_range"},
		{"after 9999 in UTC", str("9999-12-31T23:30:00-01:00"), "out_of_range"},
	} {
		_, err := f.registry.Put(ctx, f.admin, typ, in("s1", bad.exp), 0)
		if e := apperr.As(err); e.Kind != apperr.Invalid || e.Field != "clientSecretExpiresAt" || e.Code != bad.code {
			t.Errorf("%s: %v", bad.name, err)
		}
	}
	exp := now.Add(30 * day)
	v, err := f.registry.Put(ctx, f.admin, typ, in("s1", str(exp.In(time.FixedZone("X", 3600)).Format(time.RFC3339Nano))), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !v.ClientSecretExpiresAt.Equal(exp.Truncate(time.Second)) || v.ClientSecretExpiresAt.Location() != time.UTC {
		t.Fatalf("view: %v", v.ClientSecretExpiresAt)
	}
	get := func() *store.OAuthClient {
		t.Helper()
		reg, err := f.env.Store.GetOAuthClient(ctx, "t1", typ)
		if err != nil {
			t.Fatal(err)
		}
		return reg
	}
	// Absent keeps it; so does sending it back as read, even once past.
	if v, err = f.registry.Put(ctx, f.admin, typ, in("", nil), v.Version); err != nil || !v.ClientSecretExpiresAt.Equal(exp.Truncate(time.Second)) {
		t.Fatalf("an update without the date: %v %v", v, err)
	}
	// Pretend the check told the administrators it is expiring.
	reg := get()
	reg.SecretNotice, reg.Version = expiry.NoticeExpiring, reg.Version+1
	if err := f.env.Store.PutOAuthClient(ctx, reg, reg.Version-1); err != nil {
		t.Fatal(err)
	}
	f.env.Clock.Advance(31 * day) // the date has passed
	if v, err = f.registry.Put(ctx, f.admin, typ, in("", date(exp)), reg.Version); err != nil {
		t.Fatalf("the past date of an unchanged secret sent back: %v", err)
	}
	if got := get(); got.SecretNotice != expiry.NoticeExpiring {
		t.Fatalf("an unrelated update forgot the notice: %q", got.SecretNotice)
	}
	// A new secret may not take a past date...
	if _, err := f.registry.Put(ctx, f.admin, typ, in("s2", date(exp)), v.Version); apperr.As(err).Field != "clientSecretExpiresAt" {
		t.Fatalf("a new secret with a past date: %v", err)
	}
	// ...and without a date clears the old one, which described the secret replaced.
	if v, err = f.registry.Put(ctx, f.admin, typ, in("s2", nil), v.Version); err != nil || !v.ClientSecretExpiresAt.IsZero() {
		t.Fatalf("a new secret without a date: %v %v", v, err)
	}
	if got := get(); got.SecretNotice != expiry.NoticeNone || got.SecretVersion != 2 {
		t.Fatalf("the new secret inherited a notice: %+v", got)
	}
	// A date beyond the window stays with a new secret (the same lifetime policy).
	now = f.env.Clock.Now()
	far := now.Add(90 * day).Truncate(time.Second)
	if v, err = f.registry.Put(ctx, f.admin, typ, in("", date(far)), v.Version); err != nil {
		t.Fatal(err)
	}
	if v, err = f.registry.Put(ctx, f.admin, typ, in("s3", nil), v.Version); err != nil || !v.ClientSecretExpiresAt.Equal(far) {
		t.Fatalf("a new secret, the registered date beyond the window: %v %v", v, err)
	}
	// One inside the window goes.
	near := now.Add(3 * day).Truncate(time.Second)
	if v, err = f.registry.Put(ctx, f.admin, typ, in("", date(near)), v.Version); err != nil || !v.ClientSecretExpiresAt.Equal(near) {
		t.Fatalf("a near date: %v %v", v, err)
	}
	if v, err = f.registry.Put(ctx, f.admin, typ, in("s4", nil), v.Version); err != nil || !v.ClientSecretExpiresAt.IsZero() {
		t.Fatalf("a new secret, the registered date inside the window: %v %v", v, err)
	}
	// "" clears it outright.
	if v, err = f.registry.Put(ctx, f.admin, typ, in("", date(far)), v.Version); err != nil {
		t.Fatal(err)
	}
	if v, err = f.registry.Put(ctx, f.admin, typ, in("", str("")), v.Version); err != nil || !v.ClientSecretExpiresAt.IsZero() {
		t.Fatalf("cleared: %v %v", v, err)
	}
}
