package sam

import (
	"bytes"

	"gopkg.in/yaml.v3"
)

// numberFields are properties goformation types as numbers that the
// template sets from a parameter (the HTTP API's stage throttling). A
// Ref there would reach goformation as a marker string it cannot decode.
var numberFields = map[string]bool{"ThrottlingRateLimit": true, "ThrottlingBurstLimit": true}

// forGoformation returns the template with each `!Ref P` of a numberFields
// property replaced by P's Default, for the typed parse only: the raw
// parse (Template.Raw, ParameterRef) keeps the reference, so contract
// tests still see which parameter sets it, and the local gateway reads
// the value a deployment with the defaults gets.
func forGoformation(data []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 {
		return data, err
	}
	defaults := map[string]*yaml.Node{}
	root := doc.Content[0]
	if params := mappingValue(root, "Parameters"); params != nil {
		for i := 0; i+1 < len(params.Content); i += 2 {
			if d := mappingValue(params.Content[i+1], "Default"); d != nil {
				defaults[params.Content[i].Value] = d
			}
		}
	}
	changed := false
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if numberFields[k.Value] && v.Kind == yaml.ScalarNode && v.Tag == "!Ref" && defaults[v.Value] != nil {
					n.Content[i+1] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: defaults[v.Value].Value}
					if k.Value == "ThrottlingBurstLimit" {
						n.Content[i+1].Tag = "!!int"
					}
					changed = true
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(root)
	if !changed {
		return data, nil
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), enc.Close()
}

func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
