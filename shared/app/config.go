// Package app is the one wiring point: configuration read once per cold
// start, AWS clients, and the services each function serves. Every main, the
// local runtime and the tests build the application here, so production and
// local differ only in endpoints.
package app

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
)

// Function names are the folders under functions/.
const (
	FnConnections = "connections"
)

// Environment variables.
const (
	EnvLogLevel  = "LOG_LEVEL"
	EnvTableName = "TABLE_NAME"
	EnvKMSKeyID  = "KMS_KEY_ID"
	// Optional endpoint overrides for LocalStack or emulators; absent in AWS.
	EnvDynamoDBEndpoint = "DYNAMODB_ENDPOINT"
	EnvKMSEndpoint      = "KMS_ENDPOINT"
)

// functionEnv is what each function requires; template.yaml must set exactly
// these (the template contract test reads this through LoadConfig).
var functionEnv = map[string][]string{
	FnConnections: {EnvLogLevel, EnvTableName, EnvKMSKeyID},
}

// OptionalEnv is read by every function when present and never set by the template.
var OptionalEnv = []string{EnvDynamoDBEndpoint, EnvKMSEndpoint}

// Functions lists every function, sorted.
func Functions() []string {
	var out []string
	for f := range functionEnv {
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

// Config is everything a function reads from its environment.
type Config struct {
	Function         string
	LogLevel         slog.Level
	TableName        string
	KMSKeyID         string
	DynamoDBEndpoint string
	KMSEndpoint      string
}

// LoadConfig reads function's configuration through getenv (os.Getenv in
// Lambda) and reports every missing or malformed variable at once.
func LoadConfig(function string, getenv func(string) string) (Config, error) {
	required, ok := functionEnv[function]
	if !ok {
		return Config{}, fmt.Errorf("app: unknown function %q", function)
	}
	cfg := Config{Function: function}
	var problems []string
	for _, name := range required {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			problems = append(problems, name+" is not set")
			continue
		}
		switch name {
		case EnvLogLevel:
			if err := cfg.LogLevel.UnmarshalText([]byte(v)); err != nil {
				problems = append(problems, name+" must be DEBUG, INFO, WARN or ERROR")
			}
		case EnvTableName:
			cfg.TableName = v
		case EnvKMSKeyID:
			cfg.KMSKeyID = v
		}
	}
	cfg.DynamoDBEndpoint = strings.TrimSpace(getenv(EnvDynamoDBEndpoint))
	cfg.KMSEndpoint = strings.TrimSpace(getenv(EnvKMSEndpoint))
	if len(problems) > 0 {
		return Config{}, fmt.Errorf("app: %s configuration: %s", function, strings.Join(problems, "; "))
	}
	return cfg, nil
}
