package resolver

import (
	"errors"

	"github.com/connmgr/connmgr/shared/oauth"
	"github.com/connmgr/connmgr/shared/resolver/resolveapi"
	"github.com/connmgr/connmgr/shared/vault"
)

// fail is the failure code stands for, on connection connID, because of
// cause.
func fail(code Code, connID string, cause error) *Failure {
	return resolveapi.NewFailure(code, connID, cause)
}

// AsFailure returns the Failure in err's chain, or classifies err: the
// vault's and the OAuth provider's errors, then apperr kinds
// (resolveapi.AsFailure knows only the kinds).
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
			return fail(CodeRefreshRejected, connID, err).WithProvider(pe.Code)
		case pe.Code == "rate_limited" || pe.Code == "slow_down":
			return fail(CodeThrottled, connID, err).WithProvider(pe.Code)
		default:
			return fail(CodeUnavailable, connID, err).WithProvider(pe.Code)
		}
	}
	return resolveapi.KindFailure(err, connID)
}
