package resolver_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/resolver"
)

func TestHandlerOperations(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	h := &resolver.Handler{Resolver: f.res, Callback: f.cb}
	call := func(event string) map[string]any {
		t.Helper()
		raw, err := h.Handle(ctx, json.RawMessage(event))
		if err != nil {
			t.Fatalf("%s: %v", event, err)
		}
		var out map[string]any
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}

	// completeAuthorization: what the public callback route invokes.
	f.create(t, connection.Connection{ID: "c1", Type: "oauth2-generic", Name: "crm", Status: connection.StatusPendingAuthorization,
		Settings: map[string]any{"baseUrl": "https://crm.example.test"}}, nil)
	a, err := f.auth.Begin(ctx, f.alice, "c1")
	if err != nil {
		t.Fatal(err)
	}
	back, _ := f.idp.Authorize(ctx, a.URL)
	ev, _ := json.Marshal(map[string]any{"op": resolver.OpCompleteAuthorization, "authorization": map[string]string{
		"state": back.Query().Get("state"), "code": back.Query().Get("code"), "redirectUri": redirectURI}})
	out := call(string(ev))
	conn, _ := out["connection"].(map[string]any)
	if out["ok"] != true || conn["id"] != "c1" || conn["status"] != "active" || conn["user"] != "alice" {
		t.Fatalf("complete: %v", out)
	}
	out = call(string(ev)) // the same state again
	e, _ := out["error"].(map[string]any)
	if out["ok"] != false || e["code"] != "state_invalid" || e["status"] != float64(400) {
		t.Fatalf("replayed callback: %v", out)
	}

	// resolve, with and without op.
	for _, ev := range []string{
		`{"tenant":"t1","connectionId":"c1","runId":"r","stepId":"s","workflowId":"w","site":"/sites/hr","runOwner":"alice"}`,
		`{"op":"resolve","tenant":"t1","connectionId":"c1","site":"/sites/hr"}`,
	} {
		out := call(ev)
		cred, _ := out["credential"].(map[string]any)
		if out["ok"] != true || cred["kind"] != "bearer" {
			t.Fatalf("resolve: %v", out)
		}
	}
	if out := call(`{"tenant":"t1","connectionId":"c1","site":"/sites/it"}`); out["ok"] != false || out["failure"].(map[string]any)["code"] != "not_usable" {
		t.Fatalf("not usable: %v", out)
	}

	// refreshIfDue: the scheduled check.
	out = call(`{"op":"refreshIfDue","tenant":"t1","connectionId":"c1","withinSeconds":600}`)
	if out["ok"] != true || out["refreshed"] != false {
		t.Fatalf("not due: %v", out)
	}
	f.env.Clock.Advance(55 * time.Minute)
	out = call(`{"op":"refreshIfDue","tenant":"t1","connectionId":"c1","withinSeconds":600}`)
	if out["ok"] != true || out["refreshed"] != true || f.idp.Calls("refresh_token") != 1 {
		t.Fatalf("due: %v", out)
	}

	for _, bad := range []string{`[]`, `{"op":"decrypt"}`, `{"op":"completeAuthorization"}`} {
		if _, err := h.Handle(ctx, json.RawMessage(bad)); err == nil || strings.Contains(err.Error(), "t1") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
