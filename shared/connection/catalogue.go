package connection

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/connmgr/connmgr/shared/apperr"
)

// AuthMethod is how a connection type authenticates.
type AuthMethod string

const (
	AuthBasic  AuthMethod = "basic"
	AuthAPIKey AuthMethod = "apiKey"
	// AuthOAuth2Code is the authorization code grant with PKCE.
	AuthOAuth2Code AuthMethod = "oauth2AuthorizationCode"
	// AuthOAuth2Client is the client credentials grant.
	AuthOAuth2Client AuthMethod = "oauth2ClientCredentials"
)

// IsOAuth reports whether the method obtains tokens from an OAuth 2 server.
func (m AuthMethod) IsOAuth() bool { return m == AuthOAuth2Code || m == AuthOAuth2Client }

// OAuthEndpoints are a provider's defaults; a tenant's client registration may override them.
type OAuthEndpoints struct {
	// AuthorizeURL and TokenURL may hold DirectoryTenantPlaceholder: the
	// tenant's registration names the directory (its directoryTenant).
	AuthorizeURL string   `json:"authorizeUrl,omitempty"`
	TokenURL     string   `json:"tokenUrl,omitempty"`
	Scopes       []string `json:"scopes,omitempty"`
	// ClientAuth is how the tenant's registered client authenticates at
	// the token endpoint: ClientAuthSecret (the default) or
	// ClientAuthPrivateKeyJWT.
	ClientAuth ClientAuth `json:"clientAuth,omitempty"`
	// ResourceSetting names the setting whose origin is the resource the
	// tokens are for (Microsoft identity platform): the scope
	// "<origin>/.default" is requested before Scopes.
	ResourceSetting string `json:"resourceSetting,omitempty"`
}

// ClientAuth is how an OAuth client authenticates at the token endpoint.
type ClientAuth string

const (
	// ClientAuthSecret: a client secret (client_secret_post or _basic).
	ClientAuthSecret ClientAuth = "clientSecret"
	// ClientAuthPrivateKeyJWT: a JWT signed with the private key of a
	// certificate registered at the provider (RFC 7523, private_key_jwt).
	ClientAuthPrivateKeyJWT ClientAuth = "privateKeyJwt"
)

// DirectoryTenantPlaceholder in a type's default endpoints is replaced by
// the directory tenant (a GUID or a verified domain) of the tenant's
// registration.
const DirectoryTenantPlaceholder = "{directoryTenant}"

// NeedsDirectoryTenant reports whether the default endpoints name the
// directory tenant of the registration.
func (o *OAuthEndpoints) NeedsDirectoryTenant() bool {
	return o != nil && (strings.Contains(o.AuthorizeURL, DirectoryTenantPlaceholder) || strings.Contains(o.TokenURL, DirectoryTenantPlaceholder))
}

// UsesCertificate reports whether the registered client authenticates with
// a certificate's private key rather than a client secret.
func (o *OAuthEndpoints) UsesCertificate() bool {
	return o != nil && o.ClientAuth == ClientAuthPrivateKeyJWT
}

// Type is one entry of the catalogue.
type Type struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	AuthMethod  AuthMethod      `json:"authMethod"`
	Settings    json.RawMessage `json:"settingsSchema"`
	Credentials json.RawMessage `json:"credentialsSchema"`
	// OAuth holds provider defaults for OAuth types.
	OAuth *OAuthEndpoints `json:"oauth,omitempty"`
	// BaseURLSetting names the setting holding the host credentials may be
	// sent to; BaseURL is used instead when the type has a fixed host.
	BaseURLSetting string `json:"-"`
	BaseURL        string `json:"-"`
	// BaseURLOrigin: requests go to the origin of BaseURLSetting's value,
	// not to the URL itself (a SharePoint site URL names the host of the
	// whole tenant's SharePoint; paths are from its root).
	BaseURLOrigin bool `json:"-"`
	// SharePointSiteSetting names the setting that must be a SharePoint
	// Online site URL, https://<name>.sharepoint.com/... (CheckSettings).
	SharePointSiteSetting string `json:"-"`

	settings, credentials *schema
	secretFields          []string
	destinationSettings   []string
}

// SecretFields lists the credential fields the type declares, sorted.
func (t *Type) SecretFields() []string { return t.secretFields }

const (
	urlSchema      = `{"type": "string", "format": "uri", "pattern": "^https?://[^/?#]+", "maxLength": 2048, "description": "An absolute URL without user info or fragment; https unless the deployment allows local target networks."}`
	expirySchema   = `{"type": "string", "format": "date-time", "description": "When the password expires (RFC 3339, 2000-01-01 to 9999-12-31); the expiry check warns owners before."}`
	pathSchema     = `{"type": "string", "pattern": "^/", "maxLength": 1024, "description": "A path on the connection's own host used by the connection test; no '.' or '..' segment, raw or percent-encoded."}`
	scopesSchema   = `{"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 256}, "maxItems": 50}`
	secretString   = `{"type": "string", "minLength": 1, "maxLength": 4096, "writeOnly": true}`
	usernameSchema = `{"type": "string", "minLength": 1, "maxLength": 256, "writeOnly": true}`
	siteURLSchema  = `{"type": "string", "format": "uri", "pattern": "^https?://[^/?#]+", "maxLength": 2048, "description": "A SharePoint Online site, https://<name>.sharepoint.com/sites/<site>: its host is the resource the tokens are for, and requests go to it."}`
)

// microsoftAuthority is the Microsoft identity platform (v2.0 endpoints)
// of one directory: tenant-specific, as SharePoint Online needs.
const microsoftAuthority = "https://login.microsoftonline.com/" + DirectoryTenantPlaceholder + "/oauth2/v2.0"

func object(required []string, props map[string]string) json.RawMessage {
	var b bytes.Buffer
	b.WriteString(`{"type": "object", "additionalProperties": false, "properties": {`)
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q: %s", k, props[k])
	}
	b.WriteString(`}, "required": [`)
	for i, k := range required {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", k)
	}
	b.WriteString("]}")
	return json.RawMessage(b.String())
}

var builtinTypes = []*Type{
	{
		ID: "http-basic", Name: "HTTP with Basic authentication",
		Description:    "Any HTTP API on one host, authenticated with a username and password.",
		AuthMethod:     AuthBasic,
		Settings:       object([]string{"baseUrl"}, map[string]string{"baseUrl": urlSchema, "passwordExpiresAt": expirySchema, "testPath": pathSchema}),
		Credentials:    object([]string{"username", "password"}, map[string]string{"username": usernameSchema, "password": secretString}),
		BaseURLSetting: "baseUrl",
	},
	{
		ID: "http-api-key", Name: "HTTP with an API key",
		Description: "Any HTTP API on one host, authenticated with an API key sent in a header.",
		AuthMethod:  AuthAPIKey,
		Settings: object([]string{"baseUrl", "headerName"}, map[string]string{
			"baseUrl":    urlSchema,
			"headerName": `{"type": "string", "pattern": "^[A-Za-z0-9!#$%&'*+.^_|~-]{1,128}$"}`,
			"testPath":   pathSchema,
		}),
		Credentials:    object([]string{"apiKey"}, map[string]string{"apiKey": secretString}),
		BaseURLSetting: "baseUrl",
	},
	{
		ID: "sharepoint-online", Name: "SharePoint Online",
		Description: "SharePoint Online sites of one Microsoft 365 tenant, as the user who authorizes the connection: delegated OAuth 2 permissions " +
			"(authorization code with PKCE) from the Microsoft identity platform of the directory the tenant's registration names. " +
			"Tokens are for https://<name>.sharepoint.com/.default, the host of siteUrl; requests go to that host.",
		AuthMethod:  AuthOAuth2Code,
		Settings:    object([]string{"siteUrl"}, map[string]string{"siteUrl": siteURLSchema, "testPath": pathSchema}),
		Credentials: object(nil, map[string]string{}),
		OAuth: &OAuthEndpoints{
			AuthorizeURL: microsoftAuthority + "/authorize", TokenURL: microsoftAuthority + "/token",
			Scopes: []string{"offline_access"}, ResourceSetting: "siteUrl",
		},
		BaseURLSetting: "siteUrl", BaseURLOrigin: true, SharePointSiteSetting: "siteUrl",
	},
	{
		ID: "sharepoint-online-app", Name: "SharePoint Online (app-only)",
		Description: "SharePoint Online sites of one Microsoft 365 tenant, as the tenant's registered application: application permissions " +
			"(client credentials grant) with a certificate, from the Microsoft identity platform of the directory the tenant's registration names. " +
			"Tokens are for https://<name>.sharepoint.com/.default, the host of siteUrl; requests go to that host.",
		AuthMethod:  AuthOAuth2Client,
		Settings:    object([]string{"siteUrl"}, map[string]string{"siteUrl": siteURLSchema, "testPath": pathSchema}),
		Credentials: object(nil, map[string]string{}),
		OAuth: &OAuthEndpoints{
			AuthorizeURL: microsoftAuthority + "/authorize", TokenURL: microsoftAuthority + "/token",
			ClientAuth: ClientAuthPrivateKeyJWT, ResourceSetting: "siteUrl",
		},
		BaseURLSetting: "siteUrl", BaseURLOrigin: true, SharePointSiteSetting: "siteUrl",
	},
	{
		ID: "oauth2-generic", Name: "OAuth 2 (generic)",
		Description:    "Any HTTP API that accepts OAuth 2 bearer tokens, through the tenant's registered OAuth client.",
		AuthMethod:     AuthOAuth2Code,
		Settings:       object(nil, map[string]string{"baseUrl": urlSchema, "scopes": scopesSchema, "testUrl": urlSchema}),
		Credentials:    object(nil, map[string]string{}),
		BaseURLSetting: "baseUrl",
	},
	{
		ID: "oauth2-client-credentials", Name: "OAuth 2 client credentials (generic)",
		Description:    "Any HTTP API that accepts OAuth 2 bearer tokens obtained with the client credentials grant, through the tenant's registered OAuth client.",
		AuthMethod:     AuthOAuth2Client,
		Settings:       object([]string{"baseUrl"}, map[string]string{"baseUrl": urlSchema, "scopes": scopesSchema, "testUrl": urlSchema}),
		Credentials:    object(nil, map[string]string{}),
		BaseURLSetting: "baseUrl",
	},
	{
		ID: "microsoft-graph", Name: "Microsoft Graph",
		Description: "Microsoft 365 through Microsoft Graph, with delegated OAuth 2 permissions.",
		AuthMethod:  AuthOAuth2Code,
		Settings:    object(nil, map[string]string{"scopes": scopesSchema}),
		Credentials: object(nil, map[string]string{}),
		OAuth: &OAuthEndpoints{
			AuthorizeURL: "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
			TokenURL:     "https://login.microsoftonline.com/common/oauth2/v2.0/token",
			Scopes:       []string{"offline_access", "https://graph.microsoft.com/.default"},
		},
		BaseURL: "https://graph.microsoft.com",
	},
	{
		ID: "salesforce", Name: "Salesforce",
		Description:    "Salesforce REST APIs, with OAuth 2 (web server flow).",
		AuthMethod:     AuthOAuth2Code,
		Settings:       object([]string{"instanceUrl"}, map[string]string{"instanceUrl": urlSchema, "scopes": scopesSchema}),
		Credentials:    object(nil, map[string]string{}),
		OAuth:          &OAuthEndpoints{AuthorizeURL: "https://login.salesforce.com/services/oauth2/authorize", TokenURL: "https://login.salesforce.com/services/oauth2/token", Scopes: []string{"api", "refresh_token"}},
		BaseURLSetting: "instanceUrl",
	},
}

var (
	compileOnce sync.Once
	compileErr  error
	typeIndex   map[string]*Type
)

func compileCatalogue() {
	typeIndex = make(map[string]*Type, len(builtinTypes))
	for _, t := range builtinTypes {
		var err error
		if t.settings, err = compileSchema(t.ID+"/settings", t.Settings); err != nil {
			compileErr = err
			return
		}
		if t.credentials, err = compileSchema(t.ID+"/credentials", t.Credentials); err != nil {
			compileErr = err
			return
		}
		var decl struct {
			Properties map[string]json.RawMessage `json:"properties"`
		}
		if err := json.Unmarshal(t.Credentials, &decl); err != nil {
			compileErr = err
			return
		}
		for k := range decl.Properties {
			t.secretFields = append(t.secretFields, k)
		}
		slices.Sort(t.secretFields)
		var sdecl struct {
			Properties map[string]struct {
				Format string `json:"format"`
			} `json:"properties"`
		}
		if err := json.Unmarshal(t.Settings, &sdecl); err != nil {
			compileErr = err
			return
		}
		for k, p := range sdecl.Properties {
			if p.Format == "uri" {
				t.destinationSettings = append(t.destinationSettings, k)
			}
		}
		slices.Sort(t.destinationSettings)
		typeIndex[t.ID] = t
	}
}

// Types returns the catalogue in a stable order.
func Types() []*Type {
	compileOnce.Do(compileCatalogue)
	if compileErr != nil {
		panic(compileErr) // the catalogue is compiled into the binary; a bad schema is a build defect
	}
	return builtinTypes
}

// Lookup finds a type by id; an unknown id is invalid input in field.
func Lookup(id, field string) (*Type, error) {
	Types()
	if t, ok := typeIndex[id]; ok {
		return t, nil
	}
	return nil, apperr.InvalidField(field, "unknown_type", "unknown connection type %q", truncate(id, 64))
}

// ValidateSettings checks settings as CheckSettings does under the
// strictest policy (https only).
func (t *Type) ValidateSettings(settings map[string]any) error {
	return t.CheckSettings(settings, SettingsPolicy{})
}

// ValidateCredentials checks credentials against the type's schema. Error
// messages never echo a value, a prefix or a length.
func (t *Type) ValidateCredentials(creds Credentials) error {
	m := make(map[string]any, len(creds))
	for k, v := range creds {
		m[k] = v
	}
	return validate(t.credentials, "credentials", m, true)
}

func validate(s *schema, field string, v map[string]any, secret bool) error {
	if v == nil {
		v = map[string]any{}
	}
	// Round-trip through JSON so values take their JSON types.
	inst, err := decodeInstance(v)
	if err != nil {
		return apperr.InvalidField(field, "invalid_"+field, "%s must be a JSON object", field)
	}
	if f := s.check(inst, nil); f != nil {
		return describe(f, field, secret)
	}
	return nil
}

// describe turns a validation failure into a field and a message built from
// the schema (and, for a setting that does not match its pattern, the
// value; never a credential's).
func describe(f *violation, prefix string, secret bool) error {
	loc := append([]string{prefix}, f.at...)
	at := strings.Join(loc, ".")
	switch f.keyword {
	case "required":
		return apperr.InvalidField(at+"."+f.name, "required", "%s is required", f.name)
	case "additionalProperties":
		name := truncate(f.name, 64)
		return apperr.InvalidField(at+"."+name, "unknown_field", "%s is not a field of this connection type", name)
	case "type":
		return apperr.InvalidField(at, "invalid_type", "%s must be of type %s", at, f.want)
	case "format":
		return apperr.InvalidField(at, "invalid_format", "%s must be a valid %s", at, f.want)
	}
	if secret {
		return apperr.InvalidField(at, "invalid_value", "%s does not satisfy the connection type's schema", at)
	}
	return apperr.InvalidField(at, "invalid_value", "%s: %s", at, truncate(f.detail, 200))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Credentials are secret values by field name, as a request carries them.
// Decoding reports a non-string value by its field, never echoing it.
type Credentials map[string]string

// UnmarshalJSON implements json.Unmarshaler.
func (c *Credentials) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return apperr.InvalidField("credentials", "invalid_type", "credentials must be an object of strings")
	}
	if raw == nil {
		*c = nil
		return nil
	}
	out := make(Credentials, len(raw))
	for k, v := range raw {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return apperr.InvalidField("credentials."+truncate(k, 64), "invalid_type", "credentials.%s must be of type string", truncate(k, 64))
		}
		out[k] = s
	}
	*c = out
	return nil
}
