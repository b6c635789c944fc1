package lambdaserver

import (
	"context"
	"time"
)

// Fault is what an injected failure makes of one invocation.
type Fault struct {
	// Throttle refuses the invocation without running the function, as
	// Lambda does when the function's concurrency is exhausted: 429
	// TooManyRequestsException "Rate Exceeded." over the Invoke API, an
	// error wrapping ErrThrottled from Invoke.
	Throttle bool
	// Delay holds the invocation this long inside the function's time
	// before its handler runs, as a slow cold start or dependency would.
	Delay time.Duration
	// Timeout, when set, is the function's timeout for this invocation; a
	// Delay at least as long makes the invocation time out
	// (Sandbox.Timedout) without waiting the template's timeout.
	Timeout time.Duration
}

// FaultHook decides the fault of each synchronous invocation of function
// (its registered name); the zero Fault lets the invocation run as usual.
type FaultHook func(function string) Fault

// InjectFaults sets the hook consulted before every synchronous
// invocation (Invoke and the Invoke API's RequestResponse); nil removes
// it. Tests inject throttling and timeouts of a function with it.
func (r *Registry) InjectFaults(hook FaultHook) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults = hook
}

// fault is the hook's decision for one invocation of f.
func (r *Registry) fault(f *Function) Fault {
	r.mu.Lock()
	hook := r.faults
	r.mu.Unlock()
	if hook == nil {
		return Fault{}
	}
	return hook(f.Name)
}

// ErrThrottled: Invoke refused the invocation (an injected throttle).
var ErrThrottled = errThrottled{}

type errThrottled struct{}

func (errThrottled) Error() string { return "lambdaserver: TooManyRequestsException: Rate Exceeded." }

// delay waits d inside the invocation's context.
func delay(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
