package expirycheck_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/connmgr/connmgr/local/oauthprovider"
	"github.com/connmgr/connmgr/local/stacktest"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/events"
	"github.com/connmgr/connmgr/shared/events/schemas"
	"github.com/connmgr/connmgr/shared/expiry"
	"github.com/connmgr/connmgr/shared/expirycheck"
	"github.com/connmgr/connmgr/shared/identity"
	"github.com/connmgr/connmgr/shared/oauth"
	"github.com/connmgr/connmgr/shared/outbox"
	"github.com/connmgr/connmgr/shared/resolver"
	"github.com/connmgr/connmgr/shared/resolver/resolveclient"
	"github.com/connmgr/connmgr/shared/secret"
	"github.com/connmgr/connmgr/shared/store"
	"github.com/connmgr/connmgr/shared/vault/kmsvault"
)

// bus is the event bus: it keeps what was published, or refuses all.
type bus struct {
	mu   sync.Mutex
	evs  []events.Event
	down bool
}

func (b *bus) Publish(_ context.Context, evs []events.Event) ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down {
		var ids []string
		for _, e := range evs {
			ids = append(ids, e.ID())
		}
		return ids, errors.New("bus down")
	}
	b.evs = append(b.evs, evs...)
	return nil, nil
}

func (b *bus) setDown(down bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.down = down
}

// of lists the published events of a detail type ("" = all).
func (b *bus) of(detailType string) []events.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []events.Event
	for _, e := range b.evs {
		if detailType == "" || e.DetailType == detailType {
			out = append(out, e)
		}
	}
	return out
}

// perConnection counts the published events of a detail type by connection.
func (b *bus) perConnection(detailType string) map[string]int {
	out := map[string]int{}
	for _, e := range b.of(detailType) {
		if d, ok := e.Detail.(*events.ConnectionDetail); ok {
			out[d.ConnectionID]++
		}
	}
	return out
}

// world is the stack, the bus and, for OAuth tests, a provider and the
// resolve function, invoked in-process through resolveclient.Client.
type world struct {
	t      *testing.T
	env    *stacktest.Env
	bus    *bus
	relay  *outbox.Relay
	log    *slog.Logger
	ids    atomic.Int64
	idp    *oauthprovider.Provider
	auth   *oauth.Authorizer
	cb     *oauth.Callback
	client *resolveclient.Client
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, env: stacktest.Start(t), bus: &bus{}, log: slog.New(slog.NewJSONHandler(io.Discard, nil))}
	w.relay = outbox.New(w.env.Store, w.bus, w.log)
	return w
}

// newID is sortable like the ULIDs production uses.
func (w *world) newID() string { return fmt.Sprintf("01ZZ%012d", w.ids.Add(1)) }

func (w *world) ctx() context.Context { return context.Background() }

func (w *world) now() time.Time { return w.env.Clock.Now() }

// check builds a check over st (nil: the world's store) with refresher
// (nil: the world's resolver client, or one that must not be called).
func (w *world) check(st expirycheck.Store, refresher expirycheck.Refresher) *expirycheck.Check {
	w.t.Helper()
	if st == nil {
		st = w.env.Store
	}
	if refresher == nil {
		if w.client != nil {
			refresher = w.client
		} else {
			refresher = noRefresh{w.t}
		}
	}
	c, err := expirycheck.New(expirycheck.Config{
		Store: st, Refresher: refresher, Events: w.relay,
		Outbox: outbox.New(expirycheck.Settled(w.env.Store, expirycheck.DefaultGrace, w.env.Clock.Now), w.bus, w.log),
		Now:    w.env.Clock.Now, NewID: w.newID, Log: w.log, FirstLookback: 72 * time.Hour,
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

func (w *world) run(c *expirycheck.Check) expirycheck.Report {
	w.t.Helper()
	r, err := c.Run(w.ctx())
	if err != nil {
		w.t.Fatalf("check: %v (%s)", err, r)
	}
	return r
}

type noRefresh struct{ t *testing.T }

func (n noRefresh) RefreshIfDue(context.Context, string, string, resolver.RefreshOptions) (resolver.Refreshed, error) {
	n.t.Error("the check asked for a refresh of a connection that is not OAuth")
	return resolver.Refreshed{}, nil
}

// record is a connection as the connections service creates it.
func (w *world) record(id, typ string, settings map[string]any) *store.Record {
	now := w.now()
	if settings == nil {
		settings = map[string]any{"baseUrl": "https://api.example.com"}
	}
	return &store.Record{Conn: connection.Connection{
		Tenant: "t1", ID: id, Type: typ, Name: "conn " + id, Kind: connection.Shared,
		Availability: connection.Availability{Scope: connection.ScopeTenant}, Owners: []string{"alice"}, CreatedBy: "alice",
		CreatedAt: now, UpdatedAt: now, Version: 1, Status: connection.StatusActive, Settings: settings, SecretVersion: 1,
	}}
}

// password creates an http-basic connection whose password expires at pe.
func (w *world) password(id string, pe time.Time) {
	w.t.Helper()
	r := w.record(id, "http-basic", map[string]any{"baseUrl": "https://api.example.com", "passwordExpiresAt": pe.Format(time.RFC3339)})
	if err := w.env.Store.Create(w.ctx(), r, connection.AuditEntry{ID: w.newID(), At: w.now(), Actor: "alice", Action: connection.ActionCreated, Version: 1}, nil); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) get(id string) *store.Record {
	w.t.Helper()
	r, err := w.env.Store.Get(w.ctx(), "t1", id)
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

// withOAuth starts a provider, registers it as t1's client and serves the
// resolve function through resolveclient.Client.
func (w *world) withOAuth(opts oauthprovider.Options) {
	w.t.Helper()
	opts.Now = w.env.Clock.Now
	var err error
	if w.idp, err = oauthprovider.Start(opts); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { w.idp.Close() })
	admin := identity.Caller{Tenant: "t1", User: "root", TenantAdmin: true}
	reg := oauth.NewRegistry(w.env.Store, w.env.Sealer, oauth.RegistryOptions{Now: w.env.Clock.Now, AllowLoopbackHTTP: true})
	if _, err := reg.Put(w.ctx(), admin, "oauth2-generic", oauth.ClientInput{ClientID: w.idp.ClientID(), ClientSecret: secret.New(w.idp.ClientSecret()),
		AuthorizeURL: w.idp.AuthorizeURL(), TokenURL: w.idp.TokenURL(), Scopes: []string{"openid", "offline_access"}}, 0); err != nil {
		w.t.Fatal(err)
	}
	const redirect = "https://connmgr.example.test/oauth/callback"
	httpc := oauth.NewHTTPClient(oauth.HTTPOptions{AllowPrivateNetworks: true})
	if w.auth, err = oauth.NewAuthorizer(oauth.AuthorizerConfig{Store: w.env.Store, Sealer: w.env.Sealer, RedirectURI: redirect, Now: w.env.Clock.Now}); err != nil {
		w.t.Fatal(err)
	}
	if w.cb, err = oauth.NewCallback(oauth.CallbackConfig{Store: w.env.Store, Opener: w.env.Opener(nil), Sealer: w.env.Sealer,
		RedirectURI: redirect, Now: w.env.Clock.Now, NewID: w.newID, HTTPClient: httpc}); err != nil {
		w.t.Fatal(err)
	}
	w.client = resolveclient.NewClient(w.resolveFunction(), "ResolveFunction")
}

// resolveFunction is one instance of the resolve function.
func (w *world) resolveFunction() lambdaFunc {
	w.t.Helper()
	res, err := resolver.New(resolver.Config{Store: w.env.Store, Opener: w.env.Opener(kmsvault.NewKeyCache(0, 0, 0, w.env.Clock.Now)), Sealer: w.env.Sealer,
		HTTPClient: oauth.NewHTTPClient(oauth.HTTPOptions{AllowPrivateNetworks: true}), Now: w.env.Clock.Now, NewID: w.newID, Log: w.log,
		Events: w.relay, LastUsedInterval: -1})
	if err != nil {
		w.t.Fatal(err)
	}
	return lambdaFunc{h: &resolver.Handler{Resolver: res, Callback: w.cb}}
}

// lambdaFunc invokes a resolve function in-process, as Lambda Invoke does.
type lambdaFunc struct{ h *resolver.Handler }

func (f lambdaFunc) Invoke(ctx context.Context, in *lambda.InvokeInput, _ ...func(*lambda.Options)) (*lambda.InvokeOutput, error) {
	out, err := f.h.Handle(ctx, in.Payload)
	if err != nil {
		return &lambda.InvokeOutput{StatusCode: 200, FunctionError: aws.String("Unhandled"), Payload: []byte(`{"errorMessage":"failed"}`)}, nil
	}
	return &lambda.InvokeOutput{StatusCode: 200, Payload: out}, nil
}

// authorized creates an oauth2-generic connection and runs the
// authorization code flow; the callback's events go to the bus.
func (w *world) authorized(id string) {
	w.t.Helper()
	r := w.record(id, "oauth2-generic", map[string]any{"baseUrl": "https://crm.example.test"})
	r.Conn.Status, r.Conn.SecretVersion = connection.StatusPendingAuthorization, 0
	if err := w.env.Store.Create(w.ctx(), r, connection.AuditEntry{ID: w.newID(), At: w.now(), Actor: "alice", Action: connection.ActionCreated, Version: 1}, nil); err != nil {
		w.t.Fatal(err)
	}
	w.reconnect(id)
}

// reconnect runs the authorization code flow for an existing connection.
func (w *world) reconnect(id string) {
	w.t.Helper()
	alice := identity.Caller{Tenant: "t1", User: "alice", TenantAdmin: true}
	a, err := w.auth.Begin(w.ctx(), alice, id)
	if err != nil {
		w.t.Fatal(err)
	}
	back, err := w.idp.Authorize(w.ctx(), a.URL)
	if err != nil {
		w.t.Fatal(err)
	}
	done, err := w.cb.Complete(w.ctx(), oauth.CallbackInput{State: back.Query().Get("state"), Code: back.Query().Get("code")})
	if err != nil {
		w.t.Fatal(err)
	}
	w.relay.Flush(w.ctx(), done.Events)
}

// validateAll checks every published event against its schema.
func (w *world) validateAll() {
	w.t.Helper()
	for _, e := range w.bus.of("") {
		if err := schemas.ValidateEvent(e); err != nil {
			w.t.Errorf("%s: %v", e.DetailType, err)
		}
	}
}

// entries lists what the bucket of at holds due by until.
func (w *world) entries(at, until time.Time) []store.DueEntry {
	w.t.Helper()
	var out []store.DueEntry
	if err := w.env.Store.EachDue(w.ctx(), expiry.BucketOf(at), until, func(p []store.DueEntry) error {
		out = append(out, p...)
		return nil
	}); err != nil {
		w.t.Fatal(err)
	}
	return out
}

func (w *world) audit(id string) []connection.Action {
	w.t.Helper()
	entries, _, err := w.env.Store.Audit(w.ctx(), "t1", id, "", 50)
	if err != nil {
		w.t.Fatal(err)
	}
	var out []connection.Action
	for _, e := range entries {
		out = append(out, e.Action)
	}
	slices.Reverse(out)
	return out
}

// overlappingChecks runs n checks at once, each with its own resolver
// client, and returns their reports.
func (w *world) overlappingChecks(t *testing.T, n int) []expirycheck.Report {
	t.Helper()
	var wg sync.WaitGroup
	reports := make([]expirycheck.Report, n)
	for i := range n {
		c := w.check(nil, resolveclient.NewClient(w.resolveFunction(), "ResolveFunction"))
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := c.Run(w.ctx())
			if err != nil {
				t.Error(err)
			}
			reports[i] = r
		}()
	}
	wg.Wait()
	return reports
}
