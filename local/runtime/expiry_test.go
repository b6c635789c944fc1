package runtime_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connmgr/connmgr/local/oauthprovider"
	"github.com/connmgr/connmgr/shared/events"
	"github.com/connmgr/connmgr/shared/events/schemas"
	"github.com/connmgr/connmgr/shared/expiry"
)

// waitEvents polls the bus until n events of detailType whose detail
// mentions id are there, and returns them.
func waitEvents(t *testing.T, w *runsWorld, detailType, id string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var got []string
		for _, r := range w.rt.Bus.Events(detailType) {
			if strings.Contains(string(r.Event.Detail), `"`+id+`"`) {
				got = append(got, string(r.Event.Detail))
			}
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d %s events for %s, want %d", len(got), detailType, id, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// advance moves the runtime's clock over HTTP, which fires the expiry
// check's schedule, and logs everyone in again when tokens would expire.
func (w *runsWorld) advance(t *testing.T, d time.Duration) {
	t.Helper()
	w.admin.expect(w.admin.do("POST", "/dev/clock", map[string]any{"advance": d.String()}, nil), 200, "advance the clock")
	if d >= time.Hour {
		seenA, seenM := w.admin.seen, w.member.seen
		w.admin = login(t, w.rt, map[string]any{"sub": "alice", "tid": "contoso", "roles": []string{"tenant_admin"}})
		w.member = login(t, w.rt, map[string]any{"sub": "bob", "tid": "contoso", "sites": []string{"/sites/hr"}})
		w.admin.seen, w.member.seen = append(seenA, w.admin.seen...), append(seenM, w.member.seen...)
	}
}

func (w *runsWorld) startSteps(t *testing.T, steps ...map[string]any) string {
	t.Helper()
	r := w.member.do("POST", "/runs", map[string]any{"workflowId": "wf-expiry", "site": "/sites/hr", "steps": steps}, nil)
	w.member.expect(r, 202, "start run")
	var v struct{ ID string }
	decode(t, r, &v)
	return v.ID
}

// poison writes a connection item of contoso straight into the table, past
// the API and the store (as a bad import would), due at due in the index
// the expiry check reads; its version is not a number, so its entry does
// not decode. It has no list index attributes: only the check meets it.
func (w *runsWorld) poison(t *testing.T, id string, due time.Time) {
	t.Helper()
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	item := map[string]types.AttributeValue{
		"pk": s("T#contoso#C#" + id), "sk": s("CONN"),
		"gsi3pk": s("DUE#" + expiry.BucketOf(due).String()), "gsi3sk": s(expiry.DueKey(due) + "#C#contoso#" + id),
		"tenant": s("contoso"), "id": s(id), "type": s("http-basic"), "name": s("Imported"), "kind": s("shared"),
		"owners": &types.AttributeValueMemberL{Value: []types.AttributeValue{s("alice")}}, "status": s("active"),
		"version": s("one"), "settings": s("{not json"),
		"passwordExpiresAt": &types.AttributeValueMemberN{Value: strconv.FormatInt(due.Add(7*24*time.Hour).Unix(), 10)},
	}
	if _, err := w.rt.Stack.DynamoDBClient().PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(w.rt.Stack.TableName), Item: item}); err != nil {
		t.Fatal(err)
	}
}

func get(conn, path string) map[string]any {
	return map[string]any{"id": "get", "action": "http.request", "connection": conn, "input": map[string]any{"method": "GET", "path": path}}
}

// TestExpiryCheckAndEventCatalogue runs, over HTTP on the local runtime,
// a scenario that emits every detail type of the catalogue, the expiry
// check fired by its schedule as the clock moves on, and validates every
// event on the bus against its JSON Schema:
//
//   - a password entering its expiry window: Connection Expiring, once;
//   - the tenant's OAuth client secret, given a clientSecretExpiresAt,
//     entering the window and passing it: OAuth Client Expiring, then
//     OAuth Client Expired, once each;
//   - a provider that rejects the proactive refresh: Connection Refresh
//     Failed, then Connection Expired; a run on it suspends; reconnecting:
//     Connection Recovered, and the run resumes and succeeds (auto-resume);
//   - a run suspended 9 days: Run Termination Approaching, once; the
//     password expiring meanwhile: Connection Expired; new credentials:
//     Connection Recovered, and that run resumes and succeeds;
//   - a connection item written straight into the table that the check
//     cannot read, due with the password: Connection Check Failed, once,
//     though every later check retries it, and nothing else held up.
func TestExpiryCheckAndEventCatalogue(t *testing.T) {
	w := newRunsWorld(t)
	w.canaries = append(w.canaries, "CANARY-expiry-pw-3")
	t0 := w.rt.Clock.Now()

	// A: a password that enters its 7-day window in 30 minutes.
	pe := t0.Add(7*24*time.Hour + 30*time.Minute).UTC().Format(time.RFC3339)
	r := w.admin.do("POST", "/connections", map[string]any{"type": "http-basic", "name": "Payroll", "kind": "shared",
		"settings":    map[string]any{"baseUrl": w.target.URL + "/api", "passwordExpiresAt": pe},
		"credentials": map[string]any{"username": "svc", "password": "CANARY-run-pw-1"}}, nil)
	w.admin.expect(r, 201, "create A")
	var a struct{ ID string }
	decode(t, r, &a)
	// P: an unreadable connection, due with A.
	const poisoned = "01POISONED0000000000000000"
	w.poison(t, poisoned, t0.Add(30*time.Minute))
	// N: a target that answers 404 to everything.
	notFound := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { rw.WriteHeader(http.StatusNotFound) }))
	defer notFound.Close()
	r = w.admin.do("POST", "/connections", map[string]any{"type": "http-basic", "name": "Gone", "kind": "shared",
		"settings": map[string]any{"baseUrl": notFound.URL}, "credentials": map[string]any{"username": "svc", "password": "CANARY-run-pw-1"}}, nil)
	w.admin.expect(r, 201, "create N")
	var n struct{ ID string }
	decode(t, r, &n)
	// O: an OAuth connection to the local provider's protected resource.
	r = w.admin.do("POST", "/connections", map[string]any{"type": "oauth2-generic", "name": "CRM", "kind": "shared",
		"settings": map[string]any{"baseUrl": w.rt.OAuth.Base()}, "credentials": map[string]any{}}, nil)
	w.admin.expect(r, 201, "create O")
	var o struct{ ID, AuthorizeURL string }
	decode(t, r, &o)
	if code, page, _ := browse(t, o.AuthorizeURL); code != 200 {
		t.Fatalf("authorize O: %d %s", code, page)
	}
	resource := strings.TrimPrefix(w.rt.OAuth.ResourceURL(), w.rt.OAuth.Base())
	// The administrator records when the OAuth client's secret expires:
	// it enters its window in 30 minutes too.
	cr := w.admin.do("GET", "/oauth-clients/oauth2-generic", nil, nil)
	w.admin.expect(cr, 200, "get the OAuth client")
	var reg map[string]any
	decode(t, cr, &reg)
	for _, k := range []string{"type", "clientSecretSet", "version", "updatedAt", "updatedBy"} {
		delete(reg, k)
	}
	reg["clientSecretExpiresAt"] = pe
	w.admin.expect(w.admin.do("PUT", "/oauth-clients/oauth2-generic", reg, map[string]string{"If-Match": cr.header.Get("ETag")}), 200, "date the client secret")

	// Run Succeeded and Run Failed.
	waitRun(t, w.member, w.startSteps(t, get(a.ID, "/items")), status("succeeded"))
	if v := waitRun(t, w.member, w.startSteps(t, get(n.ID, "/items")), status("failed")); v.Reason != "http_404" {
		t.Errorf("failed run: %+v", v)
	}

	// An hour on, the schedule fires the check: A enters its window; O's
	// refresh is rejected by the provider.
	w.rt.OAuth.Fail(oauthprovider.Failure{Grant: "refresh_token", Status: http.StatusBadRequest, Code: "invalid_grant", Description: "revoked"})
	w.advance(t, time.Hour+time.Minute)
	waitEvents(t, w, events.ConnectionExpiring, a.ID, 1)
	waitEvents(t, w, events.ConnectionCheckFailed, poisoned, 1)
	waitEvents(t, w, events.OAuthClientExpiring, "oauth2-generic", 1)
	waitEvents(t, w, events.ConnectionRefreshFailed, o.ID, 1)
	waitEvents(t, w, events.ConnectionExpired, o.ID, 1)
	var got struct{ Status, StatusReason string }
	decode(t, w.admin.do("GET", "/connections/"+o.ID, nil, nil), &got)
	if got.Status != "expired" {
		t.Fatalf("O after the rejected refresh: %+v", got)
	}
	// A run on O suspends; reconnecting O recovers it and resumes the run.
	ro := w.startSteps(t, get(o.ID, resource))
	if v := waitRun(t, w.member, ro, status("suspended")); v.Suspension == nil || v.Suspension.Connection != o.ID || v.Suspension.Reason != "credentials_expired" {
		t.Fatalf("run on O: %+v", v)
	}
	ar := w.admin.do("POST", "/connections/"+o.ID+"/authorize", nil, nil)
	w.admin.expect(ar, 200, "reconnect O")
	var again struct{ AuthorizeURL string }
	decode(t, ar, &again)
	if code, page, _ := browse(t, again.AuthorizeURL); code != 200 {
		t.Fatalf("reconnect O: %d %s", code, page)
	}
	waitEvents(t, w, events.ConnectionRecovered, o.ID, 1)
	waitRun(t, w.member, ro, status("succeeded"))

	// The target's password changes: runs on A suspend. One is terminated
	// by its owner; the other waits.
	w.target.setPassword("CANARY-expiry-pw-3")
	rt1, rt2 := w.startSteps(t, get(a.ID, "/items")), w.startSteps(t, get(a.ID, "/items"))
	waitRun(t, w.member, rt1, status("suspended"))
	waitRun(t, w.member, rt2, status("suspended"))
	w.member.expect(w.member.do("POST", "/runs/"+rt1+"/terminate", nil, nil), 202, "terminate")
	waitRun(t, w.member, rt1, status("terminated"))

	// Nine days and an hour on: the waiting run terminates within 24 h
	// (warned once), and A's password has expired.
	w.advance(t, 9*24*time.Hour+time.Hour)
	waitEvents(t, w, events.RunTerminationApproaching, rt2, 1)
	waitEvents(t, w, events.ConnectionExpired, a.ID, 1)
	waitEvents(t, w, events.OAuthClientExpired, "oauth2-generic", 1)
	w.advance(t, time.Hour) // another check finds nothing new
	time.Sleep(200 * time.Millisecond)

	// New credentials fix A: recovered, and the waiting run resumes.
	w.admin.expect(w.admin.do("PATCH", "/connections/"+a.ID, map[string]any{"credentials": map[string]any{"username": "svc", "password": "CANARY-expiry-pw-3"}}, nil), 200, "fix A")
	waitEvents(t, w, events.ConnectionRecovered, a.ID, 1)
	waitRun(t, w.member, rt2, status("succeeded"))
	w.admin.expect(w.admin.do("DELETE", "/connections/"+n.ID, nil, nil), 204, "delete N")
	waitEvents(t, w, events.ConnectionDeleted, n.ID, 1)

	// Exactly once: each transition the check or the resolver made. The bus
	// delivers at least once (a drain may publish an event its writer is
	// publishing too; consumers deduplicate on eventId), so count ids.
	for _, c := range []struct{ detailType, id string }{
		{events.ConnectionExpiring, a.ID}, {events.ConnectionExpired, a.ID}, {events.ConnectionRefreshFailed, o.ID},
		{events.ConnectionExpired, o.ID}, {events.RunTerminationApproaching, rt2},
		{events.OAuthClientExpiring, "oauth2-generic"}, {events.OAuthClientExpired, "oauth2-generic"},
		{events.ConnectionCheckFailed, poisoned},
	} {
		got := waitEvents(t, w, c.detailType, c.id, 1)
		ids := map[string]bool{}
		for _, d := range got {
			var e struct{ EventID string }
			if err := json.Unmarshal([]byte(d), &e); err != nil {
				t.Fatal(err)
			}
			ids[e.EventID] = true
		}
		if len(ids) != 1 {
			t.Errorf("%d distinct %s events for %s (%d deliveries), want 1", len(ids), c.detailType, c.id, len(got))
		} else if len(got) > 1 {
			t.Logf("%s for %s: 1 event delivered %d times", c.detailType, c.id, len(got))
		}
	}
	// Every event on the bus is in the catalogue and matches its schema;
	// every detail type was emitted.
	seen := map[string]int{}
	for _, rec := range w.rt.Bus.Events("") {
		ev := rec.Event
		if ev.Source != events.Source {
			if ev.Source != events.ScheduleSource || ev.DetailType != events.ScheduledEvent {
				t.Errorf("an event neither in the catalogue nor the schedule's own: %s %q", ev.Source, ev.DetailType)
			}
			continue // the schedule's own events
		}
		seen[ev.DetailType]++
		if err := schemas.Validate(ev.DetailType, ev.Detail); err != nil {
			t.Errorf("%v\n%s", err, ev.Detail)
		}
	}
	var summary []string
	for _, dt := range events.Catalogue {
		if seen[dt] == 0 {
			t.Errorf("no %s event in the scenario", dt)
		}
		summary = append(summary, fmt.Sprintf("%s %d", dt, seen[dt]))
	}
	t.Logf("events validated: %s", strings.Join(summary, ", "))
	w.checkNoCanaries(t)
	checkCallsGranted(t, w.rt)
}
