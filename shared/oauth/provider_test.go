package oauth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connmgr/connmgr/local/oauthprovider"
	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/identity"
	"github.com/connmgr/connmgr/shared/oauth"
	"github.com/connmgr/connmgr/shared/secret"
	"github.com/connmgr/connmgr/shared/store"
)

// authorized runs the code flow for a fresh connection and returns the
// stored token set.
func (f *fixture) authorized(t *testing.T, id string) *oauth.TokenSet {
	t.Helper()
	ctx := context.Background()
	f.newConnection(t, id)
	_, state, code := f.begin(t, id)
	done, err := f.callback.Complete(ctx, oauth.CallbackInput{State: state, Code: code})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := f.env.Store.Get(ctx, "t1", id)
	pt, err := f.opener.Open(ctx, r.Conn.Binding(done.Conn.SecretVersion), r.Secret)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := oauth.DecodeTokenSet(pt)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func (f *fixture) provider(t *testing.T, typeID string) *oauth.Provider {
	t.Helper()
	ctx := context.Background()
	typ, _ := connection.Lookup(typeID, "type")
	reg, err := f.env.Store.GetOAuthClient(ctx, "t1", typeID)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := f.opener.Open(ctx, reg.SecretBinding(), reg.Secret)
	if err != nil {
		t.Fatal(err)
	}
	p, err := oauth.NewProvider(typ, reg, secret, oauth.ProviderOptions{Now: f.env.Clock.Now, HTTPClient: localHTTP})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRefreshTokenHandling(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	p := f.provider(t, "oauth2-generic")
	now := f.env.Clock.Now()

	t.Run("rotation", func(t *testing.T) {
		ts := f.authorized(t, "rot")
		next, err := p.Refresh(ctx, ts, nil)
		if err != nil {
			t.Fatal(err)
		}
		if next.RefreshToken() == ts.RefreshToken() || next.AccessToken() == ts.AccessToken() || !f.idp.ValidAccessToken(next.AccessToken()) {
			t.Fatal("refresh did not rotate")
		}
		if !next.ExpiresAt().Equal(now.Add(time.Hour)) || next.ExpiryAssumed() {
			t.Fatalf("expiry %v assumed=%v", next.ExpiresAt(), next.ExpiryAssumed())
		}
		// The old refresh token is dead now.
		_, err = p.Refresh(ctx, ts, nil)
		pe, ok := oauth.AsError(err)
		if !ok || pe.Code != "invalid_grant" || !pe.Rejected || !pe.RevokesGrant() {
			t.Fatalf("replayed refresh token: %v", err)
		}
	})
	t.Run("no refresh token in the response keeps the old one", func(t *testing.T) {
		ts := f.authorized(t, "keep")
		f.idp.OmitRefreshToken(true)
		defer f.idp.OmitRefreshToken(false)
		next, err := p.Refresh(ctx, ts, nil)
		if err != nil {
			t.Fatal(err)
		}
		if next.RefreshToken() != ts.RefreshToken() {
			t.Fatal("old refresh token not kept")
		}
		if _, err := p.Refresh(ctx, next, nil); err != nil {
			t.Fatalf("kept refresh token no longer works: %v", err)
		}
	})
	t.Run("missing expires_in assumes an hour", func(t *testing.T) {
		ts := f.authorized(t, "noexp")
		f.idp.SetExpiresIn(time.Hour, true)
		defer f.idp.SetExpiresIn(time.Hour, false)
		next, err := p.Refresh(ctx, ts, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !next.ExpiryAssumed() || !next.ExpiresAt().Equal(now.Add(oauth.DefaultLifetime)) {
			t.Fatalf("expiry %v assumed=%v", next.ExpiresAt(), next.ExpiryAssumed())
		}
		t.Logf("no expires_in → expires at obtained + %s (assumed)", oauth.DefaultLifetime)
	})
	t.Run("absurd expires_in is capped at a day", func(t *testing.T) {
		ts := f.authorized(t, "long")
		f.idp.SetExpiresIn(100*365*24*time.Hour, false) // a century, like mockoidc's nanoseconds read as seconds
		defer f.idp.SetExpiresIn(time.Hour, false)
		next, err := p.Refresh(ctx, ts, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !next.ExpiresAt().Equal(now.Add(oauth.MaxLifetime)) {
			t.Fatalf("expiry %v", next.ExpiresAt())
		}
	})
	t.Run("client credentials", func(t *testing.T) {
		ts, err := p.ClientCredentials(ctx, []string{"api"})
		if err != nil {
			t.Fatal(err)
		}
		if !f.idp.ValidAccessToken(ts.AccessToken()) || ts.RefreshToken() != "" || ts.TokenType() != "Bearer" {
			t.Fatalf("client credentials token %v", ts)
		}
		// HTTP Basic client authentication works too.
		hp := *p
		hp.AuthStyle = oauth.AuthStyleHeader
		if _, err := hp.ClientCredentials(ctx, nil); err != nil {
			t.Fatalf("header auth: %v", err)
		}
	})
}

func TestProviderErrors(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	p := f.provider(t, "oauth2-generic")
	ts := f.authorized(t, "c1")
	f.idp.EchoSecrets(true)

	// Positive control: the provider really quotes the secrets back.
	f.idp.Fail(oauthprovider.Failure{Grant: "refresh_token", Status: 400, Code: "invalid_grant"})
	resp, err := http.PostForm(f.idp.TokenURL(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {ts.RefreshToken()},
		"client_id": {f.idp.ClientID()}, "client_secret": {f.idp.ClientSecret()}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), f.idp.ClientSecret()) || !strings.Contains(string(body), ts.RefreshToken()) {
		t.Fatalf("the provider does not echo secrets: %s", body)
	}

	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	deadURL := "http://" + closed.Addr().String() + "/token"
	closed.Close()

	cases := []struct {
		name      string
		fail      *oauthprovider.Failure
		tokenURL  string
		code      string
		rejected  bool
		revokes   bool
		transient bool
	}{
		{"invalid_grant", &oauthprovider.Failure{Status: 400, Code: "invalid_grant"}, "", "invalid_grant", true, true, false},
		{"invalid_client", &oauthprovider.Failure{Status: 401, Code: "invalid_client"}, "", "invalid_client", true, false, false},
		{"unauthorized_client", &oauthprovider.Failure{Status: 400, Code: "unauthorized_client"}, "", "unauthorized_client", true, false, false},
		{"temporarily_unavailable", &oauthprovider.Failure{Status: 503, Code: "temporarily_unavailable"}, "", "temporarily_unavailable", false, false, true},
		{"500 without a code", &oauthprovider.Failure{Status: 500}, "", "server_error", false, false, true},
		{"429", &oauthprovider.Failure{Status: 429}, "", "rate_limited", false, false, true},
		{"garbage code", &oauthprovider.Failure{Status: 400, Code: "Bad Code <script>"}, "", "invalid_error_code", true, false, false},
		{"unreachable", nil, deadURL, "unreachable", false, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pp := p
			if c.tokenURL != "" {
				cp := *p
				cp.TokenURL = c.tokenURL
				pp = &cp
			}
			if c.fail != nil {
				c.fail.Grant = "refresh_token"
				f.idp.Fail(*c.fail)
			}
			_, err := pp.Refresh(ctx, ts, nil)
			pe, ok := oauth.AsError(err)
			if !ok {
				t.Fatalf("not a provider error: %v", err)
			}
			if pe.Code != c.code || pe.Rejected != c.rejected || pe.RevokesGrant() != c.revokes || pe.Transient() != c.transient {
				t.Fatalf("got %+v", pe)
			}
			for _, s := range []string{ts.RefreshToken(), f.idp.ClientSecret(), "client_secret="} {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("error quotes a secret: %v", err)
				}
			}
		})
	}
}

func TestRegistry(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	canary := "CANARY-client-secret-7f3a"
	in := oauth.ClientInput{ClientID: "crm-app", ClientSecret: secret.New(canary), TokenURL: "https://idp.example.test/token"}

	if _, err := f.registry.Put(ctx, f.alice, "oauth2-client-credentials", in, 0); !apperr.Is(err, apperr.Forbidden) {
		t.Fatalf("site owner: %v", err)
	}
	if _, err := f.registry.Put(ctx, f.admin, "http-basic", in, 0); !apperr.Is(err, apperr.Invalid) {
		t.Fatalf("non-OAuth type: %v", err)
	}
	bad := []struct {
		name  string
		in    oauth.ClientInput
		field string
	}{
		{"no client id", oauth.ClientInput{ClientSecret: secret.New("s"), TokenURL: "https://x/t"}, "clientId"},
		{"no secret on create", oauth.ClientInput{ClientID: "a", TokenURL: "https://x/t"}, "clientSecret"},
		{"http token URL", oauth.ClientInput{ClientID: "a", ClientSecret: secret.New("s"), TokenURL: "http://idp.example.test/t"}, "tokenUrl"},
		{"credentials in URL", oauth.ClientInput{ClientID: "a", ClientSecret: secret.New("s"), TokenURL: "https://u:p@idp.example.test/t"}, "tokenUrl"},
		{"no token URL and no default", oauth.ClientInput{ClientID: "a", ClientSecret: secret.New("s")}, "tokenUrl"},
		{"scope with a space", oauth.ClientInput{ClientID: "a", ClientSecret: secret.New("s"), TokenURL: "https://x/t", Scopes: []string{"a b"}}, "scopes"},
		{"unknown auth style", oauth.ClientInput{ClientID: "a", ClientSecret: secret.New("s"), TokenURL: "https://x/t", AuthStyle: "jwt"}, "authStyle"},
	}
	for _, b := range bad {
		_, err := f.registry.Put(ctx, f.admin, "oauth2-client-credentials", b.in, 0)
		if e := apperr.As(err); e.Kind != apperr.Invalid || e.Field != b.field {
			t.Errorf("%s: %v", b.name, err)
		}
	}
	v, err := f.registry.Put(ctx, f.admin, "oauth2-client-credentials", in, 0)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(v)
	if !v.ClientSecret || v.Version != 1 || strings.Contains(string(raw), canary) {
		t.Fatalf("view %s", raw)
	}
	// Update without a secret keeps it; with one re-seals it under a new version.
	in2 := oauth.ClientInput{ClientID: "crm-app", TokenURL: "https://idp.example.test/token2"}
	if _, err := f.registry.Put(ctx, f.admin, "oauth2-client-credentials", in2, 1); err != nil {
		t.Fatal(err)
	}
	reg, _ := f.env.Store.GetOAuthClient(ctx, "t1", "oauth2-client-credentials")
	if pt, err := f.opener.Open(ctx, reg.SecretBinding(), reg.Secret); err != nil || string(pt) != canary || reg.SecretVersion != 1 || reg.Version != 2 {
		t.Fatalf("secret after update without one: v%d %v", reg.SecretVersion, err)
	}
	in2.ClientSecret = secret.New("CANARY-rotated")
	if _, err := f.registry.Put(ctx, f.admin, "oauth2-client-credentials", in2, 1); !apperr.Is(err, apperr.PreconditionFailed) {
		t.Fatalf("stale put: %v", err)
	}
	if _, err := f.registry.Put(ctx, f.admin, "oauth2-client-credentials", in2, 2); err != nil {
		t.Fatal(err)
	}
	reg, _ = f.env.Store.GetOAuthClient(ctx, "t1", "oauth2-client-credentials")
	if pt, err := f.opener.Open(ctx, reg.SecretBinding(), reg.Secret); err != nil || string(pt) != "CANARY-rotated" || reg.SecretVersion != 2 {
		t.Fatalf("rotated secret: v%d %v", reg.SecretVersion, err)
	}
	list, err := f.registry.List(ctx, f.admin)
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %d %v", len(list), err)
	}
	if err := f.registry.Delete(ctx, f.admin, "oauth2-client-credentials", 0); !apperr.Is(err, apperr.PreconditionRequired) {
		t.Fatalf("delete without If-Match: %v", err)
	}
	if err := f.registry.Delete(ctx, f.admin, "oauth2-client-credentials", 3); err != nil {
		t.Fatal(err)
	}
	if _, err := f.registry.Get(ctx, f.admin, "oauth2-client-credentials"); !apperr.Is(err, apperr.NotFound) {
		t.Fatalf("after delete: %v", err)
	}
	// Loopback http only when allowed.
	strict := oauth.NewRegistry(f.env.Store, f.env.Sealer, oauth.RegistryOptions{})
	_, err = strict.Put(ctx, identity.Caller{Tenant: "t9", User: "root", TenantAdmin: true}, "oauth2-client-credentials",
		oauth.ClientInput{ClientID: "a", ClientSecret: secret.New("s"), TokenURL: f.idp.TokenURL()}, 0)
	if e := apperr.As(err); e.Field != "tokenUrl" {
		t.Fatalf("loopback http in production: %v", err)
	}
}

// Property 11 for this package: secrets never print.
func TestSecretsRedacted(t *testing.T) {
	access, refresh, clientSecret := "CANARY-access-1", "CANARY-refresh-2", "CANARY-client-3"
	ts := oauth.NewTokenSet(access, refresh, "Bearer", time.Now(), time.Now())
	typ, _ := connection.Lookup("oauth2-client-credentials", "type")
	p, err := oauth.NewProvider(typ, &store.OAuthClient{ClientID: "id", TokenURL: "https://x/t"}, []byte(clientSecret), oauth.ProviderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var in oauth.ClientInput
	if err := json.Unmarshal([]byte(`{"clientId":"id","clientSecret":"`+clientSecret+`"}`), &in); err != nil || in.ClientSecret.Reveal() != clientSecret {
		t.Fatalf("decode input: %v", err)
	}
	type holder struct {
		Exported *oauth.TokenSet
		hidden   *oauth.TokenSet
		value    oauth.TokenSet
		P        *oauth.Provider
		p        oauth.Provider
		In       oauth.ClientInput
		in       oauth.ClientInput
	}
	h := holder{ts, ts, *ts, p, *p, in, in}
	var out bytes.Buffer
	for _, v := range []any{ts, *ts, p, *p, in, &in, h, &h} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%t", "%e", "%c", "%U"} {
			fmt.Fprintf(&out, verb+"\n", v)
		}
		b, _ := json.Marshal(v)
		out.Write(b)
	}
	for _, hnd := range []slog.Handler{slog.NewJSONHandler(&out, nil), slog.NewTextHandler(&out, nil)} {
		slog.New(hnd).Info("x", "tokens", ts, "provider", p, "input", in, "holder", h)
	}
	for _, c := range []string{access, refresh, clientSecret} {
		if strings.Contains(out.String(), c) {
			t.Fatalf("%s printed in:\n%s", c, out.String())
		}
	}
	t.Logf("%d bytes of fmt (12 verbs), JSON and slog output of secret-holding values: 0 canaries", out.Len())
	enc, _ := ts.Encode()
	if !strings.Contains(string(enc), access) || !strings.Contains(string(enc), refresh) {
		t.Fatal("Encode must carry the tokens")
	}
	back, err := oauth.DecodeTokenSet(enc)
	if err != nil || back.AccessToken() != access || back.RefreshToken() != refresh {
		t.Fatalf("round trip: %v", err)
	}
	if _, err := oauth.DecodeTokenSet([]byte(`{"accessToken":"` + access)); err == nil || strings.Contains(err.Error(), access) {
		t.Fatalf("bad JSON: %v", err)
	}
}

func TestHTTPClientGuards(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ts := f.authorized(t, "c1")
	typ, _ := connection.Lookup("oauth2-generic", "type")
	reg, _ := f.env.Store.GetOAuthClient(ctx, "t1", "oauth2-generic")

	// The default client refuses non-public addresses (checked after DNS).
	strict, err := oauth.NewProvider(typ, reg, []byte(f.idp.ClientSecret()), oauth.ProviderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = strict.Refresh(ctx, ts, nil)
	if pe, ok := oauth.AsError(err); !ok || pe.Code != "unreachable" || !strings.Contains(err.Error(), "not public") {
		t.Fatalf("loopback token endpoint: %v", err)
	}
	if f.idp.Calls("") != 1 { // the authorization's code exchange only
		t.Fatalf("the provider was reached: %d calls", f.idp.Calls(""))
	}

	// A token endpoint that redirects does not get the secret resent elsewhere.
	var leaked atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { leaked.Add(1) }))
	defer elsewhere.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/token", http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	cp := *reg
	cp.TokenURL = redirector.URL + "/token"
	p, err := oauth.NewProvider(typ, &cp, []byte(f.idp.ClientSecret()), oauth.ProviderOptions{HTTPClient: localHTTP})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Refresh(ctx, ts, nil)
	if err == nil || leaked.Load() != 0 {
		t.Fatalf("redirected token request: %v, %d requests elsewhere", err, leaked.Load())
	}
}
