package workflow_test

import (
	"testing"

	"github.com/connmgr/connmgr/shared/runs"
	"github.com/connmgr/connmgr/shared/workflow"
)

// TestFinalReason: every way the state machine ends a run records why,
// whatever reason the run held before.
func TestFinalReason(t *testing.T) {
	for _, tc := range []struct {
		status            runs.Status
		errName, recorded string
		want              string
	}{
		{runs.StatusSucceeded, "", "target_unavailable_503", ""},
		{runs.StatusTerminated, "States.Timeout", "", "suspension_timeout"},
		{runs.StatusTerminated, "TooManySuspensions", "", "too_many_suspensions"},
		{runs.StatusTerminated, "RunTerminated", "", "terminated"},
		{runs.StatusFailed, "StepFailed", "bad_request_400", "bad_request_400"},
		{runs.StatusFailed, "StepFailed", "", "step_failed"},
		{runs.StatusFailed, "StepTransient", "target_unavailable_503", "retries_exhausted: target_unavailable_503"},
		// Failures of the platform replace a reason an earlier attempt left.
		{runs.StatusFailed, "TaskUnavailable", "target_unavailable_503", "retries_exhausted: task_unavailable"},
		{runs.StatusFailed, "Lambda.ServiceException", "", "retries_exhausted: lambda_unavailable"},
		{runs.StatusFailed, "Lambda.TooManyRequestsException", "x", "retries_exhausted: lambda_unavailable"},
		{runs.StatusFailed, "Lambda.Unknown", "target_unavailable_503", "task_crashed"},
		{runs.StatusFailed, "Sandbox.Timedout", "", "task_timed_out"},
		{runs.StatusFailed, "States.Runtime", "", "state_machine_error: States.Runtime"},
		{runs.StatusFailed, "engine_unavailable", "", "engine_unavailable"},
		{runs.StatusFailed, "wrapError", "", "task_failed: wrapError"},
		{runs.StatusFailed, "", "", "failed"},
	} {
		if got := workflow.FinalReason(tc.status, tc.errName, tc.recorded); got != tc.want {
			t.Errorf("FinalReason(%s, %q, %q) = %q, want %q", tc.status, tc.errName, tc.recorded, got, tc.want)
		}
	}
}
