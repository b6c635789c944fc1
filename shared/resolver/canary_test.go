package resolver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/connmgr/connmgr/local/oauthprovider"
	"github.com/connmgr/connmgr/local/stacktest"
	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/identity"
	"github.com/connmgr/connmgr/shared/oauth"
	"github.com/connmgr/connmgr/shared/resolver"
	"github.com/connmgr/connmgr/shared/secret"
)

// Property 11: canary secrets (passwords, API keys, client secrets, and
// every token the provider issues) never appear in a log line, an error,
// a failure's JSON, a redacted rendering, an audit entry, or the table in
// the clear — through successes, refreshes, and failures whose provider
// responses quote the secrets back.
func TestCanariesNeverLeak(t *testing.T) {
	const (
		user        = "CANARY-user-5b1e"
		password    = "CANARY-password-93ad"
		apiKey      = "CANARY-apikey-0c77"
		clientSec   = "CANARY-client-secret-e2f4"
		otherClient = "CANARY-client-secret-2-aa19"
	)
	f := newFixtureWith(t, oauthprovider.Options{ClientSecret: clientSec})
	ctx := context.Background()
	var out strings.Builder // everything that must be canary-free
	record := func(label string, v ...any) {
		fmt.Fprintf(&out, "\n== %s\n", label)
		for _, x := range v {
			fmt.Fprintf(&out, "%v | %+v | %#v | %s\n", x, x, x, x)
			if b, err := json.Marshal(x); err == nil {
				out.Write(b)
			}
		}
	}
	recordErr := func(label string, err error) {
		if err == nil {
			t.Fatalf("%s: no error", label)
		}
		fl := resolver.AsFailure(err)
		record(label, err.Error(), fl)
	}

	f.create(t, connection.Connection{ID: "basic", Type: "http-basic", Name: "b", Settings: map[string]any{"baseUrl": "https://erp.example.test"}},
		map[string]string{"username": user, "password": password})
	f.create(t, connection.Connection{ID: "key", Type: "http-api-key", Name: "k", Settings: map[string]any{"baseUrl": "https://api.example.test", "headerName": "X-Key"}},
		map[string]string{"apiKey": apiKey})
	f.authorized(t, "oauth")
	f.authorized(t, "oauth2")

	// Successes, including a refresh.
	for _, id := range []string{"basic", "key", "oauth"} {
		cred, err := f.res.Resolve(ctx, f.input(id))
		if err != nil {
			t.Fatal(err)
		}
		record("credential "+id, cred, *cred, struct{ C *resolver.Credential }{cred})
	}
	raw, _ := f.res.Invoke(ctx, f.input("basic"))
	if !strings.Contains(string(raw), password) {
		t.Fatal("positive control: the wire form must carry the password")
	}
	f.env.Clock.Advance(time.Hour)
	if _, err := f.res.Resolve(ctx, f.input("oauth")); err != nil {
		t.Fatal(err)
	}

	// Failures with a provider that quotes client secret and refresh token back.
	f.idp.EchoSecrets(true)
	f.idp.Fail(oauthprovider.Failure{Grant: "refresh_token", Status: 503, Code: "temporarily_unavailable"})
	_, err := f.res.Resolve(ctx, f.input("oauth2"))
	recordErr("transient", err)
	f.idp.Fail(oauthprovider.Failure{Grant: "refresh_token", Status: 401, Code: "invalid_client"})
	_, err = f.res.Resolve(ctx, f.input("oauth2"))
	recordErr("invalid_client", err)
	f.idp.Fail(oauthprovider.Failure{Grant: "refresh_token", Status: 400, Code: "invalid_grant"})
	_, err = f.res.Resolve(ctx, f.input("oauth2"))
	recordErr("invalid_grant", err)
	raw, _ = f.res.Invoke(ctx, f.input("oauth2"))
	record("invoke failure", string(raw))
	_, err = f.res.Resolve(ctx, resolver.Input{Tenant: "t1", ConnectionID: "basic", Site: "/sites/other", RunOwner: "x"})
	recordErr("not usable", err)
	// An authorization whose code exchange fails with the secrets echoed.
	a, _ := f.auth.Begin(ctx, f.alice, "oauth2")
	back, _ := f.idp.Authorize(ctx, a.URL)
	_, err = f.cb.Complete(ctx, oauth.CallbackInput{State: back.Query().Get("state"), Code: back.Query().Get("code") + "x"})
	record("callback failure", err.Error())
	// Registry: a secret that fails validation, and one stored.
	reg := oauth.NewRegistry(f.env.Store, f.env.Sealer, oauth.RegistryOptions{Now: f.env.Clock.Now})
	admin := identity.Caller{Tenant: "t1", User: "root", TenantAdmin: true}
	_, err = reg.Put(ctx, admin, "salesforce", oauth.ClientInput{ClientID: "sf", ClientSecret: secret.New(otherClient + strings.Repeat("x", 5000))}, 0)
	record("registry invalid", err.Error())
	view, err := reg.Put(ctx, admin, "salesforce", oauth.ClientInput{ClientID: "sf", ClientSecret: secret.New(otherClient)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	record("registry view", view)
	// A certificate client (sharepoint-online-app): a key refused for not
	// being the certificate's, the pair registered, an app-only token
	// obtained with it, then refused by the provider.
	keyPEM, certPEM, err := oauthprovider.GenerateCertificate("canary", f.env.Clock.Now(), 365*24*time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, otherCert, _ := oauthprovider.GenerateCertificate("canary-2", f.env.Clock.Now(), 365*24*time.Hour, true)
	local := oauth.NewRegistry(f.env.Store, f.env.Sealer, oauth.RegistryOptions{Now: f.env.Clock.Now, AllowLoopbackHTTP: true})
	app := oauth.ClientInput{ClientID: f.idp.ClientID(), ClientCertificate: string(certPEM), ClientPrivateKey: secret.New(string(otherKey)), TokenURL: f.idp.TokenURL()}
	_, err = local.Put(ctx, admin, "sharepoint-online-app", app, 0)
	record("registry key mismatch", err.Error(), apperr.As(err))
	app.ClientPrivateKey = secret.New(string(keyPEM))
	record("registry input", app, &app)
	view, err = local.Put(ctx, admin, "sharepoint-online-app", app, 0)
	if err != nil {
		t.Fatal(err)
	}
	record("registry certificate view", view)
	if err := f.idp.TrustCertificate(certPEM); err != nil {
		t.Fatal(err)
	}
	site := map[string]any{"siteUrl": "https://contoso.sharepoint.com/sites/hr"}
	f.create(t, connection.Connection{ID: "app", Type: "sharepoint-online-app", Name: "app", Settings: site}, nil)
	f.create(t, connection.Connection{ID: "app2", Type: "sharepoint-online-app", Name: "app2", Settings: site}, nil)
	cred, err := f.res.Resolve(ctx, f.input("app"))
	if err != nil {
		t.Fatal(err)
	}
	record("credential app", cred, *cred)
	f.idp.DistrustCertificates()
	_, err = f.res.Resolve(ctx, f.input("app2"))
	recordErr("certificate refused", err)
	if f.idp.Assertions() != 1 || len(f.idp.RefusedAssertions()) != 1 {
		t.Fatalf("%d assertions accepted, %d refused", f.idp.Assertions(), len(f.idp.RefusedAssertions()))
	}
	// KMS down (local-kms only: moto's KMS ignores key state).
	if stacktest.KeyStates(t) {
		cold := f.instance(t, nil)
		f.env.KMSAPI.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(f.env.Stack.KeyID)})
		_, err = cold.Resolve(ctx, f.input("basic"))
		recordErr("key unavailable", err)
		f.env.KMSAPI.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(f.env.Stack.KeyID)})
	}

	// State: audit entries, connections, and every attribute of every item.
	for _, id := range []string{"basic", "key", "oauth", "oauth2", "app", "app2"} {
		entries, _, _ := f.env.Store.Audit(ctx, "t1", id, "", 50)
		rec, _ := f.env.Store.Get(ctx, "t1", id)
		record("state "+id, entries, rec.Conn)
	}
	scan, err := f.env.DynamoDB.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(f.env.Stack.TableName)})
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	for _, item := range scan.Items {
		for k, v := range item {
			switch v := v.(type) {
			case *ddbtypes.AttributeValueMemberS:
				fmt.Fprintf(&table, "%s=%s\n", k, v.Value)
			case *ddbtypes.AttributeValueMemberB:
				fmt.Fprintf(&table, "%s=%s\n", k, v.Value)
			}
		}
	}

	canaries := append([]string{user, password, apiKey, clientSec, otherClient}, f.idp.Issued()...)
	// The private keys: 32-character pieces of their base64 bodies, except
	// pieces that are public too: a private key holds its modulus, which
	// the certificate (shown by design) carries as well, and at times at
	// the same base64 alignment.
	public := string(certPEM) + string(otherCert)
	for _, k := range [][]byte{keyPEM, otherKey} {
		lines := strings.Split(strings.TrimSpace(string(k)), "\n")
		for _, l := range lines[1 : len(lines)-1] {
			for i := 0; i+32 <= len(l); i += 32 {
				if piece := l[i : i+32]; !strings.Contains(public, piece) {
					canaries = append(canaries, piece)
				}
			}
		}
	}
	logs := f.logs.String()
	found := 0
	for _, c := range canaries {
		for where, text := range map[string]string{"logs": logs, "errors, failures and renderings": out.String(), "table": table.String()} {
			if strings.Contains(text, c) {
				found++
				t.Errorf("canary %.20s… found in %s", c, where)
			}
		}
	}
	t.Logf("%d canaries (5 fixed secrets, 2 private keys in pieces, %d issued tokens) × %d log bytes, %d bytes of errors/failures/renderings/audit, %d table items: %d found",
		len(canaries), len(f.idp.Issued()), len(logs), out.Len(), len(scan.Items), found)
	if !strings.Contains(logs, "credential not resolved") || !strings.Contains(logs, "token refreshed") {
		t.Fatal("the logs did not capture the scenario")
	}
}
