package sam_test

// Contract tests for deploying as written: function timeouts against the
// waits they contain, the HTTP API's CORS from a parameter, and the
// workflow's retries and bound on suspensions.

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/connmgr/connmgr/local/sam"
	"github.com/connmgr/connmgr/shared/app"
	"github.com/connmgr/connmgr/shared/httpaction"
	"github.com/connmgr/connmgr/shared/oauth"
	"github.com/connmgr/connmgr/shared/resolver"
	"github.com/connmgr/connmgr/shared/runs"
	"github.com/connmgr/connmgr/shared/workflow"
)

// at walks nested maps of generic YAML or JSON values by key.
func at(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// httpAPIIntegrationTimeout is API Gateway's limit on an HTTP API
// integration: past it the caller gets 503, whatever the function does.
const httpAPIIntegrationTimeout = 30 * time.Second

// (k) The connections function outlives the longest wait it contains, a
// connection test through the resolver (resolver.TestWait), which itself
// covers the test's request and an OAuth refresh before it; and it answers
// within API Gateway's integration timeout.
func TestContractTimeouts(t *testing.T) {
	_, fns := load(t)
	if floor := httpaction.DefaultTimeout + oauth.DefaultHTTPTimeout; resolver.TestWait <= floor {
		t.Errorf("resolver.TestWait = %v, want more than the test's request and a refresh (%v)", resolver.TestWait, floor)
	}
	for _, f := range fns {
		if f.Folder != app.FnConnections {
			continue
		}
		timeout := time.Duration(f.Timeout) * time.Second
		if timeout <= resolver.TestWait {
			t.Errorf("%s Timeout = %v; a connection test waits up to resolver.TestWait = %v for the resolver", f.LogicalID, timeout, resolver.TestWait)
		}
		if timeout > httpAPIIntegrationTimeout {
			t.Errorf("%s Timeout = %v, beyond the HTTP API's %v integration timeout", f.LogicalID, timeout, httpAPIIntegrationTimeout)
		}
		return
	}
	t.Fatalf("no %s in %s", sam.LogicalID(app.FnConnections), sam.TemplateFile)
}

// corsRequestHeaders are the request headers the API reads, besides the
// CORS-safelisted ones; corsExposedHeaders the response headers it sets
// that a page needs to read.
var (
	corsRequestHeaders = []string{"authorization", "content-type", "if-match", "idempotency-key"}
	corsExposedHeaders = []string{"etag", "location", "idempotent-replayed", "retry-after"}
)

// (l) CORS comes from the AllowedOrigin parameter: empty (the default)
// leaves CorsConfiguration out entirely, an origin allows exactly it.
func TestContractCORS(t *testing.T) {
	tmpl, _ := load(t)
	api, err := tmpl.HTTPAPI()
	if err != nil {
		t.Fatal(err)
	}
	p, ok := tmpl.CF.Parameters["AllowedOrigin"]
	if !ok {
		t.Fatal("no AllowedOrigin parameter")
	}
	if def, _ := p.Default.(string); def != "" || p.AllowedPattern == nil {
		t.Fatalf("AllowedOrigin: default %v and pattern %v, want \"\" and a pattern", p.Default, p.AllowedPattern)
	}
	pattern := regexp.MustCompile(*p.AllowedPattern)
	for v, want := range map[string]bool{"": true, "https://connections.example.com": true, "http://localhost:5173": true,
		"*": false, "https://*.example.com": false, "https://connections.example.com/": false, "https://a.example.com/page": false, "connections.example.com": false} {
		if pattern.MatchString(v) != want {
			t.Errorf("AllowedOrigin pattern %q on %q: %v, want %v", *p.AllowedPattern, v, !want, want)
		}
	}
	cors, _ := at(tmpl.Raw("Resources", api.LogicalID, "Properties", "CorsConfiguration"), "Fn::If").([]any)
	if len(cors) != 3 || cors[2] != "ref:AWS::NoValue" {
		t.Fatalf("%s CorsConfiguration: want !If [<condition on AllowedOrigin>, {...}, !Ref AWS::NoValue], got %v", api.LogicalID, cors)
	}
	cond, _ := cors[0].(string)
	wantCond := map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{"ref:AllowedOrigin", ""}}}}
	if got := tmpl.Raw("Conditions", cond); fmt.Sprint(got) != fmt.Sprint(wantCond) {
		t.Errorf("condition %s = %v, want %v", cond, got, wantCond)
	}
	cfg := cors[1]
	if got := fmt.Sprint(at(cfg, "AllowOrigins")); got != "[ref:AllowedOrigin]" {
		t.Errorf("AllowOrigins = %s, want [!Ref AllowedOrigin]", got)
	}
	for key, want := range map[string][]string{"AllowHeaders": corsRequestHeaders, "ExposeHeaders": corsExposedHeaders,
		"AllowMethods": {"GET", "POST", "PUT", "PATCH", "DELETE"}} {
		got := fmt.Sprint(at(cfg, key))
		for _, h := range want {
			if !strings.Contains(" "+strings.Trim(got, "[]")+" ", " "+h+" ") {
				t.Errorf("CorsConfiguration %s = %s lacks %s", key, got, h)
			}
		}
	}
	if at(cfg, "AllowCredentials") != nil {
		t.Error("CorsConfiguration allows credentials (cookies); the API authenticates with bearer tokens")
	}
}

// task is the part of a Task state the retry contract reads.
type task struct {
	Resource string
	Retry    []retrier
	Catch    []struct{ ErrorEquals []string }
}

type retrier struct {
	ErrorEquals     []string
	IntervalSeconds *int
	MaxAttempts     *int
	BackoffRate     *float64
	MaxDelaySeconds *int
	JitterStrategy  string
}

func workflowDefinition(t *testing.T) map[string]json.RawMessage {
	t.Helper()
	tmpl, _ := load(t)
	machines, err := tmpl.StateMachines()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range machines {
		if m.LogicalID == "WorkflowRunStateMachine" {
			var def struct{ States map[string]json.RawMessage }
			if err := json.Unmarshal(m.Definition, &def); err != nil {
				t.Fatal(err)
			}
			return def.States
		}
	}
	t.Fatal("no WorkflowRunStateMachine")
	return nil
}

// (m) Every Lambda task of the workflow, the suspension included, retries
// exactly the Lambda service errors (workflow.LambdaServiceErrors, never
// Lambda.Unknown) with jittered exponential backoff, and every task's
// failure ends in a task that records it: RunStep and Suspend catch
// States.ALL, the Mark* tasks (which record) retry States.ALL.
func TestContractWorkflowRetries(t *testing.T) {
	states := workflowDefinition(t)
	tasks := 0
	for name, raw := range states {
		var st struct{ Type string }
		if err := json.Unmarshal(raw, &st); err != nil || st.Type != "Task" {
			continue
		}
		tasks++
		var tk task
		if err := json.Unmarshal(raw, &tk); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(tk.Resource, "arn:aws:states:::lambda:invoke") {
			t.Errorf("%s: resource %s is not a Lambda task", name, tk.Resource)
		}
		service := -1
		for i, r := range tk.Retry {
			for _, e := range r.ErrorEquals {
				if e == "Lambda.Unknown" || e == "Sandbox.Timedout" {
					t.Errorf("%s retries %s: the function ran and failed; its action may have taken effect", name, e)
				}
			}
			if slices.Contains(r.ErrorEquals, workflow.LambdaServiceErrors[0]) {
				service = i
			}
		}
		if service < 0 {
			t.Errorf("%s does not retry the Lambda service errors", name)
			continue
		}
		r := tk.Retry[service]
		if !slices.Equal(slices.Sorted(slices.Values(r.ErrorEquals)), slices.Sorted(slices.Values(workflow.LambdaServiceErrors))) {
			t.Errorf("%s service retrier %v, want exactly %v", name, r.ErrorEquals, workflow.LambdaServiceErrors)
		}
		if r.IntervalSeconds == nil || r.MaxAttempts == nil || *r.MaxAttempts < 3 || r.BackoffRate == nil || *r.BackoffRate < 1.5 || r.MaxDelaySeconds == nil || r.JitterStrategy != "FULL" {
			t.Errorf("%s service retrier: want IntervalSeconds, MaxAttempts >= 3, BackoffRate >= 1.5, MaxDelaySeconds and JitterStrategy FULL: %+v", name, r)
		}
		caught := slices.ContainsFunc(tk.Catch, func(c struct{ ErrorEquals []string }) bool { return slices.Contains(c.ErrorEquals, "States.ALL") })
		records := strings.HasPrefix(name, "Mark") && slices.ContainsFunc(tk.Retry, func(r retrier) bool { return slices.Contains(r.ErrorEquals, "States.ALL") })
		if !caught && !records {
			t.Errorf("%s neither catches States.ALL nor is a Mark* task retrying it: a failure there would end the run unrecorded", name)
		}
	}
	if tasks < 4 {
		t.Errorf("%d Task states, want RunStep, Suspend, MarkFailed and MarkTerminated", tasks)
	}
}

// (m2) RunStep ends the execution when the run succeeded and answers
// everything else as a function error the definition catches by the name
// the Go runtime gives it (the error type's name): RunContinues back to
// RunStep, RunSuspended to Suspend, the rest (StepFailed) to MarkFailed.
func TestContractRunStepAnswers(t *testing.T) {
	var rs struct {
		End   bool
		Catch []struct {
			ErrorEquals []string
			ResultPath  *string
			Next        string
		}
	}
	if err := json.Unmarshal(workflowDefinition(t)["RunStep"], &rs); err != nil {
		t.Fatal(err)
	}
	if !rs.End {
		t.Error("RunStep does not end the execution: a successful run would cost more transitions")
	}
	want := map[string]string{
		reflect.TypeFor[workflow.RunContinues]().Name(): "RunStep",
		reflect.TypeFor[workflow.RunSuspended]().Name(): "Suspend",
		"States.ALL": "MarkFailed",
	}
	got := map[string]string{}
	for _, c := range rs.Catch {
		for _, e := range c.ErrorEquals {
			got[e] = c.Next
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("RunStep catches %v, want %v", got, want)
	}
	// StepFailed reaches MarkFailed through States.ALL; finish-run then
	// keeps the reason run-step recorded only if it knows the name.
	if got := workflow.FinalReason(runs.StatusFailed, reflect.TypeFor[workflow.StepFailed]().Name(), "http_404"); got != "http_404" {
		t.Errorf("a run failed by StepFailed records %q, want the step's reason", got)
	}
}

// (n) Suspensions cannot carry a run to Standard's one-year execution
// limit: the suspension state waits runs.SuspensionTimeout, and a run is
// suspended at most runs.MaxSuspensions times.
func TestContractSuspensionBound(t *testing.T) {
	var suspend struct {
		Resource       string
		TimeoutSeconds int
		Catch          []struct {
			ErrorEquals []string
			Next        string
		}
	}
	if err := json.Unmarshal(workflowDefinition(t)["Suspend"], &suspend); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(suspend.Resource, ".waitForTaskToken") {
		t.Fatalf("Suspend resource %s", suspend.Resource)
	}
	if got := time.Duration(suspend.TimeoutSeconds) * time.Second; got != runs.SuspensionTimeout {
		t.Errorf("Suspend TimeoutSeconds = %v, runs.SuspensionTimeout = %v", got, runs.SuspensionTimeout)
	}
	if total := runs.MaxSuspensions * runs.SuspensionTimeout; total >= runs.MaxExecutionTime-30*24*time.Hour {
		t.Errorf("%d suspensions of %v = %v: leaves less than 30 days of a Standard execution's %v for running", runs.MaxSuspensions, runs.SuspensionTimeout, total, runs.MaxExecutionTime)
	}
	terminated := false
	for _, c := range suspend.Catch {
		terminated = terminated || slices.Contains(c.ErrorEquals, "TooManySuspensions") && c.Next == "MarkTerminated"
	}
	if !terminated {
		t.Error("Suspend does not route TooManySuspensions to MarkTerminated")
	}
}

// (o) A function answering task tokens may do so for the workflow's state
// machine only: its grant names the machine by !Ref, or, where a !Ref
// would make a cycle (suspend-run, invoked by the machine's definition),
// by the ARN spelt from the machine's Name.
func TestContractTaskTokenGrants(t *testing.T) {
	tmpl, fns := load(t)
	const id = "WorkflowRunStateMachine"
	name, _ := tmpl.Raw("Resources", id, "Properties", "Name").(string)
	name, ok := strings.CutPrefix(name, "sub:")
	if !ok || !strings.Contains(name, "${AWS::StackName}") {
		t.Fatalf("%s Name = %q, want !Sub ${AWS::StackName}-...", id, name)
	}
	allowed := []string{"ref:" + id, "sub:arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:" + name}
	granted := 0
	for _, f := range fns {
		for _, s := range f.Policies.Statements {
			if !s.Allows("states:SendTaskSuccess") && !s.Allows("states:SendTaskFailure") {
				continue
			}
			granted++
			for _, r := range s.Resource {
				if !slices.Contains(allowed, r) {
					t.Errorf("%s statement %q answers task tokens on %q, want one of %q", f.LogicalID, s.Sid, r, allowed)
				}
			}
		}
	}
	if granted == 0 {
		t.Error("no function may answer task tokens")
	}
}
