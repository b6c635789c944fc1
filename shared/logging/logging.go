// Package logging is the one log setup of every function: JSON lines
// through log/slog, each line of a handler's work carrying the Lambda
// request id and, for the state machine's tasks, the execution name, both
// taken from the context. Use the *Context methods of slog.Logger so the
// context reaches the handler.
//
// It never adds a value it did not get from the Lambda runtime or from
// WithExecution: nothing here may carry a secret.
package logging

import (
	"context"
	"io"
	"log/slog"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Attribute names the handler adds.
const (
	KeyRequestID = "requestId"
	KeyExecution = "execution"
)

type executionKey struct{}

// WithExecution records the Step Functions execution a task works for.
func WithExecution(ctx context.Context, name string) context.Context {
	if name == "" {
		return ctx
	}
	return context.WithValue(ctx, executionKey{}, name)
}

// New returns a JSON logger writing to w at level, each line stamped with
// the function name and what the context carries.
func New(w io.Writer, level slog.Leveler, function string) *slog.Logger {
	return slog.New(NewHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))).With(slog.String("function", function))
}

// NewHandler wraps h so every record gets the request id and execution
// name found in its context.
func NewHandler(h slog.Handler) slog.Handler { return &handler{inner: h} }

type handler struct{ inner slog.Handler }

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil {
		if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
			r.AddAttrs(slog.String(KeyRequestID, lc.AwsRequestID))
		}
		if name, ok := ctx.Value(executionKey{}).(string); ok {
			r.AddAttrs(slog.String(KeyExecution, name))
		}
	}
	return h.inner.Handle(ctx, r)
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &handler{inner: h.inner.WithAttrs(as)}
}
func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{inner: h.inner.WithGroup(name)}
}
