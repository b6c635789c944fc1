package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connmgr/connmgr/local/stacktest"
	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/store"
	"github.com/connmgr/connmgr/shared/vault"
)

func newConn(t *testing.T, env *stacktest.Env, tenant, id string) *store.Record {
	t.Helper()
	now := env.Clock.Now()
	r := &store.Record{Conn: connection.Connection{
		Tenant: tenant, ID: id, Type: "oauth2-generic", Name: "c " + id, Kind: connection.Shared,
		Availability: connection.Availability{Scope: connection.ScopeTenant}, Owners: []string{"alice"}, CreatedBy: "alice",
		CreatedAt: now, UpdatedAt: now, Version: 1, Status: connection.StatusPendingAuthorization, Settings: map[string]any{},
	}}
	if err := env.Store.Create(context.Background(), r, connection.AuditEntry{ID: "01A" + id, At: now, Actor: "alice", Action: connection.ActionCreated, Version: 1}, nil); err != nil {
		t.Fatal(err)
	}
	return r
}

func seal(t *testing.T, env *stacktest.Env, tenant, id string, v int64, pt string) vault.Sealed {
	t.Helper()
	s, err := env.Sealer.Seal(context.Background(), vault.Binding{Tenant: tenant, Subject: id, Version: v}, []byte(pt))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLeaseExclusiveAndExpires(t *testing.T) {
	env := stacktest.Start(t)
	ctx := context.Background()
	newConn(t, env, "t1", "c1")

	// 20 instances race for the lease: exactly one wins.
	var won atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := env.Store.AcquireLease(ctx, "t1", "c1", fmt.Sprintf("owner-%d", i), 30*time.Second)
			if err != nil {
				t.Error(err)
			}
			if ok {
				won.Add(1)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("20 concurrent acquisitions: %d won, want 1", won.Load())
	}
	owner, until, ok, err := env.Store.Lease(ctx, "t1", "c1")
	if err != nil || !ok {
		t.Fatalf("lease: %v %v", ok, err)
	}
	t.Logf("20 concurrent acquisitions → 1 holder (%s until %s)", owner, until.Format(time.TimeOnly))

	// Not yet expired: nobody else gets it; a non-owner cannot release it.
	env.Clock.Advance(29 * time.Second)
	if ok, _ := env.Store.AcquireLease(ctx, "t1", "c1", "late", 30*time.Second); ok {
		t.Fatal("lease taken before it expired")
	}
	if released, _ := env.Store.ReleaseLease(ctx, "t1", "c1", "late"); released {
		t.Fatal("a non-owner released the lease")
	}
	// The holder dies; its lease runs out and one later caller takes over.
	env.Clock.Advance(2 * time.Second)
	if ok, err := env.Store.AcquireLease(ctx, "t1", "c1", "successor", 30*time.Second); !ok || err != nil {
		t.Fatalf("successor: %v %v", ok, err)
	}
	if ok, _ := env.Store.AcquireLease(ctx, "t1", "c1", "another", 30*time.Second); ok {
		t.Fatal("two successors")
	}
	// The dead holder's release is a no-op; the successor's works.
	if released, _ := env.Store.ReleaseLease(ctx, "t1", "c1", owner); released {
		t.Fatal("the expired owner released its successor's lease")
	}
	if released, err := env.Store.ReleaseLease(ctx, "t1", "c1", "successor"); !released || err != nil {
		t.Fatalf("release: %v %v", released, err)
	}
	if ok, _ := env.Store.AcquireLease(ctx, "t1", "c1", "next", 30*time.Second); !ok {
		t.Fatal("lease not free after release")
	}
}

func TestPutTokensConditionedOnSecretVersion(t *testing.T) {
	env := stacktest.Start(t)
	ctx := context.Background()
	newConn(t, env, "t1", "c1")
	exp := env.Clock.Now().Add(time.Hour)

	// First tokens (authorization) with an audit entry.
	w := store.TokenWrite{Tenant: "t1", ID: "c1", FromSecretVersion: 0, Secret: seal(t, env, "t1", "c1", 1, "tokens-1"),
		SecretFields: []string{"accessToken", "refreshToken"}, TokenExpiresAt: exp, ExpectedVersion: 1,
		Audit: &connection.AuditEntry{ID: "01B", At: env.Clock.Now(), Actor: "alice", Action: connection.ActionAuthorized, Version: 2}}
	if err := env.Store.PutTokens(ctx, w); err != nil {
		t.Fatal(err)
	}
	r, err := env.Store.Get(ctx, "t1", "c1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Conn.SecretVersion != 1 || r.Conn.Version != 2 || r.Conn.Status != connection.StatusActive || !r.Conn.TokenExpiresAt.Equal(exp.Truncate(time.Second)) {
		t.Fatalf("after authorization: %+v", r.Conn)
	}

	// Two refreshers both based on secret version 1: one wins, the other is told.
	var okCount, staleCount atomic.Int32
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := env.Store.PutTokens(ctx, store.TokenWrite{Tenant: "t1", ID: "c1", FromSecretVersion: 1,
				Secret: seal(t, env, "t1", "c1", 2, fmt.Sprintf("tokens-2-%d", i)), TokenExpiresAt: exp})
			switch {
			case err == nil:
				okCount.Add(1)
			case errors.Is(err, store.ErrSecretChanged):
				staleCount.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if okCount.Load() != 1 || staleCount.Load() != 1 {
		t.Fatalf("2 concurrent token writes at secret version 1: %d stored, %d stale; want 1 and 1", okCount.Load(), staleCount.Load())
	}
	r, _ = env.Store.Get(ctx, "t1", "c1")
	if r.Conn.SecretVersion != 2 || r.Conn.Version != 3 {
		t.Fatalf("after refresh: secret v%d version %d", r.Conn.SecretVersion, r.Conn.Version)
	}

	// A stale rename (whole-item update at version 2) cannot overwrite the refreshed tokens.
	stale := *r
	stale.Conn.Version, stale.Conn.SecretVersion, stale.Conn.Name = 3, 1, "renamed"
	if err := env.Store.Update(ctx, &stale, 2, stale.Conn.Owners, store.Changes{}); !apperr.Is(err, apperr.PreconditionFailed) {
		t.Fatalf("stale whole-item update: %v", err)
	}

	// Marking expired is conditioned on the rejected secret version.
	mark := store.ExpiredMark{Tenant: "t1", ID: "c1", SecretVersion: 1, ExpectedVersion: 3, Reason: "invalid_grant",
		Audit: connection.AuditEntry{ID: "01C", At: env.Clock.Now(), Actor: "system", Action: connection.ActionExpired, Version: 4}}
	if err := env.Store.MarkExpired(ctx, mark); !errors.Is(err, store.ErrSecretChanged) {
		t.Fatalf("mark expired with an old secret version: %v", err)
	}
	mark.SecretVersion = 2
	mark.LeaseOwner = "nobody"
	if err := env.Store.MarkExpired(ctx, mark); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("mark expired without the lease: %v", err)
	}
	if ok, _ := env.Store.AcquireLease(ctx, "t1", "c1", "me", time.Minute); !ok {
		t.Fatal("lease")
	}
	mark.LeaseOwner = "me"
	if err := env.Store.MarkExpired(ctx, mark); err != nil {
		t.Fatal(err)
	}
	r, _ = env.Store.Get(ctx, "t1", "c1")
	if r.Conn.Status != connection.StatusExpired || r.Conn.StatusReason != "invalid_grant" || r.Conn.Version != 4 {
		t.Fatalf("after mark: %+v", r.Conn)
	}
	entries, _, err := env.Store.Audit(ctx, "t1", "c1", "", 10)
	if err != nil || len(entries) != 3 || entries[0].Action != connection.ActionExpired || entries[1].Action != connection.ActionAuthorized {
		t.Fatalf("audit: %+v %v", entries, err)
	}

	// New tokens make it active again, with no reason left behind (SET, not REMOVE).
	if err := env.Store.PutTokens(ctx, store.TokenWrite{Tenant: "t1", ID: "c1", FromSecretVersion: 2, Secret: seal(t, env, "t1", "c1", 3, "tokens-3")}); err != nil {
		t.Fatal(err)
	}
	r, _ = env.Store.Get(ctx, "t1", "c1")
	if r.Conn.Status != connection.StatusActive || r.Conn.StatusReason != "" || r.Conn.SecretVersion != 3 {
		t.Fatalf("after reconnect: %+v", r.Conn)
	}

	// Tokens for a deleted connection are not stored.
	if err := env.Store.Delete(ctx, r, r.Conn.Version, connection.AuditEntry{ID: "01D", At: env.Clock.Now(), Actor: "alice", Action: connection.ActionDeleted}); err != nil {
		t.Fatal(err)
	}
	err = env.Store.PutTokens(ctx, store.TokenWrite{Tenant: "t1", ID: "c1", FromSecretVersion: 3, Secret: seal(t, env, "t1", "c1", 4, "tokens-4")})
	if !apperr.Is(err, apperr.NotFound) {
		t.Fatalf("tokens for a deleted connection: %v", err)
	}
	if _, err := env.Store.Get(ctx, "t1", "c1"); !apperr.Is(err, apperr.NotFound) {
		t.Fatalf("deleted connection came back: %v", err)
	}
}

func TestTouchLastUsed(t *testing.T) {
	env := stacktest.Start(t)
	ctx := context.Background()
	newConn(t, env, "t1", "c1")
	t0 := env.Clock.Now()
	if err := env.Store.TouchLastUsed(ctx, "t1", "c1", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	// An older time never goes backwards.
	if err := env.Store.TouchLastUsed(ctx, "t1", "c1", t0); err != nil {
		t.Fatal(err)
	}
	r, _ := env.Store.Get(ctx, "t1", "c1")
	if !r.Conn.LastUsedAt.Equal(t0.Add(time.Minute)) || r.Conn.Version != 1 {
		t.Fatalf("last used %v version %d", r.Conn.LastUsedAt, r.Conn.Version)
	}
	// A whole-item update keeps it.
	r.Conn.Name, r.Conn.Version = "renamed", 2
	if err := env.Store.Update(ctx, r, 1, r.Conn.Owners, store.Changes{}); err != nil {
		t.Fatal(err)
	}
	r, _ = env.Store.Get(ctx, "t1", "c1")
	if !r.Conn.LastUsedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("update lost last used: %v", r.Conn.LastUsedAt)
	}
	// Touching a connection that does not exist creates nothing.
	if err := env.Store.TouchLastUsed(ctx, "t1", "ghost", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Store.Get(ctx, "t1", "ghost"); !apperr.Is(err, apperr.NotFound) {
		t.Fatalf("touch created an item: %v", err)
	}
}
