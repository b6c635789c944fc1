package asl_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connmgr/connmgr/local/asl"
)

// The workflow's functions, by the ARNs the substitutions give them.
const (
	runStepFn = "arn:aws:lambda:us-east-1:111122223333:function:connmgr-run-step"
	suspendFn = "arn:aws:lambda:us-east-1:111122223333:function:connmgr-suspend-run"
	finishFn  = "arn:aws:lambda:us-east-1:111122223333:function:connmgr-finish-run"
	// leaked is a value run-step returns beside its outcome; ResultSelector
	// must keep it out of the state data.
	leaked = "s3cr3t-from-the-step"
)

var workflowSubs = map[string]string{
	"RunStepFunctionArn":    runStepFn,
	"SuspendRunFunctionArn": suspendFn,
	"FinishRunFunctionArn":  finishFn,
}

// repoFile reads a file relative to the module root (the folder with go.mod).
func repoFile(t *testing.T, rel string) []byte {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			b, err := os.ReadFile(filepath.Join(dir, rel))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// done is run-step's answer for a run it finished; its other answers are
// function errors, by name.
func done() map[string]any { return map[string]any{"outcome": "done", "step": 1, "debug": leaked} }

var (
	runContinues = &asl.FunctionError{Type: "RunContinues", Message: "the run continues at step 1"}
	runSuspended = &asl.FunctionError{Type: "RunSuspended", Message: "step 0 failed to authenticate with connection conn-1 (auth_failed): the run suspends"}
)

// workflow is a run of workflow-run.asl.json against scripted functions.
type workflow struct {
	*harness
	arn   string
	mu    sync.Mutex
	token string
}

func startWorkflow(t *testing.T, runStep, finish handler) *workflow {
	t.Helper()
	return startWorkflowWith(t, runStep, nil, finish)
}

// fullBackoff is a Jitter that waits the whole computed backoff: the
// workflow's retries then happen at known offsets, their latest.
func fullBackoff(d time.Duration) time.Duration { return d }

// startWorkflowWith runs the workflow with a scripted suspend-run too: it
// answers before suspend-run records the token (an error: nothing
// recorded) or after (nil: the token is recorded, as suspend-run does).
func startWorkflowWith(t *testing.T, runStep, suspend, finish handler) *workflow {
	t.Helper()
	w := &workflow{}
	w.harness = newHarnessJitter(t, func(ctx context.Context, c call) (any, error) {
		switch c.fn {
		case runStepFn:
			return runStep(ctx, c)
		case suspendFn:
			if suspend != nil {
				if out, err := suspend(ctx, c); err != nil {
					return out, err
				}
			}
			w.mu.Lock()
			w.token, _ = c.payload["taskToken"].(string)
			w.mu.Unlock()
			return map[string]any{"suspended": true}, nil
		case finishFn:
			if finish != nil {
				return finish(ctx, c)
			}
			return nil, nil
		}
		return nil, &asl.FunctionError{Type: "ResourceNotFoundException", Message: c.fn}
	}, fullBackoff)
	def := repoFile(t, "statemachines/workflow-run.asl.json")
	sm := w.machine("WorkflowRun", string(def), workflowSubs)
	w.arn = w.start(sm, "t1-r1", `{"tenant":"t1","runId":"r1"}`).ARN
	return w
}

func (w *workflow) taskToken() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.token
}

// succeeded checks that the execution succeeded at RunStep: run-step
// recorded the success, finish-run is not called.
func (w *workflow) succeeded(ex asl.Execution) {
	w.t.Helper()
	if ex.Status != asl.StatusSucceeded {
		w.t.Fatalf("execution %s %s (%s), want SUCCEEDED; history:\n%s", ex.Status, ex.Error, ex.Cause, w.historyText(w.arn))
	}
	if n := len(w.fn.callsTo(finishFn)); n != 0 {
		w.t.Errorf("finish-run called %d times for a run run-step finished", n)
	}
	w.requireStateDataFree(w.arn, leaked, w.taskToken())
}

// finishedWith checks the execution's end and what finish-run was told.
func (w *workflow) finishedWith(ex asl.Execution, status asl.Status, errName, finishStatus, finishError string) {
	w.t.Helper()
	if ex.Status != status || ex.Error != errName {
		w.t.Fatalf("execution %s %s (%s), want %s %s; history:\n%s", ex.Status, ex.Error, ex.Cause, status, errName, w.historyText(w.arn))
	}
	calls := w.fn.callsTo(finishFn)
	if len(calls) == 0 {
		w.t.Fatal("finish-run was not called")
	}
	p := calls[len(calls)-1].payload
	if p["tenant"] != "t1" || p["runId"] != "r1" || p["status"] != finishStatus || fmt.Sprint(p["error"]) != finishError {
		w.t.Errorf("finish-run payload %v, want status %s error %s", p, finishStatus, finishError)
	}
	w.requireStateDataFree(w.arn, leaked, w.taskToken())
}

// attempts lists the $$.State.RetryCount each call was made with.
func attempts(calls []call) []any {
	var out []any
	for _, c := range calls {
		out = append(out, c.payload["attempt"])
	}
	return out
}

func TestWorkflowRun(t *testing.T) {
	if _, err := asl.Parse(repoFile(t, "statemachines/workflow-run.asl.json"), workflowSubs); err != nil {
		t.Fatalf("the workflow does not load: %v", err)
	}

	t.Run("done at once is one state transition", func(t *testing.T) {
		w := startWorkflow(t, func(context.Context, call) (any, error) { return done(), nil }, nil)
		w.succeeded(w.finished(w.arn))
		entered := 0
		for _, ev := range w.history(w.arn) {
			if strings.HasSuffix(string(ev.Type), "StateEntered") {
				entered++
			}
		}
		if entered != 1 {
			t.Errorf("%d states entered, want 1 (RunStep); history:\n%s", entered, w.historyText(w.arn))
		}
	})

	t.Run("continue then done succeeds", func(t *testing.T) {
		w := startWorkflow(t, func(_ context.Context, c call) (any, error) {
			if c.n == 0 {
				return nil, runContinues
			}
			return done(), nil
		}, nil)
		w.succeeded(w.finished(w.arn))
		if got := fmt.Sprint(attempts(w.fn.callsTo(runStepFn))); got != "[0 0]" {
			t.Errorf("run-step attempts %s, want [0 0] (a new entry each)", got)
		}
	})

	t.Run("suspend, resume, the step runs again", func(t *testing.T) {
		w := startWorkflow(t, func(_ context.Context, c call) (any, error) {
			if c.n == 0 {
				return nil, runSuspended
			}
			return done(), nil
		}, nil)
		w.idle()
		if ex := w.describe(w.arn); ex.Status != asl.StatusRunning {
			t.Fatalf("status %s while suspended", ex.Status)
		}
		sus := w.fn.callsTo(suspendFn)
		if len(sus) != 1 {
			t.Fatalf("suspend-run calls: %d", len(sus))
		}
		p := sus[0].payload
		if p["tenant"] != "t1" || p["runId"] != "r1" || p["attempt"] != 0.0 || p["taskToken"] != w.taskToken() || w.taskToken() == "" || len(p) != 4 {
			t.Errorf("suspend-run payload %v", p)
		}
		if err := w.eng.SendTaskSuccess(w.taskToken(), `{"resumed":true}`); err != nil {
			t.Fatal(err)
		}
		w.succeeded(w.finished(w.arn))
		if n := len(w.fn.callsTo(runStepFn)); n != 2 {
			t.Errorf("run-step called %d times, want 2", n)
		}
		requireCode(t, w.eng.SendTaskSuccess(w.taskToken(), `{}`), asl.CodeTaskTimedOut)
		// The token travels in the task's parameters only, as in AWS.
		var inParams bool
		for _, ev := range w.history(w.arn) {
			inParams = inParams || ev.Type == asl.EventTaskScheduled && strings.Contains(ev.Parameters, w.taskToken())
		}
		if !inParams {
			t.Error("the token is not in the TaskScheduled parameters")
		}
	})

	t.Run("suspended for more than 10 days is terminated", func(t *testing.T) {
		w := startWorkflow(t, func(context.Context, call) (any, error) {
			return nil, runSuspended
		}, nil)
		w.idle()
		begin := time.Now()
		w.clk.Advance(240*time.Hour + time.Second)
		ex := w.finished(w.arn)
		if took := time.Since(begin); took > time.Second {
			t.Errorf("the 10-day timeout took %v of real time", took)
		}
		w.finishedWith(ex, asl.StatusFailed, "RunTerminated", "terminated", "States.Timeout")
		requireCode(t, w.eng.SendTaskSuccess(w.taskToken(), `{}`), asl.CodeTaskTimedOut)
	})

	t.Run("terminated while suspended", func(t *testing.T) {
		w := startWorkflow(t, func(context.Context, call) (any, error) {
			return nil, runSuspended
		}, nil)
		w.idle()
		if err := w.eng.SendTaskFailure(w.taskToken(), "RunTerminated", "terminated by a user"); err != nil {
			t.Fatal(err)
		}
		w.finishedWith(w.finished(w.arn), asl.StatusFailed, "RunTerminated", "terminated", "RunTerminated")
	})

	t.Run("transient step errors are retried with backoff, then the run fails", func(t *testing.T) {
		w := startWorkflow(t, func(context.Context, call) (any, error) {
			return nil, &asl.FunctionError{Type: "StepTransient", Message: "upstream 503"}
		}, nil)
		ex := w.runUntilDone(w.arn, time.Second, 100)
		w.finishedWith(ex, asl.StatusFailed, "RunFailed", "failed", "StepTransient")
		if got := fmt.Sprint(offsets(w.fn.callsTo(runStepFn))); got != "[0s 5s 15s 35s]" {
			t.Errorf("run-step attempts at %s, want [0s 5s 15s 35s]", got)
		}
	})

	t.Run("Lambda service errors are retried", func(t *testing.T) {
		w := startWorkflow(t, func(_ context.Context, c call) (any, error) {
			if c.n < 2 {
				return nil, errors.New("503 Service Unavailable")
			}
			if c.n == 2 {
				return nil, &asl.FunctionError{Type: "StepFailed", Message: "step 0 failed: bad_request"}
			}
			return done(), nil
		}, func(_ context.Context, c call) (any, error) {
			if c.n == 0 {
				return nil, &asl.FunctionError{Type: "ConditionalCheckFailed"}
			}
			return nil, nil
		})
		ex := w.runUntilDone(w.arn, time.Second, 100)
		w.finishedWith(ex, asl.StatusFailed, "RunFailed", "failed", "StepFailed")
		if got := fmt.Sprint(offsets(w.fn.callsTo(runStepFn))); got != "[0s 2s 6s]" {
			t.Errorf("run-step attempts at %s", got)
		}
		if got := fmt.Sprint(offsets(w.fn.callsTo(finishFn))); got != "[6s 8s]" {
			t.Errorf("finish-run attempts at %s", got)
		}
	})

	t.Run("a Lambda service error on Suspend is retried and the run still suspends", func(t *testing.T) {
		w := startWorkflowWith(t, func(_ context.Context, c call) (any, error) {
			if c.n == 0 {
				return nil, runSuspended
			}
			return done(), nil
		}, func(_ context.Context, c call) (any, error) {
			if c.n == 0 {
				return nil, errors.New("Rate exceeded") // the Lambda service, not the function
			}
			return nil, nil
		}, nil)
		w.idle()
		w.clk.Advance(2 * time.Second) // the retry's whole backoff
		w.idle()
		sus := w.fn.callsTo(suspendFn)
		if len(sus) != 2 || fmt.Sprint(offsets(sus)) != "[0s 2s]" {
			t.Fatalf("suspend-run called at %v, want [0s 2s]", offsets(sus))
		}
		first, _ := sus[0].payload["taskToken"].(string)
		if sus[0].payload["attempt"] != 0.0 || sus[1].payload["attempt"] != 1.0 || first == "" || first == w.taskToken() {
			t.Errorf("suspend-run attempts %v and %v: want attempt 0 then 1, each with its own token", sus[0].payload["attempt"], sus[1].payload["attempt"])
		}
		if ex := w.describe(w.arn); ex.Status != asl.StatusRunning {
			t.Fatalf("status %s, want RUNNING (suspended); history:\n%s", ex.Status, w.historyText(w.arn))
		}
		failed := 0
		for _, ev := range w.history(w.arn) {
			if ev.Type == asl.EventTaskFailed && ev.Error == "Lambda.ServiceException" {
				failed++
			}
		}
		if failed != 1 {
			t.Errorf("%d TaskFailed Lambda.ServiceException events, want 1", failed)
		}
		// The failed attempt's token died with it; the retry's resumes.
		requireCode(t, w.eng.SendTaskSuccess(first, `{}`), asl.CodeTaskTimedOut)
		if err := w.eng.SendTaskSuccess(w.taskToken(), `{}`); err != nil {
			t.Fatal(err)
		}
		w.succeeded(w.finished(w.arn))
	})

	t.Run("TaskUnavailable on Suspend is retried", func(t *testing.T) {
		w := startWorkflowWith(t, func(context.Context, call) (any, error) {
			return nil, runSuspended
		}, func(_ context.Context, c call) (any, error) {
			if c.n < 2 {
				return nil, &asl.FunctionError{Type: "TaskUnavailable", Message: "throttled"}
			}
			return nil, nil
		}, nil)
		for _, d := range []time.Duration{2 * time.Second, 4 * time.Second} {
			w.idle()
			w.clk.Advance(d)
		}
		w.idle()
		if got := fmt.Sprint(offsets(w.fn.callsTo(suspendFn))); got != "[0s 2s 6s]" {
			t.Errorf("suspend-run called at %s, want [0s 2s 6s]", got)
		}
		if err := w.eng.SendTaskFailure(w.taskToken(), "RunTerminated", "terminated by a user"); err != nil {
			t.Fatal(err)
		}
		w.finishedWith(w.finished(w.arn), asl.StatusFailed, "RunTerminated", "terminated", "RunTerminated")
	})

	t.Run("suspend-run refusing a suspension beyond the limit terminates the run", func(t *testing.T) {
		w := startWorkflowWith(t, func(context.Context, call) (any, error) {
			return nil, runSuspended
		}, func(context.Context, call) (any, error) {
			return nil, &asl.FunctionError{Type: "TooManySuspensions", Message: "the run was suspended 30 times"}
		}, nil)
		w.finishedWith(w.finished(w.arn), asl.StatusFailed, "RunTerminated", "terminated", "TooManySuspensions")
		if n := len(w.fn.callsTo(suspendFn)); n != 1 {
			t.Errorf("suspend-run called %d times, want 1 (not retried)", n)
		}
	})

	t.Run("TaskUnavailable from run-step is retried with backoff, then the run fails", func(t *testing.T) {
		w := startWorkflow(t, func(context.Context, call) (any, error) {
			return nil, &asl.FunctionError{Type: "TaskUnavailable", Message: "store_unavailable"}
		}, nil)
		ex := w.runUntilDone(w.arn, time.Second, 200)
		w.finishedWith(ex, asl.StatusFailed, "RunFailed", "failed", "TaskUnavailable")
		if got := fmt.Sprint(offsets(w.fn.callsTo(runStepFn))); got != "[0s 2s 6s 14s 30s 1m2s 2m2s]" {
			t.Errorf("run-step attempts at %s, want [0s 2s 6s 14s 30s 1m2s 2m2s] (MaxDelaySeconds 60)", got)
		}
	})

	// Lambda.Unknown (no error type: out of memory, the runtime exited) and
	// Sandbox.Timedout are not Lambda service errors: the function ran, and
	// its action may have taken effect. The run fails at once, the error
	// recorded.
	for _, errType := range []string{"", "Sandbox.Timedout"} {
		name := errType
		if name == "" {
			name = asl.ErrorLambdaUnknown
		}
		t.Run(name+" from run-step is not retried", func(t *testing.T) {
			w := startWorkflow(t, func(context.Context, call) (any, error) {
				return nil, &asl.FunctionError{Type: errType, Message: "crashed"}
			}, nil)
			w.finishedWith(w.finished(w.arn), asl.StatusFailed, "RunFailed", "failed", name)
			if n := len(w.fn.callsTo(runStepFn)); n != 1 {
				t.Errorf("run-step called %d times, want 1", n)
			}
		})
	}

	t.Run("a failed step fails the run", func(t *testing.T) {
		w := startWorkflow(t, func(context.Context, call) (any, error) {
			return nil, &asl.FunctionError{Type: "StepFailed", Message: "step 0 failed: bad_request"}
		}, nil)
		w.finishedWith(w.finished(w.arn), asl.StatusFailed, "RunFailed", "failed", "StepFailed")
	})

	t.Run("run-step must answer an outcome", func(t *testing.T) {
		w := startWorkflow(t, func(context.Context, call) (any, error) {
			return map[string]any{"step": 0}, nil
		}, nil)
		ex := w.finished(w.arn)
		if ex.Status != asl.StatusFailed || ex.Error != asl.ErrorRuntime || len(w.fn.callsTo(finishFn)) != 0 {
			t.Fatalf("got %s %s %s", ex.Status, ex.Error, ex.Cause)
		}
	})
}
