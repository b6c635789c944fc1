package runtime_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connmgr/connmgr/local/clock"
	"github.com/connmgr/connmgr/local/lambdaserver"
	"github.com/connmgr/connmgr/local/logbuf"
	"github.com/connmgr/connmgr/local/runtime"
	"github.com/connmgr/connmgr/local/sfnserver"
	"github.com/connmgr/connmgr/shared/ratelimit"
)

// Mass resume (issue 12): 1,000 runs suspended on one connection, its
// credentials fixed, and SendTaskSuccess throttled. The bucket is scaled
// down from the account's: AWS gives SendTaskSuccess a bucket of 3,000
// refilled at 500/s in the largest Regions, which one connection's resume,
// fanned out at ≤100/s (workflow resumeInterval), never empties. Here it
// holds 20 calls refilled at 25 a second, a twentieth of AWS's refill, as
// if the rest of the account's traffic took the rest, so the fan-out
// outruns it and the SDK's retries and the resume's own quota wait (past
// them, the redelivery of Connection Updated) must carry every run. (At 50 a second
// the fan-out of two test runs sharing 2 cores, 47 a second, never met
// the limit.)
// `go test -short` resumes 100 runs against a bucket smaller still, so
// they too outrun it; `make test` runs the 1,000.
type massScale struct {
	runs, burst int
	rate        float64 // SendTaskSuccess a second
}

var (
	massFull  = massScale{runs: 1000, burst: 20, rate: 25}
	massShort = massScale{runs: 100, burst: 10, rate: 20}
)

// TestMassResumeThrottled: every run is resumed exactly once (one Run
// Resumed event) and succeeds, none is lost, and SendTaskSuccess never
// went through faster than its bucket allows.
func TestMassResumeThrottled(t *testing.T) {
	scale := massFull
	if testing.Short() {
		scale = massShort
	}
	massRuns := scale.runs
	eventLog := 20 * massRuns
	limits := sfnserver.NewLimits(nil) // real time: the runtime clock jumps below
	logs := &logbuf.Buffer{}
	clk := clock.New()
	rt, err := runtime.Start(context.Background(), runtime.Options{Addr: "127.0.0.1:0", Clock: clk, Log: logs,
		SFNLimits: limits, EventLogSize: eventLog})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	w := newRunsWorldOn(t, rt, logs)
	conn := w.connection(t, "CANARY-run-pw-1")
	w.target.setPassword("CANARY-run-pw-2")

	// Start the runs through the API; the tenant's run-start limit counts
	// fixed windows on the runtime clock, so a 429 moves it a window on.
	began := time.Now()
	ids := make([]string, massRuns)
	var (
		clkMu sync.Mutex
		wg    sync.WaitGroup
		next  = make(chan int)
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				for {
					r := w.member.do("POST", "/runs", map[string]any{"workflowId": "wf-payroll", "site": "/sites/hr", "steps": []map[string]any{
						{"id": "fetch", "action": "http.request", "connection": conn, "input": map[string]any{"method": "GET", "path": "/items"}},
					}}, nil)
					if r.status == 429 {
						clkMu.Lock()
						clk.Advance(ratelimit.Window)
						clkMu.Unlock()
						continue
					}
					if r.status != 202 {
						t.Errorf("start run %d: %d %s", i, r.status, r.body)
						return
					}
					var v struct{ ID string }
					if err := json.Unmarshal(r.body, &v); err != nil {
						t.Error(err)
						return
					}
					ids[i] = v.ID
					break
				}
			}
		}()
	}
	for i := range massRuns {
		next <- i
	}
	close(next)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	waitCount(t, massRuns, 3*time.Minute, "runs suspended", func() int { return len(distinctRuns(rt, "Run Suspended")) })
	t.Logf("%d runs started and suspended in %v", massRuns, time.Since(began).Round(time.Millisecond))

	// Throttle SendTaskSuccess, then fix the connection.
	limits.Set("SendTaskSuccess", scale.burst, scale.rate)
	type sample struct {
		at      time.Time
		allowed int
	}
	var (
		samples []sample
		stop    = make(chan struct{})
		sampled = make(chan struct{})
	)
	go func() {
		defer close(sampled)
		for {
			a, _ := limits.Counts("SendTaskSuccess")
			samples = append(samples, sample{time.Now(), a})
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	fixed := time.Now()
	w.admin.expect(w.admin.do("PATCH", "/connections/"+conn, map[string]any{"credentials": map[string]any{"username": "svc", "password": "CANARY-run-pw-2"}}, nil), 200, "fix connection")

	// A failed delivery of Connection Updated is retried by Lambda after
	// its delays on the runtime clock: move the clock when one waits.
	redeliveries := 0
	deadline := time.Now().Add(3 * time.Minute)
	for len(distinctRuns(rt, "Run Succeeded")) < massRuns {
		if time.Now().After(deadline) {
			break
		}
		if pending := strings.Count(logs.String(), "asynchronous invocation failed; retrying"); pending > redeliveries {
			clk.Advance(lambdaserver.DefaultAsyncRetryDelays[len(lambdaserver.DefaultAsyncRetryDelays)-1])
			redeliveries = pending
		}
		time.Sleep(200 * time.Millisecond)
	}
	took := time.Since(fixed)
	close(stop)
	<-sampled
	allowed, throttled := limits.Counts("SendTaskSuccess")
	t.Logf("%d runs resumed in %v: SendTaskSuccess %d let through, %d throttled; %d redeliveries of Connection Updated; %d dropped; %d events",
		massRuns, took.Round(time.Millisecond), allowed, throttled, redeliveries, strings.Count(logs.String(), "dropped after its last attempt"), rt.Bus.Total())

	// The counts below read the bus's log: it must still hold every event.
	if total := rt.Bus.Total(); total > eventLog {
		t.Fatalf("the bus recorded %d events and keeps %d: the counts would miss some", total, eventLog)
	}
	resumed, succeeded := distinctRuns(rt, "Run Resumed"), distinctRuns(rt, "Run Succeeded")
	lost, twice := 0, 0
	for _, id := range ids {
		switch n := resumed[id]; {
		case n == 0:
			lost++
		case n > 1:
			twice++
		}
		if succeeded[id] != 1 && resumed[id] == 1 {
			t.Errorf("run %s resumed but %d Run Succeeded events", id, succeeded[id])
		}
	}
	if lost > 0 || twice > 0 {
		t.Errorf("%d runs never resumed, %d resumed more than once; want every one of %d exactly once", lost, twice, massRuns)
	}
	if throttled == 0 {
		t.Errorf("SendTaskSuccess never throttled: the test shows nothing")
	}
	// Never faster than the bucket: over any span, at most its burst plus
	// its refill (and one sampling interval of slack each way).
	for i := range samples {
		for j := i + 1; j < len(samples); j++ {
			span := samples[j].at.Sub(samples[i].at) + 100*time.Millisecond
			if got, most := samples[j].allowed-samples[i].allowed, scale.burst+int(scale.rate*span.Seconds()+0.5); got > most {
				t.Fatalf("%d SendTaskSuccess let through in %v, bucket allows %d", got, span, most)
			}
		}
	}
	w.checkNoCanaries(t)
}

// distinctRuns counts each run's distinct events of detailType (by
// detail.eventId: delivery is at least once).
func distinctRuns(rt *runtime.Runtime, detailType string) map[string]int {
	out := map[string]int{}
	seen := map[string]bool{}
	for _, r := range rt.Bus.Events(detailType) {
		var d struct{ EventID, RunID string }
		if json.Unmarshal(r.Event.Detail, &d) != nil || seen[d.EventID] {
			continue
		}
		seen[d.EventID] = true
		out[d.RunID]++
	}
	return out
}

// waitCount polls count until it reaches want.
func waitCount(t *testing.T, want int, within time.Duration, what string, count func() int) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		n := count()
		if n >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d", what, n, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
