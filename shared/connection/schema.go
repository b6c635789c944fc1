package connection

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// schema is a compiled JSON Schema (draft 2020-12) made of the keywords the
// catalogue's types use: type (object, string or array), properties,
// required, additionalProperties (false), items, minLength, maxLength,
// maxItems, pattern and format (uri, date-time); description and writeOnly
// are annotations. compileSchema refuses any other keyword, so no type can
// rely on one that is not enforced.
//
// A general validator (github.com/santhosh-tekuri/jsonschema, with the
// golang.org/x/text message and language tables its error messages use)
// is about 0.7 MB of every function binary that links this package;
// schema_test.go holds this one to it, keyword by keyword, on every type
// of the catalogue.
type schema struct {
	typ        string
	properties map[string]*schema
	required   []string
	closed     bool // additionalProperties: false
	items      *schema
	minLength  *int
	maxLength  *int
	maxItems   *int
	pattern    *regexp.Regexp
	format     string
}

// violation is the first way an instance fails a schema, as the JSON
// Schema keyword that failed sees it.
type violation struct {
	at      []string // instance location
	keyword string   // required, additionalProperties, type, format, or another
	name    string   // the missing or unknown property
	want    string   // the type or format wanted
	detail  string   // for the other keywords: what failed, from the schema (and, for pattern, the value)
}

func compileSchema(name string, raw json.RawMessage) (*schema, error) {
	s, err := parseSchema(raw)
	if err != nil {
		return nil, fmt.Errorf("connection type schema %s: %w", name, err)
	}
	return s, nil
}

func parseSchema(raw json.RawMessage) (*schema, error) {
	var kw map[string]json.RawMessage
	if err := json.Unmarshal(raw, &kw); err != nil {
		return nil, err
	}
	s := &schema{}
	for k, v := range kw {
		var err error
		switch k {
		case "description", "writeOnly":
		case "type":
			err = json.Unmarshal(v, &s.typ)
			if err == nil && s.typ != "object" && s.typ != "string" && s.typ != "array" {
				err = fmt.Errorf("type %q is not supported", s.typ)
			}
		case "properties":
			var props map[string]json.RawMessage
			if err = json.Unmarshal(v, &props); err == nil {
				s.properties = make(map[string]*schema, len(props))
				for p, ps := range props {
					if s.properties[p], err = parseSchema(ps); err != nil {
						return nil, fmt.Errorf("property %s: %w", p, err)
					}
				}
			}
		case "required":
			err = json.Unmarshal(v, &s.required)
		case "additionalProperties":
			var b bool
			if err = json.Unmarshal(v, &b); err == nil && b {
				err = fmt.Errorf("additionalProperties must be false")
			}
			s.closed = true
		case "items":
			s.items, err = parseSchema(v)
		case "minLength":
			err = json.Unmarshal(v, &s.minLength)
		case "maxLength":
			err = json.Unmarshal(v, &s.maxLength)
		case "maxItems":
			err = json.Unmarshal(v, &s.maxItems)
		case "pattern":
			var p string
			if err = json.Unmarshal(v, &p); err == nil {
				s.pattern, err = regexp.Compile(p)
			}
		case "format":
			err = json.Unmarshal(v, &s.format)
			if err == nil && s.format != "uri" && s.format != "date-time" {
				err = fmt.Errorf("format %q is not supported", s.format)
			}
		default:
			err = fmt.Errorf("keyword %q is not supported", k)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
	}
	if s.typ == "" {
		return nil, fmt.Errorf("no type")
	}
	return s, nil
}

// check returns the first violation of v (a value decoded from JSON), or
// nil. The order is the validator's: the type, the format, then a string's
// length and pattern, an array's size and items, an object's required
// properties, its properties (by name), its unknown properties.
func (s *schema) check(v any, at []string) *violation {
	if got := jsonType(v); got != s.typ {
		return &violation{at: at, keyword: "type", want: s.typ}
	}
	switch s.typ {
	case "string":
		str := v.(string)
		if s.format != "" && !validFormat(s.format, str) {
			return &violation{at: at, keyword: "format", want: s.format}
		}
		n := utf8.RuneCountInString(str)
		if s.minLength != nil && n < *s.minLength {
			return &violation{at: at, keyword: "minLength", detail: "minLength: got " + group(n) + ", want " + group(*s.minLength)}
		}
		if s.maxLength != nil && n > *s.maxLength {
			return &violation{at: at, keyword: "maxLength", detail: "maxLength: got " + group(n) + ", want " + group(*s.maxLength)}
		}
		if s.pattern != nil && !s.pattern.MatchString(str) {
			return &violation{at: at, keyword: "pattern", detail: quote(str) + " does not match pattern " + quote(s.pattern.String())}
		}
	case "array":
		arr := v.([]any)
		if s.maxItems != nil && len(arr) > *s.maxItems {
			return &violation{at: at, keyword: "maxItems", detail: "maxItems: got " + group(len(arr)) + ", want " + group(*s.maxItems)}
		}
		if s.items != nil {
			for i, item := range arr {
				if f := s.items.check(item, append(slices.Clip(at), strconv.Itoa(i))); f != nil {
					return f
				}
			}
		}
	case "object":
		obj := v.(map[string]any)
		for _, r := range s.required {
			if _, ok := obj[r]; !ok {
				return &violation{at: at, keyword: "required", name: r}
			}
		}
		var unknown []string
		for _, k := range slices.Sorted(mapsKeys(obj)) {
			ps, ok := s.properties[k]
			if !ok {
				if s.closed {
					unknown = append(unknown, k)
				}
				continue
			}
			if f := ps.check(obj[k], append(slices.Clip(at), k)); f != nil {
				return f
			}
		}
		if len(unknown) > 0 {
			return &violation{at: at, keyword: "additionalProperties", name: unknown[0]}
		}
	}
	return nil
}

func mapsKeys(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// jsonType is the JSON Schema type of a value decoded from JSON.
func jsonType(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	case json.Number:
		if r, ok := new(big.Rat).SetString(string(v)); ok && r.IsInt() {
			return "integer"
		}
		return "number"
	case float64:
		return "number"
	}
	return fmt.Sprintf("%T", v)
}

// decodeInstance turns v into what a JSON decoder makes of its JSON, so
// numbers and nested values have their JSON types.
func decodeInstance(v map[string]any) (any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var inst any
	err = d.Decode(&inst)
	return inst, err
}

func validFormat(format, s string) bool {
	switch format {
	case "uri":
		u, err := url.Parse(s)
		if err != nil || !u.IsAbs() {
			return false
		}
		if h := u.Hostname(); strings.Contains(h, ":") {
			// url.Parse does not check an IPv6 host.
			if !strings.Contains(u.Host, "[") || !strings.Contains(u.Host, "]") {
				return false
			}
			if a, err := netip.ParseAddr(h); err != nil || a.Zone() != "" {
				return false
			}
		}
		return true
	case "date-time":
		return validDateTime(s)
	}
	return false
}

// validDateTime is RFC 3339's date-time (section 5.6), leap seconds
// included, which time.Parse alone refuses.
func validDateTime(s string) bool {
	if len(s) < 20 || (s[10] != 'T' && s[10] != 't') {
		return false
	}
	if _, err := time.Parse("2006-01-02", s[:10]); err != nil {
		return false
	}
	t := s[11:]
	if t[2] != ':' || t[5] != ':' {
		return false
	}
	var hms [3]int
	for i, tok := range strings.SplitN(t[:8], ":", 3) {
		n, err := strconv.Atoi(tok)
		if err != nil || n < 0 {
			return false
		}
		hms[i] = n
	}
	h, m, sec := hms[0], hms[1], hms[2]
	if h > 23 || m > 59 || sec > 60 {
		return false
	}
	t = t[8:]
	if rest, ok := strings.CutPrefix(t, "."); ok {
		digits := 0
		for digits < len(rest) && rest[digits] >= '0' && rest[digits] <= '9' {
			digits++
		}
		if digits == 0 {
			return false
		}
		t = rest[digits:]
	}
	if t != "Z" && t != "z" {
		if len(t) != 6 || (t[0] != '+' && t[0] != '-') || t[3] != ':' {
			return false
		}
		zh, err1 := strconv.Atoi(t[1:3])
		zm, err2 := strconv.Atoi(t[4:6])
		if err1 != nil || err2 != nil || zh < 0 || zm < 0 || zh > 23 || zm > 59 {
			return false
		}
		sign := 1
		if t[0] == '+' {
			sign = -1
		}
		hm := h*60 + m + sign*(zh*60+zm)
		if hm < 0 {
			hm += 24 * 60
		}
		h, m = hm/60, hm%60
	}
	return sec < 60 || (h == 23 && m == 59)
}

// group writes n with thousands separators, as English messages do
// ("got 2,068, want 2,048").
func group(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// quote is the validator's quoting of a string in a message.
func quote(s string) string {
	s = strconv.Quote(s)
	s = strings.ReplaceAll(s, `\"`, `"`)
	s = strings.ReplaceAll(s, `'`, `\'`)
	return "'" + s[1:len(s)-1] + "'"
}
