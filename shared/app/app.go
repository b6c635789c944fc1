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
	"github.com/connmgr/connmgr/shared/events"
	"github.com/connmgr/connmgr/shared/expiry"
	"github.com/connmgr/connmgr/shared/expirycheck"
	"github.com/connmgr/connmgr/shared/httpaction"
	"github.com/connmgr/connmgr/shared/httpapi"
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

// App holds the clients and services of one function, built once per cold start.
type App struct {
	cfg    Config
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

// New builds the application for cfg.Function.
func New(ctx context.Context, cfg Config, opts Options) (*App, error) {
	a := &App{cfg: cfg, now: opts.Now, log: opts.Log}
	if a.now == nil {
		a.now = time.Now
	}
	a.ids = newIDs(a.now)
	if a.log == nil {
		out := opts.LogOutput
		if out == nil {
			out = os.Stdout
		}
		a.log = slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: cfg.LogLevel})).With(slog.String("function", cfg.Function))
	}
	var awsCfg aws.Config
	if opts.AWS != nil {
		awsCfg = *opts.AWS
	} else {
		var err error
		if awsCfg, err = awsconfig.LoadDefaultConfig(ctx); err != nil {
			return nil, fmt.Errorf("app: AWS configuration: %w", err)
		}
	}
	a.ddb = dynamodb.NewFromConfig(awsCfg, append([]func(*dynamodb.Options){func(o *dynamodb.Options) {
		if cfg.DynamoDBEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.DynamoDBEndpoint)
			// Emulators do not send X-Amz-Crc32.
			o.DisableValidateResponseChecksum = true
		}
	}}, opts.DynamoDBOptions...)...)
	a.kms = kms.NewFromConfig(awsCfg, append([]func(*kms.Options){func(o *kms.Options) {
		if cfg.KMSEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.KMSEndpoint)
		}
	}}, opts.KMSOptions...)...)
	a.lambda = lambda.NewFromConfig(awsCfg, append([]func(*lambda.Options){func(o *lambda.Options) {
		if cfg.LambdaEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.LambdaEndpoint)
		}
	}}, opts.LambdaOptions...)...)
	a.events = eventbridge.NewFromConfig(awsCfg, append([]func(*eventbridge.Options){func(o *eventbridge.Options) {
		if cfg.EventsEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.EventsEndpoint)
		}
	}}, opts.EventsOptions...)...)
	a.sfn = sfn.NewFromConfig(awsCfg, append([]func(*sfn.Options){func(o *sfn.Options) {
		if cfg.SFNEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.SFNEndpoint)
		}
	}}, opts.SFNOptions...)...)
	a.store = store.New(a.ddb, cfg.TableName, a.now).WithPolicy(a.policy())
	a.relay = outbox.New(a.store, events.NewPublisher(a.events, cfg.EventBusName), a.log)
	return a, nil
}

// policy is the due policy: the defaults with this deployment's window.
func (a *App) policy() expiry.Policy {
	return expiry.Policy{ExpiringWindow: a.cfg.ExpiringWindow}.WithDefaults()
}

// Logger is the application's logger.
func (a *App) Logger() *slog.Logger { return a.log }

// Handler returns function's Lambda handler, ready for lambda.Start.
func (a *App) Handler(function string) (any, error) {
	switch function {
	case FnResolve:
		h, err := a.ResolveHandler()
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, ev json.RawMessage) (json.RawMessage, error) { return h.Handle(ctx, ev) }, nil
	case FnRunStep:
		return a.workflow().RunStep, nil
	case FnSuspendRun:
		return a.workflow().Suspend, nil
	case FnFinishRun:
		return a.workflow().Finish, nil
	case FnResumeRuns:
		return a.workflow().ResumeOnEvent, nil
	case FnExpiryCheck:
		c, err := a.ExpiryCheck()
		if err != nil {
			return nil, err
		}
		return c.Handle, nil
	}
	rt, err := a.Router(function)
	if err != nil {
		return nil, err
	}
	return rt.Serve, nil
}

// Router returns the HTTP API router of an HTTP function.
func (a *App) Router(function string) (*httpapi.Router, error) {
	rt := httpapi.NewRouter(a.log)
	switch function {
	case FnConnections:
		sealer := vault.NewSealer(a.kms, a.cfg.KMSKeyID)
		authz, err := oauth.NewAuthorizer(oauth.AuthorizerConfig{Store: a.store, Sealer: sealer, RedirectURI: a.cfg.OAuthRedirectURI,
			AllowLoopbackHTTP: a.cfg.LocalNetworks(), Now: a.now})
		if err != nil {
			return nil, err
		}
		manager.New(manager.Deps{
			Store: a.store, Sealer: sealer, Authorizer: authz,
			Clients: oauth.NewRegistry(a.store, sealer, oauth.RegistryOptions{Now: a.now, AllowLoopbackHTTP: a.cfg.LocalNetworks()}),
			Tester:  a.resolverClient(), Events: a.relay, Now: a.now, NewID: a.ids, Expiry: a.policy(),
		}).Routes(rt)
	case FnOAuthCallback:
		authpage.New(a.resolverClient(), a.log).Routes(rt)
	case FnRuns:
		a.workflow().Routes(rt)
	default:
		return nil, fmt.Errorf("app: %s is not an HTTP function", function)
	}
	return rt, nil
}

// workflow is the runs service with what this function's configuration provides.
func (a *App) workflow() *workflow.Service {
	return workflow.New(workflow.Deps{
		Store: a.store, Engine: workflow.NewStepFunctions(a.sfn, a.cfg.StateMachineARN),
		Credentials: a.resolverClient(), Action: httpaction.New(a.cfg.TargetNetworks, 10*time.Second),
		Events: a.relay, Now: a.now, NewID: a.ids, Log: a.log, AutoResume: a.cfg.AutoResume,
	})
}

func (a *App) resolverClient() *resolver.Client {
	return resolver.NewClient(a.lambda, a.cfg.ResolveFunction)
}

// ExpiryCheck is the scheduled expiry check: refreshes through the resolve
// function, transitions and warnings in the table, events through the
// outbox, whose leftovers it drains.
func (a *App) ExpiryCheck() (*expirycheck.Check, error) {
	drain := outbox.New(expirycheck.Settled(a.store, expirycheck.DefaultGrace, a.now), events.NewPublisher(a.events, a.cfg.EventBusName), a.log)
	return expirycheck.New(expirycheck.Config{
		Store: a.store, Refresher: a.resolverClient(), Events: a.relay, Outbox: drain,
		Policy: a.policy(), Now: a.now, NewID: a.ids, Log: a.log,
	})
}

// ResolveHandler is the resolve function: the only holder of kms:Decrypt.
func (a *App) ResolveHandler() (*resolver.Handler, error) {
	cache := vault.NewKeyCache(vault.DefaultCacheEntries, vault.DefaultCacheMaxAge, vault.DefaultCacheMaxUses, a.now)
	opener, sealer := vault.NewOpener(a.kms, cache), vault.NewSealer(a.kms, a.cfg.KMSKeyID)
	httpc := oauth.NewHTTPClient(oauth.HTTPOptions{AllowPrivateNetworks: a.cfg.LocalNetworks()})
	res, err := resolver.New(resolver.Config{Store: a.store, Opener: opener, Sealer: sealer, HTTPClient: httpc, Now: a.now, Log: a.log, NewID: a.ids, Events: a.relay})
	if err != nil {
		return nil, err
	}
	cb, err := oauth.NewCallback(oauth.CallbackConfig{Store: a.store, Opener: opener, Sealer: sealer, RedirectURI: a.cfg.OAuthRedirectURI,
		AllowLoopbackHTTP: a.cfg.LocalNetworks(), HTTPClient: httpc, Now: a.now, NewID: a.ids})
	if err != nil {
		return nil, err
	}
	return &resolver.Handler{Resolver: res, Callback: cb, Action: httpaction.New(a.cfg.TargetNetworks, 10*time.Second)}, nil
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
