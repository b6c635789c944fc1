package lambdaserver_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/connmgr/connmgr/local/lambdaserver"
)

// TestInjectedFaults: a throttled invocation never runs the function and
// reaches the SDK as TooManyRequestsException; a delay past an
// invocation's timeout is a Sandbox.Timedout function error; other
// functions and later invocations are untouched.
func TestInjectedFaults(t *testing.T) {
	e := newEnv(t, lambdaserver.Options{})
	var ran atomic.Int64
	e.register(t, "ResolveFunction", func(ctx context.Context, in greetIn) (greetOut, error) {
		ran.Add(1)
		return greet(ctx, in)
	}, 0)
	e.register(t, "Other", greet, 0)
	var fault atomic.Pointer[lambdaserver.Fault]
	e.reg.InjectFaults(func(fn string) lambdaserver.Fault {
		if f := fault.Load(); f != nil && fn == "ResolveFunction" {
			return *f
		}
		return lambdaserver.Fault{}
	})
	invoke := func(name string) (*awslambda.InvokeOutput, error) {
		// One attempt: the SDK's retries are the caller's business.
		return e.client.Invoke(context.Background(), &awslambda.InvokeInput{FunctionName: aws.String(name), Payload: []byte(`{"name":"ada"}`)},
			func(o *awslambda.Options) { o.RetryMaxAttempts = 1 })
	}
	for _, tc := range []struct {
		name     string
		fault    lambdaserver.Fault
		throttle bool
		errType  string
		ran      int64
	}{
		{name: "none", ran: 1},
		{name: "throttle", fault: lambdaserver.Fault{Throttle: true}, throttle: true},
		{name: "timeout", fault: lambdaserver.Fault{Delay: 200 * time.Millisecond, Timeout: 50 * time.Millisecond}, errType: lambdaserver.ErrorTypeTimedOut},
		{name: "delay within the timeout", fault: lambdaserver.Fault{Delay: 10 * time.Millisecond}, ran: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fault.Store(&tc.fault)
			ran.Store(0)
			out, err := invoke("ResolveFunction")
			var tooMany *lambdatypes.TooManyRequestsException
			switch {
			case tc.throttle:
				if !errors.As(err, &tooMany) {
					t.Fatalf("got %v, want TooManyRequestsException", err)
				}
			case err != nil:
				t.Fatal(err)
			case aws.ToString(out.FunctionError) != "" && !strings.Contains(string(out.Payload), `"errorType":"`+tc.errType+`"`):
				t.Fatalf("function error %s: %s", aws.ToString(out.FunctionError), out.Payload)
			case tc.errType != "" && aws.ToString(out.FunctionError) != "Unhandled":
				t.Fatalf("no function error: %s", out.Payload)
			}
			if got := ran.Load(); got != tc.ran {
				t.Errorf("the handler ran %d times, want %d", got, tc.ran)
			}
			if _, err := e.reg.Invoke(context.Background(), "ResolveFunction", []byte(`{}`)); tc.throttle != errors.Is(err, lambdaserver.ErrThrottled) {
				t.Errorf("in-process Invoke: %v", err)
			}
			if out, err := invoke("Other"); err != nil || out.FunctionError != nil {
				t.Errorf("another function: %v", err)
			}
		})
	}
}
