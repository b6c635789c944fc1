package runtime_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connmgr/connmgr/local/runtime"
	"github.com/connmgr/connmgr/local/sam"
)

var updateCosts = flag.Bool("update-costs", false, "rewrite "+costsFile+" from the measured calls")

const costsFile = "docs/costs.md"

// costLatency delays every AWS request of every function, as a network
// would, so calls a function makes concurrently overlap and count as one
// round trip however the scheduler starts their goroutines.
const costLatency = 50 * time.Millisecond

// services are the table's columns, as the SDK names the services.
var services = []string{"DynamoDB", "KMS", "EventBridge", "SFN", "Lambda"}

// cost is one row: what a function did for one request, invocation or
// step.
type cost struct {
	what, fn, scenario string
	sent               map[string]float64 // service → requests
	ops                map[string]float64 // operation → calls
	trips              float64
	then               []string // other functions' work it set off
}

type costMeter struct {
	t    *testing.T
	rt   *runtime.Runtime
	rows []cost
}

// settle waits until the system is quiet: no execution running, no
// asynchronous invocation pending, and no AWS request sent for 100 ms.
func (m *costMeter) settle() {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	total := func() int64 {
		var n int64
		for _, c := range m.rt.Calls.Counters() {
			n += c.Sent("")
		}
		return n
	}
	for {
		if err := m.rt.Engine.WaitIdle(ctx); err != nil {
			m.t.Fatalf("the engine never settled: %v", err)
		}
		if err := m.rt.Lambda.WaitIdle(ctx); err != nil {
			m.t.Fatalf("asynchronous invocations never settled: %v", err)
		}
		before := total()
		time.Sleep(100 * time.Millisecond)
		if total() == before {
			return
		}
	}
}

// measure runs action on a quiet system and returns what each function
// sent meanwhile, by logical id (functions that sent nothing are absent).
func (m *costMeter) measure(action func()) map[string]cost {
	m.t.Helper()
	m.settle()
	for _, c := range m.rt.Calls.Counters() {
		c.Reset()
		c.SetLatency(costLatency)
	}
	action()
	m.settle()
	out := map[string]cost{}
	for fn, c := range m.rt.Calls.Counters() {
		if c.Sent("") == 0 {
			continue
		}
		r := cost{fn: fn, sent: map[string]float64{}, ops: map[string]float64{}, trips: float64(c.Trips.Count())}
		for _, s := range c.Services() {
			r.sent[s] = float64(c.Sent(s))
		}
		for _, op := range []string{"GetItem", "Query", "BatchGetItem", "TransactWriteItems", "GenerateDataKey", "Decrypt"} {
			r.ops[op] = float64(c.Count(op))
		}
		out[fn] = r
	}
	return out
}

// row records what fn did in got as the row what, divided by per (the
// steps or resolutions it made), the other functions' work as "then".
func (m *costMeter) row(what, fn, scenario string, got map[string]cost, per int) cost {
	m.t.Helper()
	r, ok := got[fn]
	if !ok {
		r = cost{fn: fn, sent: map[string]float64{}, ops: map[string]float64{}}
	}
	r.what, r.scenario = what, scenario
	r.sent, r.ops = maps.Clone(r.sent), maps.Clone(r.ops)
	if per > 1 {
		for k := range r.sent {
			r.sent[k] /= float64(per)
		}
		for k := range r.ops {
			r.ops[k] /= float64(per)
		}
		r.trips /= float64(per)
	}
	for _, other := range slices.Sorted(maps.Keys(got)) {
		if other != fn {
			r.then = append(r.then, strings.TrimSuffix(other, "Function"))
		}
	}
	m.rows = append(m.rows, r)
	return r
}

// route measures one HTTP request of c, expecting status.
func (m *costMeter) route(c *client, what, scenario, method, path string, body any, headers map[string]string, status int) (cost, response) {
	m.t.Helper()
	_, resp := m.routeWith(c, what, scenario, method, path, body, headers, status)
	return m.rows[len(m.rows)-1], resp
}

// routeWith is route, returning what every function did.
func (m *costMeter) routeWith(c *client, what, scenario, method, path string, body any, headers map[string]string, status int) (map[string]cost, response) {
	m.t.Helper()
	var resp response
	got := m.measure(func() { resp = c.do(method, path, body, headers) })
	c.expect(resp, status, what+" ("+scenario+")")
	fn := ""
	for _, f := range m.rt.Functions {
		if slices.Contains(f.RouteKeys(), what) {
			fn = f.LogicalID
		}
	}
	if fn == "" {
		m.t.Fatalf("%s is not a route of %s", what, sam.TemplateFile)
	}
	m.row(what, fn, scenario, got, 1)
	return got, resp
}

// task records what fn did in got, a measure of something larger (a
// run), divided by per; the other functions have rows of their own.
func (m *costMeter) task(what, fn, scenario string, got map[string]cost, per int) cost {
	m.t.Helper()
	r := m.row(what, fn, scenario, got, per)
	r.then = nil
	m.rows[len(m.rows)-1] = r
	return r
}

// TestCosts counts, on the emulators, the AWS requests and sequential
// round trips of every HTTP route, the resolver and each state machine
// task in a representative scenario, checks the targets of issue 12, and
// compares the table with docs/costs.md (go test ./local/runtime/ -run
// TestCosts -update-costs rewrites it).
func TestCosts(t *testing.T) {
	rt, _ := start(t)
	m := &costMeter{t: t, rt: rt}
	ctx := context.Background()
	// Put the clock ten minutes into an hour, so the expiry check's hours
	// are the same on every run (the test takes seconds).
	now := rt.Clock.Now()
	rt.Clock.Advance(now.Truncate(time.Hour).Add(70 * time.Minute).Sub(now))

	target := newBasicTarget(t, "CANARY-cost-pw")
	admin := login(t, rt, map[string]any{"sub": "alice", "tid": "contoso", "roles": []string{"tenant_admin"}})
	sites := []string{"/sites/s0", "/sites/s1", "/sites/s2", "/sites/s3"}
	member := login(t, rt, map[string]any{"sub": "mia", "tid": "contoso", "sites": sites})
	basic := func(name, password string, av map[string]any) map[string]any {
		b := map[string]any{"type": "http-basic", "name": name, "kind": "shared",
			"settings": map[string]any{"baseUrl": target.URL + "/api"}, "credentials": map[string]any{"username": "svc", "password": password}}
		if av != nil {
			b["availability"] = av
		}
		return b
	}
	create := func(body map[string]any) string {
		r := admin.do("POST", "/connections", body, nil)
		admin.expect(r, 201, "create "+body["name"].(string))
		var v struct{ ID string }
		decode(t, r, &v)
		return v.ID
	}
	good := create(basic("Target", "CANARY-cost-pw", nil))
	wrong := create(basic("Wrong password", "CANARY-cost-wrong", nil))
	for i := range 8 {
		create(basic(fmt.Sprintf("Site %d", i), "CANARY-cost-pw", map[string]any{"scope": "site", "site": sites[i%4]}))
	}
	const listed = "10 connections: 2 tenant-wide, 8 at one of 4 sites"

	// Connections.
	m.route(admin, "GET /connection-types", "the catalogue", "GET", "/connection-types", nil, nil, 200)
	cr, resp := m.route(admin, "POST /connections", "a password connection", "POST", "/connections", basic("Spare", "CANARY-cost-pw", nil), nil, 201)
	var spare struct{ ID string }
	decode(t, resp, &spare)
	if cr.ops["TransactWriteItems"] != 1 || cr.ops["GenerateDataKey"] != 1 {
		t.Errorf("create: %v TransactWriteItems and %v GenerateDataKey, want 1 and 1", cr.ops["TransactWriteItems"], cr.ops["GenerateDataKey"])
	}
	for _, l := range []struct {
		who string
		c   *client
	}{{"a tenant administrator", admin}, {"a member of 4 sites", member}} {
		r, resp := m.route(l.c, "GET /connections", l.who+"; "+listed, "GET", "/connections", nil, nil, 200)
		var page struct{ Items []struct{ ID string } }
		decode(t, resp, &page)
		if len(page.Items) != 11 {
			t.Errorf("%s listed %d connections, want 11", l.who, len(page.Items))
		}
		if r.trips > 2 {
			t.Errorf("GET /connections for %s: %v round trips, want at most 2", l.who, r.trips)
		}
	}
	m.route(member, "GET /connections", "the picker of a member at one site (usableAt)", "GET", "/connections?usableAt=/sites/s0", nil, nil, 200)
	if r, _ := m.route(member, "GET /connections/{id}", "a member reads a tenant-wide connection", "GET", "/connections/"+good, nil, nil, 200); r.trips != 1 {
		t.Errorf("GET /connections/{id}: %v round trips, want 1", r.trips)
	}
	m.route(admin, "PATCH /connections/{id}", "rename", "PATCH", "/connections/"+spare.ID, map[string]any{"name": "Spare 2"}, nil, 200)
	m.route(admin, "PUT /connections/{id}/availability", "tenant to one site", "PUT", "/connections/"+spare.ID+"/availability", map[string]any{"scope": "site", "site": "/sites/s1"}, nil, 200)
	m.route(admin, "PUT /connections/{id}/owners", "add an owner", "PUT", "/connections/"+spare.ID+"/owners", map[string]any{"owners": []string{"alice", "olga"}}, nil, 200)
	m.route(admin, "GET /connections/{id}/audit", "4 entries", "GET", "/connections/"+spare.ID+"/audit", nil, nil, 200)
	m.route(admin, "POST /connections/{id}/test", "a password connection, through the resolver", "POST", "/connections/"+good+"/test", nil, nil, 200)
	m.route(admin, "DELETE /connections/{id}", "a connection no run uses", "DELETE", "/connections/"+spare.ID, nil, nil, 204)

	// The resolver, invoked as a step invokes it: the first resolution of a
	// connection on an instance decrypts, the next ones do not.
	resolve := func(conn string) {
		in, _ := json.Marshal(map[string]string{"tenant": "contoso", "connectionId": conn, "runId": "run-cost", "stepId": "s1",
			"workflowId": "wf-cost", "site": "/sites/s0", "runOwner": "mia"})
		out, err := rt.Lambda.Invoke(ctx, "ResolveFunction", in)
		if err != nil || !bytes.Contains(out, []byte(`"ok":true`)) {
			t.Fatalf("resolve %s: %s %v", conn, out, err)
		}
	}
	site0 := create(basic("Cold", "CANARY-cost-pw", map[string]any{"scope": "site", "site": "/sites/s0"}))
	m.task("resolve", "ResolveFunction", "first use of a connection on an instance (cold)", m.measure(func() { resolve(site0) }), 1)
	if r := m.task("resolve", "ResolveFunction", "warm: used before on this instance", m.measure(func() { resolve(site0) }), 1); r.trips != 1 || r.sent["KMS"] != 0 {
		t.Errorf("warm resolution: %v round trips, %v KMS requests; want 1 and 0", r.trips, r.sent["KMS"])
	}

	// OAuth: clients, authorization, callback.
	m.route(admin, "GET /oauth-clients", "3 registrations", "GET", "/oauth-clients", nil, nil, 200)
	_, cl := m.route(admin, "GET /oauth-clients/{type}", "one registration", "GET", "/oauth-clients/sharepoint-online", nil, nil, 200)
	reg := map[string]any{"clientId": rt.OAuth.ClientID(), "clientSecret": rt.OAuth.ClientSecret(), "authorizeUrl": rt.OAuth.AuthorizeURL(), "tokenUrl": rt.OAuth.TokenURL()}
	_, cl = m.route(admin, "PUT /oauth-clients/{type}", "replace a registration (If-Match)", "PUT", "/oauth-clients/sharepoint-online", reg, map[string]string{"If-Match": cl.header.Get("ETag")}, 200)
	m.route(admin, "DELETE /oauth-clients/{type}", "a registration", "DELETE", "/oauth-clients/sharepoint-online", nil, map[string]string{"If-Match": cl.header.Get("ETag")}, 204)
	_, resp = m.route(admin, "POST /connections", "an OAuth connection (pending authorization)", "POST", "/connections",
		map[string]any{"type": "oauth2-generic", "name": "Generic API", "kind": "shared", "settings": map[string]any{}, "credentials": map[string]any{}}, nil, 201)
	var oc struct{ ID, AuthorizeURL string }
	decode(t, resp, &oc)
	got := m.measure(func() {
		if status, page, _ := browse(t, oc.AuthorizeURL); status != 200 || !strings.Contains(page, "Connection authorized") {
			t.Fatalf("callback: %d %s", status, page)
		}
	})
	m.row("GET /oauth/callback", "OauthCallbackFunction", "the provider's redirect: code exchanged, tokens sealed", got, 1)
	m.route(admin, "POST /connections/{id}/authorize", "reconnect an OAuth connection", "POST", "/connections/"+oc.ID+"/authorize", nil, nil, 200)

	// The page.
	anon := &client{t: t, base: rt.URL}
	_, page := m.route(anon, "GET /", "the Connections page", "GET", "/", nil, nil, 200)
	asset := regexp.MustCompile(`/assets/[^"']+/main\.js`).FindString(string(page.body))
	if asset == "" {
		t.Fatalf("the page names no main.js: %s", page.body)
	}
	m.route(anon, "GET /assets/{file+}", "one module", "GET", asset, nil, nil, 200)

	// Runs: two steps that succeed.
	steps := func(conn string, n int) []map[string]any {
		var out []map[string]any
		for i := range n {
			out = append(out, map[string]any{"id": fmt.Sprintf("s%d", i), "action": "http.request", "connection": conn, "input": map[string]any{"method": "GET", "path": "/items"}})
		}
		return out
	}
	// The measure settles when the run has finished: the engine is busy
	// until then.
	const nSteps = 2
	got, resp = m.routeWith(member, "POST /runs", "two steps at a site", "POST", "/runs", map[string]any{"workflowId": "wf-cost", "site": "/sites/s0", "steps": steps(good, nSteps)}, nil, 202)
	var run struct{ ID string }
	decode(t, resp, &run)
	runID := run.ID
	waitRun(t, member, runID, status("succeeded"))
	m.task("run-step", "RunStepFunction", "per step: an HTTP request with a password connection, resolved warm; the run's success and its event", got, nSteps)
	m.task("resolve", "ResolveFunction", "per step of that run: warm, the first use also notes lastUsedAt", got, nSteps)
	m.route(member, "GET /runs", "a member's runs (1)", "GET", "/runs", nil, nil, 200)
	m.route(member, "GET /runs/{id}", "a finished run", "GET", "/runs/"+runID, nil, nil, 200)

	// A run suspends on rejected credentials; new credentials resume it.
	startRun := func(conn string) string {
		r := member.do("POST", "/runs", map[string]any{"workflowId": "wf-cost", "site": "/sites/s0", "steps": steps(conn, 1)}, nil)
		member.expect(r, 202, "start run")
		var v struct{ ID string }
		decode(t, r, &v)
		return v.ID
	}
	var suspended string
	got = m.measure(func() { suspended = startRun(wrong) })
	waitRun(t, member, suspended, status("suspended"))
	m.task("run-step", "RunStepFunction", "a step whose credentials the target rejects", got, 1)
	m.task("suspend-run", "SuspendRunFunction", "record the task token, mark the run suspended", got, 1)
	m.route(admin, "GET /connections/{id}/usage", "a connection one run waits on", "GET", "/connections/"+wrong+"/usage", nil, nil, 200)
	m.route(member, "POST /runs/{id}/resume", "a suspended run (suspends again)", "POST", "/runs/"+suspended+"/resume", nil, nil, 202)
	waitRun(t, member, suspended, status("suspended"))
	got, _ = m.routeWith(admin, "PATCH /connections/{id}", "new credentials (the run waiting on it resumes)", "PATCH", "/connections/"+wrong,
		map[string]any{"credentials": map[string]any{"username": "svc", "password": "CANARY-cost-pw"}}, nil, 200)
	waitRun(t, member, suspended, status("succeeded"))
	m.task("resume-runs", "ResumeRunsFunction", "Connection Updated, one run suspended on the connection", got, 1)

	// Terminate, rebind and replace act on suspended runs.
	bad := create(basic("Rejected", "CANARY-cost-wrong", nil))
	toTerminate, toRebind, toReplace := startRun(bad), startRun(bad), startRun(bad)
	for _, id := range []string{toTerminate, toRebind, toReplace} {
		waitRun(t, member, id, status("suspended"))
	}
	got, _ = m.routeWith(member, "POST /runs/{id}/terminate", "a suspended run", "POST", "/runs/"+toTerminate+"/terminate", nil, nil, 202)
	waitRun(t, member, toTerminate, status("terminated"))
	m.task("finish-run", "FinishRunFunction", "a run terminated while suspended (a run that succeeds needs none)", got, 1)
	etag := member.do("GET", "/runs/"+toRebind, nil, nil).header.Get("ETag")
	m.route(member, "POST /runs/{id}/rebind", "a suspended run to a working connection", "POST", "/runs/"+toRebind+"/rebind",
		map[string]any{"from": bad, "to": good}, map[string]string{"If-Match": etag}, 202)
	m.route(member, "POST /connections/{id}/replace", "one suspended run rebound", "POST", "/connections/"+bad+"/replace", map[string]any{"with": good}, nil, 200)

	// The scheduled check, in an hour with nothing due.
	check, _ := json.Marshal(map[string]any{"version": "0", "id": "cost-check", "detail-type": "Scheduled Event", "source": "aws.events",
		"time": rt.Clock.Now().UTC().Format(time.RFC3339), "detail": map[string]any{}})
	if _, err := rt.Lambda.Invoke(ctx, "ExpiryCheckFunction", check); err != nil {
		t.Fatal(err)
	}
	got = m.measure(func() {
		if _, err := rt.Lambda.Invoke(ctx, "ExpiryCheckFunction", check); err != nil {
			t.Fatal(err)
		}
	})
	m.task("expiry-check", "ExpiryCheckFunction", "a scheduled check with nothing due and nothing in the outbox", got, 1)

	// Every route of the template is in the table.
	for _, f := range rt.Functions {
		for _, key := range f.RouteKeys() {
			if !slices.ContainsFunc(m.rows, func(c cost) bool { return c.what == key }) {
				t.Errorf("%s (%s) is not measured: add it to TestCosts", key, f.LogicalID)
			}
		}
	}
	for _, task := range []string{"resolve", "run-step", "suspend-run", "finish-run", "resume-runs", "expiry-check"} {
		if !slices.ContainsFunc(m.rows, func(c cost) bool { return c.what == task }) {
			t.Errorf("%s is not measured", task)
		}
	}
	compareCosts(t, renderCosts(m.rows))
}

func renderCosts(rows []cost) string {
	var b strings.Builder
	b.WriteString(`# What each request costs in AWS calls

Generated by TestCosts (local/runtime/costs_test.go); do not edit by hand.
The test fails when this file differs from what it measures. After a change
that moves a number, regenerate it and review the difference:

    go test ./local/runtime/ -run TestCosts -count=1 -update-costs

Measured on the local emulators (minidyn, local-kms and the project's
Lambda, Step Functions and EventBridge stand-ins) through a counter on
every SDK client of every function (local/emulator Counter): the requests
each function sent, by service (every attempt, as AWS bills them), and its
sequential round trips: a request sent while another of the same function
is in flight joins that round trip, one sent when none is in flight
starts the next. Each request is delayed 50 ms, as a network would, so
concurrent calls overlap (and one sent within 37 ms of a round trip's
first joins it: a goroutine may start late on a busy machine). "Then"
names the other functions the request set off (a resolver invocation, a
run's steps, an event's target); their calls are in their own rows. Rows
marked "per step" divide a run's counts by its steps.

Targets (issue 12), checked by the test: get 1 round trip; list at most 2
(every audience's Query at once, then one BatchGetItem); a warm resolution
1 round trip and no KMS request; create one TransactWriteItems and one
GenerateDataKey.

| what | function | scenario | DynamoDB | KMS | EventBridge | Step Functions | Lambda | round trips | then |
|---|---|---|---|---|---|---|---|---|---|
`)
	for _, r := range rows {
		cells := []string{r.what, strings.TrimSuffix(r.fn, "Function"), r.scenario}
		for _, s := range services {
			cells = append(cells, num(r.sent[s]))
		}
		cells = append(cells, num(r.trips), strings.Join(r.then, ", "))
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	return b.String()
}

func num(f float64) string {
	if f == 0 {
		return "0"
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func compareCosts(t *testing.T, table string) {
	t.Helper()
	root, err := sam.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, filepath.FromSlash(costsFile))
	if *updateCosts {
		if err := os.WriteFile(path, []byte(table), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v: generate it with go test ./local/runtime/ -run TestCosts -update-costs", err)
	}
	if string(old) != table {
		t.Errorf("%s differs from what was measured (regenerate with -update-costs and review the difference):\n%s", costsFile, diffLines(string(old), table))
	}
}

// diffLines lists the lines only in a (-) and only in b (+).
func diffLines(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out strings.Builder
	for _, l := range al {
		if !slices.Contains(bl, l) {
			out.WriteString("- " + l + "\n")
		}
	}
	for _, l := range bl {
		if !slices.Contains(al, l) {
			out.WriteString("+ " + l + "\n")
		}
	}
	return out.String()
}
