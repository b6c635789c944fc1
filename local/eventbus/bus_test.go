package eventbus_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/smithy-go"

	"github.com/connmgr/connmgr/local/clock"
	"github.com/connmgr/connmgr/local/eventbus"
	"github.com/connmgr/connmgr/local/lambdaserver"
	"github.com/connmgr/connmgr/local/logbuf"
	"github.com/connmgr/connmgr/local/sam"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// inbox collects what a fake function received.
type inbox struct {
	mu   sync.Mutex
	got  [][]byte
	fail int // fail this many invocations first
}

func (in *inbox) handler(_ context.Context, payload json.RawMessage) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.got = append(in.got, append([]byte(nil), payload...))
	if in.fail > 0 {
		in.fail--
		return errors.New("not yet")
	}
	return nil
}

func (in *inbox) len() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.got)
}

func (in *inbox) event(t *testing.T, i int) events.EventBridgeEvent {
	t.Helper()
	in.mu.Lock()
	defer in.mu.Unlock()
	var ev events.EventBridgeEvent
	if err := json.Unmarshal(in.got[i], &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

type env struct {
	clk    *clock.Clock
	reg    *lambdaserver.Registry
	bus    *eventbus.Bus
	client *eventbridge.Client
	logs   *logbuf.Buffer
}

// newEnv registers the inboxes as functions, builds a bus over rules and
// serves it to a real eventbridge client.
func newEnv(t *testing.T, rules []sam.EventRule, fns map[string]*inbox) *env {
	t.Helper()
	e := &env{clk: clock.Fixed(t0), logs: &logbuf.Buffer{}}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.reg = lambdaserver.NewRegistry(lambdaserver.Options{Clock: e.clk, Logger: log})
	for name, in := range fns {
		if err := e.reg.RegisterFunc(name, in.handler, 0); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	e.bus, err = eventbus.New(eventbus.Options{Rules: rules, Invoker: e.reg, Clock: e.clk, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := eventbus.Start("", e.bus)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Close()
		e.bus.Close()
		e.reg.Close()
	})
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")}
	e.client = eventbridge.NewFromConfig(cfg, func(o *eventbridge.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	return e
}

func (e *env) idle(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.reg.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond for up to 5 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func patternRule(name, bus, pattern string, targets ...sam.EventTarget) sam.EventRule {
	var p map[string]any
	if err := json.Unmarshal([]byte(pattern), &p); err != nil {
		panic(err)
	}
	return sam.EventRule{Name: name, Kind: sam.RuleEventBridge, EventBus: bus, Pattern: p, Enabled: true, Targets: targets}
}

func fnTarget(fn string) sam.EventTarget { return sam.EventTarget{ID: fn + "Target", Function: fn} }

func TestPutEventsDeliversToMatchingRules(t *testing.T) {
	resume, audit, other := &inbox{}, &inbox{}, &inbox{}
	e := newEnv(t, []sam.EventRule{
		patternRule("ResumeRunsFunctionConnectionUpdated", "default",
			`{"source":["connmgr.connections"],"detail-type":["Connection Updated"]}`, fnTarget("ResumeRuns")),
		patternRule("AuditAll", "default", `{"source":[{"prefix":"connmgr."}]}`, fnTarget("Audit")),
		patternRule("OtherBus", "AppBus", `{"source":["connmgr.connections"]}`, fnTarget("Other")),
	}, map[string]*inbox{"ResumeRuns": resume, "Audit": audit, "Other": other})

	when := time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)
	out, err := e.client.PutEvents(context.Background(), &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{
		{Source: aws.String("connmgr.connections"), DetailType: aws.String("Connection Updated"),
			Detail: aws.String(`{"connectionId":"c-1","version":3}`), Time: aws.Time(when), Resources: []string{"arn:x:c-1"}},
		{Source: aws.String("connmgr.runs"), DetailType: aws.String("Run Finished"), Detail: aws.String(`{"runId":"r-1"}`),
			EventBusName: aws.String("arn:aws:events:us-east-1:111122223333:event-bus/default")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if out.FailedEntryCount != 0 || len(out.Entries) != 2 {
		t.Fatalf("FailedEntryCount %d, %d entries", out.FailedEntryCount, len(out.Entries))
	}
	for i, r := range out.Entries {
		if len(aws.ToString(r.EventId)) != 36 || r.ErrorCode != nil {
			t.Errorf("entry %d: %+v", i, r)
		}
	}
	e.idle(t)
	if resume.len() != 1 || audit.len() != 2 || other.len() != 0 {
		t.Fatalf("deliveries: resume %d, audit %d, other bus %d", resume.len(), audit.len(), other.len())
	}
	ev := resume.event(t, 0)
	if ev.Version != "0" || ev.ID != aws.ToString(out.Entries[0].EventId) || ev.Source != "connmgr.connections" ||
		ev.DetailType != "Connection Updated" || ev.AccountID != "111122223333" || ev.Region != "us-east-1" ||
		!ev.Time.Equal(when) || len(ev.Resources) != 1 || ev.Resources[0] != "arn:x:c-1" {
		t.Errorf("envelope %+v", ev)
	}
	var detail struct {
		ConnectionID string `json:"connectionId"`
		Version      int    `json:"version"`
	}
	if err := json.Unmarshal(ev.Detail, &detail); err != nil || detail.ConnectionID != "c-1" || detail.Version != 3 {
		t.Errorf("detail %s", ev.Detail)
	}
	// Without a Time the event is stamped with the clock, to the second.
	for i := range 2 { // deliveries run concurrently: find the second event
		if a := audit.event(t, i); a.Source == "connmgr.runs" && (!a.Time.Equal(t0) || a.Resources == nil) {
			t.Errorf("second event: time %v, resources %#v", a.Time, a.Resources)
		}
	}
	// The raw envelope carries the JSON keys EventBridge uses.
	var raw map[string]any
	json.Unmarshal(resume.got[0], &raw)
	for _, k := range []string{"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("envelope lacks %q: %s", k, resume.got[0])
		}
	}
	if raw["time"] != "2030-01-02T03:00:00Z" {
		t.Errorf("time %v", raw["time"])
	}

	// The event log, newest last, filterable by detail-type.
	all := e.bus.Events("")
	if len(all) != 2 || all[0].Event.DetailType != "Connection Updated" || all[1].Event.DetailType != "Run Finished" {
		t.Fatalf("Events: %+v", all)
	}
	if got := all[0].Rules; len(got) != 2 || got[0] != "ResumeRunsFunctionConnectionUpdated" || got[1] != "AuditAll" {
		t.Errorf("matched rules %v", got)
	}
	if runs := e.bus.Events("Run Finished"); len(runs) != 1 || runs[0].EventBusName != "default" || runs[0].Deliveries[0] != "Audit" {
		t.Errorf("filtered: %+v", runs)
	}

	// EventsHandler serves the same as JSON.
	rec := httptest.NewRecorder()
	eventbus.EventsHandler(e.bus).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/dev/events?detail-type=Connection+Updated", nil))
	var page struct{ Events []eventbus.Record }
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil || len(page.Events) != 1 || page.Events[0].Event.ID != ev.ID {
		t.Errorf("EventsHandler: %d %s", rec.Code, rec.Body)
	}
}

func TestPutEventsOtherBus(t *testing.T) {
	app := &inbox{}
	e := newEnv(t, []sam.EventRule{patternRule("R", "AppBus", `{"source":["s"]}`, fnTarget("App"))}, map[string]*inbox{"App": app})
	for _, bus := range []string{"AppBus", "arn:aws:events:us-east-1:111122223333:event-bus/AppBus", "NoSuchBus", ""} {
		out, err := e.client.PutEvents(context.Background(), &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{
			{Source: aws.String("s"), DetailType: aws.String("d"), Detail: aws.String(`{}`), EventBusName: aws.String(bus)}}})
		if err != nil || out.FailedEntryCount != 0 {
			t.Fatalf("bus %q: %v %+v", bus, err, out)
		}
	}
	e.idle(t)
	if app.len() != 2 {
		t.Errorf("AppBus rule got %d events, want 2 (by name and by ARN)", app.len())
	}
	if !strings.Contains(e.logs.String(), "matched no rule") {
		t.Error("an event no rule matched is not logged")
	}
}

func TestPutEventsEntryValidation(t *testing.T) {
	sink := &inbox{}
	e := newEnv(t, []sam.EventRule{patternRule("All", "default", `{"source":[{"exists":true}]}`, fnTarget("Sink"))},
		map[string]*inbox{"Sink": sink})
	ok := types.PutEventsRequestEntry{Source: aws.String("s"), DetailType: aws.String("d"), Detail: aws.String(`{"a":1}`)}
	with := func(f func(*types.PutEventsRequestEntry)) types.PutEventsRequestEntry { x := ok; f(&x); return x }
	cases := []struct {
		name       string
		entry      types.PutEventsRequestEntry
		code, text string
	}{
		{"no Source", with(func(x *types.PutEventsRequestEntry) { x.Source = nil }), "InvalidArgument",
			"Parameter Source is not valid. Reason: Source is a required argument."},
		{"empty Source", with(func(x *types.PutEventsRequestEntry) { x.Source = aws.String("") }), "InvalidArgument", "Source"},
		{"no DetailType", with(func(x *types.PutEventsRequestEntry) { x.DetailType = nil }), "InvalidArgument",
			"Parameter DetailType is not valid. Reason: DetailType is a required argument."},
		{"no Detail", with(func(x *types.PutEventsRequestEntry) { x.Detail = nil }), "InvalidArgument",
			"Parameter Detail is not valid. Reason: Detail is a required argument."},
		{"Detail not JSON", with(func(x *types.PutEventsRequestEntry) { x.Detail = aws.String("{oops") }), "MalformedDetail", "Detail is malformed."},
		{"Detail an array", with(func(x *types.PutEventsRequestEntry) { x.Detail = aws.String(`[1,2]`) }), "MalformedDetail", "Detail is malformed."},
		{"Detail a string", with(func(x *types.PutEventsRequestEntry) { x.Detail = aws.String(`"text"`) }), "MalformedDetail", "Detail is malformed."},
		{"Detail null", with(func(x *types.PutEventsRequestEntry) { x.Detail = aws.String(`null`) }), "MalformedDetail", "Detail is malformed."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The bad entry sits between two good ones: only it fails.
			out, err := e.client.PutEvents(context.Background(), &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{ok, tc.entry, ok}})
			if err != nil {
				t.Fatal(err)
			}
			if out.FailedEntryCount != 1 || len(out.Entries) != 3 {
				t.Fatalf("FailedEntryCount %d, %d entries", out.FailedEntryCount, len(out.Entries))
			}
			bad := out.Entries[1]
			if bad.EventId != nil || aws.ToString(bad.ErrorCode) != tc.code || !strings.Contains(aws.ToString(bad.ErrorMessage), tc.text) {
				t.Errorf("entry: id %v, %v: %v", aws.ToString(bad.EventId), aws.ToString(bad.ErrorCode), aws.ToString(bad.ErrorMessage))
			}
			if out.Entries[0].EventId == nil || out.Entries[2].EventId == nil {
				t.Error("the good entries failed too")
			}
		})
	}
	e.idle(t)
	if sink.len() != 2*len(cases) {
		t.Errorf("%d deliveries, want %d (the good entries only)", sink.len(), 2*len(cases))
	}
}

func TestPutEventsRequestValidation(t *testing.T) {
	sink := &inbox{}
	e := newEnv(t, []sam.EventRule{patternRule("All", "default", `{"source":[{"exists":true}]}`, fnTarget("Sink"))},
		map[string]*inbox{"Sink": sink})
	entry := func(detailBytes int) types.PutEventsRequestEntry {
		return types.PutEventsRequestEntry{Source: aws.String("s"), DetailType: aws.String("d"),
			Detail: aws.String(`{"x":"` + strings.Repeat("a", detailBytes-8) + `"}`)}
	}
	many := func(n int) []types.PutEventsRequestEntry {
		out := make([]types.PutEventsRequestEntry, n)
		for i := range out {
			out[i] = entry(100)
		}
		return out
	}
	cases := []struct {
		name    string
		entries []types.PutEventsRequestEntry
		text    string
	}{
		{"no entries", []types.PutEventsRequestEntry{}, "greater than or equal to 1"},
		{"eleven entries", many(11), "less than or equal to 10"},
		{"one entry over the limit", []types.PutEventsRequestEntry{entry(256*1024 + 1)}, "Total size of the entries in the request is over the limit."},
		{"entries together over the limit", []types.PutEventsRequestEntry{entry(130 * 1024), entry(130 * 1024)},
			"Total size of the entries in the request is over the limit."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client.PutEvents(context.Background(), &eventbridge.PutEventsInput{Entries: tc.entries})
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != "ValidationException" || !strings.Contains(ae.ErrorMessage(), tc.text) {
				t.Fatalf("got %v, want ValidationException mentioning %q", err, tc.text)
			}
		})
	}
	// Ten entries, and exactly the limit, are fine: 256 KB counted as
	// EventBridge counts (Source 1 + DetailType 1 + Detail).
	for _, entries := range [][]types.PutEventsRequestEntry{many(10), {entry(256*1024 - 2)}} {
		out, err := e.client.PutEvents(context.Background(), &eventbridge.PutEventsInput{Entries: entries})
		if err != nil || out.FailedEntryCount != 0 {
			t.Fatalf("%d entries: %v", len(entries), err)
		}
	}
	e.idle(t)
	if sink.len() != 11 {
		t.Errorf("%d deliveries, want 11 (nothing from the failed requests)", sink.len())
	}
	if got := eventbus.RequestSize([]eventbus.Entry{{Source: "s", DetailType: "dt", Detail: "{}", Time: t0, Resources: []string{"abc"}}}); got != 1+2+2+14+3 {
		t.Errorf("RequestSize = %d", got)
	}
}

func TestTargetInputAndInputPath(t *testing.T) {
	constant, part, whole := &inbox{}, &inbox{}, &inbox{}
	e := newEnv(t, []sam.EventRule{patternRule("R", "default", `{"source":["s"]}`,
		sam.EventTarget{ID: "c", Function: "Constant", Input: `{"fixed":true}`},
		sam.EventTarget{ID: "p", Function: "Part", InputPath: "$.detail.inner"},
		sam.EventTarget{ID: "w", Function: "Whole", InputPath: "$"},
	)}, map[string]*inbox{"Constant": constant, "Part": part, "Whole": whole})
	if _, err := e.bus.PutEvents(context.Background(), []eventbus.Entry{{Source: "s", DetailType: "d", Detail: `{"inner":{"k":"v"}}`}}); err != nil {
		t.Fatal(err)
	}
	e.idle(t)
	if string(constant.got[0]) != `{"fixed":true}` || string(part.got[0]) != `{"k":"v"}` || whole.event(t, 0).Source != "s" {
		t.Errorf("constant %s, part %s, whole %s", constant.got[0], part.got[0], whole.got[0])
	}
}

func TestFailedTargetIsRetriedOnTheClock(t *testing.T) {
	flaky := &inbox{fail: 1}
	e := newEnv(t, []sam.EventRule{patternRule("R", "default", `{"source":["s"]}`, fnTarget("Flaky"))}, map[string]*inbox{"Flaky": flaky})
	if _, err := e.bus.PutEvents(context.Background(), []eventbus.Entry{{Source: "s", DetailType: "d", Detail: `{}`}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first attempt", func() bool { return flaky.len() == 1 })
	e.clk.Advance(time.Minute) // Lambda's first retry comes a minute later
	e.idle(t)
	if flaky.len() != 2 || flaky.event(t, 0).ID != flaky.event(t, 1).ID {
		t.Errorf("%d attempts; the retry must carry the same event", flaky.len())
	}
}

func TestSchedulesFireOnTheClock(t *testing.T) {
	hourly, nightly, paused := &inbox{}, &inbox{}, &inbox{}
	e := newEnv(t, []sam.EventRule{
		{Name: "HourlyRule", Kind: sam.RuleSchedule, EventBus: "default", Schedule: "rate(1 hour)", Enabled: true,
			Targets: []sam.EventTarget{fnTarget("Hourly")}},
		{Name: "NightlyRule", Kind: sam.RuleSchedule, EventBus: "default", Schedule: "cron(30 2 * * ? *)", Enabled: true,
			Targets: []sam.EventTarget{{ID: "n", Function: "Nightly", Input: `{"mode":"full"}`}}},
		{Name: "PausedRule", Kind: sam.RuleSchedule, EventBus: "default", Schedule: "rate(1 minute)", Enabled: false,
			Targets: []sam.EventTarget{fnTarget("Paused")}},
	}, map[string]*inbox{"Hourly": hourly, "Nightly": nightly, "Paused": paused})

	e.clk.Advance(59 * time.Minute)
	time.Sleep(20 * time.Millisecond)
	if hourly.len() != 0 {
		t.Fatal("rate(1 hour) fired before an hour had passed")
	}
	e.clk.Advance(time.Minute)
	waitFor(t, "the hourly firing", func() bool { return hourly.len() == 1 })
	ev := hourly.event(t, 0)
	if ev.Source != "aws.events" || ev.DetailType != "Scheduled Event" || string(ev.Detail) != "{}" ||
		!ev.Time.Equal(t0.Add(time.Hour)) || len(ev.Resources) != 1 ||
		ev.Resources[0] != "arn:aws:events:us-east-1:111122223333:rule/HourlyRule" {
		t.Errorf("scheduled event %+v", ev)
	}

	// A day at once: one event each (no backfill), stamped with the last
	// scheduled time crossed; the nightly cron (02:30) is crossed too.
	e.clk.Advance(24 * time.Hour)
	waitFor(t, "the next firings", func() bool { return hourly.len() == 2 && nightly.len() == 1 })
	time.Sleep(20 * time.Millisecond)
	e.idle(t)
	if hourly.len() != 2 || nightly.len() != 1 {
		t.Fatalf("hourly %d, nightly %d: want one firing per Advance", hourly.len(), nightly.len())
	}
	if got := hourly.event(t, 1).Time; !got.Equal(t0.Add(25 * time.Hour)) {
		t.Errorf("second hourly firing stamped %v, want %v", got, t0.Add(25*time.Hour))
	}
	if got := e.bus.Events("")[2].Event.Time; !got.Equal(time.Date(2030, 1, 3, 2, 30, 0, 0, time.UTC)) {
		t.Errorf("nightly firing stamped %v", got)
	}
	if string(nightly.got[0]) != `{"mode":"full"}` {
		t.Errorf("the Input replaces the event: %s", nightly.got[0])
	}
	if paused.len() != 0 {
		t.Error("a disabled schedule fired")
	}
	recs := e.bus.Events(eventbus.ScheduledDetailType)
	if len(recs) != 3 {
		t.Errorf("%d scheduled events recorded, want 3", len(recs))
	}
}

func TestNewRejects(t *testing.T) {
	reg := lambdaserver.NewRegistry(lambdaserver.Options{})
	defer reg.Close()
	if err := reg.RegisterFunc("Fn", func() error { return nil }, 0); err != nil {
		t.Fatal(err)
	}
	sched := func(expr string, tg sam.EventTarget) sam.EventRule {
		return sam.EventRule{Name: "R", Schedule: expr, Enabled: true, Targets: []sam.EventTarget{tg}}
	}
	for _, tc := range []struct {
		name string
		rule sam.EventRule
		text string
	}{
		{"unregistered function", patternRule("R", "default", `{"source":["s"]}`, fnTarget("Nope")), "not registered"},
		{"not a function", patternRule("R", "default", `{"source":["s"]}`, sam.EventTarget{ID: "q", Arn: "getatt:Queue.Arn"}), "functions only"},
		{"bad pattern", patternRule("R", "default", `{"source":"s"}`, fnTarget("Fn")), "InvalidEventPatternException"},
		{"bad schedule", sched("rate(1 hours)", fnTarget("Fn")), "rate(1 hour)"},
		{"input transformer", sched("rate(1 hour)", sam.EventTarget{ID: "t", Function: "Fn", InputTransformer: map[string]any{}}), "InputTransformer"},
		{"bad input", sched("rate(1 hour)", sam.EventTarget{ID: "t", Function: "Fn", Input: "{"}), "not valid JSON"},
		{"unsupported input path", sched("rate(1 hour)", sam.EventTarget{ID: "t", Function: "Fn", InputPath: "$.detail[0]"}), "$.a.b only"},
		{"no targets", sam.EventRule{Name: "R", Schedule: "rate(1 hour)", Enabled: true}, "no targets"},
		{"neither pattern nor schedule", sam.EventRule{Name: "R", Enabled: true, Targets: []sam.EventTarget{fnTarget("Fn")}}, "exactly one"},
	} {
		_, err := eventbus.New(eventbus.Options{Rules: []sam.EventRule{tc.rule}, Invoker: reg})
		if err == nil || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.text)
		}
	}
}

func TestUnknownOperation(t *testing.T) {
	e := newEnv(t, nil, nil)
	_, err := e.client.ListRules(context.Background(), &eventbridge.ListRulesInput{})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "UnknownOperationException" {
		t.Errorf("ListRules: %v", err)
	}
}
