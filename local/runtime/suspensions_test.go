package runtime_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connmgr/connmgr/local/asl"
	"github.com/connmgr/connmgr/local/clock"
	"github.com/connmgr/connmgr/local/logbuf"
	"github.com/connmgr/connmgr/local/runtime"
	"github.com/connmgr/connmgr/shared/runs"
	"github.com/connmgr/connmgr/shared/store"
)

// startWith is start with the engine's Lambda invocations wrapped.
func startWith(t *testing.T, wrap func(asl.Invoker) asl.Invoker) (*runtime.Runtime, *logbuf.Buffer) {
	t.Helper()
	logs := &logbuf.Buffer{}
	rt, err := runtime.Start(context.Background(), runtime.Options{Addr: "127.0.0.1:0", Clock: clock.New(), Log: logs, EngineInvoker: wrap})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt, logs
}

// storedRun reads a run as the table holds it (counters the API does not show).
func (w *runsWorld) storedRun(t *testing.T, id string) *runs.Run {
	t.Helper()
	r, err := store.New(w.rt.Stack.DynamoDBClient(), w.rt.Stack.TableName, w.rt.Clock.Now).GetRun(context.Background(), "contoso", id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// waitStored polls the stored run until cond holds.
func (w *runsWorld) waitStored(t *testing.T, id string, what string, cond func(*runs.Run) bool) *runs.Run {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := w.storedRun(t, id)
		if cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s never became %s: status %s, %d suspensions, reason %q", id, what, r.Status, r.Suspensions, r.Reason)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// execution is the run's execution (named by run id).
func (w *runsWorld) execution(t *testing.T, id string) asl.Execution {
	t.Helper()
	for _, ex := range w.rt.Engine.Executions() {
		if ex.Name == id {
			return ex
		}
	}
	t.Fatalf("no execution for run %s", id)
	return asl.Execution{}
}

// waitEvents waits for at least n events of detailType about the run (a
// committed transition publishes its events just after the write).
func (w *runsWorld) waitEvents(t *testing.T, detailType, runID string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs := w.events(detailType, runID)
		if len(evs) >= n || time.Now().After(deadline) {
			return evs
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// events are the distinct events of detailType about the run, by
// detail.eventId: delivery is at least once (the outbox drain may publish
// an event again).
func (w *runsWorld) events(detailType, runID string) []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range w.rt.Bus.Events(detailType) {
		var d struct {
			EventID string `json:"eventId"`
			RunID   string `json:"runId"`
		}
		if json.Unmarshal(r.Event.Detail, &d) != nil || d.RunID != runID || seen[d.EventID] {
			continue
		}
		seen[d.EventID] = true
		out = append(out, string(r.Event.Detail))
	}
	return out
}

// TestSuspendRetriedAfterLambdaServiceError: the Lambda service fails the
// first invocation of suspend-run, before it runs or after it ran (its
// answer lost). The state machine retries it; the run is suspended once,
// on the retry's token, and a fix of its connection resumes it.
func TestSuspendRetriedAfterLambdaServiceError(t *testing.T) {
	for _, tc := range []struct {
		name     string
		afterRun bool
	}{
		{"the invocation refused", false},
		{"the answer lost after suspend-run ran", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var injected atomic.Int32
			rt, logs := startWith(t, func(next asl.Invoker) asl.Invoker {
				return asl.InvokerFunc(func(ctx context.Context, fn string, payload []byte) ([]byte, error) {
					if strings.HasSuffix(fn, ":function:SuspendRunFunction") && injected.CompareAndSwap(0, 1) {
						if tc.afterRun {
							if _, err := next.Invoke(ctx, fn, payload); err != nil {
								t.Errorf("suspend-run before the lost answer: %v", err)
							}
						}
						return nil, errors.New("Rate Exceeded. (injected Lambda service error)")
					}
					return next.Invoke(ctx, fn, payload)
				})
			})
			w := newRunsWorldOn(t, rt, logs)
			conn := w.connection(t, "CANARY-run-pw-1")
			w.target.setPassword("CANARY-run-pw-2")
			id := w.start(t, conn)

			// The retry waits up to 2 s (full jitter) on the real-time clock.
			r := w.waitStored(t, id, "suspended by the retry", func(r *runs.Run) bool {
				return r.Status == runs.StatusSuspended && r.SuspendAttempt == 1
			})
			if r.Suspensions != 1 || r.Results[0].Attempts != 1 {
				t.Errorf("after a retried suspension: %d suspensions, step attempts %d; want 1 and 1", r.Suspensions, r.Results[0].Attempts)
			}
			ex := w.execution(t, id)
			if got := w.taskErrors(t, ex.ARN, "Suspend"); fmt.Sprint(got) != "[Lambda.ServiceException]" {
				t.Errorf("Suspend task failures %v, want one Lambda.ServiceException", got)
			}
			if n := len(w.waitEvents(t, "Run Suspended", id, 1)); n != 1 {
				t.Errorf("%d Run Suspended events, want 1", n)
			}

			// The token on record is the live one: fixing the connection
			// resumes the run, and it succeeds.
			w.admin.expect(w.admin.do("PATCH", "/connections/"+conn, map[string]any{"credentials": map[string]any{"username": "svc", "password": "CANARY-run-pw-2"}}, nil), 200, "fix connection")
			v := waitRun(t, w.member, id, func(v runView) bool { return v.Status != "suspended" && v.Status != "running" })
			if v.Status != "succeeded" {
				t.Fatalf("run after the fix: %+v", v)
			}
			if injected.Load() != 1 {
				t.Errorf("%d injected failures, want 1", injected.Load())
			}
			if n := len(w.events("Run Suspended", id)); n != 1 {
				t.Errorf("%d Run Suspended events in all, want 1", n)
			}
			w.checkNoCanaries(t)
			checkCallsGranted(t, w.rt)
		})
	}
}

// TestTooManySuspensionsTerminatesTheRun: a run resumed and suspended
// again and again, each time a little under the 10-day timeout apart on
// the runtime's clock, is terminated at the suspension after
// runs.MaxSuspensions, with its reason recorded, long before Standard's
// one-year execution limit.
func TestTooManySuspensionsTerminatesTheRun(t *testing.T) {
	w := newRunsWorld(t)
	conn := w.connection(t, "CANARY-run-pw-1")
	w.target.setPassword("CANARY-run-pw-2") // never fixed
	id := w.start(t, conn)
	w.waitStored(t, id, "suspended", func(r *runs.Run) bool { return r.Status == runs.StatusSuspended })
	started := w.storedRun(t, id).CreatedAt

	const gap = runs.SuspensionTimeout - 4*time.Hour // each suspension waits almost its whole timeout
	ctx := context.Background()
	for n := 2; n <= runs.MaxSuspensions+1; n++ {
		w.rt.Clock.Advance(gap)
		// A Connection Updated that does not fix the credentials resumes
		// the run; its step fails again.
		ev, _ := json.Marshal(map[string]any{"version": "0", "id": fmt.Sprintf("delivery-%d", n), "detail-type": "Connection Updated", "source": "connmgr",
			"account": "111122223333", "region": "us-east-1", "time": w.rt.Clock.Now().UTC().Format(time.RFC3339),
			"detail": map[string]any{"schemaVersion": 1, "eventId": fmt.Sprintf("01SUSPENSIONLIMITEVENT%04d", n), "tenant": "contoso", "connectionId": conn,
				"type": "http-basic", "kind": "shared", "owners": []string{"alice"}, "status": "active", "changes": []string{"settings.baseUrl"}, "version": 2, "at": w.rt.Clock.Now().UTC()}})
		if _, err := w.rt.Lambda.Invoke(ctx, "ResumeRunsFunction", ev); err != nil {
			t.Fatal(err)
		}
		if n <= runs.MaxSuspensions {
			w.waitStored(t, id, fmt.Sprintf("suspended %d times", n), func(r *runs.Run) bool {
				return r.Status == runs.StatusSuspended && r.Suspensions == n
			})
		}
	}
	r := w.waitStored(t, id, "terminated", func(r *runs.Run) bool { return r.Status.Terminal() })
	if r.Status != runs.StatusTerminated || r.Reason != "too_many_suspensions" || r.Suspensions != runs.MaxSuspensions {
		t.Fatalf("run after %d suspensions: %s (%s), %d suspensions counted", runs.MaxSuspensions, r.Status, r.Reason, r.Suspensions)
	}
	if r.Results[0].Attempts != runs.MaxSuspensions+1 {
		t.Errorf("the step ran %d times, want %d", r.Results[0].Attempts, runs.MaxSuspensions+1)
	}
	if age := r.FinishedAt.Sub(started); age >= runs.MaxExecutionTime {
		t.Errorf("the run ended %v after it started, beyond a Standard execution's %v", age, runs.MaxExecutionTime)
	} else {
		t.Logf("%d suspensions %v apart: terminated after %.0f days (limit %.0f)", runs.MaxSuspensions, gap, age.Hours()/24, runs.MaxExecutionTime.Hours()/24)
	}
	ctxW, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ex, err := w.rt.Engine.WaitExecution(ctxW, w.execution(t, id).ARN)
	if err != nil {
		t.Fatal(err)
	}
	if ex.Status != asl.StatusFailed || ex.Error != "RunTerminated" {
		t.Errorf("execution %s %s, want FAILED RunTerminated", ex.Status, ex.Error)
	}
	if got := w.taskErrors(t, ex.ARN, "Suspend"); len(got) != 1 || got[0] != "TooManySuspensions" {
		t.Errorf("Suspend task failures %v, want one TooManySuspensions", got)
	}
	terminated := w.events("Run Terminated", id)
	if len(terminated) != 1 || !strings.Contains(terminated[0], "too_many_suspensions") {
		t.Errorf("Run Terminated events: %v", terminated)
	}
	if n := len(w.events("Run Suspended", id)); n != runs.MaxSuspensions {
		t.Errorf("%d Run Suspended events, want %d", n, runs.MaxSuspensions)
	}
	w.checkNoCanaries(t)
	checkCallsGranted(t, w.rt)
}
