package manager_test

import (
	"testing"

	"github.com/connmgr/connmgr/local/apitest"
	"github.com/connmgr/connmgr/shared/app"
	"github.com/connmgr/connmgr/shared/httpaction"
)

// TestSettingsRules: URL, timestamp and path settings are refused with the
// setting named, on create and on update, and a refused update changes
// nothing. http URLs pass only where the deployment's target networks
// include local ones (TARGET_NETWORKS loopback or private).
func TestSettingsRules(t *testing.T) {
	envs := map[string]*apitest.Env{
		"public": apitest.StartWith(t, app.FnConnections, func(c *app.Config) {
			c.TargetNetworks, c.OAuthRedirectURI = httpaction.PublicOnly, "https://api.example.com/oauth/callback"
		}),
		"loopback": apitest.Start(t, app.FnConnections),
	}
	ids := map[string]string{}
	for name, env := range envs {
		ids[name] = create(t, env, admin, basicBody("rules"))
	}
	tests := []struct {
		name     string
		env      string
		settings map[string]any
		status   int
		code     string
		field    string
	}{
		{"https in public mode", "public", map[string]any{"baseUrl": "https://api.example.com/v1"}, 0, "", ""},
		{"http in public mode", "public", map[string]any{"baseUrl": "http://api.example.com"}, 400, "https_required", "settings.baseUrl"},
		{"http on loopback", "loopback", map[string]any{"baseUrl": "http://127.0.0.1:8080/api"}, 0, "", ""},
		{"user info", "loopback", map[string]any{"baseUrl": "https://svc:pw@api.example.com"}, 400, "invalid_url", "settings.baseUrl"},
		{"fragment", "public", map[string]any{"baseUrl": "https://api.example.com/#top"}, 400, "invalid_url", "settings.baseUrl"},
		{"expiry at the epoch", "public", map[string]any{"baseUrl": "https://api.example.com", "passwordExpiresAt": "1970-01-01T00:00:00Z"}, 400, "out_of_range", "settings.passwordExpiresAt"},
		{"expiry at the zero time", "public", map[string]any{"baseUrl": "https://api.example.com", "passwordExpiresAt": "0001-01-01T00:00:00Z"}, 400, "out_of_range", "settings.passwordExpiresAt"},
		{"expiry in range", "public", map[string]any{"baseUrl": "https://api.example.com", "passwordExpiresAt": "9999-12-31T23:59:59Z"}, 0, "", ""},
		{"test path with %2e%2e", "public", map[string]any{"baseUrl": "https://api.example.com", "testPath": "/api/%2e%2e/admin"}, 400, "invalid_path", "settings.testPath"},
		{"test path with .%2E", "public", map[string]any{"baseUrl": "https://api.example.com", "testPath": "/.%2E/admin"}, 400, "invalid_path", "settings.testPath"},
		{"test path with ..", "loopback", map[string]any{"baseUrl": "https://api.example.com", "testPath": "/api/../admin"}, 400, "invalid_path", "settings.testPath"},
		{"test path", "loopback", map[string]any{"baseUrl": "https://api.example.com", "testPath": "/api/me"}, 0, "", ""},
	}
	creds := map[string]any{"username": "svc", "password": "pw-rules-2"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := envs[tt.env]
			body := basicBody("x")
			body["settings"] = tt.settings
			created := env.Do(apitest.Request{Method: "POST", Path: "/connections", Caller: admin, Body: body})
			// The same settings as an update (with credentials: a new host needs them).
			patched := env.Do(apitest.Request{Method: "PATCH", Path: "/connections/" + ids[tt.env], Caller: admin,
				Body: map[string]any{"settings": tt.settings, "credentials": creds}})
			if tt.status == 0 {
				if created.Status != 201 || patched.Status != 200 {
					t.Fatalf("refused: create %d %s, update %d %s", created.Status, created.Body, patched.Status, patched.Body)
				}
				return
			}
			for op, r := range map[string]apitest.Response{"create": created, "update": patched} {
				if r.Status != tt.status || r.ErrorCode() != tt.code || r.ErrorField() != tt.field {
					t.Errorf("%s: %d %s; want %d %s on %s", op, r.Status, r.Body, tt.status, tt.code, tt.field)
				}
			}
		})
	}
	// Refused updates left no trace: only the accepted ones made versions.
	want := map[string]int64{"public": 1 + 2, "loopback": 1 + 2}
	for name, env := range envs {
		var v struct{ Version int64 }
		r := env.Do(apitest.Request{Method: "GET", Path: "/connections/" + ids[name], Caller: admin})
		r.Decode(t, &v)
		if v.Version != want[name] {
			t.Errorf("%s: version %d, want %d", name, v.Version, want[name])
		}
	}
}
