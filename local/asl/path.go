package asl

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// pathStep is one step of a reference path: a field name or an array index.
type pathStep struct {
	key   string
	index int // -1 when the step is a field
}

// refPath is a JsonPath reference path: `$`, `$.a.b`, `$.a[0]`, `$['a b']`,
// or the same rooted at the context object (`$$.Task.Token`).
type refPath struct {
	text    string
	context bool
	steps   []pathStep
}

func (p refPath) String() string {
	if p.text == "" {
		return "$"
	}
	return p.text
}

// parseRefPath accepts reference paths only; wildcards, filters, slices,
// unions and recursive descent are refused by name.
func parseRefPath(s string) (refPath, error) {
	if !strings.HasPrefix(s, "$") {
		return refPath{}, fmt.Errorf("path %q must begin with $", s)
	}
	p := refPath{text: s}
	i := 1
	if strings.HasPrefix(s, "$$") {
		p.context = true
		i = 2
	}
	unsupported := func(what string) error {
		return fmt.Errorf("path %q: %s is not supported by the local engine (reference paths only)", s, what)
	}
	for i < len(s) {
		switch s[i] {
		case '.':
			if i+1 < len(s) && s[i+1] == '.' {
				return refPath{}, unsupported("recursive descent '..'")
			}
			j := i + 1
			for j < len(s) && s[j] != '.' && s[j] != '[' {
				j++
			}
			name := s[i+1 : j]
			switch {
			case name == "":
				return refPath{}, fmt.Errorf("path %q: empty field name", s)
			case name == "*":
				return refPath{}, unsupported("wildcard '*'")
			case strings.ContainsAny(name, "*?@()'\"\\ ,:"):
				return refPath{}, unsupported(fmt.Sprintf("field name %q", name))
			}
			p.steps = append(p.steps, pathStep{key: name, index: -1})
			i = j
		case '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				return refPath{}, fmt.Errorf("path %q: unclosed '['", s)
			}
			inner := s[i+1 : i+j]
			switch {
			case len(inner) >= 2 && (inner[0] == '\'' && inner[len(inner)-1] == '\'' ||
				inner[0] == '"' && inner[len(inner)-1] == '"'):
				p.steps = append(p.steps, pathStep{key: inner[1 : len(inner)-1], index: -1})
			case inner == "*":
				return refPath{}, unsupported("wildcard '[*]'")
			case strings.HasPrefix(inner, "?"):
				return refPath{}, unsupported("filter expression")
			case strings.ContainsAny(inner, ":,"):
				return refPath{}, unsupported("slice or union '[" + inner + "]'")
			default:
				n, err := strconv.Atoi(inner)
				if err != nil || n < 0 || inner != strconv.Itoa(n) {
					return refPath{}, unsupported("index '[" + inner + "]'")
				}
				p.steps = append(p.steps, pathStep{index: n})
			}
			i += j + 1
		default:
			return refPath{}, fmt.Errorf("path %q: unexpected %q at offset %d", s, s[i], i)
		}
	}
	return p, nil
}

// lookup follows the path from v; ok is false when nothing matches.
func (p refPath) lookup(v any) (any, bool) {
	for _, st := range p.steps {
		if st.index < 0 {
			m, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			if v, ok = m[st.key]; !ok {
				return nil, false
			}
			continue
		}
		a, ok := v.([]any)
		if !ok || st.index >= len(a) {
			return nil, false
		}
		v = a[st.index]
	}
	return v, true
}

// inputPath is InputPath or OutputPath: a path, or null (the value {}).
// The zero value is "$".
type inputPath struct {
	null bool
	path refPath
}

func (ip inputPath) apply(v any, field string) (any, error) {
	if ip.null {
		return map[string]any{}, nil
	}
	out, ok := ip.path.lookup(v)
	if !ok {
		return nil, runtimeError("Invalid path '%s' in %s: no value matches the path", ip.path, field)
	}
	return out, nil
}

// resultPath is ResultPath: where the result goes in the state's input, or
// null (discard the result). The zero value is "$".
type resultPath struct {
	null bool
	path refPath
}

// apply returns input with result placed at the path. Values are treated as
// immutable: the maps along the path are copied, never changed.
func (rp resultPath) apply(input, result any) (any, error) {
	if rp.null {
		return input, nil
	}
	out, err := setAt(input, rp.path.steps, result)
	if err != nil {
		return nil, runtimeError("Unable to apply ResultPath '%s' to the state's input: %v", rp.path, err)
	}
	return out, nil
}

func setAt(root any, steps []pathStep, val any) (any, error) {
	if len(steps) == 0 {
		return val, nil
	}
	m, ok := root.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the value at field %q is not an object", steps[0].key)
	}
	cp := make(map[string]any, len(m)+1)
	for k, v := range m {
		cp[k] = v
	}
	child, exists := cp[steps[0].key]
	if !exists {
		child = map[string]any{}
	}
	v, err := setAt(child, steps[1:], val)
	if err != nil {
		return nil, err
	}
	cp[steps[0].key] = v
	return cp, nil
}

func parseInputPath(raw any, field string) (inputPath, error) {
	if raw == nil {
		return inputPath{null: true}, nil
	}
	s, ok := raw.(string)
	if !ok {
		return inputPath{}, fmt.Errorf("field %q must be a string or null", field)
	}
	p, err := parseRefPath(s)
	if err != nil {
		return inputPath{}, fmt.Errorf("field %q: %w", field, err)
	}
	if p.context {
		return inputPath{}, fmt.Errorf("field %q: context object paths ($$) are not supported by the local engine here", field)
	}
	return inputPath{path: p}, nil
}

func parseResultPath(raw any, field string) (resultPath, error) {
	if raw == nil {
		return resultPath{null: true}, nil
	}
	s, ok := raw.(string)
	if !ok {
		return resultPath{}, fmt.Errorf("field %q must be a string or null", field)
	}
	p, err := parseRefPath(s)
	if err != nil {
		return resultPath{}, fmt.Errorf("field %q: %w", field, err)
	}
	if p.context {
		return resultPath{}, fmt.Errorf("field %q: a ResultPath cannot point into the context object", field)
	}
	for _, st := range p.steps {
		if st.index >= 0 {
			return resultPath{}, fmt.Errorf("field %q: an array index in a ResultPath is not supported by the local engine", field)
		}
	}
	return resultPath{path: p}, nil
}

// template is a compiled Parameters or ResultSelector value: fields whose
// name ends in ".$" take the value at a path; everything else is static.
type template struct {
	static any
	isPath bool
	path   refPath
	field  string // the ".$" field name, for errors
	fields []templateField
	items  []*template
	kind   int
}

type templateField struct {
	name string
	val  *template
}

const (
	tmplStatic = iota
	tmplPath
	tmplObject
	tmplArray
)

// compileTemplate checks every ".$" field at load time.
func compileTemplate(v any, where string) (*template, error) {
	switch v := v.(type) {
	case map[string]any:
		t := &template{kind: tmplObject}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		seen := map[string]bool{}
		for _, k := range keys {
			name := k
			var val *template
			if strings.HasSuffix(k, ".$") {
				name = strings.TrimSuffix(k, ".$")
				if name == "" {
					return nil, fmt.Errorf("%s: field %q has no name", where, k)
				}
				s, ok := v[k].(string)
				if !ok {
					return nil, fmt.Errorf("%s: field %q must be a string path", where, k)
				}
				if strings.HasPrefix(s, "States.") {
					fn := s
					if i := strings.IndexByte(fn, '('); i >= 0 {
						fn = fn[:i]
					}
					return nil, fmt.Errorf("%s: field %q: intrinsic function %s is not supported by the local engine", where, k, fn)
				}
				p, err := parseRefPath(s)
				if err != nil {
					return nil, fmt.Errorf("%s: field %q: %w", where, k, err)
				}
				val = &template{kind: tmplPath, path: p, field: k}
			} else {
				var err error
				if val, err = compileTemplate(v[k], where); err != nil {
					return nil, err
				}
			}
			if seen[name] {
				return nil, fmt.Errorf("%s: field %q is given both as a value and as a path", where, name)
			}
			seen[name] = true
			t.fields = append(t.fields, templateField{name: name, val: val})
		}
		return t, nil
	case []any:
		t := &template{kind: tmplArray}
		for _, item := range v {
			it, err := compileTemplate(item, where)
			if err != nil {
				return nil, err
			}
			t.items = append(t.items, it)
		}
		return t, nil
	default:
		return &template{kind: tmplStatic, static: v}, nil
	}
}

// paths lists every path the template reads.
func (t *template) paths() []refPath {
	if t == nil {
		return nil
	}
	switch t.kind {
	case tmplPath:
		return []refPath{t.path}
	case tmplObject:
		var out []refPath
		for _, f := range t.fields {
			out = append(out, f.val.paths()...)
		}
		return out
	case tmplArray:
		var out []refPath
		for _, it := range t.items {
			out = append(out, it.paths()...)
		}
		return out
	}
	return nil
}

// fieldNamed returns the template of a top-level field, by its name without ".$".
func (t *template) fieldNamed(name string) *template {
	for _, f := range t.fields {
		if f.name == name {
			return f.val
		}
	}
	return nil
}

func (t *template) eval(input, ctxObj any) (any, error) {
	switch t.kind {
	case tmplPath:
		src, what := input, "input"
		if t.path.context {
			src, what = ctxObj, "context object"
		}
		v, ok := t.path.lookup(src)
		if !ok {
			return nil, runtimeError("The JSONPath '%s' specified for the field '%s' could not be found in the %s", t.path, t.field, what)
		}
		return v, nil
	case tmplObject:
		out := make(map[string]any, len(t.fields))
		for _, f := range t.fields {
			v, err := f.val.eval(input, ctxObj)
			if err != nil {
				return nil, err
			}
			out[f.name] = v
		}
		return out, nil
	case tmplArray:
		out := make([]any, len(t.items))
		for i, it := range t.items {
			v, err := it.eval(input, ctxObj)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	}
	return t.static, nil
}
