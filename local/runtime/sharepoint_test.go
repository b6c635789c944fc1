package runtime_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/connmgr/connmgr/local/oauthprovider"
	"github.com/connmgr/connmgr/local/runtime"
)

const (
	spSite  = "https://contoso.sharepoint.com/sites/hr"
	spScope = "https://contoso.sharepoint.com/.default"
)

// resolved is the resolve function's answer for a run of alice's on
// /sites/hr.
type resolved struct {
	OK         bool
	Credential struct {
		BaseURL string
		Bearer  *struct{ AccessToken, TokenType string }
	}
	Failure struct{ Code, ProviderCode string }
	raw     string
}

func resolveOnHR(t *testing.T, rt *runtime.Runtime, id string) resolved {
	t.Helper()
	in, _ := json.Marshal(map[string]string{"tenant": "contoso", "connectionId": id, "runId": "run-sp", "stepId": "s1", "workflowId": "wf-sp", "site": "/sites/hr", "runOwner": "alice"})
	out, err := rt.Lambda.Invoke(context.Background(), "ResolveFunction", in)
	if err != nil {
		t.Fatal(err)
	}
	var r resolved
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	r.raw = string(out)
	return r
}

// TestSharePointDelegated: a sharepoint-online connection is an
// authorization code flow with PKCE for the site's SharePoint: created,
// authorized on the local provider standing in for the Microsoft identity
// platform (scope https://contoso.sharepoint.com/.default offline_access),
// then resolved to a bearer token for the site's host.
func TestSharePointDelegated(t *testing.T) {
	rt, logs := start(t)
	admin := login(t, rt, map[string]any{"sub": "alice", "tid": "contoso", "roles": []string{"tenant_admin"}})

	// What SharePoint Online refuses is refused here.
	for _, bad := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"siteUrl": "https://contoso.example.com/sites/hr"}, "settings.siteUrl"},
		{map[string]any{"siteUrl": "http://contoso.sharepoint.com/sites/hr"}, "settings.siteUrl"},
		{map[string]any{"siteUrl": spSite, "passwordExpiresAt": "2030-01-01T00:00:00Z"}, "settings.passwordExpiresAt"},
	} {
		r := admin.do("POST", "/connections", map[string]any{"type": "sharepoint-online", "name": "HR", "kind": "shared", "settings": bad.body, "credentials": map[string]any{}}, nil)
		if r.status != 400 || !strings.Contains(string(r.body), `"field":"`+bad.field+`"`) {
			t.Errorf("settings %v: %d %s", bad.body, r.status, r.body)
		}
	}
	r := admin.do("POST", "/connections", map[string]any{"type": "sharepoint-online", "name": "HR", "kind": "shared",
		"settings": map[string]any{"siteUrl": spSite}, "credentials": map[string]any{"username": "olga", "password": "legacy"}}, nil)
	if r.status != 400 || !strings.Contains(string(r.body), `"field":"credentials.`) {
		t.Errorf("a username and password: %d %s", r.status, r.body)
	}

	cr := admin.do("POST", "/connections", map[string]any{"type": "sharepoint-online", "name": "HR site", "kind": "shared",
		"settings": map[string]any{"siteUrl": spSite}, "credentials": map[string]any{}}, nil)
	admin.expect(cr, 201, "create sharepoint-online")
	var created struct{ ID, Status, AuthorizeURL string }
	decode(t, cr, &created)
	if created.Status != "pending_authorization" || !strings.HasPrefix(created.AuthorizeURL, rt.OAuth.AuthorizeURL()+"?") {
		t.Fatalf("created: %s", cr.body)
	}
	au, _ := url.Parse(created.AuthorizeURL)
	scopes := strings.Fields(au.Query().Get("scope"))
	if len(scopes) != 2 || scopes[0] != spScope || scopes[1] != "offline_access" || au.Query().Get("code_challenge_method") != "S256" || au.Query().Get("code_challenge") == "" {
		t.Fatalf("authorize URL %s", created.AuthorizeURL)
	}
	if got := resolveOnHR(t, rt, created.ID); got.OK || got.Failure.Code == "" {
		t.Fatalf("resolved before the authorization: %s", got.raw)
	}
	status, page, _ := browse(t, created.AuthorizeURL)
	if status != 200 || !strings.Contains(page, "Connection authorized") {
		t.Fatalf("callback page: %d %s\nlogs:\n%s", status, page, logs.String())
	}
	if sc := rt.OAuth.Scopes(); len(sc) == 0 || sc[len(sc)-1] != (oauthprovider.ScopeRequest{Endpoint: "authorize", Scope: spScope + " offline_access"}) {
		t.Errorf("the provider was asked for %v", sc)
	}
	var got struct{ Status, TokenExpiresAt string }
	decode(t, admin.do("GET", "/connections/"+created.ID, nil, nil), &got)
	if got.Status != "active" || got.TokenExpiresAt == "" {
		t.Fatalf("after authorizing: %+v", got)
	}
	res := resolveOnHR(t, rt, created.ID)
	if !res.OK || res.Credential.Bearer == nil || !rt.OAuth.ValidAccessToken(res.Credential.Bearer.AccessToken) ||
		res.Credential.BaseURL != "https://contoso.sharepoint.com" {
		t.Fatalf("resolve: %s", res.raw)
	}
	tr := admin.do("POST", "/connections/"+created.ID+"/test", nil, nil)
	admin.expect(tr, 200, "test")
	if !strings.Contains(string(tr.body), `"ok":true`) {
		t.Errorf("test: %s", tr.body)
	}
	// Another SharePoint host is another destination: the tokens are
	// dropped and the connection waits for a new authorization; a path on
	// the same host keeps them.
	pr := admin.do("PATCH", "/connections/"+created.ID, map[string]any{"settings": map[string]any{"siteUrl": "https://contoso.sharepoint.com/sites/finance"}}, nil)
	admin.expect(pr, 200, "another site on the host")
	if !strings.Contains(string(pr.body), `"status":"active"`) {
		t.Errorf("same host: %s", pr.body)
	}
	pr = admin.do("PATCH", "/connections/"+created.ID, map[string]any{"settings": map[string]any{"siteUrl": "https://fabrikam.sharepoint.com/sites/hr"}}, nil)
	admin.expect(pr, 200, "another host")
	if !strings.Contains(string(pr.body), `"status":"pending_authorization"`) {
		t.Errorf("another host: %s", pr.body)
	}
	for _, tok := range rt.OAuth.Issued() {
		if strings.Contains(logs.String(), tok) {
			t.Error("the logs hold an issued token")
		}
	}
	if strings.Contains(logs.String(), rt.OAuth.ClientSecret()) {
		t.Error("the logs hold the client secret")
	}
}

// TestSharePointAppOnly: a tenant administrator registers a certificate
// and its private key for sharepoint-online-app; a connection then gets
// app-only tokens with client assertions the local provider verifies. The
// wrong key is refused on entry, an untrusted certificate at the token
// endpoint, and no private key ever comes out.
func TestSharePointAppOnly(t *testing.T) {
	rt, logs := start(t)
	admin := login(t, rt, map[string]any{"sub": "alice", "tid": "contoso", "roles": []string{"tenant_admin"}})
	now := rt.Clock.Now()
	pair := func(pkcs1 bool) (string, string) {
		k, c, err := oauthprovider.GenerateCertificate("contoso app-only", now, 365*24*time.Hour, pkcs1)
		if err != nil {
			t.Fatal(err)
		}
		return string(k), string(c)
	}
	keyA, certA := pair(false)
	keyB, certB := pair(true)
	keys := []string{keyA, keyB}

	// The runtime registered its own certificate; replace it with ours.
	cur := admin.do("GET", "/oauth-clients/sharepoint-online-app", nil, nil)
	admin.expect(cur, 200, "the local registration")
	if !strings.Contains(string(cur.body), `"clientCertificateThumbprint":"`) {
		t.Errorf("registration: %s", cur.body)
	}
	reg := map[string]any{"clientId": rt.OAuth.ClientID(), "tokenUrl": rt.OAuth.TokenURL(), "clientCertificate": certA, "clientPrivateKey": keyB}
	r := admin.do("PUT", "/oauth-clients/sharepoint-online-app", reg, map[string]string{"If-Match": cur.header.Get("ETag")})
	if r.status != 400 || !strings.Contains(string(r.body), `"field":"clientPrivateKey"`) || !strings.Contains(string(r.body), `"code":"key_certificate_mismatch"`) {
		t.Fatalf("another certificate's key: %d %s", r.status, r.body)
	}
	reg["clientPrivateKey"] = keyA
	r = admin.do("PUT", "/oauth-clients/sharepoint-online-app", reg, map[string]string{"If-Match": cur.header.Get("ETag")})
	admin.expect(r, 200, "register the certificate")
	rt.OAuth.DistrustCertificates() // only ours from now on
	if err := rt.OAuth.TrustCertificate([]byte(certA)); err != nil {
		t.Fatal(err)
	}

	create := func(name string) string {
		cr := admin.do("POST", "/connections", map[string]any{"type": "sharepoint-online-app", "name": name, "kind": "shared",
			"settings": map[string]any{"siteUrl": spSite, "testPath": "/sites/hr/_api/web"}, "credentials": map[string]any{}}, nil)
		admin.expect(cr, 201, "create sharepoint-online-app")
		var c struct{ ID, Status, AuthorizeURL string }
		decode(t, cr, &c)
		if c.Status != "active" || c.AuthorizeURL != "" {
			t.Fatalf("created: %s", cr.body)
		}
		return c.ID
	}
	id := create("HR app-only")
	before := rt.OAuth.Assertions()
	res := resolveOnHR(t, rt, id)
	if !res.OK || res.Credential.Bearer == nil || !rt.OAuth.ValidAccessToken(res.Credential.Bearer.AccessToken) ||
		res.Credential.BaseURL != "https://contoso.sharepoint.com" {
		t.Fatalf("resolve: %s (refused: %v)", res.raw, rt.OAuth.RefusedAssertions())
	}
	if rt.OAuth.Assertions() != before+1 {
		t.Errorf("%d client assertions verified for one token", rt.OAuth.Assertions()-before)
	}
	if sc := rt.OAuth.Scopes(); len(sc) == 0 || sc[len(sc)-1] != (oauthprovider.ScopeRequest{Endpoint: "token", Scope: spScope}) {
		t.Errorf("the provider was asked for %v", sc)
	}
	var got struct{ Status, TokenExpiresAt string }
	decode(t, admin.do("GET", "/connections/"+id, nil, nil), &got)
	if got.Status != "active" || got.TokenExpiresAt == "" {
		t.Errorf("after the first token: %+v", got)
	}

	// A valid pair the provider does not know: every new token is refused.
	cur = admin.do("GET", "/oauth-clients/sharepoint-online-app", nil, nil)
	reg["clientCertificate"], reg["clientPrivateKey"] = certB, keyB
	admin.expect(admin.do("PUT", "/oauth-clients/sharepoint-online-app", reg, map[string]string{"If-Match": cur.header.Get("ETag")}), 200, "register another certificate")
	refused := len(rt.OAuth.RefusedAssertions())
	id2 := create("HR app-only 2")
	res = resolveOnHR(t, rt, id2)
	if res.OK || res.Failure.ProviderCode != "invalid_client" {
		t.Fatalf("an untrusted certificate: %s", res.raw)
	}
	if len(rt.OAuth.RefusedAssertions()) <= refused {
		t.Error("the provider refused no assertion")
	}
	tr := admin.do("POST", "/connections/"+id2+"/test", nil, nil)
	admin.expect(tr, 200, "test")
	if strings.Contains(string(tr.body), `"ok":true`) {
		t.Errorf("test with an untrusted certificate: %s", tr.body)
	}

	// No private key anywhere: responses, logs, events, resolver answers.
	texts := map[string]string{"logs": logs.String(), "resolve": res.raw}
	for _, r := range admin.seen {
		texts["responses"] += string(r.body) + "\n"
	}
	for _, rec := range rt.Bus.Events("") {
		texts["events"] += string(rec.Event.Detail)
	}
	found := 0
	for where, text := range texts {
		for _, k := range keys {
			for _, line := range strings.Split(strings.TrimSpace(k), "\n") {
				if len(line) >= 32 && !strings.HasPrefix(line, "-----") && strings.Contains(text, line[:32]) {
					found++
					t.Errorf("a private key in %s", where)
					break
				}
			}
		}
	}
	t.Logf("2 private keys searched in %d responses, %d log bytes and the events: %d found", len(admin.seen), len(logs.String()), found)
}
