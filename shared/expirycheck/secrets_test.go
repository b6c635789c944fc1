package expirycheck_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/connmgr/connmgr/local/oauthprovider"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/events"
	"github.com/connmgr/connmgr/shared/expiry"
	"github.com/connmgr/connmgr/shared/expirycheck"
	"github.com/connmgr/connmgr/shared/identity"
	"github.com/connmgr/connmgr/shared/oauth"
	"github.com/connmgr/connmgr/shared/resolver"
	"github.com/connmgr/connmgr/shared/secret"
)

const day = 24 * time.Hour

// connEvents lists the detail types published about connection id, in order.
func (w *world) connEvents(id string) []string {
	var out []string
	for _, e := range w.bus.of("") {
		if d, ok := e.Detail.(*events.ConnectionDetail); ok && d.ConnectionID == id {
			out = append(out, e.DetailType)
		}
	}
	return out
}

func (w *world) detail(detailType, id string) *events.ConnectionDetail {
	w.t.Helper()
	for _, e := range w.bus.of(detailType) {
		if d := e.Detail.(*events.ConnectionDetail); d.ConnectionID == id {
			return d
		}
	}
	w.t.Fatalf("no %s for %s", detailType, id)
	return nil
}

// TestRefreshTokenFixedExpiry: a provider whose refresh tokens all expire
// at the grant's first expiry (8 days; refresh_token_expires_in counting
// down). The connection becomes expiring when that expiry enters the
// 7-day window, stays expiring through refreshes that keep it, and becomes
// expired at it without asking the provider, each once; reconnecting
// makes it active again.
func TestRefreshTokenFixedExpiry(t *testing.T) {
	w := newWorld(t)
	w.withOAuth(oauthprovider.Options{ExpiresIn: day, RefreshExpiresIn: 8 * day, RefreshExpiryFixed: true})
	t0 := w.now()
	w.authorized("o1")
	rte := t0.Add(8 * day)
	if got := w.get("o1").Conn; !got.RefreshTokenExpiresAt.Equal(rte) || got.Status != connection.StatusActive {
		t.Fatalf("authorized: %+v", got)
	}
	c := w.check(nil, nil)
	w.env.Clock.Advance(time.Hour)
	if r := w.run(c); r.Checked != 0 {
		t.Fatalf("an hour on: %s", r)
	}
	// A day on (the window opened a minute ago; the keep-alive is due):
	// refreshed, and then expiring.
	w.env.Clock.Advance(t0.Add(day + time.Minute).Sub(w.now()))
	if r := w.run(c); r.Refreshed != 1 || r.Expiring != 1 || r.Failed != 0 {
		t.Fatalf("a day on: %s", r)
	}
	got := w.get("o1").Conn
	if got.Status != connection.StatusExpiring || got.StatusReason != expiry.ReasonRefreshTokenExpiring || got.SecretVersion != 2 || !got.RefreshTokenExpiresAt.Equal(rte) {
		t.Fatalf("after the window opened: %+v", got)
	}
	if r := w.run(c); r.Checked != 0 {
		t.Fatalf("again: %s", r)
	}
	// Another day: refreshed, the same expiry kept, still expiring, no event.
	w.env.Clock.Advance(day)
	if r := w.run(c); r.Refreshed != 1 || r.Expiring != 0 || r.Recovered != 0 {
		t.Fatalf("two days on: %s", r)
	}
	if got := w.get("o1").Conn; got.Status != connection.StatusExpiring || !got.RefreshTokenExpiresAt.Equal(rte) || got.SecretVersion != 3 {
		t.Fatalf("after a refresh that kept the expiry: %+v", got)
	}
	// Past the expiry (a check that caught up over days): expired, and the
	// provider is not asked.
	calls := w.idp.Calls("refresh_token")
	w.env.Clock.Advance(rte.Add(time.Minute).Sub(w.now()))
	if r := w.run(c); r.Expired != 1 || r.Refreshed != 0 || r.Failed != 0 {
		t.Fatalf("past the expiry: %s", r)
	}
	if n := w.idp.Calls("refresh_token") - calls; n != 0 {
		t.Errorf("%d refresh calls with an expired refresh token", n)
	}
	if r := w.run(c); r.Checked != 0 {
		t.Fatalf("once expired: %s", r)
	}
	got = w.get("o1").Conn
	if got.Status != connection.StatusExpired || got.StatusReason != expiry.ReasonRefreshTokenExpired {
		t.Fatalf("after the expiry: %+v", got)
	}
	if d := w.detail(events.ConnectionExpiring, "o1"); !d.ExpiresAt.Equal(rte) || d.Reason != expiry.ReasonRefreshTokenExpiring || d.Status != "expiring" {
		t.Errorf("Connection Expiring: %+v", d)
	}
	if d := w.detail(events.ConnectionExpired, "o1"); !d.ExpiresAt.Equal(rte) || d.Reason != expiry.ReasonRefreshTokenExpired {
		t.Errorf("Connection Expired: %+v", d)
	}
	want := []string{events.ConnectionUpdated, events.ConnectionExpiring, events.ConnectionExpired}
	if got := w.connEvents("o1"); !slices.Equal(got, want) {
		t.Fatalf("events: %v, want %v", got, want)
	}
	if got := w.audit("o1"); !slices.Equal(got, []connection.Action{connection.ActionCreated, connection.ActionAuthorized, expiry.ActionExpiring, connection.ActionExpired}) {
		t.Errorf("audit: %v", got)
	}
	// Reconnecting: a new grant, active again; its own expiry is 8 days out.
	w.reconnect("o1")
	if got := w.get("o1").Conn; got.Status != connection.StatusActive || !got.RefreshTokenExpiresAt.Equal(w.now().Add(8*day)) {
		t.Fatalf("after reconnecting: %+v", got)
	}
	want = append(want, events.ConnectionUpdated, events.ConnectionRecovered)
	if got := w.connEvents("o1"); !slices.Equal(got, want) {
		t.Fatalf("events after reconnecting: %v, want %v", got, want)
	}
	if d := w.detail(events.ConnectionRecovered, "o1"); d.Reason != expiry.ReasonAuthorized {
		t.Errorf("Connection Recovered: %+v", d)
	}
	w.validateAll()
}

// TestRefreshTokenExtended: a connection expiring for its refresh token
// becomes active again when a refresh returns one that expires beyond the
// window (Connection Recovered, reason refreshed, from the resolver); a
// refresh that returns no new refresh token keeps the expiry.
func TestRefreshTokenExtended(t *testing.T) {
	w := newWorld(t)
	w.withOAuth(oauthprovider.Options{ExpiresIn: day, RefreshExpiresIn: 6 * day})
	t0 := w.now()
	w.authorized("o1") // its refresh token expires inside the window already
	c := w.check(nil, nil)
	w.env.Clock.Advance(time.Hour)
	if r := w.run(c); r.Expiring != 1 || r.Refreshed != 0 {
		t.Fatalf("an hour on: %s", r)
	}
	// The provider now issues 30-day refresh tokens, rolling.
	w.idp.SetRefreshExpiresIn(30*day, false)
	w.env.Clock.Advance(t0.Add(23 * time.Hour).Sub(w.now()))
	if r := w.run(c); r.Refreshed != 1 || r.Expiring != 0 || r.Failed != 0 {
		t.Fatalf("at the refresh: %s", r)
	}
	got := w.get("o1").Conn
	if got.Status != connection.StatusActive || got.StatusReason != "" || !got.RefreshTokenExpiresAt.Equal(w.now().Add(30*day)) {
		t.Fatalf("after a refresh that extended the expiry: %+v", got)
	}
	d := w.detail(events.ConnectionRecovered, "o1")
	if d.Reason != expiry.ReasonRefreshed || d.Status != "active" || d.Version != got.Version {
		t.Errorf("Connection Recovered: %+v", d)
	}
	if a := w.audit("o1"); a[len(a)-1] != expiry.ActionRecovered {
		t.Errorf("audit: %v", a)
	}
	// A refresh without a new refresh token keeps the expiry it had.
	w.idp.OmitRefreshToken(true)
	rte := got.RefreshTokenExpiresAt
	w.env.Clock.Advance(day)
	if r := w.run(c); r.Refreshed != 1 || r.Expiring != 0 {
		t.Fatalf("a day later: %s", r)
	}
	if got := w.get("o1").Conn; !got.RefreshTokenExpiresAt.Equal(rte) || got.Status != connection.StatusActive || got.SecretVersion != 3 {
		t.Fatalf("after a refresh without a new refresh token: %+v", got)
	}
	want := []string{events.ConnectionUpdated, events.ConnectionExpiring, events.ConnectionRecovered}
	if got := w.connEvents("o1"); !slices.Equal(got, want) {
		t.Fatalf("events: %v, want %v", got, want)
	}
	w.validateAll()
}

// TestRefreshTokenOverlappingChecks: two checks, each with its own
// resolver, over connections whose refresh token entered the window and
// whose access token is due: one refresh, one transition and one event per
// connection.
func TestRefreshTokenOverlappingChecks(t *testing.T) {
	w := newWorld(t)
	w.withOAuth(oauthprovider.Options{ExpiresIn: 8 * time.Hour, RefreshExpiresIn: 6 * day, RefreshExpiryFixed: true})
	const n = 8
	for i := range n {
		w.authorized(fmt.Sprintf("o%d", i))
	}
	w.idp.SetDelay(20 * time.Millisecond)
	before := w.idp.Calls("refresh_token")
	w.env.Clock.Advance(7 * time.Hour)
	reports := w.overlappingChecks(t, 2)
	t.Logf("overlapping checks: %s | %s", reports[0], reports[1])
	if got := w.idp.Calls("refresh_token") - before; got != n {
		t.Errorf("%d refresh calls for %d connections", got, n)
	}
	if got := reports[0].Expiring + reports[1].Expiring; got != n {
		t.Errorf("%d transitions reported", got)
	}
	per := w.bus.perConnection(events.ConnectionExpiring)
	for i := range n {
		id := fmt.Sprintf("o%d", i)
		if per[id] != 1 {
			t.Errorf("%s: %d Connection Expiring events", id, per[id])
		}
		if got := w.get(id).Conn; got.Status != connection.StatusExpiring || got.SecretVersion != 2 {
			t.Errorf("%s: %+v", id, got)
		}
	}
	for range 2 {
		if r := w.run(w.check(nil, nil)); r.Refreshed != 0 || r.Expiring != 0 {
			t.Errorf("a later check: %s", r)
		}
	}
	w.validateAll()
}

// TestClientSecretNotices: a registered client secret's expiry is told to
// the tenant's administrators once when it enters the window and once when
// it passes, also by overlapping checks; an update that keeps the secret
// and its date tells nothing new; a new secret with a later date nothing
// until its own window; a new secret without a date clears a near one.
func TestClientSecretNotices(t *testing.T) {
	w := newWorld(t)
	t0 := w.now()
	reg := oauth.NewRegistry(w.env.Store, w.env.Sealer, oauth.RegistryOptions{Now: w.env.Clock.Now})
	const typ = "oauth2-client-credentials"
	put := func(tenant, sec string, exp time.Time, ifMatch int64) int64 {
		t.Helper()
		in := oauth.ClientInput{ClientID: "app-" + tenant, TokenURL: "https://idp.example.test/token"}
		if sec != "" {
			in.ClientSecret = secret.New(sec)
		}
		if !exp.IsZero() {
			s := exp.Format(time.RFC3339)
			in.ClientSecretExpiresAt = &s
		}
		v, err := reg.Put(w.ctx(), identity.Caller{Tenant: tenant, User: "root", TenantAdmin: true}, typ, in, ifMatch)
		if err != nil {
			t.Fatal(err)
		}
		return v.Version
	}
	version := func(tenant string) int64 {
		t.Helper()
		c, err := w.env.Store.GetOAuthClient(w.ctx(), tenant, typ)
		if err != nil {
			t.Fatal(err)
		}
		return c.Version
	}
	exp := t0.Add(10 * day)
	for _, tenant := range []string{"t1", "t2", "t3"} {
		put(tenant, "s1", exp, 0)
	}
	put("t4", "s1", time.Time{}, 0) // no date: never due
	c := w.check(nil, nil)
	if r := w.run(c); r.Checked != 0 {
		t.Fatalf("at registration: %s", r)
	}
	window := exp.Add(-7 * day)
	w.env.Clock.Advance(window.Add(-time.Second).Sub(w.now()))
	if r := w.run(c); r.Checked != 0 {
		t.Fatalf("a second before the window: %s", r)
	}
	w.env.Clock.Advance(time.Second)
	if r := w.run(c); r.ClientSecretsExpiring != 3 || r.Checked != 3 {
		t.Fatalf("at the window: %s", r)
	}
	if r := w.run(c); r.Checked != 0 {
		t.Fatalf("again: %s", r)
	}
	evs := w.bus.of(events.OAuthClientExpiring)
	if len(evs) != 3 {
		t.Fatalf("%d OAuth Client Expiring events", len(evs))
	}
	d := evs[0].Detail.(*events.OAuthClientDetail)
	if d.Type != typ || d.ClientID != "app-"+d.Tenant || !d.ExpiresAt.Equal(exp) || d.Reason != expiry.ReasonClientSecretExpiring || d.Status != "expiring" || !d.At.Equal(window) {
		t.Errorf("OAuth Client Expiring: %+v", d)
	}
	// t2's administrator changes something else: nothing new is told.
	put("t2", "", exp, version("t2"))
	w.env.Clock.Advance(time.Hour)
	if r := w.run(c); r.Checked != 0 {
		t.Fatalf("after an update that kept the secret and its date: %s", r)
	}
	// At the date, three overlapping checks tell each tenant once.
	w.env.Clock.Advance(exp.Sub(w.now()))
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := w.check(nil, nil).Run(w.ctx()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	perTenant := func(detailType string) map[string]int {
		out := map[string]int{}
		for _, e := range w.bus.of(detailType) {
			out[e.Detail.(*events.OAuthClientDetail).Tenant]++
		}
		return out
	}
	if got := perTenant(events.OAuthClientExpired); len(got) != 3 || got["t1"] != 1 || got["t2"] != 1 || got["t3"] != 1 {
		t.Fatalf("OAuth Client Expired per tenant: %v", got)
	}
	if got := perTenant(events.OAuthClientExpiring); got["t2"] != 1 {
		t.Fatalf("OAuth Client Expiring per tenant: %v", got)
	}
	// t1 registers a new secret expiring in 40 days: nothing until its
	// own window opens, then once.
	next := w.now().Add(40 * day)
	put("t1", "s2", next, version("t1"))
	w.env.Clock.Advance(time.Hour)
	if r := w.run(w.check(nil, nil)); r.Checked != 0 {
		t.Fatalf("after the new secret: %s", r)
	}
	w.env.Clock.Advance(next.Add(-7 * day).Sub(w.now()))
	if r := w.run(w.check(nil, nil)); r.ClientSecretsExpiring != 1 || r.ClientSecretsExpired != 0 {
		t.Fatalf("at the new secret's window: %s", r)
	}
	// ...and a secret replaced without a date takes the near one with it:
	// nothing more is told.
	put("t1", "s3", time.Time{}, version("t1"))
	w.env.Clock.Advance(8 * day)
	if r := w.run(w.check(nil, nil)); r.Checked != 0 {
		t.Fatalf("after the date of a replaced secret: %s", r)
	}
	if got := perTenant(events.OAuthClientExpiring); got["t1"] != 2 || got["t4"] != 0 {
		t.Errorf("OAuth Client Expiring per tenant: %v", got)
	}
	if got := perTenant(events.OAuthClientExpired); got["t1"] != 1 {
		t.Errorf("OAuth Client Expired per tenant: %v", got)
	}
	w.validateAll()
}

// TestRefreshRacesTheTransition: while the resolver refreshes a connection
// it read active, the check makes it expiring for its refresh token. The
// token write, conditioned on the status it was decided on, is decided
// again on the expiring connection: the new tokens are stored, and a new
// refresh token beyond the window makes it active with Connection
// Recovered; one that keeps the expiry leaves it expiring. Each event once.
func TestRefreshRacesTheTransition(t *testing.T) {
	for _, tt := range []struct {
		name   string
		rolled time.Duration // the refresh token lifetime the refresh returns, rolling; 0: fixed
		want   connection.Status
		events []string
	}{
		{"a later expiry recovers it", 30 * day, connection.StatusActive,
			[]string{events.ConnectionUpdated, events.ConnectionExpiring, events.ConnectionRecovered}},
		{"the same expiry leaves it expiring", 0, connection.StatusExpiring,
			[]string{events.ConnectionUpdated, events.ConnectionExpiring}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			w.withOAuth(oauthprovider.Options{ExpiresIn: day, RefreshExpiresIn: 6 * day, RefreshExpiryFixed: tt.rolled == 0})
			w.authorized("o1") // its refresh token expires inside the window: due for the check at once
			w.env.Clock.Advance(time.Hour)
			if tt.rolled != 0 {
				w.idp.SetRefreshExpiresIn(tt.rolled, false)
			}
			var once sync.Once
			var during expirycheck.Report
			w.idp.OnRefresh(func(string) {
				once.Do(func() { during = w.run(w.check(nil, noRefresh{t})) })
			})
			res, err := w.client.RefreshIfDue(w.ctx(), "t1", "o1", resolver.RefreshOptions{Within: 25 * time.Hour})
			if err != nil || !res.Refreshed {
				t.Fatalf("refresh: %+v %v", res, err)
			}
			if during.Expiring != 1 {
				t.Fatalf("the check during the refresh: %s", during)
			}
			got := w.get("o1").Conn
			if got.Status != tt.want || got.SecretVersion != 2 {
				t.Fatalf("after the race: %+v", got)
			}
			if ev := w.connEvents("o1"); !slices.Equal(ev, tt.events) {
				t.Fatalf("events: %v, want %v", ev, tt.events)
			}
			if r := w.run(w.check(nil, noRefresh{t})); r.Expiring+r.Expired+r.Recovered != 0 {
				t.Fatalf("a later check: %s", r)
			}
			w.validateAll()
		})
	}
}
