package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

func TestHandlerStampsContext(t *testing.T) {
	lambdaCtx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-1"})
	tests := []struct {
		name          string
		ctx           context.Context
		req, exec     string
		withAttrGroup bool
	}{
		{"no context values", context.Background(), "", "", false},
		{"lambda request", lambdaCtx, "req-1", "", false},
		{"state machine task", WithExecution(lambdaCtx, "run-42"), "req-1", "run-42", false},
		{"through With", WithExecution(lambdaCtx, "run-42"), "req-1", "run-42", true},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		log := New(&buf, slog.LevelInfo, "resolve")
		if tt.withAttrGroup {
			log = log.With(slog.String("tenant", "t1"))
		}
		log.InfoContext(tt.ctx, "hello", slog.String("k", "v"))
		var line map[string]any
		if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
			t.Fatalf("%s: %v: %s", tt.name, err, buf.String())
		}
		got := func(k string) string { s, _ := line[k].(string); return s }
		if got(KeyRequestID) != tt.req || got(KeyExecution) != tt.exec || got("function") != "resolve" || got("k") != "v" {
			t.Errorf("%s: %s", tt.name, buf.String())
		}
	}
}
