package asl_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/connmgr/connmgr/local/asl"
)

func TestStartExecutionNamesAndInputs(t *testing.T) {
	h, _, _ := callbackHarness(t) // a machine "m" whose executions wait
	smARN := "arn:aws:states:us-east-1:111122223333:stateMachine:m"

	first := h.start(smARN, "run-1", `{"id":"a"}`)
	if first.ARN != "arn:aws:states:us-east-1:111122223333:execution:m:run-1" || first.Status != asl.StatusRunning || !first.StartDate.Equal(t0) {
		t.Fatalf("first = %+v", first)
	}
	h.clk.Advance(time.Minute)
	again, err := h.eng.StartExecution(smARN, "run-1", `{"id":"a"}`)
	if err != nil || again.ARN != first.ARN || !again.StartDate.Equal(first.StartDate) {
		t.Fatalf("same name and input while RUNNING: %+v, %v", again, err)
	}
	_, err = h.eng.StartExecution(smARN, "run-1", `{"id":"b"}`)
	requireCode(t, err, asl.CodeExecutionAlreadyExists)

	if _, err := h.eng.StopExecution(first.ARN, "", ""); err != nil {
		t.Fatal(err)
	}
	h.idle()
	_, err = h.eng.StartExecution(smARN, "run-1", `{"id":"a"}`)
	requireCode(t, err, asl.CodeExecutionAlreadyExists)

	generated := h.start(smARN, "", "")
	if !regexp.MustCompile(`:execution:m:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(generated.ARN) || generated.Input != "{}" {
		t.Errorf("generated name / default input: %+v", generated)
	}

	for _, bad := range []string{"has space", "a:b", "a/b", "a*", "{x}", strings.Repeat("n", 81), "tab\t"} {
		_, err := h.eng.StartExecution(smARN, bad, `{}`)
		requireCode(t, err, asl.CodeInvalidName)
	}
	for _, bad := range []string{`{`, `{"a":1} x`, strings.Repeat(" ", 262145)} {
		_, err := h.eng.StartExecution(smARN, "x", bad)
		requireCode(t, err, asl.CodeInvalidExecutionInput)
	}
	_, err = h.eng.StartExecution("arn:aws:states:us-east-1:111122223333:stateMachine:nope", "x", `{}`)
	requireCode(t, err, asl.CodeStateMachineDoesNotExist)
	_, err = h.eng.StartExecution("not-an-arn", "x", `{}`)
	requireCode(t, err, asl.CodeInvalidArn)
	_, err = h.eng.DescribeExecution(smARN)
	requireCode(t, err, asl.CodeInvalidArn)
	_, err = h.eng.DescribeExecution("arn:aws:states:us-east-1:111122223333:execution:m:nope")
	requireCode(t, err, asl.CodeExecutionDoesNotExist)
}

func TestStopListAndDescribe(t *testing.T) {
	h, waiting, _ := callbackHarness(t)
	smARN := "arn:aws:states:us-east-1:111122223333:stateMachine:m"
	other := h.start(smARN, "other", `{"id":"o"}`)
	h.idle()
	h.clk.Advance(time.Second)
	stop, err := h.eng.StopExecution(other.ARN, "Stopped", "test")
	if err != nil || !stop.Equal(t0.Add(time.Second)) {
		t.Fatalf("StopExecution = %v, %v", stop, err)
	}
	h.clk.Advance(time.Second)
	if again, err := h.eng.StopExecution(other.ARN, "X", "Y"); err != nil || !again.Equal(stop) {
		t.Fatalf("stopping twice: %v, %v", again, err)
	}
	ex := h.describe(other.ARN)
	if ex.Status != asl.StatusAborted || ex.Error != "Stopped" || ex.Cause != "test" || !ex.StopDate.Equal(stop) || ex.Input != `{"id":"o"}` {
		t.Fatalf("describe = %+v", ex)
	}
	names := func(status asl.Status) string {
		list, err := h.eng.ListExecutions(smARN, status)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range list {
			out = append(out, e.Name)
		}
		return strings.Join(out, ",")
	}
	all := names("")
	if !strings.HasPrefix(all, "other,") || len(strings.Split(all, ",")) != 2 {
		t.Errorf("all = %s", all)
	}
	if got := names(asl.StatusAborted); got != "other" {
		t.Errorf("ABORTED = %s", got)
	}
	if got := names(asl.StatusRunning); got == "" || strings.Contains(got, "other") {
		t.Errorf("RUNNING = %s (waiting = %s)", got, waiting)
	}
	_, err = h.eng.ListExecutions(smARN, "PENDING_REDRIVE")
	requireCode(t, err, asl.CodeValidation)
	_, err = h.eng.ListExecutions("arn:aws:states:us-east-1:111122223333:stateMachine:nope", "")
	requireCode(t, err, asl.CodeStateMachineDoesNotExist)
	evs := h.history(other.ARN)
	if last := evs[len(evs)-1]; last.Type != asl.EventExecutionAborted || last.Error != "Stopped" {
		t.Errorf("last event %+v", last)
	}
}

func TestCreateStateMachine(t *testing.T) {
	h := newHarness(t, nil)
	def := `{"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}`
	a, err := h.eng.CreateStateMachine(asl.StateMachineSpec{Name: "m", Definition: []byte(def), RoleARN: "arn:aws:iam::111122223333:role/r"})
	if err != nil || a.ARN != "arn:aws:states:us-east-1:111122223333:stateMachine:m" {
		t.Fatalf("%+v %v", a, err)
	}
	b, err := h.eng.CreateStateMachine(asl.StateMachineSpec{Name: "m", Definition: []byte(def), RoleARN: "arn:aws:iam::111122223333:role/r"})
	if err != nil || b.ARN != a.ARN {
		t.Fatalf("same again: %+v %v", b, err)
	}
	_, err = h.eng.CreateStateMachine(asl.StateMachineSpec{Name: "m", Definition: []byte(strings.ReplaceAll(def, `"P"`, `"Q"`))})
	requireCode(t, err, asl.CodeStateMachineAlreadyExists)
	_, err = h.eng.CreateStateMachine(asl.StateMachineSpec{Name: "bad", Definition: []byte(`{"StartAt":"M","States":{"M":{"Type":"Map","End":true}}}`)})
	requireCode(t, err, asl.CodeInvalidDefinition)
	if !strings.Contains(err.Error(), `state type "Map" is not supported`) {
		t.Errorf("InvalidDefinition does not say why: %v", err)
	}
	_, err = h.eng.CreateStateMachine(asl.StateMachineSpec{Name: "a b", Definition: []byte(def)})
	requireCode(t, err, asl.CodeInvalidName)
	got, err := h.eng.DescribeStateMachine(a.ARN)
	if err != nil || got.Definition.StartAt() != "P" || got.RoleARN != "arn:aws:iam::111122223333:role/r" {
		t.Fatalf("describe: %+v %v", got, err)
	}
}
