// Package sam reads template.yaml, the single source of truth for routes,
// functions, environment, the table and its indexes, event rules and IAM
// permissions. The local runtime builds itself from it and the contract
// tests check the code against it, so local and deployed cannot diverge.
package sam

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/awslabs/goformation/v7"
	"github.com/awslabs/goformation/v7/cloudformation"
	cfdynamodb "github.com/awslabs/goformation/v7/cloudformation/dynamodb"
	"github.com/awslabs/goformation/v7/intrinsics"
)

// TemplateFile is the template's name at the repository root.
const TemplateFile = "template.yaml"

// Template is a parsed template.yaml.
type Template struct {
	Root string // repository root
	CF   *cloudformation.Template
	// raw is the same document as generic YAML values, with intrinsic
	// functions turned into the markers Load describes; it serves the parts
	// goformation types awkwardly (IAM policies).
	raw map[string]any
}

// FindRoot walks up from the working directory to the folder holding both
// go.mod and template.yaml.
func FindRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if exists(filepath.Join(dir, "go.mod")) && exists(filepath.Join(dir, TemplateFile)) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("sam: no folder above the working directory holds go.mod and template.yaml")
		}
		dir = parent
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Load parses root/template.yaml. References survive as markers so they stay
// checkable: Ref X → "ref:X", GetAtt X.Y → "getatt:X.Y", Sub s → "sub:s".
func Load(root string) (*Template, error) {
	data, err := os.ReadFile(filepath.Join(root, TemplateFile))
	if err != nil {
		return nil, fmt.Errorf("sam: %w", err)
	}
	return Parse(root, data)
}

// Parse reads a template's text; root is the repository it belongs to.
func Parse(root string, data []byte) (*Template, error) {
	typed, err := forGoformation(data)
	if err != nil {
		return nil, fmt.Errorf("sam: parse %s: %w", TemplateFile, err)
	}
	cf, err := goformation.ParseYAMLWithOptions(typed, &intrinsics.ProcessorOptions{
		IntrinsicHandlerOverrides: map[string]intrinsics.IntrinsicHandler{
			"Ref":        marker("ref:"),
			"Fn::GetAtt": marker("getatt:"),
			"Fn::Sub":    marker("sub:"),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("sam: parse %s: %w", TemplateFile, err)
	}
	raw, err := parseRaw(data)
	if err != nil {
		return nil, fmt.Errorf("sam: parse %s: %w", TemplateFile, err)
	}
	return &Template{Root: root, CF: cf, raw: raw}, nil
}

// LoadFromWorkingDir finds the root and loads its template.
func LoadFromWorkingDir() (*Template, error) {
	root, err := FindRoot()
	if err != nil {
		return nil, err
	}
	return Load(root)
}

func marker(prefix string) intrinsics.IntrinsicHandler {
	return func(name string, input any, template any) any {
		switch v := input.(type) {
		case string:
			return prefix + v
		case []any:
			s := ""
			for i, p := range v {
				if i > 0 {
					s += "."
				}
				s += fmt.Sprint(p)
			}
			return prefix + s
		}
		return prefix + fmt.Sprint(input)
	}
}

// CreateTableInput is the template's one DynamoDB table as a CreateTable
// request named tableName.
func (t *Template) CreateTableInput(tableName string) (*dynamodb.CreateTableInput, error) {
	tables := t.CF.GetAllDynamoDBTableResources()
	if len(tables) != 1 {
		return nil, fmt.Errorf("sam: template has %d DynamoDB tables, want 1", len(tables))
	}
	var in *dynamodb.CreateTableInput
	for _, tb := range tables {
		in = &dynamodb.CreateTableInput{TableName: aws.String(tableName), BillingMode: ddbtypes.BillingModePayPerRequest}
		for _, a := range tb.AttributeDefinitions {
			in.AttributeDefinitions = append(in.AttributeDefinitions, ddbtypes.AttributeDefinition{
				AttributeName: aws.String(a.AttributeName), AttributeType: ddbtypes.ScalarAttributeType(a.AttributeType),
			})
		}
		in.KeySchema = keySchema(tb.KeySchema)
		for _, g := range tb.GlobalSecondaryIndexes {
			p := ddbtypes.Projection{ProjectionType: ddbtypes.ProjectionType(aws.ToString(g.Projection.ProjectionType))}
			p.NonKeyAttributes = g.Projection.NonKeyAttributes
			in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, ddbtypes.GlobalSecondaryIndex{
				IndexName: aws.String(g.IndexName), KeySchema: keySchema(g.KeySchema), Projection: &p,
			})
		}
	}
	return in, nil
}

func keySchema(ks []cfdynamodb.Table_KeySchema) []ddbtypes.KeySchemaElement {
	out := make([]ddbtypes.KeySchemaElement, len(ks))
	for i, k := range ks {
		out[i] = ddbtypes.KeySchemaElement{AttributeName: aws.String(k.AttributeName), KeyType: ddbtypes.KeyType(k.KeyType)}
	}
	return out
}
