package sam

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// Marker prefixes for references, the same Load's goformation overrides use.
const (
	markRef    = "ref:"
	markGetAtt = "getatt:"
	markSub    = "sub:"
)

// RefTarget returns X when v is the marker of `!Ref X`.
func RefTarget(v string) (string, bool) { return strings.CutPrefix(v, markRef) }

// GetAttTarget returns "X.Y" when v is the marker of `!GetAtt X.Y`.
func GetAttTarget(v string) (string, bool) { return strings.CutPrefix(v, markGetAtt) }

// parseRaw decodes the template into generic values: maps, slices, strings
// and scalars. Ref, GetAtt and Sub, in short (!Ref) or long (Ref:) form,
// become the marker strings Load documents; every other intrinsic becomes a
// one-key map {"Fn::Name": argument}, as in the JSON form of a template.
func parseRaw(data []byte) (map[string]any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	v, err := rawValue(&doc)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the template is not a YAML mapping")
	}
	return m, nil
}

func rawValue(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return rawValue(n.Content[0])
	case yaml.AliasNode:
		return rawValue(n.Alias)
	}
	tag := n.Tag
	short := strings.HasPrefix(tag, "!") && !strings.HasPrefix(tag, "!!")
	var v any
	switch n.Kind {
	case yaml.ScalarNode:
		if short {
			v = n.Value
		} else if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
	case yaml.SequenceNode:
		list := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			x, err := rawValue(c)
			if err != nil {
				return nil, err
			}
			list = append(list, x)
		}
		v = list
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			x, err := rawValue(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[k] = x
		}
		v = m
		if len(m) == 1 && !short {
			for k, arg := range m {
				if name, ok := longIntrinsic(k); ok {
					return intrinsic(name, arg), nil
				}
			}
		}
	default:
		return nil, fmt.Errorf("line %d: unexpected YAML node", n.Line)
	}
	if short {
		return intrinsic(strings.TrimPrefix(tag, "!"), v), nil
	}
	return v, nil
}

// longIntrinsic recognises the long form of an intrinsic function's key.
func longIntrinsic(k string) (string, bool) {
	if k == "Ref" || k == "Condition" {
		return k, true
	}
	return strings.CutPrefix(k, "Fn::")
}

// intrinsic renders the function name (without "Fn::") applied to arg.
func intrinsic(name string, arg any) any {
	switch name {
	case "Ref":
		return markRef + fmt.Sprint(arg)
	case "GetAtt":
		if parts, ok := arg.([]any); ok {
			s := make([]string, len(parts))
			for i, p := range parts {
				s[i] = fmt.Sprint(p)
			}
			return markGetAtt + strings.Join(s, ".")
		}
		return markGetAtt + fmt.Sprint(arg)
	case "Sub":
		if parts, ok := arg.([]any); ok && len(parts) > 0 {
			return markSub + fmt.Sprint(parts[0])
		}
		return markSub + fmt.Sprint(arg)
	case "Condition":
		return map[string]any{"Condition": arg}
	}
	return map[string]any{"Fn::" + name: arg}
}

// Raw is the template's value at keys ("Resources", "HttpApi",
// "Properties", ...) as generic YAML values, intrinsic functions as Load
// documents them: Ref, GetAtt and Sub as markers, the others as one-key
// maps {"Fn::If": [...]}. nil when absent.
func (t *Template) Raw(keys ...string) any { return path(t.raw, keys...) }

// path walks nested maps by key.
func path(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// stringList reads a string or a list of strings; a non-string element is
// an error because it cannot be checked.
func stringList(v any) ([]string, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []string{x}, nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("%v is not a string", e)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%v is neither a string nor a list of strings", v)
}
