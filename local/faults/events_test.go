package faults_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"

	"github.com/connmgr/connmgr/local/eventbus"
	"github.com/connmgr/connmgr/local/faults"
	"github.com/connmgr/connmgr/local/lambdaserver"
	"github.com/connmgr/connmgr/local/stacktest"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/events"
	"github.com/connmgr/connmgr/shared/outbox"
)

// TestPutEventsPartialFailure: EventBridge fails some entries inside
// successful PutEvents calls, one of them on every attempt the publisher
// makes. The drain still publishes every committed event exactly once:
// what failed stays in the outbox for the next drain, what succeeded is
// never sent again.
func TestPutEventsPartialFailure(t *testing.T) {
	env := stacktest.Start(t)
	ctx := context.Background()
	bus, err := eventbus.New(eventbus.Options{Invoker: lambdaserver.NewRegistry(lambdaserver.Options{Clock: env.Clock}), Clock: env.Clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	srv, err := eventbus.Start("", bus)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ft := &faults.Transport{}
	eb := eventbridge.NewFromConfig(env.Stack.AWS, func(o *eventbridge.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.HTTPClient = ft.Client()
		o.Retryer = retry.NewStandard(fastRetries)
	})
	relay := outbox.New(env.Store, events.NewPublisher(eb, "EventBus"), slog.New(slog.NewTextHandler(io.Discard, nil)))

	const n = 25
	want := map[string]bool{}
	for i := range n {
		r := record(env, fmt.Sprintf("c%02d", i), 1)
		ev := events.ForConnection(events.ConnectionCreated, &r.Conn, fmt.Sprintf("01EV%04d", i), "alice", "", nil, env.Clock.Now())
		if err := env.Store.Create(ctx, r, connection.AuditEntry{ID: fmt.Sprintf("01AU%04d", i), At: env.Clock.Now(), Actor: "alice",
			Action: connection.ActionCreated, Version: 1}, nil, ev); err != nil {
			t.Fatal(err)
		}
		want[ev.ID()] = true
	}
	// The first batch's first entry fails on each of the publisher's three
	// attempts: that drain stops there, the rest left in the outbox. The
	// next drain's first call loses its first and fourth entries once.
	ft.On("PutEvents", 3, faults.Fault{FailEntries: []int{0}})
	ft.On("PutEvents", 1, faults.Fault{FailEntries: []int{0, 3}})
	published, err := relay.Drain(ctx, 100)
	if err == nil || published != 9 {
		t.Errorf("first drain: %d published, %v; want the 9 others of its batch and a failure", published, err)
	}
	total := published
	for range 3 {
		if published, err = relay.Drain(ctx, 100); err != nil {
			t.Errorf("drain: %v", err)
		}
		total += published
	}
	if total != n {
		t.Errorf("the drains published %d in all, want %d", total, n)
	}
	if ft.Hits("PutEvents") != 4 {
		t.Errorf("%d PutEvents calls met a fault, want 4", ft.Hits("PutEvents"))
	}
	if left, err := env.Store.Pending(ctx, 100); err != nil || len(left) != 0 {
		t.Errorf("outbox after the drains: %d left, %v", len(left), err)
	}
	seen := map[string]int{}
	for _, rec := range bus.Events("") {
		var d struct{ EventID string }
		if err := json.Unmarshal(rec.Event.Detail, &d); err != nil {
			t.Fatal(err)
		}
		seen[d.EventID]++
	}
	for id := range want {
		if seen[id] != 1 {
			t.Errorf("event %s published %d times", id, seen[id])
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct events on the bus, want %d", len(seen), n)
	}
}
