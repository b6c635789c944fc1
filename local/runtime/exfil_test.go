package runtime_test

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// listener is an attacker's server: it counts every request and keeps the
// Authorization headers it was sent.
type listener struct {
	*httptest.Server
	hits  atomic.Int64
	auths chan string
}

func newListener(t *testing.T) *listener {
	l := &listener{auths: make(chan string, 64)}
	l.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.hits.Add(1)
		if a := r.Header.Get("Authorization"); a != "" {
			l.auths <- a
		}
		w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(l.Close)
	return l
}

// TestSecretsStayWithTheirHosts is the attack of issue 8, tried on the real
// runtime: whoever may manage a connection tries to steer its secret to a
// listener of their own. Every attempt is refused, and the listener never
// hears from the product.
func TestSecretsStayWithTheirHosts(t *testing.T) {
	rt, logs := start(t)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, p, ok := r.BasicAuth(); !ok || p != "s3cret-of-the-member" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Write([]byte(`{"pong":true}`))
	}))
	defer target.Close()
	evil := newListener(t)

	member := login(t, rt, map[string]any{"sub": "mia", "tid": "contoso", "sites": []string{"/sites/hr/payroll"}})
	// An admin of an unrelated site collection, and a tenant admin.
	scaIT := login(t, rt, map[string]any{"sub": "ivan", "tid": "contoso", "sca": []string{"/sites/it"}})
	admin := login(t, rt, map[string]any{"sub": "alice", "tid": "contoso", "roles": []string{"tenant_admin"}})

	cr := member.do("POST", "/connections", map[string]any{"type": "http-basic", "name": "Mine", "kind": "personal",
		"settings":    map[string]any{"baseUrl": target.URL + "/api", "testPath": "/ping"},
		"credentials": map[string]any{"username": "mia", "password": "s3cret-of-the-member"}}, nil)
	member.expect(cr, 201, "create personal")
	var personal struct{ ID string }
	decode(t, cr, &personal)

	// Administrators see it and may rename or disable it, but not redirect or test it.
	for _, who := range []*client{scaIT, admin} {
		who.expect(who.do("GET", "/connections/"+personal.ID, nil, nil), 200, "admin sees a personal connection")
		who.expect(who.do("PATCH", "/connections/"+personal.ID, map[string]any{"settings": map[string]any{"baseUrl": evil.URL}}, nil), 403, "admin redirects a personal connection")
		who.expect(who.do("PATCH", "/connections/"+personal.ID, map[string]any{"settings": map[string]any{"baseUrl": evil.URL},
			"credentials": map[string]any{"username": "x", "password": "y"}}, nil), 403, "admin replaces a personal connection's credentials")
		who.expect(who.do("POST", "/connections/"+personal.ID+"/test", nil, nil), 403, "admin tests a personal connection")
	}
	admin.expect(admin.do("PATCH", "/connections/"+personal.ID, map[string]any{"name": "Renamed by IT"}, nil), 200, "admin renames")
	admin.expect(admin.do("PATCH", "/connections/"+personal.ID, map[string]any{"disabled": true}, nil), 200, "admin disables")
	tr := member.do("POST", "/connections/"+personal.ID+"/test", nil, nil)
	member.expect(tr, 200, "creator tests a disabled connection")
	if !strings.Contains(string(tr.body), `"code":"connection_disabled"`) {
		t.Errorf("test of a disabled connection: %s", tr.body)
	}
	member.expect(member.do("PATCH", "/connections/"+personal.ID, map[string]any{"disabled": false}, nil), 200, "creator enables")

	// A shared connection: a co-owner changes its host without new credentials.
	sr := admin.do("POST", "/connections", map[string]any{"type": "http-basic", "name": "Shared", "kind": "shared",
		"settings":    map[string]any{"baseUrl": target.URL + "/api", "testPath": "/ping"},
		"credentials": map[string]any{"username": "svc", "password": "s3cret-of-the-member"}}, nil)
	admin.expect(sr, 201, "create shared")
	var shared struct{ ID string }
	decode(t, sr, &shared)
	admin.expect(admin.do("PUT", "/connections/"+shared.ID+"/owners", map[string]any{"owners": []string{"alice", "ivan"}}, nil), 200, "add a co-owner")
	moved := scaIT.do("PATCH", "/connections/"+shared.ID, map[string]any{"settings": map[string]any{"baseUrl": evil.URL + "/api"}}, nil)
	scaIT.expect(moved, 409, "co-owner moves the host without credentials")
	if !strings.Contains(string(moved.body), `"code":"credentials_required"`) || !strings.Contains(string(moved.body), `"field":"settings.baseUrl"`) {
		t.Errorf("refusal: %s", moved.body)
	}
	// Same host, other port: another origin.
	scaIT.expect(scaIT.do("PATCH", "/connections/"+shared.ID, map[string]any{"settings": map[string]any{"baseUrl": strings.Replace(target.URL, "127.0.0.1", "localhost", 1) + "/api"}}, nil), 409, "another host name for the same address")
	// Changes that name no host keep the secret.
	scaIT.expect(scaIT.do("PATCH", "/connections/"+shared.ID, map[string]any{"name": "Shared (renamed)", "settings": map[string]any{"testPath": "/health", "baseUrl": target.URL + "/other"}}, nil), 200, "path-only change")
	for _, c := range []struct {
		who *client
		id  string
	}{{member, personal.ID}, {scaIT, shared.ID}} {
		r := c.who.do("POST", "/connections/"+c.id+"/test", nil, nil)
		c.who.expect(r, 200, "test")
		if strings.Contains(string(r.body), `"code":"foreign`) || !strings.Contains(string(r.body), `"target":"`+target.URL) {
			t.Errorf("test went elsewhere: %s", r.body)
		}
	}
	// With new credentials the host may change: the new secret goes there.
	ok := scaIT.do("PATCH", "/connections/"+shared.ID, map[string]any{"settings": map[string]any{"baseUrl": evil.URL + "/api"},
		"credentials": map[string]any{"username": "ivan", "password": "ivans-own-password"}}, nil)
	scaIT.expect(ok, 200, "move the host with new credentials")
	scaIT.do("POST", "/connections/"+shared.ID+"/test", nil, nil)
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("ivan:ivans-own-password"))
	select {
	case got := <-evil.auths:
		if got != want {
			t.Errorf("the listener got %q, want only the credentials entered for it", got)
		}
	default:
		t.Error("the test with the new credentials did not reach the new host")
	}
	if len(evil.auths) > 0 {
		t.Errorf("the listener got %d more credentials", len(evil.auths))
	}
	if strings.Contains(logs.String(), "s3cret-of-the-member") {
		t.Error("the logs hold the password")
	}
	checkCallsGranted(t, rt)
	checkLogLines(t, logs)
}

// TestOAuthTokensStayWithTheirHosts: moving an OAuth connection's baseUrl
// or testUrl drops its tokens (pending authorization again); the listener
// never receives a bearer token.
func TestOAuthTokensStayWithTheirHosts(t *testing.T) {
	rt, logs := start(t)
	evil := newListener(t)
	admin := login(t, rt, map[string]any{"sub": "alice", "tid": "contoso", "roles": []string{"tenant_admin"}})
	cr := admin.do("POST", "/connections", map[string]any{"type": "oauth2-generic", "name": "API", "kind": "shared",
		"settings": map[string]any{"baseUrl": rt.OAuth.Base(), "testUrl": rt.OAuth.ResourceURL()}, "credentials": map[string]any{}}, nil)
	admin.expect(cr, 201, "create")
	var c struct{ ID, AuthorizeURL string }
	decode(t, cr, &c)
	browse(t, c.AuthorizeURL)
	if r := admin.do("POST", "/connections/"+c.ID+"/test", nil, nil); !strings.Contains(string(r.body), `"code":"verified"`) {
		t.Fatalf("test before: %s", r.body)
	}
	sca := login(t, rt, map[string]any{"sub": "ivan", "tid": "contoso", "sca": []string{"/sites/it"}})
	r := sca.do("PATCH", "/connections/"+c.ID, map[string]any{"settings": map[string]any{"baseUrl": evil.URL, "testUrl": evil.URL + "/me"}}, nil)
	sca.expect(r, 200, "move an OAuth connection")
	var after struct {
		Status, StatusReason string
		Credentials          map[string]bool
	}
	decode(t, r, &after)
	if after.Status != "pending_authorization" || after.StatusReason != "destination_changed" || after.Credentials["accessToken"] {
		t.Errorf("after the move: %s", r.body)
	}
	tr := sca.do("POST", "/connections/"+c.ID+"/test", nil, nil)
	if !strings.Contains(string(tr.body), `"code":"authorization_pending"`) {
		t.Errorf("test after the move: %s", tr.body)
	}
	if n := evil.hits.Load(); n != 0 {
		t.Errorf("the listener was called %d times", n)
	}
	var dropped int
	for _, ev := range rt.Bus.Events("Connection Updated") {
		if strings.Contains(string(ev.Event.Detail), c.ID) && strings.Contains(string(ev.Event.Detail), "credentials.") {
			dropped++
		}
	}
	if dropped < 2 { // the authorization, then the drop
		t.Errorf("%d credential change events, want the authorization and the drop", dropped)
	}
	for _, tok := range rt.OAuth.Issued() {
		if strings.Contains(logs.String(), tok) {
			t.Error("the logs hold an issued token")
		}
	}
}
