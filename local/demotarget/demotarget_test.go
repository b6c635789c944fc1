package demotarget_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/connmgr/connmgr/local/demotarget"
)

func TestTarget(t *testing.T) {
	_, srv, err := demotarget.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	do := func(method, path, body string, auth func(*http.Request)) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if auth != nil {
			auth(req)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	basic := func(u, p string) func(*http.Request) { return func(r *http.Request) { r.SetBasicAuth(u, p) } }
	key := func(k string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set(demotarget.APIKeyHeader, k) }
	}
	steps := []struct {
		name         string
		method, path string
		body         string
		auth         func(*http.Request)
		status       int
		want         string // in the body
	}{
		{"no credentials", "GET", "/api/ping", "", nil, 401, "unauthorized"},
		{"default basic", "GET", "/api/ping", "", basic(demotarget.DefaultUsername, demotarget.DefaultPassword), 200, `"auth":"basic"`},
		{"default key", "GET", "/api/ping", "", key(demotarget.DefaultAPIKey), 200, `"auth":"apiKey"`},
		{"wrong password", "GET", "/api/ping", "", basic(demotarget.DefaultUsername, "nope"), 401, ""},
		{"post an item", "POST", "/api/items", `{"n":1}`, key(demotarget.DefaultAPIKey), 201, `"item":{"n":1}`},
		{"list items", "GET", "/api/items", "", key(demotarget.DefaultAPIKey), 200, `"items":[{"n":1}]`},
		{"not JSON", "POST", "/api/items", `{`, key(demotarget.DefaultAPIKey), 400, ""},
		{"unknown path", "GET", "/api/other", "", key(demotarget.DefaultAPIKey), 404, ""},
		{"admin needs a field", "PUT", "/admin/credentials", `{}`, nil, 400, ""},
		{"admin refuses unknown fields", "PUT", "/admin/credentials", `{"pasword":"x"}`, nil, 400, ""},
		{"rotate the password", "PUT", "/admin/credentials", `{"password":"pw-2"}`, nil, 204, ""},
		{"the old password is refused", "GET", "/api/ping", "", basic(demotarget.DefaultUsername, demotarget.DefaultPassword), 401, ""},
		{"the new one works", "GET", "/api/ping", "", basic(demotarget.DefaultUsername, "pw-2"), 200, ""},
		{"the key is unchanged", "GET", "/api/ping", "", key(demotarget.DefaultAPIKey), 200, ""},
	}
	for _, s := range steps {
		status, body := do(s.method, s.path, s.body, s.auth)
		if status != s.status || !strings.Contains(body, s.want) {
			t.Errorf("%s: %d %s, want %d with %q", s.name, status, body, s.status, s.want)
		}
		if strings.Contains(body, "pw-2") || strings.Contains(body, demotarget.DefaultAPIKey) {
			t.Errorf("%s: the answer quotes a credential: %s", s.name, body)
		}
	}
}
