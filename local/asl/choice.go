package asl

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// rule is one Choice rule: a comparison of Variable, or And/Or/Not.
type rule struct {
	variable  refPath
	op        string // the comparison operator, without a "Path" suffix
	want      any    // the static comparison value
	wantPath  *refPath
	match     *regexp.Regexp
	and, or   []*rule
	not       *rule
	next      string
	operField string // the operator as written, for errors
}

type opFamily int

const (
	famString opFamily = iota + 1
	famNumeric
	famBoolean
	famType
	famMatch
)

// choiceOps are the supported comparison operators; each except StringMatches
// and the type tests also has a "...Path" form comparing with another path.
var choiceOps = map[string]opFamily{
	"StringEquals":             famString,
	"StringLessThan":           famString,
	"StringGreaterThan":        famString,
	"StringLessThanEquals":     famString,
	"StringGreaterThanEquals":  famString,
	"NumericEquals":            famNumeric,
	"NumericLessThan":          famNumeric,
	"NumericGreaterThan":       famNumeric,
	"NumericLessThanEquals":    famNumeric,
	"NumericGreaterThanEquals": famNumeric,
	"BooleanEquals":            famBoolean,
	"StringMatches":            famMatch,
	"IsPresent":                famType,
	"IsNull":                   famType,
	"IsString":                 famType,
	"IsNumeric":                famType,
	"IsBoolean":                famType,
}

func isTimestampOp(k string) bool {
	return strings.HasPrefix(k, "Timestamp") || k == "IsTimestamp"
}

func parseRule(m map[string]any, top bool, where string) (*rule, error) {
	keys := sortedKeys(m)
	r := &rule{}
	var ops []string
	for _, k := range keys {
		switch k {
		case "Variable", "And", "Or", "Not":
		case "Next":
			if !top {
				return nil, fmt.Errorf("%s: a nested rule cannot have Next", where)
			}
		default:
			base := strings.TrimSuffix(k, "Path")
			if _, ok := choiceOps[k]; ok {
				ops = append(ops, k)
			} else if fam, ok := choiceOps[base]; ok && fam != famType && fam != famMatch {
				ops = append(ops, k)
			} else if isTimestampOp(k) {
				return nil, fmt.Errorf("%s: operator %q is not supported by the local engine", where, k)
			} else {
				return nil, fmt.Errorf("%s: field %q is not supported by the local engine", where, k)
			}
		}
	}
	if top {
		next, ok := m["Next"].(string)
		if !ok || next == "" {
			return nil, fmt.Errorf("%s: a Choice rule needs Next", where)
		}
		r.next = next
	}
	combinators := 0
	for _, k := range []string{"And", "Or", "Not"} {
		if _, ok := m[k]; ok {
			combinators++
		}
	}
	if combinators > 0 {
		if combinators > 1 || len(ops) > 0 || m["Variable"] != nil {
			return nil, fmt.Errorf("%s: a rule is either And, Or, Not or one comparison of Variable", where)
		}
		if v, ok := m["Not"]; ok {
			sub, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s: Not must be an object", where)
			}
			nr, err := parseRule(sub, false, where+".Not")
			if err != nil {
				return nil, err
			}
			r.not = nr
			return r, nil
		}
		name := "And"
		if _, ok := m["Or"]; ok {
			name = "Or"
		}
		list, ok := m[name].([]any)
		if !ok || len(list) == 0 {
			return nil, fmt.Errorf("%s: %s must be a non-empty array of rules", where, name)
		}
		var subs []*rule
		for i, item := range list {
			sub, ok := item.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s.%s[%d]: must be an object", where, name, i)
			}
			sr, err := parseRule(sub, false, fmt.Sprintf("%s.%s[%d]", where, name, i))
			if err != nil {
				return nil, err
			}
			subs = append(subs, sr)
		}
		if name == "And" {
			r.and = subs
		} else {
			r.or = subs
		}
		return r, nil
	}
	vs, ok := m["Variable"].(string)
	if !ok {
		return nil, fmt.Errorf("%s: a comparison needs Variable", where)
	}
	p, err := parseRefPath(vs)
	if err != nil {
		return nil, fmt.Errorf("%s: Variable: %w", where, err)
	}
	r.variable = p
	if len(ops) != 1 {
		return nil, fmt.Errorf("%s: a comparison needs exactly one operator, found %d", where, len(ops))
	}
	op := ops[0]
	r.operField = op
	val := m[op]
	if fam, ok := choiceOps[op]; ok {
		r.op = op
		switch fam {
		case famString:
			if _, ok := val.(string); !ok {
				return nil, fmt.Errorf("%s: %s needs a string", where, op)
			}
		case famNumeric:
			if _, ok := val.(json.Number); !ok {
				return nil, fmt.Errorf("%s: %s needs a number", where, op)
			}
		case famBoolean, famType:
			if _, ok := val.(bool); !ok {
				return nil, fmt.Errorf("%s: %s needs true or false", where, op)
			}
		case famMatch:
			s, ok := val.(string)
			if !ok {
				return nil, fmt.Errorf("%s: %s needs a string", where, op)
			}
			r.match = wildcardRegexp(s)
		}
		r.want = val
		return r, nil
	}
	r.op = strings.TrimSuffix(op, "Path")
	s, ok := val.(string)
	if !ok {
		return nil, fmt.Errorf("%s: %s needs a path", where, op)
	}
	wp, err := parseRefPath(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", where, op, err)
	}
	r.wantPath = &wp
	return r, nil
}

// wildcardRegexp compiles a StringMatches pattern: * matches any run of
// characters, \* a literal star and \\ a literal backslash.
func wildcardRegexp(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`(?s)^`)
	rs := []rune(pattern)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case c == '\\' && i+1 < len(rs) && (rs[i+1] == '*' || rs[i+1] == '\\'):
			b.WriteString(regexp.QuoteMeta(string(rs[i+1])))
			i++
		case c == '*':
			b.WriteString(`.*`)
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString(`$`)
	return regexp.MustCompile(b.String())
}

func lookupPath(p refPath, input, ctxObj any) (any, bool) {
	if p.context {
		return p.lookup(ctxObj)
	}
	return p.lookup(input)
}

func (r *rule) eval(input, ctxObj any) (bool, error) {
	switch {
	case r.not != nil:
		ok, err := r.not.eval(input, ctxObj)
		return !ok, err
	case r.and != nil:
		for _, sub := range r.and {
			if ok, err := sub.eval(input, ctxObj); err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	case r.or != nil:
		for _, sub := range r.or {
			if ok, err := sub.eval(input, ctxObj); err != nil || ok {
				return ok, err
			}
		}
		return false, nil
	}
	v, present := lookupPath(r.variable, input, ctxObj)
	if r.op == "IsPresent" {
		return present == r.want.(bool), nil
	}
	if !present {
		return false, runtimeError("Invalid path '%s': The choice state's condition path references an invalid value.", r.variable)
	}
	want := r.want
	if r.wantPath != nil {
		w, ok := lookupPath(*r.wantPath, input, ctxObj)
		if !ok {
			return false, runtimeError("Invalid path '%s': The choice state's condition path references an invalid value.", *r.wantPath)
		}
		want = w
	}
	switch choiceOps[r.op] {
	case famType:
		var is bool
		switch r.op {
		case "IsNull":
			is = v == nil
		case "IsString":
			_, is = v.(string)
		case "IsNumeric":
			_, is = v.(json.Number)
		case "IsBoolean":
			_, is = v.(bool)
		}
		return is == want.(bool), nil
	case famMatch:
		s, ok := v.(string)
		return ok && r.match.MatchString(s), nil
	case famBoolean:
		a, ok1 := v.(bool)
		b, ok2 := want.(bool)
		return ok1 && ok2 && a == b, nil
	case famString:
		a, ok1 := v.(string)
		b, ok2 := want.(string)
		if !ok1 || !ok2 {
			return false, nil
		}
		return compare(strings.Compare(a, b), r.op), nil
	case famNumeric:
		a, ok1 := number(v)
		b, ok2 := number(want)
		if !ok1 || !ok2 {
			return false, nil
		}
		c := 0
		if a < b {
			c = -1
		} else if a > b {
			c = 1
		}
		return compare(c, r.op), nil
	}
	return false, fmt.Errorf("asl: unhandled operator %s", r.op)
}

func number(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil
}

func compare(c int, op string) bool {
	switch {
	case strings.HasSuffix(op, "LessThanEquals"):
		return c <= 0
	case strings.HasSuffix(op, "GreaterThanEquals"):
		return c >= 0
	case strings.HasSuffix(op, "LessThan"):
		return c < 0
	case strings.HasSuffix(op, "GreaterThan"):
		return c > 0
	}
	return c == 0
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
