package asl

import "time"

// EventType names a history event as GetExecutionHistory does.
type EventType string

// The history events the engine records. State events are named after the
// state type: TaskStateEntered, ChoiceStateExited, FailStateEntered, ...
const (
	EventExecutionStarted   EventType = "ExecutionStarted"
	EventExecutionSucceeded EventType = "ExecutionSucceeded"
	EventExecutionFailed    EventType = "ExecutionFailed"
	EventExecutionAborted   EventType = "ExecutionAborted"
	EventExecutionTimedOut  EventType = "ExecutionTimedOut"
	EventTaskScheduled      EventType = "TaskScheduled"
	EventTaskStarted        EventType = "TaskStarted"
	EventTaskSubmitted      EventType = "TaskSubmitted"
	EventTaskSucceeded      EventType = "TaskSucceeded"
	EventTaskFailed         EventType = "TaskFailed"
	EventTaskTimedOut       EventType = "TaskTimedOut"
)

// StateEnteredEvent and StateExitedEvent name the events of a state type
// ("Task", "Choice", "Pass", "Succeed", "Fail").
func StateEnteredEvent(stateType string) EventType { return EventType(stateType + "StateEntered") }

// StateExitedEvent: see StateEnteredEvent.
func StateExitedEvent(stateType string) EventType { return EventType(stateType + "StateExited") }

// Event is one history event. Which fields are set depends on Type, as in
// the Step Functions API: state events carry StateName and Input (entered)
// or Output (exited); Task events carry Resource and ResourceType, then
// Parameters (scheduled), Output (submitted, succeeded) or Error and Cause
// (failed, timed out); execution events carry Input, Output or Error/Cause.
type Event struct {
	ID         int64
	PreviousID int64
	Timestamp  time.Time
	Type       EventType

	StateName      string
	Input          string
	Output         string
	Error          string
	Cause          string
	RoleARN        string
	Resource       string // "invoke" or "invoke.waitForTaskToken"
	ResourceType   string // "lambda"
	Region         string
	Parameters     string
	TimeoutSeconds int64
}

// IsStateEvent reports whether the event is a state's entry or exit, the
// events whose Input or Output is the state data.
func (ev Event) IsStateEvent() bool { return ev.StateName != "" }

// appendLocked adds an event to a running execution's history, ending the
// execution (States.Runtime) when the history reaches the AWS limit.
// It reports whether the execution is still running.
func (r *run) appendLocked(ev Event) bool {
	if r.status != StatusRunning {
		return false
	}
	if len(r.events) >= maxHistoryEvents-1 {
		r.finishLocked(StatusFailed, ErrorRuntime, "The execution reached the maximum number of history events (25000).", "")
		return false
	}
	r.addLocked(ev)
	return true
}

func (r *run) addLocked(ev Event) {
	ev.ID = int64(len(r.events) + 1)
	ev.PreviousID = ev.ID - 1
	ev.Timestamp = r.e.clock.Now()
	r.events = append(r.events, ev)
}

// record appends an event; errStopped when the execution is no longer running.
func (r *run) record(ev Event) error {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	if !r.appendLocked(ev) {
		return errStopped
	}
	return nil
}
