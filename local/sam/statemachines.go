package sam

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
)

// StateMachine is an AWS::Serverless::StateMachine of the template.
type StateMachine struct {
	LogicalID string
	// DefinitionPath is the definition file, relative to the root.
	DefinitionPath string
	// Definition is the file's text, placeholders unresolved.
	Definition []byte
	// Substitutions are DefinitionSubstitutions, references as markers.
	Substitutions map[string]string
	Type          string
	Policies      Policies
}

// placeholder matches ${Name} in a definition.
var placeholder = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)\}`)

// Placeholders lists the ${...} names the definition uses, sorted.
func (m StateMachine) Placeholders() []string {
	var out []string
	for _, g := range placeholder.FindAllSubmatch(m.Definition, -1) {
		if n := string(g[1]); !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// StateMachines returns the template's state machines with their definitions.
func (t *Template) StateMachines() ([]StateMachine, error) {
	var out []StateMachine
	for id, sm := range t.CF.GetAllServerlessStateMachineResources() {
		m := StateMachine{LogicalID: id, Substitutions: sm.DefinitionSubstitutions, Type: "STANDARD"}
		if sm.Type != nil {
			m.Type = *sm.Type
		}
		if sm.DefinitionUri == nil || sm.DefinitionUri.String == nil {
			return nil, fmt.Errorf("sam: state machine %s needs DefinitionUri as a path in the repository", id)
		}
		m.DefinitionPath = *sm.DefinitionUri.String
		b, err := os.ReadFile(filepath.Join(t.Root, m.DefinitionPath))
		if err != nil {
			return nil, fmt.Errorf("sam: state machine %s: %w", id, err)
		}
		m.Definition = b
		pol, err := t.policies(id)
		if err != nil {
			return nil, err
		}
		m.Policies = pol
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LogicalID < out[j].LogicalID })
	return out, nil
}
