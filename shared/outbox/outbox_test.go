package outbox_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connmgr/connmgr/local/stacktest"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/events"
	"github.com/connmgr/connmgr/shared/outbox"
	"github.com/connmgr/connmgr/shared/store"
)

// recorder is a bus that accepts everything and remembers the order.
type recorder struct {
	mu  sync.Mutex
	ids []string
}

func (r *recorder) Publish(_ context.Context, evs []events.Event) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range evs {
		r.ids = append(r.ids, e.ID())
	}
	return nil, nil
}

// outboxEntries counts the outbox entries of one gsi1 partition.
func outboxEntries(t *testing.T, env *stacktest.Env, partition string) int {
	t.Helper()
	expr, err := expression.NewBuilder().WithKeyCondition(expression.Key("gsi1pk").Equal(expression.Value(partition))).Build()
	if err != nil {
		t.Fatal(err)
	}
	out, err := env.DynamoDB.Query(context.Background(), &dynamodb.QueryInput{TableName: aws.String(env.Stack.TableName), IndexName: aws.String(store.IndexAudience),
		KeyConditionExpression: expr.KeyCondition(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values()})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Items)
}

// TestDrainOverShards: the outbox entries of 100 changes spread over the
// gsi1 shards; the drain, 30 at a time, publishes every event exactly once
// and in id order, an entry left in the pre-shard partition included.
func TestDrainOverShards(t *testing.T) {
	env := stacktest.Start(t)
	ctx := context.Background()
	now := env.Clock.Now()
	var want []string
	for i := range 100 {
		r := &store.Record{Conn: connection.Connection{
			Tenant: "t1", ID: fmt.Sprintf("c%03d", i), Type: "http-basic", Name: "conn", Kind: connection.Shared,
			Availability: connection.Availability{Scope: connection.ScopeTenant}, Owners: []string{"alice"}, CreatedBy: "alice",
			CreatedAt: now, UpdatedAt: now, Version: 1, Status: connection.StatusActive, Settings: map[string]any{}, SecretVersion: 1,
		}}
		ev := events.ForConnection(events.ConnectionCreated, &r.Conn, fmt.Sprintf("01EV%06d", i+1), "alice", "", nil, now)
		if err := env.Store.Create(ctx, r, connection.AuditEntry{ID: fmt.Sprintf("01AU%06d", i), At: now, Actor: "alice", Action: connection.ActionCreated, Version: 1}, nil, ev); err != nil {
			t.Fatal(err)
		}
		want = append(want, ev.ID())
	}
	// An entry written before the shards, to the one OUTBOX partition.
	legacy := events.ForConnection(events.ConnectionUpdated, &connection.Connection{Tenant: "t1", ID: "c000", Type: "http-basic", Name: "conn",
		Kind: connection.Shared, Owners: []string{"alice"}, Status: connection.StatusActive, Version: 2}, "01EV000000", "alice", "", []string{"name"}, now)
	detail, err := legacy.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	if _, err := env.DynamoDB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(env.Stack.TableName), Item: map[string]types.AttributeValue{
		"pk": s("EVT#" + legacy.ID()), "sk": s("OUTBOX"), "gsi1pk": s("OUTBOX"), "gsi1sk": s(legacy.ID()),
		"detailType": s(legacy.DetailType), "detail": s(detail)}}); err != nil {
		t.Fatal(err)
	}
	want = append([]string{legacy.ID()}, want...)

	used, total := 0, 0
	for n := range store.OutboxShards {
		if c := outboxEntries(t, env, fmt.Sprintf("OUTBOX#%d", n)); c > 0 {
			used++
			total += c
		}
	}
	t.Logf("100 entries over %d of %d shards", used, store.OutboxShards)
	if total != 100 || used < 2 {
		t.Fatalf("%d entries in %d shards, want 100 spread over more than one", total, used)
	}

	bus := &recorder{}
	relay := outbox.New(env.Store, bus, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	for drains := 0; ; drains++ {
		n, err := relay.Drain(ctx, 30)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if n > 30 || drains > 10 {
			t.Fatalf("drain %d published %d", drains, n)
		}
	}
	if !slices.Equal(bus.ids, want) {
		t.Fatalf("published %d events %v\nwant %d in id order, each once", len(bus.ids), bus.ids, len(want))
	}
	if pending, err := env.Store.Pending(ctx, 200); err != nil || len(pending) != 0 {
		t.Fatalf("left in the outbox: %d %v", len(pending), err)
	}
}
