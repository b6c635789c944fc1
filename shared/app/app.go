package app

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/oklog/ulid/v2"

	"github.com/connmgr/connmgr/shared/authpage"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/events"
	"github.com/connmgr/connmgr/shared/expiry"
	"github.com/connmgr/connmgr/shared/expirycheck"
	"github.com/connmgr/connmgr/shared/httpaction"
	"github.com/connmgr/connmgr/shared/httpapi"
	"github.com/connmgr/connmgr/shared/logging"
	"github.com/connmgr/connmgr/shared/manager"
	"github.com/connmgr/connmgr/shared/oauth"
	"github.com/connmgr/connmgr/shared/outbox"
	"github.com/connmgr/connmgr/shared/resolver"
	"github.com/connmgr/connmgr/shared/store"
	"github.com/connmgr/connmgr/shared/vault"
	"github.com/connmgr/connmgr/shared/workflow"
)

// Options are the seams the local runtime and tests set; zero values are
// production defaults.
type Options struct {
	// AWS replaces the default AWS configuration chain (for emulators).
	AWS *aws.Config
	// Now is the clock; the local runtime passes its controllable clock.
	Now func() time.Time
	// Log receives JSON logs; default stdout at the configured level.
	Log *slog.Logger
	// LogOutput is where the default logger writes (tests capture it).
	LogOutput io.Writer
	// Client options adjust the SDK clients (tests count calls).
	DynamoDBOptions []func(*dynamodb.Options)
	KMSOptions      []func(*kms.Options)
	LambdaOptions   []func(*lambda.Options)
	EventsOptions   []func(*eventbridge.Options)
	SFNOptions      []func(*sfn.Options)
}

// App holds the configuration of one function and builds, once per cold
// start, the clients and services that function uses. Each function's
// builder below reaches only what it needs, so the linker leaves the rest
// (another service's SDK client, the OAuth stack, ...) out of its binary.
type App struct {
	cfg    Config
	opts   Options
	awsCfg aws.Config
	log    *slog.Logger
	now    func() time.Time
	ids    func() string

	ddb    *dynamodb.Client
	kms    *kms.Client
	lambda *lambda.Client
	events *eventbridge.Client
	sfn    *sfn.Client
	store  *store.Store
	relay  *outbox.Relay
}

// New reads the AWS configuration for cfg.Function; clients are built on
// first use.
func New(ctx context.Context, cfg Config, opts Options) (*App, error) {
	a := &App{cfg: cfg, opts: opts, now: opts.Now, log: opts.Log}
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
		if a.awsCfg, err = awsconfig.LoadDefaultConfig(ctx); err != nil {
			return nil, fmt.Errorf("app: AWS configuration: %w", err)
		}
	}
	return a, nil
}

// Logger is the application's logger.
func (a *App) Logger() *slog.Logger { return a.log }

// The clients and shared services, built once on first use. Endpoints are
// overridden only when configured (emulators, LocalStack).

func (a *App) dynamoDB() *dynamodb.Client {
	if a.ddb == nil {
		a.ddb = dynamodb.NewFromConfig(a.awsCfg, append([]func(*dynamodb.Options){func(o *dynamodb.Options) {
			if a.cfg.DynamoDBEndpoint != "" {
				o.BaseEndpoint = aws.String(a.cfg.DynamoDBEndpoint)
				// Emulators do not send X-Amz-Crc32.
				o.DisableValidateResponseChecksum = true
			}
		}}, a.opts.DynamoDBOptions...)...)
	}
	return a.ddb
}

func (a *App) kmsClient() *kms.Client {
	if a.kms == nil {
		a.kms = kms.NewFromConfig(a.awsCfg, append([]func(*kms.Options){func(o *kms.Options) {
			if a.cfg.KMSEndpoint != "" {
				o.BaseEndpoint = aws.String(a.cfg.KMSEndpoint)
			}
		}}, a.opts.KMSOptions...)...)
	}
	return a.kms
}

func (a *App) lambdaClient() *lambda.Client {
	if a.lambda == nil {
		a.lambda = lambda.NewFromConfig(a.awsCfg, append([]func(*lambda.Options){func(o *lambda.Options) {
			if a.cfg.LambdaEndpoint != "" {
				o.BaseEndpoint = aws.String(a.cfg.LambdaEndpoint)
			}
		}}, a.opts.LambdaOptions...)...)
	}
	return a.lambda
}

func (a *App) eventsClient() *eventbridge.Client {
	if a.events == nil {
		a.events = eventbridge.NewFromConfig(a.awsCfg, append([]func(*eventbridge.Options){func(o *eventbridge.Options) {
			if a.cfg.EventsEndpoint != "" {
				o.BaseEndpoint = aws.String(a.cfg.EventsEndpoint)
			}
		}}, a.opts.EventsOptions...)...)
	}
	return a.events
}

func (a *App) sfnClient() *sfn.Client {
	if a.sfn == nil {
		a.sfn = sfn.NewFromConfig(a.awsCfg, append([]func(*sfn.Options){func(o *sfn.Options) {
			if a.cfg.SFNEndpoint != "" {
				o.BaseEndpoint = aws.String(a.cfg.SFNEndpoint)
			}
		}}, a.opts.SFNOptions...)...)
	}
	return a.sfn
}

func (a *App) table() *store.Store {
	if a.store == nil {
		a.store = store.New(a.dynamoDB(), a.cfg.TableName, a.now).WithPolicy(a.policy())
	}
	return a.store
}

// outbox publishes the events committed changes wrote.
func (a *App) outbox() *outbox.Relay {
	if a.relay == nil {
		a.relay = outbox.New(a.table(), events.NewPublisher(a.eventsClient(), a.cfg.EventBusName), a.log)
	}
	return a.relay
}

// policy is the due policy: the defaults with this deployment's window.
func (a *App) policy() expiry.Policy {
	return expiry.Policy{ExpiringWindow: a.cfg.ExpiringWindow}.WithDefaults()
}

func (a *App) resolverClient() *resolver.Client {
	return resolver.NewClient(a.lambdaClient(), a.cfg.ResolveFunction)
}

// BuilderOf is the builder of function's handler, the one its main passes
// to Main (the template contract test checks each main against it). It
// names every function, so only the local runtime and tests use it.
func BuilderOf(function string) (func(*App) (any, error), bool) {
	b, ok := map[string]func(*App) (any, error){
		FnConnections:   (*App).Connections,
		FnOAuthCallback: (*App).OAuthCallback,
		FnResolve:       (*App).Resolve,
		FnRuns:          (*App).Runs,
		FnRunStep:       (*App).RunStep,
		FnSuspendRun:    (*App).SuspendRun,
		FnFinishRun:     (*App).FinishRun,
		FnResumeRuns:    (*App).ResumeRuns,
		FnExpiryCheck:   (*App).ExpiryCheckFunction,
	}[function]
	return b, ok
}

// Handler returns function's Lambda handler, ready for lambda.Start.
func (a *App) Handler(function string) (any, error) {
	b, ok := BuilderOf(function)
	if !ok {
		return nil, fmt.Errorf("app: unknown function %q", function)
	}
	return b(a)
}

// Router returns the HTTP API router of an HTTP function.
func (a *App) Router(function string) (*httpapi.Router, error) {
	b, ok := map[string]func(*App) (*httpapi.Router, error){
		FnConnections:   (*App).connectionsRouter,
		FnOAuthCallback: (*App).oauthCallbackRouter,
		FnRuns:          (*App).runsRouter,
	}[function]
	if !ok {
		return nil, fmt.Errorf("app: %s is not an HTTP function", function)
	}
	return b(a)
}

func serve(rt *httpapi.Router, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return rt.Serve, nil
}

// Connections is the connections function's handler.
func (a *App) Connections() (any, error) { return serve(a.connectionsRouter()) }

func (a *App) connectionsRouter() (*httpapi.Router, error) {
	rt := httpapi.NewRouter(a.log)
	sealer := vault.NewSealer(a.kmsClient(), a.cfg.KMSKeyID)
	authz, err := oauth.NewAuthorizer(oauth.AuthorizerConfig{Store: a.table(), Sealer: sealer, RedirectURI: a.cfg.OAuthRedirectURI,
		AllowLoopbackHTTP: a.cfg.LocalNetworks(), Now: a.now})
	if err != nil {
		return nil, err
	}
	manager.New(manager.Deps{
		Store: a.table(), Sealer: sealer, Authorizer: authz,
		Clients: oauth.NewRegistry(a.table(), sealer, oauth.RegistryOptions{Now: a.now, AllowLoopbackHTTP: a.cfg.LocalNetworks()}),
		Tester:  a.resolverClient(), Events: a.outbox(), Now: a.now, NewID: a.ids, Expiry: a.policy(),
		Settings: connection.SettingsPolicy{AllowHTTP: a.cfg.LocalNetworks()},
	}).Routes(rt)
	return rt, nil
}

// OAuthCallback is the public callback's handler: no table, no key.
func (a *App) OAuthCallback() (any, error) { return serve(a.oauthCallbackRouter()) }

func (a *App) oauthCallbackRouter() (*httpapi.Router, error) {
	rt := httpapi.NewRouter(a.log)
	authpage.New(a.resolverClient(), a.log).Routes(rt)
	return rt, nil
}

// Runs is the runs API's handler.
func (a *App) Runs() (any, error) { return serve(a.runsRouter()) }

func (a *App) runsRouter() (*httpapi.Router, error) {
	rt := httpapi.NewRouter(a.log)
	workflow.New(workflow.Deps{Store: a.table(), Engine: a.engine(), Events: a.outbox(), Now: a.now, NewID: a.ids, Log: a.log}).Routes(rt)
	return rt, nil
}

func (a *App) engine() *workflow.StepFunctions {
	return workflow.NewStepFunctions(a.sfnClient(), a.cfg.StateMachineARN)
}

// RunStep is the state machine's step task.
func (a *App) RunStep() (any, error) {
	return workflow.New(workflow.Deps{
		Store: a.table(), Credentials: a.resolverClient(), Action: httpaction.New(a.cfg.TargetNetworks, httpaction.DefaultTimeout),
		Events: a.outbox(), Now: a.now, NewID: a.ids, Log: a.log,
	}).RunStep, nil
}

// SuspendRun is the state machine's suspension task.
func (a *App) SuspendRun() (any, error) {
	return workflow.New(workflow.Deps{Store: a.table(), Engine: a.engine(), Events: a.outbox(), Now: a.now, NewID: a.ids, Log: a.log}).Suspend, nil
}

// FinishRun is the state machine's final task.
func (a *App) FinishRun() (any, error) {
	return workflow.New(workflow.Deps{Store: a.table(), Events: a.outbox(), Now: a.now, NewID: a.ids, Log: a.log}).Finish, nil
}

// ResumeRuns is the Connection Updated / Recovered target.
func (a *App) ResumeRuns() (any, error) {
	return workflow.New(workflow.Deps{Store: a.table(), Engine: a.engine(), Events: a.outbox(), Now: a.now, NewID: a.ids, Log: a.log,
		AutoResume: a.cfg.AutoResume}).ResumeOnEvent, nil
}

// ExpiryCheckFunction is the scheduled check's handler.
func (a *App) ExpiryCheckFunction() (any, error) {
	c, err := a.ExpiryCheck()
	if err != nil {
		return nil, err
	}
	return c.Handle, nil
}

// ExpiryCheck is the scheduled expiry check: refreshes through the resolve
// function, transitions and warnings in the table, events through the
// outbox, whose leftovers it drains.
func (a *App) ExpiryCheck() (*expirycheck.Check, error) {
	drain := outbox.New(expirycheck.Settled(a.table(), expirycheck.DefaultGrace, a.now), events.NewPublisher(a.eventsClient(), a.cfg.EventBusName), a.log)
	return expirycheck.New(expirycheck.Config{
		Store: a.table(), Refresher: a.resolverClient(), Events: a.outbox(), Outbox: drain,
		Policy: a.policy(), Now: a.now, NewID: a.ids, Log: a.log,
	})
}

// Resolve is the resolve function's handler.
func (a *App) Resolve() (any, error) {
	h, err := a.ResolveHandler()
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, ev json.RawMessage) (json.RawMessage, error) { return h.Handle(ctx, ev) }, nil
}

// ResolveHandler is the resolve function: the only holder of kms:Decrypt.
func (a *App) ResolveHandler() (*resolver.Handler, error) {
	cache := vault.NewKeyCache(vault.DefaultCacheEntries, vault.DefaultCacheMaxAge, vault.DefaultCacheMaxUses, a.now)
	opener, sealer := vault.NewOpener(a.kmsClient(), cache), vault.NewSealer(a.kmsClient(), a.cfg.KMSKeyID)
	httpc := oauth.NewHTTPClient(oauth.HTTPOptions{AllowPrivateNetworks: a.cfg.LocalNetworks()})
	res, err := resolver.New(resolver.Config{Store: a.table(), Opener: opener, Sealer: sealer, HTTPClient: httpc, Now: a.now, Log: a.log, NewID: a.ids, Events: a.outbox()})
	if err != nil {
		return nil, err
	}
	cb, err := oauth.NewCallback(oauth.CallbackConfig{Store: a.table(), Opener: opener, Sealer: sealer, RedirectURI: a.cfg.OAuthRedirectURI,
		AllowLoopbackHTTP: a.cfg.LocalNetworks(), HTTPClient: httpc, Now: a.now, NewID: a.ids})
	if err != nil {
		return nil, err
	}
	return &resolver.Handler{Resolver: res, Callback: cb, Action: httpaction.New(a.cfg.TargetNetworks, httpaction.DefaultTimeout)}, nil
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
