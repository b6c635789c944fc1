package sam

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Policies are a function's Policies property, by form.
type Policies struct {
	// Statements come from inline policy documents (`- Statement: ...`).
	Statements []Statement
	// Managed are managed policy names or ARNs (`- AWSXRayDaemonWriteAccess`).
	Managed []string
	// Templates are SAM policy templates (`- DynamoDBCrudPolicy: {...}`), by name.
	Templates []string
}

// Statement is one IAM policy statement. Action and Resource are always
// lists; references in Resource are markers ("getatt:Table.Arn").
type Statement struct {
	Sid         string
	Effect      string
	Action      []string
	NotAction   []string
	Resource    []string
	NotResource []string
	Condition   map[string]any
}

// TemplateActions are the actions of the SAM policy templates whose grants
// matter to the contract tests (from SAM's policy_templates.json). A
// template missing here cannot be checked: the contract test rejects it.
var TemplateActions = map[string][]string{
	"DynamoDBCrudPolicy": {"dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:Scan", "dynamodb:Query",
		"dynamodb:UpdateItem", "dynamodb:BatchWriteItem", "dynamodb:BatchGetItem", "dynamodb:DescribeTable", "dynamodb:ConditionCheckItem"},
	"DynamoDBReadPolicy":  {"dynamodb:GetItem", "dynamodb:Scan", "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:DescribeTable"},
	"DynamoDBWritePolicy": {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"},
	"KMSDecryptPolicy":    {"kms:Decrypt"},
	"KMSEncryptPolicy":    {"kms:Encrypt"},
}

// Allows reports whether the statement allows action, honouring IAM's
// case-insensitive * and ? wildcards and NotAction.
func (s Statement) Allows(action string) bool {
	if s.Effect != "Allow" {
		return false
	}
	if len(s.NotAction) > 0 {
		return !slices.ContainsFunc(s.NotAction, func(p string) bool { return ActionMatches(p, action) })
	}
	return slices.ContainsFunc(s.Action, func(p string) bool { return ActionMatches(p, action) })
}

// Grants reports whether the function's inline statements or known SAM
// policy templates allow action (on any resource, under any condition).
func (p Policies) Grants(action string) bool {
	for _, s := range p.Statements {
		if s.Allows(action) {
			return true
		}
	}
	for _, name := range p.Templates {
		if slices.ContainsFunc(TemplateActions[name], func(a string) bool { return strings.EqualFold(a, action) }) {
			return true
		}
	}
	return false
}

// ActionMatches matches an IAM action pattern ("kms:Decr*", "dynamodb:*",
// "*") against an action, case-insensitively.
func ActionMatches(pattern, action string) bool {
	return wildcard(strings.ToLower(pattern), strings.ToLower(action))
}

func wildcard(p, s string) bool {
	for len(p) > 0 {
		switch p[0] {
		case '*':
			for i := len(s); i >= 0; i-- {
				if wildcard(p[1:], s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
		default:
			if s == "" || s[0] != p[0] {
				return false
			}
		}
		p, s = p[1:], s[1:]
	}
	return s == ""
}

// policies reads the Policies of function id from the raw template:
// goformation's typed union drops mixed lists.
func (t *Template) policies(id string) (Policies, error) {
	var out Policies
	raw := path(t.raw, "Resources", id, "Properties", "Policies")
	var items []any
	switch v := raw.(type) {
	case nil:
		return out, nil
	case []any:
		items = v
	default:
		items = []any{v}
	}
	for i, item := range items {
		switch v := item.(type) {
		case string:
			out.Managed = append(out.Managed, v)
		case map[string]any:
			if st, ok := v["Statement"]; ok {
				stmts, err := statements(st)
				if err != nil {
					return Policies{}, fmt.Errorf("sam: %s Policies[%d]: %w", id, i, err)
				}
				out.Statements = append(out.Statements, stmts...)
				continue
			}
			if len(v) != 1 {
				return Policies{}, fmt.Errorf("sam: %s Policies[%d]: neither a policy document nor a SAM policy template", id, i)
			}
			out.Templates = append(out.Templates, slices.Collect(maps.Keys(v))...)
		default:
			return Policies{}, fmt.Errorf("sam: %s Policies[%d]: unexpected %T", id, i, item)
		}
	}
	return out, nil
}

func statements(v any) ([]Statement, error) {
	var list []any
	switch x := v.(type) {
	case []any:
		list = x
	case map[string]any:
		list = []any{x}
	default:
		return nil, fmt.Errorf("Statement must be a list of statements")
	}
	out := make([]Statement, 0, len(list))
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("Statement[%d] is not a mapping", i)
		}
		s := Statement{}
		s.Sid, _ = m["Sid"].(string)
		s.Effect, _ = m["Effect"].(string)
		s.Condition, _ = m["Condition"].(map[string]any)
		var err error
		for _, f := range []struct {
			key string
			dst *[]string
		}{{"Action", &s.Action}, {"NotAction", &s.NotAction}, {"Resource", &s.Resource}, {"NotResource", &s.NotResource}} {
			if *f.dst, err = stringList(m[f.key]); err != nil {
				return nil, fmt.Errorf("Statement[%d] (%s) %s: %w", i, s.Sid, f.key, err)
			}
		}
		if s.Effect != "Allow" && s.Effect != "Deny" {
			return nil, fmt.Errorf("Statement[%d] (%s): Effect must be Allow or Deny", i, s.Sid)
		}
		out = append(out, s)
	}
	return out, nil
}
