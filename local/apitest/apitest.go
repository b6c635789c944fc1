// Package apitest runs the functions' real handlers over the DynamoDB and
// KMS emulators for tests (on the backend CONNMGR_TEST_BACKEND names, see
// local/stacktest): requests are built as API Gateway would build
// them (route key, path parameters, lower-cased headers, JWT claims in the
// authorizer context) and every log line is captured for leak checks.
package apitest

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/connmgr/connmgr/local/clock"
	"github.com/connmgr/connmgr/local/emulator"
	"github.com/connmgr/connmgr/local/eventbus"
	"github.com/connmgr/connmgr/local/lambdaserver"
	"github.com/connmgr/connmgr/local/logbuf"
	"github.com/connmgr/connmgr/local/stacktest"
	"github.com/connmgr/connmgr/shared/app"
	"github.com/connmgr/connmgr/shared/app/functions"
	"github.com/connmgr/connmgr/shared/httpaction"
	"github.com/connmgr/connmgr/shared/httpapi"
	"github.com/connmgr/connmgr/shared/identity"
)

// Env is one function's application over fresh emulators.
type Env struct {
	t      testing.TB
	Stack  *emulator.Stack
	App    *app.App
	Router *httpapi.Router
	Clock  *clock.Clock
	Logs   *logbuf.Buffer
	Bus    *eventbus.Bus // the events the function put
	// EventsURL serves the bus's PutEvents.
	EventsURL string
	cfg       app.Config
	DDB       *emulator.Counter
	KMS       *emulator.Counter
	// Trips counts the sequential round trips of DDB's and KMS's calls.
	Trips *emulator.RoundTrips
}

// Start builds function's application over new emulators; they stop when
// the test ends.
func Start(t testing.TB, function string) *Env {
	t.Helper()
	return StartWith(t, function, nil)
}

// StartWith is Start with the configuration adjusted by adjust (nil: as
// Start), for example to deploy with public target networks only.
func StartWith(t testing.TB, function string, adjust func(*app.Config)) *Env {
	t.Helper()
	ctx := context.Background()
	// The backend CONNMGR_TEST_BACKEND names: minidyn, or moto.
	stack := stacktest.StartStack(t)
	var err error
	trips := &emulator.RoundTrips{}
	e := &Env{t: t, Stack: stack, Clock: clock.New(), Logs: &logbuf.Buffer{},
		DDB: &emulator.Counter{Trips: trips}, KMS: &emulator.Counter{Trips: trips}, Trips: trips}
	// A bus without rules: it keeps every event put, for assertions.
	if e.Bus, err = eventbus.New(eventbus.Options{Invoker: lambdaserver.NewRegistry(lambdaserver.Options{Clock: e.Clock}), Clock: e.Clock}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Bus.Close)
	bsrv, err := eventbus.Start("", e.Bus)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bsrv.Close() })
	cfg := app.Config{Function: function, TableName: stack.TableName, KMSKeyID: stack.KeyAlias,
		DynamoDBEndpoint: stack.DynamoDB.URL, KMSEndpoint: stack.KMS.URL,
		// Requests that reach the resolver are tested on the whole runtime (local/runtime).
		OAuthRedirectURI: "http://127.0.0.1:3000/oauth/callback", ResolveFunction: "ResolveFunction",
		TargetNetworks: httpaction.Loopback, EventBusName: "EventBus", EventsEndpoint: bsrv.URL}
	if adjust != nil {
		adjust(&cfg)
	}
	e.EventsURL, e.cfg = bsrv.URL, cfg
	e.App, err = app.New(ctx, cfg, app.Options{
		AWS: &stack.AWS, Now: e.Clock.Now, LogOutput: e.Logs,
		ClientOptions: []any{
			func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, e.DDB.Middleware) },
			func(o *kms.Options) { o.APIOptions = append(o.APIOptions, e.KMS.Middleware) },
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if e.Router, err = functions.Router(e.App, function); err != nil {
		t.Fatal(err)
	}
	return e
}

// Config is the function's configuration over the emulators.
func (e *Env) Config() app.Config { return e.cfg }

// Caller describes whom a request comes from; it becomes JWT claims.
type Caller struct {
	Tenant, User    string
	TenantAdmin     bool
	SiteCollections []string
	OwnedSites      []string
	Sites           []string
}

// Claims renders the caller as API Gateway's JWT authorizer hands claims
// to a Lambda: arrays flattened to "[a b]".
func (c Caller) Claims() map[string]string {
	m := map[string]string{"sub": c.User, "tid": c.Tenant, "iss": "https://issuer.test", "aud": "connmgr"}
	if c.TenantAdmin {
		m["roles"] = identity.FormatList([]string{identity.RoleTenantAdmin})
	}
	m["sca"] = identity.FormatList(c.SiteCollections)
	m["owns"] = identity.FormatList(c.OwnedSites)
	m["sites"] = identity.FormatList(c.Sites)
	return m
}

// Response is a handler's answer.
type Response struct {
	Status  int
	Headers map[string]string
	Body    []byte
}

// Decode unmarshals the body into v, failing the test on error.
func (r Response) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %d response %s: %v", r.Status, r.Body, err)
	}
}

// ErrorCode returns the error code of an error response.
func (r Response) ErrorCode() string {
	var e struct {
		Error struct{ Code, Field string } `json:"error"`
	}
	json.Unmarshal(r.Body, &e)
	return e.Error.Code
}

// ErrorField returns the field of an error response.
func (r Response) ErrorField() string {
	var e struct {
		Error struct{ Code, Field string } `json:"error"`
	}
	json.Unmarshal(r.Body, &e)
	return e.Error.Field
}

// Request is one API call. Body is marshalled as JSON unless it is a
// string, which is sent as is.
type Request struct {
	Method, Path string
	Caller       *Caller // nil: no authorizer context
	Body         any
	Headers      map[string]string
}

// Do sends req through the router as API Gateway would, the event
// round-tripped through JSON like a Lambda invocation.
func (e *Env) Do(req Request) Response {
	e.t.Helper()
	return Do(e.t, e.Router, req)
}

// Do sends req to rt.
func Do(t testing.TB, rt *httpapi.Router, req Request) Response {
	t.Helper()
	path, rawQuery, _ := strings.Cut(req.Path, "?")
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RawPath: path, RawQueryString: rawQuery,
		Headers: map[string]string{},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RequestID: "test-" + time.Now().Format("150405.000000"),
			HTTP:      events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: req.Method, Path: path},
		},
	}
	key, params, ok := httpapi.Match(rt.Routes(), req.Method, path)
	if ok {
		ev.RouteKey, ev.PathParameters = key, params
	} else {
		ev.RouteKey = "$default"
	}
	ev.RequestContext.RouteKey = ev.RouteKey
	if rawQuery != "" {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			t.Fatal(err)
		}
		ev.QueryStringParameters = map[string]string{}
		for k, v := range q {
			ev.QueryStringParameters[k] = strings.Join(v, ",")
		}
	}
	switch b := req.Body.(type) {
	case nil:
	case string:
		ev.Body = b
		ev.Headers["content-type"] = "application/json"
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		ev.Body = string(raw)
		ev.Headers["content-type"] = "application/json"
	}
	for k, v := range req.Headers {
		ev.Headers[strings.ToLower(k)] = v
	}
	if req.Caller != nil {
		ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
			JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: req.Caller.Claims()},
		}
	}
	// Round-trip as Lambda would deliver it.
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var delivered events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &delivered); err != nil {
		t.Fatal(err)
	}
	out, err := rt.Serve(context.Background(), delivered)
	if err != nil {
		t.Fatalf("%s %s: handler error %v", req.Method, req.Path, err)
	}
	return Response{Status: out.StatusCode, Headers: out.Headers, Body: []byte(out.Body)}
}
