package runtime_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/connmgr/connmgr/local/asl"
	"github.com/connmgr/connmgr/local/faults"
)

// TestRunWriteLostStepsNotRunAgain: run-step writes each step's result to
// an item of its own and the run item once, as its invocation ends. When
// that last write fails (DynamoDB answers 500 to every attempt), the task
// answers TaskUnavailable and the state machine retries it: the retry
// finds the steps' results in their items and records the run's success
// without sending any step's request again.
func TestRunWriteLostStepsNotRunAgain(t *testing.T) {
	w, ft := newRunsWorldWithFaults(t, "RunStepFunction")
	target := newFlakyTarget(t, "CANARY-run-pw-1")
	conn := w.connectionTo(t, target.URL+"/api", "CANARY-run-pw-1")

	ft.On("TransactWriteItems", 0, faults.Fault{Status: 500, Code: "InternalServerError"})
	const n = 3
	id := w.startGets(t, conn, n)
	ex := w.execution(t, id)
	w.waitTaskError(t, ex.ARN, "RunStep")
	if errs := w.taskErrors(t, ex.ARN, "RunStep"); fmt.Sprint(errs) != "[TaskUnavailable]" {
		t.Fatalf("run-step failed with %v, want TaskUnavailable", errs)
	}
	// While the run item lags, the run's view already shows the steps'
	// results, read from their items.
	v := waitRun(t, w.member, id, func(v runView) bool { return len(v.Steps) == n && v.Steps[n-1].Result != nil })
	if v.Status != "running" {
		t.Errorf("run %s while its write is being retried", v.Status)
	}

	ft.Clear()
	w.rt.Clock.Advance(2 * time.Second) // the TaskUnavailable retry's backoff, at most
	v = waitRun(t, w.member, id, status("succeeded"))
	for i, s := range v.Steps {
		if s.Result == nil || s.Result.Outcome != "succeeded" || s.Result.Attempts != 1 {
			t.Errorf("step %s: %+v, want succeeded at the first attempt", s.ID, s.Result)
		}
		if got := target.hitsOf(fmt.Sprintf("/api/s%d", i)); got != 1 {
			t.Errorf("step %d reached the target %d times, want 1", i, got)
		}
	}
	if n := len(w.waitEvents(t, "Run Succeeded", id, 1)); n != 1 {
		t.Errorf("%d Run Succeeded events, want 1", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if ex, err := w.rt.Engine.WaitExecution(ctx, ex.ARN); err != nil || ex.Status != asl.StatusSucceeded {
		t.Errorf("execution %s (%v)", ex.Status, err)
	}
	w.checkNoCanaries(t)
}

// TestTerminatedWhileRunningRunsNoMoreSteps: run-step reads the run before
// each further step of its invocation, so a run terminated while one of
// its steps is in flight sends no further request; the step in flight
// keeps its result.
func TestTerminatedWhileRunningRunsNoMoreSteps(t *testing.T) {
	w := newRunsWorld(t)
	var (
		mu      sync.Mutex
		hits    = map[string]int{}
		arrived = make(chan struct{})
		release = make(chan struct{})
	)
	target := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		mu.Unlock()
		if r.URL.Path == "/api/s1" {
			close(arrived)
			<-release
		}
		fmt.Fprintf(rw, `{"path": %q}`, r.URL.Path)
	}))
	t.Cleanup(target.Close)
	conn := w.connectionTo(t, target.URL+"/api", "CANARY-run-pw-1")
	id := w.startGets(t, conn, 4)
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("step s1 never reached the target")
	}
	r := w.member.do("POST", "/runs/"+id+"/terminate", nil, nil)
	w.member.expect(r, 202, "terminate")
	close(release)

	v := waitRun(t, w.member, id, func(v runView) bool { return v.Status == "terminated" && v.Steps[1].Result != nil })
	if v.Steps[0].Result == nil || v.Steps[0].Result.Outcome != "succeeded" || v.Steps[1].Result.Outcome != "succeeded" {
		t.Errorf("the steps before the termination: %+v, %+v", v.Steps[0].Result, v.Steps[1].Result)
	}
	// run-step's invocation ends once it has read the terminated run.
	ex := w.execution(t, id)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w.rt.Engine.WaitIdle(ctx)
	mu.Lock()
	defer mu.Unlock()
	if hits["/api/s2"] != 0 || hits["/api/s3"] != 0 {
		t.Errorf("steps after the termination reached the target: %v; history:\n%s", hits, w.historyText(t, ex.ARN))
	}
	if v.Steps[2].Result != nil || v.Steps[3].Result != nil {
		t.Errorf("steps after the termination have results: %+v %+v", v.Steps[2].Result, v.Steps[3].Result)
	}
	if v.Reason != "terminated_by_user" {
		t.Errorf("reason %q", v.Reason)
	}
}
