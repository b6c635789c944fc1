package runtime_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/connmgr/connmgr/local/clock"
	"github.com/connmgr/connmgr/local/logbuf"
	"github.com/connmgr/connmgr/local/runtime"
)

func start(t *testing.T) (*runtime.Runtime, *logbuf.Buffer) {
	t.Helper()
	logs := &logbuf.Buffer{}
	rt, err := runtime.Start(context.Background(), runtime.Options{Addr: "127.0.0.1:0", Clock: clock.New(), Log: logs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt, logs
}

func login(t *testing.T, rt *runtime.Runtime, claims map[string]any) *client {
	t.Helper()
	c := &client{t: t, base: rt.URL}
	r := c.do("POST", "/dev/token", claims, nil)
	c.expect(r, 200, "mint token")
	var tok struct{ Token string }
	decode(t, r, &tok)
	c.token = tok.Token
	return c
}

// browse follows an authorize URL as a browser would: the local provider
// approves at once and redirects to the callback page.
func browse(t *testing.T, u string) (int, string, string) {
	t.Helper()
	var last string
	hc := &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
		last = req.URL.String()
		return nil
	}}
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), last
}

// TestOAuthFlowOnOneMachine is issue 3's local flow: an oauth2-generic
// connection answers with authorizeUrl; following it makes it active; the
// callback URL cannot be replayed; the client secret never comes out.
func TestOAuthFlowOnOneMachine(t *testing.T) {
	rt, logs := start(t)
	admin := login(t, rt, map[string]any{"sub": "alice", "tid": "contoso", "roles": []string{"tenant_admin"}})

	cr := admin.do("POST", "/connections", map[string]any{"type": "oauth2-generic", "name": "Generic API", "kind": "shared", "settings": map[string]any{}, "credentials": map[string]any{}}, nil)
	admin.expect(cr, 201, "create oauth2-generic")
	var created struct {
		ID, Status, AuthorizeURL string
	}
	decode(t, cr, &created)
	if created.Status != "pending_authorization" || !strings.HasPrefix(created.AuthorizeURL, rt.OAuth.AuthorizeURL()) {
		t.Fatalf("create: %s", cr.body)
	}
	status, page, callback := browse(t, created.AuthorizeURL)
	if status != 200 || !strings.Contains(page, "Connection authorized") || !strings.HasPrefix(callback, rt.URL+"/oauth/callback?") {
		t.Fatalf("callback page: %d %s (last URL %s)\nlogs:\n%s", status, page, callback, logs.String())
	}
	var got struct {
		Status         string
		TokenExpiresAt string
	}
	gr := admin.do("GET", "/connections/"+created.ID, nil, nil)
	decode(t, gr, &got)
	if got.Status != "active" || got.TokenExpiresAt == "" {
		t.Fatalf("after authorizing: %s", gr.body)
	}
	// The authorization is a change: Connection Updated, once.
	var authorized int
	for _, r := range rt.Bus.Events("Connection Updated") {
		if strings.Contains(string(r.Event.Detail), created.ID) && strings.Contains(string(r.Event.Detail), `"reason":"authorized"`) {
			authorized++
		}
	}
	if authorized != 1 {
		t.Errorf("%d Connection Updated events for the authorization, want 1", authorized)
	}
	// The same callback again: state is single-use.
	resp, err := http.Get(callback)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || strings.Contains(string(b), "Connection authorized") {
		t.Errorf("replayed callback: %d %s", resp.StatusCode, b)
	}
	// Reconnect hands out a fresh URL that works too.
	ar := admin.do("POST", "/connections/"+created.ID+"/authorize", nil, nil)
	admin.expect(ar, 200, "reconnect")
	var again struct{ AuthorizeURL string }
	decode(t, ar, &again)
	if status, _, _ := browse(t, again.AuthorizeURL); status != 200 {
		t.Errorf("reconnect flow: %d", status)
	}
	// Test: token validity, then against a test URL on the provider's host.
	tr := admin.do("POST", "/connections/"+created.ID+"/test", nil, nil)
	admin.expect(tr, 200, "test")
	if !strings.Contains(string(tr.body), `"ok":true`) || !strings.Contains(string(tr.body), `"code":"resolved"`) {
		t.Errorf("test without a test URL: %s", tr.body)
	}
	base := rt.OAuth.Base()
	cr2 := admin.do("POST", "/connections", map[string]any{"type": "oauth2-generic", "name": "With test URL", "kind": "shared",
		"settings": map[string]any{"baseUrl": base, "testUrl": rt.OAuth.ResourceURL()}, "credentials": map[string]any{}}, nil)
	admin.expect(cr2, 201, "create with test URL")
	var c2 struct{ ID, AuthorizeURL string }
	decode(t, cr2, &c2)
	browse(t, c2.AuthorizeURL)
	tr = admin.do("POST", "/connections/"+c2.ID+"/test", nil, nil)
	if !strings.Contains(string(tr.body), `"code":"verified"`) {
		t.Errorf("test against the provider's resource: %s", tr.body)
	}
	// The client registration shows only that a secret is set.
	lr := admin.do("GET", "/oauth-clients", nil, nil)
	admin.expect(lr, 200, "list OAuth clients")
	if !strings.Contains(string(lr.body), `"clientSecretSet":true`) {
		t.Errorf("clients: %s", lr.body)
	}
	member := login(t, rt, map[string]any{"sub": "bob", "tid": "contoso", "sites": []string{"/sites/hr"}})
	member.expect(member.do("GET", "/oauth-clients", nil, nil), 403, "member lists OAuth clients")
	member.expect(member.do("POST", "/connections/"+created.ID+"/test", nil, nil), 403, "member tests a tenant connection")

	secret := rt.OAuth.ClientSecret()
	for _, c := range []*client{admin, member} {
		for _, r := range c.seen {
			if strings.Contains(string(r.body), secret) {
				t.Errorf("a response holds the client secret: %s", r.body)
			}
		}
	}
	if strings.Contains(logs.String(), secret) {
		t.Error("the logs hold the client secret")
	}
	for _, tok := range rt.OAuth.Issued() {
		if strings.Contains(logs.String(), tok) {
			t.Error("the logs hold an issued token")
		}
	}
	checkCallsGranted(t, rt)
}

// TestConnectionTest checks credentials against the connection's own host
// through the resolver.
func TestConnectionTest(t *testing.T) {
	rt, _ := start(t)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "svc" || p != "right-password" || r.URL.Path != "/api/ping" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Write([]byte(`{"pong":true}`))
	}))
	defer target.Close()
	admin := login(t, rt, map[string]any{"sub": "alice", "tid": "contoso", "roles": []string{"tenant_admin"}})
	create := func(password string) string {
		r := admin.do("POST", "/connections", map[string]any{"type": "http-basic", "name": "Target", "kind": "shared",
			"settings": map[string]any{"baseUrl": target.URL + "/api", "testPath": "/ping"}, "credentials": map[string]any{"username": "svc", "password": password}}, nil)
		admin.expect(r, 201, "create")
		var v struct{ ID string }
		decode(t, r, &v)
		return v.ID
	}
	tests := []struct {
		password, code string
		ok             bool
	}{
		{"right-password", "verified", true},
		{"wrong-password", "target_rejected_credentials_401", false},
	}
	for _, tt := range tests {
		r := admin.do("POST", "/connections/"+create(tt.password)+"/test", nil, nil)
		admin.expect(r, 200, "test")
		var res struct {
			OK          bool
			Code        string
			AuthFailure bool
			Status      int
		}
		decode(t, r, &res)
		if res.OK != tt.ok || res.Code != tt.code || res.AuthFailure == tt.ok {
			t.Errorf("password %s: %s", tt.password, r.body)
		}
		if strings.Contains(string(r.body), tt.password) {
			t.Errorf("test result holds the password: %s", r.body)
		}
	}
	checkCallsGranted(t, rt)
}
