package manager_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"

	"github.com/connmgr/connmgr/local/apitest"
	"github.com/connmgr/connmgr/shared/app"
	"github.com/connmgr/connmgr/shared/events"
	"github.com/connmgr/connmgr/shared/events/schemas"
	"github.com/connmgr/connmgr/shared/expirycheck"
	"github.com/connmgr/connmgr/shared/outbox"
	"github.com/connmgr/connmgr/shared/resolver"
	"github.com/connmgr/connmgr/shared/store"
)

type noRefresher struct{}

func (noRefresher) RefreshIfDue(context.Context, string, string, resolver.RefreshOptions) (resolver.Refreshed, error) {
	return resolver.Refreshed{}, nil
}

// TestPasswordExpiryFixes: the connections service and the expiry check
// apply one rule, so a fix made through the API is never undone by the
// check: a later passwordExpiresAt ends an expiring state (Connection
// Recovered); new credentials end an expired one and take the old
// password's expiry with them.
func TestPasswordExpiryFixes(t *testing.T) {
	env := apitest.Start(t, app.FnConnections)
	st := store.New(env.Stack.DynamoDBClient(), env.Stack.TableName, env.Clock.Now)
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	var ids atomic.Int64
	relay := outbox.New(st, events.NewPublisher(eventbridge.NewFromConfig(env.Stack.AWS, func(o *eventbridge.Options) { o.BaseEndpoint = aws.String(env.EventsURL) }), "EventBus"), log)
	check, err := expirycheck.New(expirycheck.Config{Store: st, Refresher: noRefresher{}, Events: relay, Now: env.Clock.Now, NewID: func() string { return fmt.Sprintf("01ZZ%012d", ids.Add(1)) }, Log: log, FirstLookback: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	runCheck := func() expirycheck.Report {
		t.Helper()
		r, err := check.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	body := basicBody("expiring")
	body["settings"] = map[string]any{"baseUrl": "https://api.example.com", "passwordExpiresAt": env.Clock.Now().Add(3 * 24 * time.Hour).UTC().Format(time.RFC3339)}
	id := create(t, env, admin, body)
	status := func() (string, map[string]any) {
		t.Helper()
		var v struct {
			Status   string
			Settings map[string]any
		}
		env.Do(apitest.Request{Method: "GET", Path: "/connections/" + id, Caller: admin}).Decode(t, &v)
		return v.Status, v.Settings
	}
	patch := func(b map[string]any) {
		t.Helper()
		if r := env.Do(apitest.Request{Method: "PATCH", Path: "/connections/" + id, Caller: admin, Body: b}); r.Status != 200 {
			t.Fatalf("PATCH %v: %d %s", b, r.Status, r.Body)
		}
	}

	// In the window from the start: the check makes it expiring.
	if r := runCheck(); r.Expiring != 1 {
		t.Fatalf("first check: %s", r)
	}
	if s, _ := status(); s != "expiring" {
		t.Fatalf("status %s", s)
	}
	// The owner renews the password's expiry: active at once, recovered.
	patch(map[string]any{"settings": map[string]any{"passwordExpiresAt": env.Clock.Now().Add(60 * 24 * time.Hour).UTC().Format(time.RFC3339)}})
	if s, _ := status(); s != "active" {
		t.Fatalf("after extending the expiry: %s", s)
	}
	rec := detailsOf(t, env, events.ConnectionRecovered)
	if len(rec) != 1 || rec[0].Reason != "settings_updated" || rec[0].Status != "active" {
		t.Fatalf("Connection Recovered: %+v", rec)
	}
	if r := runCheck(); r.Checked != 0 {
		t.Fatalf("the check after the fix: %s", r)
	}
	// Sixty days on, the check finds it expired (a late check goes
	// straight to expired).
	env.Clock.Advance(61 * 24 * time.Hour)
	if r := runCheck(); r.Expired != 1 {
		t.Fatalf("after the expiry: %s", r)
	}
	// New credentials fix it; the expiry that belonged to the old password
	// goes with it, so the check leaves it active.
	patch(map[string]any{"credentials": map[string]any{"username": "svc", "password": "renewed"}})
	s, settings := status()
	if _, kept := settings["passwordExpiresAt"]; s != "active" || kept {
		t.Fatalf("after new credentials: %s %v", s, settings)
	}
	rec = detailsOf(t, env, events.ConnectionRecovered)
	if len(rec) != 2 || rec[1].Reason != "credentials_updated" || !slices.Contains(rec[1].Changes, "settings.passwordExpiresAt") {
		t.Fatalf("Connection Recovered: %+v", rec)
	}
	env.Clock.Advance(2 * time.Hour)
	if r := runCheck(); r.Checked != 0 {
		t.Fatalf("the check after new credentials: %s", r)
	}
	if s, _ := status(); s != "active" {
		t.Fatalf("the check undid the fix: %s", s)
	}
	// New credentials with their own (near) expiry keep it: expiring is
	// then the truth, and the check says so.
	patch(map[string]any{"credentials": map[string]any{"username": "svc", "password": "short-lived"},
		"settings": map[string]any{"passwordExpiresAt": env.Clock.Now().Add(2 * 24 * time.Hour).UTC().Format(time.RFC3339)}})
	if s, settings := status(); s != "active" || settings["passwordExpiresAt"] == nil {
		t.Fatalf("new credentials with a near expiry: %s %v", s, settings)
	}
	if r := runCheck(); r.Expiring != 1 {
		t.Fatalf("the check after a near expiry: %s", r)
	}
	for _, r := range env.Bus.Events("") {
		if err := schemas.Validate(r.Event.DetailType, r.Event.Detail); err != nil {
			t.Error(err)
		}
	}
}
