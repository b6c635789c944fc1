package resolver

import (
	"errors"
	"fmt"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/oauth"
	"github.com/connmgr/connmgr/shared/vault"
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

func fail(code Code, connID string, cause error) *Failure {
	info := codeInfo[code]
	return &Failure{Code: code, Message: info.message, AuthFailure: info.auth, Retryable: info.retry, ConnectionID: connID, cause: cause}
}

func (f *Failure) withProvider(code string) *Failure {
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

// AsFailure returns the Failure in err's chain, or classifies err.
func AsFailure(err error) *Failure {
	var f *Failure
	if errors.As(err, &f) {
		return f
	}
	return classify(err, "")
}

// classify maps store, vault and provider errors to failures.
func classify(err error, connID string) *Failure {
	var f *Failure
	if errors.As(err, &f) {
		return f
	}
	switch {
	case errors.Is(err, vault.ErrKeyUnavailable):
		return fail(CodeKeyUnavailable, connID, err)
	case errors.Is(err, vault.ErrThrottled):
		return fail(CodeThrottled, connID, err)
	case errors.Is(err, vault.ErrUnreadable):
		return fail(CodeSecretUnreadable, connID, err)
	case errors.Is(err, oauth.ErrNotConfigured):
		return fail(CodeOAuthClientMissing, connID, err)
	}
	if pe, ok := oauth.AsError(err); ok {
		switch {
		case pe.Rejected:
			return fail(CodeRefreshRejected, connID, err).withProvider(pe.Code)
		case pe.Code == "rate_limited" || pe.Code == "slow_down":
			return fail(CodeThrottled, connID, err).withProvider(pe.Code)
		default:
			return fail(CodeUnavailable, connID, err).withProvider(pe.Code)
		}
	}
	switch apperr.KindOf(err) {
	case apperr.NotFound:
		return fail(CodeNotFound, connID, err)
	case apperr.Throttled:
		return fail(CodeThrottled, connID, err)
	case apperr.Unavailable, apperr.Conflict:
		return fail(CodeUnavailable, connID, err)
	}
	return fail(CodeInternal, connID, fmt.Errorf("%w", err))
}
