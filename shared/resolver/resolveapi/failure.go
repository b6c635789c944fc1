package resolveapi

import (
	"errors"
	"fmt"

	"github.com/connmgr/connmgr/shared/apperr"
)

// Code is a stable failure code.
type Code string

// Failure codes. Authentication failures suspend the run until someone
// fixes the connection; transient ones let the step retry.
const (
	// Authentication failures.
	CodeNotFound             Code = "connection_not_found"  // absent, deleted, or another tenant's
	CodeNotUsable            Code = "not_usable"            // availability / personal-owner rules
	CodeExpired              Code = "credentials_expired"   // status expired (providerCode: why)
	CodeRefreshRejected      Code = "refresh_rejected"      // the provider refused the refresh
	CodeAuthorizationPending Code = "authorization_pending" // OAuth never completed
	CodeSecretUnreadable     Code = "secret_unreadable"     // the stored secret does not verify
	CodeOAuthClientMissing   Code = "oauth_client_missing"  // the tenant has no OAuth client for the type
	CodeConnectionError      Code = "connection_error"      // status error
	CodeDisabled             Code = "connection_disabled"   // disabled by an owner or administrator
	// Transient failures.
	CodeKeyUnavailable    Code = "key_unavailable"     // KMS disabled, denied or failing
	CodeThrottled         Code = "throttled"           // DynamoDB, KMS or the provider throttled
	CodeUnavailable       Code = "unavailable"         // the store or the provider failed
	CodeRefreshInProgress Code = "refresh_in_progress" // another instance is still refreshing
	CodeInternal          Code = "internal"
	// Neither: the caller's request is malformed.
	CodeInvalidInput Code = "invalid_input"
)

var codeInfo = map[Code]struct {
	auth, retry bool
	message     string
}{
	CodeNotFound:             {true, false, "the connection does not exist or was deleted"},
	CodeNotUsable:            {true, false, "the connection is not available to this workflow run"},
	CodeExpired:              {true, false, "the connection's credentials expired; reconnect or update it"},
	CodeRefreshRejected:      {true, false, "the provider rejected the connection's refresh; reconnect it"},
	CodeAuthorizationPending: {true, false, "the connection was never authorized; authorize it"},
	CodeSecretUnreadable:     {true, false, "the connection's stored credentials cannot be read; update them"},
	CodeOAuthClientMissing:   {true, false, "no OAuth client is registered for this connection type"},
	CodeConnectionError:      {true, false, "the connection is in error; check and update it"},
	CodeDisabled:             {true, false, "the connection is disabled; enable it to use it"},
	CodeKeyUnavailable:       {false, true, "the encryption key is unavailable"},
	CodeThrottled:            {false, true, "throttled; retry later"},
	CodeUnavailable:          {false, true, "a dependency is unavailable; retry later"},
	CodeRefreshInProgress:    {false, true, "the connection's token is being refreshed; retry shortly"},
	CodeInternal:             {false, true, "internal error"},
	CodeInvalidInput:         {false, false, "the request is malformed"},
}

// Failure is why a credential could not be resolved. Its JSON (and Error)
// never contain a secret: causes are the store's, KMS's and the provider's
// sanitized errors.
type Failure struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	// AuthFailure: the workflow run must suspend until the connection is fixed.
	AuthFailure bool `json:"authFailure"`
	// Retryable: the step may try again.
	Retryable bool `json:"retryable"`
	// ProviderCode is the OAuth provider's error code (invalid_grant, ...).
	ProviderCode string `json:"providerCode,omitempty"`
	ConnectionID string `json:"connectionId,omitempty"`
	cause        error
}

// NewFailure is the failure code stands for, on connection connID, because
// of cause (kept for logs and errors.Is, never encoded).
func NewFailure(code Code, connID string, cause error) *Failure {
	info := codeInfo[code]
	return &Failure{Code: code, Message: info.message, AuthFailure: info.auth, Retryable: info.retry, ConnectionID: connID, cause: cause}
}

// WithProvider records the OAuth provider's error code.
func (f *Failure) WithProvider(code string) *Failure {
	f.ProviderCode = code
	return f
}

func (f *Failure) Error() string {
	s := "resolve " + f.ConnectionID + ": " + string(f.Code)
	if f.ProviderCode != "" {
		s += " (" + f.ProviderCode + ")"
	}
	if f.cause != nil {
		s += ": " + f.cause.Error()
	}
	return s
}

func (f *Failure) Unwrap() error { return f.cause }

// AsFailure returns the Failure in err's chain, or the one err's kind
// stands for (shared/resolver's AsFailure also knows the vault's and the
// OAuth provider's errors).
func AsFailure(err error) *Failure {
	var f *Failure
	if errors.As(err, &f) {
		return f
	}
	return KindFailure(err, "")
}

// KindFailure is the failure err's apperr kind stands for, on connection
// connID.
func KindFailure(err error, connID string) *Failure {
	switch apperr.KindOf(err) {
	case apperr.NotFound:
		return NewFailure(CodeNotFound, connID, err)
	case apperr.Throttled:
		return NewFailure(CodeThrottled, connID, err)
	case apperr.Unavailable, apperr.Conflict:
		return NewFailure(CodeUnavailable, connID, err)
	}
	return NewFailure(CodeInternal, connID, fmt.Errorf("%w", err))
}
