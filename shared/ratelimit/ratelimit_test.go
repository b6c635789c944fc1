package ratelimit_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connmgr/connmgr/local/apitest"
	"github.com/connmgr/connmgr/local/stacktest"
	"github.com/connmgr/connmgr/shared/app"
	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/ratelimit"
)

// TestLimitAcrossInstances: limiters sharing the table (as Lambda
// instances do) admit exactly Rate × Window requests of a tenant's class
// per window however many race for them; the rest are 429 with the time
// left in the window; other tenants and classes keep their own counts; a
// new window admits again.
func TestLimitAcrossInstances(t *testing.T) {
	env := stacktest.Start(t)
	ctx := context.Background()
	env.Clock.Advance(3 * time.Second) // the clock starts on a window; 3 s into it
	const rate = 2
	instances := make([]*ratelimit.Limiter, 4)
	for i := range instances {
		instances[i] = ratelimit.New(env.Store, rate, env.Clock.Now)
	}
	limit := rate * int(ratelimit.Window/time.Second)

	var admitted, limited atomic.Int32
	var wg sync.WaitGroup
	for i := range 2 * limit {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := instances[i%len(instances)].Allow(ctx, "t1", "test")
			var e *apperr.Error
			switch {
			case err == nil:
				admitted.Add(1)
			case errors.As(err, &e) && e.Kind == apperr.RateLimited && e.Code == "tenant_rate_limited" && e.RetryAfter == 7*time.Second:
				limited.Add(1)
			default:
				t.Errorf("unexpected answer: %v", err)
			}
		}()
	}
	wg.Wait()
	if admitted.Load() != int32(limit) || limited.Load() != int32(limit) {
		t.Fatalf("admitted %d, limited %d; want %d each", admitted.Load(), limited.Load(), limit)
	}
	for _, tc := range []struct{ tenant, class string }{{"t2", "test"}, {"t1", "runstart"}} {
		if err := instances[0].Allow(ctx, tc.tenant, tc.class); err != nil {
			t.Errorf("%s %s: %v, want admitted (its own count)", tc.tenant, tc.class, err)
		}
	}
	env.Clock.Advance(7 * time.Second)
	if err := instances[1].Allow(ctx, "t1", "test"); err != nil {
		t.Errorf("next window: %v", err)
	}
}

// TestLimitOff: a rate of 0 admits everything without a call.
func TestLimitOff(t *testing.T) {
	env := stacktest.Start(t)
	l := ratelimit.New(env.Store, 0, env.Clock.Now)
	env.Reset()
	for range 100 {
		if err := l.Allow(context.Background(), "t1", "test"); err != nil {
			t.Fatal(err)
		}
	}
	if n := env.DDB.Count("UpdateItem"); n != 0 {
		t.Errorf("%d calls with the limit off", n)
	}
}

// TestCostlyRoutesLimited: through the functions' routers, a tenant's
// connection tests and run starts beyond its limit are answered 429
// tenant_rate_limited with Retry-After, before the handler runs; the
// others of the same function are not counted, and another tenant is
// served.
func TestCostlyRoutesLimited(t *testing.T) {
	for _, tc := range []struct {
		function, method, path string
		body                   any
		admitted               int // the handler's own answer when admitted
	}{
		{app.FnConnections, "POST", "/connections/01JABSENT00000000000000000/test", nil, 404},
		{app.FnRuns, "POST", "/runs", map[string]any{"workflowId": ""}, 400},
	} {
		t.Run(tc.function, func(t *testing.T) {
			env := apitest.StartWith(t, tc.function, func(c *app.Config) { c.TenantCostlyRate = 1 })
			alice := &apitest.Caller{Tenant: "t1", User: "alice", TenantAdmin: true}
			limit := int(ratelimit.Window / time.Second)
			// The clock reads real time: start at a window's start, so the
			// requests below all fall in one window.
			env.Clock.Advance(ratelimit.Window - env.Clock.Now().Sub(env.Clock.Now().Truncate(ratelimit.Window)))
			for i := range limit {
				if r := env.Do(apitest.Request{Method: tc.method, Path: tc.path, Caller: alice, Body: tc.body}); r.Status != tc.admitted {
					t.Fatalf("request %d: %d %s, want %d", i+1, r.Status, r.Body, tc.admitted)
				}
			}
			r := env.Do(apitest.Request{Method: tc.method, Path: tc.path, Caller: alice, Body: tc.body})
			if r.Status != 429 || r.ErrorCode() != "tenant_rate_limited" || r.Headers["Retry-After"] == "" {
				t.Fatalf("over the limit: %d %v %s", r.Status, r.Headers, r.Body)
			}
			if n, err := strconv.Atoi(r.Headers["Retry-After"]); err != nil || n < 1 || n > limit {
				t.Errorf("Retry-After %q, want 1 to %d seconds", r.Headers["Retry-After"], limit)
			}
			if r := env.Do(apitest.Request{Method: "GET", Path: "/runs", Caller: alice}); tc.function == app.FnRuns && r.Status != 200 {
				t.Errorf("GET /runs after the limit: %d %s", r.Status, r.Body)
			}
			bob := &apitest.Caller{Tenant: "t2", User: "bob", TenantAdmin: true}
			if r := env.Do(apitest.Request{Method: tc.method, Path: tc.path, Caller: bob, Body: tc.body}); r.Status != tc.admitted {
				t.Errorf("another tenant: %d %s", r.Status, r.Body)
			}
		})
	}
}
