package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connmgr/connmgr/local/stacktest"
	"github.com/connmgr/connmgr/shared/httpaction"
	"github.com/connmgr/connmgr/shared/runs"
	"github.com/connmgr/connmgr/shared/store"
)

func rawItem(t *testing.T, env *stacktest.Env, pk, sk string) map[string]types.AttributeValue {
	t.Helper()
	out, err := env.DynamoDB.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(env.Stack.TableName),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}}})
	if err != nil || out.Item == nil {
		t.Fatalf("get %s %s: %v", pk, sk, err)
	}
	return out.Item
}

// TestRunItemStaysBounded: the largest run the API accepts, every step
// answered with a 64 KiB body and long headers, keeps its run item under
// store.MaxRunItemBytes; each step's result, its body included, lives in
// an item of its own and comes back whole through RunOutputs, which also
// prefers a step item newer than the run item's copy.
func TestRunItemStaysBounded(t *testing.T) {
	env := stacktest.Start(t)
	ctx := context.Background()
	now := env.Clock.Now()
	// 50 steps with as much definition as the limits allow in all.
	steps := make([]runs.Step, runs.MaxSteps)
	for i := range steps {
		steps[i] = runs.Step{ID: fmt.Sprintf("step-%02d-%s", i, strings.Repeat("s", 50)), Action: runs.ActionHTTPRequest,
			Connection: strings.Repeat("c", 120), Input: runs.RequestSpec{Method: "POST", Path: "/" + strings.Repeat("p", 300)}}
	}
	pad := (runs.MaxStepsBytes - len(mustJSON(t, steps))) / runs.MaxSteps
	for i := range steps {
		steps[i].Input.Body = json.RawMessage(`"` + strings.Repeat("b", pad-10) + `"`)
	}
	if err := runs.ValidateSteps(steps); err != nil {
		t.Fatalf("the run is not one the API accepts: %v", err)
	}
	run := &runs.Run{Tenant: strings.Repeat("t", 128), ID: "01RUNBIG", WorkflowID: strings.Repeat("w", 128), Site: "/sites/" + strings.Repeat("x", 900),
		Owner: strings.Repeat("o", 256), Status: runs.StatusRunning, Steps: steps, Version: 1, CreatedAt: now, UpdatedAt: now}
	if err := env.Store.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	body := json.RawMessage(`"` + strings.Repeat("r", httpaction.MaxBody-2) + `"`)
	headers := map[string]string{}
	for _, h := range []string{"Content-Type", "Content-Length", "ETag", "Last-Modified", "Location", "Retry-After", "Request-Id", "X-Request-Id"} {
		headers[h] = strings.Repeat("h", 8<<10)
	}
	for i := range steps {
		prev, err := env.Store.GetRun(ctx, run.Tenant, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		res := runs.StepResult{ID: steps[i].ID, Outcome: runs.OutcomeSucceeded,
			Status: 200, Headers: runs.KeptHeaders(headers), Body: body, Reason: "", Withheld: []string{"header:X-Echo"}, Attempts: 3, At: now}
		if err := env.Store.PutStepResult(ctx, run.Tenant, run.ID, i, res); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		next := *prev
		next.Results = append(append([]runs.StepResult(nil), prev.Results...), res)
		next.Current, next.Version = i, prev.Version+1
		if err := env.Store.UpdateRun(ctx, prev, &next, store.RunCondition{}); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	size := stacktest.ItemSize(rawItem(t, env, "T#"+run.Tenant+"#R#"+run.ID, "RUN"))
	out := stacktest.ItemSize(rawItem(t, env, "T#"+run.Tenant+"#R#"+run.ID, "OUT#049"))
	t.Logf("run item %d bytes (bound %d, DynamoDB 400 KB); one output item %d bytes", size, store.MaxRunItemBytes, out)
	if size > store.MaxRunItemBytes || out > 100<<10 {
		t.Fatalf("run item %d bytes, output item %d bytes", size, out)
	}
	got, err := env.Store.GetRun(ctx, run.Tenant, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Results) != runs.MaxSteps || got.Results[7].Body != nil {
		t.Fatalf("GetRun: %d results, body kept in the run item: %v", len(got.Results), got.Results[7].Body != nil)
	}
	if err := env.Store.RunOutputs(ctx, got, 0); err != nil {
		t.Fatal(err)
	}
	for i, r := range got.Results {
		if string(r.Body) != string(body) {
			t.Fatalf("step %d: body of %d bytes back", i, len(r.Body))
		}
	}
	// A new attempt without a body, not yet in the run item: RunOutputs
	// gives it, not the run item's older copy; reading from step 4 on
	// leaves step 3 as the run item has it.
	if err := env.Store.PutStepResult(ctx, run.Tenant, run.ID, 3, runs.StepResult{ID: steps[3].ID, Outcome: runs.OutcomeTransient, Reason: "http_503", Attempts: 4, At: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	again, _ := env.Store.GetRun(ctx, run.Tenant, run.ID)
	if err := env.Store.RunOutputs(ctx, again, 0); err != nil {
		t.Fatal(err)
	}
	if r := again.Results[3]; r.Body != nil || r.Outcome != runs.OutcomeTransient || r.Attempts != 4 || again.Results[4].Body == nil {
		t.Errorf("after a bodiless attempt: step 3 %s attempt %d, body %d bytes; step 4 body %d", r.Outcome, r.Attempts, len(r.Body), len(again.Results[4].Body))
	}
	from4, _ := env.Store.GetRun(ctx, run.Tenant, run.ID)
	if err := env.Store.RunOutputs(ctx, from4, 4); err != nil {
		t.Fatal(err)
	}
	if r := from4.Results[3]; r.Outcome != runs.OutcomeSucceeded || r.Body != nil || from4.Results[4].Body == nil {
		t.Errorf("read from step 4: step 3 %s with %d bytes of body, step 4 %d", r.Outcome, len(r.Body), len(from4.Results[4].Body))
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
