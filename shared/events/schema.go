package events

import (
	"bytes"
	"embed"
	"fmt"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The catalogue's JSON Schemas (draft 2020-12), one per detail type, in
// schemas/<detail type in kebab case>.json: the contract subscribers write
// their rules and consumers against.
//
//go:embed schemas/*.json
var schemaFS embed.FS

// SchemaFile is the file under schemas/ holding detailType's schema, for
// example "connection-expiring.json".
func SchemaFile(detailType string) string {
	return strings.ToLower(strings.ReplaceAll(detailType, " ", "-")) + ".json"
}

// Schema returns the JSON Schema of detailType.
func Schema(detailType string) ([]byte, error) {
	b, err := schemaFS.ReadFile("schemas/" + SchemaFile(detailType))
	if err != nil {
		return nil, fmt.Errorf("events: no schema for %q", detailType)
	}
	return b, nil
}

var (
	compileOnce sync.Once
	compiled    map[string]*jsonschema.Schema
	compileErr  error
)

func compileSchemas() {
	compiled = map[string]*jsonschema.Schema{}
	for _, dt := range Catalogue {
		b, err := Schema(dt)
		if err != nil {
			compileErr = err
			return
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			compileErr = fmt.Errorf("events: schema %s: %w", SchemaFile(dt), err)
			return
		}
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft2020)
		c.AssertFormat()
		url := "urn:connmgr:events:" + SchemaFile(dt)
		if err := c.AddResource(url, doc); err != nil {
			compileErr = fmt.Errorf("events: schema %s: %w", SchemaFile(dt), err)
			return
		}
		if compiled[dt], err = c.Compile(url); err != nil {
			compileErr = fmt.Errorf("events: schema %s: %w", SchemaFile(dt), err)
			return
		}
	}
}

// Validate checks an event's detail (JSON) against its detail type's
// schema; a detail type outside the catalogue is an error.
func Validate(detailType string, detail []byte) error {
	compileOnce.Do(compileSchemas)
	if compileErr != nil {
		return compileErr
	}
	s, ok := compiled[detailType]
	if !ok {
		return fmt.Errorf("events: %q is not in the catalogue", detailType)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(detail))
	if err != nil {
		return fmt.Errorf("events: %s detail is not JSON: %w", detailType, err)
	}
	if err := s.Validate(inst); err != nil {
		return fmt.Errorf("events: %s detail does not match %s: %w", detailType, SchemaFile(detailType), err)
	}
	return nil
}

// Validate checks the event's detail against its schema.
func (e Event) Validate() error {
	detail, err := e.Marshal()
	if err != nil {
		return err
	}
	return Validate(e.DetailType, []byte(detail))
}
