package lambdaserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"github.com/connmgr/connmgr/local/asl"
	"github.com/connmgr/connmgr/local/clock"
	"github.com/connmgr/connmgr/local/lambdaserver"
	"github.com/connmgr/connmgr/local/logbuf"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// StepTransient is a typed error, as a function would return it.
type StepTransient struct{ Reason string }

func (e *StepTransient) Error() string { return "transient: " + e.Reason }

// valueError is an error with a value receiver.
type valueError struct{}

func (valueError) Error() string { return "value error" }

type greetIn struct {
	Name string `json:"name"`
}

type greetOut struct {
	Greeting    string `json:"greeting"`
	RequestID   string `json:"requestId"`
	FunctionArn string `json:"functionArn"`
	DeadlineIn  int    `json:"deadlineInSeconds"`
}

func greet(ctx context.Context, in greetIn) (greetOut, error) {
	lc, ok := lambdacontext.FromContext(ctx)
	if !ok {
		return greetOut{}, errors.New("no lambda context")
	}
	dl, ok := ctx.Deadline()
	if !ok {
		return greetOut{}, errors.New("no deadline")
	}
	return greetOut{Greeting: "hello " + in.Name, RequestID: lc.AwsRequestID, FunctionArn: lc.InvokedFunctionArn,
		DeadlineIn: int(time.Until(dl).Round(time.Second).Seconds())}, nil
}

type env struct {
	reg    *lambdaserver.Registry
	client *awslambda.Client
	clk    *clock.Clock
	logs   *logbuf.Buffer
}

func newEnv(t *testing.T, opts lambdaserver.Options) *env {
	t.Helper()
	e := &env{clk: clock.Fixed(t0), logs: &logbuf.Buffer{}}
	opts.Clock = e.clk
	opts.Logger = slog.New(slog.NewJSONHandler(e.logs, nil))
	e.reg = lambdaserver.NewRegistry(opts)
	srv, err := lambdaserver.Start("", e.reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Close()
		e.reg.Close()
	})
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")}
	e.client = awslambda.NewFromConfig(cfg, func(o *awslambda.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	return e
}

func (e *env) register(t *testing.T, name string, fn any, timeout time.Duration) {
	t.Helper()
	if err := e.reg.RegisterFunc(name, fn, timeout); err != nil {
		t.Fatal(err)
	}
}

func TestInvokeRequestResponse(t *testing.T) {
	e := newEnv(t, lambdaserver.Options{})
	e.register(t, "ResolveFunction", greet, 0)
	arn := "arn:aws:lambda:us-east-1:111122223333:function:ResolveFunction"
	for _, tc := range []struct{ name, qualifier string }{
		{name: "ResolveFunction"},
		{name: "ResolveFunction:$LATEST"},
		{name: "ResolveFunction", qualifier: "$LATEST"},
		{name: "111122223333:function:ResolveFunction"},
		{name: arn},
		{name: arn + ":$LATEST"},
	} {
		t.Run(tc.name+"?"+tc.qualifier, func(t *testing.T) {
			in := &awslambda.InvokeInput{FunctionName: aws.String(tc.name), Payload: []byte(`{"name":"ada"}`)}
			if tc.qualifier != "" {
				in.Qualifier = aws.String(tc.qualifier)
			}
			out, err := e.client.Invoke(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			if out.StatusCode != 200 || out.FunctionError != nil || aws.ToString(out.ExecutedVersion) != "$LATEST" {
				t.Fatalf("status %d, function error %v, version %v", out.StatusCode, aws.ToString(out.FunctionError), aws.ToString(out.ExecutedVersion))
			}
			var got greetOut
			if err := json.Unmarshal(out.Payload, &got); err != nil {
				t.Fatal(err)
			}
			if got.Greeting != "hello ada" || got.FunctionArn != arn || len(got.RequestID) != 36 || got.DeadlineIn != 30 {
				t.Errorf("handler saw %+v", got)
			}
		})
	}
}

func TestInvokeEmptyPayloadIsEmptyObject(t *testing.T) {
	e := newEnv(t, lambdaserver.Options{})
	e.register(t, "echo", func(in map[string]any) (map[string]any, error) { return in, nil }, 0)
	out, err := e.client.Invoke(context.Background(), &awslambda.InvokeInput{FunctionName: aws.String("echo")})
	if err != nil {
		t.Fatal(err)
	}
	if string(bytes.TrimSpace(out.Payload)) != "{}" {
		t.Errorf("payload %s", out.Payload)
	}
}

func TestFunctionErrors(t *testing.T) {
	e := newEnv(t, lambdaserver.Options{})
	cases := []struct {
		name, wantType, wantMessage string
		handler                     any
		payload                     string
		timeout                     time.Duration
	}{
		{"errors.New", "errorString", "boom", func() error { return errors.New("boom") }, "", 0},
		{"typed pointer", "StepTransient", "transient: 503", func() error { return &StepTransient{Reason: "503"} }, "", 0},
		{"typed value", "valueError", "value error", func() error { return valueError{} }, "", 0},
		{"wrapped is not unwrapped", "wrapError", "step: transient: 503",
			func() error { return fmt.Errorf("step: %w", &StepTransient{Reason: "503"}) }, "", 0},
		{"InvokeResponse_Error names itself", "CredentialUnavailable", "key disabled",
			func() error {
				return messages.InvokeResponse_Error{Type: "CredentialUnavailable", Message: "key disabled"}
			}, "", 0},
		{"panic string", "string", "kaput", func() error { panic("kaput") }, "", 0},
		{"panic error", "StepTransient", "transient: panicked", func() error { panic(&StepTransient{Reason: "panicked"}) }, "", 0},
		{"payload does not decode", "UnmarshalTypeError", "json: cannot unmarshal number into Go struct field greetIn.name of type string",
			greet, `{"name":42}`, 0},
		{"invalid handler", "errorString", "handler kind string is not func", "not a function", "", 0},
		{"timeout", "Sandbox.Timedout", "Task timed out after 0.05 seconds",
			func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, "", 50 * time.Millisecond},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("fn%d", i)
			e.register(t, name, tc.handler, tc.timeout)
			payload := []byte(tc.payload)
			out, err := e.client.Invoke(context.Background(), &awslambda.InvokeInput{FunctionName: aws.String(name), Payload: payload})
			if err != nil {
				t.Fatal(err)
			}
			if out.StatusCode != 200 || aws.ToString(out.FunctionError) != "Unhandled" {
				t.Fatalf("status %d, FunctionError %q", out.StatusCode, aws.ToString(out.FunctionError))
			}
			var body map[string]any
			if err := json.Unmarshal(out.Payload, &body); err != nil {
				t.Fatalf("%v: %s", err, out.Payload)
			}
			if len(body) != 2 || body["errorType"] != tc.wantType || !strings.Contains(body["errorMessage"].(string), tc.wantMessage) {
				t.Errorf("body %s, want errorType %s, message containing %q", out.Payload, tc.wantType, tc.wantMessage)
			}
			// The in-process path reports the same, as *asl.FunctionError.
			_, err = e.reg.Invoke(context.Background(), name, payload)
			var fe *asl.FunctionError
			if !errors.As(err, &fe) || fe.Type != tc.wantType || !strings.Contains(fe.Message, tc.wantMessage) {
				t.Errorf("Invoke error %#v", err)
			}
		})
	}
}

func TestInvokeServiceErrors(t *testing.T) {
	e := newEnv(t, lambdaserver.Options{})
	e.register(t, "known", greet, 0)
	cases := []struct {
		name      string
		in        awslambda.InvokeInput
		check     func(error) bool
		wantInMsg string
	}{
		{"unknown name", awslambda.InvokeInput{FunctionName: aws.String("nope")},
			func(err error) bool { var x *types.ResourceNotFoundException; return errors.As(err, &x) },
			"Function not found: arn:aws:lambda:us-east-1:111122223333:function:nope"},
		{"unknown ARN", awslambda.InvokeInput{FunctionName: aws.String("arn:aws:lambda:us-east-1:111122223333:function:nope")},
			func(err error) bool { var x *types.ResourceNotFoundException; return errors.As(err, &x) }, "Function not found"},
		{"other account", awslambda.InvokeInput{FunctionName: aws.String("arn:aws:lambda:us-east-1:999999999999:function:known")},
			func(err error) bool { var x *types.ResourceNotFoundException; return errors.As(err, &x) }, "Function not found"},
		{"unknown qualifier", awslambda.InvokeInput{FunctionName: aws.String("known"), Qualifier: aws.String("live")},
			func(err error) bool { var x *types.ResourceNotFoundException; return errors.As(err, &x) }, "function:known:live"},
		{"unknown function, Event", awslambda.InvokeInput{FunctionName: aws.String("nope"), InvocationType: types.InvocationTypeEvent},
			func(err error) bool { var x *types.ResourceNotFoundException; return errors.As(err, &x) }, "Function not found"},
		{"payload not JSON", awslambda.InvokeInput{FunctionName: aws.String("known"), Payload: []byte("not json")},
			func(err error) bool { var x *types.InvalidRequestContentException; return errors.As(err, &x) }, "Could not parse request body into json"},
		{"payload too large", awslambda.InvokeInput{FunctionName: aws.String("known"), InvocationType: types.InvocationTypeEvent,
			Payload: []byte(`"` + strings.Repeat("x", lambdaserver.MaxAsyncPayload) + `"`)},
			func(err error) bool { var x *types.RequestTooLargeException; return errors.As(err, &x) }, "Request must be smaller than"},
		{"qualifiers disagree", awslambda.InvokeInput{FunctionName: aws.String("known:$LATEST"), Qualifier: aws.String("live")},
			func(err error) bool { var x *types.InvalidParameterValueException; return errors.As(err, &x) }, "does not match"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client.Invoke(context.Background(), &tc.in)
			var ae smithy.APIError
			if !tc.check(err) || !errors.As(err, &ae) || !strings.Contains(ae.ErrorMessage(), tc.wantInMsg) {
				t.Fatalf("got %T %v, want message containing %q", err, err, tc.wantInMsg)
			}
		})
	}
	if _, err := e.reg.Invoke(context.Background(), "nope", nil); !errors.Is(err, lambdaserver.ErrNotFound) {
		t.Errorf("in-process Invoke of an unknown function: %v", err)
	}
}

func TestInvokeEventAndDryRun(t *testing.T) {
	e := newEnv(t, lambdaserver.Options{})
	got := make(chan string, 1)
	e.register(t, "worker", func(ctx context.Context, in greetIn) error {
		lc, _ := lambdacontext.FromContext(ctx)
		got <- in.Name + " " + lc.InvokedFunctionArn
		return nil
	}, 0)
	out, err := e.client.Invoke(context.Background(), &awslambda.InvokeInput{
		FunctionName: aws.String("worker"), InvocationType: types.InvocationTypeDryRun, Payload: []byte(`{"name":"dry"}`)})
	if err != nil || out.StatusCode != 204 {
		t.Fatalf("DryRun: %v, status %d", err, out.StatusCode)
	}
	out, err = e.client.Invoke(context.Background(), &awslambda.InvokeInput{
		FunctionName: aws.String("worker"), InvocationType: types.InvocationTypeEvent, Payload: []byte(`{"name":"bob"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if out.StatusCode != 202 || out.FunctionError != nil || len(out.Payload) != 0 {
		t.Fatalf("Event: status %d, error %v, payload %q", out.StatusCode, out.FunctionError, out.Payload)
	}
	select {
	case s := <-got:
		if s != "bob arn:aws:lambda:us-east-1:111122223333:function:worker" {
			t.Errorf("handler saw %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the Event invocation never ran")
	}
	waitIdle(t, e.reg)
	select {
	case s := <-got:
		t.Errorf("DryRun invoked the function: %q", s)
	default:
	}
}

func waitIdle(t *testing.T, reg *lambdaserver.Registry) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := reg.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond for up to 5 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestAsyncRetriesOnTheClock(t *testing.T) {
	e := newEnv(t, lambdaserver.Options{})
	var mu sync.Mutex
	var attempts []time.Time
	var ids []string
	fail := 2
	e.register(t, "flaky", func(ctx context.Context) error {
		lc, _ := lambdacontext.FromContext(ctx)
		mu.Lock()
		defer mu.Unlock()
		attempts = append(attempts, e.clk.Now())
		ids = append(ids, lc.AwsRequestID)
		if len(attempts) <= fail {
			return &StepTransient{Reason: "try again"}
		}
		return nil
	}, 0)
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(attempts) }
	id, err := e.reg.InvokeAsync(context.Background(), "flaky", []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "first attempt", func() bool { return count() == 1 })
	e.clk.Advance(59 * time.Second)
	time.Sleep(20 * time.Millisecond)
	if count() != 1 {
		t.Fatal("retried before a minute had passed")
	}
	e.clk.Advance(time.Second)
	waitFor(t, "second attempt", func() bool { return count() == 2 })
	e.clk.Advance(2 * time.Minute)
	waitFor(t, "third attempt", func() bool { return count() == 3 })
	waitIdle(t, e.reg)
	if ids[0] != id || ids[1] != id || ids[2] != id {
		t.Errorf("retries must keep the request id %s: %v", id, ids)
	}
	if !strings.Contains(e.logs.String(), `"errorType":"StepTransient"`) {
		t.Errorf("failed attempts not logged: %s", e.logs)
	}
}

func TestAsyncDroppedAfterLastAttempt(t *testing.T) {
	e := newEnv(t, lambdaserver.Options{AsyncRetryDelays: []time.Duration{time.Millisecond}})
	var mu sync.Mutex
	n := 0
	e.register(t, "broken", func() error { mu.Lock(); n++; mu.Unlock(); return errors.New("always") }, 0)
	if _, err := e.reg.InvokeAsync(context.Background(), "broken", nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "first attempt", func() bool { mu.Lock(); defer mu.Unlock(); return n == 1 })
	e.clk.Advance(time.Millisecond)
	waitIdle(t, e.reg)
	if n != 2 {
		t.Errorf("%d attempts, want 2", n)
	}
	if !strings.Contains(e.logs.String(), "dropped after its last attempt") {
		t.Errorf("drop not logged: %s", e.logs)
	}
	if strings.Contains(e.logs.String(), "always") {
		t.Errorf("logs carry error messages, which may hold data: %s", e.logs)
	}
}

func TestAsyncBoundedConcurrencyAndQueue(t *testing.T) {
	e := newEnv(t, lambdaserver.Options{AsyncConcurrency: 2, AsyncQueue: 3})
	release := make(chan struct{})
	var mu sync.Mutex
	running, peak := 0, 0
	e.register(t, "slow", func() error {
		mu.Lock()
		running++
		peak = max(peak, running)
		mu.Unlock()
		<-release
		mu.Lock()
		running--
		mu.Unlock()
		return nil
	}, 0)
	for range 3 {
		if _, err := e.reg.InvokeAsync(context.Background(), "slow", nil); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "two running", func() bool { mu.Lock(); defer mu.Unlock(); return running == 2 })
	if _, err := e.reg.InvokeAsync(context.Background(), "slow", nil); !errors.Is(err, lambdaserver.ErrQueueFull) {
		t.Errorf("a fourth pending invocation: %v, want ErrQueueFull", err)
	}
	close(release)
	waitIdle(t, e.reg)
	if peak != 2 {
		t.Errorf("peak concurrency %d, want 2", peak)
	}
}

func TestRegisterRejects(t *testing.T) {
	reg := lambdaserver.NewRegistry(lambdaserver.Options{})
	defer reg.Close()
	if err := reg.RegisterFunc("ok", greet, 0); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", "has space", "arn:aws:lambda", strings.Repeat("x", 65), "ok"} {
		if err := reg.RegisterFunc(name, greet, 0); err == nil {
			t.Errorf("Register(%q) succeeded", name)
		}
	}
	if !reg.Has("ok") || !reg.Has(reg.ARN("ok")) || reg.Has("other") {
		t.Error("Has disagrees with the registrations")
	}
}

func TestErrorType(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{errors.New("x"), "errorString"},
		{&StepTransient{}, "StepTransient"},
		{valueError{}, "valueError"},
		{fmt.Errorf("a: %w", valueError{}), "wrapError"},
		{context.DeadlineExceeded, "deadlineExceededError"},
		{&json.SyntaxError{}, "SyntaxError"},
		{messages.InvokeResponse_Error{Type: "T"}, "InvokeResponse_Error"},
	} {
		if got := lambdaserver.ErrorType(tc.err); got != tc.want {
			t.Errorf("ErrorType(%T) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// The Step Functions engine calls functions through the registry: a typed
// function error is what Retry and Catch match.
func TestRegistryAsASLInvoker(t *testing.T) {
	clk := clock.Fixed(t0)
	reg := lambdaserver.NewRegistry(lambdaserver.Options{Clock: clk})
	defer reg.Close()
	if err := reg.RegisterFunc("RunStepFunction", func(in map[string]any) (map[string]any, error) {
		if in["fail"] == true {
			return nil, &StepTransient{Reason: "upstream 503"}
		}
		return map[string]any{"ok": true}, nil
	}, 0); err != nil {
		t.Fatal(err)
	}
	eng := asl.NewEngine(asl.Options{Clock: clk, Invoker: reg})
	defer eng.Close()
	def := `{"StartAt":"Step","States":{
		"Step":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke",
			"Parameters":{"FunctionName":"${Fn}","Payload.$":"$"},"OutputPath":"$.Payload",
			"Catch":[{"ErrorEquals":["StepTransient"],"ResultPath":"$.error","Next":"Caught"}],"End":true},
		"Caught":{"Type":"Pass","End":true}}}`
	sm, err := eng.CreateStateMachine(asl.StateMachineSpec{Name: "wf", Definition: []byte(def),
		Substitutions: map[string]string{"Fn": reg.ARN("RunStepFunction")}})
	if err != nil {
		t.Fatal(err)
	}
	for input, want := range map[string]string{
		`{"fail":false}`: `{"ok":true}`,
		`{"fail":true}`:  `{"error":{"Cause":"{\"errorMessage\":\"transient: upstream 503\",\"errorType\":\"StepTransient\"}","Error":"StepTransient"},"fail":true}`,
	} {
		ex, err := eng.StartExecution(sm.ARN, "", input)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ex, err = eng.WaitExecution(ctx, ex.ARN)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if ex.Status != asl.StatusSucceeded || ex.Output != want {
			t.Errorf("input %s: %s %s, want output %s", input, ex.Status, ex.Output, want)
		}
	}
}
