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

	"github.com/connmgr/connmgr/local/clock"
	"github.com/connmgr/connmgr/local/devauth"
	"github.com/connmgr/connmgr/local/emulator"
	"github.com/connmgr/connmgr/local/gateway"
	"github.com/connmgr/connmgr/local/sam"
	"github.com/connmgr/connmgr/shared/app"
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

	srv       *http.Server
	serveErr  chan error
	closeOnce sync.Once
	closeErr  error
}

// Start builds and serves the system; Close stops it.
func Start(ctx context.Context, opts Options) (*Runtime, error) {
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
	logOut := &lockedWriter{w: opts.Log}
	root := opts.Root
	if root == "" {
		var err error
		if root, err = sam.FindRoot(); err != nil {
			return nil, err
		}
	}
	tmpl, err := sam.Load(root)
	if err != nil {
		return nil, err
	}
	rt := &Runtime{Template: tmpl, Clock: opts.Clock, serveErr: make(chan error, 1)}
	fns, jwtCfg, err := httpFunctions(tmpl)
	if err != nil {
		return nil, err
	}
	if rt.Tokens, err = devauth.New(opts.Clock.Now); err != nil {
		return nil, err
	}
	if rt.Stack, err = emulator.Start(ctx, tmpl, emulator.StackOptions{}); err != nil {
		return nil, fmt.Errorf("runtime: emulators: %w", err)
	}
	var gwFns []gateway.Function
	for _, f := range fns {
		gf, err := rt.buildFunction(ctx, f, opts, logOut)
		if err != nil {
			rt.Stack.Close()
			return nil, err
		}
		gwFns = append(gwFns, gf)
	}
	rt.Functions = fns
	gwCfg := gateway.Config{
		Functions: gwFns, Now: opts.Clock.Now, AccountID: emulator.AccountID,
		Log: slog.New(slog.NewJSONHandler(logOut, nil)).With(slog.String("component", "gateway")),
	}
	if jwtCfg != nil {
		// The template's JwtIssuer and JwtAudience parameters take the local
		// identity provider's values.
		gwCfg.JWT = &gateway.JWT{Issuer: devauth.Issuer, Audience: []string{devauth.Audience}, Key: rt.Tokens.PublicKey}
	}
	if rt.Gateway, err = gateway.New(gwCfg); err != nil {
		rt.Stack.Close()
		return nil, fmt.Errorf("runtime: %w", err)
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		rt.Stack.Close()
		return nil, fmt.Errorf("runtime: listen on %s: %w", opts.Addr, err)
	}
	rt.URL = "http://" + ln.Addr().String()
	// Not a ServeMux: it would clean and redirect paths API Gateway passes on.
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == devauth.TokenPath {
			rt.Tokens.ServeHTTP(w, r)
			return
		}
		rt.Gateway.ServeHTTP(w, r)
	})
	rt.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := rt.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			rt.serveErr <- err
		}
		close(rt.serveErr)
	}()
	return rt, nil
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

// buildFunction builds f's application the way its main does, over the
// emulators, and checks its router against the template.
func (rt *Runtime) buildFunction(ctx context.Context, f sam.Function, opts Options, logOut io.Writer) (gateway.Function, error) {
	cfg := app.Config{
		Function: f.Folder, LogLevel: opts.LogLevel,
		TableName: rt.Stack.TableName, KMSKeyID: emulator.KeyAlias,
		DynamoDBEndpoint: rt.Stack.DynamoDB.URL, KMSEndpoint: rt.Stack.KMS.URL,
	}
	a, err := app.New(ctx, cfg, app.Options{AWS: &rt.Stack.AWS, Now: opts.Clock.Now, LogOutput: logOut})
	if err != nil {
		return gateway.Function{}, fmt.Errorf("runtime: build %s: %w", f.LogicalID, err)
	}
	router, err := a.Router(f.Folder)
	if err != nil {
		return gateway.Function{}, fmt.Errorf("runtime: %s has HttpApi events in %s but app.Router(%q) fails: %w", f.LogicalID, sam.TemplateFile, f.Folder, err)
	}
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

// Close stops serving and stops the emulators.
func (rt *Runtime) Close() error {
	rt.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rt.closeErr = rt.srv.Shutdown(ctx)
		rt.Stack.Close()
	})
	return rt.closeErr
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

// lockedWriter serialises log lines written by several loggers.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
