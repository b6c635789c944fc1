package httpaction

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestTarget(t *testing.T) {
	tests := []struct {
		base, path string
		query      map[string]string
		want       string
		ok         bool
	}{
		{"https://api.example.com", "/v1/items", nil, "https://api.example.com/v1/items", true},
		{"https://api.example.com/base/", "/v1/items", map[string]string{"q": "a b"}, "https://api.example.com/base/v1/items?q=a+b", true},
		{"https://api.example.com/base", "/../../etc", nil, "https://api.example.com/etc", true},
		{"https://api.example.com", "//evil.example.com/x", nil, "https://api.example.com/evil.example.com/x", true},
		{"ftp://api.example.com", "/x", nil, "", false},
		{"https://user:pw@api.example.com", "/x", nil, "", false},
		{"not a url", "/x", nil, "", false},
	}
	for _, tt := range tests {
		u, err := Target(tt.base, tt.path, tt.query)
		if (err == nil) != tt.ok {
			t.Errorf("Target(%q, %q) err = %v", tt.base, tt.path, err)
			continue
		}
		if err == nil && u.String() != tt.want {
			t.Errorf("Target(%q, %q) = %s, want %s", tt.base, tt.path, u, tt.want)
		}
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		code    int
		outcome string
	}{
		{200, Succeeded}, {204, Succeeded}, {401, AuthFailed}, {403, AuthFailed},
		{404, Failed}, {400, Failed}, {408, Transient}, {429, Transient}, {500, Transient}, {503, Transient},
	}
	for _, tt := range tests {
		if got, _ := classifyStatus(tt.code); got != tt.outcome {
			t.Errorf("%d: %s, want %s", tt.code, got, tt.outcome)
		}
	}
}

const canary = "CANARY-pw-httpaction-3141"

// testCred is a credential as the resolver hands one over.
type testCred struct {
	scheme, user, value, header string
}

func (c testCred) Apply(r *http.Request) error {
	switch c.scheme {
	case "basic":
		r.SetBasicAuth(c.user, c.value)
	case "bearer":
		r.Header.Set("Authorization", "Bearer "+c.value)
	case "apiKey":
		r.Header.Set(c.header, c.value)
	}
	return nil
}

func (c testCred) Secrets() []string {
	return []string{c.user, c.value}
}

func TestDoAuthAndScrub(t *testing.T) {
	var gotAuth, gotKey string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth, gotKey = r.Header.Get("Authorization"), r.Header.Get("X-Api-Key")
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Echo", r.Header.Get("Authorization"))
		// An echoing target: puts the credentials it received in the body.
		fmt.Fprintf(w, `{"auth": %q, "key": %q, "path": %q, "q": %q, "body": %s}`, gotAuth, gotKey, r.URL.Path, r.URL.RawQuery, body)
	}))
	defer srv.Close()
	c := New(Loopback, 5*time.Second)
	tests := []struct {
		name string
		auth testCred
		want func() bool
	}{
		{"basic", testCred{scheme: "basic", user: "svc", value: canary}, func() bool {
			return gotAuth == "Basic "+base64.StdEncoding.EncodeToString([]byte("svc:"+canary))
		}},
		{"bearer", testCred{scheme: "bearer", value: canary}, func() bool { return gotAuth == "Bearer "+canary }},
		{"api key", testCred{scheme: "apiKey", header: "X-Api-Key", value: canary}, func() bool { return gotKey == canary && gotAuth == "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.Do(context.Background(), Request{BaseURL: srv.URL + "/api", Method: "POST", Path: "/items", Query: map[string]string{"a": "1"},
				Body: []byte(`{"x":1}`), Credential: tt.auth, Headers: map[string]string{"X-Trace": "t"}})
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want() {
				t.Errorf("target did not receive the credential in the %s form", tt.auth.scheme)
			}
			if res.Outcome != Succeeded || res.Status != 200 {
				t.Fatalf("result %+v", res)
			}
			if strings.Contains(string(res.Body), "CANARY") || strings.Contains(fmt.Sprint(res.Headers), "CANARY") || strings.Contains(string(res.Body), base64.StdEncoding.EncodeToString([]byte("svc:"+canary))) {
				t.Errorf("credential echoed into the result: %s %v", res.Body, res.Headers)
			}
			if !strings.Contains(string(res.Body), `"path":"/api/items"`) || !strings.Contains(string(res.Body), `"q":"a=1"`) || len(res.Withheld) != 0 {
				t.Errorf("body %s", res.Body)
			}
		})
	}
}

func TestNetworksAndRedirects(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			t.Error("credentials followed a redirect to another host")
		}
		w.WriteHeader(200)
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/elsewhere":
			http.Redirect(w, r, other.URL+"/steal", http.StatusFound)
		case "/moved":
			http.Redirect(w, r, "/here", http.StatusFound)
		case "/here":
			w.Write([]byte(`{"ok":true}`))
		case "/slow":
			time.Sleep(300 * time.Millisecond)
		case "/busy":
			w.WriteHeader(503)
		}
	}))
	defer srv.Close()
	auth := testCred{scheme: "bearer", value: canary}
	ctx := context.Background()

	if res, err := New(PublicOnly, time.Second).Do(ctx, Request{BaseURL: srv.URL, Method: "GET", Path: "/here", Credential: auth}); err != nil || res.Outcome != Failed || res.Reason != "target_not_allowed" {
		t.Errorf("loopback target in public mode: %+v %v", res, err)
	}
	c := New(Loopback, 200*time.Millisecond)
	tests := []struct {
		path, outcome, reason string
		status                int
	}{
		{"/elsewhere", Failed, "redirect_not_followed", 302},
		{"/moved", Succeeded, "", 200},
		{"/slow", Transient, "timeout", 0},
		{"/busy", Transient, "http_503", 503},
	}
	for _, tt := range tests {
		res, err := c.Do(ctx, Request{BaseURL: srv.URL, Method: "GET", Path: tt.path, Credential: auth})
		if err != nil || res.Outcome != tt.outcome || res.Reason != tt.reason || res.Status != tt.status {
			t.Errorf("%s: %+v %v; want %s %s %d", tt.path, res, err, tt.outcome, tt.reason, tt.status)
		}
	}
	if res, _ := c.Do(ctx, Request{BaseURL: "http://10.1.2.3", Method: "GET", Path: "/", Credential: auth}); res.Reason != "target_not_allowed" {
		t.Errorf("private address in loopback mode: %+v", res)
	}
	for _, ip := range []string{"169.254.169.254", "100.100.100.200", "0.0.0.0", "[::1]", "[fe80::1]"} {
		if res, _ := New(PublicOnly, time.Second).Do(ctx, Request{BaseURL: "http://" + ip, Method: "GET", Path: "/", Credential: auth}); res.Reason != "target_not_allowed" {
			t.Errorf("%s in public mode: %+v", ip, res)
		}
	}
}
