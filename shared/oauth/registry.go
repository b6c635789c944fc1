package oauth

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/expiry"
	"github.com/connmgr/connmgr/shared/identity"
	"github.com/connmgr/connmgr/shared/secret"
	"github.com/connmgr/connmgr/shared/store"
	"github.com/connmgr/connmgr/shared/vault"
)

// Sealer encrypts secrets (vault.Sealer).
type Sealer interface {
	Seal(ctx context.Context, b vault.Binding, plaintext []byte) (vault.Sealed, error)
}

// Opener decrypts secrets (vault.Opener).
type Opener interface {
	Open(ctx context.Context, b vault.Binding, s vault.Sealed) ([]byte, error)
}

// ClientStore is what the Registry needs of the store.
type ClientStore interface {
	GetOAuthClient(ctx context.Context, tenant, typ string) (*store.OAuthClient, error)
	GetOAuthClients(ctx context.Context, tenant string, typeIDs []string) (map[string]*store.OAuthClient, error)
	PutOAuthClient(ctx context.Context, c *store.OAuthClient, expected int64) error
	DeleteOAuthClient(ctx context.Context, tenant, typ string, expected int64) error
	// Policy is the due policy the store files registrations by: its
	// window decides which secret expiry dates a new secret clears.
	Policy() expiry.Policy
}

var _ ClientStore = (*store.Store)(nil)

// Registry manages tenants' OAuth client registrations: the endpoints a
// tenant administrator uses (for example PUT, GET and DELETE
// /oauth-clients/{type}). The client secret is sealed on the way in and
// never comes out.
type Registry struct {
	store  ClientStore
	sealer Sealer
	now    func() time.Time
	// allowLoopbackHTTP admits http:// URLs on loopback hosts (the local
	// provider of `make dev`); production keeps https only.
	allowLoopbackHTTP bool
}

// RegistryOptions adjust a Registry.
type RegistryOptions struct {
	Now func() time.Time
	// AllowLoopbackHTTP admits http://127.0.0.1 and http://localhost
	// endpoints; set only by the local runtime.
	AllowLoopbackHTTP bool
}

// NewRegistry returns a Registry. The sealer needs kms:GenerateDataKey only.
func NewRegistry(st ClientStore, sealer Sealer, opts RegistryOptions) *Registry {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Registry{store: st, sealer: sealer, now: opts.Now, allowLoopbackHTTP: opts.AllowLoopbackHTTP}
}

// ClientInput is a registration as a tenant administrator sends it.
// ClientSecret is write-only: required on creation, kept when empty on an
// update; as a secret.String it never prints.
//
// ClientSecretExpiresAt (RFC 3339) is when the client secret expires, as
// the provider's console says; the expiry check tells the tenant's
// administrators when it enters the expiring window and when it passes.
// Absent (or null) keeps the registered date, except that a new secret
// without a date clears one that is past or inside the window (it
// described the secret replaced); "" clears it. A date sent must be in the
// future, unless it is the registered date of an unchanged secret (a view
// sent back as read).
//
// DirectoryTenant is the Microsoft Entra ID directory (GUID or verified
// domain) of the types whose default endpoints name one (SharePoint): it
// belongs to the registration, not to each connection, because the
// application is registered in the tenant's one directory and the client
// secret or certificate goes to that directory's token endpoint; a
// connection's owner must not be able to point the tenant's client at
// another directory. Required unless authorizeUrl and tokenUrl override
// the defaults in use (the local provider); refused for other types.
//
// ClientCertificate (PEM, public) and ClientPrivateKey (PEM, PKCS #8 or
// PKCS #1 RSA, write-only like ClientSecret) replace the client secret of
// the types whose client authenticates with a certificate
// (private_key_jwt: sharepoint-online-app): both on creation, both or
// neither on an update; the key must be the certificate's, and the
// certificate's notAfter becomes clientSecretExpiresAt.
type ClientInput struct {
	ClientID              string        `json:"clientId"`
	ClientSecret          secret.String `json:"clientSecret,omitempty"`
	ClientSecretExpiresAt *string       `json:"clientSecretExpiresAt,omitempty"`
	ClientCertificate     string        `json:"clientCertificate,omitempty"`
	ClientPrivateKey      secret.String `json:"clientPrivateKey,omitempty"`
	DirectoryTenant       string        `json:"directoryTenant,omitempty"`
	AuthorizeURL          string        `json:"authorizeUrl,omitempty"`
	TokenURL              string        `json:"tokenUrl,omitempty"`
	Scopes                []string      `json:"scopes,omitempty"`
	AuthStyle             string        `json:"authStyle,omitempty"`
}

// ClientView is a registration as the API shows it: no secret, only
// whether one is set.
type ClientView struct {
	Type         string `json:"type"`
	ClientID     string `json:"clientId"`
	ClientSecret bool   `json:"clientSecretSet"`
	// ClientSecretExpiresAt is when the secret expires, if registered (a
	// certificate's notAfter).
	ClientSecretExpiresAt time.Time `json:"clientSecretExpiresAt,omitzero"`
	// ClientCertificateThumbprint is the hex SHA-1 thumbprint of the
	// registered certificate (certificate types only).
	ClientCertificateThumbprint string    `json:"clientCertificateThumbprint,omitempty"`
	DirectoryTenant             string    `json:"directoryTenant,omitempty"`
	AuthorizeURL                string    `json:"authorizeUrl,omitempty"`
	TokenURL                    string    `json:"tokenUrl,omitempty"`
	Scopes                      []string  `json:"scopes,omitempty"`
	AuthStyle                   string    `json:"authStyle"`
	Version                     int64     `json:"version"`
	UpdatedAt                   time.Time `json:"updatedAt"`
	UpdatedBy                   string    `json:"updatedBy"`
}

func viewOf(c *store.OAuthClient) *ClientView {
	style := c.AuthStyle
	if style == "" {
		style = AuthStyleParams
	}
	return &ClientView{Type: c.Type, ClientID: c.ClientID, ClientSecret: !c.Secret.IsZero(), ClientSecretExpiresAt: c.SecretExpiresAt,
		ClientCertificateThumbprint: c.CertificateThumbprint, DirectoryTenant: c.DirectoryTenant, AuthorizeURL: c.AuthorizeURL, TokenURL: c.TokenURL, Scopes: c.Scopes, AuthStyle: style, Version: c.Version, UpdatedAt: c.UpdatedAt, UpdatedBy: c.UpdatedBy}
}

var errForbidden = apperr.E(apperr.Forbidden, "forbidden", "only tenant administrators manage OAuth clients")

func oauthType(typeID string) (*connection.Type, error) {
	typ, err := connection.Lookup(typeID, "type")
	if err != nil {
		return nil, err
	}
	if !typ.AuthMethod.IsOAuth() {
		return nil, apperr.InvalidField("type", "not_oauth", "connection type %s does not use OAuth", typ.ID)
	}
	return typ, nil
}

// Get returns the tenant's registration for typeID.
func (r *Registry) Get(ctx context.Context, caller identity.Caller, typeID string) (*ClientView, error) {
	if !connection.CanManageOAuthClients(caller) {
		return nil, errForbidden
	}
	if _, err := oauthType(typeID); err != nil {
		return nil, err
	}
	c, err := r.store.GetOAuthClient(ctx, caller.Tenant, typeID)
	if err != nil {
		return nil, err
	}
	return viewOf(c), nil
}

// List returns the tenant's registrations, one per OAuth type that has one.
func (r *Registry) List(ctx context.Context, caller identity.Caller) ([]*ClientView, error) {
	if !connection.CanManageOAuthClients(caller) {
		return nil, errForbidden
	}
	var ids []string
	for _, t := range connection.Types() {
		if t.AuthMethod.IsOAuth() {
			ids = append(ids, t.ID)
		}
	}
	// One read for every type, not one per type.
	got, err := r.store.GetOAuthClients(ctx, caller.Tenant, ids)
	if err != nil {
		return nil, err
	}
	var out []*ClientView
	for _, id := range ids {
		if c, ok := got[id]; ok {
			out = append(out, viewOf(c))
		}
	}
	return out, nil
}

// Put creates (ifMatch 0) or replaces (ifMatch = the version read) the
// registration for typeID.
func (r *Registry) Put(ctx context.Context, caller identity.Caller, typeID string, in ClientInput, ifMatch int64) (*ClientView, error) {
	if !connection.CanManageOAuthClients(caller) {
		return nil, errForbidden
	}
	typ, err := oauthType(typeID)
	if err != nil {
		return nil, err
	}
	if err := r.validate(typ, &in); err != nil {
		return nil, err
	}
	exp, expGiven, err := secretExpiry(in.ClientSecretExpiresAt)
	if err != nil {
		return nil, err
	}
	now := r.now().UTC()
	// The field that carries the secret of this type, for errors.
	secretField := "clientSecret"
	var cert *clientCertificate
	if typ.OAuth.UsesCertificate() {
		secretField = fieldPrivateKey
		if in.ClientCertificate != "" {
			if cert, err = parseClientCertificate(in.ClientCertificate, in.ClientPrivateKey.Reveal(), now); err != nil {
				return nil, err
			}
		}
	}
	next := &store.OAuthClient{Tenant: caller.Tenant, Type: typ.ID, ClientID: in.ClientID, AuthorizeURL: in.AuthorizeURL,
		TokenURL: in.TokenURL, Scopes: in.Scopes, AuthStyle: in.AuthStyle, DirectoryTenant: in.DirectoryTenant, SecretExpiresAt: exp,
		Version: ifMatch + 1, UpdatedAt: now, UpdatedBy: caller.User}
	newSecret := !in.ClientSecret.IsZero() || cert != nil
	var prev *store.OAuthClient
	if ifMatch != 0 {
		if prev, err = r.store.GetOAuthClient(ctx, caller.Tenant, typ.ID); err != nil {
			return nil, err
		}
		if prev.Version != ifMatch {
			return nil, apperr.E(apperr.PreconditionFailed, "version_mismatch", "the OAuth client was changed by someone else; read it again")
		}
		next.Secret, next.SecretVersion, next.CertificateThumbprint = prev.Secret, prev.SecretVersion, prev.CertificateThumbprint
		if !newSecret && !slices.Equal(prev.Destinations(), next.Destinations()) {
			// The client secret goes to the token endpoint: it never
			// follows the registration to another host.
			return nil, apperr.ConflictField(secretField, "credentials_required", "changing the endpoints' hosts needs the %s in the same request", secretField)
		}
		if !expGiven {
			next.SecretExpiresAt = prev.SecretExpiresAt
			if newSecret && !r.store.Policy().ClientSecretCurrent(prev.SecretExpiresAt, now) {
				next.SecretExpiresAt = time.Time{} // it described the secret replaced
			}
		}
	} else if !newSecret && typ.OAuth.UsesCertificate() {
		return nil, apperr.InvalidField(fieldCertificate, "required", "clientCertificate and clientPrivateKey are required")
	} else if !newSecret {
		return nil, apperr.InvalidField("clientSecret", "required", "clientSecret is required")
	}
	if cert != nil {
		// The certificate says when it expires.
		next.SecretExpiresAt, next.CertificateThumbprint = cert.cert.NotAfter.UTC().Truncate(time.Second), cert.thumbprint()
	}
	if expGiven && !exp.IsZero() && !exp.After(now) && (prev == nil || newSecret || !exp.Equal(prev.SecretExpiresAt)) {
		return nil, apperr.InvalidField("clientSecretExpiresAt", "invalid_value", "clientSecretExpiresAt must be in the future")
	}
	// What was announced of the secret's expiry holds while the secret and
	// its date do; a new secret or date is announced afresh.
	if prev != nil && !newSecret && next.SecretExpiresAt.Equal(prev.SecretExpiresAt) {
		next.SecretNotice = prev.SecretNotice
	}
	if newSecret {
		next.SecretVersion++
		var pt []byte
		if cert != nil {
			if pt, err = cert.encode(); err != nil {
				return nil, fmt.Errorf("oauth.Registry.Put %s: %w", typ.ID, err)
			}
		} else {
			pt = []byte(in.ClientSecret.Reveal())
		}
		next.Secret, err = r.sealer.Seal(ctx, next.SecretBinding(), pt)
		clear(pt)
		if err != nil {
			return nil, fmt.Errorf("oauth.Registry.Put %s: %w", typ.ID, err)
		}
	}
	if err := r.store.PutOAuthClient(ctx, next, ifMatch); err != nil {
		return nil, err
	}
	return viewOf(next), nil
}

// Delete removes the registration at version ifMatch. Connections of the
// type keep their tokens but cannot refresh until a client is registered.
func (r *Registry) Delete(ctx context.Context, caller identity.Caller, typeID string, ifMatch int64) error {
	if !connection.CanManageOAuthClients(caller) {
		return errForbidden
	}
	if _, err := oauthType(typeID); err != nil {
		return err
	}
	if ifMatch <= 0 {
		return apperr.E(apperr.PreconditionRequired, "if_match_required", "send If-Match with the version read")
	}
	return r.store.DeleteOAuthClient(ctx, caller.Tenant, typeID, ifMatch)
}

// secretExpiry reads clientSecretExpiresAt: given reports it was sent
// (a zero time then clears the date; only "" clears it, never a
// placeholder date such as 0001-01-01 or 1970-01-01, which
// connection.ValidTimestamp refuses). Seconds are kept, as stored.
func secretExpiry(v *string) (t time.Time, given bool, err error) {
	if v == nil {
		return time.Time{}, false, nil
	}
	raw := strings.TrimSpace(*v)
	if raw == "" {
		return time.Time{}, true, nil
	}
	if t, err = connection.ValidTimestamp("clientSecretExpiresAt", raw); err != nil {
		return time.Time{}, false, err
	}
	return t.Truncate(time.Second), true, nil
}

func (r *Registry) validate(typ *connection.Type, in *ClientInput) error {
	in.ClientID = strings.TrimSpace(in.ClientID)
	if in.ClientID == "" || len(in.ClientID) > 512 {
		return apperr.InvalidField("clientId", "required", "clientId is required (at most 512 characters)")
	}
	if len(in.ClientSecret.Reveal()) > 4096 {
		return apperr.InvalidField("clientSecret", "invalid_value", "clientSecret is at most 4096 characters")
	}
	if err := r.validateClientAuth(typ, in); err != nil {
		return err
	}
	if err := r.validateDirectoryTenant(typ, in); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		v    string
	}{{"authorizeUrl", in.AuthorizeURL}, {"tokenUrl", in.TokenURL}} {
		if f.v != "" {
			if err := r.checkEndpoint(f.name, f.v); err != nil {
				return err
			}
		}
	}
	if typ.AuthMethod == connection.AuthOAuth2Code && in.AuthorizeURL == "" && (typ.OAuth == nil || typ.OAuth.AuthorizeURL == "") {
		return apperr.InvalidField("authorizeUrl", "required", "this connection type has no default authorization endpoint: authorizeUrl is required")
	}
	if in.TokenURL == "" && (typ.OAuth == nil || typ.OAuth.TokenURL == "") {
		return apperr.InvalidField("tokenUrl", "required", "this connection type has no default token endpoint: tokenUrl is required")
	}
	if len(in.Scopes) > 50 {
		return apperr.InvalidField("scopes", "invalid_value", "at most 50 scopes")
	}
	for _, s := range in.Scopes {
		if s == "" || len(s) > 256 || strings.ContainsAny(s, " \t\r\n") {
			return apperr.InvalidField("scopes", "invalid_value", "a scope is 1 to 256 characters without spaces")
		}
	}
	switch in.AuthStyle {
	case "", AuthStyleParams, AuthStyleHeader:
	default:
		return apperr.InvalidField("authStyle", "invalid_value", "authStyle is params or header")
	}
	return nil
}

// validateClientAuth checks that the client authenticates as the type
// says: a client secret, or a certificate and its private key (both on
// creation, both or neither later; Put parses them).
func (r *Registry) validateClientAuth(typ *connection.Type, in *ClientInput) error {
	if !typ.OAuth.UsesCertificate() {
		for _, f := range []struct {
			name string
			set  bool
		}{{fieldCertificate, in.ClientCertificate != ""}, {fieldPrivateKey, !in.ClientPrivateKey.IsZero()}} {
			if f.set {
				return apperr.InvalidField(f.name, "not_applicable", "this connection type's client authenticates with a client secret; %s does not apply", f.name)
			}
		}
		return nil
	}
	switch {
	case !in.ClientSecret.IsZero():
		return apperr.InvalidField("clientSecret", "not_applicable", "this connection type's client authenticates with a certificate: send clientCertificate and clientPrivateKey instead")
	case in.ClientSecretExpiresAt != nil:
		return apperr.InvalidField("clientSecretExpiresAt", "not_applicable", "the certificate's notAfter is the expiry date of this connection type's client; leave clientSecretExpiresAt out")
	case in.AuthStyle == AuthStyleHeader:
		return apperr.InvalidField("authStyle", "not_applicable", "a client assertion is sent in the form: authStyle header does not apply")
	case in.ClientCertificate != "" && in.ClientPrivateKey.IsZero():
		return apperr.InvalidField(fieldPrivateKey, "required", "clientPrivateKey is required with clientCertificate")
	case in.ClientCertificate == "" && !in.ClientPrivateKey.IsZero():
		return apperr.InvalidField(fieldCertificate, "required", "clientCertificate is required with clientPrivateKey")
	}
	return nil
}

// validateDirectoryTenant canonicalizes the directory tenant of a type
// whose default endpoints name one; it is required unless every endpoint
// in use is overridden.
func (r *Registry) validateDirectoryTenant(typ *connection.Type, in *ClientInput) error {
	if !typ.OAuth.NeedsDirectoryTenant() {
		if in.DirectoryTenant != "" {
			return apperr.InvalidField("directoryTenant", "not_applicable", "connection type %s does not name a directory tenant", typ.ID)
		}
		return nil
	}
	if in.DirectoryTenant != "" {
		v, err := connection.CanonicalDirectoryTenant("directoryTenant", in.DirectoryTenant)
		if err != nil {
			return err
		}
		in.DirectoryTenant = v
		return nil
	}
	overridden := in.TokenURL != "" && (typ.AuthMethod != connection.AuthOAuth2Code || in.AuthorizeURL != "")
	if !overridden {
		return apperr.InvalidField("directoryTenant", "required", "directoryTenant is required: the directory (tenant) ID or a verified domain of the Microsoft Entra ID directory the application is registered in")
	}
	return nil
}

// checkEndpoint accepts absolute https URLs without credentials or a
// fragment (and http on loopback when allowed).
func (r *Registry) checkEndpoint(field, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || len(raw) > 2048 || u.Host == "" || u.User != nil || u.Fragment != "" {
		return apperr.InvalidField(field, "invalid_url", "%s must be an absolute https URL without credentials or fragment", field)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if r.allowLoopbackHTTP && isLoopback(u.Hostname()) {
			return nil
		}
	}
	return apperr.InvalidField(field, "invalid_url", "%s must be an https URL", field)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
