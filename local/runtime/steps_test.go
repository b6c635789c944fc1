package runtime_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connmgr/connmgr/local/asl"
	"github.com/connmgr/connmgr/local/lambdaserver"
	"github.com/connmgr/connmgr/local/runtime"
)

// transitions counts an execution's state transitions as Step Functions
// bills them: every state entered, and every retry of a task (a retry runs
// the state again: its task is scheduled once more within the same entry).
// byState splits the count by state name.
func transitions(t *testing.T, rt *runtime.Runtime, execARN string) (total int, byState map[string]int) {
	t.Helper()
	h, err := rt.Engine.History(execARN)
	if err != nil {
		t.Fatal(err)
	}
	byState = map[string]int{}
	state := ""
	scheduled := map[string]int{} // task schedules since the state was entered
	for _, ev := range h {
		switch {
		case strings.HasSuffix(string(ev.Type), "StateEntered"):
			state = ev.StateName
			scheduled[state] = 0
			byState[state]++
		case ev.Type == asl.EventTaskScheduled:
			if scheduled[state]++; scheduled[state] > 1 {
				byState[state]++
			}
		}
	}
	for _, n := range byState {
		total += n
	}
	return total, byState
}

// stepStates are the states a run's steps pass through; the others end a
// run that failed or was terminated (MarkFailed, Failed, ...), once.
var stepStates = []string{"RunStep", "Suspend"}

func stepTransitions(byState map[string]int) int {
	n := 0
	for _, s := range stepStates {
		n += byState[s]
	}
	return n
}

// flakyTarget is an HTTP API that accepts the runs' password and answers
// 503 to the requests for the paths in fail, once each.
type flakyTarget struct {
	*httptest.Server
	mu   sync.Mutex
	fail map[string]bool
	hits map[string]int
}

func newFlakyTarget(t *testing.T, password string, fail ...string) *flakyTarget {
	ft := &flakyTarget{fail: map[string]bool{}, hits: map[string]int{}}
	for _, p := range fail {
		ft.fail[p] = true
	}
	ft.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ft.mu.Lock()
		ft.hits[r.URL.Path]++
		failNow := ft.fail[r.URL.Path]
		ft.fail[r.URL.Path] = false
		ft.mu.Unlock()
		if u, p, ok := r.BasicAuth(); !ok || u != "svc" || p != password {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if failNow {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, `{"path": %q}`, r.URL.Path)
	}))
	t.Cleanup(ft.Close)
	return ft
}

func (ft *flakyTarget) hitsOf(path string) int {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return ft.hits[path]
}

// startGets starts a run of n GET steps /api/s0 ... on conn.
func (w *runsWorld) startGets(t *testing.T, conn string, n int) string {
	t.Helper()
	var steps []map[string]any
	for i := range n {
		steps = append(steps, map[string]any{"id": fmt.Sprintf("s%d", i), "action": "http.request", "connection": conn,
			"input": map[string]any{"method": "GET", "path": fmt.Sprintf("/s%d", i)}})
	}
	r := w.member.do("POST", "/runs", map[string]any{"workflowId": "wf-steps", "site": "/sites/hr", "steps": steps}, nil)
	w.member.expect(r, 202, "start run")
	var v struct{ ID string }
	decode(t, r, &v)
	return v.ID
}

func (w *runsWorld) connectionTo(t *testing.T, baseURL, password string) string {
	t.Helper()
	r := w.admin.do("POST", "/connections", map[string]any{"type": "http-basic", "name": "Flaky", "kind": "shared",
		"settings": map[string]any{"baseUrl": baseURL}, "credentials": map[string]any{"username": "svc", "password": password}}, nil)
	w.admin.expect(r, 201, "create connection")
	var v struct{ ID string }
	decode(t, r, &v)
	return v.ID
}

// TestRunStepTransitions: a run of 20 steps that succeed takes at most one
// state transition per step (issue 12: three before, RunStep → Outcome →
// NextStep); run-step runs them in one invocation and ends the execution,
// one transition in all. Its record still shows every step's outcome.
func TestRunStepTransitions(t *testing.T) {
	w := newRunsWorld(t)
	target := newFlakyTarget(t, "CANARY-run-pw-1")
	conn := w.connectionTo(t, target.URL+"/api", "CANARY-run-pw-1")
	const n = 20
	id := w.startGets(t, conn, n)
	v := waitRun(t, w.member, id, status("succeeded"))
	if len(v.Steps) != n {
		t.Fatalf("%d steps in the run record, want %d", len(v.Steps), n)
	}
	for i, s := range v.Steps {
		if s.Result == nil || s.Result.Outcome != "succeeded" || s.Result.Status != 200 || s.Result.Attempts != 1 {
			t.Errorf("step %d (%s): result %+v", i, s.ID, s.Result)
		}
		if got := target.hitsOf(fmt.Sprintf("/api/s%d", i)); got != 1 {
			t.Errorf("step %d reached the target %d times", i, got)
		}
	}
	// The run is recorded succeeded as its last invocation ends: the
	// execution ends just after.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ex, err := w.rt.Engine.WaitExecution(ctx, w.execution(t, id).ARN)
	if err != nil || ex.Status != asl.StatusSucceeded {
		t.Fatalf("execution %s (%v)", ex.Status, err)
	}
	total, byState := transitions(t, w.rt, ex.ARN)
	steps := stepTransitions(byState)
	t.Logf("%d successful steps: %d state transitions for the steps, %d in all (%v)", n, steps, total, byState)
	if steps > n || total != 1 {
		t.Errorf("%d state transitions for %d steps, %d in all; want at most %d, 1 in all", steps, n, total, n)
	}
	w.checkNoCanaries(t)
}

// TestResolverFaultsDuringSteps (issue 12): the resolve function throttled
// (Lambda's 429, through every attempt of the SDK) or timing out during a
// step makes the step transient, never an authentication failure: the run
// is never suspended, the step is retried after the state machine's wait,
// and the run succeeds with every step's outcome recorded. The fault hits
// the second step, after the first succeeded in the same invocation, so
// the retry takes its own task entry.
func TestResolverFaultsDuringSteps(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault lambdaserver.Fault
		calls int // faulty invocations: all of the SDK's attempts, or one
	}{
		{"throttled", lambdaserver.Fault{Throttle: true}, 3},
		{"timing out", lambdaserver.Fault{Delay: time.Second, Timeout: 100 * time.Millisecond}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newRunsWorld(t)
			target := newFlakyTarget(t, "CANARY-run-pw-1")
			conn := w.connectionTo(t, target.URL+"/api", "CANARY-run-pw-1")
			var mu sync.Mutex
			resolves, faulted := 0, 0
			w.rt.Lambda.InjectFaults(func(fn string) lambdaserver.Fault {
				if fn != "ResolveFunction" {
					return lambdaserver.Fault{}
				}
				mu.Lock()
				defer mu.Unlock()
				resolves++
				if resolves >= 2 && faulted < tc.calls { // step s1's resolution
					faulted++
					return tc.fault
				}
				return lambdaserver.Fault{}
			})
			id := w.startGets(t, conn, 3)
			ex := w.execution(t, id)
			// The retry waits the state machine's backoff (at most 5 s) on
			// the runtime's clock: move it once the step has failed.
			w.waitTaskError(t, ex.ARN, "RunStep")
			w.rt.Clock.Advance(5 * time.Second)
			w.recoveredAtStep(t, id, ex.ARN, target, 1)
			if faulted != tc.calls {
				t.Errorf("%d faulty resolve invocations, want %d", faulted, tc.calls)
			}
			r := w.admin.do("GET", "/connections/"+conn, nil, nil)
			if !strings.Contains(string(r.body), `"status":"active"`) {
				t.Errorf("the connection after a resolver fault: %s", r.body)
			}
			_, byState := transitions(t, w.rt, ex.ARN)
			t.Logf("3 steps, the second retried after the resolver was %s: %d step transitions %v", tc.name, stepTransitions(byState), byState)
			w.checkNoCanaries(t)
		})
	}
}

// taskFailures lists the TaskFailed events of a task state.
func (w *runsWorld) taskFailures(t *testing.T, execARN, stateName string) []asl.Event {
	t.Helper()
	h, err := w.rt.Engine.History(execARN)
	if err != nil {
		t.Fatal(err)
	}
	var out []asl.Event
	state := ""
	for _, e := range h {
		if e.StateName != "" {
			state = e.StateName
		}
		if e.Type == asl.EventTaskFailed && state == stateName {
			out = append(out, e)
		}
	}
	return out
}

// recoveredAtStep checks a run of GET steps (startGets) whose step faulty
// met a transient fault before its credential came: the run succeeded,
// that step after two attempts and the others after one, the faulty step
// reached the target once, the run was never suspended, and run-step
// failed once, with StepTransient (then retried).
func (w *runsWorld) recoveredAtStep(t *testing.T, id, execARN string, target *flakyTarget, faulty int) {
	t.Helper()
	v := waitRun(t, w.member, id, status("succeeded"))
	for i, s := range v.Steps {
		attempts := 1
		if i == faulty {
			attempts = 2 // the transient failure, then the retry
		}
		if s.Result == nil || s.Result.Outcome != "succeeded" || s.Result.Attempts != attempts {
			t.Errorf("step %s: %+v, want succeeded after %d attempts", s.ID, s.Result, attempts)
		}
	}
	if got := target.hitsOf(fmt.Sprintf("/api/s%d", faulty)); got != 1 {
		t.Errorf("the faulty step reached the target %d times, want 1 (its credential never came)", got)
	}
	if n := len(w.events("Run Suspended", id)); n != 0 {
		t.Errorf("%d Run Suspended events: a transient fault suspended the run", n)
	}
	if errs := w.taskErrors(t, execARN, "RunStep"); fmt.Sprint(errs) != "[StepTransient]" {
		t.Errorf("run-step failed with %v, want one StepTransient (then retried)", errs)
	}
}

// waitTaskError waits until the task state has failed at least once
// (taskErrors: run-step's answers that are caught by name left out).
func (w *runsWorld) waitTaskError(t *testing.T, execARN, stateName string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(w.taskErrors(t, execARN, stateName)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s never failed; history:\n%s", stateName, w.historyText(t, execARN))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// taskErrors lists the errors a task state failed with, leaving out
// run-step's answers that are errors only to be caught by name (the run
// continues, or suspends).
func (w *runsWorld) taskErrors(t *testing.T, execARN, stateName string) []string {
	t.Helper()
	var out []string
	for _, e := range w.taskFailures(t, execARN, stateName) {
		if e.Error != "RunContinues" && e.Error != "RunSuspended" {
			out = append(out, e.Error)
		}
	}
	return out
}

func (w *runsWorld) historyText(t *testing.T, execARN string) string {
	h, err := w.rt.Engine.History(execARN)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range h {
		fmt.Fprintf(&b, "%s %s %s %s\n", e.Type, e.StateName, e.Error, e.Output)
	}
	return b.String()
}
