package resolver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connmgr/connmgr/local/logbuf"
	"github.com/connmgr/connmgr/local/oauthprovider"
	"github.com/connmgr/connmgr/local/stacktest"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/identity"
	"github.com/connmgr/connmgr/shared/oauth"
	"github.com/connmgr/connmgr/shared/resolver"
	"github.com/connmgr/connmgr/shared/secret"
	"github.com/connmgr/connmgr/shared/store"
	"github.com/connmgr/connmgr/shared/vault/kmsvault"
)

const redirectURI = "https://connmgr.example.test/oauth/callback"

// localHTTP may reach the provider on loopback.
var localHTTP = oauth.NewHTTPClient(oauth.HTTPOptions{AllowPrivateNetworks: true})

type fixture struct {
	env  *stacktest.Env
	idp  *oauthprovider.Provider
	auth *oauth.Authorizer
	cb   *oauth.Callback
	logs *logbuf.Buffer
	ids  atomic.Int64
	// res is the default instance.
	res   *resolver.Resolver
	alice identity.Caller
}

func newFixture(t testing.TB) *fixture { return newFixtureWith(t, oauthprovider.Options{}) }

// newFixtureWith starts the stack and a provider with opts (its clock is
// the stack's).
func newFixtureWith(t testing.TB, opts oauthprovider.Options) *fixture {
	t.Helper()
	f := &fixture{env: stacktest.Start(t), logs: &logbuf.Buffer{}}
	var err error
	opts.Now = f.env.Clock.Now
	f.idp, err = oauthprovider.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.idp.Close() })
	ctx := context.Background()
	admin := identity.Caller{Tenant: "t1", User: "root", TenantAdmin: true}
	f.alice = identity.Caller{Tenant: "t1", User: "alice", OwnedSites: []string{"/sites/hr"}, Sites: []string{"/sites/hr"}}
	reg := oauth.NewRegistry(f.env.Store, f.env.Sealer, oauth.RegistryOptions{Now: f.env.Clock.Now, AllowLoopbackHTTP: true})
	for _, typ := range []string{"oauth2-generic", "oauth2-client-credentials"} {
		if _, err := reg.Put(ctx, admin, typ, oauth.ClientInput{ClientID: f.idp.ClientID(), ClientSecret: secret.New(f.idp.ClientSecret()),
			AuthorizeURL: f.idp.AuthorizeURL(), TokenURL: f.idp.TokenURL(), Scopes: []string{"openid", "offline_access"}}, 0); err != nil {
			t.Fatal(err)
		}
	}
	if f.auth, err = oauth.NewAuthorizer(oauth.AuthorizerConfig{Store: f.env.Store, Sealer: f.env.Sealer, RedirectURI: redirectURI, Now: f.env.Clock.Now}); err != nil {
		t.Fatal(err)
	}
	if f.cb, err = oauth.NewCallback(oauth.CallbackConfig{Store: f.env.Store, Opener: f.env.Opener(nil), Sealer: f.env.Sealer,
		RedirectURI: redirectURI, Now: f.env.Clock.Now, NewID: f.newID, HTTPClient: localHTTP}); err != nil {
		t.Fatal(err)
	}
	f.res = f.instance(t, nil)
	return f
}

func (f *fixture) newID() string { return fmt.Sprintf("01ZZ%010d", f.ids.Add(1)) }

// instance is another resolver (another Lambda instance): its own key
// cache, the same table, KMS, provider and clock.
func (f *fixture) instance(t testing.TB, adjust func(*resolver.Config)) *resolver.Resolver {
	t.Helper()
	cfg := resolver.Config{
		Store: f.env.Store, Opener: f.env.Opener(kmsvault.NewKeyCache(0, 0, 0, f.env.Clock.Now)), Sealer: f.env.Sealer,
		Now: f.env.Clock.Now, NewID: f.newID, HTTPClient: localHTTP,
		Log: slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if adjust != nil {
		adjust(&cfg)
	}
	r, err := resolver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (f *fixture) input(id string) resolver.Input {
	return resolver.Input{Tenant: "t1", ConnectionID: id, RunID: "run-1", StepID: "step-1", WorkflowID: "wf-1", Site: "/sites/hr", RunOwner: "alice"}
}

// create stores a connection; creds (if any) sealed as the manager seals them.
func (f *fixture) create(t testing.TB, c connection.Connection, creds map[string]string) *store.Record {
	t.Helper()
	now := f.env.Clock.Now()
	c.Tenant, c.CreatedAt, c.UpdatedAt, c.Version = "t1", now, now, 1
	if c.Owners == nil {
		c.Owners = []string{"alice"}
	}
	if c.CreatedBy == "" {
		c.CreatedBy = c.Owners[0]
	}
	if c.Kind == "" {
		c.Kind = connection.Shared
	}
	if c.Availability.Scope == "" {
		c.Availability = connection.Availability{Scope: connection.ScopeSite, Site: "/sites/hr"}
	}
	if c.Status == "" {
		c.Status = connection.StatusActive
	}
	if c.Settings == nil {
		c.Settings = map[string]any{}
	}
	r := &store.Record{Conn: c}
	if len(creds) > 0 {
		pt, _ := json.Marshal(creds)
		r.Conn.SecretVersion = 1
		for k := range creds {
			r.Conn.SecretFields = append(r.Conn.SecretFields, k)
		}
		var err error
		if r.Secret, err = f.env.Sealer.Seal(context.Background(), r.Conn.Binding(1), pt); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.env.Store.Create(context.Background(), r, connection.AuditEntry{ID: "01A" + c.ID, At: now, Actor: c.CreatedBy, Action: connection.ActionCreated, Version: 1}, nil); err != nil {
		t.Fatal(err)
	}
	return r
}

// authorized creates an oauth2-generic connection and runs the real
// authorization code flow against the provider.
func (f *fixture) authorized(t testing.TB, id string) {
	t.Helper()
	ctx := context.Background()
	f.create(t, connection.Connection{ID: id, Type: "oauth2-generic", Name: id, Status: connection.StatusPendingAuthorization,
		Settings: map[string]any{"baseUrl": "https://crm.example.test"}}, nil)
	a, err := f.auth.Begin(ctx, f.alice, id)
	if err != nil {
		t.Fatal(err)
	}
	back, err := f.idp.Authorize(ctx, a.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.cb.Complete(ctx, oauth.CallbackInput{State: back.Query().Get("state"), Code: back.Query().Get("code")}); err != nil {
		t.Fatal(err)
	}
}

// stored opens the connection's current token set.
func (f *fixture) stored(t testing.TB, id string) (*store.Record, *oauth.TokenSet) {
	t.Helper()
	ctx := context.Background()
	r, err := f.env.Store.Get(ctx, "t1", id)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := f.env.Opener(nil).Open(ctx, r.Conn.Binding(r.Conn.SecretVersion), r.Secret)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := oauth.DecodeTokenSet(pt)
	if err != nil {
		t.Fatal(err)
	}
	return r, ts
}

// waitFor polls cond for up to 5 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func failure(t testing.TB, err error) *resolver.Failure {
	t.Helper()
	if err == nil {
		t.Fatal("resolved, want a failure")
	}
	f, ok := err.(*resolver.Failure)
	if !ok {
		t.Fatalf("error %T %v is not a *resolver.Failure", err, err)
	}
	return f
}
