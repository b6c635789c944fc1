package workflow

import "github.com/connmgr/connmgr/shared/apperr"

// StepInput is the state machine's input and each RunStep payload: ids
// only. The step to run is the run's (runs.Run.Current).
type StepInput struct {
	Tenant string `json:"tenant"`
	RunID  string `json:"runId"`
	// Attempt is the task's $$.State.RetryCount in a RunStep payload: 0
	// on entering the state, then 1, 2, ... on its retries.
	Attempt int `json:"attempt,omitempty"`
}

// ErrTokenGone: the task token no longer waits (its task timed out, or the
// execution ended); resuming with it is a recorded no-op.
var ErrTokenGone = apperr.E(apperr.Conflict, "task_token_gone", "the run no longer waits on this suspension")

// Errors the state machine catches by name. The Engine in AWS, Step
// Functions, is package sfnengine: only the functions that start, resume
// or stop executions link its client.
const (
	ErrorRunTerminated = "RunTerminated"
)
