package asl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// run is one execution. Fields below mu are guarded by the engine's mutex.
type run struct {
	e        *Engine
	sm       StateMachine
	arn      string
	name     string
	input    string
	inputVal any
	start    time.Time
	deadline time.Time // the definition's TimeoutSeconds; zero when none
	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{}

	// mu: Engine.mu
	status  Status
	stop    time.Time
	output  string
	errName string
	cause   string
	events  []Event
	token   *taskToken
}

func (r *run) snapshotLocked() Execution {
	return Execution{
		ARN: r.arn, StateMachineARN: r.sm.ARN, Name: r.name, Status: r.status,
		Input: r.input, Output: r.output, Error: r.errName, Cause: r.cause,
		StartDate: r.start, StopDate: r.stop,
	}
}

// finishLocked ends a running execution with its terminal event; it does
// nothing when the execution already ended (the first end wins).
func (r *run) finishLocked(status Status, errName, cause, output string) bool {
	if r.status != StatusRunning {
		return false
	}
	ev := Event{Error: errName, Cause: cause}
	switch status {
	case StatusSucceeded:
		ev = Event{Type: EventExecutionSucceeded, Output: output}
	case StatusFailed:
		ev.Type = EventExecutionFailed
	case StatusAborted:
		ev.Type = EventExecutionAborted
	case StatusTimedOut:
		ev.Type = EventExecutionTimedOut
	}
	r.addLocked(ev)
	r.status, r.stop = status, r.e.clock.Now()
	r.output, r.errName, r.cause = output, errName, cause
	if r.token != nil {
		r.token.finished = true
		r.token = nil
	}
	r.cancel()
	close(r.done)
	r.e.notifyLocked()
	r.e.log.Info("asl: execution finished", "execution", r.arn, "status", string(status), "error", errName)
	return true
}

func (r *run) finish(status Status, errName, cause, output string) {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	r.finishLocked(status, errName, cause, output)
}

func (r *run) loop() {
	defer r.e.wg.Done()
	defer r.e.busyAdd(-1)
	name, data := r.sm.Definition.startAt, r.inputVal
	for name != "" {
		next, out, err := r.step(name, data)
		if err != nil {
			var se *stateError
			if errors.As(err, &se) {
				r.finish(StatusFailed, se.name, se.cause, "")
			}
			return
		}
		name, data = next, out
	}
}

// step runs one state and returns the next state ("" when the execution
// ended) and the state's output.
func (r *run) step(name string, input any) (string, any, error) {
	st := r.sm.Definition.states[name]
	if err := r.checkDeadline(); err != nil {
		return "", nil, err
	}
	entered := r.e.clock.Now()
	inJSON, err := marshalJSON(input)
	if err != nil {
		return "", nil, runtimeError("state input is not JSON: %v", err)
	}
	if err := r.record(Event{Type: StateEnteredEvent(st.kind), StateName: name, Input: string(inJSON)}); err != nil {
		return "", nil, err
	}
	var (
		out  any
		next = st.next
	)
	switch st.kind {
	case "Pass":
		out, err = r.pass(st, input, entered)
	case "Choice":
		next, out, err = r.choice(st, input, entered)
	case "Task":
		next, out, err = r.task(st, input, entered)
	case "Succeed":
		if out, err = st.inputPath.apply(input, "InputPath"); err == nil {
			out, err = st.outputPath.apply(out, "OutputPath")
		}
	case "Fail":
		r.finish(StatusFailed, st.errName, st.cause, "")
		return "", nil, nil
	}
	if err != nil {
		return "", nil, err
	}
	outJSON, err := marshalJSON(out)
	if err != nil {
		return "", nil, runtimeError("state output is not JSON: %v", err)
	}
	if len(outJSON) > maxPayloadBytes {
		return "", nil, &stateError{name: ErrorDataLimit, cause: fmt.Sprintf("The state/task '%s' returned a result with a size exceeding the maximum number of bytes service limit.", name), terminal: true}
	}
	if err := r.record(Event{Type: StateExitedEvent(st.kind), StateName: name, Output: string(outJSON)}); err != nil {
		return "", nil, err
	}
	if st.kind == "Succeed" || next == "" {
		r.finish(StatusSucceeded, "", "", string(outJSON))
		return "", nil, nil
	}
	return next, out, nil
}

// contextObject is the $$ object of a state.
func (r *run) contextObject(state string, entered time.Time, retries int, token string) map[string]any {
	ctx := map[string]any{
		"Execution": map[string]any{
			"Id": r.arn, "Input": r.inputVal, "Name": r.name,
			"RoleArn": r.sm.RoleARN, "StartTime": isoTime(r.start),
		},
		"State": map[string]any{
			"EnteredTime": isoTime(entered), "Name": state,
			"RetryCount": json.Number(strconv.Itoa(retries)),
		},
		"StateMachine": map[string]any{"Id": r.sm.ARN, "Name": r.sm.Name},
	}
	if token != "" {
		ctx["Task"] = map[string]any{"Token": token}
	}
	return ctx
}

func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func (r *run) pass(st *state, raw any, entered time.Time) (any, error) {
	in, err := st.inputPath.apply(raw, "InputPath")
	if err != nil {
		return nil, err
	}
	if st.parameters != nil {
		if in, err = st.parameters.eval(in, r.contextObject(st.name, entered, 0, "")); err != nil {
			return nil, err
		}
	}
	result := in
	if st.hasResult {
		result = st.result
	}
	out, err := st.resultPath.apply(raw, result)
	if err != nil {
		return nil, err
	}
	return st.outputPath.apply(out, "OutputPath")
}

func (r *run) choice(st *state, raw any, entered time.Time) (string, any, error) {
	in, err := st.inputPath.apply(raw, "InputPath")
	if err != nil {
		return "", nil, err
	}
	ctxObj := r.contextObject(st.name, entered, 0, "")
	next := st.deflt
	for _, rl := range st.choices {
		ok, err := rl.eval(in, ctxObj)
		if err != nil {
			return "", nil, err
		}
		if ok {
			next = rl.next
			break
		}
	}
	if next == "" {
		return "", nil, &stateError{name: ErrorNoChoiceMatched, cause: fmt.Sprintf("No Matches! (state %q)", st.name)}
	}
	out, err := st.outputPath.apply(in, "OutputPath")
	return next, out, err
}

// task runs a Task state with its Retry and Catch fields.
func (r *run) task(st *state, raw any, entered time.Time) (string, any, error) {
	in, err := st.inputPath.apply(raw, "InputPath")
	if err != nil {
		return "", nil, err
	}
	attempts := make([]int, len(st.retry))
	retries := 0
	for {
		result, err := r.attempt(st, in, entered, retries)
		if err == nil {
			out, err := r.taskOutput(st, raw, result, entered)
			return st.next, out, err
		}
		var se *stateError
		if !errors.As(err, &se) || se.terminal {
			return "", nil, err
		}
		if i := matchRetrier(st.retry, se.name); i >= 0 && attempts[i] < st.retry[i].maxAttempts {
			delay := st.retry[i].delay(attempts[i])
			if st.retry[i].fullJitter {
				delay = min(max(r.e.jitter(delay), 0), delay)
			}
			attempts[i]++
			retries++
			if err := r.sleep(delay); err != nil {
				return "", nil, err
			}
			continue
		}
		for _, c := range st.catch {
			if !errorMatches(c.errorEquals, se.name) {
				continue
			}
			errObj := map[string]any{"Error": se.name}
			if se.cause != "" {
				errObj["Cause"] = se.cause
			}
			out, err := c.resultPath.apply(raw, errObj)
			return c.next, out, err
		}
		return "", nil, se
	}
}

func (r *run) taskOutput(st *state, raw, result any, entered time.Time) (any, error) {
	var err error
	if st.resultSelector != nil {
		if result, err = st.resultSelector.eval(result, r.contextObject(st.name, entered, 0, "")); err != nil {
			return nil, err
		}
	}
	out, err := st.resultPath.apply(raw, result)
	if err != nil {
		return nil, err
	}
	return st.outputPath.apply(out, "OutputPath")
}

// matchRetrier is the first retrier whose ErrorEquals matches, or -1.
func matchRetrier(list []retrier, name string) int {
	for i, rt := range list {
		if errorMatches(rt.errorEquals, name) {
			return i
		}
	}
	return -1
}

// delay before retry number n+1: IntervalSeconds × BackoffRate^n, capped
// by MaxDelaySeconds; with JitterStrategy FULL the wait is then drawn from
// [0, delay].
func (rt retrier) delay(n int) time.Duration {
	secs := float64(rt.interval) * math.Pow(rt.backoff, float64(n))
	if rt.maxDelay > 0 && secs > float64(rt.maxDelay) {
		secs = float64(rt.maxDelay)
	}
	if secs > maxTaskTimeout {
		secs = maxTaskTimeout
	}
	return time.Duration(secs * float64(time.Second))
}

type invocation struct {
	done   chan struct{}
	out    []byte
	err    error
	cancel context.CancelFunc
}

func (r *run) invoke(fn string, payload []byte) *invocation {
	ctx, cancel := context.WithCancel(r.ctx)
	inv := &invocation{done: make(chan struct{}), cancel: cancel}
	r.e.busyAdd(1)
	r.e.wg.Add(1)
	go func() {
		defer r.e.wg.Done()
		defer r.e.busyAdd(-1)
		defer cancel()
		inv.out, inv.err = r.e.invoker.Invoke(ctx, fn, payload)
		close(inv.done)
	}()
	return inv
}

// invokeError is how the lambda:invoke integration reports a failed call.
func invokeError(err error) *stateError {
	var fe *FunctionError
	if errors.As(err, &fe) {
		name := fe.Type
		if name == "" {
			name = ErrorLambdaUnknown
		}
		cause, _ := marshalJSON(map[string]any{"errorType": fe.Type, "errorMessage": fe.Message})
		return &stateError{name: name, cause: string(cause)}
	}
	return &stateError{name: ErrorLambdaService, cause: err.Error()}
}

// attempt runs one try of a Task: schedule, invoke, and for a callback task
// wait for its token. It returns the raw result (before ResultSelector).
func (r *run) attempt(st *state, in any, entered time.Time, retries int) (any, error) {
	resource := "invoke"
	var tok *taskToken
	token := ""
	if st.callback {
		resource = "invoke.waitForTaskToken"
		token = newToken()
		tok = &taskToken{run: r, done: make(chan struct{})}
		r.e.mu.Lock()
		r.e.tokens[token] = tok
		r.token = tok
		r.e.mu.Unlock()
		defer r.releaseToken(tok)
	}
	params, err := st.parameters.eval(in, r.contextObject(st.name, entered, retries, token))
	if err != nil {
		return nil, err
	}
	pm := params.(map[string]any)
	fn, ok := pm["FunctionName"].(string)
	if !ok || fn == "" {
		return nil, runtimeError("state %q: FunctionName must be a non-empty string", st.name)
	}
	payload, err := marshalJSON(pm["Payload"])
	if err != nil {
		return nil, runtimeError("state %q: Payload: %v", st.name, err)
	}
	paramsJSON, _ := marshalJSON(params)
	base := Event{Resource: resource, ResourceType: "lambda"}
	ev := base
	ev.Type, ev.Region, ev.Parameters, ev.TimeoutSeconds = EventTaskScheduled, r.e.region, string(paramsJSON), int64(st.timeoutSeconds)
	if err := r.record(ev); err != nil {
		return nil, err
	}
	var deadline time.Time
	if st.timeoutSeconds > 0 {
		deadline = r.e.clock.Now().Add(time.Duration(st.timeoutSeconds) * time.Second)
	}
	ev = base
	ev.Type = EventTaskStarted
	if err := r.record(ev); err != nil {
		return nil, err
	}
	inv := r.invoke(fn, payload)
	fail := func(se *stateError) (any, error) {
		ev := base
		ev.Type, ev.Error, ev.Cause = EventTaskFailed, se.name, se.cause
		if se.name == ErrorTimeout {
			ev.Type = EventTaskTimedOut
		}
		if err := r.record(ev); err != nil {
			return nil, err
		}
		return nil, se
	}
	succeed := func(result any) (any, error) {
		out, err := marshalJSON(result)
		if err != nil {
			return nil, runtimeError("task result is not JSON: %v", err)
		}
		ev := base
		ev.Type, ev.Output = EventTaskSucceeded, string(out)
		if err := r.record(ev); err != nil {
			return nil, err
		}
		return result, nil
	}
	invokeDone := inv.done
	var tokDone <-chan struct{}
	if tok != nil {
		tokDone = tok.done
	}
	for {
		switch r.wait(deadline, invokeDone == nil, invokeDone, tokDone) {
		case 0: // the invocation returned
			invokeDone = nil
			if inv.err != nil {
				return fail(invokeError(inv.err))
			}
			result, se := lambdaResult(inv.out)
			if se != nil {
				return fail(se)
			}
			if tok == nil {
				return succeed(result)
			}
			out, _ := marshalJSON(result)
			ev := base
			ev.Type, ev.Output = EventTaskSubmitted, string(out)
			if err := r.record(ev); err != nil {
				return nil, err
			}
		case 1: // the token was answered
			return r.tokenAnswer(tok, fail, succeed)
		case waitDeadline:
			r.e.mu.Lock()
			answered := tok != nil && tok.delivered
			r.e.mu.Unlock()
			if answered { // an answer raced the deadline and was accepted
				return r.tokenAnswer(tok, fail, succeed)
			}
			inv.cancel()
			return fail(&stateError{name: ErrorTimeout})
		default:
			inv.cancel()
			return nil, errStopped
		}
	}
}

func (r *run) tokenAnswer(tok *taskToken, fail func(*stateError) (any, error), succeed func(any) (any, error)) (any, error) {
	r.e.mu.Lock()
	failed, errName, cause, output := tok.failed, tok.errName, tok.cause, tok.output
	r.e.mu.Unlock()
	if failed {
		return fail(&stateError{name: errName, cause: cause})
	}
	v, err := decodeJSON([]byte(output))
	if err != nil { // checked by SendTaskSuccess
		return fail(runtimeError("task output is not JSON: %v", err))
	}
	return succeed(v)
}

// releaseToken ends a token's validity when its task attempt ends.
func (r *run) releaseToken(tok *taskToken) {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	tok.finished = true
	if r.token == tok {
		r.token = nil
	}
	r.e.notifyLocked()
}

// lambdaResult is the lambda:invoke result shape around a function output.
func lambdaResult(out []byte) (any, *stateError) {
	var payload any
	if len(out) > 0 {
		v, err := decodeJSON(out)
		if err != nil {
			return nil, &stateError{name: ErrorLambdaService, cause: "the function returned a payload that is not JSON"}
		}
		payload = v
	}
	return map[string]any{
		"ExecutedVersion": "$LATEST",
		"Payload":         payload,
		"StatusCode":      json.Number("200"),
	}, nil
}
