package runtime_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRunVisibility: a run is seen and acted on by its owner, owners of
// its site, site collection admins of its collection and tenant admins;
// anyone else gets 404, exactly as for a run that does not exist.
func TestRunVisibility(t *testing.T) {
	w := newRunsWorld(t)
	conn := w.connection(t, "CANARY-run-pw-1")
	w.target.setPassword("something-else")
	id := w.start(t, conn) // bob, on /sites/hr
	waitRun(t, w.member, id, status("suspended"))
	who := []struct {
		name   string
		claims map[string]any
		see    bool
	}{
		{"owner", map[string]any{"sub": "bob", "tid": "contoso", "sites": []string{"/sites/hr"}}, true},
		{"site owner", map[string]any{"sub": "olga", "tid": "contoso", "owns": []string{"/sites/hr"}}, true},
		{"collection admin", map[string]any{"sub": "sam", "tid": "contoso", "sca": []string{"/sites/hr"}}, true},
		{"tenant admin", map[string]any{"sub": "alice", "tid": "contoso", "roles": []string{"tenant_admin"}}, true},
		{"member of the site", map[string]any{"sub": "carol", "tid": "contoso", "sites": []string{"/sites/hr"}}, false},
		{"other collection admin", map[string]any{"sub": "ivan", "tid": "contoso", "sca": []string{"/sites/it"}}, false},
		{"owner of a subsite", map[string]any{"sub": "pat", "tid": "contoso", "owns": []string{"/sites/hr/payroll"}}, false},
		{"other tenant", map[string]any{"sub": "bob", "tid": "fabrikam", "roles": []string{"tenant_admin"}}, false},
	}
	for _, p := range who {
		c := login(t, w.rt, p.claims)
		get := c.do("GET", "/runs/"+id, nil, nil)
		var list struct{ Items []struct{ ID string } }
		decode(t, c.do("GET", "/runs?limit=100", nil, nil), &list)
		listed := false
		for _, it := range list.Items {
			listed = listed || it.ID == id
		}
		want := 404
		if p.see {
			want = 200
		}
		if get.status != want || listed != p.see {
			t.Errorf("%s: GET %d, listed %v; want %d, %v", p.name, get.status, listed, want, p.see)
		}
		if !p.see {
			if r := c.do("POST", "/runs/"+id+"/terminate", nil, nil); r.status != 404 {
				t.Errorf("%s terminates: %d", p.name, r.status)
			}
		}
	}
	sam := login(t, w.rt, map[string]any{"sub": "sam", "tid": "contoso", "sca": []string{"/sites/hr"}})
	sam.expect(sam.do("POST", "/runs/"+id+"/terminate", nil, nil), 202, "collection admin terminates")
	v := waitRun(t, w.member, id, status("terminated"))
	if v.Reason != "terminated_by_user" {
		t.Errorf("terminated run: %+v", v)
	}
	sam.expect(sam.do("POST", "/runs/"+id+"/terminate", nil, nil), 409, "terminate twice")
}

// TestStartRunValidation: bad runs are refused with the field at fault.
func TestStartRunValidation(t *testing.T) {
	w := newRunsWorld(t)
	step := func(m map[string]any) []map[string]any {
		s := map[string]any{"id": "a", "action": "http.request", "connection": "01C", "input": map[string]any{"method": "GET", "path": "/x"}}
		for k, v := range m {
			s[k] = v
		}
		return []map[string]any{s}
	}
	tests := []struct {
		name  string
		body  map[string]any
		code  int
		field string
	}{
		{"no steps", map[string]any{"workflowId": "wf", "site": "/sites/hr", "steps": []any{}}, 400, "steps"},
		{"site not accessible", map[string]any{"workflowId": "wf", "site": "/sites/it", "steps": step(nil)}, 403, ""},
		{"bad site", map[string]any{"workflowId": "wf", "site": "hr", "steps": step(nil)}, 400, "site"},
		{"no workflow", map[string]any{"site": "/sites/hr", "steps": step(nil)}, 400, "workflowId"},
		{"unknown action", map[string]any{"workflowId": "wf", "site": "/sites/hr", "steps": step(map[string]any{"action": "ftp.get"})}, 400, "steps[0].action"},
		{"absolute URL as path", map[string]any{"workflowId": "wf", "site": "/sites/hr", "steps": step(map[string]any{"input": map[string]any{"method": "GET", "path": "https://evil.example.com/"}})}, 400, "steps[0].input.path"},
		{"dot-dot path", map[string]any{"workflowId": "wf", "site": "/sites/hr", "steps": step(map[string]any{"input": map[string]any{"method": "GET", "path": "/a/../../b"}})}, 400, "steps[0].input.path"},
		{"encoded dot-dot path", map[string]any{"workflowId": "wf", "site": "/sites/hr", "steps": step(map[string]any{"input": map[string]any{"method": "GET", "path": "/a/%2e%2e/b"}})}, 400, "steps[0].input.path"},
		{"half-encoded dot-dot path", map[string]any{"workflowId": "wf", "site": "/sites/hr", "steps": step(map[string]any{"input": map[string]any{"method": "GET", "path": "/a/.%2E"}})}, 400, "steps[0].input.path"},
		{"encoded dot path", map[string]any{"workflowId": "wf", "site": "/sites/hr", "steps": step(map[string]any{"input": map[string]any{"method": "GET", "path": "/%2e/b"}})}, 400, "steps[0].input.path"},
		{"own Authorization header", map[string]any{"workflowId": "wf", "site": "/sites/hr", "steps": step(map[string]any{"input": map[string]any{"method": "GET", "path": "/x", "headers": map[string]string{"Authorization": "Basic eA=="}}})}, 400, "steps[0].input.headers.Authorization"},
		{"bad method", map[string]any{"workflowId": "wf", "site": "/sites/hr", "steps": step(map[string]any{"input": map[string]any{"method": "CONNECT", "path": "/x"}})}, 400, "steps[0].input.method"},
		{"unknown field", map[string]any{"workflowId": "wf", "site": "/sites/hr", "steps": step(nil), "priority": 1}, 400, "priority"},
	}
	for _, tt := range tests {
		r := w.member.do("POST", "/runs", tt.body, nil)
		var e struct{ Error struct{ Field string } }
		decode(t, r, &e)
		if r.status != tt.code || e.Error.Field != tt.field {
			t.Errorf("%s: %d %s; want %d field %q", tt.name, r.status, r.body, tt.code, tt.field)
		}
	}
	var list struct{ Items []any }
	decode(t, w.member.do("GET", "/runs", nil, nil), &list)
	if len(list.Items) != 0 {
		t.Errorf("%d runs stored by rejected starts", len(list.Items))
	}
}

// TestTransientFailuresRetriedThenFail: a target answering 503 is retried
// with backoff (on the runtime's clock) and then the run fails with why; a
// 404 fails at once; a target recovering before the retries run out succeeds.
func TestTransientFailuresRetriedThenFail(t *testing.T) {
	w := newRunsWorld(t)
	var calls atomic.Int64
	var healthyAfter atomic.Int64
	healthyAfter.Store(1 << 30)
	flaky := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		switch {
		case strings.HasSuffix(r.URL.Path, "/missing"):
			rw.WriteHeader(404)
		case n >= healthyAfter.Load():
			rw.Write([]byte(`{"ok":true}`))
		default:
			rw.WriteHeader(503)
		}
	}))
	defer flaky.Close()
	r := w.admin.do("POST", "/connections", map[string]any{"type": "http-api-key", "name": "Flaky", "kind": "shared",
		"settings": map[string]any{"baseUrl": flaky.URL, "headerName": "X-Key"}, "credentials": map[string]any{"apiKey": "k-123456"}}, nil)
	w.admin.expect(r, 201, "create")
	var c struct{ ID string }
	decode(t, r, &c)
	start := func(path string) string {
		r := w.member.do("POST", "/runs", map[string]any{"workflowId": "wf", "site": "/sites/hr", "steps": []map[string]any{
			{"id": "call", "action": "http.request", "connection": c.ID, "input": map[string]any{"method": "GET", "path": path}}}}, nil)
		w.member.expect(r, 202, "start")
		var v struct{ ID string }
		decode(t, r, &v)
		return v.ID
	}
	// Advance the clock past each retry interval (5 s, 10 s, 20 s) as the run waits.
	advance := func(id string, until func(runView) bool) runView {
		for range 100 {
			var v runView
			decode(t, w.member.do("GET", "/runs/"+id, nil, nil), &v)
			if until(v) {
				return v
			}
			w.rt.Clock.Advance(5 * time.Second)
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("run %s never finished", id)
		return runView{}
	}
	id := start("/busy")
	v := advance(id, status("failed"))
	if got := calls.Load(); got != 4 || v.Reason != "retries_exhausted: http_503" || v.Steps[0].Result.Attempts != 4 {
		t.Errorf("after 503s: %d calls, %+v (want 4 attempts: 1 + 3 retries)", got, v)
	}
	calls.Store(0)
	id = start("/missing")
	v = advance(id, status("failed"))
	if calls.Load() != 1 || v.Reason != "http_404" {
		t.Errorf("404: %d calls, reason %q", calls.Load(), v.Reason)
	}
	calls.Store(0)
	healthyAfter.Store(3)
	id = start("/recovers")
	v = advance(id, status("succeeded"))
	if calls.Load() != 3 {
		t.Errorf("recovering target: %d calls, want 3", calls.Load())
	}
}

// TestRunCursorsAreBound: a GET /runs cursor continues only its own
// listing: the same caller and status filter, on the runs route.
func TestRunCursorsAreBound(t *testing.T) {
	w := newRunsWorld(t)
	conn := w.connection(t, "CANARY-run-pw-1")
	for range 3 {
		w.start(t, conn)
	}
	var page struct{ NextCursor string }
	decode(t, w.member.do("GET", "/runs?limit=1", nil, nil), &page)
	if page.NextCursor == "" {
		t.Fatal("no second page")
	}
	cursor := url.QueryEscape(page.NextCursor)
	owner := login(t, w.rt, map[string]any{"sub": "olga", "tid": "contoso", "owns": []string{"/sites/hr"}})
	tests := []struct {
		name   string
		c      *client
		path   string
		status int
	}{
		{"the next page", w.member, "/runs?limit=1&cursor=" + cursor, 200},
		{"another caller who sees the runs", owner, "/runs?limit=1&cursor=" + cursor, 400},
		{"a status filter added", w.member, "/runs?limit=1&status=running&cursor=" + cursor, 400},
		{"on the connections list", w.member, "/connections?limit=1&cursor=" + cursor, 400},
	}
	for _, tt := range tests {
		r := tt.c.do("GET", tt.path, nil, nil)
		var e struct{ Error struct{ Code string } }
		decode(t, r, &e)
		if r.status != tt.status || (tt.status == 400 && e.Error.Code != "invalid_cursor") {
			t.Errorf("%s: %d %s; want %d", tt.name, r.status, r.body, tt.status)
		}
	}
}

// TestStartRunChecksConnections: each step's connection is checked before
// the run exists. One that does not exist, that the run's owner may not
// see, or that the run may not use on its site is 422 on the step's
// connection, with the same code and message whatever the reason.
func TestStartRunChecksConnections(t *testing.T) {
	w := newRunsWorld(t)
	create := func(c *client, body map[string]any) string {
		t.Helper()
		base := map[string]any{"type": "http-basic", "name": "c", "kind": "shared",
			"settings": map[string]any{"baseUrl": w.target.URL + "/api"}, "credentials": map[string]any{"username": "svc", "password": "CANARY-run-pw-1"}}
		for k, v := range body {
			base[k] = v
		}
		r := c.do("POST", "/connections", base, nil)
		c.expect(r, 201, "create connection")
		var v struct{ ID string }
		decode(t, r, &v)
		return v.ID
	}
	// bob (w.member) can access /sites/hr; dana /sites/hr and /sites/fin.
	dana := login(t, w.rt, map[string]any{"sub": "dana", "tid": "contoso", "sites": []string{"/sites/hr", "/sites/fin"}})
	other := login(t, w.rt, map[string]any{"sub": "alice", "tid": "fabrikam", "roles": []string{"tenant_admin"}})
	tenantWide := create(w.admin, nil)
	bobs := create(w.member, map[string]any{"kind": "personal"})
	danas := create(dana, map[string]any{"kind": "personal"})
	itOnly := create(w.admin, map[string]any{"availability": map[string]any{"scope": "site", "site": "/sites/it"}})
	finOnly := create(w.admin, map[string]any{"availability": map[string]any{"scope": "site", "site": "/sites/fin"}})
	otherTenant := create(other, nil)
	step := func(id, conn string) map[string]any {
		return map[string]any{"id": id, "action": "http.request", "connection": conn, "input": map[string]any{"method": "GET", "path": "/items"}}
	}
	tests := []struct {
		name  string
		c     *client
		conns []string
		field string // "" when the run starts
	}{
		{"a tenant-wide connection", w.member, []string{tenantWide}, ""},
		{"the owner's personal connection", w.member, []string{bobs, tenantWide}, ""},
		{"no such connection", w.member, []string{"01NOSUCHCONNECTION"}, "steps[0].connection"},
		{"a malformed id", w.member, []string{"x y"}, "steps[0].connection"},
		{"available on a site the owner cannot access", w.member, []string{itOnly}, "steps[0].connection"},
		{"visible to the owner, not available on the run's site", dana, []string{finOnly}, "steps[0].connection"},
		{"someone else's personal connection", w.member, []string{danas}, "steps[0].connection"},
		{"another tenant's connection", w.member, []string{otherTenant}, "steps[0].connection"},
		{"the second step's connection", w.member, []string{tenantWide, itOnly}, "steps[1].connection"},
	}
	started := 0
	var answers []string
	for _, tt := range tests {
		var steps []map[string]any
		for i, c := range tt.conns {
			steps = append(steps, step(fmt.Sprint("s", i), c))
		}
		r := tt.c.do("POST", "/runs", map[string]any{"workflowId": "wf", "site": "/sites/hr", "steps": steps}, nil)
		if tt.field == "" {
			tt.c.expect(r, 202, tt.name)
			started++
			continue
		}
		var e struct {
			Error struct{ Code, Message, Field string }
		}
		decode(t, r, &e)
		if r.status != 422 || e.Error.Code != "connection_not_usable" || e.Error.Field != tt.field {
			t.Errorf("%s: %d %s; want 422 connection_not_usable on %s", tt.name, r.status, r.body, tt.field)
		}
		answers = append(answers, e.Error.Code+": "+e.Error.Message)
	}
	for _, a := range answers {
		if a != answers[0] {
			t.Errorf("refusals differ: %q and %q", a, answers[0])
		}
	}
	// Refused starts left no run behind.
	var list struct{ Items []any }
	decode(t, w.admin.do("GET", "/runs?limit=100", nil, nil), &list)
	if len(list.Items) != started {
		t.Errorf("%d runs stored, want the %d started", len(list.Items), started)
	}
}
