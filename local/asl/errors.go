package asl

import (
	"errors"
	"fmt"
)

// Error names of the States Language the engine raises or matches.
const (
	ErrorAll              = "States.ALL"
	ErrorTimeout          = "States.Timeout"
	ErrorTaskFailed       = "States.TaskFailed"
	ErrorRuntime          = "States.Runtime"
	ErrorNoChoiceMatched  = "States.NoChoiceMatched"
	ErrorDataLimit        = "States.DataLimitExceeded"
	ErrorLambdaService    = "Lambda.ServiceException"
	ErrorLambdaUnknown    = "Lambda.Unknown"
	maxHistoryEvents      = 25000
	maxPayloadBytes       = 262144
	maxTaskFailureError   = 256
	maxTaskFailureCause   = 32768
	maxExecutionNameChars = 80
)

// FunctionError is a Lambda function error: what the function returned as
// errorType and errorMessage. The lambda:invoke integration reports it with
// Error = Type, so Retry and Catch match on the function's error type.
type FunctionError struct {
	Type    string
	Message string
}

func (e *FunctionError) Error() string {
	return fmt.Sprintf("function error %s: %s", e.Type, e.Message)
}

// stateError is a failure inside an execution: an error name and a cause.
// A terminal error (States.Runtime, States.DataLimitExceeded) fails the
// execution whatever the Retry and Catch fields say, as in AWS.
type stateError struct {
	name, cause string
	terminal    bool
}

func (e *stateError) Error() string { return e.name + ": " + e.cause }

func runtimeError(format string, args ...any) *stateError {
	return &stateError{name: ErrorRuntime, cause: fmt.Sprintf(format, args...), terminal: true}
}

// errStopped unwinds an execution that was stopped, timed out or closed:
// its final status is already recorded.
var errStopped = errors.New("asl: execution no longer running")

// errorMatches applies ErrorEquals as AWS does: States.ALL matches every
// error and States.TaskFailed every error but States.Timeout (terminal errors
// never reach here).
func errorMatches(list []string, name string) bool {
	for _, e := range list {
		switch {
		case e == name:
			return true
		case e == ErrorAll:
			return true
		case e == ErrorTaskFailed && name != ErrorTimeout:
			return true
		}
	}
	return false
}

// API error codes: the Step Functions exception names, which package
// sfnserver sends as __type so the SDK maps them to its typed errors.
const (
	CodeExecutionAlreadyExists    = "ExecutionAlreadyExists"
	CodeExecutionDoesNotExist     = "ExecutionDoesNotExist"
	CodeStateMachineDoesNotExist  = "StateMachineDoesNotExist"
	CodeStateMachineAlreadyExists = "StateMachineAlreadyExists"
	CodeTaskTimedOut              = "TaskTimedOut"
	CodeInvalidToken              = "InvalidToken"
	CodeInvalidOutput             = "InvalidOutput"
	CodeInvalidName               = "InvalidName"
	CodeInvalidExecutionInput     = "InvalidExecutionInput"
	CodeInvalidArn                = "InvalidArn"
	CodeInvalidDefinition         = "InvalidDefinition"
	CodeValidation                = "ValidationException"
)

// APIError is an error of the Step Functions API, named by its exception.
type APIError struct {
	Code    string
	Message string
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

func apiError(code, format string, args ...any) *APIError {
	return &APIError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// IsCode reports whether err is an *APIError with the given code.
func IsCode(err error, code string) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == code
}
