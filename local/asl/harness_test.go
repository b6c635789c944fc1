package asl_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connmgr/connmgr/local/asl"
	"github.com/connmgr/connmgr/local/clock"
)

// t0 is where every test clock starts.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// call is one Lambda invocation the fake saw.
type call struct {
	fn      string
	payload map[string]any
	at      time.Time // on the test clock
	n       int       // index among the calls to fn
}

// handler answers one invocation: a JSON-able output or an error.
type handler func(ctx context.Context, c call) (any, error)

// fakeLambda is a scripted Invoker.
type fakeLambda struct {
	clk    *clock.Clock
	handle handler
	mu     sync.Mutex
	calls  []call
}

func (f *fakeLambda) Invoke(ctx context.Context, fn string, payload []byte) ([]byte, error) {
	var p map[string]any
	if err := json.Unmarshal(payload, &p); err != nil {
		return nil, err
	}
	f.mu.Lock()
	c := call{fn: fn, payload: p, at: f.clk.Now()}
	for _, old := range f.calls {
		if old.fn == fn {
			c.n++
		}
	}
	f.calls = append(f.calls, c)
	f.mu.Unlock()
	out, err := f.handle(ctx, c)
	if err != nil {
		return nil, err
	}
	return json.Marshal(out)
}

func (f *fakeLambda) callsTo(fn string) []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []call
	for _, c := range f.calls {
		if c.fn == fn {
			out = append(out, c)
		}
	}
	return out
}

type harness struct {
	t   *testing.T
	clk *clock.Clock
	eng *asl.Engine
	fn  *fakeLambda
}

func newHarness(t *testing.T, h handler) *harness {
	t.Helper()
	return newHarnessJitter(t, h, nil)
}

// newHarnessJitter is newHarness with the engine's Options.Jitter set
// (nil: the engine's random draw).
func newHarnessJitter(t *testing.T, h handler, jitter func(time.Duration) time.Duration) *harness {
	t.Helper()
	clk := clock.Fixed(t0)
	if h == nil {
		h = func(context.Context, call) (any, error) { return map[string]any{}, nil }
	}
	fl := &fakeLambda{clk: clk, handle: h}
	eng := asl.NewEngine(asl.Options{Clock: clk, Invoker: fl, Jitter: jitter})
	t.Cleanup(eng.Close)
	return &harness{t: t, clk: clk, eng: eng, fn: fl}
}

// machine registers def under name and returns its ARN.
func (h *harness) machine(name, def string, subs map[string]string) string {
	h.t.Helper()
	sm, err := h.eng.CreateStateMachine(asl.StateMachineSpec{Name: name, Definition: []byte(def), Substitutions: subs})
	if err != nil {
		h.t.Fatalf("CreateStateMachine: %v", err)
	}
	return sm.ARN
}

func (h *harness) start(smARN, name, input string) asl.Execution {
	h.t.Helper()
	ex, err := h.eng.StartExecution(smARN, name, input)
	if err != nil {
		h.t.Fatalf("StartExecution: %v", err)
	}
	return ex
}

func (h *harness) idle() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.eng.WaitIdle(ctx); err != nil {
		h.t.Fatalf("WaitIdle: %v", err)
	}
}

func (h *harness) describe(arn string) asl.Execution {
	h.t.Helper()
	ex, err := h.eng.DescribeExecution(arn)
	if err != nil {
		h.t.Fatalf("DescribeExecution: %v", err)
	}
	return ex
}

// finished waits for quiescence and requires the execution to have ended.
func (h *harness) finished(arn string) asl.Execution {
	h.t.Helper()
	h.idle()
	ex := h.describe(arn)
	if ex.Status == asl.StatusRunning {
		h.t.Fatalf("execution still RUNNING; history:\n%s", h.historyText(arn))
	}
	return ex
}

// runUntilDone advances the clock by step whenever the engine is idle,
// until the execution ends (at most max steps).
func (h *harness) runUntilDone(arn string, step time.Duration, max int) asl.Execution {
	h.t.Helper()
	for i := 0; i < max; i++ {
		h.idle()
		if ex := h.describe(arn); ex.Status != asl.StatusRunning {
			return ex
		}
		h.clk.Advance(step)
	}
	h.t.Fatalf("execution still running after %d steps of %v", max, step)
	return asl.Execution{}
}

func (h *harness) history(arn string) []asl.Event {
	h.t.Helper()
	evs, err := h.eng.History(arn)
	if err != nil {
		h.t.Fatalf("History: %v", err)
	}
	return evs
}

func (h *harness) historyText(arn string) string {
	evs, _ := h.eng.History(arn)
	var b strings.Builder
	for _, ev := range evs {
		b.WriteString(string(ev.Type) + " " + ev.StateName + " " + ev.Input + ev.Output + ev.Error + " " + ev.Cause + "\n")
	}
	return b.String()
}

// requireStateDataFree checks that no state input or output and no
// execution output contains any of the strings.
func (h *harness) requireStateDataFree(arn string, secrets ...string) {
	h.t.Helper()
	for _, ev := range h.history(arn) {
		if !ev.IsStateEvent() && ev.Type != asl.EventExecutionSucceeded {
			continue
		}
		for _, s := range secrets {
			if s != "" && (strings.Contains(ev.Input, s) || strings.Contains(ev.Output, s)) {
				h.t.Errorf("event %d %s %s carries a secret: %s%s", ev.ID, ev.Type, ev.StateName, ev.Input, ev.Output)
			}
		}
	}
}

// jsonEqual compares two JSON texts as values.
func jsonEqual(t *testing.T, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("got is not JSON: %q", got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want is not JSON: %q", want)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func requireCode(t *testing.T, err error, code string) {
	t.Helper()
	var ae *asl.APIError
	if !errors.As(err, &ae) || ae.Code != code {
		t.Fatalf("error = %v, want %s", err, code)
	}
}

func decodeObject(s string) (map[string]any, error) {
	var m map[string]any
	err := json.Unmarshal([]byte(s), &m)
	return m, err
}
