package store_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connmgr/connmgr/local/stacktest"
	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/store"
)

func TestOAuthStateSingleUse(t *testing.T) {
	env := stacktest.Start(t)
	ctx := context.Background()
	now := env.Clock.Now()
	st := &store.OAuthState{Tenant: "t1", User: "alice", ConnectionID: "c1", ClientID: "client", RedirectURI: "https://x/cb",
		Verifier:  seal(t, env, "t1", store.OAuthStateSubject(store.OAuthStateID("s1")), 1, "verifier"),
		CreatedAt: now, ExpiresAt: now.Add(store.OAuthStateTTL)}
	if err := env.Store.PutOAuthState(ctx, "s1", st); err != nil {
		t.Fatal(err)
	}
	if err := env.Store.PutOAuthState(ctx, "s1", st); err == nil {
		t.Fatal("a state was overwritten")
	}
	var won atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := env.Store.ConsumeOAuthState(ctx, "s1")
			switch {
			case err == nil:
				won.Add(1)
				if got.Tenant != "t1" || got.User != "alice" || got.ConnectionID != "c1" || got.RedirectURI != "https://x/cb" || got.Verifier.IsZero() {
					t.Errorf("consumed %+v", got)
				}
			case !errors.Is(err, store.ErrStateUnknown):
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("20 concurrent consumers of one state: %d won, want 1", won.Load())
	}
	t.Logf("20 concurrent consumers of one state → 1 winner")

	// Expired: refused, and said so, even though the item is still there.
	if err := env.Store.PutOAuthState(ctx, "s2", st); err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(store.OAuthStateTTL + time.Second)
	if _, err := env.Store.ConsumeOAuthState(ctx, "s2"); !errors.Is(err, store.ErrStateExpired) {
		t.Fatalf("expired state: %v", err)
	}
	for _, bad := range []string{"", "unknown", string(make([]byte, 600))} {
		if _, err := env.Store.ConsumeOAuthState(ctx, bad); !errors.Is(err, store.ErrStateUnknown) {
			t.Fatalf("state %.10q: %v", bad, err)
		}
	}
}

func TestOAuthClientVersions(t *testing.T) {
	env := stacktest.Start(t)
	ctx := context.Background()
	c := &store.OAuthClient{Tenant: "t1", Type: "oauth2-generic", ClientID: "id", SecretVersion: 1, Version: 1,
		TokenURL: "https://idp/token", Scopes: []string{"a"}, UpdatedAt: env.Clock.Now(), UpdatedBy: "root"}
	c.Secret = seal(t, env, "t1", store.OAuthClientSubject(c.Type), 1, "client-secret")
	if err := env.Store.PutOAuthClient(ctx, c, 0); err != nil {
		t.Fatal(err)
	}
	if err := env.Store.PutOAuthClient(ctx, c, 0); !apperr.Is(err, apperr.Conflict) {
		t.Fatalf("second create: %v", err)
	}
	got, err := env.Store.GetOAuthClient(ctx, "t1", "oauth2-generic")
	if err != nil || got.ClientID != "id" || got.TokenURL != "https://idp/token" || !reflect.DeepEqual(got.SecretBinding(), c.SecretBinding()) {
		t.Fatalf("get: %+v %v", got, err)
	}
	if _, err := env.Store.GetOAuthClient(ctx, "t2", "oauth2-generic"); !apperr.Is(err, apperr.NotFound) {
		t.Fatalf("another tenant's registration: %v", err)
	}
	c.Version = 2
	c.Scopes = []string{"a", "b"}
	if err := env.Store.PutOAuthClient(ctx, c, 1); err != nil {
		t.Fatal(err)
	}
	if err := env.Store.PutOAuthClient(ctx, c, 1); !apperr.Is(err, apperr.PreconditionFailed) {
		t.Fatalf("stale update: %v", err)
	}
	if err := env.Store.DeleteOAuthClient(ctx, "t1", "oauth2-generic", 1); !apperr.Is(err, apperr.PreconditionFailed) {
		t.Fatalf("stale delete: %v", err)
	}
	if err := env.Store.DeleteOAuthClient(ctx, "t1", "oauth2-generic", 2); err != nil {
		t.Fatal(err)
	}
	if err := env.Store.DeleteOAuthClient(ctx, "t1", "oauth2-generic", 2); !apperr.Is(err, apperr.NotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

// TestOAuthClientDirectoryTenant: the directory tenant and the certificate
// thumbprint round-trip, and the directory fills the type's default
// endpoints (only the endpoints not overridden).
func TestOAuthClientDirectoryTenant(t *testing.T) {
	env := stacktest.Start(t)
	ctx := context.Background()
	c := &store.OAuthClient{Tenant: "t1", Type: "sharepoint-online-app", ClientID: "id", SecretVersion: 1, Version: 1,
		DirectoryTenant: "contoso.onmicrosoft.com", CertificateThumbprint: "0A1B", UpdatedAt: env.Clock.Now(), UpdatedBy: "root"}
	c.Secret = seal(t, env, "t1", store.OAuthClientSubject(c.Type), 1, "key and certificate")
	if err := env.Store.PutOAuthClient(ctx, c, 0); err != nil {
		t.Fatal(err)
	}
	got, err := env.Store.GetOAuthClient(ctx, "t1", c.Type)
	if err != nil || got.DirectoryTenant != c.DirectoryTenant || got.CertificateThumbprint != "0A1B" {
		t.Fatalf("get: %+v %v", got, err)
	}
	a, tok := got.Endpoints()
	if a != "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize" || tok != "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token" {
		t.Errorf("endpoints %s %s", a, tok)
	}
	got.TokenURL = "http://127.0.0.1:9/token"
	if a, tok = got.Endpoints(); tok != got.TokenURL || !strings.HasPrefix(a, "https://login.microsoftonline.com/contoso.onmicrosoft.com/") {
		t.Errorf("overridden token endpoint: %s %s", a, tok)
	}
	got.DirectoryTenant, got.TokenURL = "", ""
	if _, tok = got.Endpoints(); !strings.Contains(tok, "{directoryTenant}") {
		t.Errorf("no directory: %s", tok)
	}
}
