package sam_test

import (
	"reflect"
	"testing"

	"github.com/connmgr/connmgr/local/sam"
)

func TestLogicalIDAndFolder(t *testing.T) {
	tests := []struct{ folder, id string }{
		{"connections", "ConnectionsFunction"},
		{"oauth-callback", "OauthCallbackFunction"},
		{"run-step", "RunStepFunction"},
		{"suspend-run", "SuspendRunFunction"},
		{"expiry-check", "ExpiryCheckFunction"},
		{"resolve", "ResolveFunction"},
		{"s3-sync", "S3SyncFunction"},
	}
	for _, tt := range tests {
		if got := sam.LogicalID(tt.folder); got != tt.id {
			t.Errorf("LogicalID(%q) = %q, want %q", tt.folder, got, tt.id)
		}
		if got, ok := sam.Folder(tt.id); !ok || got != tt.folder {
			t.Errorf("Folder(%q) = %q, %v; want %q", tt.id, got, ok, tt.folder)
		}
	}
	for _, bad := range []string{"Connections", "Function", "connectionsFunction", "My_Function", "Oauth-CallbackFunction"} {
		if f, ok := sam.Folder(bad); ok {
			t.Errorf("Folder(%q) = %q, want no folder", bad, f)
		}
	}
}

func TestActionMatches(t *testing.T) {
	tests := []struct {
		pattern, action string
		want            bool
	}{
		{"kms:Decrypt", "kms:Decrypt", true},
		{"KMS:decrypt", "kms:Decrypt", true},
		{"kms:*", "kms:Decrypt", true},
		{"kms:Decr*", "kms:Decrypt", true},
		{"kms:De?rypt", "kms:Decrypt", true},
		{"*", "kms:Decrypt", true},
		{"*:Decrypt", "kms:Decrypt", true},
		{"kms:GenerateDataKey", "kms:Decrypt", false},
		{"kms:Decrypt*", "kms:DecryptX", true},
		{"kms:Encrypt", "kms:Decrypt", false},
		{"dynamodb:*", "kms:Decrypt", false},
		{"kms:GenerateDataKey*", "kms:GenerateDataKey", true},
	}
	for _, tt := range tests {
		if got := sam.ActionMatches(tt.pattern, tt.action); got != tt.want {
			t.Errorf("ActionMatches(%q, %q) = %v", tt.pattern, tt.action, got)
		}
	}
	notAction := sam.Statement{Effect: "Allow", NotAction: []string{"kms:Encrypt"}}
	if !notAction.Allows("kms:Decrypt") {
		t.Error("NotAction kms:Encrypt must allow kms:Decrypt")
	}
	deny := sam.Statement{Effect: "Deny", Action: []string{"*"}}
	if deny.Allows("kms:Decrypt") {
		t.Error("a Deny statement allows nothing")
	}
}

const testTemplate = `
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Iss: { Type: String }
  Aud: { Type: String }
Globals:
  Function:
    Runtime: provided.al2023
    Architectures: [arm64]
    Timeout: 7
    Environment:
      Variables:
        LOG_LEVEL: INFO
        SHARED: from-globals
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{ AttributeName: pk, AttributeType: S }]
      KeySchema: [{ AttributeName: pk, KeyType: HASH }]
  Key:
    Type: AWS::KMS::Key
    Properties:
      KeyPolicy: {}
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Jwt
        Authorizers:
          Jwt:
            IdentitySource: $request.header.Authorization
            JwtConfiguration:
              issuer: !Ref Iss
              audience: [!Ref Aud, literal]
  OauthCallbackFunction:
    Type: AWS::Serverless::Function
    Metadata: { BuildMethod: makefile }
    Properties:
      CodeUri: .
      Handler: bootstrap
      Timeout: 3
      Environment:
        Variables:
          SHARED: overridden
          TABLE_NAME: !Ref Table
          KEY_ARN: { "Fn::GetAtt": [Key, Arn] }
      Policies:
        - AWSXRayDaemonWriteAccess
        - DynamoDBReadPolicy: { TableName: !Ref Table }
        - Statement:
            - Effect: Allow
              Action: kms:Decrypt
              Resource: !GetAtt Key.Arn
              Condition:
                StringEquals: { "kms:EncryptionContext:tenant": "t" }
            - Effect: Allow
              Action: [dynamodb:GetItem, dynamodb:Query]
              Resource:
                - !Sub "${Table.Arn}/index/*"
                - Fn::Sub: "${Table.Arn}"
      Events:
        Callback:
          Type: HttpApi
          Properties: { ApiId: !Ref Api, Method: get, Path: /oauth/callback, Auth: { Authorizer: NONE } }
        Start:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Method: POST
            Path: /oauth/start
            Auth: { AuthorizationScopes: [connections.write] }
        Tick:
          Type: Schedule
          Properties: { Schedule: rate(1 hour) }
`

func TestFunctions(t *testing.T) {
	tmpl, err := sam.Parse("/repo", []byte(testTemplate))
	if err != nil {
		t.Fatal(err)
	}
	fns, err := tmpl.Functions()
	if err != nil {
		t.Fatal(err)
	}
	if len(fns) != 1 {
		t.Fatalf("%d functions", len(fns))
	}
	f := fns[0]
	check := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", what, got, want)
		}
	}
	check("Folder", f.Folder, "oauth-callback")
	check("Environment", f.Environment, map[string]string{
		"LOG_LEVEL": "INFO", "SHARED": "overridden", "TABLE_NAME": "ref:Table", "KEY_ARN": "getatt:Key.Arn",
	})
	check("Runtime", f.Runtime, "provided.al2023")
	check("Architectures", f.Architectures, []string{"arm64"})
	check("Handler", f.Handler, "bootstrap")
	check("Timeout", f.Timeout, 3)
	check("BuildMethod", f.BuildMethod, "makefile")
	check("RouteKeys", f.RouteKeys(), []string{"GET /oauth/callback", "POST /oauth/start"})
	check("Routes", f.Routes, []sam.Route{
		{Event: "Callback", API: "ref:Api", Method: "GET", Path: "/oauth/callback", Authorizer: "NONE", Public: true},
		{Event: "Start", API: "ref:Api", Method: "POST", Path: "/oauth/start", Authorizer: "Jwt", Scopes: []string{"connections.write"}},
	})
	check("Managed", f.Policies.Managed, []string{"AWSXRayDaemonWriteAccess"})
	check("Templates", f.Policies.Templates, []string{"DynamoDBReadPolicy"})
	check("Statements", f.Policies.Statements, []sam.Statement{
		{Effect: "Allow", Action: []string{"kms:Decrypt"}, Resource: []string{"getatt:Key.Arn"},
			Condition: map[string]any{"StringEquals": map[string]any{"kms:EncryptionContext:tenant": "t"}}},
		{Effect: "Allow", Action: []string{"dynamodb:GetItem", "dynamodb:Query"}, Resource: []string{"sub:${Table.Arn}/index/*", "sub:${Table.Arn}"}},
	})
	if !f.Policies.Grants("kms:Decrypt") || !f.Policies.Grants("dynamodb:Scan") || f.Policies.Grants("kms:GenerateDataKey") {
		t.Error("Grants disagrees with the statements and templates")
	}

	api, err := tmpl.HTTPAPI()
	if err != nil {
		t.Fatal(err)
	}
	jwt, err := api.DefaultJWTAuthorizer()
	if err != nil {
		t.Fatal(err)
	}
	check("authorizer", jwt, sam.JWTAuthorizer{Name: "Jwt", IdentitySource: "$request.header.Authorization", Issuer: "ref:Iss", Audience: []string{"ref:Aud", "literal"}})
	if p, ok := tmpl.ParameterRef(jwt.Issuer); !ok || p != "Iss" {
		t.Errorf("ParameterRef(%q) = %q, %v", jwt.Issuer, p, ok)
	}
	if _, ok := tmpl.ParameterRef("literal"); ok {
		t.Error("a literal is not a parameter reference")
	}
	if _, ok := tmpl.ParameterRef("ref:Table"); ok {
		t.Error("a resource is not a parameter")
	}
}

func TestPoliciesRejectUncheckable(t *testing.T) {
	const tmpl = `
Transform: AWS::Serverless-2016-10-31
Resources:
  XFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Policies:
        - Statement:
            - Effect: Allow
              Action: !If [IsProd, kms:Decrypt, kms:Encrypt]
              Resource: "*"
`
	parsed, err := sam.Parse("/repo", []byte(tmpl))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parsed.Functions(); err == nil {
		t.Error("an Action computed by !If cannot be checked; Functions must fail")
	}
}
