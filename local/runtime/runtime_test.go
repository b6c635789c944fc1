package runtime_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/connmgr/connmgr/local/clock"
	"github.com/connmgr/connmgr/local/logbuf"
	"github.com/connmgr/connmgr/local/runtime"
)

type response struct {
	status int
	header http.Header
	body   []byte
}

// client talks to the runtime over real HTTP and keeps every response for
// the leak check.
type client struct {
	t     *testing.T
	base  string
	token string
	seen  []response
}

func (c *client) do(method, path string, body any, headers map[string]string) response {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	out := response{status: resp.StatusCode, header: resp.Header, body: b}
	c.seen = append(c.seen, out)
	return out
}

func (c *client) expect(r response, status int, what string) {
	c.t.Helper()
	if r.status != status {
		c.t.Fatalf("%s: status %d %s, want %d", what, r.status, r.body, status)
	}
}

func decode(t *testing.T, r response, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// TestDevSmoke is `make dev` in-process: start the runtime on a free port,
// mint a token through /dev/token, and run a connection through its life
// over real HTTP; the password must never come back out.
func TestDevSmoke(t *testing.T) {
	const canary = "canary-Pa55word-7f3c9e"
	const canary2 = "canary-rotated-41d2aa"
	logs := &logbuf.Buffer{}
	clk := clock.New()
	ctx := context.Background()
	rt, err := runtime.Start(ctx, runtime.Options{Addr: "127.0.0.1:0", Clock: clk, Log: logs})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()

	var banner bytes.Buffer
	if err := rt.Banner(&banner); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{rt.URL, rt.Stack.DynamoDB.URL, rt.Stack.KMS.URL, "tenant-admin", "site-collection-admin", "site-owner", "member", "curl -s -H 'Authorization: Bearer "} {
		if !strings.Contains(banner.String(), want) {
			t.Errorf("the start-up banner lacks %q", want)
		}
	}

	c := &client{t: t, base: rt.URL}
	// No token: API Gateway's own 401, the function never runs.
	r := c.do("GET", "/connections", nil, nil)
	if r.status != 401 || string(r.body) != `{"message":"Unauthorized"}` {
		t.Fatalf("without a token: %d %s", r.status, r.body)
	}
	c.expect(c.do("POST", "/dev/token", map[string]any{"sub": "alice"}, nil), 400, "token without tid")

	tr := c.do("POST", "/dev/token", map[string]any{"sub": "alice@contoso", "tid": "contoso", "roles": []string{"tenant_admin"}}, nil)
	c.expect(tr, 200, "mint token")
	var tok struct{ Token string }
	decode(t, tr, &tok)
	c.token = tok.Token

	// Create.
	cr := c.do("POST", "/connections", map[string]any{
		"type": "http-basic", "name": "Billing API", "kind": "shared",
		"settings":    map[string]any{"baseUrl": "https://api.example.com"},
		"credentials": map[string]string{"username": "u", "password": canary},
	}, map[string]string{"Idempotency-Key": "smoke-1"})
	c.expect(cr, 201, "create")
	var created struct {
		ID          string
		Name        string
		Credentials map[string]bool
	}
	decode(t, cr, &created)
	if created.ID == "" || !created.Credentials["password"] || cr.header.Get("ETag") != `"1"` || cr.header.Get("Location") != "/connections/"+created.ID {
		t.Fatalf("create: %s %v", cr.body, cr.header)
	}

	// Read.
	gr := c.do("GET", "/connections/"+created.ID, nil, nil)
	c.expect(gr, 200, "get")
	etag := gr.header.Get("ETag")

	// List.
	lr := c.do("GET", "/connections?limit=10", nil, nil)
	c.expect(lr, 200, "list")
	var list struct{ Items []struct{ ID string } }
	decode(t, lr, &list)
	if len(list.Items) != 1 || list.Items[0].ID != created.ID {
		t.Fatalf("list: %s", lr.body)
	}

	// Update with If-Match, then a stale If-Match is refused.
	ur := c.do("PATCH", "/connections/"+created.ID, map[string]any{
		"name": "Billing API v2", "credentials": map[string]string{"username": "u", "password": canary2},
	}, map[string]string{"If-Match": etag})
	c.expect(ur, 200, "update")
	if ur.header.Get("ETag") == etag {
		t.Fatalf("update kept ETag %s", etag)
	}
	c.expect(c.do("PATCH", "/connections/"+created.ID, map[string]any{"name": "x"}, map[string]string{"If-Match": etag}), 412, "update with a stale ETag")

	// Delete with the current ETag.
	c.expect(c.do("DELETE", "/connections/"+created.ID, nil, map[string]string{"If-Match": ur.header.Get("ETag")}), 204, "delete")
	c.expect(c.do("GET", "/connections/"+created.ID, nil, nil), 404, "get after delete")

	// Moving the runtime's clock does not age identity tokens (they live
	// on the clock's base); a token past its own exp is refused.
	clk.Advance(240 * time.Hour)
	c.expect(c.do("GET", "/connections", nil, nil), 200, "ten days on the runtime's clock, with the same token")
	expired := &client{t: t, base: rt.URL}
	r = expired.do("POST", "/dev/token", map[string]any{"sub": "alice", "tid": "contoso", "exp": clk.Base().Add(-time.Minute).Unix()}, nil)
	expired.expect(r, 200, "mint an expired token")
	var old struct{ Token string }
	decode(t, r, &old)
	expired.token = old.Token
	expired.expect(expired.do("GET", "/connections", nil, nil), 401, "a token past its exp")

	for _, resp := range c.seen {
		for _, secret := range []string{canary, canary2} {
			if bytes.Contains(resp.body, []byte(secret)) {
				t.Errorf("a %d response body holds the password: %s", resp.status, resp.body)
			}
			for k, vs := range resp.header {
				if strings.Contains(strings.Join(vs, ","), secret) {
					t.Errorf("response header %s holds the password", k)
				}
			}
		}
	}
	out := logs.String()
	if !strings.Contains(out, `"route":"POST /connections"`) {
		t.Errorf("logs lack the function's request lines:\n%s", out)
	}
	for _, secret := range []string{canary, canary2, tok.Token[len(tok.Token)-24:]} {
		if strings.Contains(out, secret) {
			t.Errorf("logs hold a secret (%q...):\n%s", secret[:8], out)
		}
	}
}

func TestStartRejectsNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:3000"} {
		if rt, err := runtime.Start(context.Background(), runtime.Options{Addr: addr, Log: io.Discard}); err == nil {
			rt.Close()
			t.Errorf("Start(%q) succeeded", addr)
		}
	}
}
