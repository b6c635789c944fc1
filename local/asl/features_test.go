package asl_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connmgr/connmgr/local/asl"
)

func TestPassParametersAndPaths(t *testing.T) {
	const input = `{"x":{"y":"why"},"list":[10,20,30],"sub":{"keep":{"k":1},"drop":2},"a b":"spaced"}`
	for _, tc := range []struct {
		name, state, want string
	}{
		{"no fields passes input through", `"Type":"Pass"`, input},
		{"Parameters: static, paths, nested objects and arrays",
			`"Type":"Pass","Parameters":{"a.$":"$.x.y","b":{"c.$":"$.list[1]","d":[1,{"e.$":"$.x"}]},"s":"lit","n":null}`,
			`{"a":"why","b":{"c":20,"d":[1,{"e":{"y":"why"}}]},"s":"lit","n":null}`},
		{"bracket field", `"Type":"Pass","Parameters":{"v.$":"$['a b']"}`, `{"v":"spaced"}`},
		{"whole input", `"Type":"Pass","Parameters":{"all.$":"$"}`, `{"all":` + input + `}`},
		{"context object",
			`"Type":"Pass","Parameters":{"id.$":"$$.Execution.Id","name.$":"$$.Execution.Name","in.$":"$$.Execution.Input.x","state.$":"$$.State.Name","sm.$":"$$.StateMachine.Id","start.$":"$$.Execution.StartTime"}`,
			`{"id":"arn:aws:states:us-east-1:111122223333:execution:m:e1","name":"e1","in":{"y":"why"},"state":"P","sm":"arn:aws:states:us-east-1:111122223333:stateMachine:m","start":"2030-01-02T03:04:05.000Z"}`},
		{"Result at ResultPath", `"Type":"Pass","Result":{"k":"v"},"ResultPath":"$.r","OutputPath":"$.r"`, `{"k":"v"}`},
		{"ResultPath creates nested objects", `"Type":"Pass","Result":7,"ResultPath":"$.p.q.r","OutputPath":"$.p"`, `{"q":{"r":7}}`},
		{"ResultPath replaces a field", `"Type":"Pass","Result":"new","ResultPath":"$.x","InputPath":"$.sub","OutputPath":"$.x"`, `"new"`},
		{"ResultPath null discards the result", `"Type":"Pass","Result":{"k":"v"},"ResultPath":null`, input},
		{"InputPath and OutputPath", `"Type":"Pass","InputPath":"$.sub","OutputPath":"$.keep"`, `{"k":1}`},
		{"InputPath null is {}", `"Type":"Pass","InputPath":null`, `{}`},
		{"OutputPath null is {}", `"Type":"Pass","OutputPath":null`, `{}`},
		{"Parameters see InputPath's output", `"Type":"Pass","InputPath":"$.sub","Parameters":{"k.$":"$.keep.k"}`, `{"k":1}`},
		{"ResultPath applies to the raw input", `"Type":"Pass","InputPath":"$.sub","Parameters":{"k.$":"$.keep.k"},"ResultPath":"$.out","OutputPath":"$.out"`, `{"k":1}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			arn := h.machine("m", `{"StartAt":"P","States":{"P":{`+tc.state+`,"End":true}}}`, nil)
			ex := h.finished(h.start(arn, "e1", input).ARN)
			if ex.Status != asl.StatusSucceeded {
				t.Fatalf("status %s %s %s", ex.Status, ex.Error, ex.Cause)
			}
			jsonEqual(t, ex.Output, tc.want)
		})
	}
}

func TestPathFailuresAreRuntimeErrors(t *testing.T) {
	for _, tc := range []struct{ name, def, cause string }{
		{"Parameters path", pass(`"Parameters":{"m.$":"$.missing"},`), `The JSONPath '$.missing' specified for the field 'm.$' could not be found in the input`},
		{"index out of range", pass(`"Parameters":{"m.$":"$.list[5]"},`), `'$.list[5]'`},
		{"InputPath", pass(`"InputPath":"$.nope",`), `Invalid path '$.nope' in InputPath`},
		{"ResultPath through a string", pass(`"Result":1,"ResultPath":"$.s.x",`), `Unable to apply ResultPath '$.s.x'`},
		{"caught by nothing", `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke",
			"Parameters":{"FunctionName":"fn","Payload":{"m.$":"$.missing"}},
			"Catch":[{"ErrorEquals":["States.ALL"],"Next":"C"}],"End":true},"C":{"Type":"Succeed"}}}`, `could not be found`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			ex := h.finished(h.start(h.machine("m", tc.def, nil), "", `{"list":[1],"s":"str"}`).ARN)
			if ex.Status != asl.StatusFailed || ex.Error != asl.ErrorRuntime || !strings.Contains(ex.Cause, tc.cause) {
				t.Fatalf("got %s %s %q; want FAILED States.Runtime containing %q", ex.Status, ex.Error, ex.Cause, tc.cause)
			}
		})
	}
}

func TestChoiceOperators(t *testing.T) {
	const input = `{"s":"hello","n":5,"f":1.0,"b":true,"z":null,"other":"hello","arr":[1]}`
	for _, tc := range []struct {
		rule string
		want string // "yes", "no", or an error name
	}{
		{`"Variable":"$.s","StringEquals":"hello"`, "yes"},
		{`"Variable":"$.s","StringEquals":"Hello"`, "no"},
		{`"Variable":"$.n","StringEquals":"5"`, "no"}, // type mismatch is false
		{`"Variable":"$.s","StringLessThan":"world"`, "yes"},
		{`"Variable":"$.s","StringGreaterThanEquals":"hello"`, "yes"},
		{`"Variable":"$.s","StringEqualsPath":"$.other"`, "yes"},
		{`"Variable":"$.s","StringMatches":"he*o"`, "yes"},
		{`"Variable":"$.s","StringMatches":"he\\*o"`, "no"},
		{`"Variable":"$.n","NumericEquals":5`, "yes"},
		{`"Variable":"$.f","NumericEquals":1`, "yes"},
		{`"Variable":"$.n","NumericEquals":6`, "no"},
		{`"Variable":"$.s","NumericEquals":5`, "no"},
		{`"Variable":"$.n","NumericLessThan":6`, "yes"},
		{`"Variable":"$.n","NumericGreaterThan":5`, "no"},
		{`"Variable":"$.n","NumericLessThanEquals":5`, "yes"},
		{`"Variable":"$.n","NumericGreaterThanEqualsPath":"$.f"`, "yes"},
		{`"Variable":"$.b","BooleanEquals":true`, "yes"},
		{`"Variable":"$.b","BooleanEquals":false`, "no"},
		{`"Variable":"$.s","BooleanEquals":true`, "no"},
		{`"Variable":"$.s","IsPresent":true`, "yes"},
		{`"Variable":"$.missing","IsPresent":true`, "no"},
		{`"Variable":"$.missing","IsPresent":false`, "yes"},
		{`"Variable":"$.arr[3]","IsPresent":false`, "yes"},
		{`"Variable":"$.z","IsNull":true`, "yes"},
		{`"Variable":"$.s","IsString":true`, "yes"},
		{`"Variable":"$.n","IsNumeric":true`, "yes"},
		{`"Variable":"$.b","IsBoolean":false`, "no"},
		{`"Variable":"$$.Execution.Name","StringEquals":"e1"`, "yes"},
		{`"And":[{"Variable":"$.s","StringEquals":"hello"},{"Variable":"$.n","NumericEquals":5}]`, "yes"},
		{`"And":[{"Variable":"$.s","StringEquals":"hello"},{"Variable":"$.n","NumericEquals":4}]`, "no"},
		{`"And":[{"Variable":"$.missing","IsPresent":true},{"Variable":"$.missing","StringEquals":"x"}]`, "no"}, // short-circuit
		{`"Or":[{"Variable":"$.n","NumericEquals":4},{"Variable":"$.b","BooleanEquals":true}]`, "yes"},
		{`"Or":[{"Variable":"$.n","NumericEquals":4},{"Variable":"$.b","BooleanEquals":false}]`, "no"},
		{`"Not":{"Variable":"$.s","StringEquals":"hello"}`, "no"},
		{`"Not":{"And":[{"Variable":"$.b","BooleanEquals":false}]}`, "yes"},
		{`"Variable":"$.missing","StringEquals":"x"`, asl.ErrorRuntime},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			h := newHarness(t, nil)
			def := `{"StartAt":"C","States":{"C":{"Type":"Choice","Choices":[{` + tc.rule + `,"Next":"Yes"}],"Default":"No"},
				"Yes":{"Type":"Pass","Result":"yes","End":true},"No":{"Type":"Pass","Result":"no","End":true}}}`
			ex := h.finished(h.start(h.machine("m", def, nil), "e1", input).ARN)
			got := strings.Trim(ex.Output, `"`)
			if ex.Status == asl.StatusFailed {
				got = ex.Error
			}
			if got != tc.want {
				t.Fatalf("got %s (%s %s), want %s", got, ex.Status, ex.Cause, tc.want)
			}
		})
	}
	t.Run("no match and no Default", func(t *testing.T) {
		h := newHarness(t, nil)
		def := `{"StartAt":"C","States":{"C":{"Type":"Choice","Choices":[{"Variable":"$.n","NumericEquals":1,"Next":"E"}]},"E":{"Type":"Succeed"}}}`
		ex := h.finished(h.start(h.machine("m", def, nil), "", input).ARN)
		if ex.Status != asl.StatusFailed || ex.Error != asl.ErrorNoChoiceMatched {
			t.Fatalf("got %s %s", ex.Status, ex.Error)
		}
	})
	t.Run("InputPath and OutputPath", func(t *testing.T) {
		h := newHarness(t, nil)
		def := `{"StartAt":"C","States":{"C":{"Type":"Choice","InputPath":"$.in","OutputPath":"$.v","Choices":[{"Variable":"$.v","NumericEquals":1,"Next":"E"}]},"E":{"Type":"Succeed"}}}`
		ex := h.finished(h.start(h.machine("m", def, nil), "", `{"in":{"v":1}}`).ARN)
		if ex.Status != asl.StatusSucceeded || ex.Output != "1" {
			t.Fatalf("got %s %q", ex.Status, ex.Output)
		}
	})
}

func TestTaskResultShaping(t *testing.T) {
	echo := func(_ context.Context, c call) (any, error) {
		return map[string]any{"out": c.payload["x"], "fn": c.fn}, nil
	}
	for _, tc := range []struct{ name, fields, want string }{
		{"raw lambda:invoke result", ``, `{"ExecutedVersion":"$LATEST","Payload":{"fn":"my-fn","out":"in"},"StatusCode":200}`},
		{"ResultSelector", `"ResultSelector":{"o.$":"$.Payload.out","code.$":"$.StatusCode","v.$":"$.ExecutedVersion","static":true},`,
			`{"o":"in","code":200,"v":"$LATEST","static":true}`},
		{"ResultPath keeps the input", `"ResultSelector":{"o.$":"$.Payload.out"},"ResultPath":"$.res",`,
			`{"sub":{"x":"in"},"res":{"o":"in"}}`},
		{"ResultPath null", `"ResultPath":null,`, `{"sub":{"x":"in"}}`},
		{"OutputPath", `"ResultPath":"$.res","OutputPath":"$.res.Payload",`, `{"fn":"my-fn","out":"in"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, echo)
			def := `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke",
				"Parameters":{"FunctionName":"${Fn}","Payload":{"x.$":"$.x"}},"InputPath":"$.sub",` + tc.fields + `"End":true}}}`
			ex := h.finished(h.start(h.machine("m", def, map[string]string{"Fn": "my-fn"}), "", `{"sub":{"x":"in"}}`).ARN)
			if ex.Status != asl.StatusSucceeded {
				t.Fatalf("status %s %s %s", ex.Status, ex.Error, ex.Cause)
			}
			jsonEqual(t, ex.Output, tc.want)
			if calls := h.fn.callsTo("my-fn"); len(calls) != 1 || calls[0].payload["x"] != "in" {
				t.Errorf("calls = %+v", calls)
			}
		})
	}
	t.Run("history events", func(t *testing.T) {
		h := newHarness(t, echo)
		def := `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke",
			"Parameters":{"FunctionName":"f","Payload":{}},"TimeoutSeconds":30,"Next":"S"},"S":{"Type":"Succeed"}}}`
		arn := h.start(h.machine("m", def, nil), "", `{}`).ARN
		h.finished(arn)
		var types []string
		for _, ev := range h.history(arn) {
			types = append(types, string(ev.Type))
			if ev.Type == asl.EventTaskScheduled && (ev.Resource != "invoke" || ev.ResourceType != "lambda" || ev.TimeoutSeconds != 30 || ev.Parameters != `{"FunctionName":"f","Payload":{}}`) {
				t.Errorf("TaskScheduled = %+v", ev)
			}
		}
		want := "ExecutionStarted TaskStateEntered TaskScheduled TaskStarted TaskSucceeded TaskStateExited SucceedStateEntered SucceedStateExited ExecutionSucceeded"
		if got := strings.Join(types, " "); got != want {
			t.Errorf("history:\n got %s\nwant %s", got, want)
		}
	})
}

// retryDef fails with whatever the handler says and retries as told.
func retryDef(retry string) string {
	return `{"StartAt":"T","States":{
		"T":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke","Parameters":{"FunctionName":"f","Payload":{"n.$":"$$.State.RetryCount"}},
			"Retry":` + retry + `,"End":true}}}`
}

func offsets(calls []call) []time.Duration {
	var out []time.Duration
	for _, c := range calls {
		out = append(out, c.at.Sub(t0))
	}
	return out
}

func TestRetryBackoffOnTheClock(t *testing.T) {
	boom := func(context.Context, call) (any, error) { return nil, &asl.FunctionError{Type: "Boom", Message: "no"} }
	sec := time.Second
	for _, tc := range []struct {
		name, retry string
		want        []time.Duration
	}{
		{"backoff with MaxDelaySeconds", `[{"ErrorEquals":["Boom"],"IntervalSeconds":3,"MaxAttempts":3,"BackoffRate":2,"MaxDelaySeconds":10}]`,
			[]time.Duration{0, 3 * sec, 9 * sec, 19 * sec}},
		{"defaults: 1s, 3 attempts, rate 2", `[{"ErrorEquals":["States.ALL"]}]`, []time.Duration{0, 1 * sec, 3 * sec, 7 * sec}},
		{"fractional rate", `[{"ErrorEquals":["Boom"],"IntervalSeconds":2,"MaxAttempts":2,"BackoffRate":1.5}]`, []time.Duration{0, 2 * sec, 5 * sec}},
		{"MaxAttempts 0 never retries", `[{"ErrorEquals":["Boom"],"MaxAttempts":0},{"ErrorEquals":["States.ALL"]}]`, []time.Duration{0}},
		{"an exhausted retrier does not fall through", `[{"ErrorEquals":["Boom"],"MaxAttempts":1,"IntervalSeconds":4},{"ErrorEquals":["States.ALL"],"MaxAttempts":5}]`,
			[]time.Duration{0, 4 * sec}},
		{"first matching retrier wins", `[{"ErrorEquals":["Other"],"MaxAttempts":9},{"ErrorEquals":["States.TaskFailed"],"MaxAttempts":2,"IntervalSeconds":5,"BackoffRate":1}]`,
			[]time.Duration{0, 5 * sec, 10 * sec}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, boom)
			arn := h.start(h.machine("m", retryDef(tc.retry), nil), "", `{}`).ARN
			ex := h.runUntilDone(arn, 500*time.Millisecond, 100)
			if ex.Status != asl.StatusFailed || ex.Error != "Boom" {
				t.Fatalf("got %s %s", ex.Status, ex.Error)
			}
			jsonEqual(t, ex.Cause, `{"errorType":"Boom","errorMessage":"no"}`)
			got := offsets(h.fn.callsTo("f"))
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("invocations at %v, want %v", got, tc.want)
			}
			for i, c := range h.fn.callsTo("f") {
				if fmt.Sprint(c.payload["n"]) != fmt.Sprint(i) {
					t.Errorf("call %d: $$.State.RetryCount = %v", i, c.payload["n"])
				}
			}
		})
	}
}

// TestRetryJitter: JitterStrategy FULL draws each wait from [0, the
// computed backoff], MaxDelaySeconds capping the backoff first; NONE (and
// no JitterStrategy) waits the backoff itself.
func TestRetryJitter(t *testing.T) {
	boom := func(context.Context, call) (any, error) { return nil, &asl.FunctionError{Type: "Boom"} }
	sec := time.Second
	half := func(d time.Duration) time.Duration { return d / 2 }
	for _, tc := range []struct {
		name, retry string
		jitter      func(time.Duration) time.Duration
		wantMaxes   []time.Duration // what Jitter was asked to draw from
		want        []time.Duration // invocation offsets
	}{
		{"FULL draws from the backoff", `[{"ErrorEquals":["Boom"],"IntervalSeconds":4,"MaxAttempts":3,"BackoffRate":2,"JitterStrategy":"FULL"}]`,
			half, []time.Duration{4 * sec, 8 * sec, 16 * sec}, []time.Duration{0, 2 * sec, 6 * sec, 14 * sec}},
		{"FULL after MaxDelaySeconds", `[{"ErrorEquals":["Boom"],"IntervalSeconds":4,"MaxAttempts":3,"BackoffRate":2,"MaxDelaySeconds":6,"JitterStrategy":"FULL"}]`,
			half, []time.Duration{4 * sec, 6 * sec, 6 * sec}, []time.Duration{0, 2 * sec, 5 * sec, 8 * sec}},
		{"a draw outside [0, max] is clamped", `[{"ErrorEquals":["Boom"],"IntervalSeconds":2,"MaxAttempts":2,"JitterStrategy":"FULL"}]`,
			func(d time.Duration) time.Duration { return 10 * d }, []time.Duration{2 * sec, 4 * sec}, []time.Duration{0, 2 * sec, 6 * sec}},
		{"NONE never draws", `[{"ErrorEquals":["Boom"],"IntervalSeconds":2,"MaxAttempts":2,"JitterStrategy":"NONE"}]`,
			half, nil, []time.Duration{0, 2 * sec, 6 * sec}},
		{"only the FULL retrier draws", `[{"ErrorEquals":["Other"],"JitterStrategy":"FULL"},{"ErrorEquals":["Boom"],"IntervalSeconds":2,"MaxAttempts":1}]`,
			half, nil, []time.Duration{0, 2 * sec}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var maxes []time.Duration
			h := newHarnessJitter(t, boom, func(d time.Duration) time.Duration {
				mu.Lock()
				defer mu.Unlock()
				maxes = append(maxes, d)
				return tc.jitter(d)
			})
			arn := h.start(h.machine("m", retryDef(tc.retry), nil), "", `{}`).ARN
			if ex := h.runUntilDone(arn, 500*time.Millisecond, 100); ex.Status != asl.StatusFailed || ex.Error != "Boom" {
				t.Fatalf("got %s %s", ex.Status, ex.Error)
			}
			if got := offsets(h.fn.callsTo("f")); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("invocations at %v, want %v", got, tc.want)
			}
			mu.Lock()
			defer mu.Unlock()
			if fmt.Sprint(maxes) != fmt.Sprint(tc.wantMaxes) {
				t.Errorf("Jitter asked for %v, want %v", maxes, tc.wantMaxes)
			}
		})
	}

	t.Run("the default draw stays within the backoff", func(t *testing.T) {
		const attempts = 6
		h := newHarness(t, boom)
		arn := h.start(h.machine("m", retryDef(`[{"ErrorEquals":["Boom"],"IntervalSeconds":8,"MaxAttempts":6,"BackoffRate":1,"JitterStrategy":"FULL"}]`), nil), "", `{}`).ARN
		h.runUntilDone(arn, 250*time.Millisecond, 400)
		got := offsets(h.fn.callsTo("f"))
		if len(got) != attempts+1 {
			t.Fatalf("%d invocations, want %d", len(got), attempts+1)
		}
		var total time.Duration
		for i := 1; i < len(got); i++ {
			gap := got[i] - got[i-1]
			// The engine wakes at the first clock step past the draw.
			if gap > 8*sec+250*time.Millisecond {
				t.Errorf("wait %d was %v, beyond the 8s backoff", i, gap)
			}
			total += gap
		}
		if total >= attempts*8*sec {
			t.Errorf("%d waits of up to 8s took %v: no jitter drawn", attempts, total)
		}
	})
}

func TestCatch(t *testing.T) {
	catch := `[{"ErrorEquals":["A","B"],"ResultPath":"$.err","Next":"CaughtAB"},
		{"ErrorEquals":["States.TaskFailed"],"ResultPath":"$.err","Next":"CaughtTaskFailed"},
		{"ErrorEquals":["States.ALL"],"Next":"CaughtAll"}]`
	def := `{"StartAt":"T","States":{
		"T":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke","Parameters":{"FunctionName":"f","Payload":{}},
			"TimeoutSeconds":10,"Retry":[{"ErrorEquals":["Retried"],"MaxAttempts":1}],"Catch":` + catch + `,"End":true},
		"CaughtAB":{"Type":"Pass","Result":"CaughtAB","ResultPath":"$.via","End":true},
		"CaughtTaskFailed":{"Type":"Pass","Result":"CaughtTaskFailed","ResultPath":"$.via","End":true},
		"CaughtAll":{"Type":"Pass","Result":"CaughtAll","ResultPath":"$.via","End":true}}}`
	for _, tc := range []struct {
		name    string
		err     error
		block   bool
		want    string
		wantErr string
	}{
		{"first catcher, by name", &asl.FunctionError{Type: "B", Message: "bee"}, false, "CaughtAB", "B"},
		{"States.TaskFailed matches any task error", &asl.FunctionError{Type: "Z"}, false, "CaughtTaskFailed", "Z"},
		{"after retries", &asl.FunctionError{Type: "Retried"}, false, "CaughtTaskFailed", "Retried"},
		{"Lambda service error", errors.New("connection refused"), false, "CaughtTaskFailed", asl.ErrorLambdaService},
		{"function error without a type", &asl.FunctionError{Message: "?"}, false, "CaughtTaskFailed", asl.ErrorLambdaUnknown},
		{"States.TaskFailed does not match States.Timeout", nil, true, "CaughtAll", asl.ErrorTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			called := make(chan struct{}, 4)
			h := newHarness(t, func(ctx context.Context, c call) (any, error) {
				called <- struct{}{}
				if tc.block {
					<-ctx.Done()
					return nil, ctx.Err()
				}
				return nil, tc.err
			})
			arn := h.start(h.machine("m", def, nil), "", `{"in":1}`).ARN
			if tc.block {
				<-called
				h.clk.Advance(10 * time.Second)
			}
			ex := h.runUntilDone(arn, time.Second, 10)
			if ex.Status != asl.StatusSucceeded {
				t.Fatalf("status %s %s %s", ex.Status, ex.Error, ex.Cause)
			}
			out := decode(t, ex.Output)
			if out["via"] != tc.want {
				t.Errorf("caught by %v, want %s (output %s)", out["via"], tc.want, ex.Output)
			}
			errObj, _ := out["err"].(map[string]any)
			if tc.want == "CaughtAll" { // default ResultPath "$": the error replaces the input
				errObj = out
			} else if out["in"] != 1.0 {
				t.Errorf("input lost: %s", ex.Output)
			}
			if errObj["Error"] != tc.wantErr {
				t.Errorf("Error = %v, want %s (output %s)", errObj["Error"], tc.wantErr, ex.Output)
			}
		})
	}
	t.Run("Catch ResultPath null keeps the input", func(t *testing.T) {
		h := newHarness(t, func(context.Context, call) (any, error) { return nil, &asl.FunctionError{Type: "X"} })
		def := `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke","Parameters":{"FunctionName":"f","Payload":{}},
			"Catch":[{"ErrorEquals":["States.ALL"],"ResultPath":null,"Next":"E"}],"End":true},"E":{"Type":"Succeed"}}}`
		ex := h.finished(h.start(h.machine("m", def, nil), "", `{"in":1}`).ARN)
		jsonEqual(t, ex.Output, `{"in":1}`)
	})
	t.Run("uncaught error fails the execution", func(t *testing.T) {
		h := newHarness(t, func(context.Context, call) (any, error) { return nil, &asl.FunctionError{Type: "X", Message: "m"} })
		def := `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke","Parameters":{"FunctionName":"f","Payload":{}},
			"Catch":[{"ErrorEquals":["Y"],"Next":"E"}],"End":true},"E":{"Type":"Succeed"}}}`
		ex := h.finished(h.start(h.machine("m", def, nil), "", `{}`).ARN)
		if ex.Status != asl.StatusFailed || ex.Error != "X" || !strings.Contains(ex.Cause, `"errorMessage":"m"`) {
			t.Fatalf("got %s %s %s", ex.Status, ex.Error, ex.Cause)
		}
	})
}

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	v, err := decodeObject(s)
	if err != nil {
		t.Fatalf("%v: %s", err, s)
	}
	return v
}

func TestTaskTimeout(t *testing.T) {
	cancelled := make(chan struct{})
	called := make(chan struct{}, 8)
	h := newHarness(t, func(ctx context.Context, c call) (any, error) {
		called <- struct{}{}
		if c.n == 0 {
			<-ctx.Done()
			close(cancelled)
			return nil, ctx.Err()
		}
		return map[string]any{"second": true}, nil
	})
	def := `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke","Parameters":{"FunctionName":"f","Payload":{}},
		"TimeoutSeconds":30,"Retry":[{"ErrorEquals":["States.Timeout"],"IntervalSeconds":1,"MaxAttempts":1}],"OutputPath":"$.Payload","End":true}}}`
	arn := h.start(h.machine("m", def, nil), "", `{}`).ARN
	<-called
	h.clk.Advance(29 * time.Second)
	select {
	case <-cancelled:
		t.Fatal("timed out 1s early")
	case <-time.After(20 * time.Millisecond):
	}
	h.clk.Advance(time.Second)
	select {
	case <-cancelled:
	case <-time.After(2 * time.Second):
		t.Fatal("the invocation's context was not cancelled at TimeoutSeconds")
	}
	ex := h.runUntilDone(arn, time.Second, 5)
	if ex.Status != asl.StatusSucceeded || ex.Output != `{"second":true}` {
		t.Fatalf("got %s %s %s", ex.Status, ex.Error, ex.Output)
	}
	var sawTimeout bool
	for _, ev := range h.history(arn) {
		sawTimeout = sawTimeout || (ev.Type == asl.EventTaskTimedOut && ev.Error == asl.ErrorTimeout)
	}
	if !sawTimeout {
		t.Errorf("no TaskTimedOut event:\n%s", h.historyText(arn))
	}
}

const callbackDef = `{"StartAt":"Wait","States":{
	"Wait":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke.waitForTaskToken",
		"Parameters":{"FunctionName":"f","Payload":{"token.$":"$$.Task.Token","id.$":"$.id"}},
		"TimeoutSeconds":864000,"ResultPath":"$.cb",
		"Catch":[{"ErrorEquals":["States.Timeout"],"ResultPath":"$.err","Next":"TimedOut"},
			{"ErrorEquals":["States.ALL"],"ResultPath":"$.err","Next":"Failed"}],"End":true},
	"TimedOut":{"Type":"Pass","Result":"timed out","ResultPath":"$.via","End":true},
	"Failed":{"Type":"Pass","Result":"failed","ResultPath":"$.via","End":true}}}`

// callbackHarness runs callbackDef up to the wait and returns the token.
func callbackHarness(t *testing.T) (*harness, string, string) {
	t.Helper()
	h := newHarness(t, nil)
	arn := h.start(h.machine("m", callbackDef, nil), "", `{"id":"x1"}`).ARN
	h.idle()
	calls := h.fn.callsTo("f")
	if len(calls) != 1 {
		t.Fatalf("calls = %v", calls)
	}
	token, _ := calls[0].payload["token"].(string)
	if ex := h.describe(arn); ex.Status != asl.StatusRunning {
		t.Fatalf("status %s before the callback", ex.Status)
	}
	return h, arn, token
}

var base64url = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func TestWaitForTaskToken(t *testing.T) {
	t.Run("token shape", func(t *testing.T) {
		_, _, token := callbackHarness(t)
		raw, err := base64.RawURLEncoding.DecodeString(token)
		if !base64url.MatchString(token) || err != nil || len(raw)*8 < 256 || len(token) > 2048 {
			t.Fatalf("token %q (%d bytes): not opaque base64url of >= 256 bits", token, len(raw))
		}
		_, _, other := callbackHarness(t)
		if other == token {
			t.Fatal("two executions got the same token")
		}
	})
	t.Run("success", func(t *testing.T) {
		h, arn, token := callbackHarness(t)
		if err := h.eng.SendTaskHeartbeat(token); err != nil {
			t.Fatalf("heartbeat while waiting: %v", err)
		}
		if err := h.eng.SendTaskSuccess(token, `{"resumed":true}`); err != nil {
			t.Fatal(err)
		}
		ex := h.finished(arn)
		jsonEqual(t, ex.Output, `{"id":"x1","cb":{"resumed":true}}`)
		requireCode(t, h.eng.SendTaskSuccess(token, `{}`), asl.CodeTaskTimedOut)
		requireCode(t, h.eng.SendTaskFailure(token, "E", ""), asl.CodeTaskTimedOut)
		requireCode(t, h.eng.SendTaskHeartbeat(token), asl.CodeTaskTimedOut)
		h.requireStateDataFree(arn, token)
		var submitted bool
		for _, ev := range h.history(arn) {
			submitted = submitted || ev.Type == asl.EventTaskSubmitted && ev.Resource == "invoke.waitForTaskToken"
		}
		if !submitted {
			t.Errorf("no TaskSubmitted event:\n%s", h.historyText(arn))
		}
	})
	t.Run("failure", func(t *testing.T) {
		h, arn, token := callbackHarness(t)
		if err := h.eng.SendTaskFailure(token, "RunTerminated", "by the user"); err != nil {
			t.Fatal(err)
		}
		ex := h.finished(arn)
		jsonEqual(t, ex.Output, `{"id":"x1","err":{"Error":"RunTerminated","Cause":"by the user"},"via":"failed"}`)
		requireCode(t, h.eng.SendTaskSuccess(token, `{}`), asl.CodeTaskTimedOut)
	})
	t.Run("timeout after 10 days on the clock", func(t *testing.T) {
		h, arn, token := callbackHarness(t)
		h.clk.Advance(240*time.Hour - time.Second)
		h.idle()
		if ex := h.describe(arn); ex.Status != asl.StatusRunning {
			t.Fatalf("ended a second early: %s", ex.Status)
		}
		start := time.Now()
		h.clk.Advance(2 * time.Second)
		ex := h.finished(arn)
		if took := time.Since(start); took > time.Second {
			t.Errorf("the timeout took %v of real time to fire", took)
		}
		jsonEqual(t, ex.Output, `{"id":"x1","err":{"Error":"States.Timeout"},"via":"timed out"}`)
		requireCode(t, h.eng.SendTaskSuccess(token, `{}`), asl.CodeTaskTimedOut)
	})
	t.Run("never issued", func(t *testing.T) {
		h, _, token := callbackHarness(t)
		requireCode(t, h.eng.SendTaskSuccess("bm90LWEtdG9rZW4", `{}`), asl.CodeInvalidToken)
		requireCode(t, h.eng.SendTaskFailure("", "E", ""), asl.CodeInvalidToken)
		requireCode(t, h.eng.SendTaskHeartbeat(token+"x"), asl.CodeInvalidToken)
		requireCode(t, h.eng.SendTaskSuccess(token, `{not json`), asl.CodeInvalidOutput)
	})
	t.Run("answered from inside the invocation", func(t *testing.T) {
		var h *harness
		h = newHarness(t, func(_ context.Context, c call) (any, error) {
			return nil, h.eng.SendTaskSuccess(c.payload["token"].(string), `"sync"`)
		})
		ex := h.finished(h.start(h.machine("m", callbackDef, nil), "", `{"id":"x1"}`).ARN)
		jsonEqual(t, ex.Output, `{"id":"x1","cb":"sync"}`)
	})
	t.Run("the function fails", func(t *testing.T) {
		h := newHarness(t, func(context.Context, call) (any, error) { return nil, &asl.FunctionError{Type: "SuspendFailed"} })
		arn := h.start(h.machine("m", callbackDef, nil), "", `{"id":"x1"}`).ARN
		ex := h.finished(arn)
		if out := decode(t, ex.Output); out["via"] != "failed" || out["err"].(map[string]any)["Error"] != "SuspendFailed" {
			t.Fatalf("output %s", ex.Output)
		}
		token := h.fn.callsTo("f")[0].payload["token"].(string)
		requireCode(t, h.eng.SendTaskSuccess(token, `{}`), asl.CodeTaskTimedOut)
	})
	t.Run("stopped while waiting", func(t *testing.T) {
		h, arn, token := callbackHarness(t)
		stop, err := h.eng.StopExecution(arn, "Cancelled", "by test")
		if err != nil || !stop.Equal(t0) {
			t.Fatalf("stop = %v, %v", stop, err)
		}
		ex := h.finished(arn)
		if ex.Status != asl.StatusAborted || ex.Error != "Cancelled" || ex.Cause != "by test" {
			t.Fatalf("got %+v", ex)
		}
		requireCode(t, h.eng.SendTaskSuccess(token, `{}`), asl.CodeTaskTimedOut)
	})
}

func TestFailAndSucceed(t *testing.T) {
	h := newHarness(t, nil)
	def := `{"Comment":"c","StartAt":"C","States":{
		"C":{"Type":"Choice","Choices":[{"Variable":"$.fail","BooleanEquals":true,"Next":"F"}],"Default":"S"},
		"F":{"Type":"Fail","Error":"MyError","Cause":"because"},
		"S":{"Type":"Succeed","InputPath":"$.out","OutputPath":"$.v"}}}`
	arn := h.machine("m", def, nil)
	ex := h.finished(h.start(arn, "f", `{"fail":true}`).ARN)
	if ex.Status != asl.StatusFailed || ex.Error != "MyError" || ex.Cause != "because" || ex.Output != "" {
		t.Fatalf("Fail: %+v", ex)
	}
	ex = h.finished(h.start(arn, "s", `{"fail":false,"out":{"v":[1,2]}}`).ARN)
	if ex.Status != asl.StatusSucceeded || ex.Output != `[1,2]` || !ex.StopDate.Equal(t0) {
		t.Fatalf("Succeed: %+v", ex)
	}
	var types []string
	for _, ev := range h.history(ex.ARN) {
		types = append(types, string(ev.Type))
	}
	if got := strings.Join(types, " "); got != "ExecutionStarted ChoiceStateEntered ChoiceStateExited SucceedStateEntered SucceedStateExited ExecutionSucceeded" {
		t.Errorf("history %s", got)
	}
}

func TestExecutionTimeoutSeconds(t *testing.T) {
	h := newHarness(t, nil)
	def := strings.Replace(callbackDef, `{"StartAt"`, `{"TimeoutSeconds":60,"StartAt"`, 1)
	arn := h.start(h.machine("m", def, nil), "", `{"id":"x"}`).ARN
	h.idle()
	h.clk.Advance(59 * time.Second)
	h.idle()
	if ex := h.describe(arn); ex.Status != asl.StatusRunning {
		t.Fatalf("early: %s", ex.Status)
	}
	h.clk.Advance(time.Second)
	ex := h.finished(arn)
	if ex.Status != asl.StatusTimedOut || ex.Error != asl.ErrorTimeout {
		t.Fatalf("got %s %s", ex.Status, ex.Error)
	}
}

func TestHistoryLimit(t *testing.T) {
	h := newHarness(t, nil)
	def := `{"StartAt":"A","States":{"A":{"Type":"Pass","Next":"B"},"B":{"Type":"Pass","Next":"A"}}}`
	ex := h.finished(h.start(h.machine("m", def, nil), "", `{}`).ARN)
	if ex.Status != asl.StatusFailed || ex.Error != asl.ErrorRuntime || !strings.Contains(ex.Cause, "25000") {
		t.Fatalf("got %s %s %s", ex.Status, ex.Error, ex.Cause)
	}
	if n := len(h.history(ex.ARN)); n != 25000 {
		t.Errorf("history has %d events", n)
	}
}
