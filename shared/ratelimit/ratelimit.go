// Package ratelimit is the per-tenant application limit of the API's
// costly routes (a connection test calls the resolver and the target; a
// run start creates an execution): each tenant may make Rate of them a
// second, counted over fixed windows, and a request over the limit is
// answered 429 tenant_rate_limited with the seconds left in its window.
//
// The count lives in DynamoDB (store.CountRequest: one conditional
// UpdateItem per request), not in the instance: Lambda runs many
// instances of a function, and a per-instance bucket would let a tenant
// through once per warm instance, a number nobody controls. A fixed
// window costs one write and no read; its price is that a tenant may
// spend up to two windows' worth across a window boundary. API Gateway's
// stage throttling, the other limit, bounds every route of every tenant
// together.
//
// It never logs, and its errors carry no request content.
package ratelimit

import (
	"context"
	"time"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/httpapi"
)

// Window is the length of a counting window: Rate × Window requests fit
// in one.
const Window = 10 * time.Second

// Counter counts a request in a window (store.Store.CountRequest).
type Counter interface {
	CountRequest(ctx context.Context, tenant, class string, window int64, limit int, expires time.Time) (bool, error)
}

// ErrLimited is the answer to a request over its tenant's limit.
var ErrLimited = apperr.E(apperr.RateLimited, "tenant_rate_limited", "your organisation has made too many of these requests; retry after the time given")

// Limiter admits the requests of a class of routes per tenant.
type Limiter struct {
	counter Counter
	rate    int
	now     func() time.Time
}

// New limits each tenant to rate requests a second of every class; a rate
// of 0 or less turns the limit off (New returns nil, which admits all).
func New(c Counter, rate int, now func() time.Time) *Limiter {
	if rate <= 0 {
		return nil
	}
	if now == nil {
		now = time.Now
	}
	return &Limiter{counter: c, rate: rate, now: now}
}

// Allow counts one request of tenant's class and answers ErrLimited, with
// the time left in the window, when the tenant is over its limit. A
// failure to count is returned (503 when DynamoDB throttles or fails):
// the limit is never silently skipped.
func (l *Limiter) Allow(ctx context.Context, tenant, class string) error {
	if l == nil {
		return nil
	}
	now := l.now()
	w := Window / time.Second
	start := now.Unix() / int64(w) * int64(w)
	end := time.Unix(start, 0).Add(Window)
	ok, err := l.counter.CountRequest(ctx, tenant, class, start, l.rate*int(w), end.Add(time.Minute))
	if err != nil {
		return err
	}
	if !ok {
		e := *ErrLimited
		e.RetryAfter = end.Sub(now)
		return &e
	}
	return nil
}

// Admit is an httpapi admission check that counts the caller's request in
// class; routes given to Router.Admit with it share class's limit.
func (l *Limiter) Admit(class string) func(ctx context.Context, r *httpapi.Request) error {
	return func(ctx context.Context, r *httpapi.Request) error {
		return l.Allow(ctx, r.Caller.Tenant, class)
	}
}
