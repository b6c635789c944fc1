package gateway_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/golang-jwt/jwt/v5"

	"github.com/connmgr/connmgr/local/clock"
	"github.com/connmgr/connmgr/local/gateway"
	"github.com/connmgr/connmgr/local/sam"
	"github.com/connmgr/connmgr/shared/httpapi"
	"github.com/connmgr/connmgr/shared/identity"
)

const (
	testIssuer   = "https://login.test/tenant/v2.0"
	testAudience = "api://connmgr"
	testKID      = "k1"
)

var (
	keyOnce sync.Once
	rsaKey  *rsa.PrivateKey
	otherRS *rsa.PrivateKey
)

func keys(t *testing.T) (*rsa.PrivateKey, *rsa.PrivateKey) {
	t.Helper()
	keyOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if otherRS, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return rsaKey, otherRS
}

// env is a gateway over a recording function.
type env struct {
	t     *testing.T
	gw    *gateway.Gateway
	clock *clock.Clock
	logs  *bytes.Buffer
	mu    sync.Mutex
	calls []events.APIGatewayV2HTTPRequest
	reply func(events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)
}

var testRoutes = []sam.Route{
	{Method: "GET", Path: "/connections/{id}", Authorizer: "JwtAuthorizer"},
	{Method: "GET", Path: "/connections", Authorizer: "JwtAuthorizer"},
	{Method: "POST", Path: "/upload", Authorizer: "JwtAuthorizer"},
	{Method: "GET", Path: "/scoped", Authorizer: "JwtAuthorizer", Scopes: []string{"connections.read"}},
	{Method: "GET", Path: "/oauth/callback", Authorizer: "NONE", Public: true},
}

func newEnv(t *testing.T) *env {
	t.Helper()
	key, _ := keys(t)
	e := &env{t: t, clock: clock.Fixed(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)), logs: &bytes.Buffer{}}
	e.reply = func(events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Headers: map[string]string{"Content-Type": "application/json"}, Body: `{"ok":true}`}, nil
	}
	var err error
	e.gw, err = gateway.New(gateway.Config{
		Functions: []gateway.Function{{Name: "connections", Routes: testRoutes, Handler: e.handle}},
		JWT: &gateway.JWT{Issuer: testIssuer, Audience: []string{testAudience, "other-audience"}, Key: func(kid string) (crypto.PublicKey, error) {
			if kid != testKID {
				return nil, fmt.Errorf("no key %q", kid)
			}
			return &key.PublicKey, nil
		}},
		Now:       e.clock.Now,
		Log:       slog.New(slog.NewJSONHandler(e.logs, nil)),
		AccountID: "111122223333",
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) handle(_ context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	e.mu.Lock()
	e.calls = append(e.calls, ev)
	e.mu.Unlock()
	return e.reply(ev)
}

func (e *env) invocations() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.calls)
}

func (e *env) last() events.APIGatewayV2HTTPRequest {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.calls) == 0 {
		e.t.Fatal("the function was not invoked")
	}
	return e.calls[len(e.calls)-1]
}

// token signs claims with the trusted key, filling iss, aud, iat and exp
// unless claims set them (nil deletes).
func (e *env) token(claims jwt.MapClaims) string {
	e.t.Helper()
	key, _ := keys(e.t)
	return sign(e.t, jwt.SigningMethodRS256, key, testKID, e.fill(claims))
}

func (e *env) fill(claims jwt.MapClaims) jwt.MapClaims {
	now := e.clock.Now()
	c := jwt.MapClaims{"iss": testIssuer, "aud": testAudience, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "sub": "alice", "tid": "contoso"}
	for k, v := range claims {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

func sign(t *testing.T, m jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type request struct {
	method, target string
	headers        http.Header
	body           []byte
}

func (e *env) do(r request) *httptest.ResponseRecorder {
	e.t.Helper()
	req := httptest.NewRequest(r.method, r.target, bytes.NewReader(r.body))
	for k, vs := range r.headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if r.body == nil {
		req.ContentLength = 0
	}
	req.Header.Set("User-Agent", "gateway-test/1.0")
	w := httptest.NewRecorder()
	e.gw.ServeHTTP(w, req)
	return w
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func TestEventBuilding(t *testing.T) {
	tests := []struct {
		name   string
		claims jwt.MapClaims // nil: no token
		req    request
		check  func(t *testing.T, ev events.APIGatewayV2HTTPRequest)
	}{
		{
			name: "path parameter with %20 is decoded, rawPath too",
			req:  request{method: "GET", target: "/connections/a%20b"},
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest) {
				eq(t, "routeKey", ev.RouteKey, "GET /connections/{id}")
				eq(t, "requestContext.routeKey", ev.RequestContext.RouteKey, "GET /connections/{id}")
				eq(t, "pathParameters", ev.PathParameters, map[string]string{"id": "a b"})
				eq(t, "rawPath", ev.RawPath, "/connections/a b")
				eq(t, "requestContext.http.path", ev.RequestContext.HTTP.Path, "/connections/a b")
				eq(t, "queryStringParameters", ev.QueryStringParameters, map[string]string(nil))
			},
		},
		{
			name: "query: decoded, repeated values joined with commas, raw string kept",
			req:  request{method: "GET", target: "/connections?limit=5&type=a&type=b&q=x%20y&empty="},
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest) {
				eq(t, "rawQueryString", ev.RawQueryString, "limit=5&type=a&type=b&q=x%20y&empty=")
				eq(t, "queryStringParameters", ev.QueryStringParameters, map[string]string{"limit": "5", "type": "a,b", "q": "x y", "empty": ""})
				eq(t, "pathParameters", ev.PathParameters, map[string]string(nil))
			},
		},
		{
			name: "headers lower-cased, repeated ones joined; cookies moved out",
			req: request{method: "GET", target: "/connections", headers: http.Header{
				"X-Multi":    {"a", "b"},
				"Accept":     {"application/json"},
				"Cookie":     {"a=1; b=2", "c=3"},
				"If-Match":   {`"3"`},
				"X-Trace-Id": {"t-1"},
			}},
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest) {
				eq(t, "x-multi", ev.Headers["x-multi"], "a,b")
				eq(t, "accept", ev.Headers["accept"], "application/json")
				eq(t, "if-match", ev.Headers["if-match"], `"3"`)
				eq(t, "x-trace-id", ev.Headers["x-trace-id"], "t-1")
				eq(t, "cookies", ev.Cookies, []string{"a=1", "b=2", "c=3"})
				for k := range ev.Headers {
					if k != strings.ToLower(k) {
						t.Errorf("header %q is not lower-cased", k)
					}
				}
				if _, ok := ev.Headers["cookie"]; ok {
					t.Error("the cookie header stayed in headers; API Gateway moves it to cookies")
				}
				eq(t, "host", ev.Headers["host"], "example.com")
				eq(t, "x-forwarded-for", ev.Headers["x-forwarded-for"], "192.0.2.1")
			},
		},
		{
			name: "binary body is base64-encoded",
			req:  request{method: "POST", target: "/upload", headers: http.Header{"Content-Type": {"application/octet-stream"}}, body: []byte{0, 1, 2, 0xff}},
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest) {
				eq(t, "isBase64Encoded", ev.IsBase64Encoded, true)
				eq(t, "body", ev.Body, base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 0xff}))
			},
		},
		{
			name: "body without a content type is base64-encoded",
			req:  request{method: "POST", target: "/upload", body: []byte("plain")},
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest) {
				eq(t, "isBase64Encoded", ev.IsBase64Encoded, true)
				eq(t, "body", ev.Body, base64.StdEncoding.EncodeToString([]byte("plain")))
			},
		},
		{
			name: "JSON body is passed as text",
			req:  request{method: "POST", target: "/upload", headers: http.Header{"Content-Type": {"application/json; charset=utf-8"}}, body: []byte(`{"a":"é"}`)},
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest) {
				eq(t, "isBase64Encoded", ev.IsBase64Encoded, false)
				eq(t, "body", ev.Body, `{"a":"é"}`)
				eq(t, "content-length", ev.Headers["content-length"], "10")
			},
		},
		{
			name: "problem+json and text bodies are text",
			req:  request{method: "POST", target: "/upload", headers: http.Header{"Content-Type": {"application/merge-patch+json"}}, body: []byte(`{}`)},
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest) {
				eq(t, "isBase64Encoded", ev.IsBase64Encoded, false)
			},
		},
		{
			name: "claims flattened as the JWT authorizer does",
			claims: jwt.MapClaims{
				"roles": []string{identity.RoleTenantAdmin},
				"sca":   []string{},
				"owns":  []string{"/sites/My%20Site"},
				"sites": []string{"/sites/My%20Site", "/sites/hr"},
				"scope": "connections.read connections.write",
			},
			req: request{method: "GET", target: "/connections"},
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest) {
				if ev.RequestContext.Authorizer == nil || ev.RequestContext.Authorizer.JWT == nil {
					t.Fatal("requestContext.authorizer.jwt is missing")
				}
				c := ev.RequestContext.Authorizer.JWT.Claims
				now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
				eq(t, "claims", c, map[string]string{
					"sub": "alice", "tid": "contoso", "iss": testIssuer, "aud": testAudience,
					"iat": fmt.Sprint(now.Unix()), "exp": fmt.Sprint(now.Add(time.Hour).Unix()),
					"roles": "[tenant_admin]", "sca": "[]", "owns": "[/sites/My%20Site]",
					"sites": "[/sites/My%20Site /sites/hr]", "scope": "connections.read connections.write",
				})
				eq(t, "scopes", ev.RequestContext.Authorizer.JWT.Scopes, []string{"connections.read", "connections.write"})
				caller, err := identity.FromClaims(c)
				if err != nil {
					t.Fatalf("identity.FromClaims: %v", err)
				}
				eq(t, "caller", caller, identity.Caller{
					Tenant: "contoso", User: "alice", TenantAdmin: true,
					OwnedSites: []string{"/sites/my%20site"}, Sites: []string{"/sites/my%20site", "/sites/hr"},
				})
			},
		},
		{
			name:   "array audience and numeric claims",
			claims: jwt.MapClaims{"aud": []string{"x", testAudience}, "ver": 2.5, "mfa": true, "ctx": map[string]any{"k": "v"}},
			req:    request{method: "GET", target: "/connections"},
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest) {
				c := ev.RequestContext.Authorizer.JWT.Claims
				eq(t, "aud", c["aud"], "[x "+testAudience+"]")
				eq(t, "ver", c["ver"], "2.5")
				eq(t, "mfa", c["mfa"], "true")
				eq(t, "ctx", c["ctx"], `{"k":"v"}`)
			},
		},
		{
			name: "request context",
			req:  request{method: "GET", target: "/oauth/callback?code=abc&state=xyz"},
			check: func(t *testing.T, ev events.APIGatewayV2HTTPRequest) {
				now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
				eq(t, "version", ev.Version, "2.0")
				rc := ev.RequestContext
				eq(t, "stage", rc.Stage, "$default")
				eq(t, "accountId", rc.AccountID, "111122223333")
				eq(t, "apiId", rc.APIID, "local")
				eq(t, "time", rc.Time, "01/Mar/2026:12:00:00 +0000")
				eq(t, "timeEpoch", rc.TimeEpoch, now.UnixMilli())
				eq(t, "http.method", rc.HTTP.Method, "GET")
				eq(t, "http.protocol", rc.HTTP.Protocol, "HTTP/1.1")
				eq(t, "http.sourceIp", rc.HTTP.SourceIP, "192.0.2.1")
				eq(t, "http.userAgent", rc.HTTP.UserAgent, "gateway-test/1.0")
				eq(t, "domainName", rc.DomainName, "example.com")
				if rc.RequestID == "" {
					t.Error("requestId is empty")
				}
				if rc.Authorizer != nil {
					t.Errorf("a public route got an authorizer context: %+v", rc.Authorizer)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.claims != nil {
				if tt.req.headers == nil {
					tt.req.headers = http.Header{}
				}
				tt.req.headers.Set("Authorization", "Bearer "+e.token(tt.claims))
			} else if !strings.HasPrefix(tt.req.target, "/oauth/") {
				if tt.req.headers == nil {
					tt.req.headers = http.Header{}
				}
				tt.req.headers.Set("Authorization", "Bearer "+e.token(nil))
			}
			w := e.do(tt.req)
			if w.Code != 200 {
				t.Fatalf("status %d, body %s", w.Code, w.Body)
			}
			ev := e.last()
			eq(t, "response apigw-requestid = requestContext.requestId", w.Header().Get("Apigw-Requestid"), ev.RequestContext.RequestID)
			tt.check(t, ev)
		})
	}
}

func TestJWTRejected(t *testing.T) {
	_, other := keys(t)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		header      func(e *env) []string // nil slice: no header
		description string                // expected in www-authenticate, "" for none
	}{
		{"missing Authorization header", func(e *env) []string { return nil }, ""},
		{"empty Authorization header", func(e *env) []string { return []string{""} }, ""},
		{"not a JWT", func(e *env) []string { return []string{"Bearer not-a-token"} }, "the token is malformed"},
		{"Basic scheme", func(e *env) []string { return []string{"Basic dXNlcjpwYXNz"} }, "the token is malformed"},
		{"garbage segments", func(e *env) []string { return []string{"Bearer a.b.c"} }, "the token is malformed"},
		{"bad signature (other key, same kid)", func(e *env) []string {
			return []string{"Bearer " + sign(e.t, jwt.SigningMethodRS256, other, testKID, e.fill(nil))}
		}, "signature is invalid"},
		{"tampered payload", func(e *env) []string {
			parts := strings.Split(e.token(nil), ".")
			parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"mallory","tid":"contoso","iss":"` + testIssuer + `","aud":"` + testAudience + `","exp":4102444800}`))
			return []string{"Bearer " + strings.Join(parts, ".")}
		}, "signature is invalid"},
		{"unknown kid", func(e *env) []string {
			key, _ := keys(e.t)
			return []string{"Bearer " + sign(e.t, jwt.SigningMethodRS256, key, "k2", e.fill(nil))}
		}, "the token's algorithm or key id is not accepted"},
		{"no kid", func(e *env) []string {
			key, _ := keys(e.t)
			return []string{"Bearer " + sign(e.t, jwt.SigningMethodRS256, key, "", e.fill(nil))}
		}, "the token's algorithm or key id is not accepted"},
		{"ES256 (API Gateway accepts RSA only)", func(e *env) []string {
			return []string{"Bearer " + sign(e.t, jwt.SigningMethodES256, ecKey, testKID, e.fill(nil))}
		}, "the token's algorithm or key id is not accepted"},
		{"alg none", func(e *env) []string {
			return []string{"Bearer " + sign(e.t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, testKID, e.fill(nil))}
		}, "the token's algorithm or key id is not accepted"},
		{"HS256", func(e *env) []string {
			return []string{"Bearer " + sign(e.t, jwt.SigningMethodHS256, []byte("secret"), testKID, e.fill(nil))}
		}, "the token's algorithm or key id is not accepted"},
		{"wrong issuer", func(e *env) []string {
			return []string{"Bearer " + e.token(jwt.MapClaims{"iss": "https://evil.test"})}
		}, "the token does not have a valid issuer"},
		{"wrong audience", func(e *env) []string {
			return []string{"Bearer " + e.token(jwt.MapClaims{"aud": "someone-else"})}
		}, "the token does not have a valid audience"},
		{"no aud, wrong client_id", func(e *env) []string {
			return []string{"Bearer " + e.token(jwt.MapClaims{"aud": nil, "client_id": "someone-else"})}
		}, "the token does not have a valid audience"},
		{"no exp", func(e *env) []string {
			return []string{"Bearer " + e.token(jwt.MapClaims{"exp": nil})}
		}, "the token is missing a required claim"},
		{"expired", func(e *env) []string {
			return []string{"Bearer " + e.token(jwt.MapClaims{"exp": e.clock.Now().Add(-time.Second).Unix()})}
		}, "the token has expired"},
		{"not valid yet (nbf)", func(e *env) []string {
			return []string{"Bearer " + e.token(jwt.MapClaims{"nbf": e.clock.Now().Add(time.Minute).Unix()})}
		}, "the token is not valid yet"},
		{"issued in the future (iat)", func(e *env) []string {
			return []string{"Bearer " + e.token(jwt.MapClaims{"iat": e.clock.Now().Add(time.Minute).Unix()})}
		}, "the token is not valid yet"},
		{"two Authorization headers", func(e *env) []string {
			return []string{"Bearer " + e.token(nil), "Bearer " + e.token(nil)}
		}, "the token is malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			w := e.do(request{method: "GET", target: "/connections/x", headers: http.Header{"Authorization": tt.header(e)}})
			assertUnauthorized(t, w)
			if got := w.Header().Get("Www-Authenticate"); tt.description != "" && !strings.Contains(got, `error_description="`+tt.description+`"`) {
				t.Errorf("www-authenticate = %q, want the description %q", got, tt.description)
			}
			if n := e.invocations(); n != 0 {
				t.Errorf("the function was invoked %d times for a rejected token", n)
			}
		})
	}
}

func assertUnauthorized(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	if w.Code != http.StatusUnauthorized || w.Body.String() != `{"message":"Unauthorized"}` {
		t.Errorf("got %d %s, want 401 {\"message\":\"Unauthorized\"}", w.Code, w.Body)
	}
}

func TestJWTAccepted(t *testing.T) {
	tests := []struct {
		name   string
		header func(e *env) string
	}{
		{"Bearer prefix", func(e *env) string { return "Bearer " + e.token(nil) }},
		{"lower-case bearer", func(e *env) string { return "bearer " + e.token(nil) }},
		{"token alone", func(e *env) string { return e.token(nil) }},
		{"second configured audience", func(e *env) string { return "Bearer " + e.token(jwt.MapClaims{"aud": "other-audience"}) }},
		{"client_id when aud is absent", func(e *env) string {
			return "Bearer " + e.token(jwt.MapClaims{"aud": nil, "client_id": testAudience})
		}},
		{"nbf in the past", func(e *env) string {
			return "Bearer " + e.token(jwt.MapClaims{"nbf": e.clock.Now().Add(-time.Minute).Unix()})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			w := e.do(request{method: "GET", target: "/connections", headers: http.Header{"Authorization": {tt.header(e)}}})
			if w.Code != 200 {
				t.Fatalf("status %d %s (www-authenticate %q)", w.Code, w.Body, w.Header().Get("Www-Authenticate"))
			}
		})
	}
}

func TestExpiresWhenClockAdvances(t *testing.T) {
	e := newEnv(t)
	tok := e.token(jwt.MapClaims{"exp": e.clock.Now().Add(time.Hour).Unix()})
	if w := e.do(request{method: "GET", target: "/connections", headers: bearer(tok)}); w.Code != 200 {
		t.Fatalf("fresh token: status %d %s", w.Code, w.Body)
	}
	e.clock.Advance(59 * time.Minute)
	if w := e.do(request{method: "GET", target: "/connections", headers: bearer(tok)}); w.Code != 200 {
		t.Fatalf("after 59 minutes: status %d %s", w.Code, w.Body)
	}
	e.clock.Advance(time.Minute)
	w := e.do(request{method: "GET", target: "/connections", headers: bearer(tok)})
	assertUnauthorized(t, w)
	if !strings.Contains(w.Header().Get("Www-Authenticate"), "the token has expired") {
		t.Errorf("www-authenticate = %q", w.Header().Get("Www-Authenticate"))
	}
	if n := e.invocations(); n != 2 {
		t.Errorf("invocations = %d, want 2", n)
	}
}

func TestScopes(t *testing.T) {
	e := newEnv(t)
	w := e.do(request{method: "GET", target: "/scoped", headers: bearer(e.token(nil))})
	if w.Code != http.StatusForbidden || w.Body.String() != `{"message":"Forbidden"}` {
		t.Errorf("without the scope: %d %s, want 403 Forbidden", w.Code, w.Body)
	}
	w = e.do(request{method: "GET", target: "/scoped", headers: bearer(e.token(jwt.MapClaims{"scp": []string{"connections.read"}}))})
	if w.Code != 200 {
		t.Errorf("with the scope: %d %s", w.Code, w.Body)
	}
}

func TestPublicRouteNeedsNoToken(t *testing.T) {
	e := newEnv(t)
	w := e.do(request{method: "GET", target: "/oauth/callback?code=c"})
	if w.Code != 200 {
		t.Fatalf("status %d %s", w.Code, w.Body)
	}
	if ev := e.last(); ev.RequestContext.Authorizer != nil {
		t.Errorf("public route got authorizer context %+v", ev.RequestContext.Authorizer)
	}
	// A token on a public route is not checked (API Gateway ignores it).
	w = e.do(request{method: "GET", target: "/oauth/callback", headers: http.Header{"Authorization": {"Bearer junk"}}})
	if w.Code != 200 {
		t.Errorf("junk token on a public route: status %d", w.Code)
	}
}

func TestNotFound(t *testing.T) {
	for _, r := range []request{
		{method: "GET", target: "/nope"},
		{method: "DELETE", target: "/oauth/callback"},
		{method: "GET", target: "/connections/a/b"},
		{method: "GET", target: "/dev/token"},
		{method: "POST", target: "/"},
	} {
		t.Run(r.method+" "+r.target, func(t *testing.T) {
			e := newEnv(t)
			w := e.do(r)
			if w.Code != http.StatusNotFound || w.Body.String() != `{"message":"Not Found"}` {
				t.Errorf("got %d %s, want 404 {\"message\":\"Not Found\"}", w.Code, w.Body)
			}
			if e.invocations() != 0 {
				t.Error("the function was invoked")
			}
		})
	}
}

func TestResponseWriting(t *testing.T) {
	tests := []struct {
		name       string
		reply      func(events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)
		status     int
		body       string
		header     http.Header
		noSniffing bool
	}{
		{
			name: "headers, cookies and base64 body",
			reply: func(events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
				return events.APIGatewayV2HTTPResponse{
					StatusCode: 201, Headers: map[string]string{"Content-Type": "image/png", "ETag": `"1"`},
					Cookies: []string{"a=1; HttpOnly", "b=2"}, IsBase64Encoded: true,
					Body: base64.StdEncoding.EncodeToString([]byte{0x89, 'P', 'N', 'G'}),
				}, nil
			},
			status: 201, body: "\x89PNG",
			header: http.Header{"Content-Type": {"image/png"}, "Etag": {`"1"`}, "Set-Cookie": {"a=1; HttpOnly", "b=2"}},
		},
		{
			name: "no content type is not sniffed",
			reply: func(events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
				return events.APIGatewayV2HTTPResponse{StatusCode: 204}, nil
			},
			status: 204, noSniffing: true,
		},
		{
			name: "function error",
			reply: func(events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
				return events.APIGatewayV2HTTPResponse{}, errors.New("boom")
			},
			status: 500, body: `{"message":"Internal Server Error"}`,
		},
		{
			name: "function panic",
			reply: func(events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
				panic("boom")
			},
			status: 500, body: `{"message":"Internal Server Error"}`,
		},
		{
			name: "no status code",
			reply: func(events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
				return events.APIGatewayV2HTTPResponse{Body: "x"}, nil
			},
			status: 500, body: `{"message":"Internal Server Error"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.reply = tt.reply
			w := e.do(request{method: "GET", target: "/oauth/callback"})
			if w.Code != tt.status || w.Body.String() != tt.body {
				t.Errorf("got %d %q, want %d %q", w.Code, w.Body, tt.status, tt.body)
			}
			for k, want := range tt.header {
				if got := w.Header().Values(k); !reflect.DeepEqual(got, want) {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			if tt.noSniffing && w.Header().Get("Content-Type") != "" {
				t.Errorf("content type %q was invented", w.Header().Get("Content-Type"))
			}
		})
	}
}

// TestWithRouter runs a real httpapi.Router behind the gateway: the caller
// it derives comes from the flattened claims.
func TestWithRouter(t *testing.T) {
	key, _ := keys(t)
	clk := clock.Fixed(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	rt := httpapi.NewRouter(slog.New(slog.DiscardHandler))
	rt.Handle("GET /connections/{id}", func(ctx context.Context, r *httpapi.Request) (httpapi.Response, error) {
		return httpapi.JSON(200, map[string]any{"id": r.Param("id"), "sites": r.Caller.Sites, "admin": r.Caller.TenantAdmin}), nil
	})
	gw, err := gateway.New(gateway.Config{
		Functions: []gateway.Function{{Name: "f", Routes: []sam.Route{{Method: "GET", Path: "/connections/{id}", Authorizer: "J"}}, Handler: rt.Serve}},
		JWT:       &gateway.JWT{Issuer: testIssuer, Audience: []string{testAudience}, Key: func(string) (crypto.PublicKey, error) { return &key.PublicKey, nil }},
		Now:       clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, clock: clk}
	tok := e.token(jwt.MapClaims{"sites": []string{"/sites/Team%20A"}, "roles": []string{}})
	srv := httptest.NewServer(gw)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/connections/01%20X", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d body %s", resp.StatusCode, body)
	}
	want := map[string]any{"id": "01 X", "sites": []any{"/sites/team%20a"}, "admin": false}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestLogsHoldNoSecrets(t *testing.T) {
	e := newEnv(t)
	tok := e.token(nil)
	h := bearer(tok)
	h.Set("Content-Type", "application/json")
	h.Set("Cookie", "session=cookie-canary")
	e.do(request{method: "POST", target: "/upload?secret=query-canary", headers: h, body: []byte(`{"password":"body-canary"}`)})
	e.do(request{method: "GET", target: "/connections", headers: http.Header{"Authorization": {"Bearer " + tok + "x"}}})
	logs := e.logs.String()
	if logs == "" {
		t.Fatal("no logs")
	}
	for _, secret := range []string{tok[len(tok)-20:], "body-canary", "query-canary", "cookie-canary"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q:\n%s", secret, logs)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	h := func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return events.APIGatewayV2HTTPResponse{}, nil
	}
	r := sam.Route{Method: "GET", Path: "/x", Authorizer: "J"}
	tests := []struct {
		name string
		cfg  gateway.Config
	}{
		{"duplicate route", gateway.Config{JWT: &gateway.JWT{}, Functions: []gateway.Function{{Name: "a", Routes: []sam.Route{r}, Handler: h}, {Name: "b", Routes: []sam.Route{r}, Handler: h}}}},
		{"no handler", gateway.Config{JWT: &gateway.JWT{}, Functions: []gateway.Function{{Name: "a", Routes: []sam.Route{r}}}}},
		{"authenticated route without JWT", gateway.Config{Functions: []gateway.Function{{Name: "a", Routes: []sam.Route{r}, Handler: h}}}},
	}
	for _, tt := range tests {
		if _, err := gateway.New(tt.cfg); err == nil {
			t.Errorf("%s: New succeeded", tt.name)
		}
	}
}

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}
