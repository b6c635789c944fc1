package lambdaserver

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/connmgr/connmgr/local/asl"
	"github.com/connmgr/connmgr/local/clock"
)

// Defaults.
const (
	// DefaultTimeout is a function's timeout when none is given, as the
	// template's Globals would set it.
	DefaultTimeout = 30 * time.Second
	// DefaultRegion and DefaultAccountID go into ARNs; they match
	// local/emulator and local/asl.
	DefaultRegion    = "us-east-1"
	DefaultAccountID = "111122223333"
	// LatestVersion is the only version a function has.
	LatestVersion = "$LATEST"

	// Payload limits of the Invoke API.
	MaxSyncPayload  = 6 * 1024 * 1024 // RequestResponse request and response
	MaxAsyncPayload = 1024 * 1024     // Event (256 KB before October 2025)

	// ErrorTypeTimedOut is the errorType of a function stopped at its timeout.
	ErrorTypeTimedOut = "Sandbox.Timedout"
	// ErrorTypeResponseTooLarge is the errorType of a response over MaxSyncPayload.
	ErrorTypeResponseTooLarge = "Function.ResponseSizeTooLarge"
)

// DefaultAsyncRetryDelays are Lambda's waits before the two retries of a
// failed asynchronous invocation.
var DefaultAsyncRetryDelays = []time.Duration{time.Minute, 2 * time.Minute}

// Errors wrapped by the Registry's methods.
var (
	// ErrNotFound: no function by that name, or a qualifier other than $LATEST.
	ErrNotFound = errors.New("lambdaserver: function not found")
	// ErrQueueFull: Options.AsyncQueue invocations are already pending.
	ErrQueueFull = errors.New("lambdaserver: asynchronous invocation queue is full")
	// ErrClosed: the registry is closed.
	ErrClosed = errors.New("lambdaserver: registry closed")
)

// Options configure a Registry; zero values are the defaults.
type Options struct {
	// Clock measures the waits between retries of asynchronous invocations
	// (nil: real time).
	Clock *clock.Clock
	// Region and AccountID go into function ARNs (DefaultRegion,
	// DefaultAccountID).
	Region, AccountID string
	// Logger receives a line per failed asynchronous attempt and per dropped
	// invocation, and debug lines per invocation; never payloads (nil:
	// discard).
	Logger *slog.Logger
	// AsyncConcurrency bounds the asynchronous invocations running at once
	// (default 8).
	AsyncConcurrency int
	// AsyncQueue bounds the asynchronous invocations queued, running or
	// waiting to be retried (default 1000); beyond it InvokeAsync fails
	// with ErrQueueFull.
	AsyncQueue int
	// AsyncRetryDelays are the waits before each retry of an asynchronous
	// invocation that failed (nil: DefaultAsyncRetryDelays; an empty
	// non-nil slice: no retries).
	AsyncRetryDelays []time.Duration
}

// Function is a registered function.
type Function struct {
	// Name is what callers name it by: the function name in ARNs.
	Name string
	// Handler runs an invocation; lambda.NewHandler(fn) adapts any handler
	// function aws-lambda-go accepts.
	Handler lambda.Handler
	// Timeout is the function's deadline (0: DefaultTimeout).
	Timeout time.Duration
}

// Registry holds functions and invokes them. Its methods are safe for
// concurrent use.
type Registry struct {
	clock   *clock.Clock
	region  string
	account string
	log     *slog.Logger
	delays  []time.Duration
	sem     chan struct{}
	queue   int

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	funcs   map[string]*Function
	faults  FaultHook
	closed  bool
	pending int
	idle    chan struct{} // closed while pending == 0
}

var (
	_ asl.Invoker = (*Registry)(nil)
	// nameRE is Lambda's rule for function names.
	nameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
)

// NewRegistry returns an empty registry; Close stops its background work.
func NewRegistry(opts Options) *Registry {
	r := &Registry{
		clock: opts.Clock, region: opts.Region, account: opts.AccountID, log: opts.Logger,
		delays: opts.AsyncRetryDelays, queue: opts.AsyncQueue,
		funcs: map[string]*Function{}, idle: make(chan struct{}),
	}
	close(r.idle)
	if r.clock == nil {
		r.clock = clock.New()
	}
	if r.region == "" {
		r.region = DefaultRegion
	}
	if r.account == "" {
		r.account = DefaultAccountID
	}
	if r.log == nil {
		r.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if r.delays == nil {
		r.delays = DefaultAsyncRetryDelays
	}
	if r.queue <= 0 {
		r.queue = 1000
	}
	n := opts.AsyncConcurrency
	if n <= 0 {
		n = 8
	}
	r.sem = make(chan struct{}, n)
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

// Register adds a function. Names follow Lambda's rule (letters, digits, -
// and _, at most 64) and are unique.
func (r *Registry) Register(f Function) error {
	if !nameRE.MatchString(f.Name) {
		return fmt.Errorf("lambdaserver: invalid function name %q", f.Name)
	}
	if f.Handler == nil {
		return fmt.Errorf("lambdaserver: function %s has no handler", f.Name)
	}
	if f.Timeout < 0 {
		return fmt.Errorf("lambdaserver: function %s has a negative timeout", f.Name)
	}
	if f.Timeout == 0 {
		f.Timeout = DefaultTimeout
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.funcs[f.Name]; dup {
		return fmt.Errorf("lambdaserver: function %s registered twice", f.Name)
	}
	r.funcs[f.Name] = &f
	return nil
}

// RegisterFunc registers handler, any handler function aws-lambda-go
// accepts (func(ctx, In) (Out, error) and the other documented forms),
// through lambda.NewHandler. An invalid handler fails every invocation
// with the error aws-lambda-go reports, as lambda.Start would.
func (r *Registry) RegisterFunc(name string, handler any, timeout time.Duration) error {
	return r.Register(Function{Name: name, Handler: lambda.NewHandler(handler), Timeout: timeout})
}

// Names lists the registered function names, sorted.
func (r *Registry) Names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(maps.Keys(r.funcs))
}

// Has reports whether name (a name or an ARN) resolves to a function.
func (r *Registry) Has(name string) bool {
	_, err := r.lookup(name, "")
	return err == nil
}

// ARN is the function ARN of name, e.g. for DefinitionSubstitutions:
// arn:aws:lambda:us-east-1:111122223333:function:NAME.
func (r *Registry) ARN(name string) string {
	return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", r.region, r.account, name)
}

// Invoke runs the function synchronously (RequestResponse) and returns its
// JSON output, an *asl.FunctionError when the function failed, an error
// wrapping ErrNotFound when name does not resolve, or ctx's error when ctx
// ends first (the function's context is cancelled with it). name may be a
// name, a partial ARN or an ARN.
func (r *Registry) Invoke(ctx context.Context, name string, payload []byte) ([]byte, error) {
	f, err := r.lookup(name, "")
	if err != nil {
		return nil, err
	}
	inv := invocation{id: newUUID(), fault: r.fault(f)}
	if inv.fault.Throttle {
		return nil, fmt.Errorf("%s: %w", f.Name, ErrThrottled)
	}
	out, ferr, err := r.call(ctx, f, payload, inv)
	if err != nil {
		return nil, err
	}
	if ferr != nil {
		return nil, ferr
	}
	return out, nil
}

// InvokeAsync queues an Event invocation and returns its request id. The
// invocation runs in the background; after a function error it is retried
// after each of Options.AsyncRetryDelays and then dropped with a log line.
// It fails with ErrNotFound, ErrQueueFull or ErrClosed. ctx only bounds the
// queuing, not the invocation.
func (r *Registry) InvokeAsync(ctx context.Context, name string, payload []byte) (string, error) {
	return r.invokeAsync(ctx, name, "", payload, invocation{id: newUUID()})
}

func (r *Registry) invokeAsync(ctx context.Context, name, qualifier string, payload []byte, inv invocation) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	f, err := r.lookup(name, qualifier)
	if err != nil {
		return "", err
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return "", ErrClosed
	}
	if r.pending >= r.queue {
		r.mu.Unlock()
		return "", ErrQueueFull
	}
	if r.pending == 0 {
		r.idle = make(chan struct{})
	}
	r.pending++
	r.wg.Add(1)
	r.mu.Unlock()
	payload = append([]byte(nil), payload...)
	go r.runAsync(f, payload, inv)
	return inv.id, nil
}

func (r *Registry) runAsync(f *Function, payload []byte, inv invocation) {
	defer r.wg.Done()
	defer func() {
		r.mu.Lock()
		r.pending--
		if r.pending == 0 {
			close(r.idle)
		}
		r.mu.Unlock()
	}()
	log := r.log.With(slog.String("function", f.Name), slog.String("requestId", inv.id))
	for attempt := 0; ; attempt++ {
		select {
		case r.sem <- struct{}{}:
		case <-r.ctx.Done():
			log.Warn("lambdaserver: asynchronous invocation dropped: registry closed", slog.Int("attempt", attempt+1))
			return
		}
		_, ferr, err := r.call(r.ctx, f, payload, inv)
		<-r.sem
		if err == nil && ferr == nil {
			log.Debug("lambdaserver: asynchronous invocation succeeded", slog.Int("attempt", attempt+1))
			return
		}
		reason := slog.String("error", fmt.Sprint(err))
		if ferr != nil {
			reason = slog.String("errorType", ferr.Type)
		}
		if attempt >= len(r.delays) {
			log.Warn("lambdaserver: asynchronous invocation dropped after its last attempt", slog.Int("attempts", attempt+1), reason)
			return
		}
		log.Warn("lambdaserver: asynchronous invocation failed; retrying", slog.Int("attempt", attempt+1),
			slog.Duration("retryIn", r.delays[attempt]), reason)
		if err := sleep(r.ctx, r.clock, r.delays[attempt]); err != nil {
			log.Warn("lambdaserver: asynchronous invocation dropped: registry closed", slog.Int("attempts", attempt+1))
			return
		}
	}
}

// WaitIdle waits until no asynchronous invocation is queued, running or
// waiting to be retried.
func (r *Registry) WaitIdle(ctx context.Context) error {
	r.mu.Lock()
	idle := r.idle
	r.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Idle reports whether no asynchronous invocation is queued, running or
// waiting to be retried, without waiting.
func (r *Registry) Idle() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pending == 0
}

// Close refuses new asynchronous invocations, cancels pending ones (their
// functions' contexts are cancelled, their retries dropped) and waits for
// them to return.
func (r *Registry) Close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
}

// lookup resolves a FunctionName (name, partial ARN or ARN, with an
// optional :qualifier) and a separate Qualifier.
func (r *Registry) lookup(fn, qualifier string) (*Function, error) {
	name, q, err := r.parseName(fn)
	if err != nil {
		return nil, err
	}
	if q != "" && qualifier != "" && q != qualifier {
		return nil, &invalidParamError{msg: "The derived qualifier from the function name does not match the specified qualifier."}
	}
	if q == "" {
		q = qualifier
	}
	arn := r.ARN(name)
	if q != "" {
		arn += ":" + q
	}
	r.mu.Lock()
	f, ok := r.funcs[name]
	r.mu.Unlock()
	if !ok || (q != "" && q != LatestVersion) {
		return nil, &notFoundError{arn: arn}
	}
	return f, nil
}

// parseName splits a FunctionName into name and qualifier. A name whose
// region or account differs from the registry's is not found.
func (r *Registry) parseName(fn string) (name, qualifier string, err error) {
	parts := strings.Split(fn, ":")
	switch {
	case len(parts) >= 7 && parts[0] == "arn" && parts[2] == "lambda" && parts[5] == "function":
		if len(parts) > 8 || parts[3] != r.region || parts[4] != r.account {
			return "", "", &notFoundError{arn: fn}
		}
		name = parts[6]
		if len(parts) == 8 {
			qualifier = parts[7]
		}
	case len(parts) >= 3 && parts[1] == "function":
		if len(parts) > 4 || parts[0] != r.account {
			return "", "", &notFoundError{arn: fn}
		}
		name = parts[2]
		if len(parts) == 4 {
			qualifier = parts[3]
		}
	case len(parts) <= 2:
		name = parts[0]
		if len(parts) == 2 {
			qualifier = parts[1]
		}
	default:
		return "", "", &invalidParamError{msg: fmt.Sprintf("1 validation error detected: Value '%s' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern", fn)}
	}
	if !nameRE.MatchString(name) || (len(parts) == 2 && qualifier == "") {
		return "", "", &invalidParamError{msg: fmt.Sprintf("1 validation error detected: Value '%s' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern", fn)}
	}
	return name, qualifier, nil
}

type notFoundError struct{ arn string }

func (e *notFoundError) Error() string { return "Function not found: " + e.arn }
func (e *notFoundError) Unwrap() error { return ErrNotFound }

type invalidParamError struct{ msg string }

func (e *invalidParamError) Error() string { return e.msg }

// invocation is what the caller gives one invocation besides its payload.
type invocation struct {
	id            string
	clientContext *lambdacontext.ClientContext
	fault         Fault // injected (InjectFaults)
}

type outcome struct {
	out  []byte
	ferr *asl.FunctionError
}

// call runs one attempt of f. err is set only when ctx ended first.
func (r *Registry) call(ctx context.Context, f *Function, payload []byte, inv invocation) ([]byte, *asl.FunctionError, error) {
	if len(payload) == 0 {
		payload = []byte("{}")
	}
	timeout := f.Timeout
	if inv.fault.Timeout > 0 {
		timeout = inv.fault.Timeout
	}
	// The invocation runs to its end (or its timeout) even when the caller
	// stops waiting, as in AWS: a stopped execution does not stop the
	// Lambda invocation of its task.
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	lc := &lambdacontext.LambdaContext{AwsRequestID: inv.id, InvokedFunctionArn: r.ARN(f.Name)}
	if inv.clientContext != nil {
		lc.ClientContext = *inv.clientContext
	}
	hctx = lambdacontext.NewContext(hctx, lc)
	done := make(chan outcome, 1)
	start := time.Now()
	go func() {
		defer cancel()
		defer func() {
			if p := recover(); p != nil {
				done <- outcome{ferr: panicError(p)}
			}
		}()
		delay(hctx, inv.fault.Delay)
		if hctx.Err() != nil {
			return // timed out before the handler ran
		}
		out, err := f.Handler.Invoke(hctx, payload)
		if err != nil {
			done <- outcome{ferr: functionError(err)}
			return
		}
		done <- outcome{out: out}
	}()
	var o outcome
	select {
	case o = <-done:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	case <-hctx.Done():
		select {
		case o = <-done: // it answered as its context ended (the deferred cancel)
		default:
			o.ferr = &asl.FunctionError{Type: ErrorTypeTimedOut,
				Message: fmt.Sprintf("RequestId: %s Error: Task timed out after %.2f seconds", inv.id, timeout.Seconds())}
		}
	}
	if o.ferr == nil && len(o.out) > MaxSyncPayload {
		o.out, o.ferr = nil, &asl.FunctionError{Type: ErrorTypeResponseTooLarge,
			Message: fmt.Sprintf("Response payload size (%d bytes) exceeded maximum allowed payload size (%d bytes).", len(o.out), MaxSyncPayload)}
	}
	attrs := []any{slog.String("function", f.Name), slog.String("requestId", inv.id), slog.Duration("duration", time.Since(start))}
	if o.ferr != nil {
		attrs = append(attrs, slog.String("errorType", o.ferr.Type))
	}
	r.log.Debug("lambdaserver: invocation", attrs...)
	return o.out, o.ferr, nil
}

// ErrorType is the errorType the aws-lambda-go runtime reports for an error
// a handler returned (lambda/errors.go, lambdaErrorResponse): the name of
// the error's dynamic type, with one level of pointer stripped. It does not
// unwrap: fmt.Errorf("...: %w", err) is a *fmt.wrapError, "wrapError". A
// messages.InvokeResponse_Error value names itself (its Type); Registry
// honours that as the runtime does, ErrorType alone does not.
func ErrorType(err error) string {
	t := reflect.TypeOf(err)
	if t == nil {
		return ""
	}
	if t.Kind() == reflect.Pointer {
		return t.Elem().Name()
	}
	return t.Name()
}

// functionError is the runtime's report of a returned error.
func functionError(err error) *asl.FunctionError {
	if ive, ok := err.(messages.InvokeResponse_Error); ok {
		return &asl.FunctionError{Type: ive.Type, Message: ive.Message}
	}
	return &asl.FunctionError{Type: ErrorType(err), Message: err.Error()}
}

// panicError is the runtime's report of a panic (lambdaPanicResponse).
func panicError(p any) *asl.FunctionError {
	if ive, ok := p.(messages.InvokeResponse_Error); ok {
		return &asl.FunctionError{Type: ive.Type, Message: ive.Message}
	}
	t := reflect.TypeOf(p)
	name := t.Name()
	if t.Kind() == reflect.Pointer {
		name = t.Elem().Name()
	}
	return &asl.FunctionError{Type: name, Message: fmt.Sprintf("%v", p)}
}

// sleep waits d on clk: it returns once clk has moved d forward, woken by
// real timers and by Clock.Advance, or when ctx ends.
func sleep(ctx context.Context, clk *clock.Clock, d time.Duration) error {
	deadline := clk.Now().Add(d)
	changed := clk.Changed()
	for {
		now := clk.Now()
		if !now.Before(deadline) {
			return nil
		}
		t := time.NewTimer(deadline.Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-changed:
			changed = clk.Changed()
		case <-t.C:
		}
		t.Stop()
	}
}

// newUUID is a random (version 4) UUID, the form of Lambda request ids.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
