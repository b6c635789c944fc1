package asl

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mathrand "math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/connmgr/connmgr/local/clock"
)

// Defaults for the ARNs the engine issues; they match local/emulator.
const (
	DefaultRegion    = "us-east-1"
	DefaultAccountID = "111122223333"
)

// Invoker runs a Lambda function synchronously: it returns the function's
// JSON output, a *FunctionError when the function failed (its errorType and
// errorMessage), or any other error for a failure of the Lambda service
// itself (reported as Lambda.ServiceException). It must return when ctx is
// cancelled (a task timed out or its execution stopped).
type Invoker interface {
	Invoke(ctx context.Context, functionName string, payload []byte) ([]byte, error)
}

// InvokerFunc adapts a function to Invoker.
type InvokerFunc func(ctx context.Context, functionName string, payload []byte) ([]byte, error)

// Invoke calls f.
func (f InvokerFunc) Invoke(ctx context.Context, functionName string, payload []byte) ([]byte, error) {
	return f(ctx, functionName, payload)
}

// Options configure an Engine.
type Options struct {
	// Clock is the time every Retry interval and timeout is measured on
	// (nil: a real-time clock).
	Clock *clock.Clock
	// Invoker runs the Lambda functions of Task states (nil: every Task
	// fails with Lambda.ServiceException).
	Invoker Invoker
	// Region and AccountID go into ARNs (empty: DefaultRegion, DefaultAccountID).
	Region, AccountID string
	// Logger receives one line per execution start and end, without inputs
	// or outputs (nil: discard).
	Logger *slog.Logger
	// Jitter draws the wait before a retry of a retrier with JitterStrategy
	// FULL from [0, max], max being the computed backoff (nil: uniformly at
	// random, as Step Functions does). Tests pass a deterministic one.
	Jitter func(max time.Duration) time.Duration
}

// Engine holds state machines and runs their executions, each in its own
// goroutine. Its methods mirror the Step Functions API and fail with
// *APIError carrying the API's exception names.
type Engine struct {
	clock   *clock.Clock
	invoker Invoker
	jitter  func(time.Duration) time.Duration
	region  string
	account string
	log     *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	machines map[string]*StateMachine
	runs     map[string]*run
	order    []*run
	tokens   map[string]*taskToken
	busy     int
	parks    map[*park]struct{}
	changed  chan struct{}
}

// NewEngine returns an engine with no state machines.
func NewEngine(opts Options) *Engine {
	e := &Engine{
		clock:    opts.Clock,
		invoker:  opts.Invoker,
		jitter:   opts.Jitter,
		region:   opts.Region,
		account:  opts.AccountID,
		log:      opts.Logger,
		machines: map[string]*StateMachine{},
		runs:     map[string]*run{},
		tokens:   map[string]*taskToken{},
		parks:    map[*park]struct{}{},
		changed:  make(chan struct{}),
	}
	if e.clock == nil {
		e.clock = clock.New()
	}
	if e.invoker == nil {
		e.invoker = InvokerFunc(func(context.Context, string, []byte) ([]byte, error) {
			return nil, errors.New("asl: no Invoker configured")
		})
	}
	if e.jitter == nil {
		e.jitter = fullJitter
	}
	if e.region == "" {
		e.region = DefaultRegion
	}
	if e.account == "" {
		e.account = DefaultAccountID
	}
	if e.log == nil {
		e.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	return e
}

// fullJitter is a wait drawn uniformly from [0, max].
func fullJitter(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return time.Duration(mathrand.Int64N(int64(max) + 1))
}

// Close stops every execution's goroutine (their status stays as it was)
// and waits for them and for in-flight invocations to return.
func (e *Engine) Close() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.cancel()
	e.wg.Wait()
}

// Clock is the engine's clock.
func (e *Engine) Clock() *clock.Clock { return e.clock }

// StateMachine is a registered state machine.
type StateMachine struct {
	ARN          string
	Name         string
	RoleARN      string
	Definition   *Definition
	CreationDate time.Time
}

// StateMachineSpec is what CreateStateMachine registers. Substitutions
// replace ${Name} placeholders in Definition, as SAM's
// DefinitionSubstitutions do.
type StateMachineSpec struct {
	Name          string
	Definition    []byte
	Substitutions map[string]string
	RoleARN       string
}

// CreateStateMachine parses and registers a state machine. Registering the
// same name again with the same definition and role returns the existing
// one; anything else under that name is StateMachineAlreadyExists.
func (e *Engine) CreateStateMachine(spec StateMachineSpec) (StateMachine, error) {
	if !validName(spec.Name) {
		return StateMachine{}, apiError(CodeInvalidName, "Invalid Name: '%s'", spec.Name)
	}
	def, err := Parse(spec.Definition, spec.Substitutions)
	if err != nil {
		return StateMachine{}, apiError(CodeInvalidDefinition, "Invalid State Machine Definition: '%v'", err)
	}
	arn := fmt.Sprintf("arn:aws:states:%s:%s:stateMachine:%s", e.region, e.account, spec.Name)
	e.mu.Lock()
	defer e.mu.Unlock()
	if old, ok := e.machines[arn]; ok {
		if bytes.Equal(old.Definition.json, def.json) && old.RoleARN == spec.RoleARN {
			return *old, nil
		}
		return StateMachine{}, apiError(CodeStateMachineAlreadyExists, "State Machine Already Exists: '%s'", arn)
	}
	sm := &StateMachine{ARN: arn, Name: spec.Name, RoleARN: spec.RoleARN, Definition: def, CreationDate: e.clock.Now()}
	e.machines[arn] = sm
	return *sm, nil
}

// DescribeStateMachine returns a registered state machine.
func (e *Engine) DescribeStateMachine(arn string) (StateMachine, error) {
	if err := e.checkARN(arn, "stateMachine"); err != nil {
		return StateMachine{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	sm, ok := e.machines[arn]
	if !ok {
		return StateMachine{}, apiError(CodeStateMachineDoesNotExist, "State Machine Does Not Exist: '%s'", arn)
	}
	return *sm, nil
}

// Status is an execution's status.
type Status string

// Execution statuses.
const (
	StatusRunning   Status = "RUNNING"
	StatusSucceeded Status = "SUCCEEDED"
	StatusFailed    Status = "FAILED"
	StatusTimedOut  Status = "TIMED_OUT"
	StatusAborted   Status = "ABORTED"
)

// Execution is a snapshot of an execution, as DescribeExecution reports it.
type Execution struct {
	ARN             string
	StateMachineARN string
	Name            string
	Status          Status
	Input           string
	Output          string // the final output when SUCCEEDED
	Error, Cause    string
	StartDate       time.Time
	StopDate        time.Time // zero while RUNNING
}

// StartExecution starts an execution of the state machine. An empty name
// gets a random UUID; an empty input is "{}". Starting a name that is
// RUNNING with an identical input returns that execution; a different input,
// or a name whose execution has finished, is ExecutionAlreadyExists.
func (e *Engine) StartExecution(stateMachineARN, name, input string) (Execution, error) {
	if err := e.checkARN(stateMachineARN, "stateMachine"); err != nil {
		return Execution{}, err
	}
	if name == "" {
		name = newUUID()
	}
	if !validName(name) {
		return Execution{}, apiError(CodeInvalidName, "Invalid Name: '%s'", name)
	}
	if input == "" {
		input = "{}"
	}
	if len(input) > maxPayloadBytes {
		return Execution{}, apiError(CodeInvalidExecutionInput, "Invalid Execution Input: the input is larger than %d bytes", maxPayloadBytes)
	}
	inputVal, err := decodeJSON([]byte(input))
	if err != nil {
		return Execution{}, apiError(CodeInvalidExecutionInput, "Invalid Execution Input: '%v'", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return Execution{}, errors.New("asl: engine closed")
	}
	sm, ok := e.machines[stateMachineARN]
	if !ok {
		return Execution{}, apiError(CodeStateMachineDoesNotExist, "State Machine Does Not Exist: '%s'", stateMachineARN)
	}
	arn := fmt.Sprintf("arn:aws:states:%s:%s:execution:%s:%s", e.region, e.account, sm.Name, name)
	if old, ok := e.runs[arn]; ok {
		if old.status == StatusRunning && old.input == input {
			return old.snapshotLocked(), nil
		}
		return Execution{}, apiError(CodeExecutionAlreadyExists, "Execution Already Exists: '%s'", arn)
	}
	r := &run{
		e: e, sm: *sm, arn: arn, name: name, input: input, inputVal: inputVal,
		start: e.clock.Now(), status: StatusRunning, done: make(chan struct{}),
	}
	if t := sm.Definition.timeoutSeconds; t > 0 {
		r.deadline = r.start.Add(time.Duration(t) * time.Second)
	}
	r.ctx, r.cancel = context.WithCancel(e.ctx)
	e.runs[arn] = r
	e.order = append(e.order, r)
	r.appendLocked(Event{Type: EventExecutionStarted, Input: input, RoleARN: sm.RoleARN})
	e.busy++
	e.notifyLocked()
	e.wg.Add(1)
	go r.loop()
	e.log.Info("asl: execution started", "execution", arn)
	return r.snapshotLocked(), nil
}

// DescribeExecution returns an execution's current state.
func (e *Engine) DescribeExecution(executionARN string) (Execution, error) {
	r, err := e.find(executionARN)
	if err != nil {
		return Execution{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return r.snapshotLocked(), nil
}

// StopExecution aborts a RUNNING execution with an optional error and cause
// and returns its stop date; its pending task token, if any, stops being
// valid. Stopping a finished execution changes nothing.
func (e *Engine) StopExecution(executionARN, errName, cause string) (time.Time, error) {
	if len(errName) > maxTaskFailureError || len(cause) > maxTaskFailureCause {
		return time.Time{}, apiError(CodeValidation, "error or cause is too long")
	}
	r, err := e.find(executionARN)
	if err != nil {
		return time.Time{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	r.finishLocked(StatusAborted, errName, cause, "")
	return r.stop, nil
}

// ListExecutions lists a state machine's executions, newest first, those
// with the given status only unless status is empty.
func (e *Engine) ListExecutions(stateMachineARN string, status Status) ([]Execution, error) {
	switch status {
	case "", StatusRunning, StatusSucceeded, StatusFailed, StatusTimedOut, StatusAborted:
	default:
		return nil, apiError(CodeValidation, "status filter %q is not supported by the local engine", status)
	}
	if _, err := e.DescribeStateMachine(stateMachineARN); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Execution
	for i := len(e.order) - 1; i >= 0; i-- {
		r := e.order[i]
		if r.sm.ARN == stateMachineARN && (status == "" || r.status == status) {
			out = append(out, r.snapshotLocked())
		}
	}
	return out, nil
}

// History returns an execution's events, oldest first.
func (e *Engine) History(executionARN string) ([]Event, error) {
	r, err := e.find(executionARN)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Event(nil), r.events...), nil
}

// Done returns a channel closed when the execution stops running.
func (e *Engine) Done(executionARN string) (<-chan struct{}, error) {
	r, err := e.find(executionARN)
	if err != nil {
		return nil, err
	}
	return r.done, nil
}

// WaitExecution waits until the execution stops running and returns it.
func (e *Engine) WaitExecution(ctx context.Context, executionARN string) (Execution, error) {
	done, err := e.Done(executionARN)
	if err != nil {
		return Execution{}, err
	}
	select {
	case <-done:
		return e.DescribeExecution(executionARN)
	case <-ctx.Done():
		return Execution{}, ctx.Err()
	}
}

// SendTaskSuccess completes the waiting task that issued token with output,
// a JSON value.
func (e *Engine) SendTaskSuccess(token, output string) error {
	if len(output) > maxPayloadBytes {
		return apiError(CodeInvalidOutput, "Invalid Output: the output is larger than %d bytes", maxPayloadBytes)
	}
	if _, err := decodeJSON([]byte(output)); err != nil {
		return apiError(CodeInvalidOutput, "Invalid Output: '%v'", err)
	}
	return e.deliver(token, func(t *taskToken) { t.output = output })
}

// SendTaskFailure fails the waiting task that issued token with an error
// name and cause, which its Retry and Catch fields then match.
func (e *Engine) SendTaskFailure(token, errName, cause string) error {
	if len(errName) > maxTaskFailureError || len(cause) > maxTaskFailureCause {
		return apiError(CodeValidation, "error or cause is too long")
	}
	return e.deliver(token, func(t *taskToken) { t.failed, t.errName, t.cause = true, errName, cause })
}

// SendTaskHeartbeat answers as AWS does for the token and changes nothing
// (HeartbeatSeconds is not supported).
func (e *Engine) SendTaskHeartbeat(token string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, err := e.tokenLocked(token)
	return err
}

func (e *Engine) deliver(token string, set func(*taskToken)) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, err := e.tokenLocked(token)
	if err != nil {
		return err
	}
	set(t)
	t.finished, t.delivered = true, true
	close(t.done)
	e.notifyLocked()
	return nil
}

func (e *Engine) tokenLocked(token string) (*taskToken, error) {
	t, ok := e.tokens[token]
	if !ok {
		return nil, apiError(CodeInvalidToken, "Invalid Token: 'Invalid token'")
	}
	if t.finished {
		return nil, apiError(CodeTaskTimedOut, "Task Timed Out: 'Provided task does not exist anymore'")
	}
	return t, nil
}

// find resolves an execution ARN.
func (e *Engine) find(executionARN string) (*run, error) {
	if err := e.checkARN(executionARN, "execution"); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.runs[executionARN]
	if !ok {
		return nil, apiError(CodeExecutionDoesNotExist, "Execution Does Not Exist: '%s'", executionARN)
	}
	return r, nil
}

// checkARN answers InvalidArn for anything not shaped like a Step Functions
// ARN of the given resource type.
func (e *Engine) checkARN(arn, resource string) error {
	parts := strings.Split(arn, ":")
	want := 7
	if resource == "execution" {
		want = 8
	}
	if len(parts) != want || parts[0] != "arn" || !strings.HasPrefix(parts[1], "aws") || parts[2] != "states" ||
		parts[3] == "" || parts[4] == "" || parts[5] != resource {
		return apiError(CodeInvalidArn, "Invalid Arn: '%s'", arn)
	}
	for _, p := range parts[6:] {
		if p == "" {
			return apiError(CodeInvalidArn, "Invalid Arn: '%s'", arn)
		}
	}
	return nil
}

// validName applies the rules for state machine and execution names.
func validName(s string) bool {
	if s == "" || utf8.RuneCountInString(s) > maxExecutionNameChars || !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if unicode.IsSpace(c) || strings.ContainsRune("<>{}[]?*\"#%\\^|~`$&,;:/", c) ||
			c <= 0x1f || (c >= 0x7f && c <= 0x9f) {
			return false
		}
	}
	return true
}

func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// newToken is an opaque task token: 384 random bits, base64url (64 chars).
func newToken() string {
	var b [48]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// taskToken is a token issued by a waiting task. finished is set once it
// was answered, timed out, or its execution stopped; tokens are never
// forgotten, so a late answer gets TaskTimedOut rather than InvalidToken.
type taskToken struct {
	run       *run
	done      chan struct{} // closed when an answer is delivered
	finished  bool
	delivered bool
	output    string
	failed    bool
	errName   string
	cause     string
}

func (e *Engine) notifyLocked() {
	close(e.changed)
	e.changed = make(chan struct{})
}

func (e *Engine) busyAdd(n int) {
	e.mu.Lock()
	e.busy += n
	e.notifyLocked()
	e.mu.Unlock()
}

// Executions lists every execution of every state machine, oldest first.
func (e *Engine) Executions() []Execution {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Execution, 0, len(e.order))
	for _, r := range e.order {
		out = append(out, r.snapshotLocked())
	}
	return out
}

// StateMachines lists the registered state machines by ARN.
func (e *Engine) StateMachines() []StateMachine {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]StateMachine, 0, len(e.machines))
	for _, sm := range e.machines {
		out = append(out, *sm)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ARN < out[j].ARN })
	return out
}
