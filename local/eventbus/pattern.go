package eventbus

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Pattern is a compiled EventBridge event pattern.
type Pattern struct {
	root *object
}

// PatternError is an invalid pattern; EventBridge calls it
// InvalidEventPatternException.
type PatternError struct{ Reason string }

func (e *PatternError) Error() string {
	return "InvalidEventPatternException: Event pattern is not valid. Reason: " + e.Reason
}

func patternErr(format string, args ...any) error {
	return &PatternError{Reason: fmt.Sprintf(format, args...)}
}

// CompilePattern compiles a pattern given as JSON text or as generic JSON
// values (a map[string]any, e.g. from the template). It supports exact
// values (strings, numbers, booleans, null) in arrays, nested objects,
// $or, and the operators prefix, suffix, equals-ignore-case, wildcard,
// anything-but (a value, a list, or prefix/suffix/equals-ignore-case/
// wildcard), exists and numeric. cidr is refused.
func CompilePattern(p any) (*Pattern, error) {
	if b, ok := p.([]byte); ok {
		p = string(b)
	}
	var v any
	switch x := p.(type) {
	case string:
		if err := json.Unmarshal([]byte(x), &v); err != nil {
			return nil, patternErr("%v", err)
		}
	default:
		// Round-trip generic values (YAML ints, typed maps) to JSON's.
		b, err := json.Marshal(x)
		if err != nil {
			return nil, patternErr("%v", err)
		}
		if err := json.Unmarshal(b, &v); err != nil {
			return nil, patternErr("%v", err)
		}
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, patternErr("the pattern must be a JSON object")
	}
	if len(m) == 0 {
		return nil, patternErr("the pattern must not be empty")
	}
	root, err := compileObject(m, "")
	if err != nil {
		return nil, err
	}
	return &Pattern{root: root}, nil
}

// Match reports whether the event, as generic JSON values (the full
// envelope: source, detail-type, detail, ...), matches.
func (p *Pattern) Match(event map[string]any) bool { return p.root.match(event) }

// MatchJSON decodes an event and matches it.
func (p *Pattern) MatchJSON(event []byte) (bool, error) {
	var m map[string]any
	if err := json.Unmarshal(event, &m); err != nil {
		return false, err
	}
	return p.Match(m), nil
}

// object is one level of a pattern: every field must match, and when $or
// is present, one of its alternatives too.
type object struct {
	keys   []string
	fields map[string]*field
	or     []*object
}

type field struct {
	nested *object   // the pattern value is an object
	leaf   []matcher // the pattern value is an array: one must match
}

func compileObject(m map[string]any, at string) (*object, error) {
	o := &object{fields: map[string]*field{}}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		where := strings.TrimPrefix(at+"."+k, ".")
		if k == "$or" {
			alts, ok := v.([]any)
			if !ok || len(alts) < 2 {
				return nil, patternErr("$or at %s must be an array of at least two patterns", orRoot(at))
			}
			for _, a := range alts {
				am, ok := a.(map[string]any)
				if !ok || len(am) == 0 {
					return nil, patternErr("each $or alternative at %s must be a non-empty object", orRoot(at))
				}
				sub, err := compileObject(am, at)
				if err != nil {
					return nil, err
				}
				o.or = append(o.or, sub)
			}
			continue
		}
		switch x := v.(type) {
		case map[string]any:
			if len(x) == 0 {
				return nil, patternErr("%s: an empty object matches nothing", where)
			}
			sub, err := compileObject(x, where)
			if err != nil {
				return nil, err
			}
			o.fields[k] = &field{nested: sub}
		case []any:
			if len(x) == 0 {
				return nil, patternErr("%s: an empty array matches nothing", where)
			}
			f := &field{}
			for _, e := range x {
				mt, err := compileMatcher(e, where)
				if err != nil {
					return nil, err
				}
				f.leaf = append(f.leaf, mt)
			}
			o.fields[k] = f
		default:
			return nil, patternErr("%s: match values must be inside an array, e.g. [%s]", where, jsonText(v))
		}
		o.keys = append(o.keys, k)
	}
	return o, nil
}

func orRoot(at string) string {
	if at == "" {
		return "the top level"
	}
	return at
}

func (o *object) match(ev map[string]any) bool {
	for _, k := range o.keys {
		v, present := ev[k]
		if !o.fields[k].match(v, present) {
			return false
		}
	}
	if len(o.or) == 0 {
		return true
	}
	for _, alt := range o.or {
		if alt.match(ev) {
			return true
		}
	}
	return false
}

func (f *field) match(v any, present bool) bool {
	if f.nested != nil {
		switch x := v.(type) {
		case map[string]any:
			return f.nested.match(x)
		case []any: // an array of objects matches when one element does
			for _, e := range x {
				if m, ok := e.(map[string]any); ok && f.nested.match(m) {
					return true
				}
			}
			return false
		case nil:
			// A missing object matches only a nested pattern that asks for
			// absent fields, e.g. {"detail":{"a":[{"exists":false}]}}.
			if !present {
				return f.nested.match(map[string]any{})
			}
		}
		return false
	}
	for _, m := range f.leaf {
		if m.match(v, present) {
			return true
		}
	}
	return false
}

// matcher matches one leaf value. present is false for a missing field;
// an array value matches when one of its elements does (exists looks at
// the field itself).
type matcher interface {
	match(v any, present bool) bool
}

// scalarMatcher is a matcher of single values, lifted over arrays.
type scalarMatcher func(v any) bool

func (f scalarMatcher) match(v any, present bool) bool {
	if !present {
		return false
	}
	if arr, ok := v.([]any); ok {
		for _, e := range arr {
			if f(e) {
				return true
			}
		}
		return false
	}
	if _, ok := v.(map[string]any); ok {
		return false
	}
	return f(v)
}

type existsMatcher bool

func (e existsMatcher) match(v any, present bool) bool {
	if !present {
		return !bool(e)
	}
	if _, ok := v.(map[string]any); ok {
		return false // exists applies to leaf fields only
	}
	if arr, ok := v.([]any); ok && len(arr) == 0 {
		return !bool(e) // EventBridge flattens arrays: an empty one has no leaf
	}
	return bool(e)
}

func compileMatcher(e any, at string) (matcher, error) {
	switch x := e.(type) {
	case nil, string, float64, bool:
		return scalarMatcher(func(v any) bool { return equal(x, v) }), nil
	case map[string]any:
		if len(x) != 1 {
			return nil, patternErr("%s: an operator object must have exactly one key", at)
		}
		for op, arg := range x {
			return compileOperator(op, arg, at)
		}
	}
	return nil, patternErr("%s: %s is not a valid match value", at, jsonText(e))
}

func compileOperator(op string, arg any, at string) (matcher, error) {
	switch op {
	case "exists":
		b, ok := arg.(bool)
		if !ok {
			return nil, patternErr("%s: exists takes true or false", at)
		}
		return existsMatcher(b), nil
	case "prefix", "suffix", "equals-ignore-case", "wildcard":
		f, err := stringTest(op, arg, at)
		if err != nil {
			return nil, err
		}
		return scalarMatcher(func(v any) bool { s, ok := v.(string); return ok && f(s) }), nil
	case "anything-but":
		return compileAnythingBut(arg, at)
	case "numeric":
		return compileNumeric(arg, at)
	case "cidr":
		return nil, patternErr("%s: cidr matching is not supported by the local event bus", at)
	}
	return nil, patternErr("%s: unrecognized match type %s", at, op)
}

// stringTest compiles prefix, suffix, equals-ignore-case and wildcard; prefix
// and suffix also take {"equals-ignore-case": s}.
func stringTest(op string, arg any, at string) (func(string) bool, error) {
	ci := false
	if m, ok := arg.(map[string]any); ok && (op == "prefix" || op == "suffix") && len(m) == 1 {
		if v, ok := m["equals-ignore-case"]; ok {
			ci, arg = true, v
		}
	}
	s, ok := arg.(string)
	if !ok {
		return nil, patternErr("%s: %s takes a string", at, op)
	}
	fold := func(x string) string { return x }
	if ci {
		fold = strings.ToLower
		s = strings.ToLower(s)
	}
	switch op {
	case "prefix":
		return func(v string) bool { return strings.HasPrefix(fold(v), s) }, nil
	case "suffix":
		return func(v string) bool { return strings.HasSuffix(fold(v), s) }, nil
	case "equals-ignore-case":
		return func(v string) bool { return strings.EqualFold(v, s) }, nil
	default: // wildcard
		if strings.Contains(s, "**") {
			return nil, patternErr("%s: consecutive wildcard characters are not allowed", at)
		}
		return func(v string) bool { return wildcard(s, v) }, nil
	}
}

func compileAnythingBut(arg any, at string) (matcher, error) {
	var excluded func(v any) bool
	switch x := arg.(type) {
	case string, float64, bool:
		excluded = func(v any) bool { return equal(x, v) }
	case []any:
		if len(x) == 0 {
			return nil, patternErr("%s: anything-but needs at least one value", at)
		}
		for _, e := range x {
			switch e.(type) {
			case string, float64:
			default:
				return nil, patternErr("%s: anything-but lists hold strings or numbers", at)
			}
		}
		excluded = func(v any) bool { return slices.ContainsFunc(x, func(e any) bool { return equal(e, v) }) }
	case map[string]any:
		if len(x) != 1 {
			return nil, patternErr("%s: anything-but takes one of prefix, suffix, equals-ignore-case, wildcard", at)
		}
		for op, a := range x {
			switch op {
			case "prefix", "suffix", "equals-ignore-case", "wildcard":
			default:
				return nil, patternErr("%s: anything-but does not take %s", at, op)
			}
			f, err := stringTest(op, a, at)
			if err != nil {
				return nil, err
			}
			// Only strings are tested; other values are not excluded.
			excluded = func(v any) bool { s, ok := v.(string); return ok && f(s) }
		}
	default:
		return nil, patternErr("%s: anything-but takes a value, a list or an operator", at)
	}
	return scalarMatcher(func(v any) bool { return !excluded(v) }), nil
}

func compileNumeric(arg any, at string) (matcher, error) {
	list, ok := arg.([]any)
	if !ok || len(list) == 0 || len(list)%2 != 0 || len(list) > 4 {
		return nil, patternErr("%s: numeric takes [op, number] or [op, number, op, number]", at)
	}
	type cond struct {
		op string
		n  float64
	}
	var conds []cond
	for i := 0; i < len(list); i += 2 {
		op, ok1 := list[i].(string)
		n, ok2 := list[i+1].(float64)
		if !ok1 || !ok2 {
			return nil, patternErr("%s: numeric takes [op, number] or [op, number, op, number]", at)
		}
		switch op {
		case "<", "<=", "=", ">", ">=":
		default:
			return nil, patternErr("%s: unrecognized numeric operator %s", at, op)
		}
		conds = append(conds, cond{op, n})
	}
	return scalarMatcher(func(v any) bool {
		x, ok := v.(float64)
		if !ok {
			return false
		}
		for _, c := range conds {
			var r bool
			switch c.op {
			case "<":
				r = x < c.n
			case "<=":
				r = x <= c.n
			case "=":
				r = x == c.n
			case ">":
				r = x > c.n
			case ">=":
				r = x >= c.n
			}
			if !r {
				return false
			}
		}
		return true
	}), nil
}

// equal compares a pattern value with an event value: numbers by value,
// everything else exactly (the string "5" is not the number 5).
func equal(p, v any) bool {
	switch x := p.(type) {
	case float64:
		y, ok := v.(float64)
		return ok && x == y
	case nil:
		return v == nil
	}
	return p == v
}

// wildcard matches * against any run of characters; \* is a literal star.
func wildcard(p, s string) bool {
	if p == "" {
		return s == ""
	}
	switch {
	case strings.HasPrefix(p, `\*`):
		return strings.HasPrefix(s, "*") && wildcard(p[2:], s[1:])
	case p[0] == '*':
		for i := 0; i <= len(s); i++ {
			if wildcard(p[1:], s[i:]) {
				return true
			}
		}
		return false
	}
	return s != "" && p[0] == s[0] && wildcard(p[1:], s[1:])
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
