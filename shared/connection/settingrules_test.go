package connection

import (
	"testing"
	"time"

	"github.com/connmgr/connmgr/shared/apperr"
)

// TestCheckSettings: the rules beyond the schema, for every setting they
// cover, under both URL policies.
func TestCheckSettings(t *testing.T) {
	basic, _ := Lookup("http-basic", "type")
	sharepoint, _ := Lookup("sharepoint-online", "type")
	sharepointApp, _ := Lookup("sharepoint-online-app", "type")
	generic, _ := Lookup("oauth2-generic", "type")
	salesforce, _ := Lookup("salesforce", "type")
	public, local := SettingsPolicy{}, SettingsPolicy{AllowHTTP: true}
	tests := []struct {
		name     string
		typ      *Type
		settings map[string]any
		policy   SettingsPolicy
		field    string // "" when accepted
		code     string
	}{
		{"https base URL", basic, map[string]any{"baseUrl": "https://api.example.com/v1"}, public, "", ""},
		{"https with port and query", basic, map[string]any{"baseUrl": "https://api.example.com:8443/v1?tenant=a"}, public, "", ""},
		{"http refused in public mode", basic, map[string]any{"baseUrl": "http://api.example.com"}, public, "settings.baseUrl", "https_required"},
		{"http allowed with local networks", basic, map[string]any{"baseUrl": "http://127.0.0.1:8080/api"}, local, "", ""},
		{"http site URL", sharepoint, map[string]any{"siteUrl": "http://contoso.sharepoint.com/sites/hr"}, public, "settings.siteUrl", "https_required"},
		{"http instance URL", salesforce, map[string]any{"instanceUrl": "http://na1.salesforce.com"}, public, "settings.instanceUrl", "https_required"},
		{"http test URL", generic, map[string]any{"baseUrl": "https://api.example.com", "testUrl": "http://api.example.com/me"}, public, "settings.testUrl", "https_required"},
		{"user info", basic, map[string]any{"baseUrl": "https://svc:pw@api.example.com"}, local, "settings.baseUrl", "invalid_url"},
		{"user name only", basic, map[string]any{"baseUrl": "https://svc@api.example.com"}, local, "settings.baseUrl", "invalid_url"},
		{"fragment", basic, map[string]any{"baseUrl": "https://api.example.com/v1#x"}, local, "settings.baseUrl", "invalid_url"},
		{"empty fragment", basic, map[string]any{"baseUrl": "https://api.example.com/#"}, local, "settings.baseUrl", "invalid_url"},
		{"test URL with user info", generic, map[string]any{"testUrl": "https://u:p@api.example.com/me"}, public, "settings.testUrl", "invalid_url"},
		{"empty host with a port", basic, map[string]any{"baseUrl": "https://:443/x"}, local, "settings.baseUrl", "invalid_url"},
		{"not http", basic, map[string]any{"baseUrl": "ftp://files.example.com"}, local, "settings.baseUrl", "invalid_value"}, // the schema's pattern
		{"relative", basic, map[string]any{"baseUrl": "/api"}, local, "settings.baseUrl", "invalid_format"},
		{"password expiry", basic, map[string]any{"baseUrl": "https://a.example.com", "passwordExpiresAt": "2027-03-01T00:00:00Z"}, public, "", ""},
		{"expiry at the lower bound", basic, map[string]any{"baseUrl": "https://a.example.com", "passwordExpiresAt": "2000-01-01T00:00:00Z"}, public, "", ""},
		{"expiry at the upper bound", basic, map[string]any{"baseUrl": "https://a.example.com", "passwordExpiresAt": "9999-12-31T23:59:59Z"}, public, "", ""},
		{"expiry at the epoch", basic, map[string]any{"baseUrl": "https://a.example.com", "passwordExpiresAt": "1970-01-01T00:00:00Z"}, public, "settings.passwordExpiresAt", "out_of_range"},
		{"expiry at the zero time", basic, map[string]any{"baseUrl": "https://a.example.com", "passwordExpiresAt": "0001-01-01T00:00:00Z"}, public, "settings.passwordExpiresAt", "out_of_range"},
		{"expiry before 2000", basic, map[string]any{"baseUrl": "https://a.example.com", "passwordExpiresAt": "1999-12-31T23:59:59Z"}, public, "settings.passwordExpiresAt", "out_of_range"},
		{"expiry before 2000 in UTC", basic, map[string]any{"baseUrl": "https://a.example.com", "passwordExpiresAt": "2000-01-01T00:30:00+01:00"}, public, "settings.passwordExpiresAt", "out_of_range"},
		{"expiry after 9999 in UTC", basic, map[string]any{"baseUrl": "https://a.example.com", "passwordExpiresAt": "9999-12-31T23:59:59-01:00"}, public, "settings.passwordExpiresAt", "out_of_range"},
		{"expiry not RFC 3339", basic, map[string]any{"baseUrl": "https://a.example.com", "passwordExpiresAt": "tomorrow"}, public, "settings.passwordExpiresAt", "invalid_format"},
		{"test path", basic, map[string]any{"baseUrl": "https://a.example.com", "testPath": "/me/.well-known/x..y"}, public, "", ""},
		{"test path with ..", basic, map[string]any{"baseUrl": "https://a.example.com", "testPath": "/a/../admin"}, public, "settings.testPath", "invalid_path"},
		{"test path with .", basic, map[string]any{"baseUrl": "https://a.example.com", "testPath": "/a/./b"}, public, "settings.testPath", "invalid_path"},
		{"test path with %2e%2e", basic, map[string]any{"baseUrl": "https://a.example.com", "testPath": "/a/%2e%2e/admin"}, public, "settings.testPath", "invalid_path"},
		{"test path with %2E.", basic, map[string]any{"baseUrl": "https://a.example.com", "testPath": "/%2E./admin"}, public, "settings.testPath", "invalid_path"},
		{"test path with .%2e at the end", basic, map[string]any{"baseUrl": "https://a.example.com", "testPath": "/a/.%2e"}, public, "settings.testPath", "invalid_path"},
		{"test path with %2e alone", sharepoint, map[string]any{"siteUrl": "https://contoso.sharepoint.com", "testPath": "/a/%2e/b"}, public, "settings.testPath", "invalid_path"},
		{"SharePoint site", sharepoint, map[string]any{"siteUrl": "https://contoso.sharepoint.com/sites/hr/payroll"}, public, "", ""},
		{"SharePoint root site, upper case, port 443", sharepoint, map[string]any{"siteUrl": "https://Contoso-My.SharePoint.com:443"}, public, "", ""},
		{"SharePoint app-only site", sharepointApp, map[string]any{"siteUrl": "https://contoso.sharepoint.com/sites/hr", "testPath": "/sites/hr/_api/web"}, public, "", ""},
		{"site on another host", sharepoint, map[string]any{"siteUrl": "https://a.example.com/sites/hr"}, public, "settings.siteUrl", "invalid_sharepoint_site"},
		{"site on a look-alike host", sharepointApp, map[string]any{"siteUrl": "https://contoso.sharepoint.com.example.com/sites/hr"}, public, "settings.siteUrl", "invalid_sharepoint_site"},
		{"site two labels deep", sharepoint, map[string]any{"siteUrl": "https://a.contoso.sharepoint.com/sites/hr"}, public, "settings.siteUrl", "invalid_sharepoint_site"},
		{"site on sharepoint.com itself", sharepoint, map[string]any{"siteUrl": "https://sharepoint.com/sites/hr"}, public, "settings.siteUrl", "invalid_sharepoint_site"},
		{"site on another port", sharepoint, map[string]any{"siteUrl": "https://contoso.sharepoint.com:8443/sites/hr"}, public, "settings.siteUrl", "invalid_sharepoint_site"},
		{"site with a query", sharepoint, map[string]any{"siteUrl": "https://contoso.sharepoint.com/sites/hr?x=1"}, public, "settings.siteUrl", "invalid_sharepoint_site"},
		{"http site even with local networks", sharepointApp, map[string]any{"siteUrl": "http://contoso.sharepoint.com/sites/hr"}, local, "settings.siteUrl", "invalid_sharepoint_site"},
		{"loopback site", sharepoint, map[string]any{"siteUrl": "http://127.0.0.1:8080/sites/hr"}, local, "settings.siteUrl", "invalid_sharepoint_site"},
		{"password expiry on SharePoint", sharepoint, map[string]any{"siteUrl": "https://contoso.sharepoint.com", "passwordExpiresAt": "2027-03-01T00:00:00Z"}, public, "settings.passwordExpiresAt", "unknown_field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.typ.CheckSettings(tt.settings, tt.policy)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			e := apperr.As(err)
			if err == nil || e.Kind != apperr.Invalid || e.Field != tt.field || e.Code != tt.code {
				t.Fatalf("got %v; want 400 %s on %s", err, tt.code, tt.field)
			}
		})
	}
	// ValidateSettings is the strictest policy.
	if err := basic.ValidateSettings(map[string]any{"baseUrl": "http://api.example.com"}); apperr.As(err).Code != "https_required" {
		t.Errorf("ValidateSettings accepts http: %v", err)
	}
}

func TestHasDotSegment(t *testing.T) {
	for p, want := range map[string]bool{
		"/":              false,
		"/items":         false,
		"/a/b.c/..d/e..": false,
		"/.well-known/x": false,
		"/a/...":         false,
		"/a/%2e%2e%2e":   false,
		"/a/%2ex":        false,
		"/a/%252e%252e":  false, // decoded once, not a dot segment
		"/..":            true,
		"/a/../b":        true,
		"/a/.":           true,
		"/./a":           true,
		"/a/%2e%2e/b":    true,
		"/a/%2E%2E/b":    true,
		"/a/%2E./b":      true,
		"/a/.%2e/b":      true,
		"/a/%2e/b":       true,
		"/a/%2E":         true,
	} {
		if got := HasDotSegment(p); got != want {
			t.Errorf("HasDotSegment(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestValidTimestamp(t *testing.T) {
	tests := []struct {
		raw  string
		want time.Time
		code string
	}{
		{"2027-03-01T00:00:00Z", time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC), ""},
		{"2027-03-01T01:00:00+01:00", time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC), ""},
		{"2000-01-01T00:00:00Z", MinTimestamp, ""},
		{"9999-12-31T23:59:59.999999999Z", MaxTimestamp, ""},
		{"1999-12-31T23:59:59.999Z", time.Time{}, "out_of_range"},
		{"1970-01-01T00:00:00Z", time.Time{}, "out_of_range"},
		{"0001-01-01T00:00:00Z", time.Time{}, "out_of_range"},
		{"0000-01-01T00:00:00Z", time.Time{}, "out_of_range"},
		{"2030-01-01", time.Time{}, "invalid_format"},
		{"2030-01-01T00:00:00", time.Time{}, "invalid_format"},
		{"", time.Time{}, "invalid_format"},
	}
	for _, tt := range tests {
		got, err := ValidTimestamp("expiresAt", tt.raw)
		if tt.code == "" {
			if err != nil || !got.Equal(tt.want) || got.Location() != time.UTC {
				t.Errorf("%q: %v %v, want %v", tt.raw, got, err, tt.want)
			}
			continue
		}
		if e := apperr.As(err); err == nil || e.Code != tt.code || e.Field != "expiresAt" {
			t.Errorf("%q: %v %v, want %s", tt.raw, got, err, tt.code)
		}
	}
}
