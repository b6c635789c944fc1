package eventbus_test

import (
	"context"
	"encoding/json"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/connmgr/connmgr/local/clock"
	"github.com/connmgr/connmgr/local/eventbus"
	"github.com/connmgr/connmgr/local/lambdaserver"
	"github.com/connmgr/connmgr/local/sam"
)

// TestTemplateRoutesEvents wires everything the way the local runtime does:
// the template's functions into a registry (with their Timeouts), the
// template's rules into a bus, both servers behind real SDK clients.
func TestTemplateRoutesEvents(t *testing.T) {
	data, err := os.ReadFile("testdata/template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := sam.Parse(".", data)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := tmpl.EventRules()
	if err != nil {
		t.Fatal(err)
	}
	var summary []string
	for _, r := range rules {
		summary = append(summary, r.Name+" "+r.Kind+" "+r.EventBus+" "+r.Schedule+" "+r.Targets[0].Function)
	}
	want := []string{
		"ExpiryCheckFunctionHourly Schedule default rate(1 hour) ExpiryCheckFunction",
		"ExpiryCheckFunctionNightly Schedule default cron(30 2 * * ? *) ExpiryCheckFunction",
		"ExpiryCheckFunctionPaused Schedule default rate(5 minutes) ExpiryCheckFunction",
		"ResumeRunsFunctionConnectionUpdated EventBridgeRule AppBus  ResumeRunsFunction",
	}
	if !reflect.DeepEqual(summary, want) {
		t.Fatalf("rules:\n%q\nwant\n%q", summary, want)
	}

	clk := clock.Fixed(t0)
	reg := lambdaserver.NewRegistry(lambdaserver.Options{Clock: clk})
	defer reg.Close()
	fns, err := tmpl.Functions()
	if err != nil {
		t.Fatal(err)
	}
	type received struct {
		fn       string
		payload  []byte
		deadline time.Duration
	}
	got := make(chan received, 10)
	for _, f := range fns {
		name := f.LogicalID
		handler := func(ctx context.Context, payload json.RawMessage) (string, error) {
			dl, _ := ctx.Deadline()
			got <- received{name, payload, time.Until(dl).Round(time.Second)}
			return "ok", nil
		}
		if err := reg.RegisterFunc(name, handler, time.Duration(f.Timeout)*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	bus, err := eventbus.New(eventbus.Options{Rules: rules, Invoker: reg, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	ebSrv, err := eventbus.Start("", bus)
	if err != nil {
		t.Fatal(err)
	}
	defer ebSrv.Close()
	lSrv, err := lambdaserver.Start("", reg)
	if err != nil {
		t.Fatal(err)
	}
	defer lSrv.Close()
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")}
	eb := eventbridge.NewFromConfig(cfg, func(o *eventbridge.Options) { o.BaseEndpoint = aws.String(ebSrv.URL) })
	lc := awslambda.NewFromConfig(cfg, func(o *awslambda.Options) { o.BaseEndpoint = aws.String(lSrv.URL) })

	next := func(what string) received {
		t.Helper()
		select {
		case r := <-got:
			return r
		case <-time.After(5 * time.Second):
			t.Fatalf("timed out waiting for %s", what)
		}
		return received{}
	}

	// An event on AppBus matching the pattern reaches ResumeRunsFunction;
	// one that does not match (status) and one on the default bus do not.
	put := func(bus, status string) {
		t.Helper()
		out, err := eb.PutEvents(context.Background(), &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{{
			EventBusName: aws.String(bus), Source: aws.String("connmgr.connections"),
			DetailType: aws.String("Connection Updated"), Detail: aws.String(`{"connectionId":"c-9","status":"` + status + `"}`),
		}}})
		if err != nil || out.FailedEntryCount != 0 {
			t.Fatalf("PutEvents: %v", err)
		}
	}
	put("AppBus", "revoked")
	put("default", "active")
	put("AppBus", "active")
	r := next("the EventBridgeRule delivery")
	var ev events.EventBridgeEvent
	if err := json.Unmarshal(r.payload, &ev); err != nil {
		t.Fatal(err)
	}
	if r.fn != "ResumeRunsFunction" || ev.DetailType != "Connection Updated" || string(ev.Detail) != `{"connectionId":"c-9","status":"active"}` {
		t.Errorf("%s received %s", r.fn, r.payload)
	}
	if r.deadline != 20*time.Second {
		t.Errorf("ResumeRunsFunction deadline %v, want its Timeout 20s", r.deadline)
	}

	// An hour later the hourly schedule fires ExpiryCheckFunction (Globals
	// Timeout 10s); the disabled one never does.
	clk.Advance(time.Hour)
	r = next("the Schedule delivery")
	if err := json.Unmarshal(r.payload, &ev); err != nil {
		t.Fatal(err)
	}
	if r.fn != "ExpiryCheckFunction" || ev.Source != "aws.events" || ev.DetailType != "Scheduled Event" ||
		ev.Resources[0] != "arn:aws:events:us-east-1:111122223333:rule/ExpiryCheckFunctionHourly" || r.deadline != 10*time.Second {
		t.Errorf("%s received %s (deadline %v)", r.fn, r.payload, r.deadline)
	}

	// The same registry serves the Lambda API.
	out, err := lc.Invoke(context.Background(), &awslambda.InvokeInput{FunctionName: aws.String(reg.ARN("ResumeRunsFunction")), Payload: []byte(`{}`)})
	if err != nil || string(out.Payload) != `"ok"`+"\n" && string(out.Payload) != `"ok"` {
		t.Fatalf("Invoke: %v %q", err, out.Payload)
	}
	next("the direct invocation")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := reg.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		t.Errorf("unexpected delivery to %s: %s", r.fn, r.payload)
	default:
	}
	if n := len(bus.Events("Connection Updated")); n != 3 {
		t.Errorf("%d Connection Updated events recorded, want 3", n)
	}
}
