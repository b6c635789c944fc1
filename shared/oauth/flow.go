package oauth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/oauth2"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/events"
	"github.com/connmgr/connmgr/shared/expiry"
	"github.com/connmgr/connmgr/shared/identity"
	"github.com/connmgr/connmgr/shared/retry"
	"github.com/connmgr/connmgr/shared/store"
	"github.com/connmgr/connmgr/shared/vault"
)

// stateBytes is the entropy of a state: 256 bits.
const stateBytes = 32

// NewState returns a fresh random state, base64url without padding.
func NewState() (string, error) {
	b := make([]byte, stateBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("oauth: state: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// stateBinding binds a sealed PKCE verifier to its state item.
func stateBinding(tenant, state string) vault.Binding {
	return vault.Binding{Tenant: tenant, Subject: store.OAuthStateSubject(store.OAuthStateID(state)), Version: 1}
}

// CheckRedirectURI accepts an absolute https URL without fragment or
// credentials (http only on loopback when allowLoopbackHTTP).
func CheckRedirectURI(raw string, allowLoopbackHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || u.String() != raw {
		return fmt.Errorf("oauth: redirect URI %q must be an absolute URL in canonical form", raw)
	}
	if u.Scheme == "https" || (u.Scheme == "http" && allowLoopbackHTTP && isLoopback(u.Hostname())) {
		return nil
	}
	return fmt.Errorf("oauth: redirect URI %q must use https", raw)
}

// AuthorizerStore is what Begin needs of the store.
type AuthorizerStore interface {
	Get(ctx context.Context, tenant, id string) (*store.Record, error)
	GetOAuthClient(ctx context.Context, tenant, typ string) (*store.OAuthClient, error)
	PutOAuthState(ctx context.Context, state string, st *store.OAuthState) error
}

var _ AuthorizerStore = (*store.Store)(nil)

// Authorizer starts authorizations: it hands out authorize URLs.
type Authorizer struct {
	store       AuthorizerStore
	sealer      Sealer
	redirectURI string
	now         func() time.Time
}

// AuthorizerConfig configures an Authorizer.
type AuthorizerConfig struct {
	Store AuthorizerStore
	// Sealer seals the PKCE verifier (kms:GenerateDataKey).
	Sealer Sealer
	// RedirectURI is the callback's exact public URL, e.g.
	// https://api.example.com/oauth/callback; the same value the provider
	// has registered and the Callback is configured with.
	RedirectURI       string
	AllowLoopbackHTTP bool
	Now               func() time.Time
}

// NewAuthorizer checks cfg and returns an Authorizer.
func NewAuthorizer(cfg AuthorizerConfig) (*Authorizer, error) {
	if cfg.Store == nil || cfg.Sealer == nil {
		return nil, errors.New("oauth.NewAuthorizer: Store and Sealer are required")
	}
	if err := CheckRedirectURI(cfg.RedirectURI, cfg.AllowLoopbackHTTP); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Authorizer{store: cfg.Store, sealer: cfg.Sealer, redirectURI: cfg.RedirectURI, now: cfg.Now}, nil
}

// Authorization is where to send the user.
type Authorization struct {
	URL       string    `json:"authorizeUrl"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// Ready reports whether the tenant can authorize connections of typeID:
// nil, or ErrNotConfigured when no usable OAuth client is registered. The
// creation of an OAuth connection checks it before storing anything.
func (a *Authorizer) Ready(ctx context.Context, tenant, typeID string) error {
	typ, err := connection.Lookup(typeID, "type")
	if err != nil {
		return err
	}
	reg, err := a.store.GetOAuthClient(ctx, tenant, typ.ID)
	if apperr.Is(err, apperr.NotFound) {
		return ErrNotConfigured
	}
	if err != nil {
		return err
	}
	_, err = NewProvider(typ, reg, nil, ProviderOptions{Now: a.now})
	return err
}

// Begin starts the authorization of connection id for the caller
// (POST /connections/{id}/authorize). A connection the caller cannot see is
// NotFound; one they may not authorize is Forbidden.
func (a *Authorizer) Begin(ctx context.Context, caller identity.Caller, id string) (*Authorization, error) {
	rec, err := a.store.Get(ctx, caller.Tenant, id)
	if err != nil {
		return nil, err
	}
	if !connection.CanSee(caller, &rec.Conn) {
		return nil, apperr.NotFoundf("connection not found")
	}
	return a.BeginFor(ctx, caller, &rec.Conn)
}

// BeginFor is Begin for a connection already read (the creation of an
// OAuth connection calls it with the connection it just stored).
func (a *Authorizer) BeginFor(ctx context.Context, caller identity.Caller, conn *connection.Connection) (*Authorization, error) {
	if !connection.CanAuthorize(caller, conn) {
		return nil, apperr.E(apperr.Forbidden, "forbidden", "you may not authorize this connection")
	}
	typ, err := connection.Lookup(conn.Type, "type")
	if err != nil {
		return nil, err
	}
	if typ.AuthMethod != connection.AuthOAuth2Code {
		return nil, apperr.E(apperr.Invalid, "not_authorization_code", "this connection type does not use an authorization")
	}
	reg, err := a.store.GetOAuthClient(ctx, conn.Tenant, typ.ID)
	if apperr.Is(err, apperr.NotFound) {
		return nil, ErrNotConfigured
	}
	if err != nil {
		return nil, err
	}
	p, err := NewProvider(typ, reg, nil, ProviderOptions{Now: a.now})
	if err != nil {
		return nil, err
	}
	state, err := NewState()
	if err != nil {
		return nil, err
	}
	verifier := oauth2.GenerateVerifier()
	vb := []byte(verifier)
	sealedVerifier, err := a.sealer.Seal(ctx, stateBinding(conn.Tenant, state), vb)
	clear(vb)
	if err != nil {
		return nil, fmt.Errorf("oauth.Begin %s: %w", conn.ID, err)
	}
	now := a.now().UTC()
	st := &store.OAuthState{Tenant: conn.Tenant, User: caller.User, ConnectionID: conn.ID, ClientID: p.ClientID,
		RedirectURI: a.redirectURI, Verifier: sealedVerifier, CreatedAt: now, ExpiresAt: now.Add(store.OAuthStateTTL)}
	if err := a.store.PutOAuthState(ctx, state, st); err != nil {
		return nil, fmt.Errorf("oauth.Begin %s: %w", conn.ID, err)
	}
	return &Authorization{URL: p.AuthCodeURL(state, verifier, a.redirectURI, p.ScopesFor(conn.Settings)), ExpiresAt: st.ExpiresAt}, nil
}

// CallbackStore is what Complete needs of the store.
type CallbackStore interface {
	ConsumeOAuthState(ctx context.Context, state string) (*store.OAuthState, error)
	Get(ctx context.Context, tenant, id string) (*store.Record, error)
	GetOAuthClient(ctx context.Context, tenant, typ string) (*store.OAuthClient, error)
	PutTokens(ctx context.Context, w store.TokenWrite) error
}

var _ CallbackStore = (*store.Store)(nil)

// CallbackConfig configures a Callback.
type CallbackConfig struct {
	Store CallbackStore
	// Opener opens the client secret and the verifier (kms:Decrypt).
	Opener Opener
	// Sealer seals the tokens (kms:GenerateDataKey).
	Sealer Sealer
	// RedirectURI must equal the Authorizer's, character for character.
	RedirectURI       string
	AllowLoopbackHTTP bool
	// HTTPClient calls the token endpoint (default: NewHTTPClient with
	// public addresses only).
	HTTPClient *http.Client
	Now        func() time.Time
	// NewID makes audit entry ids (ULIDs).
	NewID func() string
}

// Callback completes authorizations (GET /oauth/callback).
type Callback struct {
	cfg CallbackConfig
}

// NewCallback checks cfg and returns a Callback.
func NewCallback(cfg CallbackConfig) (*Callback, error) {
	if cfg.Store == nil || cfg.Opener == nil || cfg.Sealer == nil || cfg.NewID == nil {
		return nil, errors.New("oauth.NewCallback: Store, Opener, Sealer and NewID are required")
	}
	if err := CheckRedirectURI(cfg.RedirectURI, cfg.AllowLoopbackHTTP); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Callback{cfg: cfg}, nil
}

// CallbackInput is the query of the request the provider redirected to.
type CallbackInput struct {
	State string `json:"state"`
	Code  string `json:"code"`
	// Error is the provider's "error" parameter (access_denied, ...).
	// error_description is deliberately not taken: it is the provider's
	// free text.
	Error string `json:"error,omitempty"`
	// RedirectURI, when set, is the URL the request arrived at (scheme,
	// host and path, no query); it must equal the one the authorization
	// was started with.
	RedirectURI string `json:"redirectUri,omitempty"`
}

// Completed is a successful authorization.
type Completed struct {
	Conn *connection.Connection
	// User started the authorization.
	User string
	// Events were written to the outbox with the tokens; publish them.
	Events []events.Event
}

// Errors of Complete. All are Invalid (the page answers 400) except
// provider_unavailable (503) and the store's and KMS's own.
var (
	ErrStateMissing      = apperr.E(apperr.Invalid, "state_missing", "the authorization response has no state")
	ErrRedirectMismatch  = apperr.E(apperr.Invalid, "redirect_uri_mismatch", "the authorization came back to a different address than it was started with")
	ErrCodeMissing       = apperr.E(apperr.Invalid, "code_missing", "the authorization response has no code")
	ErrClientChanged     = apperr.E(apperr.Invalid, "oauth_client_changed", "the OAuth client registration changed during the authorization; start again")
	ErrNotAuthorizable   = apperr.E(apperr.Invalid, "not_authorization_code", "this connection type does not use an authorization")
	ErrConnectionChanged = apperr.E(apperr.Conflict, "concurrent_change", "the connection kept changing during the authorization; start again")
)

// authorizationError is the provider's refusal, at the redirect
// (access_denied) or at the token endpoint (invalid_grant for a reused
// code or a wrong verifier): code authorization_failed, the provider's
// code in the message.
func authorizationError(code string, cause error) *apperr.Error {
	return apperr.Wrap(apperr.Invalid, "authorization_failed", "the provider did not grant access ("+code+"); start again", cause)
}

// Complete validates the state and exchanges the code. The state is
// consumed first, so whatever happens next it cannot be used again; nothing
// is stored unless the provider issued tokens.
func (c *Callback) Complete(ctx context.Context, in CallbackInput) (*Completed, error) {
	if in.State == "" {
		return nil, ErrStateMissing
	}
	st, err := c.cfg.Store.ConsumeOAuthState(ctx, in.State)
	if err != nil {
		return nil, err
	}
	if in.Error != "" {
		code := sanitizeCode(in.Error)
		if code == "" {
			code = "invalid_error_code"
		}
		return nil, authorizationError(code, &Error{Code: code, Rejected: true})
	}
	if st.RedirectURI != c.cfg.RedirectURI || (in.RedirectURI != "" && in.RedirectURI != st.RedirectURI) {
		return nil, ErrRedirectMismatch
	}
	if in.Code == "" {
		return nil, ErrCodeMissing
	}
	rec, err := c.cfg.Store.Get(ctx, st.Tenant, st.ConnectionID)
	if err != nil {
		return nil, err
	}
	typ, err := connection.Lookup(rec.Conn.Type, "type")
	if err != nil {
		return nil, err
	}
	if typ.AuthMethod != connection.AuthOAuth2Code {
		return nil, ErrNotAuthorizable
	}
	reg, err := c.cfg.Store.GetOAuthClient(ctx, st.Tenant, typ.ID)
	if apperr.Is(err, apperr.NotFound) {
		return nil, ErrNotConfigured
	}
	if err != nil {
		return nil, err
	}
	if reg.ClientID != st.ClientID {
		return nil, ErrClientChanged
	}
	secret, err := c.cfg.Opener.Open(ctx, reg.SecretBinding(), reg.Secret)
	if err != nil {
		return nil, fmt.Errorf("oauth.Complete client secret: %w", err)
	}
	p, err := NewProvider(typ, reg, secret, ProviderOptions{HTTPClient: c.cfg.HTTPClient, Now: c.cfg.Now})
	clear(secret)
	if err != nil {
		return nil, err
	}
	verifier, err := c.cfg.Opener.Open(ctx, stateBinding(st.Tenant, in.State), st.Verifier)
	if err != nil {
		return nil, fmt.Errorf("oauth.Complete verifier: %w", err)
	}
	tokens, err := p.Exchange(ctx, in.Code, string(verifier), st.RedirectURI)
	clear(verifier)
	if err != nil {
		if pe, ok := AsError(err); ok && pe.Rejected {
			return nil, authorizationError(pe.Code, err)
		}
		return nil, apperr.Wrap(apperr.Unavailable, "provider_unavailable", "the provider could not be reached; start again", err)
	}
	// Store, re-reading when an edit or a refresh moved the connection on
	// (a conditional-check race, which the SDK does not retry).
	var evs []events.Event
	err = storeRetry.Do(ctx, func(attempt int) (bool, error) {
		var err error
		if attempt > 1 {
			if rec, err = c.cfg.Store.Get(ctx, st.Tenant, st.ConnectionID); err != nil {
				return false, err
			}
		}
		evs, err = c.store(ctx, &rec.Conn, st.User, tokens, p.TokenOrigin())
		return apperr.Is(err, apperr.PreconditionFailed), err
	})
	if err != nil {
		return nil, err
	}
	rec, err = c.cfg.Store.Get(ctx, st.Tenant, st.ConnectionID)
	if err != nil {
		return nil, err
	}
	return &Completed{Conn: &rec.Conn, User: st.User, Events: evs}, nil
}

// storeRetry bounds Complete's attempts at storing the tokens when the
// connection moved on between its read and the write.
var storeRetry = retry.Policy{Attempts: 3, Base: 10 * time.Millisecond, Max: 50 * time.Millisecond}

// store writes the new tokens with their audit entry and events: Connection
// Updated (the credentials changed, so runs suspended on the connection
// resume) and, when it ends an expired or failing state, Connection
// Recovered.
func (c *Callback) store(ctx context.Context, conn *connection.Connection, user string, tokens *TokenSet, tokenOrigin string) ([]events.Event, error) {
	next := conn.SecretVersion + 1
	pt, err := tokens.Encode()
	if err != nil {
		return nil, err
	}
	bound := *conn
	bound.TokenEndpoint = tokenOrigin
	sealed, err := c.cfg.Sealer.Seal(ctx, bound.Binding(next), pt)
	clear(pt)
	if err != nil {
		return nil, fmt.Errorf("oauth.Complete seal: %w", err)
	}
	now := c.cfg.Now().UTC()
	after := *conn
	after.Version, after.SecretVersion, after.Status, after.StatusReason, after.UpdatedAt = conn.Version+1, next, connection.StatusActive, "", now
	after.TokenExpiresAt, after.RefreshTokenExpiresAt, after.TokenEndpoint = tokens.ExpiresAt(), tokens.RefreshExpiresAt(), tokenOrigin
	changes := []string{"credentials.accessToken", "credentials.refreshToken", "status"}
	evs := []events.Event{events.ForConnection(events.ConnectionUpdated, &after, c.cfg.NewID(), user, expiry.ReasonAuthorized, changes, now)}
	switch conn.Status {
	case connection.StatusExpired, connection.StatusExpiring, connection.StatusError:
		evs = append(evs, events.ForConnection(events.ConnectionRecovered, &after, c.cfg.NewID(), user, expiry.ReasonAuthorized, changes, now))
	}
	return evs, c.cfg.Store.PutTokens(ctx, store.TokenWrite{
		Tenant: conn.Tenant, ID: conn.ID, FromSecretVersion: conn.SecretVersion, Secret: sealed, TokenEndpoint: tokenOrigin,
		SecretFields: tokens.SecretFields(), TokenExpiresAt: tokens.ExpiresAt(), RefreshTokenExpiresAt: tokens.RefreshExpiresAt(),
		ExpectedVersion: conn.Version,
		Audit: &connection.AuditEntry{ID: c.cfg.NewID(), At: now, Actor: user, Action: connection.ActionAuthorized, Version: conn.Version + 1,
			Changes: []string{"credentials.accessToken", "credentials.refreshToken", "status"},
			Details: map[string]string{"secretVersion": fmt.Sprint(next), "status": string(connection.StatusActive)}},
		Events: evs,
	})
}
