// Package schemas holds the JSON Schema (draft 2020-12) of each detail type
// of the event catalogue, one file per type named after it, and checks
// details against them: the contract subscribers write their rules and
// consumers against. Tests hold every builder's output and every event the
// end-to-end scenarios put on the local bus to it.
//
// No function imports it: the schemas are the subscribers' contract, not
// something the publisher checks at run time, and the validator
// (github.com/santhosh-tekuri/jsonschema with golang.org/x/text's message
// tables) would be about 0.7 MB of each bootstrap.
package schemas

import (
	"bytes"
	"embed"
	"fmt"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/connmgr/connmgr/shared/events"
)

//go:embed *.json
var files embed.FS

// File is the file holding detailType's schema, for example
// "connection-expiring.json".
func File(detailType string) string {
	return strings.ToLower(strings.ReplaceAll(detailType, " ", "-")) + ".json"
}

// Schema returns the JSON Schema of detailType.
func Schema(detailType string) ([]byte, error) {
	b, err := files.ReadFile(File(detailType))
	if err != nil {
		return nil, fmt.Errorf("schemas: no schema for %q", detailType)
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
	for _, dt := range events.Catalogue {
		b, err := Schema(dt)
		if err != nil {
			compileErr = err
			return
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			compileErr = fmt.Errorf("schemas: %s: %w", File(dt), err)
			return
		}
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft2020)
		c.AssertFormat()
		url := "urn:connmgr:events:" + File(dt)
		if err := c.AddResource(url, doc); err != nil {
			compileErr = fmt.Errorf("schemas: %s: %w", File(dt), err)
			return
		}
		if compiled[dt], err = c.Compile(url); err != nil {
			compileErr = fmt.Errorf("schemas: %s: %w", File(dt), err)
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
		return fmt.Errorf("schemas: %q is not in the catalogue", detailType)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(detail))
	if err != nil {
		return fmt.Errorf("schemas: %s detail is not JSON: %w", detailType, err)
	}
	if err := s.Validate(inst); err != nil {
		return fmt.Errorf("schemas: %s detail does not match %s: %w", detailType, File(detailType), err)
	}
	return nil
}

// ValidateEvent checks the event's detail against its schema.
func ValidateEvent(e events.Event) error {
	detail, err := e.Marshal()
	if err != nil {
		return err
	}
	return Validate(e.DetailType, []byte(detail))
}
