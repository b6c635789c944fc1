package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/secret"
	"github.com/connmgr/connmgr/shared/store"
)

// Token lifetimes when the provider's expires_in cannot be trusted.
const (
	// DefaultLifetime is assumed when a token response has no expires_in:
	// the token is refreshed after an hour (less the resolver's skew), the
	// common lifetime of access tokens. A provider whose tokens live
	// shorter should send expires_in; until it does, calls made with a
	// token it already expired fail at the API with 401 and the step retries.
	DefaultLifetime = time.Hour
	// MaxLifetime caps what a provider claims: a token is refreshed at
	// least daily, which also keeps idle refresh tokens alive.
	MaxLifetime = 24 * time.Hour
	// maxRefreshLifetime bounds a refresh_token_expires_in taken as said
	// (a larger one is as good as none: it is ignored).
	maxRefreshLifetime = 100 * 365 * 24 * time.Hour
)

// DefaultHTTPTimeout bounds one token endpoint request.
const DefaultHTTPTimeout = 10 * time.Second

// Auth styles of a registration.
const (
	AuthStyleParams = "params"
	AuthStyleHeader = "header"
)

// Provider is the OAuth client of one tenant for one connection type: the
// type's endpoints and scopes overridden by the tenant's registration. It
// holds the client secret as a secret.String, or the client certificate's
// private key (types whose client authenticates with a certificate);
// both are redacted in every output.
type Provider struct {
	Type         string
	Grant        connection.AuthMethod
	ClientID     string
	AuthorizeURL string
	TokenURL     string
	Scopes       []string
	AuthStyle    string
	typ          *connection.Type
	secret       secret.String
	cert         *clientCertificate
	http         *http.Client
	now          func() time.Time
}

// ProviderOptions are the seams of a Provider; zero values are defaults.
type ProviderOptions struct {
	// HTTPClient calls the token endpoint; default NewHTTPClient with
	// public addresses only.
	HTTPClient *http.Client
	Now        func() time.Time
}

// ErrNotConfigured: the tenant has no usable OAuth client for the type.
var ErrNotConfigured = apperr.E(apperr.Invalid, "oauth_client_missing", "no OAuth client is registered for this connection type; ask a tenant administrator to register one")

// NewProvider merges the type's defaults with the registration. reg may be
// nil when the type's defaults suffice (they never do for the client ID);
// clientSecret (the registration's opened secret: the client secret, or
// the certificate and private key of a certificate type) may be nil for
// building authorize URLs only.
func NewProvider(typ *connection.Type, reg *store.OAuthClient, clientSecret []byte, opts ProviderOptions) (*Provider, error) {
	if !typ.AuthMethod.IsOAuth() {
		return nil, apperr.InvalidField("type", "not_oauth", "connection type %s does not use OAuth", typ.ID)
	}
	p := &Provider{Type: typ.ID, Grant: typ.AuthMethod, AuthStyle: AuthStyleParams, typ: typ, http: opts.HTTPClient, now: opts.Now}
	if p.http == nil {
		p.http = NewHTTPClient(HTTPOptions{})
	}
	if p.now == nil {
		p.now = time.Now
	}
	if d := typ.OAuth; d != nil {
		p.Scopes = slices.Clone(d.Scopes)
	}
	if reg == nil {
		return nil, ErrNotConfigured
	}
	p.ClientID = reg.ClientID
	p.AuthorizeURL, p.TokenURL = reg.Endpoints()
	if len(reg.Scopes) > 0 {
		p.Scopes = slices.Clone(reg.Scopes)
	}
	if reg.AuthStyle != "" {
		p.AuthStyle = reg.AuthStyle
	}
	// An endpoint still naming connection.DirectoryTenantPlaceholder: the
	// registration names no directory tenant.
	unusable := func(u string) bool { return u == "" || strings.Contains(u, connection.DirectoryTenantPlaceholder) }
	if p.ClientID == "" || unusable(p.TokenURL) || (p.Grant == connection.AuthOAuth2Code && unusable(p.AuthorizeURL)) {
		return nil, ErrNotConfigured
	}
	if typ.OAuth.UsesCertificate() {
		if clientSecret != nil {
			cert, err := decodeClientCertificate(clientSecret)
			if err != nil {
				return nil, fmt.Errorf("oauth.NewProvider %s: %w", typ.ID, err)
			}
			p.cert = cert
		}
		return p, nil
	}
	p.secret = secret.New(string(clientSecret))
	return p, nil
}

// hasCredential reports whether the provider can authenticate at the
// token endpoint (it was built with the registration's secret).
func (p *Provider) hasCredential() bool { return !p.secret.IsZero() || p.cert != nil }

// ScopesFor is the scope list for a connection: its own "scopes" setting
// when it has one, else the provider's; for a type whose tokens are for
// the resource a setting names (SharePoint), the resource's ".default"
// scope first, then the provider's (offline_access).
func (p *Provider) ScopesFor(settings map[string]any) []string {
	if p.typ != nil {
		if res, ok := p.typ.ResourceScope(settings); ok {
			out := []string{res}
			for _, s := range p.Scopes {
				if !slices.Contains(out, s) {
					out = append(out, s)
				}
			}
			return out
		}
	}
	if raw, ok := settings["scopes"].([]any); ok && len(raw) > 0 {
		out := make([]string, 0, len(raw))
		for _, v := range raw {
			if s, ok := v.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	return p.Scopes
}

func (p *Provider) config(redirectURI string, scopes []string) *oauth2.Config {
	style := oauth2.AuthStyleInParams
	if p.AuthStyle == AuthStyleHeader {
		style = oauth2.AuthStyleInHeader
	}
	c := &oauth2.Config{ClientID: p.ClientID, RedirectURL: redirectURI, Scopes: scopes,
		Endpoint: oauth2.Endpoint{AuthURL: p.AuthorizeURL, TokenURL: p.TokenURL, AuthStyle: style}}
	c.ClientSecret = p.secret.Reveal()
	return c
}

func (p *Provider) ctx(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, p.http)
}

// AuthCodeURL is the URL that sends the user to the provider: response type
// code, the exact redirect URI, the state and the S256 challenge of verifier.
func (p *Provider) AuthCodeURL(state, verifier, redirectURI string, scopes []string) string {
	return p.config(redirectURI, scopes).AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))
}

// Exchange trades an authorization code for tokens, proving possession of
// the PKCE verifier and sending the exact redirect URI of the request.
func (p *Provider) Exchange(ctx context.Context, code, verifier, redirectURI string) (*TokenSet, error) {
	if p.secret.IsZero() {
		return nil, errors.New("oauth.Exchange: provider built without the client secret (a certificate signs client credentials requests only)")
	}
	tok, err := p.config(redirectURI, nil).Exchange(p.ctx(ctx), code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, fmt.Errorf("oauth.Exchange %s: %w", p.Type, providerError(err))
	}
	return p.tokenSet(tok, nil), nil
}

// Refresh uses the refresh token of prev. When the response carries no new
// refresh token (or the same one again) the old one is kept, and with it
// when it expires, unless the response says anew (refresh_token_expires_in).
func (p *Provider) Refresh(ctx context.Context, prev *TokenSet, scopes []string) (*TokenSet, error) {
	if p.secret.IsZero() {
		return nil, errors.New("oauth.Refresh: provider built without the client secret (a certificate signs client credentials requests only)")
	}
	if prev == nil || prev.RefreshToken() == "" {
		return nil, fmt.Errorf("oauth.Refresh %s: %w", p.Type, &Error{Code: "no_refresh_token", Rejected: true})
	}
	// An already-expired token makes the source refresh at once.
	src := p.config("", scopes).TokenSource(p.ctx(ctx), &oauth2.Token{RefreshToken: prev.RefreshToken(), Expiry: time.Unix(1, 0)})
	tok, err := src.Token()
	if err != nil {
		return nil, fmt.Errorf("oauth.Refresh %s: %w", p.Type, providerError(err))
	}
	return p.tokenSet(tok, prev), nil
}

// ClientCredentials runs the client credentials grant, the client
// authenticating with its secret or, for a certificate type, with a fresh
// client assertion signed by the certificate's private key (aud = the
// token endpoint).
func (p *Provider) ClientCredentials(ctx context.Context, scopes []string) (*TokenSet, error) {
	if !p.hasCredential() {
		return nil, errors.New("oauth.ClientCredentials: provider built without the client secret")
	}
	style := oauth2.AuthStyleInParams
	if p.AuthStyle == AuthStyleHeader {
		style = oauth2.AuthStyleInHeader
	}
	cc := &clientcredentials.Config{ClientID: p.ClientID, ClientSecret: p.secret.Reveal(), TokenURL: p.TokenURL, Scopes: scopes, AuthStyle: style}
	if p.cert != nil {
		assertion, err := p.cert.assertion(p.ClientID, p.TokenURL, p.now())
		if err != nil {
			return nil, fmt.Errorf("oauth.ClientCredentials %s: %w", p.Type, err)
		}
		// client_id goes in the form too; no client_secret.
		cc.ClientSecret, cc.AuthStyle = "", oauth2.AuthStyleInParams
		cc.EndpointParams = url.Values{"client_assertion_type": {ClientAssertionType}, "client_assertion": {assertion}}
	}
	tok, err := cc.Token(p.ctx(ctx))
	if err != nil {
		return nil, fmt.Errorf("oauth.ClientCredentials %s: %w", p.Type, providerError(err))
	}
	return p.tokenSet(tok, nil), nil
}

// tokenSet computes the expiry from expires_in on our own clock (x/oauth2
// uses the wall clock), assuming DefaultLifetime when it is missing and
// capping it at MaxLifetime; and the refresh token's from
// refresh_token_expires_in, when sent. prev is the token set refreshed
// (nil for a new grant): its refresh token, and that token's expiry, stay
// when the response brings no other.
func (p *Provider) tokenSet(tok *oauth2.Token, prev *TokenSet) *TokenSet {
	now := p.now().UTC()
	rt := tok.RefreshToken
	t := &TokenSet{tokenType: tok.TokenType, obtainedAt: now}
	if life, ok := refreshLifetime(tok.Extra("refresh_token_expires_in")); ok {
		t.refreshExpiresAt = now.Add(life)
	}
	if prev != nil && (rt == "" || rt == prev.RefreshToken()) {
		rt = prev.RefreshToken()
		if t.refreshExpiresAt.IsZero() {
			t.refreshExpiresAt = prev.refreshExpiresAt
		}
	}
	t.accessToken, t.refreshToken = secret.New(tok.AccessToken), secret.New(rt)
	life := time.Duration(tok.ExpiresIn) * time.Second
	switch {
	case tok.ExpiresIn <= 0:
		life, t.expiryAssumed = DefaultLifetime, true
	case tok.ExpiresIn > int64(MaxLifetime/time.Second):
		life = MaxLifetime
	}
	t.expiresAt = now.Add(life)
	if sc, ok := tok.Extra("scope").(string); ok {
		t.scope = sc
	}
	return t
}

// refreshLifetime reads refresh_token_expires_in: seconds, as a JSON
// number or a numeric string (a form-encoded response). Anything else, zero
// or less, or beyond maxRefreshLifetime is ignored.
func refreshLifetime(v any) (time.Duration, bool) {
	var secs float64
	switch x := v.(type) {
	case float64:
		secs = x
	case int64:
		secs = float64(x)
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return 0, false
		}
		secs = f
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return 0, false
		}
		secs = f
	default:
		return 0, false
	}
	if !(secs >= 1) || secs > maxRefreshLifetime.Seconds() { // also NaN
		return 0, false
	}
	return time.Duration(secs) * time.Second, true
}

func (p Provider) describe() string {
	if p.cert != nil {
		return fmt.Sprintf("oauth.Provider{type:%s clientId:%s tokenUrl:%s clientCertificate:%s privateKey:%s}", p.Type, p.ClientID, p.TokenURL, p.cert.thumbprint(), secret.Redacted)
	}
	return fmt.Sprintf("oauth.Provider{type:%s clientId:%s tokenUrl:%s clientSecret:%s}", p.Type, p.ClientID, p.TokenURL, present(p.secret))
}

// String redacts the client secret.
func (p Provider) String() string { return p.describe() }

// GoString redacts the client secret.
func (p Provider) GoString() string { return p.describe() }

// Format redacts the client secret for every verb.
func (p Provider) Format(f fmt.State, _ rune) { io.WriteString(f, p.describe()) }

// LogValue redacts the client secret.
func (p Provider) LogValue() slog.Value {
	return slog.GroupValue(slog.String("type", p.Type), slog.String("clientId", p.ClientID), slog.String("tokenUrl", p.TokenURL))
}

// MarshalJSON redacts the client secret.
func (p Provider) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprintf(`{"type":%q,"clientId":%q,"tokenUrl":%q}`, p.Type, p.ClientID, p.TokenURL)), nil
}

// Error is a failed token request: the provider's RFC 6749 error code (or
// one of ours: server_error, rate_limited, unreachable, invalid_response)
// and the HTTP status. It never holds a description or a body: providers
// echo request values (codes, even client secrets) in them.
type Error struct {
	Code   string
	Status int
	// Rejected: the provider refused the grant or the client; trying again
	// will not help, someone must re-authorize or fix the registration.
	Rejected bool
	cause    error // transport errors only
}

func (e *Error) Error() string {
	s := "oauth provider: " + e.Code
	if e.Status != 0 {
		s += fmt.Sprintf(" (HTTP %d)", e.Status)
	}
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.cause }

// Transient reports whether trying again later may succeed.
func (e *Error) Transient() bool { return !e.Rejected }

// RevokesGrant reports whether the error means the stored grant (refresh
// token) is dead, so the connection needs re-authorization.
func (e *Error) RevokesGrant() bool {
	return e.Code == "invalid_grant" || e.Code == CodeTokenEndpointChanged
}

// CodeTokenEndpointChanged: the tenant's registration now names another
// token endpoint than the one the stored tokens came from. The refresh
// token is never sent to a host it was not issued by: the connection needs
// a new authorization.
const CodeTokenEndpointChanged = "token_endpoint_changed"

// ErrTokenEndpointChanged is the refusal to refresh at another token endpoint.
var ErrTokenEndpointChanged = &Error{Code: CodeTokenEndpointChanged, Rejected: true}

// TokenOrigin is the origin of the provider's token endpoint: the
// destination its tokens' refresh token is bound to.
func (p *Provider) TokenOrigin() string {
	o, _ := connection.Origin(p.TokenURL)
	return o
}

// AsError finds the provider error in err's chain.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// providerError maps whatever x/oauth2 returned, dropping anything that
// could quote a secret.
func providerError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		code := sanitizeCode(re.ErrorCode)
		switch {
		case code != "":
		case status == http.StatusTooManyRequests:
			code = "rate_limited"
		case status >= 500:
			code = "server_error"
		default:
			code = "invalid_response"
		}
		e := &Error{Code: code, Status: status}
		switch code {
		case "temporarily_unavailable", "server_error", "slow_down", "rate_limited":
		default:
			e.Rejected = status < 500 && status != http.StatusTooManyRequests
		}
		return e
	}
	var ue *url.Error
	var ne net.Error
	if errors.As(err, &ue) || errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		// Transport failures name the token URL and the network error only.
		return &Error{Code: "unreachable", cause: err}
	}
	// x/oauth2's own parse errors may quote the response: keep none of it.
	return &Error{Code: "invalid_response"}
}

// sanitizeCode keeps an error code only if it looks like one.
func sanitizeCode(c string) string {
	if c == "" || len(c) > 64 {
		return ""
	}
	for _, r := range c {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return "invalid_error_code"
		}
	}
	return strings.ToLower(c)
}
