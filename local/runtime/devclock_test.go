package runtime_test

import (
	"strings"
	"testing"

	"github.com/connmgr/connmgr/shared/events"
)

// TestClockAnswersWhenSettled: POST /dev/clock answers after what the move
// fired has finished, so the very next read sees its effect, and it says
// what fired; "wait": false answers at once. The demo target plays the
// service whose password changed.
func TestClockAnswersWhenSettled(t *testing.T) {
	rt, logs := start(t)
	w := newRunsWorldOn(t, rt, logs)
	rt.Demo.SetCredentials("svc", "CANARY-run-pw-2", "")
	r := w.admin.do("POST", "/connections", map[string]any{"type": "http-basic", "name": "Demo", "kind": "shared",
		"settings": map[string]any{"baseUrl": rt.DemoURL + "/api"}, "credentials": map[string]any{"username": "svc", "password": "CANARY-run-pw-1"}}, nil)
	w.admin.expect(r, 201, "create a connection to the demo target")
	var conn struct{ ID string }
	decode(t, r, &conn)
	id := w.start(t, conn.ID)
	waitRun(t, w.member, id, status("suspended"))

	noWait := w.admin.do("POST", "/dev/clock", map[string]any{"advance": "1m", "wait": false}, nil)
	w.admin.expect(noWait, 200, "advance without waiting")
	if strings.Contains(string(noWait.body), `"fired"`) {
		t.Errorf(`"wait": false still waited: %s`, noWait.body)
	}

	adv := w.admin.do("POST", "/dev/clock", map[string]any{"advance": "240h1m"}, nil)
	w.admin.expect(adv, 200, "advance ten days")
	var out struct {
		Settled bool
		Fired   []struct {
			EventBusName, Source, DetailType string
			Deliveries                       []string
			Detail                           struct{ RunID, Reason string }
		}
	}
	decode(t, adv, &out)
	if !out.Settled {
		t.Fatalf("not settled: %s", adv.body)
	}
	var scheduled, terminated int
	for _, f := range out.Fired {
		switch {
		case f.Source == events.ScheduleSource && f.DetailType == events.ScheduledEvent:
			scheduled++
			if f.EventBusName != "default" || len(f.Deliveries) != 1 || f.Deliveries[0] != "ExpiryCheckFunction" {
				t.Errorf("the schedule's event: %+v", f)
			}
		case f.DetailType == events.RunTerminated && f.Detail.RunID == id && f.Detail.Reason == "suspension_timeout":
			terminated++
		}
	}
	if scheduled != 1 || terminated != 1 {
		t.Errorf("fired %d scheduled events and %d Run Terminated for the run, want 1 each: %s", scheduled, terminated, adv.body)
	}
	// No polling: the answer came after the run's end was recorded, and
	// the member's token, minted before the move, still works.
	r = w.member.do("GET", "/runs/"+id, nil, nil)
	w.member.expect(r, 200, "get the run right after the move, with the same token")
	var v runView
	decode(t, r, &v)
	if v.Status != "terminated" || v.Reason != "suspension_timeout" {
		t.Errorf("right after POST /dev/clock the run is %s (%s), want terminated (suspension_timeout)", v.Status, v.Reason)
	}
	w.checkNoCanaries(t)
}
