//go:build unix

package riesmoke_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/connmgr/connmgr/local/clock"
	"github.com/connmgr/connmgr/local/devauth"
	"github.com/connmgr/connmgr/local/emulator"
	"github.com/connmgr/connmgr/local/gateway"
	"github.com/connmgr/connmgr/local/lambdaserver"
	"github.com/connmgr/connmgr/local/logbuf"
	"github.com/connmgr/connmgr/local/sam"
	"github.com/connmgr/connmgr/local/standins"
)

const (
	canary1 = "CANARY-rie-pw-1"
	canary2 = "CANARY-rie-pw-2"
	rieTool = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"
)

// TestBootstrapsUnderRIE builds every function's bootstrap, runs each under
// the Runtime Interface Emulator against the stand-ins, and drives them
// with the events AWS would send: a connection created, resolved, tested;
// a run that succeeds, one that suspends on a rejected password and
// resumes when the connection is fixed; the OAuth callback; the page; the
// expiry check's schedule.
func TestBootstrapsUnderRIE(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	start := time.Now()
	s := newSmoke(t, ctx)
	t.Logf("built and started %d bootstraps under aws-lambda-rie in %s", len(s.fns), time.Since(start).Round(time.Millisecond))

	admin := s.token(devauth.Claims{"sub": "alice", "tid": "contoso", "roles": []string{"tenant_admin"}})
	member := s.token(devauth.Claims{"sub": "bob", "tid": "contoso", "sites": []string{"/sites/hr"}})

	// The page (public).
	st, h, body := s.call("GET", "/", "", nil)
	if st != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s %.200s", st, h.Get("Content-Type"), body)
	}

	// A connection: created (DynamoDB, KMS GenerateDataKey, the outbox to the bus).
	st, _, body = s.call("POST", "/connections", admin, map[string]any{"type": "http-basic", "name": "Target", "kind": "shared",
		"settings":    map[string]any{"baseUrl": s.target.URL + "/api", "testPath": "/ping"},
		"credentials": map[string]any{"username": "svc", "password": canary1}})
	if st != 201 {
		t.Fatalf("create connection: %d %s", st, body)
	}
	var conn struct{ ID string }
	mustDecode(t, body, &conn)

	// Resolved by a direct invocation, as a workflow step would (KMS Decrypt).
	out, err := s.si.Lambda.Invoke(ctx, "ResolveFunction", mustJSON(t, map[string]any{"tenant": "contoso", "connectionId": conn.ID,
		"runId": "run-1", "stepId": "fetch", "workflowId": "wf-smoke", "site": "/sites/hr", "runOwner": "bob"}))
	if err != nil {
		t.Fatalf("invoke ResolveFunction: %v", err)
	}
	var resolved struct {
		OK         bool
		Credential struct {
			Kind  string
			Basic struct{ Username, Password string }
		}
	}
	mustDecode(t, out, &resolved)
	if !resolved.OK || resolved.Credential.Kind != "basic" || resolved.Credential.Basic.Username != "svc" || resolved.Credential.Basic.Password != canary1 {
		t.Fatalf("resolve answered ok=%v kind=%q user=%q and the stored password: %v", resolved.OK, resolved.Credential.Kind,
			resolved.Credential.Basic.Username, resolved.Credential.Basic.Password == canary1)
	}

	// Tested against its host through the resolve function (Lambda Invoke).
	st, _, body = s.call("POST", "/connections/"+conn.ID+"/test", admin, nil)
	if st != 200 || !strings.Contains(string(body), `"code":"verified"`) {
		t.Fatalf("test connection: %d %s", st, body)
	}

	// A run: runs starts the execution; the local Step Functions invokes
	// run-step (which resolves through resolve) and finish-run.
	runID := s.startRun(member, conn.ID)
	s.waitRun(member, runID, "succeeded")

	// The password changes at the target: the next run suspends
	// (suspend-run records the task token); fixing the connection puts
	// Connection Updated on the bus, resume-runs resumes the run, and it
	// succeeds.
	s.target.setPassword(canary2)
	runID = s.startRun(member, conn.ID)
	s.waitRun(member, runID, "suspended")
	// A second suspended run is terminated: MarkTerminated calls finish-run
	// (a run that succeeds ends at run-step).
	stopped := s.startRun(member, conn.ID)
	s.waitRun(member, stopped, "suspended")
	if st, _, body := s.call("POST", "/runs/"+stopped+"/terminate", member, nil); st != 202 {
		t.Fatalf("terminate: %d %s", st, body)
	}
	s.waitRun(member, stopped, "terminated")
	st, _, body = s.call("PATCH", "/connections/"+conn.ID, admin, map[string]any{"credentials": map[string]any{"username": "svc", "password": canary2}})
	if st != 200 {
		t.Fatalf("fix the connection: %d %s", st, body)
	}
	s.waitRun(member, runID, "succeeded")

	// The OAuth callback (public) with a state nobody issued: the resolve
	// function refuses it and the page says so.
	st, h, body = s.call("GET", "/oauth/callback?state=never-issued&code=x", "", nil)
	if st < 400 || st >= 500 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /oauth/callback: %d %s %.300s", st, h.Get("Content-Type"), body)
	}

	// The hourly schedule fires the expiry check.
	s.clock.Advance(time.Hour + time.Minute)
	s.waitFor("ExpiryCheckFunction invoked by its schedule", func() bool { return len(s.fns["ExpiryCheckFunction"].rec.ok()) > 0 })

	s.checkInvocations()
	for id, f := range s.fns {
		logs := f.logs.String()
		for _, c := range []string{canary1, canary2} {
			if strings.Contains(logs, c) {
				t.Errorf("%s logged a password", id)
			}
		}
		if strings.Contains(logs, "panic:") {
			t.Errorf("%s panicked:\n%s", id, logs)
		}
	}
	t.Logf("smoke done in %s", time.Since(start).Round(time.Millisecond))
}

// checkInvocations: every function answered, without a function error, at
// least one event of the shape AWS sends it.
func (s *smoke) checkInvocations() {
	t := s.t
	shapes := map[string]func(map[string]any) bool{
		"ConnectionsFunction":   httpEvent(true),
		"RunsFunction":          httpEvent(true),
		"OauthCallbackFunction": httpEvent(false),
		"WebFunction":           httpEvent(false),
		"ResolveFunction":       func(m map[string]any) bool { return m["tenant"] == "contoso" && m["connectionId"] != nil },
		"RunStepFunction":       keys("attempt", "runId", "tenant"),
		"SuspendRunFunction": func(m map[string]any) bool {
			return m["taskToken"] != "" && m["taskToken"] != nil && m["runId"] != nil && m["tenant"] == "contoso"
		},
		"FinishRunFunction": func(m map[string]any) bool { return m["status"] == "terminated" && m["runId"] != nil },
		"ResumeRunsFunction": func(m map[string]any) bool {
			return m["source"] == "connmgr" && m["detail-type"] == "Connection Updated"
		},
		"ExpiryCheckFunction": func(m map[string]any) bool {
			return m["source"] == "aws.events" && m["detail-type"] == "Scheduled Event"
		},
	}
	for _, id := range slices.Sorted(maps.Keys(s.fns)) {
		f := s.fns[id]
		want, ok := shapes[id]
		if !ok {
			t.Errorf("%s: no expected event shape in this test", id)
			continue
		}
		calls := f.rec.ok()
		found := false
		for _, c := range calls {
			var m map[string]any
			if json.Unmarshal(c.payload, &m) == nil && want(m) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s answered %d invocations without error, none of the expected shape; failed: %v\nlogs:\n%s", id, len(calls), f.rec.failed(), tail(f.logs.String(), 3000))
		}
		t.Logf("%-22s %d invocations answered, %d function errors", id, len(calls), len(f.rec.failed()))
	}
	// run-step's suspension is a function error whose type, as the
	// aws-lambda-go runtime names it, is what the state machine catches.
	if failed := s.fns["RunStepFunction"].rec.failed(); !slices.ContainsFunc(failed, func(e string) bool { return strings.Contains(e, `Type:"RunSuspended"`) }) {
		t.Errorf("run-step answered no RunSuspended error under aws-lambda-rie: %v", failed)
	}
}

func httpEvent(authorized bool) func(map[string]any) bool {
	return func(m map[string]any) bool {
		if m["version"] != "2.0" || m["routeKey"] == nil {
			return false
		}
		if !authorized {
			return true
		}
		rc, _ := m["requestContext"].(map[string]any)
		az, _ := rc["authorizer"].(map[string]any)
		jwt, _ := az["jwt"].(map[string]any)
		claims, _ := jwt["claims"].(map[string]any)
		return claims["tid"] == "contoso"
	}
}

func keys(names ...string) func(map[string]any) bool {
	return func(m map[string]any) bool {
		return slices.Equal(slices.Sorted(maps.Keys(m)), names)
	}
}

// smoke is the running world: the stand-ins, one emulator per function,
// the gateway in front of the HTTP functions, a target API.
type smoke struct {
	t      *testing.T
	ctx    context.Context
	si     *standins.StandIns
	clock  *clock.Clock
	signer *devauth.Signer
	fns    map[string]*function // by logical id
	api    string
	target *target
	http   *http.Client
}

// function is one bootstrap under its emulator.
type function struct {
	f    sam.Function
	rec  *recorded
	logs *logbuf.Buffer
}

func newSmoke(t *testing.T, ctx context.Context) *smoke {
	root, err := sam.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := sam.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	fns, err := tmpl.Functions()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	build(t, ctx, root, bin)

	s := &smoke{t: t, ctx: ctx, clock: clock.New(), fns: map[string]*function{}, target: newTarget(t, canary1), http: &http.Client{Timeout: 40 * time.Second}}
	// The gateway's address is the OAuth redirect URI's origin: listen first.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s.api = "http://" + ln.Addr().String()
	if s.si, err = standins.Start(ctx, tmpl, standins.Options{Clock: s.clock}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.si.Close)
	params := standins.LocalParameters(s.api, slog.LevelInfo)
	for _, f := range fns {
		env, err := s.si.Env(f, params)
		if err != nil {
			t.Fatal(err)
		}
		fn := s.startRIE(filepath.Join(bin, "aws-lambda-rie"), filepath.Join(bin, f.Folder), f, env)
		if err := s.si.Lambda.Register(lambdaserver.Function{Name: f.LogicalID, Handler: fn.rec, Timeout: time.Duration(f.Timeout) * time.Second}); err != nil {
			t.Fatal(err)
		}
		s.fns[f.LogicalID] = fn
	}
	if err := s.si.ServeBus(params); err != nil {
		t.Fatal(err)
	}
	s.serveGateway(ln, fns)
	return s
}

// build compiles every function as Lambda runs it (lambda.norpc), for this
// machine, and the emulator, in one go build (two packages at a time).
func build(t *testing.T, ctx context.Context, root, dir string) {
	t.Helper()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build", "-p", "2", "-tags", "lambda.norpc", "-o", dir+string(filepath.Separator), "./functions/...", rieTool)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("go build of the bootstraps and aws-lambda-rie: %s", time.Since(start).Round(time.Millisecond))
}

const invokePath = "/2015-03-31/functions/function/invocations"

// startRIE runs bootstrap under aws-lambda-rie on two free loopback ports
// (its invoke API and the runtime API), with env and nothing else of this
// process's environment but PATH. A port found free can be taken by
// another process (the test packages run in parallel) before the emulator
// binds it: an emulator that exits instead of listening is started again
// on new ports.
func (s *smoke) startRIE(rie, bootstrap string, f sam.Function, env map[string]string) *function {
	t := s.t
	env["AWS_REGION"], env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = emulator.Region, "local", "local"
	env["AWS_LAMBDA_FUNCTION_NAME"] = f.LogicalID
	if f.Timeout > 0 {
		env["AWS_LAMBDA_FUNCTION_TIMEOUT"] = strconv.Itoa(f.Timeout)
	}
	env["PATH"] = os.Getenv("PATH")
	for attempt := 1; ; attempt++ {
		addr, runtimeAPI := freeAddr(t), freeAddr(t)
		cmd := exec.Command(rie, "--log-level", "error", "--runtime-interface-emulator-address", addr, "--runtime-api-address", runtimeAPI, bootstrap)
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		logs := &logbuf.Buffer{}
		cmd.Stdout, cmd.Stderr = logs, logs
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the emulator and its bootstrap, killed together
		cmd.WaitDelay = 5 * time.Second
		if err := cmd.Start(); err != nil {
			t.Fatalf("start aws-lambda-rie for %s: %v", f.LogicalID, err)
		}
		exited := make(chan struct{})
		go func() {
			cmd.Wait()
			close(exited)
		}()
		stop := func() {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if s.listening(addr, exited) {
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					t.Logf("%s (aws-lambda-rie and bootstrap) output:\n%s", f.LogicalID, tail(logs.String(), 4000))
				}
			})
			return &function{f: f, logs: logs, rec: &recorded{Remote: standins.Remote{URL: "http://" + addr + invokePath, Client: &http.Client{}}}}
		}
		stop()
		if attempt == 3 {
			t.Fatalf("aws-lambda-rie for %s never listened on %s:\n%s", f.LogicalID, addr, tail(logs.String(), 4000))
		}
		t.Logf("aws-lambda-rie for %s exited before listening on %s; again on other ports:\n%s", f.LogicalID, addr, tail(logs.String(), 1000))
	}
}

// listening waits until addr accepts connections while the emulator is
// still running a moment later (a port another process took accepts
// connections too, but the emulator exits on failing to bind it).
func (s *smoke) listening(addr string, exited <-chan struct{}) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			select {
			case <-exited:
				return false
			case <-time.After(200 * time.Millisecond):
				return true
			}
		}
		select {
		case <-exited:
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
	return false
}

// serveGateway puts the local API Gateway (the template's routes and JWT
// authorizer) in front of the HTTP functions' emulators.
func (s *smoke) serveGateway(ln net.Listener, fns []sam.Function) {
	t := s.t
	var err error
	if s.signer, err = devauth.New(s.clock.Now); err != nil {
		t.Fatal(err)
	}
	var gw []gateway.Function
	for _, f := range fns {
		if !f.IsHTTP() {
			continue
		}
		id := f.LogicalID
		gw = append(gw, gateway.Function{Name: f.Folder, Routes: f.Routes, Timeout: time.Duration(f.Timeout) * time.Second,
			Handler: func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
				var resp events.APIGatewayV2HTTPResponse
				b, err := json.Marshal(ev)
				if err != nil {
					return resp, err
				}
				out, err := s.si.Lambda.Invoke(ctx, id, b) // the registry: the function's timeout, then its emulator
				if err != nil {
					return resp, err
				}
				return resp, json.Unmarshal(out, &resp)
			}})
	}
	g, err := gateway.New(gateway.Config{Functions: gw, Now: s.clock.Now, AccountID: emulator.AccountID,
		JWT: &gateway.JWT{Issuer: devauth.Issuer, Audience: []string{devauth.Audience}, Key: s.signer.PublicKey}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: g, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

func (s *smoke) token(c devauth.Claims) string {
	tok, _, err := s.signer.Mint(c)
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// call sends one request to the gateway.
func (s *smoke) call(method, path, token string, body any) (int, http.Header, []byte) {
	t := s.t
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(mustJSON(t, body))
	}
	req, err := http.NewRequestWithContext(s.ctx, method, s.api+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func (s *smoke) startRun(token, conn string) string {
	t := s.t
	t.Helper()
	st, _, body := s.call("POST", "/runs", token, map[string]any{"workflowId": "wf-smoke", "site": "/sites/hr", "steps": []map[string]any{
		{"id": "fetch", "action": "http.request", "connection": conn, "input": map[string]any{"method": "GET", "path": "/items"}}}})
	if st != 202 {
		t.Fatalf("start run: %d %s", st, body)
	}
	var v struct{ ID, Status string }
	mustDecode(t, body, &v)
	return v.ID
}

// waitRun polls the run until it has status (the engine runs it
// asynchronously).
func (s *smoke) waitRun(token, id, status string) {
	t := s.t
	t.Helper()
	var last []byte
	s.waitFor("run "+id+" "+status, func() bool {
		st, _, body := s.call("GET", "/runs/"+id, token, nil)
		last = body
		var v struct{ Status string }
		return st == 200 && json.Unmarshal(body, &v) == nil && v.Status == status
	}, func() string { return string(last) })
}

// waitFor polls cond every 50 ms for at most 45 s.
func (s *smoke) waitFor(what string, cond func() bool, detail ...func() string) {
	t := s.t
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for !cond() {
		if time.Now().After(deadline) || s.ctx.Err() != nil {
			msg := ""
			for _, d := range detail {
				msg += d()
			}
			t.Fatalf("timed out waiting for %s %s", what, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// recorded forwards invocations to a function's emulator and keeps them.
type recorded struct {
	standins.Remote
	// sandbox holds one invocation at a time: aws-lambda-rie is one
	// sandbox and panics (nil Reserve answer) on an invocation that
	// arrives while another holds it, where Lambda would use a second
	// sandbox. It answers only once the sandbox is released (it buffers
	// the response), so waiting for the answer is enough. run-step records
	// a run's success before it returns, so the next run's invocation
	// could come while the last one was finishing.
	sandbox sync.Mutex
	mu      sync.Mutex
	calls   []invocation
}

type invocation struct {
	payload []byte
	err     error
}

func (r *recorded) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	r.sandbox.Lock()
	out, err := r.Remote.Invoke(ctx, payload)
	r.sandbox.Unlock()
	r.mu.Lock()
	r.calls = append(r.calls, invocation{payload: bytes.Clone(payload), err: err})
	r.mu.Unlock()
	return out, err
}

func (r *recorded) ok() []invocation {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []invocation
	for _, c := range r.calls {
		if c.err == nil {
			out = append(out, c)
		}
	}
	return out
}

func (r *recorded) failed() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.calls {
		if c.err != nil {
			out = append(out, c.err.Error())
		}
	}
	return out
}

// target is an HTTP API that demands one username and password.
type target struct {
	*httptest.Server
	mu       sync.Mutex
	password string
}

func newTarget(t *testing.T, password string) *target {
	tg := &target{password: password}
	tg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tg.mu.Lock()
		want := tg.password
		tg.mu.Unlock()
		if u, p, ok := r.BasicAuth(); !ok || u != "svc" || p != want {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path": %q}`, r.URL.Path)
	}))
	t.Cleanup(tg.Close)
	return tg
}

func (tg *target) setPassword(p string) {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	tg.password = p
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustDecode(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %.300s: %v", b, err)
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
