// Package sfnengine is the workflow Engine in AWS: workflow runs as Step
// Functions executions of one state machine, and suspensions as its task
// tokens. The runs, suspend-run and resume-runs functions use it; the
// other workflow functions (run-step, finish-run) never call Step
// Functions and do not link its client.
package sfnengine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/workflow"
)

// SFN is the part of the Step Functions API the engine uses.
type SFN interface {
	StartExecution(ctx context.Context, in *sfn.StartExecutionInput, opts ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error)
	StopExecution(ctx context.Context, in *sfn.StopExecutionInput, opts ...func(*sfn.Options)) (*sfn.StopExecutionOutput, error)
	SendTaskSuccess(ctx context.Context, in *sfn.SendTaskSuccessInput, opts ...func(*sfn.Options)) (*sfn.SendTaskSuccessOutput, error)
	SendTaskFailure(ctx context.Context, in *sfn.SendTaskFailureInput, opts ...func(*sfn.Options)) (*sfn.SendTaskFailureOutput, error)
}

var _ workflow.Engine = (*StepFunctions)(nil)

// StepFunctions runs workflow runs as executions of one state machine, named
// by run id: Step Functions refuses a second execution of a name, so a
// retried start creates one execution.
type StepFunctions struct {
	api SFN
	arn string
}

// New returns the engine for the state machine stateMachineARN.
// A function that only answers task tokens (Resume, Abort: suspend-run)
// needs no ARN and passes ""; Start and Stop then fail.
func New(api SFN, stateMachineARN string) *StepFunctions {
	return &StepFunctions{api: api, arn: stateMachineARN}
}

// errNoStateMachine: Start or Stop on an engine built without an ARN.
var errNoStateMachine = errors.New("sfnengine: this function is configured without the state machine's ARN")

// Start starts the execution of a run; an execution already started for it
// is success.
func (e *StepFunctions) Start(ctx context.Context, in workflow.StepInput) error {
	if e.arn == "" {
		return errNoStateMachine
	}
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	_, err = e.api.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(e.arn), Name: aws.String(in.RunID), Input: aws.String(string(b))})
	var exists *sfntypes.ExecutionAlreadyExists
	if errors.As(err, &exists) {
		return nil
	}
	if err != nil {
		return apperr.Wrap(apperr.Unavailable, "engine_unavailable", "the workflow engine is unavailable; retry", err)
	}
	return nil
}

// Resume completes the suspension task, which runs the step again.
func (e *StepFunctions) Resume(ctx context.Context, token string) error {
	_, err := e.api.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String(token), Output: aws.String("{}")})
	return tokenError(err)
}

// Abort fails the suspension task with RunTerminated.
func (e *StepFunctions) Abort(ctx context.Context, token string) error {
	_, err := e.api.SendTaskFailure(ctx, &sfn.SendTaskFailureInput{TaskToken: aws.String(token), Error: aws.String(workflow.ErrorRunTerminated), Cause: aws.String("terminated by a user")})
	return tokenError(err)
}

// Stop ends a run's execution; one that does not exist (or ended) is success.
func (e *StepFunctions) Stop(ctx context.Context, runID string) error {
	if e.arn == "" {
		return errNoStateMachine
	}
	_, err := e.api.StopExecution(ctx, &sfn.StopExecutionInput{ExecutionArn: aws.String(e.executionARN(runID)), Error: aws.String(workflow.ErrorRunTerminated), Cause: aws.String("terminated by a user")})
	var missing *sfntypes.ExecutionDoesNotExist
	if err == nil || errors.As(err, &missing) {
		return nil
	}
	return apperr.Wrap(apperr.Unavailable, "engine_unavailable", "the workflow engine is unavailable; retry", err)
}

// executionARN is the ARN of the execution named name of the state machine.
func (e *StepFunctions) executionARN(name string) string {
	return strings.Replace(e.arn, ":stateMachine:", ":execution:", 1) + ":" + name
}

// tokenError maps the answers that mean the token no longer waits. The
// token itself never goes into an error.
func tokenError(err error) error {
	if err == nil {
		return nil
	}
	var timedOut *sfntypes.TaskTimedOut
	var invalid *sfntypes.InvalidToken
	var missing *sfntypes.TaskDoesNotExist
	if errors.As(err, &timedOut) || errors.As(err, &invalid) || errors.As(err, &missing) {
		return workflow.ErrTokenGone
	}
	return apperr.Wrap(apperr.Unavailable, "engine_unavailable", "the workflow engine is unavailable; retry", fmt.Errorf("send task result: %w", err))
}
