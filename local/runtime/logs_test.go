package runtime_test

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"

	"github.com/connmgr/connmgr/local/logbuf"
)

// stepFunctions are the functions the state machine invokes: their lines
// also name the execution they work for.
var stepFunctions = map[string]bool{"run-step": true, "suspend-run": true, "finish-run": true}

// checkLogLines holds every line a function logged (the runtime's own
// components excepted) to carrying the request id Lambda gave its
// invocation, and the state machine's tasks to naming their execution.
func checkLogLines(t *testing.T, logs *logbuf.Buffer) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	fns := map[string]int{}
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue // the emulators' own non-JSON output
		}
		fn, _ := line["function"].(string)
		if fn == "" || line["component"] != nil {
			continue
		}
		fns[fn]++
		if id, _ := line["requestId"].(string); id == "" {
			t.Errorf("a %s line without a request id: %s", fn, sc.Text())
		}
		if exec, _ := line["execution"].(string); stepFunctions[fn] && exec == "" {
			t.Errorf("a %s line without its execution: %s", fn, sc.Text())
		}
	}
	if len(fns) == 0 {
		t.Error("no function logged anything")
	}
	t.Logf("log lines by function, each with its request id: %v", fns)
}
