package connection

import (
	"strings"
	"testing"

	"github.com/connmgr/connmgr/shared/apperr"
)

func TestCatalogue(t *testing.T) {
	want := []string{"http-basic", "http-api-key", "sharepoint-online", "oauth2-generic", "oauth2-client-credentials", "microsoft-graph", "salesforce"}
	for _, id := range want {
		typ, err := Lookup(id, "type")
		if err != nil {
			t.Fatalf("Lookup(%s): %v", id, err)
		}
		if typ.AuthMethod.IsOAuth() != (typ.ID == "oauth2-generic" || typ.ID == "oauth2-client-credentials" || typ.ID == "microsoft-graph" || typ.ID == "salesforce") {
			t.Errorf("%s: auth method %s", id, typ.AuthMethod)
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
