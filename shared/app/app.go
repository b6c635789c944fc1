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
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/oklog/ulid/v2"

	"github.com/connmgr/connmgr/shared/httpapi"
	"github.com/connmgr/connmgr/shared/manager"
	"github.com/connmgr/connmgr/shared/store"
	"github.com/connmgr/connmgr/shared/vault"
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
	// DynamoDBOptions and KMSOptions adjust the SDK clients (tests count calls).
	DynamoDBOptions []func(*dynamodb.Options)
	KMSOptions      []func(*kms.Options)
}

// App holds the clients and services of one function, built once per cold start.
type App struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	ddb   *dynamodb.Client
	kms   *kms.Client
	store *store.Store
}

// New builds the application for cfg.Function.
func New(ctx context.Context, cfg Config, opts Options) (*App, error) {
	a := &App{cfg: cfg, now: opts.Now, log: opts.Log}
	if a.now == nil {
		a.now = time.Now
	}
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
	a.store = store.New(a.ddb, cfg.TableName, a.now)
	return a, nil
}

// Logger is the application's logger.
func (a *App) Logger() *slog.Logger { return a.log }

// Router returns the HTTP API router of an HTTP function.
func (a *App) Router(function string) (*httpapi.Router, error) {
	rt := httpapi.NewRouter(a.log)
	switch function {
	case FnConnections:
		svc := manager.New(a.store, vault.NewSealer(a.kms, a.cfg.KMSKeyID), a.now, newIDs(a.now))
		svc.Routes(rt)
	default:
		return nil, fmt.Errorf("app: %s is not an HTTP function", function)
	}
	return rt, nil
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
