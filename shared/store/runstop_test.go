package store_test

import (
	"context"
	"testing"

	"github.com/connmgr/connmgr/local/stacktest"
	"github.com/connmgr/connmgr/shared/runs"
	"github.com/connmgr/connmgr/shared/store"
)

// TestRunStopped: terminating a running run leaves its stop marker, in the
// same write; a run that ends any other way has none.
func TestRunStopped(t *testing.T) {
	env := stacktest.Start(t)
	ctx := context.Background()
	now := env.Clock.Now()
	steps := []runs.Step{{ID: "s0", Action: runs.ActionHTTPRequest, Connection: "c1", Input: runs.RequestSpec{Method: "GET", Path: "/"}}}
	tests := []struct {
		name     string
		from, to runs.Status
		stopped  bool
	}{
		{"terminated while running", runs.StatusRunning, runs.StatusTerminated, true},
		{"terminated while suspended", runs.StatusSuspended, runs.StatusTerminated, false},
		{"succeeded", runs.StatusRunning, runs.StatusSucceeded, false},
		{"failed", runs.StatusRunning, runs.StatusFailed, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &runs.Run{Tenant: "t1", ID: "01RUNSTOP" + string(rune('A'+i)), WorkflowID: "wf", Site: "/sites/a", Owner: "olga",
				Status: tt.from, Steps: steps, Version: 1, CreatedAt: now, UpdatedAt: now}
			if tt.from == runs.StatusSuspended {
				r.Suspension = &runs.Suspension{Connection: "c1", Reason: "expired", SuspendedAt: now, TerminatesAt: now.Add(runs.SuspensionTimeout)}
			}
			if err := env.Store.CreateRun(ctx, r); err != nil {
				t.Fatal(err)
			}
			if stopped, err := env.Store.RunStopped(ctx, r.Tenant, r.ID); err != nil || stopped {
				t.Fatalf("before: stopped %v, %v", stopped, err)
			}
			next := *r
			next.Status, next.Suspension, next.Version, next.FinishedAt = tt.to, nil, 2, now
			if err := env.Store.UpdateRun(ctx, r, &next, store.RunCondition{}); err != nil {
				t.Fatal(err)
			}
			if stopped, err := env.Store.RunStopped(ctx, r.Tenant, r.ID); err != nil || stopped != tt.stopped {
				t.Errorf("after: stopped %v (%v), want %v", stopped, err, tt.stopped)
			}
		})
	}
}
