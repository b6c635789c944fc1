// Package oauthprovider is a real OAuth 2 authorization server for local
// development and tests: github.com/oauth2-proxy/mockoidc (authorization
// code with PKCE S256, code reuse detection, refresh_token grant) behind a
// wrapper on its token endpoint that makes it behave like the providers the
// resolver meets in production:
//
//   - expires_in in seconds (mockoidc sends nanoseconds), or omitted;
//   - optionally refresh_token_expires_in, with refresh tokens that expire
//     then: each new one a lifetime after it is issued (rolling, as Xero's),
//     or all of a grant's at the first one's expiry (fixed, as Microsoft's
//     single-page-app tokens);
//   - opaque access and refresh tokens, refresh tokens rotated on every use
//     and a used one refused with invalid_grant (mockoidc never rotates);
//   - the redirect_uri of a code exchange must equal the authorization
//     request's, character for character (mockoidc does not check);
//   - the client credentials grant (mockoidc has none);
//   - client authentication in the form, with HTTP Basic, or with a JWT
//     client assertion signed by a trusted certificate's private key
//     (private_key_jwt, RFC 7523, checked as the Microsoft identity
//     platform checks it: see assertion.go);
//   - resource scopes of the Microsoft identity platform
//     (https://contoso.sharepoint.com/.default), recorded and accepted
//     beside the OIDC scopes (mockoidc refuses scopes it does not list);
//   - call counts per grant and per refresh token value, replays of used
//     refresh tokens, queued failures and a hook before each refresh;
//   - a protected resource at ResourceURL that accepts only live access
//     tokens (for connection tests).
//
// The authorization endpoint approves every request at once, redirecting to
// the redirect_uri with a code. Never linked into a Lambda binary.
package oauthprovider

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/oauth2-proxy/mockoidc"
)

// Scopes the provider accepts (mockoidc rejects any scope it does not list).
var Scopes = []string{"openid", "email", "profile", "groups", "offline_access"}

var scopesOnce sync.Once

// Options configure a Provider; zero values are defaults.
type Options struct {
	// Addr to listen on; "" = a free loopback port.
	Addr string
	// ExpiresIn is the access token lifetime reported (default 1 h).
	ExpiresIn time.Duration
	// RefreshExpiresIn, when set, is the refresh token lifetime reported
	// (refresh_token_expires_in) and enforced; RefreshExpiryFixed keeps a
	// grant's first expiry for the refresh tokens that replace it.
	RefreshExpiresIn   time.Duration
	RefreshExpiryFixed bool
	// Now is the provider's clock for access token expiry (default time.Now).
	Now func() time.Time
	// ClientID and ClientSecret of the one client (default: random).
	ClientID, ClientSecret string
}

// Failure is a queued token endpoint error.
type Failure struct {
	Grant       string // grant_type it applies to; "" = any
	Status      int
	Code        string
	Description string
}

// Provider is a running local OAuth 2 server.
type Provider struct {
	oidc *mockoidc.MockOIDC
	now  func() time.Time

	mu            sync.Mutex // serializes mockoidc (its session map is not safe for concurrent use) and the maps below
	expiresIn     time.Duration
	omitExpiresIn bool
	rtLife        time.Duration
	rtFixed       bool
	omitRefresh   bool
	delay         time.Duration
	echoSecrets   bool
	onRefresh     func(refreshToken string)
	refresh       map[string]*refreshEntry
	access        map[string]time.Time
	codes         map[string]string // code → redirect_uri of its authorization request
	grants        map[string]int
	rtUses        map[string]int
	issued        []string
	replays       int
	failures      []Failure
	// Client assertions: trusted certificates by x5t, jti values seen
	// (until their exp), assertions verified and refused, scope
	// parameters requested.
	certs       map[string]*x509.Certificate
	jtis        map[string]time.Time
	assertions  int
	refusedJWTs []string
	scopes      []ScopeRequest
}

type refreshEntry struct {
	underlying string // mockoidc's refresh token
	used       bool
	expiresAt  time.Time // zero: never
}

// Start runs a provider.
func Start(opts Options) (*Provider, error) {
	scopesOnce.Do(func() {
		for _, s := range Scopes {
			if !slices.Contains(mockoidc.ScopesSupported, s) {
				mockoidc.ScopesSupported = append(mockoidc.ScopesSupported, s)
			}
		}
	})
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		return nil, fmt.Errorf("oauthprovider: %w", err)
	}
	if opts.ClientID != "" {
		m.ClientID = opts.ClientID
	}
	if opts.ClientSecret != "" {
		m.ClientSecret = opts.ClientSecret
	}
	p := &Provider{oidc: m, now: opts.Now, expiresIn: opts.ExpiresIn, rtLife: opts.RefreshExpiresIn, rtFixed: opts.RefreshExpiryFixed,
		refresh: map[string]*refreshEntry{}, access: map[string]time.Time{}, codes: map[string]string{}, grants: map[string]int{}, rtUses: map[string]int{},
		certs: map[string]*x509.Certificate{}, jtis: map[string]time.Time{}}
	if p.now == nil {
		p.now = time.Now
	}
	if p.expiresIn == 0 {
		p.expiresIn = time.Hour
	}
	if err := m.AddMiddleware(p.middleware); err != nil {
		return nil, err
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("oauthprovider: listen %s: %w", addr, err)
	}
	if err := m.Start(ln, nil); err != nil {
		return nil, fmt.Errorf("oauthprovider: %w", err)
	}
	return p, nil
}

// Close stops the server.
func (p *Provider) Close() error { return p.oidc.Shutdown() }

// ClientID and ClientSecret are the one client the provider knows.
func (p *Provider) ClientID() string     { return p.oidc.ClientID }
func (p *Provider) ClientSecret() string { return p.oidc.ClientSecret }

// Endpoints.
func (p *Provider) AuthorizeURL() string { return p.oidc.AuthorizationEndpoint() }
func (p *Provider) TokenURL() string     { return p.oidc.TokenEndpoint() }
func (p *Provider) ResourceURL() string  { return p.oidc.UserinfoEndpoint() }

// Base is the server's base URL.
func (p *Provider) Base() string { return p.oidc.Addr() }

// SetExpiresIn changes the reported access token lifetime; omit drops
// expires_in from responses altogether.
func (p *Provider) SetExpiresIn(d time.Duration, omit bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expiresIn, p.omitExpiresIn = d, omit
}

// SetRefreshExpiresIn makes refresh tokens issued from now on expire d
// after they are issued and say so (refresh_token_expires_in); fixed keeps
// a grant's first expiry for the tokens that replace it. d = 0 issues
// refresh tokens that never expire, and says nothing.
func (p *Provider) SetRefreshExpiresIn(d time.Duration, fixed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rtLife, p.rtFixed = d, fixed
}

// OmitRefreshToken makes refresh responses carry no refresh_token; the
// presented one then stays valid (providers that do not rotate).
func (p *Provider) OmitRefreshToken(omit bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.omitRefresh = omit
}

// SetDelay makes every refresh_token grant take d (to widen races).
func (p *Provider) SetDelay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = d
}

// EchoSecrets makes error responses quote the request's client secret,
// refresh token and code in error_description, as careless providers do
// (mockoidc itself quotes codes and client ids).
func (p *Provider) EchoSecrets(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.echoSecrets = on
}

// OnRefresh runs f before each refresh_token grant is handled, with the
// refresh token presented, outside the provider's lock.
func (p *Provider) OnRefresh(f func(refreshToken string)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.onRefresh = f
}

// Fail queues a failure for the next token request of f.Grant.
func (p *Provider) Fail(f Failure) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failures = append(p.failures, f)
}

// Calls reports token endpoint requests of a grant type ("" = all).
func (p *Provider) Calls(grant string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if grant != "" {
		return p.grants[grant]
	}
	n := 0
	for _, c := range p.grants {
		n += c
	}
	return n
}

// RefreshUses reports how often each refresh token value was presented.
func (p *Provider) RefreshUses() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.rtUses))
	for k, v := range p.rtUses {
		out[k] = v
	}
	return out
}

// Replays reports refresh_token grants that presented an already used token.
func (p *Provider) Replays() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.replays
}

// Issued lists every access and refresh token the provider issued.
func (p *Provider) Issued() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.issued)
}

// ValidAccessToken reports whether at is a live access token.
func (p *Provider) ValidAccessToken(at string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	exp, ok := p.access[at]
	return ok && p.now().Before(exp)
}

// RotateOutOfBand uses refresh token rt as another client instance would,
// without HTTP: rt becomes used and a new pair is issued.
func (p *Provider) RotateOutOfBand(rt string) (accessToken, refreshToken string, expiresIn time.Duration, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.refresh[rt]
	if e == nil || e.used {
		return "", "", 0, errors.New("oauthprovider: refresh token unknown or used")
	}
	e.used = true
	at, nrt := p.mintLocked(e.underlying, true, p.nextRefreshExpiryLocked(e))
	return at, nrt, p.expiresIn, nil
}

// Authorize follows an authorize URL as a browser whose user approves at
// once, and returns the URL the provider redirected to.
func (p *Provider) Authorize(ctx context.Context, authorizeURL string) (*url.URL, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authorizeURL, nil)
	if err != nil {
		return nil, err
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return nil, fmt.Errorf("oauthprovider: authorize answered %d", resp.StatusCode)
	}
	return url.Parse(resp.Header.Get("Location"))
}

func token(prefix string) string {
	b := make([]byte, 24)
	rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// mintLocked issues an access token and, if withRefresh, a refresh token
// bound to mockoidc's underlying session token, expiring at rtExpiresAt
// (zero: never).
func (p *Provider) mintLocked(underlying string, withRefresh bool, rtExpiresAt time.Time) (at, rt string) {
	at = token("at_")
	p.access[at] = p.now().Add(p.expiresIn)
	p.issued = append(p.issued, at)
	if withRefresh {
		rt = token("rt_")
		p.refresh[rt] = &refreshEntry{underlying: underlying, expiresAt: rtExpiresAt}
		p.issued = append(p.issued, rt)
	}
	return at, rt
}

// nextRefreshExpiryLocked is when a refresh token issued now expires: for
// a new grant (prev nil) or a rolling one, the lifetime from now; for a
// fixed one, prev's expiry.
func (p *Provider) nextRefreshExpiryLocked(prev *refreshEntry) time.Time {
	if prev != nil && p.rtFixed && !prev.expiresAt.IsZero() {
		return prev.expiresAt
	}
	if p.rtLife <= 0 {
		return time.Time{}
	}
	return p.now().Add(p.rtLife)
}

func (p *Provider) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case mockoidc.TokenEndpoint:
			p.token(w, r, next)
		case mockoidc.AuthorizationEndpoint:
			p.authorize(w, r, next)
		case mockoidc.UserinfoEndpoint:
			p.resource(w, r)
		default:
			p.mu.Lock()
			defer p.mu.Unlock()
			next.ServeHTTP(w, r)
		}
	})
}

func (p *Provider) authorize(w http.ResponseWriter, r *http.Request, next http.Handler) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// Resource scopes are the Microsoft identity platform's: record them
	// and show mockoidc the rest (offline_access).
	q := r.URL.Query()
	if scope := q.Get("scope"); scope != "" {
		p.scopes = append(p.scopes, ScopeRequest{Endpoint: "authorize", Scope: scope})
		if rest := oidcScopes(scope); rest != scope {
			q.Set("scope", rest)
			r.URL.RawQuery = q.Encode()
		}
	}
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	if loc, err := url.Parse(rec.Header().Get("Location")); err == nil && rec.Code == http.StatusFound {
		if code := loc.Query().Get("code"); code != "" {
			p.codes[code] = r.Form.Get("redirect_uri")
		}
	}
	copyResponse(w, rec)
}

func (p *Provider) resource(w http.ResponseWriter, r *http.Request) {
	at, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !p.ValidAccessToken(at) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

func (p *Provider) token(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	// HTTP Basic client authentication, as mockoidc only reads the form.
	if id, secret, ok := r.BasicAuth(); ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
		r.Form.Set("client_id", id)
		r.Form.Set("client_secret", secret)
		r.PostForm.Set("client_id", id)
		r.PostForm.Set("client_secret", secret)
	}
	grant := r.PostForm.Get("grant_type")
	if r.PostForm.Has("client_assertion") || r.PostForm.Has("client_assertion_type") {
		p.mu.Lock()
		err := p.verifyAssertionLocked(r.PostForm)
		if err != nil {
			p.grants[grant]++
			p.refusedJWTs = append(p.refusedJWTs, err.Error())
			p.fail(w, r, http.StatusUnauthorized, "invalid_client", "client assertion refused")
			p.mu.Unlock()
			return
		}
		p.assertions++
		p.mu.Unlock()
		// Authenticated: mockoidc knows only client secrets.
		r.Form.Set("client_secret", p.oidc.ClientSecret)
		r.PostForm.Set("client_secret", p.oidc.ClientSecret)
		r.Form.Set("client_id", p.oidc.ClientID)
		r.PostForm.Set("client_id", p.oidc.ClientID)
	}
	if grant == "refresh_token" {
		p.mu.Lock()
		hook, delay := p.onRefresh, p.delay
		p.mu.Unlock()
		if hook != nil {
			hook(r.PostForm.Get("refresh_token"))
		}
		if delay > 0 {
			time.Sleep(delay)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.grants[grant]++
	for i, f := range p.failures {
		if f.Grant == "" || f.Grant == grant {
			p.failures = slices.Delete(p.failures, i, i+1)
			p.fail(w, r, f.Status, f.Code, f.Description)
			return
		}
	}
	switch grant {
	case "authorization_code":
		code := r.PostForm.Get("code")
		if want, ok := p.codes[code]; ok && want != r.PostForm.Get("redirect_uri") {
			p.fail(w, r, http.StatusBadRequest, "invalid_grant", "redirect_uri does not match the authorization request")
			return
		}
		out, ok := p.forward(w, r, next)
		if !ok {
			return
		}
		delete(p.codes, code)
		exp := p.nextRefreshExpiryLocked(nil)
		at, rt := p.mintLocked(out.RefreshToken, true, exp)
		p.respond(w, at, rt, exp)
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		p.rtUses[rt]++
		e := p.refresh[rt]
		if e == nil || e.used || (!e.expiresAt.IsZero() && !p.now().Before(e.expiresAt)) {
			if e != nil && e.used {
				p.replays++
			}
			p.fail(w, r, http.StatusBadRequest, "invalid_grant", "the refresh token is invalid, expired or already used")
			return
		}
		r.Form.Set("refresh_token", e.underlying)
		r.PostForm.Set("refresh_token", e.underlying)
		if _, ok := p.forward(w, r, next); !ok {
			return
		}
		if p.omitRefresh {
			at, _ := p.mintLocked("", false, time.Time{})
			p.respond(w, at, "", time.Time{})
			return
		}
		e.used = true
		exp := p.nextRefreshExpiryLocked(e)
		at, nrt := p.mintLocked(e.underlying, true, exp)
		p.respond(w, at, nrt, exp)
	case "client_credentials":
		p.scopes = append(p.scopes, ScopeRequest{Endpoint: "token", Scope: r.PostForm.Get("scope")})
		if r.PostForm.Get("client_id") != p.oidc.ClientID || r.PostForm.Get("client_secret") != p.oidc.ClientSecret {
			p.fail(w, r, http.StatusUnauthorized, "invalid_client", "client authentication failed")
			return
		}
		at, _ := p.mintLocked("", false, time.Time{})
		p.respond(w, at, "", time.Time{})
	default:
		next.ServeHTTP(w, r)
	}
}

type mockTokens struct {
	RefreshToken string `json:"refresh_token"`
}

// forward lets mockoidc validate the request (client, code, PKCE, refresh
// token); on failure its answer is passed through.
func (p *Provider) forward(w http.ResponseWriter, r *http.Request, next http.Handler) (mockTokens, bool) {
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	var out mockTokens
	if rec.Code != http.StatusOK {
		if p.echoSecrets {
			p.fail(w, r, rec.Code, errorCode(rec.Body.Bytes()), "upstream refused")
			return out, false
		}
		copyResponse(w, rec)
		return out, false
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return out, false
	}
	return out, true
}

func errorCode(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	json.Unmarshal(body, &e)
	return e.Error
}

func (p *Provider) fail(w http.ResponseWriter, r *http.Request, status int, code, desc string) {
	if p.echoSecrets {
		desc += fmt.Sprintf(" (client_secret=%s refresh_token=%s code=%s code_verifier=%s)", r.PostForm.Get("client_secret"),
			r.PostForm.Get("refresh_token"), r.PostForm.Get("code"), r.PostForm.Get("code_verifier"))
	}
	body := map[string]string{"error_description": desc}
	if code != "" {
		body["error"] = code
	}
	writeJSON(w, status, body)
}

func (p *Provider) respond(w http.ResponseWriter, at, rt string, rtExpiresAt time.Time) {
	body := map[string]any{"access_token": at, "token_type": "Bearer"}
	if rt != "" {
		body["refresh_token"] = rt
		if !rtExpiresAt.IsZero() {
			body["refresh_token_expires_in"] = int64(rtExpiresAt.Sub(p.now()) / time.Second)
		}
	}
	if !p.omitExpiresIn {
		body["expires_in"] = int64(p.expiresIn / time.Second)
	}
	writeJSON(w, http.StatusOK, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func copyResponse(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}
