package devauth_test

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/connmgr/connmgr/local/clock"
	"github.com/connmgr/connmgr/local/devauth"
	"github.com/connmgr/connmgr/local/gateway"
	"github.com/connmgr/connmgr/shared/identity"
)

func TestTokenEndpoint(t *testing.T) {
	clk := clock.Fixed(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	s, err := devauth.New(clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	verifier := &gateway.JWT{Issuer: devauth.Issuer, Audience: []string{devauth.Audience}, Key: s.PublicKey}
	now := clk.Now()
	tests := []struct {
		name    string
		method  string
		body    string
		status  int
		claims  map[string]string // subset expected after verification
		message string            // substring of the error message
	}{
		{name: "tenant admin", body: `{"sub":"alice","tid":"contoso","roles":["tenant_admin"]}`, status: 200,
			claims: map[string]string{"sub": "alice", "tid": "contoso", "roles": "[tenant_admin]", "iss": devauth.Issuer, "aud": devauth.Audience,
				"iat": fmt.Sprint(now.Unix()), "exp": fmt.Sprint(now.Add(devauth.DefaultTTL).Unix())}},
		{name: "site paths and empty arrays", body: `{"sub":"bob","tid":"contoso","sca":[],"sites":["/sites/My%20Site","/sites/hr"]}`, status: 200,
			claims: map[string]string{"sca": "[]", "sites": "[/sites/My%20Site /sites/hr]"}},
		{name: "explicit exp", body: fmt.Sprintf(`{"sub":"a","tid":"t","exp":%d}`, now.Add(time.Minute).Unix()), status: 200,
			claims: map[string]string{"exp": fmt.Sprint(now.Add(time.Minute).Unix())}},
		{name: "iss and aud are always local", body: `{"sub":"a","tid":"t","iss":"https://evil","aud":"x"}`, status: 200,
			claims: map[string]string{"iss": devauth.Issuer, "aud": devauth.Audience}},
		{name: "no sub", body: `{"tid":"contoso"}`, status: 400, message: "sub is required"},
		{name: "no tid", body: `{"sub":"alice"}`, status: 400, message: "tid is required"},
		{name: "empty sub", body: `{"sub":" ","tid":"contoso"}`, status: 400, message: "sub is required"},
		{name: "roles not an array", body: `{"sub":"a","tid":"t","roles":"tenant_admin"}`, status: 400, message: "roles must be an array"},
		{name: "site path with a space", body: `{"sub":"a","tid":"t","sites":["/sites/my site"]}`, status: 400, message: "%20"},
		{name: "exp not a number", body: `{"sub":"a","tid":"t","exp":"tomorrow"}`, status: 400, message: "exp must be a number"},
		{name: "not JSON", body: `sub=alice`, status: 400, message: "JSON object"},
		{name: "array body", body: `[]`, status: 400, message: "JSON object"},
		{name: "two values", body: `{"sub":"a","tid":"t"} {}`, status: 400, message: "more than one"},
		{name: "GET", method: "GET", status: 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = "POST"
			}
			w := httptest.NewRecorder()
			s.ServeHTTP(w, httptest.NewRequest(method, devauth.TokenPath, strings.NewReader(tt.body)))
			if w.Code != tt.status {
				t.Fatalf("status %d %s, want %d", w.Code, w.Body, tt.status)
			}
			var out struct{ Token, ExpiresAt, Message string }
			if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
				t.Fatalf("body %s: %v", w.Body, err)
			}
			if tt.status != 200 {
				if !strings.Contains(out.Message, tt.message) {
					t.Errorf("message %q does not mention %q", out.Message, tt.message)
				}
				return
			}
			got, err := verifier.Verify([]string{"Bearer " + out.Token}, now)
			if err != nil {
				t.Fatalf("the gateway rejects the minted token: %v", err)
			}
			for k, want := range tt.claims {
				if got.Claims[k] != want {
					t.Errorf("claim %s = %q, want %q", k, got.Claims[k], want)
				}
			}
		})
	}
}

func TestPersonas(t *testing.T) {
	s, err := devauth.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	verifier := &gateway.JWT{Issuer: devauth.Issuer, Audience: []string{devauth.Audience}, Key: s.PublicKey}
	want := map[string]func(identity.Caller) bool{
		"tenant-admin":          func(c identity.Caller) bool { return c.TenantAdmin },
		"site-collection-admin": func(c identity.Caller) bool { return c.AdministersCollection("/sites/hr") && !c.TenantAdmin },
		"site-owner":            func(c identity.Caller) bool { return c.OwnsSite("/sites/hr/payroll") && !c.SeesAll() },
		"member": func(c identity.Caller) bool {
			return c.CanAccessSite("/sites/hr/payroll") && !c.OwnsSite("/sites/hr/payroll") && !c.SeesAll()
		},
	}
	for _, p := range devauth.Personas() {
		tok, _, err := s.Mint(p.Claims)
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		jwt, err := verifier.Verify([]string{"Bearer " + tok}, time.Now())
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		c, err := identity.FromClaims(jwt.Claims)
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		if c.Tenant != "contoso" {
			t.Errorf("%s: tenant %q", p.Name, c.Tenant)
		}
		check, ok := want[p.Name]
		if !ok {
			t.Errorf("unexpected persona %s", p.Name)
			continue
		}
		if !check(c) {
			t.Errorf("%s: caller %+v does not have the persona's rights", p.Name, c)
		}
		delete(want, p.Name)
	}
	for name := range want {
		t.Errorf("persona %s is missing", name)
	}
}

func TestOtherSignerRejected(t *testing.T) {
	a, _ := devauth.New(nil)
	b, _ := devauth.New(nil)
	tok, _, err := b.Mint(devauth.Claims{"sub": "a", "tid": "t"})
	if err != nil {
		t.Fatal(err)
	}
	verifier := &gateway.JWT{Issuer: devauth.Issuer, Audience: []string{devauth.Audience}, Key: a.PublicKey}
	if _, err := verifier.Verify([]string{"Bearer " + tok}, time.Now()); err == nil {
		t.Error("a token of another run's key was accepted")
	}
}
