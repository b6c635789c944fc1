// Package gateway is the local stand-in for API Gateway HTTP API: it serves
// the routes template.yaml declares, authenticates them as the JWT
// authorizer would, turns each request into the payload 2.0 event API
// Gateway sends a Lambda (round-tripped through JSON like a real
// invocation) and turns the function's answer back into an HTTP response.
//
// Its own answers copy API Gateway's: 404 {"message":"Not Found"}, 401
// {"message":"Unauthorized"}, 500 {"message":"Internal Server Error"}.
//
// It never logs request or response bodies, query strings, cookies or the
// Authorization header.
package gateway

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/connmgr/connmgr/local/sam"
	"github.com/connmgr/connmgr/shared/httpapi"
)

// MaxBodyBytes is API Gateway HTTP API's payload limit.
const MaxBodyBytes = 10 << 20

// Lambda is a function's handler as the Lambda runtime calls it
// (httpapi.Router.Serve).
type Lambda func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// Function is one HTTP function: the routes the template gives it and its handler.
type Function struct {
	Name    string // folder under functions/, for logs
	Routes  []sam.Route
	Handler Lambda
	// Timeout is the function's configured timeout; 0 means none.
	Timeout time.Duration
}

// Config builds a Gateway.
type Config struct {
	Functions []Function
	// JWT verifies the tokens of every route that is not public.
	JWT *JWT
	// Now is the clock for event times, and for token checks unless
	// TokenNow is set.
	Now func() time.Time
	// TokenNow, when set, is the clock tokens are checked against (the
	// local runtime's issuer mints on a clock its moves do not age).
	TokenNow func() time.Time
	// Log receives one line per request; nil discards.
	Log *slog.Logger
	// ThrottleRate and ThrottleBurst are the stage's throttling
	// (requests a second, and at once); zero: none.
	ThrottleRate  float64
	ThrottleBurst int
	// AccountID and APIID fill the event's requestContext.
	AccountID, APIID string
}

type route struct {
	sam.Route
	fn *Function
}

// Gateway is an http.Handler serving the template's routes.
type Gateway struct {
	cfg    Config
	keys   []string
	routes map[string]route
	stage  *bucket
}

// New checks cfg: every route key belongs to one function, every function
// has a handler, and non-public routes have a JWT configuration.
func New(cfg Config) (*Gateway, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TokenNow == nil {
		cfg.TokenNow = cfg.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.APIID == "" {
		cfg.APIID = "local"
	}
	g := &Gateway{cfg: cfg, routes: map[string]route{}}
	for i := range cfg.Functions {
		fn := &g.cfg.Functions[i]
		if fn.Handler == nil {
			return nil, fmt.Errorf("gateway: function %s has no handler", fn.Name)
		}
		for _, r := range fn.Routes {
			key := r.Key()
			if prev, dup := g.routes[key]; dup {
				return nil, fmt.Errorf("gateway: route %s is declared by both %s and %s", key, prev.fn.Name, fn.Name)
			}
			if !r.Public && cfg.JWT == nil {
				return nil, fmt.Errorf("gateway: route %s needs the JWT authorizer but none is configured", key)
			}
			g.routes[key] = route{Route: r, fn: fn}
			g.keys = append(g.keys, key)
		}
	}
	slices.Sort(g.keys)
	g.stage = newBucket(cfg.ThrottleRate, cfg.ThrottleBurst)
	return g, nil
}

// RouteKeys lists the served route keys, sorted.
func (g *Gateway) RouteKeys() []string { return slices.Clone(g.keys) }

// ServeHTTP routes, authenticates and invokes, in API Gateway's order.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	reqID := requestID()
	w.Header().Set("Apigw-Requestid", reqID)
	status, key, fn, note := g.serve(w, r, reqID)
	attrs := []any{
		slog.String("requestId", reqID), slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Int("status", status), slog.Duration("duration", time.Since(start)),
	}
	if key != "" {
		attrs = append(attrs, slog.String("route", key))
	}
	if fn != "" {
		attrs = append(attrs, slog.String("function", fn))
	}
	if note != "" {
		attrs = append(attrs, slog.String("reason", note))
	}
	g.cfg.Log.Info("gateway", attrs...)
}

func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, reqID string) (status int, key, fn, note string) {
	key, params, ok := httpapi.Match(g.keys, r.Method, r.URL.EscapedPath())
	if !ok {
		return message(w, http.StatusNotFound, "Not Found"), "", "", ""
	}
	rt := g.routes[key]
	fn = rt.fn.Name
	if !g.stage.take() {
		return message(w, http.StatusTooManyRequests, "Too Many Requests"), key, fn, "stage throttled"
	}
	var claims *events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription
	if !rt.Public {
		var err error
		claims, err = g.cfg.JWT.Verify(r.Header.Values("Authorization"), g.cfg.TokenNow())
		if err != nil {
			var ae *AuthError
			if errors.As(err, &ae) && ae.Description != "" {
				w.Header().Set("Www-Authenticate", fmt.Sprintf(`Bearer scope="" error="invalid_token" error_description=%q`, ae.Description))
			}
			return message(w, http.StatusUnauthorized, "Unauthorized"), key, fn, err.Error()
		}
		if len(rt.Scopes) > 0 && !slices.ContainsFunc(rt.Scopes, func(s string) bool { return slices.Contains(claims.Scopes, s) }) {
			w.Header().Set("Www-Authenticate", `Bearer scope="`+strings.Join(rt.Scopes, " ")+`" error="insufficient_scope" error_description="the token does not have the required scopes"`)
			return message(w, http.StatusForbidden, "Forbidden"), key, fn, "insufficient scope"
		}
	}
	ev, err := buildEvent(r, eventInput{
		routeKey: key, params: params, now: g.cfg.Now(), requestID: reqID,
		accountID: g.cfg.AccountID, apiID: g.cfg.APIID, jwt: claims,
	})
	if errors.Is(err, errTooLarge) {
		return message(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large"), key, fn, ""
	}
	if err != nil {
		return message(w, http.StatusBadRequest, "Bad Request"), key, fn, err.Error()
	}
	resp, err := g.invoke(r.Context(), rt.fn, ev)
	if err != nil {
		return message(w, http.StatusInternalServerError, "Internal Server Error"), key, fn, err.Error()
	}
	if err := writeResponse(w, resp); err != nil {
		return message(w, http.StatusInternalServerError, "Internal Server Error"), key, fn, err.Error()
	}
	return resp.StatusCode, key, fn, ""
}

// invoke delivers ev as the Lambda runtime would: marshalled to JSON and
// back, and the response likewise; a panic, an error or a timeout is a
// failed invocation.
func (g *Gateway) invoke(ctx context.Context, fn *Function, ev events.APIGatewayV2HTTPRequest) (resp events.APIGatewayV2HTTPResponse, err error) {
	payload, err := json.Marshal(ev)
	if err != nil {
		return resp, fmt.Errorf("marshal event: %w", err)
	}
	var delivered events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(payload, &delivered); err != nil {
		return resp, fmt.Errorf("unmarshal event: %w", err)
	}
	ctx = context.WithoutCancel(ctx) // a Lambda runs on when the client goes away
	// The runtime hands every invocation its own request id, as Lambda does.
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: newRequestID(),
		InvokedFunctionArn: "arn:aws:lambda:us-east-1:" + g.cfg.AccountID + ":function:" + fn.Name})
	if fn.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, fn.Timeout)
		defer cancel()
	}
	out, err := func() (out events.APIGatewayV2HTTPResponse, err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("function panicked: %v", p)
			}
		}()
		return fn.Handler(ctx, delivered)
	}()
	if err != nil {
		return resp, fmt.Errorf("function error: %w", err)
	}
	if ctx.Err() != nil {
		return resp, fmt.Errorf("function timed out after %s", fn.Timeout)
	}
	raw, err := json.Marshal(out)
	if err != nil {
		return resp, fmt.Errorf("marshal response: %w", err)
	}
	if err := json.Unmarshal(raw, &resp); err != nil {
		return resp, fmt.Errorf("unmarshal response: %w", err)
	}
	if resp.StatusCode < 100 || resp.StatusCode > 599 {
		return resp, fmt.Errorf("function returned status %d", resp.StatusCode)
	}
	return resp, nil
}

func writeResponse(w http.ResponseWriter, resp events.APIGatewayV2HTTPResponse) error {
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		var err error
		if body, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			return fmt.Errorf("response body is not valid base64")
		}
	}
	h := w.Header()
	for k, v := range resp.Headers {
		h.Set(k, v)
	}
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	for _, c := range resp.Cookies {
		h.Add("Set-Cookie", c)
	}
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = nil // no sniffing: API Gateway adds no type either
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(body) // an error here is a client gone away: nothing left to answer
	return nil
}

// message writes one of API Gateway's own answers.
func message(w http.ResponseWriter, status int, msg string) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"message": msg})
	w.Write(b)
	return status
}

func requestID() string {
	var b [10]byte
	rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// newRequestID is a random UUID (version 4), the shape of Lambda's request ids.
func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
