package sfnserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/smithy-go"

	"github.com/connmgr/connmgr/local/asl"
	"github.com/connmgr/connmgr/local/clock"
	"github.com/connmgr/connmgr/local/sfnserver"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

const callbackDef = `{"StartAt":"Wait","States":{
	"Wait":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke.waitForTaskToken",
		"Parameters":{"FunctionName":"suspend","Payload":{"token.$":"$$.Task.Token"}},
		"TimeoutSeconds":600,"ResultPath":"$.resumed","Next":"Done"},
	"Done":{"Type":"Succeed"}}}`

// env is an engine behind the wire server and a real sfn client.
type env struct {
	t      *testing.T
	clk    *clock.Clock
	eng    *asl.Engine
	client *sfn.Client
	url    string
	mu     sync.Mutex
	tokens []string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, clk: clock.Fixed(t0)}
	e.eng = asl.NewEngine(asl.Options{Clock: e.clk, Invoker: asl.InvokerFunc(func(_ context.Context, fn string, payload []byte) ([]byte, error) {
		var p struct{ Token string }
		json.Unmarshal(payload, &p)
		e.mu.Lock()
		e.tokens = append(e.tokens, p.Token)
		e.mu.Unlock()
		return []byte(`{}`), nil
	})})
	srv, err := sfnserver.Start("", e.eng)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Close()
		e.eng.Close()
	})
	e.url = srv.URL
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")}
	e.client = sfn.NewFromConfig(cfg, func(o *sfn.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	return e
}

func (e *env) idle() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.eng.WaitIdle(ctx); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) lastToken() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.tokens) == 0 {
		e.t.Fatal("no token issued")
	}
	return e.tokens[len(e.tokens)-1]
}

func (e *env) createMachine(ctx context.Context) string {
	e.t.Helper()
	out, err := e.client.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{
		Name: aws.String("Callback"), Definition: aws.String(callbackDef), RoleArn: aws.String("arn:aws:iam::111122223333:role/sfn"),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return aws.ToString(out.StateMachineArn)
}

// requireErr checks that err is the SDK's typed error T.
func requireErr[T error](t *testing.T, err error) T {
	t.Helper()
	var target T
	if !errors.As(err, &target) {
		t.Fatalf("error = %v (%T), want %T", err, err, target)
	}
	return target
}

func TestStartDescribeAndCallbacks(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	smARN := e.createMachine(ctx)
	if smARN != "arn:aws:states:us-east-1:111122223333:stateMachine:Callback" {
		t.Fatalf("state machine ARN %s", smARN)
	}

	start, err := e.client.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: &smARN, Name: aws.String("run-1"), Input: aws.String(`{"runId":"r1"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(start.ExecutionArn) != "arn:aws:states:us-east-1:111122223333:execution:Callback:run-1" || !start.StartDate.Equal(t0) {
		t.Fatalf("start = %s %v", aws.ToString(start.ExecutionArn), start.StartDate)
	}
	e.idle()
	desc, err := e.client.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: start.ExecutionArn})
	if err != nil {
		t.Fatal(err)
	}
	if desc.Status != types.ExecutionStatusRunning || aws.ToString(desc.Input) != `{"runId":"r1"}` || desc.StopDate != nil || aws.ToString(desc.Name) != "run-1" {
		t.Fatalf("describe while waiting: %+v", desc)
	}

	token := e.lastToken()
	if _, err := e.client.SendTaskHeartbeat(ctx, &sfn.SendTaskHeartbeatInput{TaskToken: &token}); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(time.Minute)
	if _, err := e.client.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: &token, Output: aws.String(`{"ok":true}`)}); err != nil {
		t.Fatal(err)
	}
	e.idle()
	desc, err = e.client.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: start.ExecutionArn})
	if err != nil {
		t.Fatal(err)
	}
	if desc.Status != types.ExecutionStatusSucceeded || aws.ToString(desc.Output) != `{"resumed":{"ok":true},"runId":"r1"}` ||
		desc.StopDate == nil || !desc.StopDate.Equal(t0.Add(time.Minute)) {
		t.Fatalf("describe after success: status %s output %s stop %v", desc.Status, aws.ToString(desc.Output), desc.StopDate)
	}

	_, err = e.client.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: &token, Output: aws.String(`{}`)})
	requireErr[*types.TaskTimedOut](t, err)
	_, err = e.client.SendTaskFailure(ctx, &sfn.SendTaskFailureInput{TaskToken: &token, Error: aws.String("X")})
	requireErr[*types.TaskTimedOut](t, err)
	_, err = e.client.SendTaskHeartbeat(ctx, &sfn.SendTaskHeartbeatInput{TaskToken: &token})
	requireErr[*types.TaskTimedOut](t, err)
	_, err = e.client.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String("never-issued"), Output: aws.String(`{}`)})
	requireErr[*types.InvalidToken](t, err)

	// A second run, failed through its token.
	second, err := e.client.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: &smARN, Name: aws.String("run-2")})
	if err != nil {
		t.Fatal(err)
	}
	e.idle()
	_, err = e.client.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: aws.String(e.lastToken()), Output: aws.String(`{not json`)})
	requireErr[*types.InvalidOutput](t, err)
	if _, err := e.client.SendTaskFailure(ctx, &sfn.SendTaskFailureInput{TaskToken: aws.String(e.lastToken()), Error: aws.String("RunTerminated"), Cause: aws.String("user")}); err != nil {
		t.Fatal(err)
	}
	e.idle()
	desc, err = e.client.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: second.ExecutionArn})
	if err != nil {
		t.Fatal(err)
	}
	if desc.Status != types.ExecutionStatusFailed || aws.ToString(desc.Error) != "RunTerminated" || aws.ToString(desc.Cause) != "user" || desc.Output != nil {
		t.Fatalf("describe after failure: %s %s %s", desc.Status, aws.ToString(desc.Error), aws.ToString(desc.Cause))
	}
}

func TestStartExecutionErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	smARN := e.createMachine(ctx)
	in := &sfn.StartExecutionInput{StateMachineArn: &smARN, Name: aws.String("dup"), Input: aws.String(`{"a":1}`)}
	first, err := e.client.StartExecution(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.client.StartExecution(ctx, in)
	if err != nil || aws.ToString(again.ExecutionArn) != aws.ToString(first.ExecutionArn) {
		t.Fatalf("same name, same input: %v", err)
	}
	_, err = e.client.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: &smARN, Name: aws.String("dup"), Input: aws.String(`{"a":2}`)})
	requireErr[*types.ExecutionAlreadyExists](t, err)
	if _, err := e.client.StopExecution(ctx, &sfn.StopExecutionInput{ExecutionArn: first.ExecutionArn, Error: aws.String("Stop"), Cause: aws.String("test")}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.StartExecution(ctx, in)
	requireErr[*types.ExecutionAlreadyExists](t, err)

	_, err = e.client.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: &smARN, Name: aws.String("bad name")})
	requireErr[*types.InvalidName](t, err)
	_, err = e.client.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: &smARN, Input: aws.String(`{`)})
	requireErr[*types.InvalidExecutionInput](t, err)
	_, err = e.client.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String("arn:aws:states:us-east-1:111122223333:stateMachine:Nope")})
	requireErr[*types.StateMachineDoesNotExist](t, err)
	_, err = e.client.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String("arn:aws:lambda:us-east-1:111122223333:function:f")})
	requireErr[*types.InvalidArn](t, err)
	_, err = e.client.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String("arn:aws:states:us-east-1:111122223333:execution:Callback:nope")})
	requireErr[*types.ExecutionDoesNotExist](t, err)
	_, err = e.client.ListExecutions(ctx, &sfn.ListExecutionsInput{StateMachineArn: &smARN, StatusFilter: "PENDING_REDRIVE"})
	requireErr[*types.ValidationException](t, err)

	_, err = e.client.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{Name: aws.String("Mapper"), RoleArn: aws.String("r"),
		Definition: aws.String(`{"StartAt":"M","States":{"M":{"Type":"Map","End":true}}}`)})
	if de := requireErr[*types.InvalidDefinition](t, err); !strings.Contains(de.ErrorMessage(), `state type "Map" is not supported`) {
		t.Errorf("InvalidDefinition message %q", de.ErrorMessage())
	}
	_, err = e.client.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{Name: aws.String("Fast"), RoleArn: aws.String("r"),
		Definition: aws.String(callbackDef), Type: types.StateMachineTypeExpress})
	requireErr[*types.ValidationException](t, err)
	_, err = e.client.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{Name: aws.String("Callback"), RoleArn: aws.String("other"), Definition: aws.String(callbackDef)})
	requireErr[*types.StateMachineAlreadyExists](t, err)
}

func TestListStopAndHistory(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	smARN := e.createMachine(ctx)
	var arns []string
	for _, name := range []string{"a", "b", "c"} {
		out, err := e.client.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: &smARN, Name: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		arns = append(arns, aws.ToString(out.ExecutionArn))
	}
	e.idle()
	stop, err := e.client.StopExecution(ctx, &sfn.StopExecutionInput{ExecutionArn: &arns[1], Error: aws.String("Stopped")})
	if err != nil || !stop.StopDate.Equal(t0) {
		t.Fatalf("stop: %v", err)
	}

	var names []string
	p := sfn.NewListExecutionsPaginator(e.client, &sfn.ListExecutionsInput{StateMachineArn: &smARN, MaxResults: 2})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, ex := range page.Executions {
			names = append(names, aws.ToString(ex.Name)+"="+string(ex.Status))
		}
	}
	if got := strings.Join(names, " "); got != "c=RUNNING b=ABORTED a=RUNNING" {
		t.Errorf("ListExecutions = %s", got)
	}
	running, err := e.client.ListExecutions(ctx, &sfn.ListExecutionsInput{StateMachineArn: &smARN, StatusFilter: types.ExecutionStatusAborted})
	if err != nil || len(running.Executions) != 1 || aws.ToString(running.Executions[0].Name) != "b" {
		t.Fatalf("ABORTED filter: %v", err)
	}

	var events []types.HistoryEvent
	hp := sfn.NewGetExecutionHistoryPaginator(e.client, &sfn.GetExecutionHistoryInput{ExecutionArn: &arns[1], MaxResults: 2})
	for hp.HasMorePages() {
		page, err := hp.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, page.Events...)
	}
	var kinds []string
	for _, ev := range events {
		kinds = append(kinds, string(ev.Type))
	}
	if got := strings.Join(kinds, " "); got != "ExecutionStarted TaskStateEntered TaskScheduled TaskStarted TaskSubmitted ExecutionAborted" {
		t.Fatalf("history = %s", got)
	}
	if d := events[1].StateEnteredEventDetails; d == nil || aws.ToString(d.Name) != "Wait" || aws.ToString(d.Input) != "{}" {
		t.Errorf("StateEntered details %+v", d)
	}
	if d := events[2].TaskScheduledEventDetails; d == nil || aws.ToString(d.Resource) != "invoke.waitForTaskToken" ||
		aws.ToString(d.ResourceType) != "lambda" || aws.ToInt64(d.TimeoutInSeconds) != 600 || !strings.Contains(aws.ToString(d.Parameters), `"FunctionName":"suspend"`) {
		t.Errorf("TaskScheduled details %+v", d)
	}
	if d := events[5].ExecutionAbortedEventDetails; d == nil || aws.ToString(d.Error) != "Stopped" {
		t.Errorf("ExecutionAborted details %+v", d)
	}
	if events[5].Id != 6 || events[5].PreviousEventId != 5 || !events[5].Timestamp.Equal(t0) {
		t.Errorf("event ids/timestamp %+v", events[5])
	}
	noData, err := e.client.GetExecutionHistory(ctx, &sfn.GetExecutionHistoryInput{ExecutionArn: &arns[1], IncludeExecutionData: aws.Bool(false), ReverseOrder: true})
	if err != nil {
		t.Fatal(err)
	}
	if noData.Events[0].Type != types.HistoryEventTypeExecutionAborted || noData.Events[4].StateEnteredEventDetails.Input != nil {
		t.Errorf("reverse order / includeExecutionData=false not honoured")
	}
}

// The repository's workflow registered from Go with its substitutions, then
// driven through the wire like the app's sfn client does.
func TestWorkflowRegisteredFromGo(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	def := readRepoFile(t, "statemachines/workflow-run.asl.json")
	sm, err := e.eng.CreateStateMachine(asl.StateMachineSpec{
		Name: "WorkflowRun", Definition: def,
		Substitutions: map[string]string{"RunStepFunctionArn": "run-step", "SuspendRunFunctionArn": "suspend", "FinishRunFunctionArn": "finish"},
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.client.DescribeStateMachine(ctx, &sfn.DescribeStateMachineInput{StateMachineArn: &sm.ARN})
	if err != nil || !strings.Contains(aws.ToString(out.Definition), `"FunctionName": "run-step"`) || out.Type != types.StateMachineTypeStandard {
		t.Fatalf("DescribeStateMachine: %v %s", err, aws.ToString(out.Definition))
	}
}

func readRepoFile(t *testing.T, rel string) []byte {
	t.Helper()
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			b, err := os.ReadFile(filepath.Join(dir, rel))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		if filepath.Dir(dir) == dir {
			t.Fatal("no go.mod found")
		}
		dir = filepath.Dir(dir)
	}
}

func TestUnknownOperation(t *testing.T) {
	e := newEnv(t)
	req, _ := http.NewRequest(http.MethodPost, e.url, strings.NewReader(`{}`))
	req.Header.Set("X-Amz-Target", "AWSStepFunctions.ListActivities")
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]string
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusBadRequest || !strings.HasSuffix(body["__type"], "#UnknownOperationException") {
		t.Fatalf("%d %v", resp.StatusCode, body)
	}
	// The SDK sees it as a generic API error with that code.
	_, err = e.client.ListActivities(context.Background(), &sfn.ListActivitiesInput{})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "UnknownOperationException" {
		t.Fatalf("SDK error %v", err)
	}
}
