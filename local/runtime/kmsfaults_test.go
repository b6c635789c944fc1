package runtime_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/connmgr/connmgr/local/clock"
	"github.com/connmgr/connmgr/local/faults"
	"github.com/connmgr/connmgr/local/logbuf"
	"github.com/connmgr/connmgr/local/runtime"
)

// newRunsWorldWithFaults is newRunsWorld on a runtime whose function fn
// (a logical id) sends every AWS request through the returned transport.
func newRunsWorldWithFaults(t *testing.T, fn string) (*runsWorld, *faults.Transport) {
	t.Helper()
	ft := &faults.Transport{}
	logs := &logbuf.Buffer{}
	rt, err := runtime.Start(context.Background(), runtime.Options{Addr: "127.0.0.1:0", Clock: clock.New(), Log: logs,
		FunctionHTTP: func(name string) aws.HTTPClient {
			if name == fn {
				return ft.Client()
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return newRunsWorldOn(t, rt, logs), ft
}

// TestKMSOutageDuringSteps (issue 12): the resolve function's KMS
// throttling, failing or unreachable while a step needs a cold resolution
// (a fresh connection: no data key cached) makes the step transient, never
// an authentication failure: the run is never suspended, the connection
// stays active, and once KMS is back the step is retried after the state
// machine's wait and the run succeeds. Only the resolve function's Decrypt
// meets the fault (every attempt the SDK makes); the other functions' KMS
// and DynamoDB are untouched.
func TestKMSOutageDuringSteps(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fault  faults.Fault
		reason string // the resolver's failure code in the task's cause
	}{
		{"throttled", faults.Fault{Status: 400, Code: "ThrottlingException"}, "throttled"},
		{"internal failure", faults.Fault{Status: 500, Code: "KMSInternalException"}, "key_unavailable"},
		{"unreachable", faults.Fault{Unreachable: true}, "key_unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, ft := newRunsWorldWithFaults(t, "ResolveFunction")
			target := newFlakyTarget(t, "CANARY-run-pw-1")
			conn := w.connectionTo(t, target.URL+"/api", "CANARY-run-pw-1")

			ft.On("Decrypt", 0, tc.fault) // KMS down from the first resolution on
			id := w.startGets(t, conn, 3)
			ex := w.execution(t, id)
			w.waitTaskError(t, ex.ARN, "RunStep")
			outage := ft.Hits("Decrypt")
			if outage == 0 {
				t.Fatal("the step failed without meeting the KMS fault")
			}
			if causes := w.taskFailures(t, ex.ARN, "RunStep"); len(causes) != 1 || !strings.Contains(causes[0].Cause, "transient step failure: "+tc.reason) {
				t.Errorf("the transient step's failures %+v, want one naming %s", causes, tc.reason)
			}
			if n := len(w.events("Run Suspended", id)); n != 0 {
				t.Errorf("%d Run Suspended events during the outage", n)
			}

			// KMS recovers; the retry waits the state machine's backoff (at
			// most 5 s) on the runtime's clock.
			ft.Clear()
			w.rt.Clock.Advance(5 * time.Second)
			w.recoveredAtStep(t, id, ex.ARN, target, 0)
			r := w.admin.do("GET", "/connections/"+conn, nil, nil)
			if !strings.Contains(string(r.body), `"status":"active"`) {
				t.Errorf("the connection after a KMS outage: %s", r.body)
			}
			t.Logf("KMS %s: %d faulty Decrypt requests, one StepTransient (%s), then the run succeeded", tc.name, outage, tc.reason)
			w.checkNoCanaries(t)
		})
	}
}
