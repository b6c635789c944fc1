package resolver

import "github.com/connmgr/connmgr/shared/resolver/resolveapi"

// The resolve function's contract (requests, credentials, failures) is
// resolveapi, which its callers import without linking the resolver itself
// (store, vault, OAuth library); resolveclient invokes it over Lambda.
// These names keep the resolver's code and the code written against it
// before the split reading as they did.

type (
	Request              = resolveapi.Request
	Input                = resolveapi.Input
	Credential           = resolveapi.Credential
	Kind                 = resolveapi.Kind
	Failure              = resolveapi.Failure
	Code                 = resolveapi.Code
	TestResult           = resolveapi.TestResult
	Refreshed            = resolveapi.Refreshed
	RefreshOptions       = resolveapi.RefreshOptions
	ErrorBody            = resolveapi.ErrorBody
	AuthorizedConnection = resolveapi.AuthorizedConnection
)

const (
	OpResolve               = resolveapi.OpResolve
	OpRefreshIfDue          = resolveapi.OpRefreshIfDue
	OpCompleteAuthorization = resolveapi.OpCompleteAuthorization
	OpTest                  = resolveapi.OpTest

	KindBasic  = resolveapi.KindBasic
	KindBearer = resolveapi.KindBearer
	KindAPIKey = resolveapi.KindAPIKey

	CodeNotFound             = resolveapi.CodeNotFound
	CodeNotUsable            = resolveapi.CodeNotUsable
	CodeExpired              = resolveapi.CodeExpired
	CodeRefreshRejected      = resolveapi.CodeRefreshRejected
	CodeAuthorizationPending = resolveapi.CodeAuthorizationPending
	CodeSecretUnreadable     = resolveapi.CodeSecretUnreadable
	CodeOAuthClientMissing   = resolveapi.CodeOAuthClientMissing
	CodeConnectionError      = resolveapi.CodeConnectionError
	CodeDisabled             = resolveapi.CodeDisabled
	CodeKeyUnavailable       = resolveapi.CodeKeyUnavailable
	CodeThrottled            = resolveapi.CodeThrottled
	CodeUnavailable          = resolveapi.CodeUnavailable
	CodeRefreshInProgress    = resolveapi.CodeRefreshInProgress
	CodeInternal             = resolveapi.CodeInternal
	CodeInvalidInput         = resolveapi.CodeInvalidInput

	TestWait = resolveapi.TestWait
)
