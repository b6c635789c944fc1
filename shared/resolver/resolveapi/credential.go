package resolveapi

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/secret"
)

// Kind is the shape of a credential.
type Kind string

const (
	KindBasic  Kind = "basic"
	KindBearer Kind = "bearer"
	KindAPIKey Kind = "apiKey"
)

// Credential is a resolved connection: its non-secret facts in exported
// fields and its secret values behind accessors. However it is printed or
// logged it shows no secret; MarshalWire is the only encoding that does.
type Credential struct {
	ConnectionID string
	Type         string
	Kind         Kind
	// BaseURL is the only origin the credential may be sent to: the type's
	// fixed host or the connection's setting named by the type.
	BaseURL string
	// Settings are the connection's non-secret settings.
	Settings map[string]any

	username, password secret.String // basic
	accessToken        secret.String // bearer
	tokenType          string
	expiresAt          time.Time
	headerName         string // apiKey
	apiKey             secret.String
}

// Username and Password of a basic credential.
func (c *Credential) Username() string { return c.username.Reveal() }
func (c *Credential) Password() string { return c.password.Reveal() }

// AccessToken, TokenType and ExpiresAt of a bearer credential.
func (c *Credential) AccessToken() string  { return c.accessToken.Reveal() }
func (c *Credential) TokenType() string    { return c.tokenType }
func (c *Credential) ExpiresAt() time.Time { return c.expiresAt }

// HeaderName and APIKey of an API key credential.
func (c *Credential) HeaderName() string { return c.headerName }
func (c *Credential) APIKey() string     { return c.apiKey.Reveal() }

// SetBasic makes c a basic credential.
func (c *Credential) SetBasic(username, password string) {
	c.Kind, c.username, c.password = KindBasic, secret.New(username), secret.New(password)
}

// SetBearer makes c a bearer credential.
func (c *Credential) SetBearer(accessToken, tokenType string, expiresAt time.Time) {
	c.Kind, c.accessToken, c.tokenType, c.expiresAt = KindBearer, secret.New(accessToken), tokenType, expiresAt
}

// SetAPIKey makes c an API key credential sent in header.
func (c *Credential) SetAPIKey(header, key string) {
	c.Kind, c.headerName, c.apiKey = KindAPIKey, header, secret.New(key)
}

// ErrForeignHost: a request to another origin than the connection's.
var ErrForeignHost = apperr.E(apperr.Forbidden, "foreign_host", "credentials are sent only to the host the connection is configured for")

// Apply authenticates req, refusing any request whose scheme and host are
// not the connection's BaseURL's.
func (c *Credential) Apply(req *http.Request) error {
	if !SameOrigin(c.BaseURL, req.URL) {
		return ErrForeignHost
	}
	switch c.Kind {
	case KindBasic:
		req.SetBasicAuth(c.username.Reveal(), c.password.Reveal())
	case KindBearer:
		req.Header.Set("Authorization", c.tokenType+" "+c.accessToken.Reveal())
	case KindAPIKey:
		req.Header.Set(c.headerName, c.apiKey.Reveal())
	default:
		return fmt.Errorf("resolveapi: unknown credential kind %q", c.Kind)
	}
	return nil
}

// SameOrigin reports whether u has the scheme and host (with default
// ports made explicit) of base. An empty base matches nothing.
func SameOrigin(base string, u *url.URL) bool {
	b, err := url.Parse(base)
	if err != nil || b.Host == "" || u == nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(b.Scheme, u.Scheme) && hostPort(b) == hostPort(u) && u.User == nil
}

func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		switch strings.ToLower(u.Scheme) {
		case "https":
			port = "443"
		case "http":
			port = "80"
		}
	}
	return strings.ToLower(u.Hostname()) + ":" + port
}

// wire is the credential as the resolve function returns it.
type wire struct {
	ConnectionID string         `json:"connectionId"`
	Type         string         `json:"type"`
	Kind         Kind           `json:"kind"`
	BaseURL      string         `json:"baseUrl,omitempty"`
	Settings     map[string]any `json:"settings"`
	Basic        *wireBasic     `json:"basic,omitempty"`
	Bearer       *wireBearer    `json:"bearer,omitempty"`
	APIKey       *wireAPIKey    `json:"apiKey,omitempty"`
}

type wireBasic struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type wireBearer struct {
	AccessToken string    `json:"accessToken"`
	TokenType   string    `json:"tokenType"`
	ExpiresAt   time.Time `json:"expiresAt"`
}

type wireAPIKey struct {
	HeaderName string `json:"headerName"`
	Value      string `json:"value"`
}

// MarshalWire is the credential with its secrets, for the workflow step
// that asked for it and nobody else.
func (c *Credential) MarshalWire() ([]byte, error) {
	return json.Marshal(c.wire())
}

// UnmarshalWire reads the form MarshalWire writes.
func (c *Credential) UnmarshalWire(b []byte) error {
	var w wire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*c = *w.credential()
	return nil
}

// credential rebuilds a Credential from its wire form.
func (w *wire) credential() *Credential {
	c := &Credential{ConnectionID: w.ConnectionID, Type: w.Type, Kind: w.Kind, BaseURL: w.BaseURL, Settings: w.Settings}
	switch {
	case w.Basic != nil:
		c.username, c.password = secret.New(w.Basic.Username), secret.New(w.Basic.Password)
		w.Basic.Password = ""
	case w.Bearer != nil:
		c.accessToken, c.tokenType, c.expiresAt = secret.New(w.Bearer.AccessToken), w.Bearer.TokenType, w.Bearer.ExpiresAt
		w.Bearer.AccessToken = ""
	case w.APIKey != nil:
		c.headerName, c.apiKey = w.APIKey.HeaderName, secret.New(w.APIKey.Value)
		w.APIKey.Value = ""
	}
	return c
}

func (c *Credential) wire() wire {
	w := wire{ConnectionID: c.ConnectionID, Type: c.Type, Kind: c.Kind, BaseURL: c.BaseURL, Settings: c.Settings}
	if w.Settings == nil {
		w.Settings = map[string]any{}
	}
	switch c.Kind {
	case KindBasic:
		w.Basic = &wireBasic{Username: c.username.Reveal(), Password: c.password.Reveal()}
	case KindBearer:
		w.Bearer = &wireBearer{AccessToken: c.accessToken.Reveal(), TokenType: c.tokenType, ExpiresAt: c.expiresAt}
	case KindAPIKey:
		w.APIKey = &wireAPIKey{HeaderName: c.headerName, Value: c.apiKey.Reveal()}
	}
	return w
}

func (c Credential) describe() string {
	return fmt.Sprintf("resolver.Credential{connection:%s type:%s kind:%s baseUrl:%s secrets:%s}", c.ConnectionID, c.Type, c.Kind, c.BaseURL, secret.Redacted)
}

// String redacts.
func (c Credential) String() string { return c.describe() }

// GoString redacts.
func (c Credential) GoString() string { return c.describe() }

// Format redacts for every verb.
func (c Credential) Format(f fmt.State, _ rune) { io.WriteString(f, c.describe()) }

// LogValue shows the non-secret facts only.
func (c Credential) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("connection", c.ConnectionID), slog.String("type", c.Type), slog.String("kind", string(c.Kind)), slog.String("baseUrl", c.BaseURL)}
	if c.Kind == KindBearer {
		attrs = append(attrs, slog.Time("expiresAt", c.expiresAt))
	}
	return slog.GroupValue(attrs...)
}

// MarshalJSON redacts: it is what ends up in a log or an event by mistake.
// MarshalWire is the form for the caller.
func (c Credential) MarshalJSON() ([]byte, error) {
	w := wire{ConnectionID: c.ConnectionID, Type: c.Type, Kind: c.Kind, BaseURL: c.BaseURL, Settings: c.Settings}
	return json.Marshal(struct {
		wire
		Secrets string `json:"secrets"`
	}{w, secret.Redacted})
}

// Secrets lists every secret value the credential sends, raw, each field
// once and whatever its length: username and password, the access token, the
// API key. httpaction derives the encoded forms (the Basic header's base64
// of "username:password" among them) to scrub what a target echoes back.
func (c *Credential) Secrets() []string {
	switch c.Kind {
	case KindBasic:
		return []string{c.username.Reveal(), c.password.Reveal()}
	case KindBearer:
		return []string{c.accessToken.Reveal()}
	case KindAPIKey:
		return []string{c.apiKey.Reveal()}
	}
	return nil
}
