package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/smithy-go"

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
		{"a dependency throttled", apperr.E(apperr.Throttled, "throttled", "busy"), 503, "throttled", true},
		{"an unclassified AWS throttle", fmt.Errorf("query: %w", &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException"}), 503, "throttled", true},
		{"out of time", fmt.Errorf("query gsi1: %w", context.DeadlineExceeded), 503, "timeout", true},
		{"the tenant's limit", &apperr.Error{Kind: apperr.RateLimited, Code: "tenant_rate_limited", RetryAfter: 2500 * time.Millisecond}, 429, "tenant_rate_limited", true},
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

// TestRetryAfter: a limit's own wait, rounded up to whole seconds, else 1.
func TestRetryAfter(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{{0, "1"}, {time.Millisecond, "1"}, {time.Second, "1"}, {2500 * time.Millisecond, "3"}, {10 * time.Second, "10"}} {
		if got := retryAfter(tt.d); got != tt.want {
			t.Errorf("retryAfter(%s) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

// TestBudget: a handler still busy when the request's budget ends, even
// one that ignores its context, is answered 503 timeout with Retry-After
// before the Lambda deadline; the margin kept is a tenth of the time
// left, within its bounds.
func TestBudget(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	rt := NewRouter(slog.New(slog.NewTextHandler(io.Discard, nil)))
	rt.HandlePublic("GET /stuck", func(ctx context.Context, _ *Request) (Response, error) {
		<-release // deaf to ctx, like a call that never returns
		return Response{}, nil
	})
	rt.HandlePublic("GET /late", func(ctx context.Context, _ *Request) (Response, error) {
		<-ctx.Done() // an AWS call cut short by the deadline, unclassified
		return Response{}, fmt.Errorf("query gsi1: operation error: %w", errors.New("canceled"))
	})
	for _, route := range []string{"GET /stuck", "GET /late"} {
		t.Run(route, func(t *testing.T) {
			lambdaCtx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
			defer cancel()
			out, err := rt.Serve(lambdaCtx, events.APIGatewayV2HTTPRequest{RouteKey: route})
			if lambdaCtx.Err() != nil {
				t.Fatal("answered after the Lambda deadline")
			}
			if err != nil || out.StatusCode != 503 || out.Headers["Retry-After"] != "1" {
				t.Fatalf("%v %d %v", err, out.StatusCode, out.Headers)
			}
			var body struct{ Error struct{ Code string } }
			if json.Unmarshal([]byte(out.Body), &body); body.Error.Code != "timeout" {
				t.Errorf("code %q, want timeout", body.Error.Code)
			}
		})
	}
	for _, tt := range []struct{ left, margin time.Duration }{
		{29 * time.Second, MaxMargin}, {5 * time.Second, 500 * time.Millisecond}, {500 * time.Millisecond, MinMargin},
	} {
		dl := time.Now().Add(tt.left)
		parent, cancel := context.WithDeadline(context.Background(), dl)
		ctx, cancelBudget := Budget(parent)
		got, _ := ctx.Deadline()
		if m := dl.Sub(got); m < tt.margin-50*time.Millisecond || m > tt.margin {
			t.Errorf("%s left: margin %s, want about %s", tt.left, m, tt.margin)
		}
		cancelBudget()
		cancel()
	}
	if ctx, cancel := Budget(context.Background()); true {
		if _, ok := ctx.Deadline(); ok {
			t.Error("Budget set a deadline on a context without one")
		}
		cancel()
	}
}
