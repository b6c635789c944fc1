package tour

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/connmgr/connmgr/local/eventbus"
	"github.com/connmgr/connmgr/local/logbuf"
	"github.com/connmgr/connmgr/shared/events"
	"github.com/connmgr/connmgr/shared/events/schemas"
)

// The tour is the README's text between these markers; its ``` fence
// lines are dropped and the rest runs as one script.
const (
	beginMarker = "<!-- tour:begin -->"
	endMarker   = "<!-- tour:end -->"
	root        = "../.."
)

// Tools lists what the tour may call besides shell builtins; README's Set
// up names each of them.
var Tools = []string{"bash", "curl", "jq", "seq", "sleep", "sort", "uniq"}

// Script extracts the tour from a README.
func Script(readme string) (string, error) {
	_, rest, ok := strings.Cut(readme, beginMarker)
	if !ok {
		return "", fmt.Errorf("README.md has no %s", beginMarker)
	}
	body, _, ok := strings.Cut(rest, endMarker)
	if !ok {
		return "", fmt.Errorf("README.md has no %s after %s", endMarker, beginMarker)
	}
	var b strings.Builder
	fences := 0
	for _, line := range strings.SplitAfter(body, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fences++
			continue
		}
		if fences%2 == 1 { // only what is inside code blocks runs
			b.WriteString(line)
		}
	}
	if fences == 0 || fences%2 != 0 {
		return "", fmt.Errorf("the tour's code blocks are not closed (%d fence lines)", fences)
	}
	return b.String(), nil
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestREADMETour: the README's tour runs verbatim and leaves the runtime
// in the state it describes.
func TestREADMETour(t *testing.T) {
	for _, tool := range Tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the tour needs %s (README: Set up): %v", tool, err)
		}
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	script, err := Script(string(readme))
	if err != nil {
		t.Fatal(err)
	}
	// Every command the tour runs is a tool Set up lists, or a function
	// or variable the tour defines.
	checkTools(t, script, string(readme))

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	// As make dev builds it (DEV_FLAGS in the Makefile).
	build := exec.CommandContext(ctx, "go", "build", "-ldflags=-w", "-o", filepath.Join(dir, "dev"), "./local/cmd/dev")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./local/cmd/dev: %v\n%s", err, out)
	}

	// make dev, on a free port.
	port := freePort(t)
	var devOut, devErr logbuf.Buffer
	dev := exec.Command(filepath.Join(dir, "dev"))
	dev.Dir = root
	dev.Env = append(os.Environ(), "PORT="+strconv.Itoa(port))
	dev.Stdout, dev.Stderr = &devOut, &devErr
	began := time.Now()
	if err := dev.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var exitErr error
	go func() { exitErr = dev.Wait(); close(exited) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		dev.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
			err := exitErr
			if err != nil {
				t.Errorf("make dev did not stop cleanly on SIGTERM: %v\n%s", err, devErr.String())
			}
		case <-time.After(15 * time.Second):
			dev.Process.Kill()
			t.Errorf("make dev did not stop within 15 s of SIGTERM")
		}
	}
	defer stop()
	api := fmt.Sprintf("http://127.0.0.1:%d", port)
	for !strings.Contains(devErr.String(), "ready at "+api) {
		select {
		case <-exited:
			stopped = true
			t.Fatalf("make dev exited: %v\n%s", exitErr, devErr.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Since(began) > time.Minute {
			t.Fatalf("make dev not ready after a minute:\n%s", devErr.String())
		}
	}
	t.Logf("make dev ready in %v (built beforehand)", time.Since(began).Round(time.Millisecond))
	for _, phase := range []string{"stand-ins started", "demo target API started", "OAuth provider started", "ready at"} {
		if !strings.Contains(devErr.String(), phase) {
			t.Errorf("make dev did not say %q while starting:\n%s", phase, devErr.String())
		}
	}

	// The tour, verbatim, with PORT as a newcomer would set it (API unset).
	var out, errOut logbuf.Buffer
	tourStart := time.Now()
	sh := exec.CommandContext(ctx, "bash", "-e", "-c", script)
	sh.Env = append(withoutVar(os.Environ(), "API"), "PORT="+strconv.Itoa(port))
	sh.Stdout, sh.Stderr = &out, &errOut
	if err := sh.Run(); err != nil {
		t.Fatalf("the tour failed: %v\nstdout:\n%s\nstderr:\n%s\nmake dev's log:\n%s", err, out.String(), errOut.String(), tail(devErr.String(), 40))
	}
	t.Logf("the tour ran in %v; its output:\n%s", time.Since(tourStart).Round(time.Millisecond), out.String())

	checkEndState(t, api)
	stop()
	// Nothing the tour entered as a password comes out of make dev.
	for _, pw := range regexp.MustCompile(`"password":\s*"([^"]+)"`).FindAllStringSubmatch(script, -1) {
		if strings.Contains(devOut.String()+devErr.String(), pw[1]) {
			t.Errorf("make dev's output holds the password %q the tour entered", pw[1])
		}
	}
}

func withoutVar(env []string, name string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	return strings.Join(l[max(0, len(l)-lines):], "\n")
}

// checkTools: each command word at the start of a line or after a pipe,
// $( or && is a shell builtin or keyword, a function the script defines,
// or one of Tools, each named under README's Set up.
func checkTools(t *testing.T, script, readme string) {
	t.Helper()
	setup, _, _ := strings.Cut(readme, beginMarker)
	_, setup, _ = strings.Cut(setup, "## Set up")
	for _, tool := range Tools[1:] {
		if !strings.Contains(setup, "`"+tool+"`") {
			t.Errorf("the tour uses %s but Set up does not name it", tool)
		}
	}
	defined := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s*([a-z_]+)\(\)`).FindAllStringSubmatch(script, -1) {
		defined[m[1]] = true
	}
	builtin := map[string]bool{"echo": true, "for": true, "do": true, "done": true, "if": true, "then": true, "fi": true,
		"return": true, "local": true, "in": true, "else": true, "[": true, "set": true, "export": true, "printf": true, "test": true}
	cmd := regexp.MustCompile(`(?:^|\||\$\(|&&|;|\{|then|do)\s*([A-Za-z_\[][A-Za-z0-9_.-]*)`)
	var code []string
	for _, line := range strings.Split(script, "\n") {
		if i := strings.Index(line, "#"); i >= 0 && (i == 0 || line[i-1] == ' ') {
			line = line[:i]
		}
		code = append(code, line)
	}
	// Single-quoted strings (JSON bodies, jq filters) may span lines.
	unquoted := regexp.MustCompile(`(?s)'[^']*'`).ReplaceAllString(strings.Join(code, "\n"), "''")
	for _, line := range strings.Split(unquoted, "\n") {
		for _, m := range cmd.FindAllStringSubmatch(line, -1) {
			w := m[1]
			if strings.Contains(w, "=") || builtin[w] || defined[w] || strings.ToUpper(w) == w {
				continue
			}
			known := false
			for _, tool := range Tools {
				known = known || w == tool
			}
			if !known {
				t.Errorf("the tour runs %q, which is neither in Tools nor defined by the tour: %s", w, strings.TrimSpace(line))
			}
		}
	}
}

// checkEndState: the runs the tour describes, in the states it promises,
// and every event on the bus in the catalogue.
func checkEndState(t *testing.T, api string) {
	t.Helper()
	get := func(path, token string, v any) {
		t.Helper()
		req, _ := http.NewRequest("GET", api+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	resp, err := http.Post(api+"/dev/token", "application/json", strings.NewReader(`{"sub":"tour-check","tid":"contoso","roles":["tenant_admin"]}`))
	if err != nil {
		t.Fatal(err)
	}
	var tok struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()

	var runs struct {
		Items []struct {
			ID, Status, Reason string
			Steps              []struct{ Result *struct{ Attempts int } }
		}
	}
	get("/runs?limit=100", tok.Token, &runs)
	count := map[string]int{}
	resumed := 0
	for _, r := range runs.Items {
		count[r.Status+" "+r.Reason]++
		if r.Status == "succeeded" && len(r.Steps) > 0 && r.Steps[0].Result != nil && r.Steps[0].Result.Attempts > 1 {
			resumed++
		}
	}
	want := map[string]int{"succeeded ": 3, "terminated suspension_timeout": 1}
	if fmt.Sprint(count) != fmt.Sprint(want) {
		t.Errorf("runs by status and reason: %v, want %v", count, want)
	}
	if resumed != 1 {
		t.Errorf("%d succeeded runs took a second attempt at their first step (suspended, resumed), want 1", resumed)
	}

	var evs struct {
		Events []struct {
			EventBusName string `json:"eventBusName"`
			Event        struct {
				Source     string          `json:"source"`
				DetailType string          `json:"detail-type"`
				Detail     json.RawMessage `json:"detail"`
			} `json:"event"`
		} `json:"events"`
	}
	if eventbus.ScheduledSource != events.ScheduleSource || eventbus.ScheduledDetailType != events.ScheduledEvent {
		t.Errorf("the local bus's schedule events (%s %q) are not the catalogue's (%s %q)",
			eventbus.ScheduledSource, eventbus.ScheduledDetailType, events.ScheduleSource, events.ScheduledEvent)
	}
	get("/dev/events", "", &evs)
	seen := map[string]int{}
	for _, r := range evs.Events {
		ev := r.Event
		seen[ev.DetailType]++
		switch {
		case ev.Source == events.ScheduleSource && ev.DetailType == events.ScheduledEvent:
			if r.EventBusName != "default" {
				t.Errorf("a Scheduled Event on bus %q, want the default bus", r.EventBusName)
			}
		case ev.Source == events.Source:
			if r.EventBusName == "default" {
				t.Errorf("a %s event on the default bus, want the stack's", ev.DetailType)
			}
			if err := schemas.Validate(ev.DetailType, ev.Detail); err != nil {
				t.Errorf("an event outside the catalogue or its schema: %v", err)
			}
		default:
			t.Errorf("an event the catalogue does not describe: source %q, detail-type %q", ev.Source, ev.DetailType)
		}
	}
	for dt, n := range map[string]int{events.RunSuspended: 2, events.RunResumed: 1, events.RunTerminated: 1, events.ScheduledEvent: 1} {
		if seen[dt] < n {
			t.Errorf("%d %s events, want at least %d (all: %v)", seen[dt], dt, n, seen)
		}
	}
}
