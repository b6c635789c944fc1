package resolveapi

import (
	"net/http"
	"slices"
	"testing"
)

// TestSecretsListEveryValue: Secrets lists every value Apply sends, the
// username too and whatever its length, raw (httpaction derives the
// encodings); the credential is built the way a workflow step gets it, from
// the wire form.
func TestSecretsListEveryValue(t *testing.T) {
	tests := []struct {
		wire string
		want []string
	}{
		{`{"kind":"basic","baseUrl":"https://erp.example.test","basic":{"username":"s","password":"pw<é"}}`, []string{"s", "pw<é"}},
		{`{"kind":"bearer","baseUrl":"https://erp.example.test","bearer":{"accessToken":"t","tokenType":"Bearer"}}`, []string{"t"}},
		{`{"kind":"apiKey","baseUrl":"https://erp.example.test","apiKey":{"headerName":"X-Api-Key","value":"k"}}`, []string{"k"}},
	}
	for _, tt := range tests {
		var c Credential
		if err := c.UnmarshalWire([]byte(tt.wire)); err != nil {
			t.Fatal(err)
		}
		if got := c.Secrets(); !slices.Equal(got, tt.want) {
			t.Errorf("%s: Secrets() = %q, want %q", c.Kind, got, tt.want)
		}
		req, _ := http.NewRequest(http.MethodGet, "https://erp.example.test/ping", nil)
		if err := c.Apply(req); err != nil {
			t.Fatal(err)
		}
		if user, pass, ok := req.BasicAuth(); ok && !(slices.Contains(c.Secrets(), user) && slices.Contains(c.Secrets(), pass)) {
			t.Errorf("Apply sent user %q and password %q; Secrets lists %q", user, pass, c.Secrets())
		}
	}
}
