package connection

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// The catalogue's validator is held to a general JSON Schema validator
// (draft 2020-12, formats asserted) on every schema of every type: both
// accept the same instances, and the violation ours reports is one the
// reference reports, with the same message where it has one.

var refPrinter = message.NewPrinter(language.English)

// probes are values each property of each schema is tried with.
var probes = []any{
	nil, true, 1, 1.5, "", "x", "/", "/a/b", "a/b",
	"https://example.com", "http://example.com/x?y#z", "HTTPS://EXAMPLE.COM:8443", "https://[::1]:8443/p", "https://[fe80::1%25eth0]/",
	"https://::1/", "ftp://x", "mailto:a@b.c", "https://exa mple.com", "https://example.com/%zz", "//example.com/x",
	strings.Repeat("a", 257), strings.Repeat("é", 256), strings.Repeat("é", 257), strings.Repeat("a", 4097), "https://example.com/" + strings.Repeat("a", 2048),
	"2026-01-02T03:04:05Z", "2026-01-02t03:04:05z", "2026-06-30T23:59:60Z", "2026-06-30T23:59:60+01:00", "2026-06-30T22:59:60-01:00",
	"2026-01-02 03:04:05Z", "2026-02-30T00:00:00Z", "2026-01-02T03:04:05.123+05:30", "2026-01-02T03:04:05.+05:30",
	"2026-01-02T03:04:05+24:00", "2026-01-02T03:04:05+05:3", "2026-01-02T24:00:00Z", "2026-01-02T03:04:05",
	"X-Api-Key", "bad header", "x{}", strings.Repeat("h", 128), strings.Repeat("h", 129),
	[]any{}, []any{"a"}, []any{""}, []any{1}, []any{strings.Repeat("s", 257)}, manyStrings(50), manyStrings(51),
	map[string]any{}, map[string]any{"a": 1},
}

func manyStrings(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = fmt.Sprint("s", i)
	}
	return out
}

func compileRef(t *testing.T, raw json.RawMessage) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource("urn:test", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("urn:test")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// leaves are the reference's violations: each leaf of its error tree.
func leaves(e *jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(e.Causes) == 0 {
		return []*jsonschema.ValidationError{e}
	}
	var out []*jsonschema.ValidationError
	for _, c := range e.Causes {
		out = append(out, leaves(c)...)
	}
	return out
}

// matches reports whether the reference's leaf is the violation ours found.
func matches(l *jsonschema.ValidationError, v *violation) bool {
	if strings.Join(l.InstanceLocation, "/") != strings.Join(v.at, "/") {
		return false
	}
	switch k := l.ErrorKind.(type) {
	case *kind.Required:
		return v.keyword == "required" && k.Missing[0] == v.name
	case *kind.AdditionalProperties:
		return v.keyword == "additionalProperties" && contains(k.Properties, v.name)
	case *kind.Type:
		return v.keyword == "type" && strings.Join(k.Want, " or ") == v.want
	case *kind.Format:
		return v.keyword == "format" && k.Want == v.want
	}
	return v.keyword == l.ErrorKind.KeywordPath()[len(l.ErrorKind.KeywordPath())-1] && l.ErrorKind.LocalizedString(refPrinter) == v.detail
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestSchemaAgreesWithAReferenceValidator(t *testing.T) {
	checked := 0
	for _, typ := range Types() {
		for _, which := range []struct {
			name string
			raw  json.RawMessage
			ours *schema
		}{{"settings", typ.Settings, typ.settings}, {"credentials", typ.Credentials, typ.credentials}} {
			t.Run(typ.ID+"/"+which.name, func(t *testing.T) {
				ref := compileRef(t, which.raw)
				compare := func(inst map[string]any) {
					t.Helper()
					checked++
					v, err := decodeInstance(inst)
					if err != nil {
						t.Fatal(err)
					}
					got := which.ours.check(v, nil)
					rv, _ := decodeInstance(inst)
					refErr := ref.Validate(rv)
					raw, _ := json.Marshal(inst)
					if len(raw) > 160 {
						raw = append(raw[:160:160], "…"...)
					}
					switch {
					case got == nil && refErr == nil:
					case got == nil:
						t.Errorf("%s: ours accepts, the reference refuses: %v", raw, refErr)
					case refErr == nil:
						t.Errorf("%s: ours refuses (%+v), the reference accepts", raw, *got)
					default:
						ls := leaves(refErr.(*jsonschema.ValidationError))
						found := false
						for _, l := range ls {
							found = found || matches(l, got)
						}
						if !found {
							var ks []string
							for _, l := range ls {
								ks = append(ks, fmt.Sprintf("%v %T %.120s", l.InstanceLocation, l.ErrorKind, l.ErrorKind.LocalizedString(refPrinter)))
							}
							t.Errorf("%s: ours reports %s %v %q %.120q, the reference %v", raw, got.keyword, got.at, got.name+got.want, got.detail, ks)
						}
					}
				}
				// A valid value for each property, where one of the probes is.
				valid := map[string]any{}
				for name, ps := range which.ours.properties {
					for _, p := range probes {
						if ps.check(mustDecode(p), nil) == nil {
							valid[name] = p
							break
						}
					}
				}
				base := map[string]any{}
				for _, r := range which.ours.required {
					base[r] = valid[r]
				}
				compare(map[string]any{})
				compare(base)
				compare(with(base, "unknownField", "x"))
				compare(with(with(base, "zz", 1), "aa", 2))
				for name := range which.ours.properties {
					for _, p := range probes {
						compare(with(base, name, p))
						compare(with(with(base, name, p), "unknown", 1))
					}
					if contains(which.ours.required, name) {
						m := with(base, "x", nil)
						delete(m, name)
						delete(m, "x")
						compare(m)
					}
				}
			})
		}
	}
	if checked < 1000 {
		t.Errorf("only %d instances checked", checked)
	}
	t.Logf("%d instances checked", checked)
}

func with(m map[string]any, k string, v any) map[string]any {
	out := map[string]any{k: v}
	for kk, vv := range m {
		if kk != k {
			out[kk] = vv
		}
	}
	return out
}

func mustDecode(v any) any {
	inst, err := decodeInstance(map[string]any{"v": v})
	if err != nil {
		panic(err)
	}
	return inst.(map[string]any)["v"]
}

// A keyword the validator does not implement cannot enter the catalogue.
func TestSchemaRefusesUnknownKeywords(t *testing.T) {
	for _, raw := range []string{
		`{"type": "string", "enum": ["a"]}`,
		`{"type": "object", "properties": {"a": {"type": "string", "const": "x"}}}`,
		`{"type": "object", "additionalProperties": true}`,
		`{"type": "number"}`,
		`{"type": "string", "format": "email"}`,
		`{"type": "string", "pattern": "("}`,
		`{"description": "no type"}`,
	} {
		if _, err := compileSchema("test", json.RawMessage(raw)); err == nil {
			t.Errorf("compileSchema(%s) accepted it", raw)
		}
	}
}
