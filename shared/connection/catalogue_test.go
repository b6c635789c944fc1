package connection

import (
	"slices"
	"strings"
	"testing"

	"github.com/connmgr/connmgr/shared/apperr"
)

func TestCatalogue(t *testing.T) {
	want := []string{"http-basic", "http-api-key", "sharepoint-online", "sharepoint-online-app", "oauth2-generic", "oauth2-client-credentials", "microsoft-graph", "salesforce"}
	var got []string
	for _, typ := range Types() {
		got = append(got, typ.ID)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("catalogue %v, want %v", got, want)
	}
	for _, id := range want {
		typ, err := Lookup(id, "type")
		if err != nil {
			t.Fatalf("Lookup(%s): %v", id, err)
		}
		if typ.AuthMethod.IsOAuth() != (typ.ID != "http-basic" && typ.ID != "http-api-key") {
			t.Errorf("%s: auth method %s", id, typ.AuthMethod)
		}
		// A certificate signs client credentials requests only: the
		// refresh of a code grant would need it too (not implemented).
		if typ.OAuth.UsesCertificate() && typ.AuthMethod != AuthOAuth2Client {
			t.Errorf("%s: certificate client authentication with %s", id, typ.AuthMethod)
		}
		if s := typ.OAuth; s != nil && s.ResourceSetting != "" && !slices.Contains(typ.DestinationSettings(), s.ResourceSetting) {
			t.Errorf("%s: the resource setting %s is not a destination", id, s.ResourceSetting)
		}
	}
	if _, err := Lookup("ftp", "type"); !apperr.Is(err, apperr.Invalid) {
		t.Errorf("unknown type: %v", err)
	}
	basic, _ := Lookup("http-basic", "type")
	if got := basic.SecretFields(); strings.Join(got, ",") != "password,username" {
		t.Errorf("secret fields %v", got)
	}
}

func TestValidate(t *testing.T) {
	basic, _ := Lookup("http-basic", "type")
	apiKey, _ := Lookup("http-api-key", "type")
	tests := []struct {
		name     string
		typ      *Type
		settings map[string]any
		creds    map[string]string
		field    string // "" = valid
		code     string
	}{
		{"valid basic", basic, map[string]any{"baseUrl": "https://api.example.com"}, map[string]string{"username": "u", "password": "p"}, "", ""},
		{"password expiry", basic, map[string]any{"baseUrl": "https://api.example.com", "passwordExpiresAt": "2027-01-01T00:00:00Z"}, map[string]string{"username": "u", "password": "p"}, "", ""},
		{"bad expiry", basic, map[string]any{"baseUrl": "https://api.example.com", "passwordExpiresAt": "tomorrow"}, map[string]string{"username": "u", "password": "p"}, "settings.passwordExpiresAt", "invalid_format"},
		{"missing baseUrl", basic, map[string]any{}, map[string]string{"username": "u", "password": "p"}, "settings.baseUrl", "required"},
		{"ftp baseUrl", basic, map[string]any{"baseUrl": "ftp://x"}, map[string]string{"username": "u", "password": "p"}, "settings.baseUrl", "invalid_value"},
		{"unknown setting", basic, map[string]any{"baseUrl": "https://x", "colour": "red"}, map[string]string{"username": "u", "password": "p"}, "settings.colour", "unknown_field"},
		{"missing password", basic, map[string]any{"baseUrl": "https://x"}, map[string]string{"username": "u"}, "credentials.password", "required"},
		{"empty password", basic, map[string]any{"baseUrl": "https://x"}, map[string]string{"username": "u", "password": ""}, "credentials.password", "invalid_value"},
		{"unknown credential", basic, map[string]any{"baseUrl": "https://x"}, map[string]string{"username": "u", "password": "p", "token": "t"}, "credentials.token", "unknown_field"},
		{"bad header", apiKey, map[string]any{"baseUrl": "https://x", "headerName": "X Key"}, map[string]string{"apiKey": "k"}, "settings.headerName", "invalid_value"},
		{"number setting", apiKey, map[string]any{"baseUrl": 12, "headerName": "X-Key"}, map[string]string{"apiKey": "k"}, "settings.baseUrl", "invalid_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.typ.ValidateSettings(tt.settings)
			if err == nil {
				err = tt.typ.ValidateCredentials(tt.creds)
			}
			if tt.field == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			e := apperr.As(err)
			if e.Kind != apperr.Invalid || e.Field != tt.field || e.Code != tt.code {
				t.Fatalf("got %v (field %q code %q), want field %q code %q", err, e.Field, e.Code, tt.field, tt.code)
			}
		})
	}
}

func TestCredentialErrorsNeverEchoValues(t *testing.T) {
	basic, _ := Lookup("http-basic", "type")
	canary := "CANARY-" + strings.Repeat("s", 5000) // too long: fails maxLength
	err := basic.ValidateCredentials(map[string]string{"username": "u", "password": canary})
	if err == nil {
		t.Fatal("oversize password accepted")
	}
	if strings.Contains(err.Error(), "CANARY") || strings.Contains(err.Error(), "5007") || strings.Contains(err.Error(), "4096") {
		t.Errorf("error reveals the value or its length: %v", err)
	}
}

// TestSharePointTypes: where a SharePoint connection's tokens come from,
// what they are for, and where requests go.
func TestSharePointTypes(t *testing.T) {
	for _, id := range []string{"sharepoint-online", "sharepoint-online-app"} {
		typ, _ := Lookup(id, "type")
		if !typ.OAuth.NeedsDirectoryTenant() || typ.OAuth.TokenURL != "https://login.microsoftonline.com/{directoryTenant}/oauth2/v2.0/token" ||
			typ.OAuth.AuthorizeURL != "https://login.microsoftonline.com/{directoryTenant}/oauth2/v2.0/authorize" {
			t.Errorf("%s: endpoints %+v", id, typ.OAuth)
		}
		if len(typ.SecretFields()) != 0 {
			t.Errorf("%s: credentials %v on the connection", id, typ.SecretFields())
		}
		settings := map[string]any{"siteUrl": "https://Contoso.sharepoint.com:443/sites/hr/payroll"}
		if got, ok := typ.ResourceScope(settings); !ok || got != "https://contoso.sharepoint.com/.default" {
			t.Errorf("%s: resource scope %q %v", id, got, ok)
		}
		if got := typ.RequestBaseURL(settings); got != "https://contoso.sharepoint.com" {
			t.Errorf("%s: base URL %q", id, got)
		}
		c := Connection{Type: id, Settings: settings, TokenEndpoint: "https://login.microsoftonline.com:443"}
		if got := c.Destinations(); strings.Join(got, " ") != "https://contoso.sharepoint.com:443 https://login.microsoftonline.com:443" {
			t.Errorf("%s: destinations %v", id, got)
		}
	}
	app, _ := Lookup("sharepoint-online-app", "type")
	if !app.OAuth.UsesCertificate() || len(app.OAuth.Scopes) != 0 {
		t.Errorf("app-only: %+v", app.OAuth)
	}
	delegated, _ := Lookup("sharepoint-online", "type")
	if delegated.OAuth.UsesCertificate() || strings.Join(delegated.OAuth.Scopes, " ") != "offline_access" {
		t.Errorf("delegated: %+v", delegated.OAuth)
	}
	basic, _ := Lookup("http-basic", "type")
	if got := basic.RequestBaseURL(map[string]any{"baseUrl": "https://api.example.com/v1"}); got != "https://api.example.com/v1" {
		t.Errorf("http-basic base URL %q", got)
	}
	if _, ok := basic.ResourceScope(map[string]any{"baseUrl": "https://api.example.com/v1"}); ok {
		t.Error("http-basic has a resource scope")
	}
	graph, _ := Lookup("microsoft-graph", "type")
	if got := graph.RequestBaseURL(nil); got != "https://graph.microsoft.com" {
		t.Errorf("graph base URL %q", got)
	}
}

func TestCanonicalDirectoryTenant(t *testing.T) {
	for in, want := range map[string]string{
		"72F988BF-86F1-41AF-91AB-2D7CD011DB47": "72f988bf-86f1-41af-91ab-2d7cd011db47",
		" contoso.onmicrosoft.com ":            "contoso.onmicrosoft.com",
		"contoso.com":                          "contoso.com",
	} {
		if got, err := CanonicalDirectoryTenant("directoryTenant", in); err != nil || got != want {
			t.Errorf("%q: %q %v", in, got, err)
		}
	}
	for _, in := range []string{"", "common", "organizations", "consumers", "contoso", "72f988bf-86f1-41af-91ab", "contoso.onmicrosoft.com/oauth2",
		"../evil.example.com", "contoso.onmicrosoft.com?x", "a b.com", "evil.example.com#", "xn--.com.", strings.Repeat("a.", 130) + "com"} {
		_, err := CanonicalDirectoryTenant("directoryTenant", in)
		if e := apperr.As(err); e.Field != "directoryTenant" || e.Code != "invalid_directory_tenant" {
			t.Errorf("%q accepted: %v", in, err)
		}
	}
}
