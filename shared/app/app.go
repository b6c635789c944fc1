package app

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/oklog/ulid/v2"

	"github.com/connmgr/connmgr/shared/logging"
)

// Options are the seams the local runtime and tests set; zero values are
// production defaults.
type Options struct {
	// AWS replaces the configuration read from the environment (for
	// emulators and tests).
	AWS *aws.Config
	// Now is the clock; the local runtime passes its controllable clock.
	Now func() time.Time
	// Log receives JSON logs; default stdout at the configured level.
	Log *slog.Logger
	// LogOutput is where the default logger writes (tests capture it).
	LogOutput io.Writer
	// ClientOptions adjust SDK clients (tests count calls): each is a
	// func(*<service>.Options), such as func(*dynamodb.Options), and
	// applies to the clients of that service. They run after the endpoint
	// override, so they may replace it.
	ClientOptions []any
}

// App holds the configuration of one function and what its builder built
// from it. It names no AWS service: each function's builder (the packages
// under shared/app, one per function) asks Client for the SDK clients it
// uses, so a function's binary links those and no others.
type App struct {
	cfg    Config
	opts   Options
	awsCfg aws.Config
	log    *slog.Logger
	now    func() time.Time
	ids    func() string

	mu     sync.Mutex
	shared map[any]any
}

// New reads the AWS configuration for cfg.Function (from the environment
// unless opts.AWS is set); clients are built on first use.
func New(ctx context.Context, cfg Config, opts Options) (*App, error) {
	a := &App{cfg: cfg, opts: opts, now: opts.Now, log: opts.Log, shared: map[any]any{}}
	if a.now == nil {
		a.now = time.Now
	}
	a.ids = newIDs(a.now)
	if a.log == nil {
		out := opts.LogOutput
		if out == nil {
			out = os.Stdout
		}
		a.log = logging.New(out, cfg.LogLevel, cfg.Function)
	}
	if opts.AWS != nil {
		a.awsCfg = *opts.AWS
	} else {
		var err error
		if a.awsCfg, err = awsFromEnv(os.Getenv); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Config is the function's configuration.
func (a *App) Config() Config { return a.cfg }

// Logger is the application's logger.
func (a *App) Logger() *slog.Logger { return a.log }

// Now is the application's clock.
func (a *App) Now() time.Time { return a.now() }

// NewID returns a new ULID, monotonic within a millisecond so ids created
// by one instance sort in creation order.
func (a *App) NewID() string { return a.ids() }

// Shared returns what build makes for key, built once per App: the clients
// and services the builders of one function share (a store, an outbox).
// Keys are values of types private to the package that builds them.
func Shared[T any](a *App, key any, build func() T) T {
	a.mu.Lock()
	v, ok := a.shared[key]
	a.mu.Unlock()
	if ok {
		return v.(T)
	}
	t := build() // may itself call Shared: the lock is not held
	a.mu.Lock()
	defer a.mu.Unlock()
	if v, ok := a.shared[key]; ok {
		return v.(T)
	}
	a.shared[key] = t
	return t
}

// Service names an AWS service the functions call, as the SDK spells it in
// AWS_ENDPOINT_URL_<Service>.
type Service string

const (
	DynamoDB      Service = "DYNAMODB"
	KMS           Service = "KMS"
	Lambda        Service = "LAMBDA"
	EventBridge   Service = "EVENTBRIDGE"
	StepFunctions Service = "SFN"
)

// Endpoint is where the service's client sends requests: the configured
// override (an emulator, LocalStack), or "" for the AWS endpoint.
func (a *App) Endpoint(s Service) string {
	if ep := a.cfg.Endpoint(s); ep != "" {
		return ep
	}
	return aws.ToString(a.awsCfg.BaseEndpoint)
}

type clientKey struct{ s Service }

// Client returns a's client of service, built once by newClient
// (dynamodb.NewFromConfig, ...) with the endpoint override, then optFns,
// then the Options' ClientOptions of its options type.
func Client[C, O any](a *App, s Service, newClient func(aws.Config, ...func(*O)) *C, optFns ...func(*O)) *C {
	return Shared(a, clientKey{s}, func() *C {
		cfg := a.awsCfg.Copy()
		if ep := a.cfg.Endpoint(s); ep != "" {
			cfg.BaseEndpoint = aws.String(ep)
		}
		fns := append([]func(*O){}, optFns...)
		for _, o := range a.opts.ClientOptions {
			if f, ok := o.(func(*O)); ok {
				fns = append(fns, f)
			}
		}
		return newClient(cfg, fns...)
	})
}

// awsFromEnv is the AWS configuration Lambda gives a function: the region
// and the execution role's credentials in AWS_REGION, AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, and AWS_ENDPOINT_URL when an
// emulator (LocalStack) sets it. The SDK's default chain
// (config.LoadDefaultConfig) reads the same variables first, but links the
// clients of every other source it could fall back to (shared files, SSO,
// STS, IMDS): 1.6 MB of every bootstrap for sources Lambda never uses.
func awsFromEnv(getenv func(string) string) (aws.Config, error) {
	cfg := aws.Config{Region: getenv("AWS_REGION")}
	if cfg.Region == "" {
		cfg.Region = getenv("AWS_DEFAULT_REGION")
	}
	creds := aws.Credentials{AccessKeyID: getenv("AWS_ACCESS_KEY_ID"), SecretAccessKey: getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken: getenv("AWS_SESSION_TOKEN"), Source: "EnvironmentVariables"}
	var missing []string
	if cfg.Region == "" {
		missing = append(missing, "AWS_REGION")
	}
	if creds.AccessKeyID == "" || creds.SecretAccessKey == "" {
		missing = append(missing, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	if len(missing) > 0 {
		return aws.Config{}, fmt.Errorf("app: AWS configuration: %v not set (Lambda sets them for the execution role)", missing)
	}
	cfg.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil })
	if ep := getenv("AWS_ENDPOINT_URL"); ep != "" && getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") != "true" {
		cfg.BaseEndpoint = aws.String(ep)
	}
	return cfg, nil
}

// newIDs returns a generator of ULIDs, monotonic within a millisecond so ids
// created by one instance sort in creation order.
func newIDs(now func() time.Time) func() string {
	var mu sync.Mutex
	entropy := ulid.Monotonic(rand.Reader, 0)
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		return ulid.MustNew(ulid.Timestamp(now()), entropy).String()
	}
}
