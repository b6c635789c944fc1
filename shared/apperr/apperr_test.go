package apperr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
)

func TestStatusAndAs(t *testing.T) {
	tests := []struct {
		err    error
		status int
		code   string
	}{
		{E(NotFound, "", "no such connection"), http.StatusNotFound, "not_found"},
		{InvalidField("name", "required", "name is required"), http.StatusBadRequest, "required"},
		{fmt.Errorf("store.Get: %w", E(PreconditionFailed, "version_mismatch", "stale")), http.StatusPreconditionFailed, "version_mismatch"},
		{errors.New("dynamodb: boom"), http.StatusInternalServerError, "internal"},
		{E(TooLarge, "", ""), http.StatusRequestEntityTooLarge, "too_large"},
		{E(UnsupportedMediaType, "", ""), http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{E(Unavailable, "contention", "retry"), http.StatusServiceUnavailable, "contention"},
		{fmt.Errorf("workflow.Start: %w", UnprocessableField("steps[0].connection", "connection_not_usable", "no")), http.StatusUnprocessableEntity, "connection_not_usable"},
		{E(Unprocessable, "", ""), http.StatusUnprocessableEntity, "unprocessable"},
		{E(Throttled, "kms_throttled", ""), http.StatusServiceUnavailable, "kms_throttled"},
		{E(RateLimited, "tenant_rate_limited", ""), http.StatusTooManyRequests, "tenant_rate_limited"},
		{fmt.Errorf("store.List: %w", context.DeadlineExceeded), http.StatusServiceUnavailable, "timeout"},
		{fmt.Errorf("kms: %w", apiErr("ThrottlingException")), http.StatusServiceUnavailable, "throttled"},
		{fmt.Errorf("kms: %w", apiErr("AccessDeniedException")), http.StatusInternalServerError, "internal"},
		{fmt.Errorf("query: %w", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}), http.StatusServiceUnavailable, "dependency_unavailable"},
	}
	for _, tt := range tests {
		e := As(tt.err)
		if got := e.Kind.Status(); got != tt.status {
			t.Errorf("%v: status %d, want %d", tt.err, got, tt.status)
		}
		if e.Code != tt.code {
			t.Errorf("%v: code %q, want %q", tt.err, e.Code, tt.code)
		}
	}
	if m := As(errors.New("secret detail")).Message; m != "internal error" {
		t.Errorf("internal message leaks cause: %q", m)
	}
}

// apiErr has the ErrorCode method of smithy.APIError, which apperr does
// not import.
type apiErr string

func (e apiErr) Error() string     { return string(e) }
func (e apiErr) ErrorCode() string { return string(e) }
