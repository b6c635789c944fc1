package browsertest_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"

	"github.com/aws/aws-lambda-go/events"

	"github.com/connmgr/connmgr/shared/httpapi"
	"github.com/connmgr/connmgr/shared/webpage"
	"github.com/connmgr/connmgr/web"
)

// The page's sign-in on AWS, against stand-ins: an OpenID provider on
// https://127.0.0.1 (the code flow with PKCE, as the page must use it) and
// a page origin that serves the web function's router and a stub of the
// API that records the bearer tokens it gets. Nothing here is the real
// API Gateway or a real identity provider.
const (
	oidcClientID = "connmgr-page-test"
	oidcAudience = "api://connmgr-test"
)

type oidcStandIn struct {
	IdP, Page *httptest.Server
	mu        sync.Mutex
	codes     map[string]oidcCode // code → its authorization
	bearers   []string            // what the stub API was sent
	problems  []string            // what the provider refused
}

type oidcCode struct{ challenge, nonce, redirect string }

func unsignedJWT(claims map[string]any) string {
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT"})
	c, _ := json.Marshal(claims)
	return enc.EncodeToString(h) + "." + enc.EncodeToString(c) + ".stand-in"
}

func startOIDC() (*oidcStandIn, error) {
	s := &oidcStandIn{codes: map[string]oidcCode{}, bearers: []string{}, problems: []string{}}
	s.IdP = httptest.NewTLSServer(http.HandlerFunc(s.idp))
	site, err := webpage.New(web.Files, webpage.Config{Issuer: s.IdP.URL, Audience: oidcAudience, ClientID: oidcClientID})
	if err != nil {
		s.IdP.Close()
		return nil, err
	}
	rt := httpapi.NewRouter(slog.New(slog.NewTextHandler(io.Discard, nil)))
	site.Routes(rt)
	s.Page = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.page(w, r, rt) }))
	return s, nil
}

func (s *oidcStandIn) Close() { s.Page.Close(); s.IdP.Close() }

func (s *oidcStandIn) refuse(w http.ResponseWriter, format string, args ...any) {
	s.mu.Lock()
	s.problems = append(s.problems, fmt.Sprintf(format, args...))
	s.mu.Unlock()
	http.Error(w, "refused", http.StatusBadRequest)
}

func (s *oidcStandIn) idp(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", s.Page.URL)
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		json.NewEncoder(w).Encode(map[string]string{"issuer": s.IdP.URL,
			"authorization_endpoint": s.IdP.URL + "/authorize", "token_endpoint": s.IdP.URL + "/token"})
	case "/authorize":
		q := r.URL.Query()
		if q.Get("response_type") != "code" || q.Get("client_id") != oidcClientID || q.Get("code_challenge_method") != "S256" ||
			q.Get("redirect_uri") != s.Page.URL+"/" || len(q.Get("state")) < 32 || q.Get("nonce") == "" || q.Get("code_challenge") == "" ||
			!strings.Contains(q.Get("scope"), "openid") {
			s.refuse(w, "authorize: %s", r.URL.RawQuery)
			return
		}
		code := fmt.Sprintf("code-%d", len(s.codes)+1)
		s.mu.Lock()
		s.codes[code] = oidcCode{challenge: q.Get("code_challenge"), nonce: q.Get("nonce"), redirect: q.Get("redirect_uri")}
		s.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), http.StatusFound)
	case "/token":
		if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
			s.refuse(w, "token: not a form POST")
			return
		}
		s.mu.Lock()
		c, ok := s.codes[r.PostForm.Get("code")]
		delete(s.codes, r.PostForm.Get("code")) // single use
		s.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if !ok || r.PostForm.Get("grant_type") != "authorization_code" || r.PostForm.Get("client_id") != oidcClientID ||
			r.PostForm.Get("redirect_uri") != c.redirect || base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
			s.refuse(w, "token: %v", r.PostForm)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"token_type": "Bearer", "expires_in": 3600,
			"access_token": unsignedJWT(map[string]any{"iss": s.IdP.URL, "aud": oidcAudience, "sub": "erin@contoso", "tid": "contoso",
				"sites": []string{"/sites/hr"}, "exp": 4102444800}),
			"id_token": unsignedJWT(map[string]any{"iss": s.IdP.URL, "aud": oidcClientID, "sub": "erin@contoso", "nonce": c.nonce,
				"name": "Erin", "exp": 4102444800}),
		})
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
	case r.URL.Path == "/connection-types" || r.URL.Path == "/connections":
		s.mu.Lock()
		s.bearers = append(s.bearers, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"items":[]}`))
	case r.URL.Path == "/stand-in/report": // for the scenario, never the page
		s.mu.Lock()
		defer s.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"bearers": s.bearers, "problems": s.problems})
	default:
		http.NotFound(w, r) // no /dev/ routes: the page signs in as on AWS
	}
}
