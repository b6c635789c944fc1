package resolver_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/connmgr/connmgr/shared/resolver"
)

// TestRefreshIfDueWith: the scheduled check's refresh. A keep-alive age
// refreshes tokens that are still valid; the secret version makes a second
// caller who found the same tokens due a no-op.
func TestRefreshIfDueWith(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.authorized(t, "c1") // 1 h tokens, secret version 1
	calls := func() int { return f.idp.Calls("refresh_token") }

	f.env.Clock.Advance(10 * time.Minute)
	if r, err := f.res.RefreshIfDueWith(ctx, "t1", "c1", resolver.RefreshOptions{Within: time.Minute, MaxAge: 30 * time.Minute, SecretVersion: 1}); err != nil || r.Refreshed || calls() != 0 {
		t.Fatalf("10 min old, keep-alive at 30: %+v %v, %d calls", r, err, calls())
	}
	f.env.Clock.Advance(21 * time.Minute)
	// Two callers that both found secret version 1 due, at once: one refresh.
	var wg sync.WaitGroup
	results := make([]resolver.Refreshed, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := f.instance(t, nil).RefreshIfDueWith(ctx, "t1", "c1", resolver.RefreshOptions{Within: time.Minute, MaxAge: 30 * time.Minute, SecretVersion: 1})
			if err != nil {
				t.Error(err)
			}
			results[i] = r
		}()
	}
	wg.Wait()
	refreshed := 0
	for _, r := range results {
		if r.Refreshed {
			refreshed++
		}
	}
	if calls() != 1 || refreshed != 1 {
		t.Fatalf("31 min old, keep-alive at 30, 4 callers: %d refresh calls, %d reported", calls(), refreshed)
	}
	rec, _ := f.stored(t, "c1")
	if rec.Conn.SecretVersion != 2 || !rec.TokensAt.Equal(f.env.Clock.Now()) {
		t.Fatalf("after the keep-alive: version %d, tokens at %s", rec.Conn.SecretVersion, rec.TokensAt)
	}
	// A late caller that saw version 1: nothing, without opening anything.
	f.env.Reset()
	if r, err := f.res.RefreshIfDueWith(ctx, "t1", "c1", resolver.RefreshOptions{Within: 2 * time.Hour, SecretVersion: 1}); err != nil || r.Refreshed || calls() != 1 || f.env.KMS.Count("") != 0 {
		t.Fatalf("stale secret version: %+v %v, %d calls, %d KMS", r, err, calls(), f.env.KMS.Count(""))
	}
	// Through the handler's wire form.
	h := &resolver.Handler{Resolver: f.res}
	out, err := h.Handle(ctx, json.RawMessage(`{"op":"refreshIfDue","tenant":"t1","connectionId":"c1","withinSeconds":7200,"maxAgeSeconds":0,"secretVersion":2}`))
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		OK        bool
		Refreshed bool
		ExpiresAt time.Time
	}
	if err := json.Unmarshal(out, &res); err != nil || !res.OK || !res.Refreshed || calls() != 2 {
		t.Fatalf("handler: %s %v, %d calls", out, err, calls())
	}
}
