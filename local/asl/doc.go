// Package asl is an in-process interpreter of the part of the Amazon States
// Language that statemachines/*.asl.json use, so `make dev` and the tests run
// the real workflow definition without AWS.
//
// Parse applies DefinitionSubstitutions (${Name}; an unknown name is an
// error) and checks the definition. An Engine holds state machines and runs
// their executions: StartExecution, DescribeExecution, StopExecution,
// ListExecutions, SendTaskSuccess/Failure/Heartbeat and History (the events
// of GetExecutionHistory). Lambda tasks go through an Invoker. Every wait —
// Retry intervals, a Task's TimeoutSeconds, the definition's TimeoutSeconds —
// is a deadline on the injected *clock.Clock, woken by real timers and by
// Clock.Advance, so advancing the clock 10 days fires a 10-day timeout at
// once. WaitIdle and Done let tests wait for quiescence. Package sfnserver
// serves an Engine over the Step Functions wire protocol.
//
// Supported: Task (arn:aws:states:::lambda:invoke and its
// .waitForTaskToken form; Parameters with FunctionName and Payload),
// Choice, Pass, Succeed, Fail; InputPath, Parameters, ResultSelector,
// ResultPath (null discards), OutputPath, TimeoutSeconds, Retry
// (ErrorEquals, IntervalSeconds, MaxAttempts, BackoffRate, MaxDelaySeconds,
// JitterStrategy FULL or NONE: a FULL wait is drawn from [0, the computed
// backoff] by Options.Jitter, uniformly at random unless a test sets it),
// Catch; reference paths ($, $.a.b, $.a[0], $['a b']) and the context object
// ($$.Execution.Id/Name/Input/StartTime/RoleArn, $$.State.Name/EnteredTime/
// RetryCount, $$.StateMachine.Id/Name, $$.Task.Token); Choice operators
// String*, Numeric*, BooleanEquals (and their *Path forms), StringMatches,
// IsPresent, IsNull, IsString, IsNumeric, IsBoolean, And, Or, Not.
//
// What it must never do: pretend to run a feature it does not implement.
// Parse refuses every other state type (Map, Parallel, Wait), field
// (ItemsPath, HeartbeatSeconds, Assign, QueryLanguage, ...),
// Resource, path form (wildcards, filters, slices, ..) and intrinsic
// function (States.Format, ...) with an error naming it.
//
// Limits, besides the refused features: STANDARD workflows only; no
// redrive, versions, aliases, activities or HeartbeatSeconds; the
// lambda:invoke result is {"ExecutedVersion","Payload","StatusCode"}
// without the SDK metadata fields; a path that matches nothing is
// States.Runtime (AWS names some of these States.ResultPathMatchFailure);
// StartExecution compares inputs byte for byte for idempotency; history and
// executions live in memory and are never expired (names are never
// reusable). It is never linked into a Lambda binary.
package asl
