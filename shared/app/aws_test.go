package app

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// The AWS configuration comes from what Lambda sets, nothing else.
func TestAWSFromEnv(t *testing.T) {
	lambdaEnv := map[string]string{"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "SECRET", "AWS_SESSION_TOKEN": "TOKEN"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range lambdaEnv {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name     string
		env      map[string]string
		region   string
		endpoint string
		err      string
	}{
		{name: "lambda", env: lambdaEnv, region: "eu-west-1"},
		{name: "default region", env: with("AWS_REGION", "", "AWS_DEFAULT_REGION", "us-east-2"), region: "us-east-2"},
		{name: "no region", env: with("AWS_REGION", ""), err: "AWS_REGION"},
		{name: "no credentials", env: with("AWS_SECRET_ACCESS_KEY", ""), err: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"},
		{name: "LocalStack", env: with("AWS_ENDPOINT_URL", "http://localhost:4566"), region: "eu-west-1", endpoint: "http://localhost:4566"},
		{name: "endpoints ignored", env: with("AWS_ENDPOINT_URL", "http://localhost:4566", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"), region: "eu-west-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := awsFromEnv(envOf(tc.env))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one naming %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Region != tc.region || aws.ToString(cfg.BaseEndpoint) != tc.endpoint {
				t.Errorf("region %q endpoint %q, want %q %q", cfg.Region, aws.ToString(cfg.BaseEndpoint), tc.region, tc.endpoint)
			}
			creds, err := cfg.Credentials.Retrieve(context.Background())
			if err != nil || creds.AccessKeyID != "AKID" || creds.SecretAccessKey != "SECRET" || creds.SessionToken != "TOKEN" {
				t.Errorf("credentials %+v, %v", creds, err)
			}
		})
	}
}

// A service's endpoint: ours, else the SDK's service variable, else the
// SDK's global one.
func TestEndpoints(t *testing.T) {
	env := map[string]string{EnvLogLevel: "INFO", EnvResolveFunction: "ResolveFunction",
		EnvLambdaEndpoint: "http://127.0.0.1:1", "AWS_ENDPOINT_URL_LAMBDA": "http://127.0.0.1:2", "AWS_ENDPOINT_URL_KMS": "http://127.0.0.1:3"}
	cfg, err := LoadConfig(FnOAuthCallback, envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(context.Background(), cfg, Options{AWS: &aws.Config{Region: "us-east-1", BaseEndpoint: aws.String("http://127.0.0.1:4")}})
	if err != nil {
		t.Fatal(err)
	}
	for s, want := range map[Service]string{Lambda: "http://127.0.0.1:1", KMS: "http://127.0.0.1:3", DynamoDB: "http://127.0.0.1:4"} {
		if got := a.Endpoint(s); got != want {
			t.Errorf("Endpoint(%s) = %q, want %q", s, got, want)
		}
	}
}

// Client builds one client per service, at its endpoint, with the tests'
// options of its type only.
func TestClient(t *testing.T) {
	var ddbOpts, kmsOpts int
	a, err := New(context.Background(), Config{Function: FnConnections, DynamoDBEndpoint: "http://127.0.0.1:5"},
		Options{AWS: &aws.Config{Region: "us-east-1"}, ClientOptions: []any{
			func(*dynamodb.Options) { ddbOpts++ },
			func(*kms.Options) { kmsOpts++ },
		}})
	if err != nil {
		t.Fatal(err)
	}
	c := Client(a, DynamoDB, dynamodb.NewFromConfig)
	if Client(a, DynamoDB, dynamodb.NewFromConfig) != c {
		t.Error("a second Client(DynamoDB) built another client")
	}
	if got := aws.ToString(c.Options().BaseEndpoint); got != "http://127.0.0.1:5" {
		t.Errorf("DynamoDB endpoint %q", got)
	}
	if ddbOpts == 0 || kmsOpts != 0 {
		t.Errorf("option functions run: dynamodb %d, kms %d", ddbOpts, kmsOpts)
	}
	if got := Client(a, KMS, kms.NewFromConfig).Options().BaseEndpoint; got != nil {
		t.Errorf("KMS endpoint %q, want the AWS one", *got)
	}
}
