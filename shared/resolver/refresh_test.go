package resolver_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connmgr/connmgr/local/oauthprovider"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/oauth"
	"github.com/connmgr/connmgr/shared/resolver"
	"github.com/connmgr/connmgr/shared/store"
)

// resolveAll runs n resolutions of id at once, spread over instances, and
// returns the access tokens handed out.
func resolveAll(t *testing.T, f *fixture, instances []*resolver.Resolver, n int, id string) []string {
	t.Helper()
	tokens := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cred, err := instances[i%len(instances)].Resolve(context.Background(), f.input(id))
			if err != nil {
				t.Errorf("resolution %d: %v", i, err)
				return
			}
			tokens[i] = cred.AccessToken()
		}()
	}
	wg.Wait()
	return tokens
}

// Property 1.
func TestRefresh_50ConcurrentResolutionsOfAnExpiredToken_1TokenCall(t *testing.T) {
	f := newFixture(t)
	f.authorized(t, "c1")
	_, before := f.stored(t, "c1")
	f.env.Clock.Advance(time.Hour) // the access token has expired
	f.idp.SetDelay(150 * time.Millisecond)
	instances := []*resolver.Resolver{f.instance(t, nil), f.instance(t, nil), f.instance(t, nil), f.instance(t, nil), f.instance(t, nil)}

	tokens := resolveAll(t, f, instances, 50, "c1")

	rec, after := f.stored(t, "c1")
	calls := f.idp.Calls("refresh_token")
	same := 0
	for _, tok := range tokens {
		if tok == after.AccessToken() {
			same++
		}
	}
	uses := f.idp.RefreshUses()
	t.Logf("50 concurrent resolutions over 5 instances of an expired token → %d token endpoint call(s); %d/50 got the new token; refresh token uses %v; replays %d",
		calls, same, values(uses), f.idp.Replays())
	if calls != 1 {
		t.Fatalf("%d refresh_token grants, want 1", calls)
	}
	if same != 50 || !f.idp.ValidAccessToken(after.AccessToken()) {
		t.Fatalf("%d of 50 resolutions got the stored new token", same)
	}
	if uses[before.RefreshToken()] != 1 || f.idp.Replays() != 0 || len(uses) != 1 {
		t.Fatalf("refresh token uses %v, replays %d", uses, f.idp.Replays())
	}
	if rec.Conn.SecretVersion != 2 || rec.Conn.Status != connection.StatusActive || after.RefreshToken() == before.RefreshToken() {
		t.Fatalf("stored: secret v%d %s", rec.Conn.SecretVersion, rec.Conn.Status)
	}
	if _, _, held, _ := f.env.Store.Lease(context.Background(), "t1", "c1"); held {
		t.Fatal("lease not released")
	}
	// The next refresh uses the rotated token, once.
	f.env.Clock.Advance(time.Hour)
	resolveAll(t, f, instances, 10, "c1")
	uses = f.idp.RefreshUses()
	if f.idp.Calls("refresh_token") != 2 || uses[after.RefreshToken()] != 1 || f.idp.Replays() != 0 {
		t.Fatalf("second round: %d calls, uses %v", f.idp.Calls("refresh_token"), values(uses))
	}
}

func values(m map[string]int) []int {
	var out []int
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// Property 2.
func TestRefresh_DeadRefresherLeaseExpires_1Takeover(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.authorized(t, "c1")
	f.env.Clock.Advance(time.Hour)
	// A refresher takes the lease and dies before calling the provider.
	if ok, err := f.env.Store.AcquireLease(ctx, "t1", "c1", "dead-instance", resolver.DefaultLeaseTTL); !ok || err != nil {
		t.Fatalf("lease: %v %v", ok, err)
	}
	instances := []*resolver.Resolver{f.instance(t, nil), f.instance(t, nil)}

	// While the dead lease lasts, a caller waits (bounded) and gives up, retryable.
	impatient := f.instance(t, func(c *resolver.Config) { c.MaxWait = 100 * time.Millisecond })
	_, err := impatient.Resolve(ctx, f.input("c1"))
	if fl := failure(t, err); fl.Code != resolver.CodeRefreshInProgress || !fl.Retryable || fl.AuthFailure {
		t.Fatalf("while the dead lease lasts: %+v", fl)
	}

	f.env.Reset()
	done := make(chan []string)
	go func() { done <- resolveAll(t, f, instances, 10, "c1") }()
	// Every caller has tried the lease and is waiting.
	waitFor(t, "10 lease attempts", func() bool { return f.env.DDB.Count("PutItem") >= 10 })
	if n := f.idp.Calls("refresh_token"); n != 0 {
		t.Fatalf("%d token calls while the lease was held", n)
	}
	f.env.Clock.Advance(resolver.DefaultLeaseTTL + time.Second) // the dead lease runs out
	tokens := <-done

	_, after := f.stored(t, "c1")
	owner, _, held, _ := f.env.Store.Lease(ctx, "t1", "c1")
	t.Logf("dead refresher's lease expired → %d takeover(s) (token calls); 10/10 callers got the new token: %v; lease left: %v %s",
		f.idp.Calls("refresh_token"), allEqual(tokens, after.AccessToken()), held, owner)
	if f.idp.Calls("refresh_token") != 1 {
		t.Fatalf("%d token calls, want exactly 1 takeover", f.idp.Calls("refresh_token"))
	}
	if !allEqual(tokens, after.AccessToken()) {
		t.Fatal("not every caller got the new token")
	}
	if released, _ := f.env.Store.ReleaseLease(ctx, "t1", "c1", "dead-instance"); released {
		t.Fatal("the dead instance could still release a lease")
	}
}

func allEqual(tokens []string, want string) bool {
	for _, t := range tokens {
		if t != want {
			return false
		}
	}
	return len(tokens) > 0
}

// Property 3.
func TestRefresh_InvalidGrantAfterAnotherProcessRotated_NoFalseReauth(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.authorized(t, "c1")
	f.env.Clock.Advance(time.Hour)
	// While our refresh request is on its way, another process (here: one
	// that did not respect the lease, or a reconnect) uses the same refresh
	// token and stores the result. The provider then refuses ours.
	var once sync.Once
	var rotated string
	f.idp.OnRefresh(func(rt string) {
		once.Do(func() {
			at, nrt, life, err := f.idp.RotateOutOfBand(rt)
			if err != nil {
				t.Error(err)
				return
			}
			rec, _ := f.stored(t, "c1")
			now := f.env.Clock.Now()
			ts := oauth.NewTokenSet(at, nrt, "Bearer", now.Add(life), now)
			pt, _ := ts.Encode()
			sealed, err := f.env.Sealer.Seal(ctx, rec.Conn.Binding(rec.Conn.SecretVersion+1), pt)
			if err != nil {
				t.Error(err)
				return
			}
			if err := f.env.Store.PutTokens(ctx, store.TokenWrite{Tenant: "t1", ID: "c1", FromSecretVersion: rec.Conn.SecretVersion,
				Secret: sealed, TokenEndpoint: rec.Conn.TokenEndpoint, SecretFields: ts.SecretFields(), TokenExpiresAt: ts.ExpiresAt()}); err != nil {
				t.Error(err)
			}
			rotated = at
		})
	})
	cred, err := f.res.Resolve(ctx, f.input("c1"))
	if err != nil {
		t.Fatalf("resolution failed: %v", err)
	}
	rec, _ := f.stored(t, "c1")
	entries, _, _ := f.env.Store.Audit(ctx, "t1", "c1", "", 10)
	t.Logf("invalid_grant after another process rotated → status %s, caller got the rotated token: %v, provider said invalid_grant %d time(s)",
		rec.Conn.Status, cred.AccessToken() == rotated, f.idp.Replays())
	if cred.AccessToken() != rotated || f.idp.Replays() != 1 {
		t.Fatalf("got another token than the rotated one (replays %d)", f.idp.Replays())
	}
	if rec.Conn.Status != connection.StatusActive || rec.Conn.StatusReason != "" {
		t.Fatalf("false re-auth: status %s %s", rec.Conn.Status, rec.Conn.StatusReason)
	}
	for _, e := range entries {
		if e.Action == connection.ActionExpired {
			t.Fatal("an expiry was audited")
		}
	}
}

// The counterpart: invalid_grant for the token still stored marks the
// connection expired, once, and later calls do not go to the provider.
func TestRefresh_InvalidGrantForTheStoredToken_MarksExpired(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.authorized(t, "c1")
	f.env.Clock.Advance(time.Hour)
	f.idp.Fail(oauthprovider.Failure{Grant: "refresh_token", Status: 400, Code: "invalid_grant"})
	f.idp.SetDelay(100 * time.Millisecond)
	var notified []string
	var mu sync.Mutex
	r := f.instance(t, func(c *resolver.Config) {
		c.OnExpired = func(_ context.Context, tenant, id, reason string) {
			mu.Lock()
			defer mu.Unlock()
			notified = append(notified, tenant+"/"+id+"/"+reason)
		}
	})

	var wg sync.WaitGroup
	var rejected, expired atomic.Int32
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := r.Resolve(ctx, f.input("c1"))
			switch fl := failure(t, err); fl.Code {
			case resolver.CodeRefreshRejected:
				rejected.Add(1)
			case resolver.CodeExpired:
				expired.Add(1)
			default:
				t.Errorf("got %+v", fl)
			}
			if fl := failure(t, err); !fl.AuthFailure || fl.Retryable || fl.ProviderCode != "invalid_grant" {
				t.Errorf("flags %+v", fl)
			}
		}()
	}
	wg.Wait()
	rec, _ := f.env.Store.Get(ctx, "t1", "c1")
	entries, _, _ := f.env.Store.Audit(ctx, "t1", "c1", "", 10)
	t.Logf("10 concurrent resolutions, provider says invalid_grant → %d token call, %d refresh_rejected, %d credentials_expired, status %s (%s)",
		f.idp.Calls("refresh_token"), rejected.Load(), expired.Load(), rec.Conn.Status, rec.Conn.StatusReason)
	if f.idp.Calls("refresh_token") != 1 || rejected.Load() != 1 || expired.Load() != 9 {
		t.Fatal("want 1 call, 1 refresh_rejected and 9 credentials_expired")
	}
	if len(notified) != 1 || notified[0] != "t1/c1/invalid_grant" {
		t.Fatalf("OnExpired calls: %v", notified)
	}
	if rec.Conn.Status != connection.StatusExpired || rec.Conn.StatusReason != "invalid_grant" || entries[0].Action != connection.ActionExpired ||
		entries[0].Details["reason"] != "invalid_grant" {
		t.Fatalf("stored %s %s, audit %+v", rec.Conn.Status, rec.Conn.StatusReason, entries[0])
	}
	// Reconnecting fixes it.
	a, err := f.auth.Begin(ctx, f.alice, "c1")
	if err != nil {
		t.Fatal(err)
	}
	back, _ := f.idp.Authorize(ctx, a.URL)
	if _, err := f.cb.Complete(ctx, oauth.CallbackInput{State: back.Query().Get("state"), Code: back.Query().Get("code")}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.res.Resolve(ctx, f.input("c1")); err != nil {
		t.Fatalf("after reconnect: %v", err)
	}
}

func TestRefresh_TransientProviderError(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.authorized(t, "c1")
	f.env.Clock.Advance(time.Hour)
	for _, fail := range []oauthprovider.Failure{
		{Grant: "refresh_token", Status: 503, Code: "temporarily_unavailable"},
		{Grant: "refresh_token", Status: 502},
		{Grant: "refresh_token", Status: 429},
	} {
		f.idp.Fail(fail)
		_, err := f.res.Resolve(ctx, f.input("c1"))
		fl := failure(t, err)
		if fl.AuthFailure || !fl.Retryable || (fl.Code != resolver.CodeUnavailable && fl.Code != resolver.CodeThrottled) {
			t.Fatalf("%d %s: %+v", fail.Status, fail.Code, fl)
		}
		rec, _ := f.env.Store.Get(ctx, "t1", "c1")
		if rec.Conn.Status != connection.StatusActive {
			t.Fatalf("a transient error changed the status to %s", rec.Conn.Status)
		}
	}
	// The lease was released: the next call refreshes at once.
	if _, err := f.res.Resolve(ctx, f.input("c1")); err != nil {
		t.Fatal(err)
	}
	if f.idp.Calls("refresh_token") != 4 {
		t.Fatalf("%d calls", f.idp.Calls("refresh_token"))
	}
}

func TestClientCredentialsConnection(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.create(t, connection.Connection{ID: "svc", Type: "oauth2-client-credentials", Name: "svc",
		Settings: map[string]any{"baseUrl": "https://svc.example.test", "scopes": []any{"api"}}}, nil)
	instances := []*resolver.Resolver{f.instance(t, nil), f.instance(t, nil)}
	tokens := resolveAll(t, f, instances, 20, "svc")
	rec, ts := f.stored(t, "svc")
	if f.idp.Calls("client_credentials") != 1 || !allEqual(tokens, ts.AccessToken()) || rec.Conn.SecretVersion != 1 || ts.RefreshToken() != "" {
		t.Fatalf("%d grants, secret v%d", f.idp.Calls("client_credentials"), rec.Conn.SecretVersion)
	}
	t.Logf("20 concurrent first resolutions of a client credentials connection → %d grant", f.idp.Calls("client_credentials"))
	f.env.Clock.Advance(time.Hour - 30*time.Second) // within the 60 s skew
	cred, err := f.res.Resolve(ctx, f.input("svc"))
	if err != nil || f.idp.Calls("client_credentials") != 2 || cred.AccessToken() == ts.AccessToken() {
		t.Fatalf("renewal: %v, %d grants", err, f.idp.Calls("client_credentials"))
	}
	// A deleted registration is an authentication failure, not a crash.
	f.env.Clock.Advance(time.Hour)
	reg, _ := f.env.Store.GetOAuthClient(ctx, "t1", "oauth2-client-credentials")
	if err := f.env.Store.DeleteOAuthClient(ctx, "t1", "oauth2-client-credentials", reg.Version); err != nil {
		t.Fatal(err)
	}
	_, err = f.res.Resolve(ctx, f.input("svc"))
	if fl := failure(t, err); fl.Code != resolver.CodeOAuthClientMissing || !fl.AuthFailure || fl.ConnectionID != "svc" {
		t.Fatalf("got %+v", fl)
	}
}

func TestRefreshIfDue(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.authorized(t, "c1")
	f.env.Reset()
	// Far from expiry: one GetItem, no KMS, no provider.
	got, err := f.res.RefreshIfDue(ctx, "t1", "c1", 10*time.Minute)
	if err != nil || got.Refreshed || f.env.KMS.Count("") != 0 || f.env.DDB.Count("") != 1 || f.idp.Calls("") != 1 {
		t.Fatalf("not due: %+v %v, %d KMS, %d DynamoDB", got, err, f.env.KMS.Count(""), f.env.DDB.Count(""))
	}
	// Within the window: refreshed once, even with resolutions racing it.
	f.env.Clock.Advance(55 * time.Minute)
	var wg sync.WaitGroup
	var refreshed atomic.Int32
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				r, err := f.res.RefreshIfDue(ctx, "t1", "c1", 10*time.Minute)
				if err != nil {
					t.Error(err)
				}
				if r.Refreshed {
					refreshed.Add(1)
				}
			} else if _, err := f.res.Resolve(ctx, f.input("c1")); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := f.idp.Calls("refresh_token"); n != 1 {
		t.Fatalf("%d refresh calls, want 1", n)
	}
	rec, ts := f.stored(t, "c1")
	if !rec.Conn.TokenExpiresAt.Equal(f.env.Clock.Now().Add(time.Hour)) || !ts.ExpiresAt().Equal(rec.Conn.TokenExpiresAt) {
		t.Fatalf("expiry %v / %v", rec.Conn.TokenExpiresAt, ts.ExpiresAt())
	}
	t.Logf("5 proactive checks racing 5 resolutions → 1 token call (refreshed reported by %d check)", refreshed.Load())
	// Non-OAuth and expired connections are left alone.
	f.create(t, connection.Connection{ID: "b", Type: "http-basic", Name: "b", Settings: map[string]any{"baseUrl": "https://x"}}, map[string]string{"username": "u", "password": "p"})
	if r, err := f.res.RefreshIfDue(ctx, "t1", "b", time.Hour); err != nil || r.Refreshed {
		t.Fatalf("basic: %+v %v", r, err)
	}
	if _, err := f.res.RefreshIfDue(ctx, "t1", "nope", time.Hour); failure(t, err).Code != resolver.CodeNotFound {
		t.Fatalf("missing: %v", err)
	}
	_ = fmt.Sprint()
}
