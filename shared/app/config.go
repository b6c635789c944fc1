// Package app is the one wiring point: configuration read once per cold
// start, AWS clients, and the services each function serves. Every main, the
// local runtime and the tests build the application here, so production and
// local differ only in endpoints.
//
// This package holds what every function shares (Config, App, Main, the
// Client and Shared helpers) and names no AWS service. Each function's
// builder lives in its own package below it (shared/app/runs for the runs
// function, ...; shared/app/table builds the store and outbox most of them
// use), so a function's binary links its own clients and services and no
// others; local/sam tests that with go list. shared/app/functions names
// every builder, for the local runtime and tests; no main imports it.
package app

import (
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/connmgr/connmgr/shared/httpaction"
)

// Function names are the folders under functions/.
const (
	FnConnections   = "connections"
	FnResolve       = "resolve"
	FnOAuthCallback = "oauth-callback"
	FnRuns          = "runs"
	FnRunStep       = "run-step"
	FnSuspendRun    = "suspend-run"
	FnFinishRun     = "finish-run"
	FnResumeRuns    = "resume-runs"
	FnExpiryCheck   = "expiry-check"
	FnWeb           = "web"
)

// Environment variables.
const (
	EnvLogLevel         = "LOG_LEVEL"
	EnvTableName        = "TABLE_NAME"
	EnvKMSKeyID         = "KMS_KEY_ID"
	EnvOAuthRedirectURI = "OAUTH_REDIRECT_URI"
	EnvResolveFunction  = "RESOLVE_FUNCTION_NAME"
	EnvTargetNetworks   = "TARGET_NETWORKS"
	EnvEventBusName     = "EVENT_BUS_NAME"
	EnvStateMachineARN  = "STATE_MACHINE_ARN"
	EnvAutoResume       = "AUTO_RESUME"
	// EnvTenantCostlyRate: how many connection tests and run starts each
	// tenant may make a second (package ratelimit); 0 turns the limit off.
	EnvTenantCostlyRate = "TENANT_COSTLY_REQUEST_RATE"
	// EnvExpiringWindowDays: a password or refresh token expiring within
	// this many days makes its connection expiring, a client secret is
	// announced (whole days, 1 to 90). The resolve function files the
	// tokens it stores by it too.
	EnvExpiringWindowDays = "EXPIRING_WINDOW_DAYS"
	// The Connections page signs people in at the API's identity provider
	// (OpenID Connect, authorization code with PKCE) as this client, for
	// tokens the API's JWT authorizer accepts.
	EnvJwtIssuer    = "JWT_ISSUER"
	EnvJwtAudience  = "JWT_AUDIENCE"
	EnvPageClientID = "PAGE_CLIENT_ID"
	// EnvPageTokenEndpoint is the identity provider's token endpoint when
	// it is on another origin than the issuer (Amazon Cognito); it may be
	// empty (the issuer's discovery document names it).
	EnvPageTokenEndpoint = "PAGE_TOKEN_ENDPOINT"
	// Optional endpoint overrides for LocalStack or emulators; absent in AWS.
	EnvDynamoDBEndpoint = "DYNAMODB_ENDPOINT"
	EnvKMSEndpoint      = "KMS_ENDPOINT"
	EnvLambdaEndpoint   = "LAMBDA_ENDPOINT"
	EnvEventsEndpoint   = "EVENTS_ENDPOINT"
	EnvSFNEndpoint      = "SFN_ENDPOINT"
)

// functionEnv is what each function requires; template.yaml must set exactly
// these (the template contract test reads this through LoadConfig).
var functionEnv = map[string][]string{
	FnConnections:   {EnvLogLevel, EnvTableName, EnvKMSKeyID, EnvOAuthRedirectURI, EnvResolveFunction, EnvTargetNetworks, EnvEventBusName, EnvExpiringWindowDays, EnvTenantCostlyRate},
	FnResolve:       {EnvLogLevel, EnvTableName, EnvKMSKeyID, EnvOAuthRedirectURI, EnvTargetNetworks, EnvEventBusName, EnvExpiringWindowDays},
	FnOAuthCallback: {EnvLogLevel, EnvResolveFunction},
	FnRuns:          {EnvLogLevel, EnvTableName, EnvStateMachineARN, EnvEventBusName, EnvTenantCostlyRate},
	FnRunStep:       {EnvLogLevel, EnvTableName, EnvResolveFunction, EnvTargetNetworks, EnvEventBusName},
	FnSuspendRun:    {EnvLogLevel, EnvTableName, EnvEventBusName}, // task tokens only: no state machine ARN, so no cycle with the state machine
	FnFinishRun:     {EnvLogLevel, EnvTableName, EnvEventBusName},
	FnResumeRuns:    {EnvLogLevel, EnvTableName, EnvStateMachineARN, EnvEventBusName, EnvAutoResume},
	FnExpiryCheck:   {EnvLogLevel, EnvTableName, EnvResolveFunction, EnvEventBusName, EnvExpiringWindowDays},
	FnWeb:           {EnvLogLevel, EnvJwtIssuer, EnvJwtAudience, EnvPageClientID, EnvPageTokenEndpoint}, // the page: no table, key or function
}

// mayBeEmpty are the variables the template sets that may be empty (an
// optional parameter left at its default).
var mayBeEmpty = map[string]bool{EnvPageTokenEndpoint: true}

// endpointEnv names each service's endpoint override: ours, then the one
// the SDK's default configuration honours (AWS_ENDPOINT_URL_<Service>;
// AWS_ENDPOINT_URL, for every service, is read with the credentials).
var endpointEnv = map[Service][2]string{
	DynamoDB:      {EnvDynamoDBEndpoint, "AWS_ENDPOINT_URL_DYNAMODB"},
	KMS:           {EnvKMSEndpoint, "AWS_ENDPOINT_URL_KMS"},
	Lambda:        {EnvLambdaEndpoint, "AWS_ENDPOINT_URL_LAMBDA"},
	EventBridge:   {EnvEventsEndpoint, "AWS_ENDPOINT_URL_EVENTBRIDGE"},
	StepFunctions: {EnvSFNEndpoint, "AWS_ENDPOINT_URL_SFN"},
}

// OptionalEnv is read by every function when present and never set by the template.
var OptionalEnv = []string{EnvDynamoDBEndpoint, EnvKMSEndpoint, EnvLambdaEndpoint, EnvEventsEndpoint, EnvSFNEndpoint,
	"AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_KMS", "AWS_ENDPOINT_URL_LAMBDA", "AWS_ENDPOINT_URL_EVENTBRIDGE", "AWS_ENDPOINT_URL_SFN"}

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
	OAuthRedirectURI string
	ResolveFunction  string
	// TargetNetworks says which addresses connection tests, actions and
	// token endpoints may reach besides public ones.
	TargetNetworks  httpaction.Networks
	EventBusName    string
	StateMachineARN string
	AutoResume      bool
	// ExpiringWindow is the expiry warning window of passwords, refresh
	// tokens and client secrets (zero: the default, for functions that
	// never file connections or registrations).
	ExpiringWindow time.Duration
	// TenantCostlyRate is how many connection tests and run starts each
	// tenant may make a second; 0: no limit.
	TenantCostlyRate int
	// JwtIssuer, JwtAudience and PageClientID are the Connections page's
	// sign-in: the API's identity provider, the audience its tokens must
	// carry, and the page's client id there.
	JwtIssuer    string
	JwtAudience  string
	PageClientID string
	// PageTokenEndpoint is the identity provider's token endpoint, when
	// configured (else the discovery document's).
	PageTokenEndpoint string
	DynamoDBEndpoint  string
	KMSEndpoint       string
	LambdaEndpoint    string
	EventsEndpoint    string
	SFNEndpoint       string
}

// Endpoint is the configured endpoint override of service s, or "".
func (c Config) Endpoint(s Service) string {
	switch s {
	case DynamoDB:
		return c.DynamoDBEndpoint
	case KMS:
		return c.KMSEndpoint
	case Lambda:
		return c.LambdaEndpoint
	case EventBridge:
		return c.EventsEndpoint
	case StepFunctions:
		return c.SFNEndpoint
	}
	return ""
}

// LocalNetworks reports whether targets on loopback (or private networks)
// are allowed: make dev, where test servers and the OAuth provider listen
// on 127.0.0.1 over plain HTTP.
func (c Config) LocalNetworks() bool {
	return c.TargetNetworks == httpaction.Loopback || c.TargetNetworks == httpaction.Private
}

// LoadConfig reads function's configuration through getenv (os.Getenv in
// Lambda) and reports every missing or malformed variable at once.
func LoadConfig(function string, getenv func(string) string) (Config, error) {
	required, ok := functionEnv[function]
	if !ok {
		return Config{}, fmt.Errorf("app: unknown function %q", function)
	}
	cfg := Config{Function: function, TargetNetworks: httpaction.PublicOnly}
	var problems []string
	for _, name := range required {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			if !mayBeEmpty[name] {
				problems = append(problems, name+" is not set")
			}
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
		case EnvOAuthRedirectURI:
			if u, err := url.Parse(v); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
				problems = append(problems, name+" must be an absolute http(s) URL")
			}
			cfg.OAuthRedirectURI = v
		case EnvResolveFunction:
			cfg.ResolveFunction = v
		case EnvEventBusName:
			cfg.EventBusName = v
		case EnvStateMachineARN:
			cfg.StateMachineARN = v
		case EnvAutoResume:
			b, err := strconv.ParseBool(v)
			if err != nil {
				problems = append(problems, name+" must be true or false")
			}
			cfg.AutoResume = b
		case EnvExpiringWindowDays:
			d, err := strconv.Atoi(v)
			if err != nil || d < 1 || d > 90 {
				problems = append(problems, name+" must be a whole number of days from 1 to 90")
			}
			cfg.ExpiringWindow = time.Duration(d) * 24 * time.Hour
		case EnvTenantCostlyRate:
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 10000 {
				problems = append(problems, name+" must be a whole number of requests a second from 0 to 10000")
			}
			cfg.TenantCostlyRate = n
		case EnvJwtIssuer:
			if !plainHTTPSURL(v) {
				problems = append(problems, name+" must be an absolute https URL without query or fragment")
			}
			cfg.JwtIssuer = v
		case EnvJwtAudience:
			cfg.JwtAudience = v
		case EnvPageClientID:
			cfg.PageClientID = v
		case EnvPageTokenEndpoint:
			if !plainHTTPSURL(v) {
				problems = append(problems, name+" must be empty or an absolute https URL without query or fragment")
			}
			cfg.PageTokenEndpoint = v
		case EnvTargetNetworks:
			n, err := httpaction.ParseNetworks(v)
			if err != nil {
				problems = append(problems, name+" must be public, loopback or private")
			}
			cfg.TargetNetworks = n
		}
	}
	endpoint := func(s Service) string {
		for _, name := range endpointEnv[s] {
			if v := strings.TrimSpace(getenv(name)); v != "" {
				return v
			}
		}
		return ""
	}
	cfg.DynamoDBEndpoint = endpoint(DynamoDB)
	cfg.KMSEndpoint = endpoint(KMS)
	cfg.LambdaEndpoint = endpoint(Lambda)
	cfg.EventsEndpoint = endpoint(EventBridge)
	cfg.SFNEndpoint = endpoint(StepFunctions)
	if len(problems) > 0 {
		return Config{}, fmt.Errorf("app: %s configuration: %s", function, strings.Join(problems, "; "))
	}
	return cfg, nil
}

// plainHTTPSURL says whether v is an absolute https URL without user
// info, query or fragment: what an issuer or a token endpoint must be.
func plainHTTPSURL(v string) bool {
	u, err := url.Parse(v)
	return err == nil && u.Host != "" && u.Scheme == "https" && u.User == nil && u.RawQuery == "" && u.Fragment == ""
}
