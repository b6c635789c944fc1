// Package apperr defines the typed error kinds every layer returns and the one
// place they become HTTP statuses and stable machine-readable codes.
//
// A response only ever carries Code, Message and Field; the wrapped cause goes
// to logs. Messages and causes must never contain secret values.
package apperr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Kind classifies an error by what the caller can do about it.
type Kind int

const (
	Internal Kind = iota
	Invalid
	Unauthenticated
	Forbidden
	NotFound
	Conflict
	PreconditionFailed
	PreconditionRequired
	TooLarge
	UnsupportedMediaType
	MethodNotAllowed
	// Throttled is a dependency (DynamoDB, KMS, Lambda, ...) throttling us
	// after the SDK's retries: 503, the service is briefly unavailable,
	// whoever the caller is.
	Throttled
	Unavailable
	// Unprocessable is a well-formed request that names something it
	// cannot act on (422), such as a connection a run may not use.
	Unprocessable
	// RateLimited is the caller's tenant over its own request limit (429):
	// other tenants are served.
	RateLimited
)

var kindNames = map[Kind]string{
	Internal:             "internal",
	Invalid:              "invalid",
	Unauthenticated:      "unauthenticated",
	Forbidden:            "forbidden",
	NotFound:             "not_found",
	Conflict:             "conflict",
	PreconditionFailed:   "precondition_failed",
	PreconditionRequired: "precondition_required",
	TooLarge:             "too_large",
	UnsupportedMediaType: "unsupported_media_type",
	MethodNotAllowed:     "method_not_allowed",
	Throttled:            "throttled",
	Unavailable:          "unavailable",
	Unprocessable:        "unprocessable",
	RateLimited:          "rate_limited",
}

func (k Kind) String() string { return kindNames[k] }

// Status is the HTTP status for the kind; the only such mapping in the project.
func (k Kind) Status() int {
	switch k {
	case Invalid:
		return http.StatusBadRequest
	case Unauthenticated:
		return http.StatusUnauthorized
	case Forbidden:
		return http.StatusForbidden
	case NotFound:
		return http.StatusNotFound
	case Conflict:
		return http.StatusConflict
	case PreconditionFailed:
		return http.StatusPreconditionFailed
	case PreconditionRequired:
		return http.StatusPreconditionRequired
	case TooLarge:
		return http.StatusRequestEntityTooLarge
	case UnsupportedMediaType:
		return http.StatusUnsupportedMediaType
	case MethodNotAllowed:
		return http.StatusMethodNotAllowed
	case RateLimited:
		return http.StatusTooManyRequests
	case Throttled, Unavailable:
		return http.StatusServiceUnavailable
	case Unprocessable:
		return http.StatusUnprocessableEntity
	default:
		return http.StatusInternalServerError
	}
}

// Error is a classified error. Code is stable and machine-readable; Message is
// safe to show a caller; Field names the offending input, when there is one.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	Field   string
	// Details are safe, structured facts for the caller (for example the
	// runs a delete would break); never a secret.
	Details any
	// RetryAfter, when positive, is how long the caller should wait before
	// trying again (Retry-After of a 429 or 503); zero means the default.
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	s := e.Code
	if e.Field != "" {
		s += " (" + e.Field + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// E builds an error of a kind; code defaults to the kind's name.
func E(kind Kind, code, message string) *Error {
	if code == "" {
		code = kind.String()
	}
	return &Error{Kind: kind, Code: code, Message: message}
}

// Wrap classifies err, keeping it as the cause for logs.
func Wrap(kind Kind, code, message string, err error) *Error {
	e := E(kind, code, message)
	e.Err = err
	return e
}

// InvalidField reports bad input in a named field.
func InvalidField(field, code, format string, args ...any) *Error {
	e := E(Invalid, code, fmt.Sprintf(format, args...))
	e.Field = field
	return e
}

// ConflictField reports a request that conflicts with what is stored
// because of a named field (409), e.g. a new host without new credentials.
func ConflictField(field, code, format string, args ...any) *Error {
	e := E(Conflict, code, fmt.Sprintf(format, args...))
	e.Field = field
	return e
}

// UnprocessableField reports a well-formed request whose named field
// refers to something it cannot act on (422).
func UnprocessableField(field, code, format string, args ...any) *Error {
	e := E(Unprocessable, code, fmt.Sprintf(format, args...))
	e.Field = field
	return e
}

// NotFoundf is the uniform answer for anything absent or invisible to the caller.
func NotFoundf(format string, args ...any) *Error {
	return E(NotFound, "not_found", fmt.Sprintf(format, args...))
}

// As returns the classified error in err's chain, or the one an
// unclassified err stands for: a request out of time (Unavailable,
// "timeout") or an AWS throttle that outlasted the SDK's retries
// (Throttled, "throttled") are retryable; anything else is an Internal
// error that hides err's text from callers.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Kind: Unavailable, Code: ErrTimeout.Code, Message: ErrTimeout.Message, Err: err}
	case throttle(err):
		return &Error{Kind: Throttled, Code: "throttled", Message: "a dependency is throttling requests; retry", Err: err}
	case unreachable(err):
		return &Error{Kind: Unavailable, Code: "dependency_unavailable", Message: "a dependency could not be reached; retry", Err: err}
	}
	return &Error{Kind: Internal, Code: "internal", Message: "internal error", Err: err}
}

// ErrTimeout: the request's time budget ran out before it was done.
var ErrTimeout = E(Unavailable, "timeout", "the request ran out of time; retry")

// throttleCodes are the AWS error codes of throttling (smithy.APIError's
// ErrorCode), across the services the functions call.
var throttleCodes = map[string]bool{
	"ThrottlingException": true, "Throttling": true, "ThrottledException": true,
	"ProvisionedThroughputExceededException": true, "RequestLimitExceeded": true,
	"TooManyRequestsException": true, "LimitExceededException": true,
	"RequestThrottled": true, "RequestThrottledException": true, "SlowDown": true,
}

// unreachable reports a network failure left after the SDK's retries: a
// timeout, a refused or reset connection (net.Error; *url.Error and
// *net.OpError are ones).
func unreachable(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}

// throttle reports whether err's chain holds an AWS API error (anything
// with an ErrorCode, as smithy.APIError has) whose code is a throttle.
func throttle(err error) bool {
	var api interface{ ErrorCode() string }
	return errors.As(err, &api) && throttleCodes[api.ErrorCode()]
}

// KindOf reports the kind of err (Internal when unclassified).
func KindOf(err error) Kind {
	if err == nil {
		return Internal
	}
	return As(err).Kind
}

// Retryable reports whether the same request may succeed shortly (429, 503).
func (k Kind) Retryable() bool { return k == RateLimited || k == Throttled || k == Unavailable }

// Is reports whether err is classified as kind.
func Is(err error, kind Kind) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == kind
}

// Is makes errors.Is match any classified error with the same code, so
// sentinel errors keep matching after being re-created with a cause.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Kind == e.Kind
}
