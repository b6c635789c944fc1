package oauth_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connmgr/connmgr/local/oauthprovider"
	"github.com/connmgr/connmgr/local/stacktest"
	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/identity"
	"github.com/connmgr/connmgr/shared/oauth"
	"github.com/connmgr/connmgr/shared/secret"
	"github.com/connmgr/connmgr/shared/store"
	"github.com/connmgr/connmgr/shared/vault"
	"github.com/connmgr/connmgr/shared/vault/kmsvault"
)

const redirectURI = "https://connmgr.example.test/oauth/callback"

// localHTTP may reach the provider on loopback.
var localHTTP = oauth.NewHTTPClient(oauth.HTTPOptions{AllowPrivateNetworks: true})

type fixture struct {
	env      *stacktest.Env
	idp      *oauthprovider.Provider
	registry *oauth.Registry
	auth     *oauth.Authorizer
	callback *oauth.Callback
	opener   *kmsvault.Opener
	admin    identity.Caller
	alice    identity.Caller
	ids      atomic.Int64
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{env: stacktest.Start(t)}
	var err error
	f.idp, err = oauthprovider.Start(oauthprovider.Options{Now: f.env.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.idp.Close() })
	f.admin = identity.Caller{Tenant: "t1", User: "root", TenantAdmin: true}
	f.alice = identity.Caller{Tenant: "t1", User: "alice", OwnedSites: []string{"/sites/hr"}, Sites: []string{"/sites/hr"}}
	f.registry = oauth.NewRegistry(f.env.Store, f.env.Sealer, oauth.RegistryOptions{Now: f.env.Clock.Now, AllowLoopbackHTTP: true})
	if _, err := f.registry.Put(context.Background(), f.admin, "oauth2-generic", oauth.ClientInput{
		ClientID: f.idp.ClientID(), ClientSecret: secret.New(f.idp.ClientSecret()), AuthorizeURL: f.idp.AuthorizeURL(), TokenURL: f.idp.TokenURL(),
		Scopes: []string{"openid", "offline_access"},
	}, 0); err != nil {
		t.Fatal(err)
	}
	f.auth, err = oauth.NewAuthorizer(oauth.AuthorizerConfig{Store: f.env.Store, Sealer: f.env.Sealer, RedirectURI: redirectURI, Now: f.env.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	f.opener = f.env.Opener(kmsvault.NewKeyCache(0, 0, 0, f.env.Clock.Now))
	f.callback = f.newCallback(t, redirectURI)
	return f
}

func (f *fixture) newCallback(t *testing.T, redirect string) *oauth.Callback {
	t.Helper()
	cb, err := oauth.NewCallback(oauth.CallbackConfig{Store: f.env.Store, Opener: f.opener, Sealer: f.env.Sealer,
		RedirectURI: redirect, Now: f.env.Clock.Now, HTTPClient: localHTTP, NewID: func() string { return fmt.Sprintf("01ZAUDIT%06d", f.ids.Add(1)) }})
	if err != nil {
		t.Fatal(err)
	}
	return cb
}

// newConnection stores a pending oauth2-generic connection owned by alice.
func (f *fixture) newConnection(t *testing.T, id string) *connection.Connection {
	t.Helper()
	now := f.env.Clock.Now()
	r := &store.Record{Conn: connection.Connection{
		Tenant: "t1", ID: id, Type: "oauth2-generic", Name: "crm " + id, Kind: connection.Shared,
		Availability: connection.Availability{Scope: connection.ScopeSite, Site: "/sites/hr"}, Owners: []string{"alice"}, CreatedBy: "alice",
		CreatedAt: now, UpdatedAt: now, Version: 1, Status: connection.StatusPendingAuthorization, Settings: map[string]any{},
	}}
	if err := f.env.Store.Create(context.Background(), r, connection.AuditEntry{ID: "01CREATE" + id, At: now, Actor: "alice", Action: connection.ActionCreated, Version: 1}, nil); err != nil {
		t.Fatal(err)
	}
	return &r.Conn
}

// begin starts an authorization and lets the provider approve it; it
// returns the state and code of the redirect.
func (f *fixture) begin(t *testing.T, id string) (authorizeURL, state, code string) {
	t.Helper()
	a, err := f.auth.Begin(context.Background(), f.alice, id)
	if err != nil {
		t.Fatal(err)
	}
	state, code = f.approve(t, a.URL)
	return a.URL, state, code
}

func (f *fixture) approve(t *testing.T, authorizeURL string) (state, code string) {
	t.Helper()
	back, err := f.idp.Authorize(context.Background(), authorizeURL)
	if err != nil {
		t.Fatal(err)
	}
	return back.Query().Get("state"), back.Query().Get("code")
}

// unchanged asserts that nothing was stored on the connection.
func (f *fixture) unchanged(t *testing.T, want *connection.Connection) {
	t.Helper()
	r, err := f.env.Store.Get(context.Background(), want.Tenant, want.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Conn.SecretVersion != want.SecretVersion || r.Conn.Version != want.Version || r.Conn.Status != want.Status {
		t.Fatalf("connection changed: secret v%d version %d %s; want secret v%d version %d %s",
			r.Conn.SecretVersion, r.Conn.Version, r.Conn.Status, want.SecretVersion, want.Version, want.Status)
	}
}

func TestAuthorizationCodeFlow(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	conn := f.newConnection(t, "c1")
	a, err := f.auth.Begin(ctx, f.alice, "c1")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(a.URL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	state := q.Get("state")
	raw, err := base64.RawURLEncoding.DecodeString(state)
	if err != nil || len(raw)*8 < 128 {
		t.Fatalf("state %q: %d bits, %v", state, len(raw)*8, err)
	}
	for k, want := range map[string]string{"response_type": "code", "client_id": f.idp.ClientID(), "redirect_uri": redirectURI,
		"code_challenge_method": "S256", "scope": "openid offline_access"} {
		if q.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, q.Get(k), want)
		}
	}
	if !a.ExpiresAt.Equal(f.env.Clock.Now().Add(10 * time.Minute)) {
		t.Errorf("state expires %v", a.ExpiresAt)
	}
	t.Logf("authorize URL: %d-bit state, S256 challenge, exact redirect URI", len(raw)*8)

	// The challenge is S256 of the sealed verifier.
	stateCopy := state
	st, err := f.env.Store.ConsumeOAuthState(ctx, stateCopy)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := f.opener.Open(ctx, vault.Binding{Tenant: "t1", Subject: store.OAuthStateSubject(store.OAuthStateID(state)), Version: 1}, st.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(verifier)
	if base64.RawURLEncoding.EncodeToString(sum[:]) != q.Get("code_challenge") {
		t.Fatal("code_challenge is not S256 of the stored verifier")
	}
	if strings.Contains(string(st.Verifier.Ciphertext), string(verifier)) {
		t.Fatal("verifier stored in the clear")
	}

	// The full flow on a second authorization.
	_, state, code := f.begin(t, "c1")
	done, err := f.callback.Complete(ctx, oauth.CallbackInput{State: state, Code: code, RedirectURI: redirectURI})
	if err != nil {
		t.Fatal(err)
	}
	if done.Conn.Status != connection.StatusActive || done.Conn.SecretVersion != 1 || done.Conn.Version != 2 || done.User != "alice" {
		t.Fatalf("after callback: %+v", done.Conn)
	}
	if !done.Conn.TokenExpiresAt.Equal(f.env.Clock.Now().Add(time.Hour)) {
		t.Errorf("token expiry %v", done.Conn.TokenExpiresAt)
	}
	r, _ := f.env.Store.Get(ctx, "t1", "c1")
	pt, err := f.opener.Open(ctx, r.Conn.Binding(1), r.Secret)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := oauth.DecodeTokenSet(pt)
	if err != nil || !f.idp.ValidAccessToken(ts.AccessToken()) || ts.RefreshToken() == "" {
		t.Fatalf("stored tokens: %v %v", ts, err)
	}
	entries, _, _ := f.env.Store.Audit(ctx, "t1", "c1", "", 10)
	if len(entries) != 2 || entries[0].Action != connection.ActionAuthorized || entries[0].Actor != "alice" || entries[0].Version != 2 {
		t.Fatalf("audit %+v", entries)
	}
	if n := f.idp.Calls("authorization_code"); n != 1 {
		t.Fatalf("%d code exchanges, want 1", n)
	}
	_ = conn
}

// Property 12: every malformed or replayed callback is refused and nothing
// is stored.
func TestCallbackRejections(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	reject := func(t *testing.T, conn *connection.Connection, in oauth.CallbackInput, code string, tokenCalls int) {
		t.Helper()
		before := f.idp.Calls("authorization_code")
		_, err := f.callback.Complete(ctx, in)
		if err == nil {
			t.Fatal("accepted")
		}
		if e := apperr.As(err); e.Code != code || e.Kind.Status() != 400 {
			t.Fatalf("got %s (%d), want %s (400): %v", e.Code, e.Kind.Status(), code, err)
		}
		if n := f.idp.Calls("authorization_code") - before; n != tokenCalls {
			t.Fatalf("%d token calls, want %d", n, tokenCalls)
		}
		if conn != nil {
			f.unchanged(t, conn)
		}
	}

	t.Run("missing state", func(t *testing.T) {
		conn := f.newConnection(t, "missing")
		_, _, code := f.begin(t, "missing")
		reject(t, conn, oauth.CallbackInput{Code: code}, "state_missing", 0)
	})
	t.Run("unknown state", func(t *testing.T) {
		conn := f.newConnection(t, "unknown")
		_, state, code := f.begin(t, "unknown")
		reject(t, conn, oauth.CallbackInput{State: state + "x", Code: code}, "state_invalid", 0)
	})
	t.Run("reused state", func(t *testing.T) {
		conn := f.newConnection(t, "reused")
		_, state, code := f.begin(t, "reused")
		done, err := f.callback.Complete(ctx, oauth.CallbackInput{State: state, Code: code})
		if err != nil {
			t.Fatal(err)
		}
		reject(t, done.Conn, oauth.CallbackInput{State: state, Code: code}, "state_invalid", 0)
		_ = conn
	})
	t.Run("expired state", func(t *testing.T) {
		conn := f.newConnection(t, "expired")
		_, state, code := f.begin(t, "expired")
		f.env.Clock.Advance(10*time.Minute + time.Second)
		reject(t, conn, oauth.CallbackInput{State: state, Code: code}, "state_expired", 0)
	})
	t.Run("wrong PKCE verifier", func(t *testing.T) {
		// A code obtained for one authorization (verifier A) injected into
		// another (verifier B): the provider refuses the exchange.
		conn := f.newConnection(t, "pkce")
		_, _, codeA := f.begin(t, "pkce")
		_, stateB, _ := f.begin(t, "pkce")
		reject(t, conn, oauth.CallbackInput{State: stateB, Code: codeA}, "authorization_failed", 1)
	})
	t.Run("reused code", func(t *testing.T) {
		conn := f.newConnection(t, "code")
		_, state1, code1 := f.begin(t, "code")
		done, err := f.callback.Complete(ctx, oauth.CallbackInput{State: state1, Code: code1})
		if err != nil {
			t.Fatal(err)
		}
		// The same code again, under a fresh state of the same user.
		a2, err := f.auth.Begin(ctx, f.alice, "code")
		if err != nil {
			t.Fatal(err)
		}
		state2 := mustQuery(t, a2.URL, "state")
		reject(t, done.Conn, oauth.CallbackInput{State: state2, Code: code1}, "authorization_failed", 1)
		_ = conn
	})
	t.Run("redirect URI off by one character at the callback", func(t *testing.T) {
		conn := f.newConnection(t, "redir1")
		_, state, code := f.begin(t, "redir1")
		reject(t, conn, oauth.CallbackInput{State: state, Code: code, RedirectURI: redirectURI + "/"}, "redirect_uri_mismatch", 0)
	})
	t.Run("redirect URI off by one character at the provider", func(t *testing.T) {
		// The authorize URL's redirect_uri altered by one character: the
		// code is issued for the altered URI, our exchange sends the exact
		// one, the provider refuses.
		conn := f.newConnection(t, "redir2")
		a, err := f.auth.Begin(ctx, f.alice, "redir2")
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(a.URL)
		q := u.Query()
		q.Set("redirect_uri", strings.TrimSuffix(redirectURI, "k")+"K")
		u.RawQuery = q.Encode()
		state, code := f.approve(t, u.String())
		reject(t, conn, oauth.CallbackInput{State: state, Code: code}, "authorization_failed", 1)
	})
	t.Run("redirect URI off by one character in the callback's configuration", func(t *testing.T) {
		conn := f.newConnection(t, "redir3")
		_, state, code := f.begin(t, "redir3")
		cb := f.newCallback(t, redirectURI+"s")
		_, err := cb.Complete(ctx, oauth.CallbackInput{State: state, Code: code})
		if !errors.Is(err, oauth.ErrRedirectMismatch) {
			t.Fatalf("got %v", err)
		}
		f.unchanged(t, conn)
	})
	t.Run("access denied by the user", func(t *testing.T) {
		conn := f.newConnection(t, "denied")
		_, state, _ := f.begin(t, "denied")
		reject(t, conn, oauth.CallbackInput{State: state, Error: "access_denied"}, "authorization_failed", 0)
		// and the state is gone
		reject(t, conn, oauth.CallbackInput{State: state, Code: "whatever"}, "state_invalid", 0)
	})
	t.Run("missing code", func(t *testing.T) {
		conn := f.newConnection(t, "nocode")
		_, state, _ := f.begin(t, "nocode")
		reject(t, conn, oauth.CallbackInput{State: state}, "code_missing", 0)
	})
	t.Run("10 concurrent callbacks with one state", func(t *testing.T) {
		f.newConnection(t, "race")
		_, state, code := f.begin(t, "race")
		before := f.idp.Calls("authorization_code")
		var ok, refused atomic.Int32
		var wg sync.WaitGroup
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := f.callback.Complete(ctx, oauth.CallbackInput{State: state, Code: code})
				if err == nil {
					ok.Add(1)
				} else if errors.Is(err, store.ErrStateUnknown) {
					refused.Add(1)
				} else {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		calls := f.idp.Calls("authorization_code") - before
		if ok.Load() != 1 || refused.Load() != 9 || calls != 1 {
			t.Fatalf("%d accepted, %d refused, %d token calls; want 1, 9, 1", ok.Load(), refused.Load(), calls)
		}
		t.Logf("10 concurrent callbacks with one state → %d accepted, %d refused, %d code exchange", ok.Load(), refused.Load(), calls)
	})
}

func TestBeginPermissions(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.newConnection(t, "c1")
	// A member of the site may see but not authorize the shared connection.
	carol := identity.Caller{Tenant: "t1", User: "carol", Sites: []string{"/sites/hr"}}
	if _, err := f.auth.Begin(ctx, carol, "c1"); !apperr.Is(err, apperr.Forbidden) {
		t.Fatalf("member: %v", err)
	}
	// Another tenant: not found.
	mallory := identity.Caller{Tenant: "t2", User: "alice", TenantAdmin: true}
	if _, err := f.auth.Begin(ctx, mallory, "c1"); !apperr.Is(err, apperr.NotFound) {
		t.Fatalf("other tenant: %v", err)
	}
	// No registration for the type: a clear error.
	now := f.env.Clock.Now()
	r := &store.Record{Conn: connection.Connection{Tenant: "t1", ID: "ms", Type: "microsoft-graph", Name: "graph", Kind: connection.Personal,
		Availability: connection.Availability{Scope: connection.ScopePersonal}, Owners: []string{"alice"}, CreatedBy: "alice",
		CreatedAt: now, UpdatedAt: now, Version: 1, Status: connection.StatusPendingAuthorization, Settings: map[string]any{}}}
	if err := f.env.Store.Create(ctx, r, connection.AuditEntry{ID: "01X", At: now, Actor: "alice", Action: connection.ActionCreated, Version: 1}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.auth.Begin(ctx, f.alice, "ms"); !errors.Is(err, oauth.ErrNotConfigured) {
		t.Fatalf("unregistered type: %v", err)
	}
	if err := f.auth.Ready(ctx, "t1", "microsoft-graph"); !errors.Is(err, oauth.ErrNotConfigured) {
		t.Fatalf("Ready for an unregistered type: %v", err)
	}
	if err := f.auth.Ready(ctx, "t1", "oauth2-generic"); err != nil {
		t.Fatalf("Ready for a registered type: %v", err)
	}
	if err := f.auth.Ready(ctx, "t2", "oauth2-generic"); !errors.Is(err, oauth.ErrNotConfigured) {
		t.Fatalf("Ready for another tenant: %v", err)
	}
	// A personal connection is authorized by its creator only.
	if _, err := f.auth.Begin(ctx, f.admin, "ms"); !apperr.Is(err, apperr.Forbidden) {
		t.Fatalf("admin on a personal connection: %v", err)
	}
}

func mustQuery(t *testing.T, raw, key string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get(key)
}
