package resolver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/connmgr/connmgr/local/stacktest"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/resolver"
	"github.com/connmgr/connmgr/shared/store"
)

func TestCredentialShapes(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.create(t, connection.Connection{ID: "basic", Type: "http-basic", Name: "b",
		Settings: map[string]any{"baseUrl": "https://erp.example.test", "testPath": "/ping"}}, map[string]string{"username": "svc", "password": "pw-1"})
	f.create(t, connection.Connection{ID: "key", Type: "http-api-key", Name: "k",
		Settings: map[string]any{"baseUrl": "https://api.example.test:8443", "headerName": "X-Api-Key"}}, map[string]string{"apiKey": "key-1"})
	f.authorized(t, "bearer")

	b, err := f.res.Resolve(ctx, f.input("basic"))
	if err != nil {
		t.Fatal(err)
	}
	if b.Kind != resolver.KindBasic || b.Username() != "svc" || b.Password() != "pw-1" || b.BaseURL != "https://erp.example.test" || b.Settings["testPath"] != "/ping" {
		t.Fatalf("basic: %v %v", b, b.Settings)
	}
	k, err := f.res.Resolve(ctx, f.input("key"))
	if err != nil {
		t.Fatal(err)
	}
	if k.Kind != resolver.KindAPIKey || k.HeaderName() != "X-Api-Key" || k.APIKey() != "key-1" {
		t.Fatalf("api key: %v", k)
	}
	o, err := f.res.Resolve(ctx, f.input("bearer"))
	if err != nil {
		t.Fatal(err)
	}
	if o.Kind != resolver.KindBearer || !f.idp.ValidAccessToken(o.AccessToken()) || o.TokenType() != "Bearer" ||
		!o.ExpiresAt().Equal(f.env.Clock.Now().Add(time.Hour)) || o.BaseURL != "https://crm.example.test" {
		t.Fatalf("bearer: %v expires %v", o, o.ExpiresAt())
	}

	// The wire form is the only encoding with secrets.
	w, err := b.MarshalWire()
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	json.Unmarshal(w, &got)
	if got["basic"].(map[string]any)["password"] != "pw-1" || got["kind"] != "basic" || got["baseUrl"] != "https://erp.example.test" {
		t.Fatalf("wire %s", w)
	}
	red, _ := json.Marshal(b)
	if strings.Contains(string(red), "pw-1") || strings.Contains(string(red), "svc") {
		t.Fatalf("MarshalJSON leaks: %s", red)
	}
	raw, _ := f.res.Invoke(ctx, f.input("key"))
	if !strings.Contains(string(raw), `"ok":true`) || !strings.Contains(string(raw), `"value":"key-1"`) {
		t.Fatalf("invoke: %s", raw)
	}

	// Credentials go to the connection's own origin only.
	for _, c := range []struct {
		cred *resolver.Credential
		url  string
		ok   bool
	}{
		{b, "https://erp.example.test/api/x", true},
		{b, "https://ERP.example.test:443/api/x", true},
		{b, "http://erp.example.test/api/x", false},
		{b, "https://erp.example.test.evil.test/x", false},
		{b, "https://evil.test/?u=https://erp.example.test", false},
		{k, "https://api.example.test:8443/v1", true},
		{k, "https://api.example.test/v1", false},
		{o, "https://crm.example.test/me", true},
		{o, f.idp.ResourceURL(), false},
	} {
		req, _ := http.NewRequest(http.MethodGet, c.url, nil)
		err := c.cred.Apply(req)
		if (err == nil) != c.ok {
			t.Errorf("%s %s: %v", c.cred.Kind, c.url, err)
		}
		if err != nil && (req.Header.Get("Authorization") != "" || req.Header.Get("X-Api-Key") != "") {
			t.Errorf("%s: refused but authenticated anyway", c.url)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, "https://api.example.test:8443/v1", nil)
	k.Apply(req)
	if req.Header.Get("X-Api-Key") != "key-1" {
		t.Fatal("api key header not set")
	}
}

func TestResolveFailures(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	creds := map[string]string{"username": "u", "password": "p"}
	basic := func(id string, c connection.Connection) {
		c.ID, c.Type, c.Name = id, "http-basic", id
		c.Settings = map[string]any{"baseUrl": "https://x.example.test"}
		f.create(t, c, creds)
	}
	basic("hr", connection.Connection{})
	basic("it", connection.Connection{Availability: connection.Availability{Scope: connection.ScopeSite, Site: "/sites/it"}})
	basic("coll", connection.Connection{Availability: connection.Availability{Scope: connection.ScopeSiteCollection, SiteCollection: "/sites/hr"}})
	basic("mine", connection.Connection{Kind: connection.Personal, Availability: connection.Availability{Scope: connection.ScopePersonal}, Owners: []string{"bob"}})
	basic("gone", connection.Connection{})
	basic("expired", connection.Connection{Status: connection.StatusExpired, StatusReason: "password_expired"})
	f.create(t, connection.Connection{ID: "pending", Type: "oauth2-generic", Name: "p", Status: connection.StatusPendingAuthorization}, nil)
	// Another tenant's connection with a colliding id.
	other := &store.Record{Conn: connection.Connection{Tenant: "t2", ID: "theirs", Type: "http-basic", Name: "x", Kind: connection.Shared,
		Availability: connection.Availability{Scope: connection.ScopeTenant}, Owners: []string{"eve"}, CreatedBy: "eve", Version: 1,
		Status: connection.StatusActive, Settings: map[string]any{}, SecretVersion: 1}}
	if err := f.env.Store.Create(ctx, other, connection.AuditEntry{ID: "01X", Actor: "eve", Action: connection.ActionCreated, Version: 1}, nil); err != nil {
		t.Fatal(err)
	}
	rec, _ := f.env.Store.Get(ctx, "t1", "gone")
	if err := f.env.Store.Delete(ctx, rec, 1, connection.AuditEntry{ID: "01Y", Actor: "alice", Action: connection.ActionDeleted}); err != nil {
		t.Fatal(err)
	}
	// A ciphertext moved from one connection to another.
	hr, _ := f.env.Store.Get(ctx, "t1", "hr")
	basic("swapped", connection.Connection{})
	sw, _ := f.env.Store.Get(ctx, "t1", "swapped")
	sw.Secret, sw.Conn.Version = hr.Secret, 2
	if err := f.env.Store.Update(ctx, sw, 1, sw.Conn.Owners, store.Changes{}); err != nil {
		t.Fatal(err)
	}

	in := func(id string, mod func(*resolver.Input)) resolver.Input {
		i := f.input(id)
		if mod != nil {
			mod(&i)
		}
		return i
	}
	cases := []struct {
		name     string
		in       resolver.Input
		code     resolver.Code
		auth     bool
		retry    bool
		provider string
	}{
		{"ok within the collection", in("coll", func(i *resolver.Input) { i.Site = "/sites/HR/payroll/" }), "", false, false, ""},
		{"unknown id", in("nope", nil), resolver.CodeNotFound, true, false, ""},
		{"deleted", in("gone", nil), resolver.CodeNotFound, true, false, ""},
		{"another tenant's id", in("theirs", nil), resolver.CodeNotFound, true, false, ""},
		{"id with a key separator", in("hr#CONN", nil), resolver.CodeNotFound, true, false, ""},
		{"run on another site", in("it", nil), resolver.CodeNotUsable, true, false, ""},
		{"run without a site", in("hr", func(i *resolver.Input) { i.Site = "" }), resolver.CodeNotUsable, true, false, ""},
		{"someone else's personal connection", in("mine", nil), resolver.CodeNotUsable, true, false, ""},
		{"own personal connection", in("mine", func(i *resolver.Input) { i.RunOwner = "bob"; i.Site = "/sites/anywhere" }), "", false, false, ""},
		{"expired", in("expired", nil), resolver.CodeExpired, true, false, "password_expired"},
		{"never authorized", in("pending", nil), resolver.CodeAuthorizationPending, true, false, ""},
		{"ciphertext from another connection", in("swapped", nil), resolver.CodeSecretUnreadable, true, false, ""},
		{"no tenant", in("hr", func(i *resolver.Input) { i.Tenant = "" }), resolver.CodeInvalidInput, false, false, ""},
		{"bad site", in("hr", func(i *resolver.Input) { i.Site = "sites/hr" }), resolver.CodeInvalidInput, false, false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.res.Resolve(ctx, c.in)
			if c.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			fl := failure(t, err)
			if fl.Code != c.code || fl.AuthFailure != c.auth || fl.Retryable != c.retry || fl.ProviderCode != c.provider {
				t.Fatalf("got %+v", fl)
			}
			raw, _ := f.res.Invoke(ctx, c.in)
			if !strings.Contains(string(raw), `"ok":false`) || !strings.Contains(string(raw), `"code":"`+string(c.code)+`"`) {
				t.Fatalf("invoke: %s", raw)
			}
		})
	}

	t.Run("connection test skips the run's use check only", func(t *testing.T) {
		cred, err := f.res.ResolveForTest(ctx, "t1", "mine", "bob")
		if err != nil || cred.Username() != "u" {
			t.Fatalf("test of a personal connection: %v", err)
		}
		if _, err := f.res.ResolveForTest(ctx, "t1", "expired", "alice"); failure(t, err).Code != resolver.CodeExpired {
			t.Fatalf("test of an expired connection: %v", err)
		}
		if _, err := f.res.ResolveForTest(ctx, "t1", "theirs", "alice"); failure(t, err).Code != resolver.CodeNotFound {
			t.Fatalf("test of another tenant's connection: %v", err)
		}
	})
	t.Run("key unavailable", func(t *testing.T) {
		if !stacktest.KeyStates(t) {
			t.Skip("moto's KMS ignores key state (see stacktest.KeyStates); local-kms runs this")
		}
		cold := f.instance(t, nil)
		if _, err := f.env.KMSAPI.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(f.env.Stack.KeyID)}); err != nil {
			t.Fatal(err)
		}
		defer f.env.KMSAPI.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(f.env.Stack.KeyID)})
		fl := failure(t, func() error { _, err := cold.Resolve(ctx, f.input("hr")); return err }())
		if fl.Code != resolver.CodeKeyUnavailable || fl.AuthFailure || !fl.Retryable {
			t.Fatalf("got %+v", fl)
		}
	})
}

// A warm resolution is one GetItem and no KMS call; last-used is sampled.
func TestWarmResolutionCalls(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.create(t, connection.Connection{ID: "c1", Type: "http-basic", Name: "c", Settings: map[string]any{"baseUrl": "https://x.example.test"}},
		map[string]string{"username": "u", "password": "p"})
	f.authorized(t, "o1")
	for _, id := range []string{"c1", "o1"} {
		r := f.instance(t, nil)
		f.env.Reset()
		if _, err := r.Resolve(ctx, f.input(id)); err != nil {
			t.Fatal(err)
		}
		coldDDB, coldKMS := f.env.DDB.Count(""), f.env.KMS.Count("")
		if f.env.DDB.Count("GetItem") != 1 || f.env.DDB.Count("UpdateItem") != 1 || coldKMS != 1 {
			t.Fatalf("%s cold: GetItem %d UpdateItem %d KMS %d", id, f.env.DDB.Count("GetItem"), f.env.DDB.Count("UpdateItem"), coldKMS)
		}
		f.env.Reset()
		for range 10 {
			if _, err := r.Resolve(ctx, f.input(id)); err != nil {
				t.Fatal(err)
			}
		}
		ddb, kmsCalls := f.env.DDB.Count(""), f.env.KMS.Count("")
		if ddb != 10 || f.env.DDB.Count("GetItem") != 10 || kmsCalls != 0 {
			t.Fatalf("%s warm: %d DynamoDB calls (%d GetItem), %d KMS calls for 10 resolutions", id, ddb, f.env.DDB.Count("GetItem"), kmsCalls)
		}
		t.Logf("%s: cold resolution %d DynamoDB + %d KMS calls (incl. 1 last-used write, made before the resolution returns); warm resolution 1 DynamoDB (GetItem) + 0 KMS calls", id, coldDDB, coldKMS)

		// The next last-used write comes after the interval.
		f.env.Reset()
		f.env.Clock.Advance(resolver.DefaultLastUsedInterval)
		if _, err := r.Resolve(ctx, f.input(id)); err != nil && id == "c1" {
			t.Fatal(err)
		}
		if f.env.DDB.Count("UpdateItem") < 1 {
			t.Fatalf("%s: no last-used write after the interval", id)
		}
		rec, _ := f.env.Store.Get(ctx, "t1", id)
		if !rec.Conn.LastUsedAt.Equal(f.env.Clock.Now()) {
			t.Fatalf("last used %v, want %v", rec.Conn.LastUsedAt, f.env.Clock.Now())
		}
	}
}
