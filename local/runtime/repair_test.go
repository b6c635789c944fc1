package runtime_test

import (
	"strings"
	"testing"
	"time"
)

// TestUsageSafeDeleteAndRebind is issue 10's journey: a suspended run shows
// in the connection's usage; deleting the connection is refused naming the
// run, forced it leaves the run suspended as connection_deleted; rebinding
// the run to another connection resumes it and it succeeds.
func TestUsageSafeDeleteAndRebind(t *testing.T) {
	w := newRunsWorld(t)
	good := w.connection(t, "CANARY-run-pw-1")
	wrong := w.connection(t, "CANARY-run-pw-2") // the target rejects this password
	id := w.start(t, wrong)
	waitRun(t, w.member, id, status("suspended"))

	// Usage: the workflow and the suspended run, for whoever may see them.
	r := w.admin.do("GET", "/connections/"+wrong+"/usage", nil, nil)
	w.admin.expect(r, 200, "usage")
	var usage struct {
		Items []struct {
			Kind, WorkflowID, RunID, Status, Reason string
		}
		Hidden int
	}
	decode(t, r, &usage)
	kinds := map[string]string{}
	for _, it := range usage.Items {
		kinds[it.Kind] = it.RunID + "/" + it.Status + "/" + it.WorkflowID
	}
	if kinds["workflow"] != id+"/suspended/wf-payroll" || kinds["run"] != id+"/suspended/wf-payroll" || usage.Hidden != 0 {
		t.Fatalf("usage: %s", r.body)
	}
	// Someone who may see the connection but not the run sees only a count.
	other := login(t, w.rt, map[string]any{"sub": "carol", "tid": "contoso", "sites": []string{"/sites/it"}})
	r = other.do("GET", "/connections/"+wrong+"/usage", nil, nil)
	other.expect(r, 200, "usage by another member")
	decode(t, r, &usage)
	if len(usage.Items) != 0 || usage.Hidden != 2 || strings.Contains(string(r.body), id) {
		t.Errorf("usage for someone who may not see the run: %s", r.body)
	}

	// Delete: refused while the run waits, naming it.
	r = w.admin.do("DELETE", "/connections/"+wrong, nil, nil)
	w.admin.expect(r, 409, "delete a connection in use")
	if !strings.Contains(string(r.body), `"code":"connection_in_use"`) || !strings.Contains(string(r.body), id) {
		t.Errorf("refused delete: %s", r.body)
	}
	w.admin.expect(w.admin.do("DELETE", "/connections/"+wrong+"?force=yes", nil, nil), 400, "bad force")
	w.admin.expect(w.admin.do("DELETE", "/connections/"+wrong+"?force=true", nil, nil), 204, "forced delete")
	v := waitRun(t, w.member, id, status("suspended"))
	if v.Suspension == nil || v.Suspension.Reason != "connection_deleted" {
		t.Fatalf("after a forced delete: %+v", v.Suspension)
	}
	var told int
	for _, ev := range w.rt.Bus.Events("Run Suspended") {
		if strings.Contains(string(ev.Event.Detail), id) && strings.Contains(string(ev.Event.Detail), `"reason":"connection_deleted"`) {
			told++
		}
	}
	if told != 1 {
		t.Errorf("%d Run Suspended events with connection_deleted, want 1", told)
	}

	// Rebind: a dry run of replace lists it; the rebind resumes it.
	r = w.member.do("POST", "/connections/"+wrong+"/replace", map[string]any{"with": good, "dryRun": true}, nil)
	w.member.expect(r, 200, "replace, dry run")
	if !strings.Contains(string(r.body), `"rebound":[{"runId":"`+id) {
		t.Errorf("dry run: %s", r.body)
	}
	waitRun(t, w.member, id, status("suspended")) // a dry run changes nothing
	etag := w.member.do("GET", "/runs/"+id, nil, nil).header.Get("ETag")
	w.member.expect(w.member.do("POST", "/runs/"+id+"/rebind", map[string]any{"from": wrong, "to": "nope"}, map[string]string{"If-Match": etag}), 422, "rebind to a missing connection")
	w.member.expect(w.member.do("POST", "/runs/"+id+"/rebind", map[string]any{"from": good, "to": wrong}, map[string]string{"If-Match": etag}), 422, "rebind to the deleted one")
	r = w.member.do("POST", "/runs/"+id+"/rebind", map[string]any{"from": wrong, "to": good}, map[string]string{"If-Match": etag})
	w.member.expect(r, 202, "rebind")
	v = waitRun(t, w.member, id, status("succeeded"))
	if !strings.Contains(string(w.member.do("GET", "/runs/"+id, nil, nil).body), `"action":"rebind"`) {
		t.Error("the run does not record the rebind")
	}
	// The good connection's usage now has the finished run's workflow.
	r = w.admin.do("GET", "/connections/"+good+"/usage", nil, nil)
	if !strings.Contains(string(r.body), `"status":"succeeded"`) || strings.Contains(string(r.body), `"kind":"run"`) {
		t.Errorf("usage after the run finished: %s", r.body)
	}
	w.checkNoCanaries(t)
	checkCallsGranted(t, w.rt)
}

// TestWideningAvailabilityResumesNotUsableRunsOnce: a run suspended because
// its connection's availability no longer covers its site resumes, once,
// when the availability covers it again; a run suspended for another
// reason is not resumed by an availability change.
func TestWideningAvailabilityResumesNotUsableRunsOnce(t *testing.T) {
	w := newRunsWorld(t)
	conn := w.connection(t, "CANARY-run-pw-1")
	w.target.setPassword("CANARY-run-pw-2") // rejects: the run suspends on 401
	id := w.start(t, conn)
	waitRun(t, w.member, id, status("suspended"))

	// Narrowing away from the run's site does not resume a 401 suspension.
	w.admin.expect(w.admin.do("PUT", "/connections/"+conn+"/availability", map[string]any{"scope": "site", "site": "/sites/it"}, nil), 200, "narrow")
	time.Sleep(100 * time.Millisecond)
	if n := w.resumedEvents(id); n != 0 {
		t.Fatalf("an availability change resumed a run suspended on 401 (%d)", n)
	}
	// A manual resume now finds the connection not usable at /sites/hr.
	w.member.expect(w.member.do("POST", "/runs/"+id+"/resume", nil, nil), 202, "manual resume")
	v := waitRun(t, w.member, id, func(v runView) bool {
		return v.Status == "suspended" && v.Suspension != nil && v.Suspension.Reason == "not_usable"
	})
	_ = v
	// The target accepts again, and availability covers the site again:
	// the run resumes by itself, once, and succeeds.
	w.target.setPassword("CANARY-run-pw-1")
	w.admin.expect(w.admin.do("PUT", "/connections/"+conn+"/availability", map[string]any{"scope": "tenant"}, nil), 200, "widen")
	waitRun(t, w.member, id, status("succeeded"))
	if n := w.resumedEvents(id); n != 2 { // the manual one and the automatic one
		t.Errorf("%d Run Resumed events, want 2", n)
	}
	checkCallsGranted(t, w.rt)
}
