package browsertest_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/connmgr/connmgr/shared/httpapi"
	"github.com/connmgr/connmgr/shared/webpage"
	"github.com/connmgr/connmgr/web"
)

// The page's sign-in on AWS, against stand-ins: an OpenID provider on
// https://127.0.0.1 (the code flow with PKCE, as the page must use it)
// whose token endpoint is on an origin of its own, as Amazon Cognito's is
// (the user pool's domain), and a page origin that serves the web
// function's router and a stub of the API that refuses expired tokens, as
// API Gateway's JWT authorizer does, and records the bearer tokens it
// gets. A second page origin serves the page without the token endpoint
// configured. Nothing here is the real API Gateway or a real identity
// provider.
const (
	oidcClientID = "connmgr-page-test"
	oidcAudience = "api://connmgr-test"
)

type oidcStandIn struct {
	IdP, Tokens *httptest.Server // the issuer; its token endpoint, on another origin
	Page        *httptest.Server // the page, told the token endpoint
	PageUnset   *httptest.Server // the page, not told it
	mu          sync.Mutex
	codes       map[string]oidcCode // code → its authorization
	refresh     map[string]bool     // refresh tokens not yet used (they rotate)
	issued      int                 // access tokens issued, numbered in their "n" claim
	mode        oidcMode
	bearers     []string // what the stub API was sent
	grants      []string // the token endpoint's grant types, in order
	problems    []string // what the provider refused
}

// oidcMode is how the provider answers next (POST /stand-in/mode).
type oidcMode struct {
	TTL     int  `json:"ttl"`     // seconds an access token lives (0: until 2100)
	Refresh bool `json:"refresh"` // whether refresh tokens are issued
	Revoked bool `json:"revoked"` // the API refuses every token, as after a revocation
}

type oidcCode struct{ challenge, nonce, redirect string }

// unexpired reports whether a stand-in token is one and has not expired.
func unexpired(jwt string) bool {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct {
		Exp int64 `json:"exp"`
	}
	if err != nil || json.Unmarshal(b, &c) != nil {
		return false
	}
	return time.Now().Unix() < c.Exp
}

func unsignedJWT(claims map[string]any) string {
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT"})
	c, _ := json.Marshal(claims)
	return enc.EncodeToString(h) + "." + enc.EncodeToString(c) + ".stand-in"
}

func startOIDC() (*oidcStandIn, error) {
	s := &oidcStandIn{codes: map[string]oidcCode{}, refresh: map[string]bool{}, bearers: []string{}, grants: []string{}, problems: []string{}}
	// Chromium refuses the test's certificate before it is told to ignore
	// it; the servers need not log each handshake that fails so.
	quiet := log.New(io.Discard, "", 0)
	s.IdP, s.Tokens = httptest.NewUnstartedServer(http.HandlerFunc(s.idp)), httptest.NewUnstartedServer(http.HandlerFunc(s.idp))
	for _, srv := range []*httptest.Server{s.IdP, s.Tokens} {
		srv.Config.ErrorLog = quiet
		srv.StartTLS()
	}
	var routers []*httpapi.Router
	for _, tokenEndpoint := range []string{s.Tokens.URL + "/oauth2/token", ""} {
		site, err := webpage.New(web.Files, webpage.Config{Issuer: s.IdP.URL, Audience: oidcAudience, ClientID: oidcClientID, TokenEndpoint: tokenEndpoint})
		if err != nil {
			s.IdP.Close()
			s.Tokens.Close()
			return nil, err
		}
		rt := httpapi.NewRouter(slog.New(slog.NewTextHandler(io.Discard, nil)))
		site.Routes(rt)
		routers = append(routers, rt)
	}
	s.Page = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.page(w, r, routers[0]) }))
	s.PageUnset = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.page(w, r, routers[1]) }))
	return s, nil
}

func (s *oidcStandIn) Close() { s.Page.Close(); s.PageUnset.Close(); s.Tokens.Close(); s.IdP.Close() }

// tokens answers the token endpoint: a new access token (numbered, living
// the mode's TTL) and ID token, and a new refresh token when the mode
// issues them. Called with s.mu held.
func (s *oidcStandIn) tokens(w http.ResponseWriter, nonce string) {
	s.issued++
	exp := int64(4102444800)
	if s.mode.TTL > 0 {
		exp = time.Now().Add(time.Duration(s.mode.TTL) * time.Second).Unix()
	}
	answer := map[string]any{
		"token_type": "Bearer", "expires_in": 3600,
		"access_token": unsignedJWT(map[string]any{"iss": s.IdP.URL, "aud": oidcAudience, "sub": "erin@contoso", "tid": "contoso",
			"sites": []string{"/sites/hr"}, "exp": exp, "n": s.issued}),
		"id_token": unsignedJWT(map[string]any{"iss": s.IdP.URL, "aud": oidcClientID, "sub": "erin@contoso", "nonce": nonce,
			"name": "Erin", "exp": exp}),
	}
	if s.mode.Refresh {
		rt := fmt.Sprintf("refresh-%d", s.issued)
		s.refresh[rt] = true
		answer["refresh_token"] = rt
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(answer)
}

func (s *oidcStandIn) refuse(w http.ResponseWriter, format string, args ...any) {
	s.mu.Lock()
	s.problems = append(s.problems, fmt.Sprintf(format, args...))
	s.mu.Unlock()
	http.Error(w, "refused", http.StatusBadRequest)
}

func (s *oidcStandIn) idp(w http.ResponseWriter, r *http.Request) {
	if o := r.Header.Get("Origin"); o == s.Page.URL || o == s.PageUnset.URL {
		w.Header().Set("Access-Control-Allow-Origin", o)
	}
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		json.NewEncoder(w).Encode(map[string]any{"issuer": s.IdP.URL, "scopes_supported": []string{"openid", "profile", "offline_access"},
			"authorization_endpoint": s.IdP.URL + "/authorize", "token_endpoint": s.Tokens.URL + "/oauth2/token"})
	case "/authorize":
		q := r.URL.Query()
		if q.Get("response_type") != "code" || q.Get("client_id") != oidcClientID || q.Get("code_challenge_method") != "S256" ||
			q.Get("redirect_uri") != s.Page.URL+"/" || len(q.Get("state")) < 32 || q.Get("nonce") == "" || q.Get("code_challenge") == "" ||
			q.Get("scope") != "openid profile offline_access" {
			s.refuse(w, "authorize: %s", r.URL.RawQuery)
			return
		}
		code := fmt.Sprintf("code-%d", len(s.codes)+1)
		s.mu.Lock()
		s.codes[code] = oidcCode{challenge: q.Get("code_challenge"), nonce: q.Get("nonce"), redirect: q.Get("redirect_uri")}
		s.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), http.StatusFound)
	case "/oauth2/token":
		if r.Host != strings.TrimPrefix(s.Tokens.URL, "https://") {
			s.refuse(w, "token: asked at the issuer's origin %s, not the token endpoint's", r.Host)
			return
		}
		if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
			s.refuse(w, "token: not a form POST")
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.grants = append(s.grants, r.PostForm.Get("grant_type"))
		if r.PostForm.Get("grant_type") == "refresh_token" {
			rt := r.PostForm.Get("refresh_token")
			if !s.refresh[rt] || r.PostForm.Get("client_id") != oidcClientID {
				s.problems = append(s.problems, "token: refresh with "+rt)
				http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
				return
			}
			delete(s.refresh, rt) // rotated: single use
			s.tokens(w, "")
			return
		}
		c, ok := s.codes[r.PostForm.Get("code")]
		delete(s.codes, r.PostForm.Get("code")) // single use
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if !ok || r.PostForm.Get("grant_type") != "authorization_code" || r.PostForm.Get("client_id") != oidcClientID ||
			r.PostForm.Get("redirect_uri") != c.redirect || base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
			s.problems = append(s.problems, fmt.Sprintf("token: %v", r.PostForm))
			http.Error(w, "refused", http.StatusBadRequest)
			return
		}
		s.tokens(w, c.nonce)
	default:
		http.NotFound(w, r)
	}
}

// page serves the web function's routes, and a stub of the API's list
// routes that records the bearer token each request carries.
func (s *oidcStandIn) page(w http.ResponseWriter, r *http.Request, rt *httpapi.Router) {
	switch {
	case r.URL.Path == "/" || strings.HasPrefix(r.URL.Path, "/assets/"):
		ev := events.APIGatewayV2HTTPRequest{RouteKey: webpage.RouteIndex, Headers: map[string]string{"accept-encoding": r.Header.Get("Accept-Encoding")}}
		if p, ok := strings.CutPrefix(r.URL.Path, "/assets/"); ok {
			ev.RouteKey, ev.PathParameters = webpage.RouteAssets, map[string]string{"file": p}
		}
		resp, _ := rt.Serve(context.Background(), ev)
		body := []byte(resp.Body)
		if resp.IsBase64Encoded {
			body, _ = base64.StdEncoding.DecodeString(resp.Body)
		}
		for k, v := range resp.Headers {
			w.Header().Set(k, v)
		}
		w.WriteHeader(resp.StatusCode)
		w.Write(body)
	case r.URL.Path == "/connection-types" || r.URL.Path == "/connections" || r.URL.Path == "/runs":
		bearer := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		s.bearers = append(s.bearers, bearer)
		revoked := s.mode.Revoked
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if revoked || !unexpired(bearer) {
			// API Gateway's JWT authorizer: the function is never called.
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"message":"Unauthorized"}`))
			return
		}
		w.Write([]byte(`{"items":[]}`))
	case r.URL.Path == "/stand-in/mode": // for the scenario, never the page
		s.mu.Lock()
		defer s.mu.Unlock()
		s.mode = oidcMode{}
		if err := json.NewDecoder(r.Body).Decode(&s.mode); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.bearers, s.grants, s.problems = []string{}, []string{}, []string{}
	case r.URL.Path == "/stand-in/report": // for the scenario, never the page
		s.mu.Lock()
		defer s.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"bearers": s.bearers, "grants": s.grants, "problems": s.problems})
	default:
		http.NotFound(w, r) // no /dev/ routes: the page signs in as on AWS
	}
}
