// Package httpapi serves API Gateway HTTP API (payload 2.0) requests: routing
// by route key, the caller's identity from the JWT authorizer, strict JSON
// decoding, and the single place errors become responses.
//
// It never logs request or response bodies: they may hold credentials.
package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/identity"
)

// MaxBodyBytes bounds every request body.
const MaxBodyBytes = 64 << 10

// Request is an API Gateway request with the authenticated caller (zero for
// public routes).
type Request struct {
	events.APIGatewayV2HTTPRequest
	Caller identity.Caller
}

// Response is what a handler answers. Body is marshalled as JSON unless HTML
// or Bytes is set.
type Response struct {
	Status  int
	Headers map[string]string
	Body    any
	HTML    string
	// Bytes is a body sent as is (base64 in the Lambda response, as API
	// Gateway takes binary bodies); Headers give its Content-Type.
	Bytes []byte
}

// HandlerFunc serves one route.
type HandlerFunc func(ctx context.Context, r *Request) (Response, error)

// Router dispatches on the route key API Gateway puts in each event.
type Router struct {
	log    *slog.Logger
	routes map[string]route
}

type route struct {
	h      HandlerFunc
	public bool
}

// NewRouter returns an empty router that logs through log.
func NewRouter(log *slog.Logger) *Router {
	return &Router{log: log, routes: map[string]route{}}
}

// Handle registers an authenticated route such as "GET /connections/{id}".
func (rt *Router) Handle(routeKey string, h HandlerFunc) { rt.add(routeKey, h, false) }

// HandlePublic registers a route that API Gateway serves without the JWT authorizer.
func (rt *Router) HandlePublic(routeKey string, h HandlerFunc) { rt.add(routeKey, h, true) }

func (rt *Router) add(key string, h HandlerFunc, public bool) {
	if _, dup := rt.routes[key]; dup {
		panic("httpapi: duplicate route " + key)
	}
	rt.routes[key] = route{h: h, public: public}
}

// Admit makes check run before the handlers of routeKeys, after the caller
// is authenticated and within the request's budget; an error from it is
// the answer (a tenant's rate limit, for one). Call it once the routes are
// registered: an unknown route key panics.
func (rt *Router) Admit(check func(ctx context.Context, r *Request) error, routeKeys ...string) {
	for _, k := range routeKeys {
		r, ok := rt.routes[k]
		if !ok {
			panic("httpapi: Admit on unknown route " + k)
		}
		h := r.h
		r.h = func(ctx context.Context, req *Request) (Response, error) {
			if err := check(ctx, req); err != nil {
				return Response{}, err
			}
			return h(ctx, req)
		}
		rt.routes[k] = r
	}
}

// Routes lists the route keys served, sorted, for the template contract.
func (rt *Router) Routes() []string {
	keys := make([]string, 0, len(rt.routes))
	for k := range rt.routes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// IsPublic reports whether a route is served without authentication.
func (rt *Router) IsPublic(routeKey string) bool { return rt.routes[routeKey].public }

// Serve is the Lambda handler.
func (rt *Router) Serve(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	start := time.Now()
	key := ev.RouteKey
	if key == "" || key == "$default" {
		key = ev.RequestContext.RouteKey
	}
	req := &Request{APIGatewayV2HTTPRequest: ev}
	var (
		resp Response
		err  error
	)
	r, ok := rt.routes[key]
	switch {
	case !ok:
		err = apperr.E(apperr.NotFound, "route_not_found", "no such route")
	case !r.public:
		req.Caller, err = identity.FromClaims(claims(ev))
	}
	if err == nil {
		resp, err = callWithin(ctx, r.h, req)
	}
	out := rt.write(ctx, resp, err)
	attrs := []any{
		slog.String("route", key),
		slog.Int("status", out.StatusCode),
		slog.String("apiRequestId", ev.RequestContext.RequestID), // API Gateway's; requestId is Lambda's (package logging)
		slog.Duration("duration", time.Since(start)),
	}
	if req.Caller.Tenant != "" {
		attrs = append(attrs, slog.String("tenant", req.Caller.Tenant), slog.String("user", req.Caller.User))
	}
	switch {
	case err == nil:
		rt.log.InfoContext(ctx, "request", attrs...)
	case slices.Contains([]apperr.Kind{apperr.Internal, apperr.Unavailable, apperr.Throttled}, apperr.KindOf(err)):
		rt.log.ErrorContext(ctx, "request failed", append(attrs, slog.String("error", err.Error()))...)
	default:
		rt.log.WarnContext(ctx, "request rejected", append(attrs, slog.String("code", apperr.As(err).Code))...)
	}
	return out, nil
}

// Budget is how much of the invocation a request may spend: the Lambda
// deadline less a margin (a tenth of the time left, between MinMargin and
// MaxMargin) kept to answer in, so a request out of time answers 503
// itself instead of the function timing out (API Gateway's 500 or 503
// after the whole timeout). It never lengthens ctx.
func Budget(ctx context.Context) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	margin := min(max(time.Until(dl)/10, MinMargin), MaxMargin)
	return context.WithDeadline(ctx, dl.Add(-margin))
}

// The bounds of the margin Budget keeps before the Lambda deadline.
const (
	MinMargin = 100 * time.Millisecond
	MaxMargin = time.Second
)

// callWithin runs h within the request's Budget. A handler still working
// when the budget ends is left to finish on its own (its context is
// done, so its AWS calls return at once) and the request answers 503
// timeout: an answer the client can retry beats a Lambda timeout.
func callWithin(ctx context.Context, h HandlerFunc, r *Request) (Response, error) {
	ctx, cancel := Budget(ctx)
	defer cancel()
	type result struct {
		resp Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := safeCall(ctx, h, r)
		done <- result{resp, err}
	}()
	select {
	case res := <-done:
		if res.err != nil && ctx.Err() != nil && apperr.KindOf(res.err) == apperr.Internal {
			// An unclassified failure once out of time is the timeout
			// (a wrapped context error, or a call cut short by it).
			res.err = apperr.Wrap(apperr.Unavailable, apperr.ErrTimeout.Code, apperr.ErrTimeout.Message, res.err)
		}
		return res.resp, res.err
	case <-ctx.Done():
		return Response{}, apperr.Wrap(apperr.Unavailable, apperr.ErrTimeout.Code, apperr.ErrTimeout.Message, context.Cause(ctx))
	}
}

func safeCall(ctx context.Context, h HandlerFunc, r *Request) (resp Response, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in handler: %v", p)
		}
	}()
	return h(ctx, r)
}

func claims(ev events.APIGatewayV2HTTPRequest) map[string]string {
	if a := ev.RequestContext.Authorizer; a != nil && a.JWT != nil {
		return a.JWT.Claims
	}
	return nil
}

func (rt *Router) write(ctx context.Context, resp Response, err error) events.APIGatewayV2HTTPResponse {
	if err != nil {
		e := apperr.As(err)
		resp = JSON(e.Kind.Status(), ErrorBody(e))
		switch e.Kind {
		case apperr.Unauthenticated:
			resp.Headers = map[string]string{"WWW-Authenticate": "Bearer"}
		case apperr.RateLimited, apperr.Throttled, apperr.Unavailable:
			// Retryable: the same request may succeed shortly.
			resp.Headers = map[string]string{"Retry-After": retryAfter(e.RetryAfter)}
		}
	}
	headers := map[string]string{
		"Cache-Control":          "no-store",
		"X-Content-Type-Options": "nosniff",
	}
	var body string
	binary := false
	if resp.Bytes != nil {
		body, binary = base64.StdEncoding.EncodeToString(resp.Bytes), true
	} else if resp.HTML != "" {
		headers["Content-Type"] = "text/html; charset=utf-8"
		headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
		body = resp.HTML
	} else if resp.Body != nil {
		b, merr := json.Marshal(resp.Body)
		if merr != nil {
			rt.log.ErrorContext(ctx, "marshal response", slog.String("error", merr.Error()))
			resp.Status = http.StatusInternalServerError
			b, _ = json.Marshal(ErrorBody(apperr.As(merr)))
		}
		headers["Content-Type"] = "application/json"
		body = string(b)
	}
	for k, v := range resp.Headers {
		headers[k] = v
	}
	if resp.Status == 0 {
		resp.Status = http.StatusOK
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: resp.Status, Headers: headers, Body: body, IsBase64Encoded: binary}
}

// RetryAfterSeconds is the Retry-After of a 429 or 503 answer whose error
// says no better.
const RetryAfterSeconds = "1"

// retryAfter is d in whole seconds, rounded up (Retry-After has no
// fractions), or the default.
func retryAfter(d time.Duration) string {
	if d <= 0 {
		return RetryAfterSeconds
	}
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

// ErrorBody is the JSON shape of every error response.
func ErrorBody(e *apperr.Error) map[string]any {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Kind.Status())
	}
	inner := map[string]any{"code": e.Code, "message": msg}
	if e.Field != "" {
		inner["field"] = e.Field
	}
	if e.Details != nil {
		inner["details"] = e.Details
	}
	return map[string]any{"error": inner}
}

// JSON answers status with v as the body.
func JSON(status int, v any) Response { return Response{Status: status, Body: v} }

// Header returns a request header (API Gateway lower-cases names).
func (r *Request) Header(name string) string {
	if v, ok := r.Headers[strings.ToLower(name)]; ok {
		return v
	}
	for k, v := range r.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// Query returns a query string parameter.
func (r *Request) Query(name string) string { return r.QueryStringParameters[name] }

// OnlyQuery refuses a request carrying a query parameter not in allowed:
// a misspelt filter must not silently widen a listing.
func (r *Request) OnlyQuery(allowed ...string) error {
	names := make([]string, 0, len(r.QueryStringParameters))
	for k := range r.QueryStringParameters {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if !slices.Contains(allowed, k) {
			return apperr.InvalidField(truncateField(k), "unknown_parameter", "unknown query parameter; this route takes %s", strings.Join(allowed, ", "))
		}
	}
	return nil
}

func truncateField(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Param returns a path parameter.
func (r *Request) Param(name string) string { return r.PathParameters[name] }

// RawBody returns the body, decoded when API Gateway base64-encoded it.
func (r *Request) RawBody() ([]byte, error) {
	if len(r.Body) > base64.StdEncoding.EncodedLen(MaxBodyBytes) {
		return nil, apperr.E(apperr.TooLarge, "body_too_large", fmt.Sprintf("the body exceeds %d bytes", MaxBodyBytes))
	}
	b := []byte(r.Body)
	if r.IsBase64Encoded {
		var err error
		if b, err = base64.StdEncoding.DecodeString(r.Body); err != nil {
			return nil, apperr.Wrap(apperr.Invalid, "malformed_body", "the body is not valid base64", err)
		}
	}
	if len(b) > MaxBodyBytes {
		return nil, apperr.E(apperr.TooLarge, "body_too_large", fmt.Sprintf("the body exceeds %d bytes", MaxBodyBytes))
	}
	return b, nil
}

// DecodeJSON reads a JSON object body into v: application/json in UTF-8
// only (415), at most MaxBodyBytes (413); valid UTF-8, no key twice at any
// depth, every key of a struct spelled exactly as its field, no unknown
// fields, no trailing data (400 with the field where one is known).
func (r *Request) DecodeJSON(v any) error {
	ct := r.Header("content-type")
	mt, params, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return apperr.E(apperr.UnsupportedMediaType, "unsupported_media_type", "send the body as application/json")
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return apperr.E(apperr.UnsupportedMediaType, "unsupported_charset", "send the body in UTF-8 (charset=utf-8, or no charset)")
	}
	b, err := r.RawBody()
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return apperr.E(apperr.Invalid, "malformed_json", "the body is empty: send a JSON object")
	}
	if err := checkEncoding(b); err != nil {
		return err
	}
	// Syntax errors first, as the decoder below reports them; then keys.
	if json.Valid(b) {
		if err := checkKeys(b, reflect.TypeOf(v)); err != nil {
			return jsonError(err)
		}
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return apperr.E(apperr.Invalid, "malformed_json", "the body holds more than one JSON value")
	}
	return nil
}

// jsonError describes a decoding failure by position and field, never by value.
func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var classified *apperr.Error
	switch {
	case errors.As(err, &classified): // from a type's own UnmarshalJSON
		return classified
	case errors.As(err, &syn):
		return apperr.Wrap(apperr.Invalid, "malformed_json", fmt.Sprintf("malformed JSON at byte %d", syn.Offset), err)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return apperr.E(apperr.Invalid, "malformed_json", "the body must be a JSON object")
		}
		return apperr.InvalidField(field, "invalid_type", "%s must be of type %s", field, jsonTypeName(typ.Type.Kind().String()))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apperr.E(apperr.Invalid, "malformed_json", "the JSON body ends early")
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		if len(name) > 64 {
			name = name[:64]
		}
		return apperr.InvalidField(name, "unknown_field", "%s is not a known field", name)
	}
	return apperr.E(apperr.Invalid, "malformed_json", "the body is not valid JSON for this request")
}

func jsonTypeName(kind string) string {
	switch kind {
	case "map", "struct":
		return "object"
	case "slice", "array":
		return "array"
	case "int", "int64", "int32", "float64", "uint", "uint64":
		return "number"
	case "bool":
		return "boolean"
	}
	return kind
}

// ETag is the entity tag of a version of a resource.
func ETag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// IfMatch reads If-Match as a version this API issued as an ETag; absent is 0.
func (r *Request) IfMatch() (int64, error) {
	h := strings.TrimSpace(r.Header("if-match"))
	if h == "" {
		return 0, nil
	}
	h = strings.TrimPrefix(h, "W/")
	v, err := strconv.ParseInt(strings.Trim(h, `"`), 10, 64)
	if err != nil || v <= 0 || !strings.HasPrefix(h, `"`) || !strings.HasSuffix(h, `"`) {
		return 0, apperr.InvalidField("If-Match", "invalid_if_match", `If-Match must be an ETag this API returned, such as "3"`)
	}
	return v, nil
}

// Page size bounds of every list route.
const (
	DefaultPageSize = 50
	MaxPageSize     = 100
)

// PageLimit reads the limit query parameter of a list route.
func (r *Request) PageLimit() (int, error) {
	v := r.Query("limit")
	if v == "" {
		return DefaultPageSize, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxPageSize {
		return 0, apperr.InvalidField("limit", "invalid_limit", "limit must be between 1 and %d", MaxPageSize)
	}
	return n, nil
}

// Page answers one page of a list: {"items": [...], "nextCursor": "..."}.
func Page[T any](items []T, next string) Response {
	if items == nil {
		items = []T{}
	}
	body := map[string]any{"items": items}
	if next != "" {
		body["nextCursor"] = next
	}
	return JSON(http.StatusOK, body)
}
