package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/connmgr/connmgr/shared/apperr"
)

// TestErrorResponses: each kind answers its status with the error body;
// the retryable ones (429, 503) say when to retry, and an unclassified
// error says nothing of itself.
func TestErrorResponses(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		status     int
		code       string
		retryAfter bool
	}{
		{"invalid", apperr.InvalidField("name", "required", "name is required"), 400, "required", false},
		{"precondition failed", apperr.E(apperr.PreconditionFailed, "version_mismatch", "stale"), 412, "version_mismatch", false},
		{"throttled", apperr.E(apperr.Throttled, "throttled", "busy"), 429, "throttled", true},
		{"unavailable", apperr.E(apperr.Unavailable, "store_unavailable", "down"), 503, "store_unavailable", true},
		{"contention", apperr.Wrap(apperr.Unavailable, "contention", "retry", errors.New("lost races")), 503, "contention", true},
		{"unclassified", errors.New("secret detail"), 500, "internal", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := NewRouter(slog.New(slog.NewTextHandler(io.Discard, nil)))
			rt.HandlePublic("GET /x", func(context.Context, *Request) (Response, error) { return Response{}, tt.err })
			out, _ := rt.Serve(context.Background(), events.APIGatewayV2HTTPRequest{RouteKey: "GET /x"})
			var body struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal([]byte(out.Body), &body); err != nil {
				t.Fatal(err)
			}
			if out.StatusCode != tt.status || body.Error.Code != tt.code {
				t.Errorf("%d %s, want %d %s", out.StatusCode, out.Body, tt.status, tt.code)
			}
			if got := out.Headers["Retry-After"]; (got != "") != tt.retryAfter {
				t.Errorf("Retry-After %q", got)
			}
			if body.Error.Message == "secret detail" {
				t.Error("an internal error's text reached the response")
			}
		})
	}
}
