package manager_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"

	"github.com/connmgr/connmgr/local/apitest"
	"github.com/connmgr/connmgr/shared/app"
	"github.com/connmgr/connmgr/shared/app/functions"
	"github.com/connmgr/connmgr/shared/events"
	"github.com/connmgr/connmgr/shared/outbox"
	"github.com/connmgr/connmgr/shared/store"
)

func detailsOf(t *testing.T, env *apitest.Env, detailType string) []events.ConnectionDetail {
	t.Helper()
	var out []events.ConnectionDetail
	for _, r := range env.Bus.Events(detailType) {
		var d events.ConnectionDetail
		if err := json.Unmarshal(r.Event.Detail, &d); err != nil {
			t.Fatal(err)
		}
		if r.Event.Source != events.Source {
			t.Errorf("source %q", r.Event.Source)
		}
		out = append(out, d)
	}
	return out
}

// TestChangeEvents: each committed change puts its event on the bus once,
// with ids, owners and the names of the fields changed, never a value.
func TestChangeEvents(t *testing.T) {
	env := apitest.Start(t, app.FnConnections)
	const canary = "CANARY-event-pw-5150"
	id := create(t, env, admin, basicBody("ev"))
	steps := []apitest.Request{
		{Method: "PATCH", Path: "/connections/" + id, Body: map[string]any{"credentials": map[string]any{"username": "u", "password": canary}}},
		{Method: "PUT", Path: "/connections/" + id + "/owners", Body: map[string]any{"owners": []string{"alice", "bob"}}},
		{Method: "DELETE", Path: "/connections/" + id},
	}
	for _, s := range steps {
		s.Caller = admin
		if r := env.Do(s); r.Status >= 300 {
			t.Fatalf("%s %s: %d %s", s.Method, s.Path, r.Status, r.Body)
		}
	}
	created, updated, deleted := detailsOf(t, env, events.ConnectionCreated), detailsOf(t, env, events.ConnectionUpdated), detailsOf(t, env, events.ConnectionDeleted)
	if len(created) != 1 || len(updated) != 2 || len(deleted) != 1 {
		t.Fatalf("events: %d created, %d updated, %d deleted; want 1, 2, 1", len(created), len(updated), len(deleted))
	}
	if c := created[0]; c.ConnectionID != id || c.Tenant != "t1" || c.Owners[0] != "alice" || c.SchemaVersion != 1 || c.EventID == "" || c.Actor != "alice" {
		t.Errorf("created: %+v", c)
	}
	if u := updated[0]; strings.Join(u.Changes, ",") != "credentials.password,credentials.username" || u.Version != 2 {
		t.Errorf("credential change: %+v", u)
	}
	if u := updated[1]; strings.Join(u.Changes, ",") != "owners" || strings.Join(u.Owners, ",") != "alice,bob" {
		t.Errorf("owners change: %+v", u)
	}
	for _, r := range env.Bus.Events("") {
		if strings.Contains(string(r.Event.Detail), canary) {
			t.Errorf("an event holds the password: %s", r.Event.Detail)
		}
	}
	st := store.New(env.Stack.DynamoDBClient(), env.Stack.TableName, env.Clock.Now)
	if pending, err := st.Pending(context.Background(), 100); err != nil || len(pending) != 0 {
		t.Errorf("outbox after publishing: %d events, %v", len(pending), err)
	}
}

// TestEventsSurviveAFailedPublish: a change whose PutEvents fails still
// commits; its event waits in the outbox and the drain publishes it once.
func TestEventsSurviveAFailedPublish(t *testing.T) {
	env := apitest.Start(t, app.FnConnections)
	a, err := app.New(context.Background(), env.Config(), app.Options{AWS: &env.Stack.AWS, Now: env.Clock.Now, LogOutput: env.Logs,
		ClientOptions: []any{func(o *eventbridge.Options) {
			o.BaseEndpoint = aws.String("http://127.0.0.1:1")
			o.RetryMaxAttempts = 1
		}}})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := functions.Router(a, app.FnConnections)
	if err != nil {
		t.Fatal(err)
	}
	r := apitest.Do(t, rt, apitest.Request{Method: "POST", Path: "/connections", Caller: admin, Body: basicBody("offline")})
	if r.Status != 201 {
		t.Fatalf("create while the bus is down: %d %s", r.Status, r.Body)
	}
	if n := len(env.Bus.Events("")); n != 0 {
		t.Fatalf("%d events reached the bus", n)
	}
	st := store.New(env.Stack.DynamoDBClient(), env.Stack.TableName, env.Clock.Now)
	pending, err := st.Pending(context.Background(), 100)
	if err != nil || len(pending) != 1 || pending[0].DetailType != events.ConnectionCreated {
		t.Fatalf("outbox: %+v %v", pending, err)
	}
	relay := outbox.New(st, events.NewPublisher(eventbridge.NewFromConfig(env.Stack.AWS, func(o *eventbridge.Options) { o.BaseEndpoint = aws.String(env.EventsURL) }), "EventBus"),
		slog.New(slog.NewJSONHandler(io.Discard, nil)))
	for range 2 { // a second drain finds nothing
		if _, err := relay.Drain(context.Background(), 10); err != nil {
			t.Fatal(err)
		}
	}
	if got := detailsOf(t, env, events.ConnectionCreated); len(got) != 1 || got[0].EventID != pending[0].ID() {
		t.Fatalf("after draining: %+v", got)
	}
}
