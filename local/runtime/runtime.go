// Package runtime is the whole system on one machine, as `make dev` runs it
// and as tests start it in-process: the DynamoDB and KMS emulators, every
// HTTP function of template.yaml built through shared/app, the local API
// Gateway in front of them with the template's routes and JWT authorizer,
// and the local identity provider (POST /dev/token).
//
// It listens on loopback only and never logs request bodies or tokens.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/connmgr/connmgr/local/asl"
	"github.com/connmgr/connmgr/local/clock"
	"github.com/connmgr/connmgr/local/demotarget"
	"github.com/connmgr/connmgr/local/devauth"
	"github.com/connmgr/connmgr/local/emulator"
	"github.com/connmgr/connmgr/local/eventbus"
	"github.com/connmgr/connmgr/local/gateway"
	"github.com/connmgr/connmgr/local/lambdaserver"
	"github.com/connmgr/connmgr/local/logbuf"
	"github.com/connmgr/connmgr/local/oauthprovider"
	"github.com/connmgr/connmgr/local/sam"
	"github.com/connmgr/connmgr/local/sfnserver"
	"github.com/connmgr/connmgr/local/standins"
	"github.com/connmgr/connmgr/shared/app"
	"github.com/connmgr/connmgr/shared/app/functions"
	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/httpapi"
	"github.com/connmgr/connmgr/shared/identity"
	"github.com/connmgr/connmgr/shared/oauth"
	"github.com/connmgr/connmgr/shared/secret"
	"github.com/connmgr/connmgr/shared/store"
	"github.com/connmgr/connmgr/shared/vault/kmsvault"
)

// DefaultAddr is where `make dev` listens unless PORT says otherwise.
const DefaultAddr = "127.0.0.1:3000"

// IdentitySource is the only identity source the local authorizer reads.
const IdentitySource = "$request.header.Authorization"

// Options configure Start; zero values are the `make dev` defaults.
type Options struct {
	// Addr is a loopback host:port ("127.0.0.1:0" picks a free port).
	Addr string
	// Clock drives every function, token check and token; nil is real time.
	Clock *clock.Clock
	// Log receives the gateway's and the functions' JSON logs; nil is stderr.
	Log io.Writer
	// LogLevel is the functions' minimum log level (LOG_LEVEL in AWS).
	LogLevel slog.Level
	// Root is the repository root; "" finds it from the working directory.
	Root string
	// EngineInvoker wraps how the Step Functions engine invokes the
	// functions (nil: as registered). Tests inject failures of the Lambda
	// service with it; an error that is not an *asl.FunctionError reaches
	// the state machine as Lambda.ServiceException.
	EngineInvoker func(next asl.Invoker) asl.Invoker
	// FunctionHTTP, when set, gives a function (by logical id) the HTTP
	// client its AWS SDK clients send through (nil: the stack's). Tests put
	// a faults.Transport in front of one function's KMS or DynamoDB.
	FunctionHTTP func(logicalID string) aws.HTTPClient
	// SFNLimits throttles the Step Functions API (nil: unlimited).
	SFNLimits *sfnserver.Limits
	// EventLogSize is how many events Bus keeps (0: its default).
	EventLogSize int
	// Progress, when set, hears each phase of Start as it completes
	// (`make dev` prints them while it starts).
	Progress func(phase string)
}

// Runtime is a running local system.
type Runtime struct {
	// URL is the API's base URL, "http://127.0.0.1:3000".
	URL       string
	Template  *sam.Template
	Stack     *emulator.Stack
	Clock     *clock.Clock
	Tokens    *devauth.Signer
	Gateway   *gateway.Gateway
	Functions []sam.Function // the HTTP functions served
	// Lambda holds every function of the template, invoked by name (its
	// logical id) through the Lambda API at LambdaURL or in-process.
	Lambda    *lambdaserver.Registry
	LambdaURL string
	// Bus is the local EventBridge (rules and schedules from the template),
	// served over its API at EventsURL.
	Bus       *eventbus.Bus
	EventsURL string
	// OAuth is the local OAuth 2 provider, registered as every tenant's
	// client of the oauth2-generic, sharepoint-online and
	// sharepoint-online-app types (the last with a certificate it trusts).
	OAuth *oauthprovider.Provider
	// Demo is a small API on loopback for connections to point at
	// (local/demotarget), served at DemoURL.
	Demo    *demotarget.Target
	DemoURL string
	// appKey and appCert are that certificate and its private key (PEM).
	appKey, appCert []byte
	// Calls records every AWS operation each function makes.
	Calls Calls
	// Engine runs the template's state machines (Step Functions API at SFNURL).
	Engine *asl.Engine
	SFNURL string
	// standins are the AWS stand-ins above (Stack, Lambda, Bus, Engine).
	standins *standins.StandIns
	params   map[string]string // the template parameters' local values

	clients   *oauth.Registry
	closers   []func()
	srv       *http.Server
	serveErr  chan error
	closeOnce sync.Once
	closeErr  error
}

// Start builds and serves the system; Close stops it.
func Start(ctx context.Context, opts Options) (_ *Runtime, err error) {
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	if err := checkLoopback(opts.Addr); err != nil {
		return nil, err
	}
	if opts.Clock == nil {
		opts.Clock = clock.New()
	}
	if opts.Log == nil {
		opts.Log = os.Stderr
	}
	progress := opts.Progress
	if progress == nil {
		progress = func(string) {}
	}
	logOut := logbuf.Locked(opts.Log)
	root := opts.Root
	if root == "" {
		if root, err = sam.FindRoot(); err != nil {
			return nil, err
		}
	}
	tmpl, err := sam.Load(root)
	if err != nil {
		return nil, err
	}
	rt := &Runtime{Template: tmpl, Clock: opts.Clock, serveErr: make(chan error, 1)}
	defer func() {
		if err != nil {
			rt.stop()
		}
	}()
	all, err := tmpl.Functions()
	if err != nil {
		return nil, err
	}
	fns, jwtCfg, err := httpFunctions(tmpl)
	if err != nil {
		return nil, err
	}
	progress(fmt.Sprintf("read %s: %d functions", sam.TemplateFile, len(all)))
	// Identity tokens live on the clock's base: moving the runtime's clock
	// (ten days, to see a suspended run terminate) must not log everyone out.
	if rt.Tokens, err = devauth.New(opts.Clock.Base); err != nil {
		return nil, err
	}
	// Listen first: the OAuth redirect URI is this address.
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("runtime: listen on %s: %w", opts.Addr, err)
	}
	rt.closers = append(rt.closers, func() { ln.Close() })
	rt.URL = "http://" + ln.Addr().String()
	logger := func(component string) *slog.Logger {
		return slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: opts.LogLevel})).With(slog.String("component", component))
	}
	si, err := standins.Start(ctx, tmpl, standins.Options{Clock: opts.Clock, Logger: logger, EngineInvoker: opts.EngineInvoker, SFNLimits: opts.SFNLimits, EventLogSize: opts.EventLogSize})
	if err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	rt.closers = append(rt.closers, si.Close)
	progress("DynamoDB and KMS (the table and the key), Lambda, Step Functions and EventBridge stand-ins started")
	rt.standins, rt.Stack, rt.Lambda, rt.LambdaURL, rt.Engine, rt.SFNURL, rt.EventsURL = si, si.Stack, si.Lambda, si.LambdaURL, si.Engine, si.SFNURL, si.EventsURL
	rt.params = standins.LocalParameters(rt.URL, opts.LogLevel)
	if rt.OAuth, err = oauthprovider.Start(oauthprovider.Options{Now: opts.Clock.Now}); err != nil {
		return nil, fmt.Errorf("runtime: OAuth provider: %w", err)
	}
	rt.closers = append(rt.closers, func() { rt.OAuth.Close() })
	if rt.appKey, rt.appCert, err = oauthprovider.GenerateCertificate("connmgr local app-only client", opts.Clock.Now(), 10*365*24*time.Hour, false); err != nil {
		return nil, fmt.Errorf("runtime: OAuth client certificate: %w", err)
	}
	if err := rt.OAuth.TrustCertificate(rt.appCert); err != nil {
		return nil, err
	}
	progress("OAuth provider started at " + rt.OAuth.Base())
	demo, demoSrv, err := demotarget.Start("")
	if err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	rt.closers = append(rt.closers, func() { demoSrv.Close() })
	rt.Demo, rt.DemoURL = demo, demoSrv.URL
	progress("demo target API started at " + rt.DemoURL)
	rt.clients = oauth.NewRegistry(store.New(rt.Stack.DynamoDBClient(), rt.Stack.TableName, opts.Clock.Now),
		kmsvault.NewSealer(rt.Stack.KMSClient(), emulator.KeyAlias), oauth.RegistryOptions{Now: opts.Clock.Now, AllowLoopbackHTTP: true})

	routers := map[string]*httpapi.Router{}
	for _, f := range all {
		a, err := rt.buildApp(ctx, f, opts, logOut)
		if err != nil {
			return nil, err
		}
		h, err := functions.Handler(a, f.Folder)
		if err != nil {
			return nil, fmt.Errorf("runtime: %s: %w", f.LogicalID, err)
		}
		if err := rt.Lambda.Register(lambdaserver.Function{Name: f.LogicalID, Handler: lambda.NewHandler(h), Timeout: time.Duration(f.Timeout) * time.Second}); err != nil {
			return nil, err
		}
		if f.IsHTTP() {
			if routers[f.LogicalID], err = functions.Router(a, f.Folder); err != nil {
				return nil, fmt.Errorf("runtime: %s has HttpApi events in %s but functions.Router(%q) fails: %w", f.LogicalID, sam.TemplateFile, f.Folder, err)
			}
		}
	}
	progress("functions built from their template environments")
	// The bus's rules target the functions: serve it once they are registered.
	if err := si.ServeBus(rt.params); err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	rt.Bus = si.Bus
	var gwFns []gateway.Function
	for _, f := range fns {
		gf, err := gatewayFunction(f, routers[f.LogicalID])
		if err != nil {
			return nil, err
		}
		gwFns = append(gwFns, gf)
	}
	rt.Functions = fns
	gwCfg := gateway.Config{Functions: gwFns, Now: opts.Clock.Now, TokenNow: opts.Clock.Base, AccountID: emulator.AccountID, Log: logger("gateway")}
	// The stage's throttling, at the template parameters' defaults.
	if api, err := tmpl.HTTPAPI(); err == nil {
		gwCfg.ThrottleRate, gwCfg.ThrottleBurst = api.Throttle.Rate, api.Throttle.Burst
	}
	if jwtCfg != nil {
		// The template's JwtIssuer and JwtAudience parameters take the local
		// identity provider's values.
		gwCfg.JWT = &gateway.JWT{Issuer: devauth.Issuer, Audience: []string{devauth.Audience}, Key: rt.Tokens.PublicKey}
	}
	if rt.Gateway, err = gateway.New(gwCfg); err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	// Every tenant that gets a token has the local provider as its
	// oauth2-generic and SharePoint clients, so the whole OAuth flow works
	// on one machine.
	rt.Tokens.OnMint = func(c devauth.Claims) {
		if tid, _ := c["tid"].(string); tid != "" {
			if err := rt.RegisterOAuthClient(context.Background(), tid); err != nil {
				logger("runtime").Error("register the local OAuth client", slog.String("tenant", tid), slog.String("error", err.Error()))
			}
		}
	}
	// Not a ServeMux: it would clean and redirect paths API Gateway passes on.
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case devauth.TokenPath:
			rt.Tokens.ServeHTTP(w, r)
		case ClockPath:
			rt.serveClock(w, r)
		case EventsPath:
			eventbus.EventsHandler(rt.Bus).ServeHTTP(w, r)
		case ServicesPath:
			rt.serveServices(w, r)
		default:
			rt.Gateway.ServeHTTP(w, r)
		}
	})
	rt.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := rt.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			rt.serveErr <- err
		}
		close(rt.serveErr)
	}()
	progress("API gateway serving " + rt.URL)
	return rt, nil
}

// StateMachineARN is the local ARN of the template's state machine id.
func (rt *Runtime) StateMachineARN(id string) string { return rt.standins.StateMachineARN(id) }

// RegisterOAuthClient makes the local OAuth provider the tenant's client
// of the oauth2-generic, sharepoint-online and sharepoint-online-app types
// (no change to a type that has a registration). It stands in for the
// Microsoft identity platform through the registrations' endpoint
// overrides, so they name no directory tenant; the app-only client
// authenticates with the runtime's certificate.
func (rt *Runtime) RegisterOAuthClient(ctx context.Context, tenant string) error {
	admin := identity.Caller{Tenant: tenant, User: "connmgr-local", TenantAdmin: true}
	regs := []struct {
		typ string
		in  oauth.ClientInput
	}{
		{"oauth2-generic", oauth.ClientInput{ClientID: rt.OAuth.ClientID(), ClientSecret: secret.New(rt.OAuth.ClientSecret()),
			AuthorizeURL: rt.OAuth.AuthorizeURL(), TokenURL: rt.OAuth.TokenURL(), Scopes: []string{"openid", "offline_access"}}},
		{"sharepoint-online", oauth.ClientInput{ClientID: rt.OAuth.ClientID(), ClientSecret: secret.New(rt.OAuth.ClientSecret()),
			AuthorizeURL: rt.OAuth.AuthorizeURL(), TokenURL: rt.OAuth.TokenURL()}},
		{"sharepoint-online-app", oauth.ClientInput{ClientID: rt.OAuth.ClientID(), ClientCertificate: string(rt.appCert),
			ClientPrivateKey: secret.New(string(rt.appKey)), TokenURL: rt.OAuth.TokenURL()}},
	}
	for _, r := range regs {
		_, err := rt.clients.Get(ctx, admin, r.typ)
		if apperr.Is(err, apperr.NotFound) {
			_, err = rt.clients.Put(ctx, admin, r.typ, r.in, 0)
		}
		if err != nil && !apperr.Is(err, apperr.Conflict) {
			return fmt.Errorf("runtime: register the local %s client: %w", r.typ, err)
		}
	}
	return nil
}

// httpFunctions are the template's functions with HttpApi routes, and the
// JWT authorizer their non-public routes use.
func httpFunctions(tmpl *sam.Template) ([]sam.Function, *sam.JWTAuthorizer, error) {
	all, err := tmpl.Functions()
	if err != nil {
		return nil, nil, err
	}
	var fns []sam.Function
	needsJWT := false
	for _, f := range all {
		if !f.IsHTTP() {
			continue
		}
		if f.Folder == "" {
			return nil, nil, fmt.Errorf("runtime: function %s does not follow the naming convention <Folder in CamelCase>Function", f.LogicalID)
		}
		for _, r := range f.Routes {
			if strings.HasPrefix(r.Path, "/dev/") || r.Path == "/dev" {
				return nil, nil, fmt.Errorf("runtime: %s declares %s: /dev/ is reserved for the local runtime", f.LogicalID, r.Key())
			}
			needsJWT = needsJWT || !r.Public
		}
		fns = append(fns, f)
	}
	if !needsJWT {
		return fns, nil, nil
	}
	api, err := tmpl.HTTPAPI()
	if err != nil {
		return nil, nil, err
	}
	for _, f := range fns {
		for _, r := range f.Routes {
			if r.Public {
				continue
			}
			a, ok := api.Authorizers[r.Authorizer]
			if !ok {
				return nil, nil, fmt.Errorf("runtime: %s %s uses authorizer %s, which is not a JWT authorizer of %s", f.LogicalID, r.Key(), r.Authorizer, api.LogicalID)
			}
			if a.IdentitySource != IdentitySource {
				return nil, nil, fmt.Errorf("runtime: authorizer %s reads %s; the local gateway supports only %s", a.Name, a.IdentitySource, IdentitySource)
			}
		}
	}
	jwt, err := api.DefaultJWTAuthorizer()
	if err != nil {
		return nil, nil, err
	}
	return fns, &jwt, nil
}

// buildApp builds f's application the way its main does: LoadConfig over
// the template's environment for f, each reference resolved to its local
// counterpart, with the optional endpoints pointing at the emulators.
func (rt *Runtime) buildApp(ctx context.Context, f sam.Function, opts Options, logOut io.Writer) (*app.App, error) {
	env, err := rt.standins.Env(f, rt.params)
	if err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	cfg, err := app.LoadConfig(f.Folder, func(name string) string { return env[name] })
	if err != nil {
		return nil, fmt.Errorf("runtime: %s: %w", f.LogicalID, err)
	}
	awsCfg := rt.Stack.AWS.Copy()
	awsCfg.APIOptions = append(awsCfg.APIOptions, rt.Calls.record(f.LogicalID))
	if opts.FunctionHTTP != nil {
		if c := opts.FunctionHTTP(f.LogicalID); c != nil {
			awsCfg.HTTPClient = c
		}
	}
	a, err := app.New(ctx, cfg, app.Options{AWS: &awsCfg, Now: opts.Clock.Now, LogOutput: logOut})
	if err != nil {
		return nil, fmt.Errorf("runtime: build %s: %w", f.LogicalID, err)
	}
	return a, nil
}

// gatewayFunction checks f's router against the template and returns what
// the gateway serves for it.
func gatewayFunction(f sam.Function, router *httpapi.Router) (gateway.Function, error) {
	tmplKeys, codeKeys := f.RouteKeys(), router.Routes()
	if onlyTmpl, onlyCode := minus(tmplKeys, codeKeys), minus(codeKeys, tmplKeys); len(onlyTmpl)+len(onlyCode) > 0 {
		return gateway.Function{}, fmt.Errorf("runtime: %s routes differ: only in %s %q, only in the code %q", f.LogicalID, sam.TemplateFile, onlyTmpl, onlyCode)
	}
	for _, r := range f.Routes {
		if r.Public != router.IsPublic(r.Key()) {
			return gateway.Function{}, fmt.Errorf("runtime: %s %s: public in %s is %v, in the code %v", f.LogicalID, r.Key(), sam.TemplateFile, r.Public, router.IsPublic(r.Key()))
		}
	}
	return gateway.Function{Name: f.Folder, Routes: f.Routes, Handler: router.Serve, Timeout: time.Duration(f.Timeout) * time.Second}, nil
}

// minus lists the elements of a not in b.
func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// Done reports a failure of the HTTP server; it is closed on Close.
func (rt *Runtime) Done() <-chan error { return rt.serveErr }

// Close stops serving and stops every service.
func (rt *Runtime) Close() error {
	rt.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rt.closeErr = rt.srv.Shutdown(ctx)
		rt.stop()
	})
	return rt.closeErr
}

// stop closes what Start opened, newest first.
func (rt *Runtime) stop() {
	for i := len(rt.closers) - 1; i >= 0; i-- {
		rt.closers[i]()
	}
	rt.closers = nil
}

// Token mints a local identity token, as POST /dev/token does.
func (rt *Runtime) Token(claims devauth.Claims) (string, error) {
	tok, _, err := rt.Tokens.Mint(claims)
	return tok, err
}

func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("runtime: address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("runtime: address %q is not loopback: the local runtime serves 127.0.0.1 only", addr)
}
