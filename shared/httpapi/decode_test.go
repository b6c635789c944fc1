package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/connmgr/connmgr/shared/apperr"
)

type decodeBase struct {
	Note string `json:"note,omitempty"`
}

// decodeTarget has the shapes request bodies have: tagged fields, an
// untagged one, a pointer to a struct, maps with free keys, a type that
// decodes itself, slices of structs and an embedded struct.
type decodeTarget struct {
	decodeBase
	Name         string `json:"name"`
	Kind         string `json:"kind"`
	Plain        string // matched by its Go name, exactly
	Ignored      string `json:"-"`
	Availability *struct {
		Scope string `json:"scope"`
	} `json:"availability,omitempty"`
	Settings    map[string]any    `json:"settings"`
	Credentials map[string]string `json:"credentials"`
	Steps       []struct {
		ID   string          `json:"id"`
		Body json.RawMessage `json:"body"`
	} `json:"steps"`
}

// TestDecodeJSONStrict: keys are matched exactly and never twice, at every
// depth; the body is UTF-8, declared or not, and never silently repaired.
func TestDecodeJSONStrict(t *testing.T) {
	tests := []struct {
		name   string
		ct     string // default application/json
		body   string
		b64    bool
		status int // 0: decoded
		code   string
		field  string
	}{
		{"exact keys", "", `{"name":"n","kind":"shared","Plain":"p","note":"x"}`, false, 0, "", ""},
		{"upper-case key", "", `{"KIND":"shared"}`, false, 400, "unknown_field", "KIND"},
		{"capitalised key", "", `{"Name":"n"}`, false, 400, "unknown_field", "Name"},
		{"Go name in lower case", "", `{"plain":"p"}`, false, 400, "unknown_field", "plain"},
		{"field tagged -", "", `{"Ignored":"x"}`, false, 400, "unknown_field", "Ignored"},
		{"embedded field in another case", "", `{"Note":"x"}`, false, 400, "unknown_field", "Note"},
		{"nested key in another case", "", `{"availability":{"Scope":"tenant"}}`, false, 400, "unknown_field", "availability.Scope"},
		{"nested unknown key", "", `{"availability":{"scope":"tenant","site":"/s"}}`, false, 400, "unknown_field", "availability.site"},
		{"key in a slice element", "", `{"steps":[{"id":"a"},{"ID":"b"}]}`, false, 400, "unknown_field", "steps[1].ID"},
		{"settings keep any key", "", `{"settings":{"baseUrl":"u","BaseUrl":"v","x":{"Y":1}}}`, false, 0, "", ""},
		{"raw body keeps any key", "", `{"steps":[{"id":"a","body":{"A":1,"a":2}}]}`, false, 0, "", ""},
		{"duplicate key", "", `{"name":"a","name":"b"}`, false, 400, "duplicate_key", "name"},
		{"duplicate differing in case", "", `{"name":"a","NAME":"b"}`, false, 400, "unknown_field", "NAME"},
		{"duplicate setting", "", `{"settings":{"baseUrl":"a","baseUrl":"b"}}`, false, 400, "duplicate_key", "settings.baseUrl"},
		{"duplicate deep in a setting", "", `{"settings":{"x":[{"a":1},{"a":1,"a":2}]}}`, false, 400, "duplicate_key", "settings.x[1].a"},
		{"duplicate credential", "", `{"credentials":{"password":"a","password":"b"}}`, false, 400, "duplicate_key", "credentials.password"},
		{"duplicate in a raw body", "", `{"steps":[{"id":"a","body":{"n":1,"n":2}}]}`, false, 400, "duplicate_key", "steps[0].body.n"},
		{"same key in sibling objects", "", `{"steps":[{"id":"a"},{"id":"b"}]}`, false, 0, "", ""},
		{"charset utf-8", "application/json; charset=utf-8", `{"name":"n"}`, false, 0, "", ""},
		{"charset UTF-8", "application/json; charset=UTF-8", `{"name":"n"}`, false, 0, "", ""},
		{"charset latin-1", "application/json; charset=iso-8859-1", `{"name":"n"}`, false, 415, "unsupported_charset", ""},
		{"charset utf-16", "application/json;charset=utf-16", `{"name":"n"}`, false, 415, "unsupported_charset", ""},
		{"charset utf8 spelled without hyphen", "application/json; charset=utf8", `{"name":"n"}`, false, 415, "unsupported_charset", ""},
		{"invalid UTF-8 in a value", "", "{\"name\":\"caf\xe9\"}", false, 400, "invalid_utf8", ""},
		{"invalid UTF-8 in a key", "", "{\"settings\":{\"\xff\":1}}", false, 400, "invalid_utf8", ""},
		{"invalid UTF-8 outside strings", "", "{\"name\":\"n\"}\xc0", false, 400, "invalid_utf8", ""},
		{"invalid UTF-8, base64-encoded", "", base64.StdEncoding.EncodeToString([]byte("{\"name\":\"\xed\xa0\x80\"}")), true, 400, "invalid_utf8", ""},
		{"unpaired high surrogate escape", "", `{"name":"\ud800"}`, false, 400, "invalid_utf8", ""},
		{"unpaired low surrogate escape", "", `{"name":"\udc00x"}`, false, 400, "invalid_utf8", ""},
		{"high surrogate then a non-surrogate", "", `{"name":"\ud800\u0041"}`, false, 400, "invalid_utf8", ""},
		{"surrogate pair", "", `{"name":"\ud83d\ude00"}`, false, 0, "", ""},
		{"escaped backslash before u", "", `{"name":"\\ud800"}`, false, 0, "", ""},
		{"multi-byte UTF-8", "", `{"name":"Zürich – 東京 😀"}`, false, 0, "", ""},
		{"nested too deep", "", `{"settings":{"x":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}}`, false, 400, "malformed_json", ""},
		{"malformed", "", `{"name":"n",}`, false, 400, "malformed_json", ""},
		{"trailing value", "", `{"name":"n"} {}`, false, 400, "malformed_json", ""},
		{"not an object", "", `["name"]`, false, 400, "malformed_json", ""},
		{"wrong type", "", `{"name":5}`, false, 400, "invalid_type", "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := tt.ct
			if ct == "" {
				ct = "application/json"
			}
			r := &Request{APIGatewayV2HTTPRequest: events.APIGatewayV2HTTPRequest{
				Headers: map[string]string{"content-type": ct}, Body: tt.body, IsBase64Encoded: tt.b64}}
			var v decodeTarget
			err := r.DecodeJSON(&v)
			if tt.status == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			e := apperr.As(err)
			if err == nil || e.Kind.Status() != tt.status || e.Code != tt.code || e.Field != tt.field {
				t.Fatalf("got %v (status %d); want %d %s field %q", err, e.Kind.Status(), tt.status, tt.code, tt.field)
			}
		})
	}
}

// TestDecodeJSONKeepsValues: what passes the checks decodes as before,
// escapes and all.
func TestDecodeJSONKeepsValues(t *testing.T) {
	r := &Request{APIGatewayV2HTTPRequest: events.APIGatewayV2HTTPRequest{Headers: map[string]string{"content-type": "application/json"},
		Body: `{"name":"a\u00e9\ud83d\ude00\\u","settings":{"k":{"K":[1,"2"]}},"availability":{"scope":"tenant"}}`}}
	var v decodeTarget
	if err := r.DecodeJSON(&v); err != nil {
		t.Fatal(err)
	}
	if v.Name != "aé😀\\u" || v.Availability == nil || v.Availability.Scope != "tenant" || v.Settings["k"].(map[string]any)["K"] == nil {
		t.Fatalf("decoded %+v", v)
	}
}
