package runs

import (
	"testing"

	"github.com/connmgr/connmgr/shared/apperr"
)

// TestValidateStepPaths: a step's path stays on the connection's host and
// under its base path: dot segments are refused raw and percent-encoded.
func TestValidateStepPaths(t *testing.T) {
	tests := []struct {
		path string
		ok   bool
	}{
		{"/items", true},
		{"/items/42/sub-items", true},
		{"/.well-known/openid-configuration", true},
		{"/a/b..c/...", true},
		{"/a%2Fb", true},
		{"/a/%2e%2ex", true},
		{"items", false},
		{"//evil.example.com/x", false},
		{"/a?b=1", false},
		{"/a#b", false},
		{`/a\b`, false},
		{"/a/../b", false},
		{"/..", false},
		{"/a/./b", false},
		{"/a/.", false},
		{"/a/%2e%2e/b", false},
		{"/a/%2E%2E/b", false},
		{"/a/%2E./b", false},
		{"/a/.%2e/b", false},
		{"/a/%2e/b", false},
		{"/a/%2e", false},
		{"/%2e%2e", false},
	}
	for _, tt := range tests {
		steps := []Step{{ID: "a", Action: ActionHTTPRequest, Connection: "01C", Input: RequestSpec{Method: "GET", Path: tt.path}}}
		err := ValidateSteps(steps)
		if tt.ok {
			if err != nil {
				t.Errorf("%q refused: %v", tt.path, err)
			}
			continue
		}
		if e := apperr.As(err); err == nil || e.Kind != apperr.Invalid || e.Field != "steps[0].input.path" || e.Code != "invalid_path" {
			t.Errorf("%q: %v, want 400 invalid_path on steps[0].input.path", tt.path, err)
		}
	}
}
