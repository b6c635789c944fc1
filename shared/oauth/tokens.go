package oauth

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/secret"
)

// TokenSet is what an OAuth connection stores sealed: the access token,
// the refresh token, when the access token expires and, when the provider
// said so, when the refresh token expires. The tokens are
// secret.Strings, so a TokenSet prints redacted however it is printed;
// Encode is the only way to the sealed form.
type TokenSet struct {
	accessToken  secret.String
	refreshToken secret.String
	tokenType    string
	expiresAt    time.Time
	// expiryAssumed: the provider sent no expires_in and expiresAt is our
	// assumption.
	expiryAssumed bool
	// refreshExpiresAt: when the refresh token expires, from the
	// provider's refresh_token_expires_in (zero: it did not say).
	refreshExpiresAt time.Time
	obtainedAt       time.Time
	scope            string
}

// tokenWire is the sealed plaintext.
type tokenWire struct {
	AccessToken   string    `json:"accessToken"`
	RefreshToken  string    `json:"refreshToken,omitempty"`
	TokenType     string    `json:"tokenType,omitempty"`
	ExpiresAt     time.Time `json:"expiresAt"`
	ExpiryAssumed bool      `json:"expiryAssumed,omitempty"`
	// RefreshExpiresAt is omitted when unknown.
	RefreshExpiresAt time.Time `json:"refreshExpiresAt,omitzero"`
	ObtainedAt       time.Time `json:"obtainedAt"`
	Scope            string    `json:"scope,omitempty"`
}

// NewTokenSet builds a token set (for tests and for tokens obtained
// outside this package).
func NewTokenSet(accessToken, refreshToken, tokenType string, expiresAt, obtainedAt time.Time) *TokenSet {
	return &TokenSet{accessToken: secret.New(accessToken), refreshToken: secret.New(refreshToken), tokenType: tokenType,
		expiresAt: expiresAt.UTC(), obtainedAt: obtainedAt.UTC()}
}

// WithRefreshExpiresAt sets when the refresh token expires and returns t
// (for tests and for tokens obtained outside this package).
func (t *TokenSet) WithRefreshExpiresAt(at time.Time) *TokenSet {
	t.refreshExpiresAt = utcOrZero(at)
	return t
}

func utcOrZero(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

// AccessToken is the bearer token.
func (t *TokenSet) AccessToken() string { return t.accessToken.Reveal() }

// RefreshToken is the refresh token ("" when the grant issues none).
func (t *TokenSet) RefreshToken() string { return t.refreshToken.Reveal() }

// TokenType is the token type, "Bearer" when the provider said bearer or nothing.
func (t *TokenSet) TokenType() string {
	if tt := t.tokenType; tt != "" && !strings.EqualFold(tt, "bearer") {
		return tt
	}
	return "Bearer"
}

// ExpiresAt is when the access token expires.
func (t *TokenSet) ExpiresAt() time.Time { return t.expiresAt }

// ExpiryAssumed reports that the provider did not say when the token
// expires and ExpiresAt is the assumed lifetime.
func (t *TokenSet) ExpiryAssumed() bool { return t.expiryAssumed }

// RefreshExpiresAt is when the refresh token expires, as the provider
// said (refresh_token_expires_in); zero when it did not, or when there is
// no refresh token.
func (t *TokenSet) RefreshExpiresAt() time.Time {
	if t.refreshToken.IsZero() {
		return time.Time{}
	}
	return t.refreshExpiresAt
}

// ObtainedAt is when the provider issued the tokens.
func (t *TokenSet) ObtainedAt() time.Time { return t.obtainedAt }

// HasAccessToken reports whether there is an access token at all.
func (t *TokenSet) HasAccessToken() bool { return !t.accessToken.IsZero() }

// Due reports whether the access token is missing or expires within skew of now.
func (t *TokenSet) Due(now time.Time, skew time.Duration) bool {
	return t.accessToken.IsZero() || !t.expiresAt.After(now.Add(skew))
}

// SecretFields names the parts present, for the connection's SecretFields.
func (t *TokenSet) SecretFields() []string {
	var f []string
	if !t.accessToken.IsZero() {
		f = append(f, "accessToken")
	}
	if !t.refreshToken.IsZero() {
		f = append(f, "refreshToken")
	}
	return f
}

// Encode is the plaintext to seal. Clear it after sealing.
func (t *TokenSet) Encode() ([]byte, error) {
	b, err := json.Marshal(tokenWire{AccessToken: t.accessToken.Reveal(), RefreshToken: t.refreshToken.Reveal(), TokenType: t.tokenType,
		ExpiresAt: t.expiresAt, ExpiryAssumed: t.expiryAssumed, RefreshExpiresAt: t.refreshExpiresAt, ObtainedAt: t.obtainedAt, Scope: t.scope})
	if err != nil {
		return nil, fmt.Errorf("oauth: encode token set: %w", err)
	}
	if len(b) > MaxTokenSetBytes {
		clear(b)
		return nil, ErrTokenSetTooLarge
	}
	return b, nil
}

// MaxTokenSetBytes bounds a token set as sealed on its connection's item,
// so the item stays far inside DynamoDB's 400 KB whatever a provider
// returns (real tokens are a few KB; x/oauth2 reads up to 1 MB).
const MaxTokenSetBytes = 64 << 10

// ErrTokenSetTooLarge: the provider's tokens are too large to store.
var ErrTokenSetTooLarge = apperr.E(apperr.Unavailable, "token_too_large", "the provider's tokens are too large to store")

// DecodeTokenSet reads an opened secret. An empty object is an empty set
// (a client credentials connection before its first token).
func DecodeTokenSet(b []byte) (*TokenSet, error) {
	var w tokenWire
	if len(b) > 0 {
		if err := json.Unmarshal(b, &w); err != nil {
			// The JSON error may quote part of the input: say nothing of it.
			return nil, fmt.Errorf("oauth: the stored token set is not valid JSON")
		}
	}
	return &TokenSet{accessToken: secret.New(w.AccessToken), refreshToken: secret.New(w.RefreshToken), tokenType: w.TokenType,
		expiresAt: w.ExpiresAt, expiryAssumed: w.ExpiryAssumed, refreshExpiresAt: w.RefreshExpiresAt, obtainedAt: w.ObtainedAt, scope: w.Scope}, nil
}

func (t TokenSet) describe() string {
	return fmt.Sprintf("oauth.TokenSet{accessToken:%s refreshToken:%s expiresAt:%s}", present(t.accessToken), present(t.refreshToken), t.expiresAt.Format(time.RFC3339))
}

func present(s secret.String) string {
	if s.IsZero() {
		return "none"
	}
	return secret.Redacted
}

// String redacts. (Value receivers: a TokenSet copied by value redacts too.)
func (t TokenSet) String() string { return t.describe() }

// GoString redacts.
func (t TokenSet) GoString() string { return t.describe() }

// Format redacts for every verb.
func (t TokenSet) Format(f fmt.State, _ rune) { io.WriteString(f, t.describe()) }

// LogValue redacts.
func (t TokenSet) LogValue() slog.Value {
	return slog.GroupValue(slog.String("accessToken", present(t.accessToken)), slog.String("refreshToken", present(t.refreshToken)),
		slog.Time("expiresAt", t.expiresAt))
}

// MarshalJSON redacts: use Encode for the sealed form.
func (t TokenSet) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{"accessToken": present(t.accessToken), "refreshToken": present(t.refreshToken), "expiresAt": t.expiresAt})
}
