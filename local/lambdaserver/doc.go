// Package lambdaserver runs Go Lambda handlers in-process behind the Lambda
// Invoke API, so the real aws-sdk-go-v2 lambda client, the Step Functions
// engine (package asl) and the event bus (package eventbus) reach the same
// functions the way they reach them in AWS.
//
// A Registry maps function names to handlers: any aws-lambda-go handler,
// wrapped by lambda.NewHandler (Register, RegisterFunc). It invokes them
// three ways:
//
//   - Invoke(ctx, name, payload): synchronous, in-process; a function error
//     comes back as *asl.FunctionError, so a *Registry is an asl.Invoker.
//   - InvokeAsync(ctx, name, payload): the Event invocation type; the
//     invocation is queued and run in the background with bounded
//     concurrency, retried after a function error (Lambda's two retries, 1
//     and 2 minutes apart on the injected clock by default) and then dropped
//     with a log line.
//   - Handler / Start: the wire protocol (REST-JSON), POST
//     /2015-03-31/functions/{FunctionName}/invocations with
//     X-Amz-Invocation-Type RequestResponse (200), Event (202) or DryRun
//     (204). FunctionName may be a name, a partial ARN
//     (111122223333:function:NAME) or a full ARN, each optionally with the
//     :$LATEST qualifier.
//
// Every invocation gets what the aws-lambda-go runtime gives a handler: a
// context carrying a lambdacontext.LambdaContext (AwsRequestID, a UUID;
// InvokedFunctionArn, whose last segment is the function name) and a
// deadline of the function's timeout (DefaultTimeout unless registered with
// another, e.g. the template's Timeout). The deadline is real time, as a
// context deadline must be: advancing the clock does not time a running
// function out.
//
// Function errors are reported as Lambda reports them: HTTP 200 with
// X-Amz-Function-Error: Unhandled and the body {"errorMessage","errorType"}.
// errorType follows the aws-lambda-go runtime (v1.55, lambda/errors.go)
// exactly, see ErrorType: a returned messages.InvokeResponse_Error value
// supplies its own type and message; any other error is named by its
// dynamic type's name, pointer stripped (errors.New gives "errorString",
// fmt.Errorf with %w gives "wrapError", a *StepTransient gives
// "StepTransient"); wrapping is not looked through. A panic is reported with
// the panic value's type name ("string" for panic("x")) and fmt's %v of it.
// A handler still running at its deadline is reported as Lambda does:
// errorType "Sandbox.Timedout", "RequestId: <id> Error: Task timed out after
// 30.00 seconds".
//
// Service errors use the AWS error shape (X-Amzn-ErrorType header, body
// {"Type","Message"}): an unknown function or qualifier is 404
// ResourceNotFoundException, a payload that is not JSON 400
// InvalidRequestContentException, a payload over 6 MB (1 MB for Event)
// 413 RequestTooLargeException, a full async queue 429
// TooManyRequestsException.
//
// Limits: only $LATEST exists (no versions or aliases); LogType Tail
// returns no X-Amz-Log-Result; a panic does not restart anything (in AWS the
// runtime process exits and the next invocation is a cold start); panics are
// reported without stackTrace; lambdacontext.FunctionName and the other
// process-wide lambdacontext variables are not set (they are globals read
// from the environment at start-up, shared by every function here);
// asynchronous invocations are not given an event age limit or
// destinations. It never checks signatures or credentials and is never
// linked into a Lambda binary.
package lambdaserver
