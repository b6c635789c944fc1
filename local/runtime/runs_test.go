package runtime_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/connmgr/connmgr/local/logbuf"
	"github.com/connmgr/connmgr/local/runtime"
)

// basicTarget is an HTTP API that demands one username and password.
type basicTarget struct {
	*httptest.Server
	mu       sync.Mutex
	password string
	calls    atomic.Int64
}

func newBasicTarget(t *testing.T, password string) *basicTarget {
	bt := &basicTarget{password: password}
	bt.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bt.calls.Add(1)
		bt.mu.Lock()
		want := bt.password
		bt.mu.Unlock()
		if u, p, ok := r.BasicAuth(); !ok || u != "svc" || p != want {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, `{"path": %q, "method": %q}`, r.URL.Path, r.Method)
	}))
	t.Cleanup(bt.Close)
	return bt
}

func (bt *basicTarget) setPassword(p string) {
	bt.mu.Lock()
	defer bt.mu.Unlock()
	bt.password = p
}

type runView struct {
	ID         string
	Status     string
	Reason     string
	Suspension *struct {
		Connection, Reason        string
		SuspendedAt, TerminatesAt time.Time
	}
	Steps []struct {
		ID     string
		Result *struct {
			Outcome  string
			Status   int
			Reason   string
			Attempts int
		}
	}
}

// waitRun polls a run until cond holds (the engine runs asynchronously).
func waitRun(t *testing.T, c *client, id string, cond func(runView) bool) runView {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := c.do("GET", "/runs/"+id, nil, nil)
		c.expect(r, 200, "get run")
		var v runView
		decode(t, r, &v)
		if cond(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s never reached the expected state: %s", id, r.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func status(s string) func(runView) bool { return func(v runView) bool { return v.Status == s } }

type runsWorld struct {
	rt       *runtime.Runtime
	logs     *logbuf.Buffer
	admin    *client
	member   *client
	target   *basicTarget
	canaries []string
}

func newRunsWorld(t *testing.T) *runsWorld {
	rt, logs := start(t)
	return newRunsWorldOn(t, rt, logs)
}

// newRunsWorldOn is newRunsWorld on a runtime the test started.
func newRunsWorldOn(t *testing.T, rt *runtime.Runtime, logs *logbuf.Buffer) *runsWorld {
	w := &runsWorld{rt: rt, logs: logs, target: newBasicTarget(t, "CANARY-run-pw-1")}
	w.canaries = []string{"CANARY-run-pw-1", "CANARY-run-pw-2"}
	w.admin = login(t, rt, map[string]any{"sub": "alice", "tid": "contoso", "roles": []string{"tenant_admin"}})
	w.member = login(t, rt, map[string]any{"sub": "bob", "tid": "contoso", "sites": []string{"/sites/hr"}})
	return w
}

func (w *runsWorld) connection(t *testing.T, password string) string {
	t.Helper()
	r := w.admin.do("POST", "/connections", map[string]any{"type": "http-basic", "name": "Target", "kind": "shared",
		"settings": map[string]any{"baseUrl": w.target.URL + "/api"}, "credentials": map[string]any{"username": "svc", "password": password}}, nil)
	w.admin.expect(r, 201, "create connection")
	var v struct{ ID string }
	decode(t, r, &v)
	return v.ID
}

func (w *runsWorld) start(t *testing.T, conn string) string {
	t.Helper()
	r := w.member.do("POST", "/runs", map[string]any{"workflowId": "wf-payroll", "site": "/sites/hr", "steps": []map[string]any{
		{"id": "fetch", "action": "http.request", "connection": conn, "input": map[string]any{"method": "GET", "path": "/items"}},
		{"id": "post", "action": "http.request", "connection": conn, "input": map[string]any{"method": "POST", "path": "/items", "body": map[string]any{"n": 1}}},
	}}, nil)
	w.member.expect(r, 202, "start run")
	var v struct{ ID, Status string }
	decode(t, r, &v)
	if v.Status != "running" {
		t.Fatalf("started run: %s", r.body)
	}
	return v.ID
}

func (w *runsWorld) resumedEvents(runID string) int {
	n := 0
	for _, r := range w.rt.Bus.Events("Run Resumed") {
		if strings.Contains(string(r.Event.Detail), runID) {
			n++
		}
	}
	return n
}

// TestRunsSuspendResumeTerminate is issue 4's end-to-end scenario over HTTP.
func TestRunsSuspendResumeTerminate(t *testing.T) {
	w := newRunsWorld(t)
	conn := w.connection(t, "CANARY-run-pw-1")

	// A two-step run succeeds.
	id := w.start(t, conn)
	v := waitRun(t, w.member, id, status("succeeded"))
	if len(v.Steps) != 2 || v.Steps[0].Result == nil || v.Steps[1].Result == nil || v.Steps[1].Result.Status != 200 {
		t.Fatalf("succeeded run: %+v", v)
	}

	// The target's password changes: the next run suspends on the connection.
	w.target.setPassword("CANARY-run-pw-2")
	id = w.start(t, conn)
	v = waitRun(t, w.member, id, status("suspended"))
	if s := v.Suspension; s == nil || s.Connection != conn || s.Reason != "target_rejected_credentials_401" || s.TerminatesAt.Sub(s.SuspendedAt) != 240*time.Hour {
		t.Fatalf("suspension: %+v", v.Suspension)
	}

	// A manual resume of the unfixed run suspends it again; one sent with
	// an ETag the run has moved past is refused.
	etag := w.member.do("GET", "/runs/"+id, nil, nil).header.Get("ETag")
	w.member.expect(w.member.do("POST", "/runs/"+id+"/resume", nil, map[string]string{"If-Match": `"1"`}), 412, "resume with a stale ETag")
	w.member.expect(w.member.do("POST", "/runs/"+id+"/resume", nil, map[string]string{"If-Match": etag}), 202, "manual resume")
	v = waitRun(t, w.member, id, func(v runView) bool {
		return v.Status == "suspended" && v.Steps[0].Result != nil && v.Steps[0].Result.Attempts == 2
	})

	// Fixing the connection resumes the run by itself, and it succeeds.
	w.admin.expect(w.admin.do("PATCH", "/connections/"+conn, map[string]any{"credentials": map[string]any{"username": "svc", "password": "CANARY-run-pw-2"}}, nil), 200, "fix connection")
	waitRun(t, w.member, id, status("succeeded"))
	if n := w.resumedEvents(id); n != 2 {
		t.Errorf("%d Run Resumed events, want 2 (manual, then automatic)", n)
	}

	// A run suspended on a connection deleted since terminates when the
	// clock passes 10 days. (A run naming a connection already deleted is
	// refused at its start: TestStartRunChecksConnections.)
	gone := w.connection(t, "CANARY-run-pw-1") // the target wants pw-2 now: the run suspends
	id = w.start(t, gone)
	waitRun(t, w.member, id, status("suspended"))
	w.admin.expect(w.admin.do("DELETE", "/connections/"+gone, nil, nil), 409, "delete a connection a run waits on")
	w.admin.expect(w.admin.do("DELETE", "/connections/"+gone+"?force=true", nil, nil), 204, "delete connection anyway")
	w.member.expect(w.member.do("POST", "/runs/"+id+"/resume", nil, nil), 202, "resume on the deleted connection")
	v = waitRun(t, w.member, id, func(v runView) bool {
		return v.Status == "suspended" && v.Suspension != nil && v.Suspension.Reason == "connection_not_found"
	})
	adv := w.admin.do("POST", "/dev/clock", map[string]any{"advance": "240h1m"}, nil)
	w.admin.expect(adv, 200, "advance clock")
	// Ten days on, the tokens have expired too.
	seen := w.member.seen
	w.member = login(t, w.rt, map[string]any{"sub": "bob", "tid": "contoso", "sites": []string{"/sites/hr"}})
	w.member.seen = append(seen, w.member.seen...)
	v = waitRun(t, w.member, id, status("terminated"))
	if v.Reason != "suspension_timeout" {
		t.Errorf("terminated run: %+v", v)
	}
	w.member.expect(w.member.do("POST", "/runs/"+id+"/resume", nil, nil), 409, "resume a terminated run")
	w.checkNoCanaries(t)
	checkCallsGranted(t, w.rt)
	checkLogLines(t, w.logs)
}

// TestResumeExactlyOnce: the same Connection Updated delivered 3 times
// resumes once; K parallel manual resumes take effect once.
func TestResumeExactlyOnce(t *testing.T) {
	w := newRunsWorld(t)
	conn := w.connection(t, "CANARY-run-pw-1")
	w.target.setPassword("CANARY-run-pw-2")
	id := w.start(t, conn)
	waitRun(t, w.member, id, status("suspended"))

	// One event, delivered three times straight to the resume function.
	ev := map[string]any{"version": "0", "id": "delivery", "detail-type": "Connection Updated", "source": "connmgr",
		"account": "111122223333", "region": "us-east-1", "time": time.Now().UTC().Format(time.RFC3339),
		"detail": map[string]any{"schemaVersion": 1, "eventId": "01EVENTFIXEDFORTHISTEST0000", "tenant": "contoso", "connectionId": conn,
			"type": "http-basic", "kind": "shared", "owners": []string{"alice"}, "status": "active", "changes": []string{"credentials.password"}, "version": 2, "at": time.Now().UTC()}}
	payload, _ := json.Marshal(ev)
	for range 3 {
		if _, err := w.rt.Lambda.Invoke(context.Background(), "ResumeRunsFunction", payload); err != nil {
			t.Fatal(err)
		}
	}
	// The credentials were not fixed: the run resumes once, fails again,
	// and suspends again; the repeated deliveries change nothing.
	waitRun(t, w.member, id, func(v runView) bool {
		return v.Status == "suspended" && v.Steps[0].Result != nil && v.Steps[0].Result.Attempts == 2
	})
	if n := w.resumedEvents(id); n != 1 {
		t.Fatalf("3 deliveries of one event: %d resumes, want 1", n)
	}
	t.Logf("one Connection Updated event delivered 3 times: %d resume", w.resumedEvents(id))

	// K parallel manual resumes of that suspension (each sends the ETag
	// of the suspended run it read).
	etag := w.member.do("GET", "/runs/"+id, nil, nil).header.Get("ETag")
	const k = 10
	codes := make([]int, k)
	var wg sync.WaitGroup
	for i := range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = w.member.do("POST", "/runs/"+id+"/resume", nil, map[string]string{"If-Match": etag}).status
		}()
	}
	wg.Wait()
	accepted := 0
	for _, c := range codes {
		switch c {
		case 202:
			accepted++
		case 409, 412:
		default:
			t.Errorf("parallel resume answered %d", c)
		}
	}
	t.Logf("%d parallel resumes: %d accepted, %d no-op (409/412)", k, accepted, k-accepted)
	if accepted != 1 {
		t.Fatalf("%d parallel resumes took effect, want 1", accepted)
	}
	waitRun(t, w.member, id, func(v runView) bool { return v.Status == "suspended" && v.Steps[0].Result.Attempts == 3 })
	if n := w.resumedEvents(id); n != 2 {
		t.Errorf("Run Resumed events: %d, want 2", n)
	}
	w.member.expect(w.member.do("POST", "/runs/"+id+"/terminate", nil, nil), 202, "terminate")
	waitRun(t, w.member, id, status("terminated"))
	w.checkNoCanaries(t)
	checkCallsGranted(t, w.rt)
}

// checkNoCanaries: no secret in any state input or output, event, run
// record, response or log line.
func (w *runsWorld) checkNoCanaries(t *testing.T) {
	t.Helper()
	var texts []string
	for _, ex := range w.rt.Engine.Executions() {
		h, err := w.rt.Engine.History(ex.ARN)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range h {
			if e.IsStateEvent() {
				texts = append(texts, e.Input, e.Output)
				if strings.Contains(e.Input+e.Output, "taskToken") {
					t.Errorf("a state input/output holds a task token: %s %s", e.Input, e.Output)
				}
			}
		}
	}
	if len(texts) == 0 {
		t.Fatal("no state machine history to check")
	}
	for _, r := range w.rt.Bus.Events("") {
		texts = append(texts, string(r.Event.Detail))
	}
	for _, c := range []*client{w.admin, w.member} {
		for _, r := range c.seen {
			texts = append(texts, string(r.body))
		}
	}
	texts = append(texts, w.logs.String())
	items, err := w.rt.Stack.DynamoDBClient().Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(w.rt.Stack.TableName)})
	if err != nil {
		t.Fatal(err)
	}
	texts = append(texts, fmt.Sprintf("%s", items.Items))
	for _, text := range texts {
		for _, c := range w.canaries {
			if strings.Contains(text, c) {
				t.Errorf("canary %s found in: %.300s", c, text)
			}
		}
	}
}
