package faults_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/connmgr/connmgr/local/faults"
	"github.com/connmgr/connmgr/local/stacktest"
	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/events"
	"github.com/connmgr/connmgr/shared/store"
)

// fastRetries keeps the SDK's standard retryer, its attempts and what it
// retries, without its waits: the tests count outcomes, not seconds.
func fastRetries(o *retry.StandardOptions) {
	o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
	o.RateLimiter = noLimit{}
}

type noLimit struct{}

func (noLimit) GetToken(context.Context, uint) (func() error, error) {
	return func() error { return nil }, nil
}
func (noLimit) AddTokens(uint) error { return nil }

// faultyStore is a store over the stack's table whose DynamoDB client
// goes through ft.
func faultyStore(env *stacktest.Env, ft *faults.Transport) *store.Store {
	ddb := env.Stack.DynamoDBClient(func(o *dynamodb.Options) {
		o.HTTPClient = ft.Client()
		o.Retryer = retry.NewStandard(fastRetries)
	})
	return store.New(ddb, env.Stack.TableName, env.Clock.Now)
}

func record(env *stacktest.Env, id string, version int64) *store.Record {
	now := env.Clock.Now()
	return &store.Record{Conn: connection.Connection{
		Tenant: "t1", ID: id, Type: "http-basic", Name: "conn " + id, Kind: connection.Shared,
		Availability: connection.Availability{Scope: connection.ScopeTenant}, Owners: []string{"alice"}, CreatedBy: "alice",
		CreatedAt: now, UpdatedAt: now, Version: version, Status: connection.StatusActive, Settings: map[string]any{}, SecretVersion: 1,
	}}
}

// TestDynamoDBFaultsLeaveNoHalfChange: a connection's create or update
// meets DynamoDB throttling, a cancelled transaction, a lost answer or no
// answer at all. Whatever the outcome, the table holds the change and its
// one event together or neither (the outbox), and a failure is a
// retryable 503 or 409, never a 500.
func TestDynamoDBFaultsLeaveNoHalfChange(t *testing.T) {
	throttled := faults.Fault{Status: 400, Code: "ThrottlingException"}
	tests := []struct {
		name  string
		times int // 0: every attempt
		fault faults.Fault
		// status is the failure's HTTP status (0: the write succeeds).
		status int
	}{
		{"throttled on every attempt", 0, throttled, 503},
		{"throttled once, then served", 1, throttled, 0},
		{"partition throughput exceeded", 0, faults.Fault{Status: 400, Code: "ProvisionedThroughputExceededException"}, 503},
		{"cancelled: an item throttled", 0, faults.Fault{Status: 400, Code: "TransactionCanceledException", Reasons: []string{"None", "ThrottlingError", "None", "None"}}, 503},
		// The store answers a conflict 409 concurrent_change, nothing
		// written; its callers read again and retry (manager writeRetry).
		{"cancelled: a conflict", 1, faults.Fault{Status: 400, Code: "TransactionCanceledException", Reasons: []string{"TransactionConflict", "None", "None", "None"}}, 409},
		{"service unavailable", 0, faults.Fault{Status: 500, Code: "InternalServerError"}, 503},
		{"no answer on any attempt", 0, faults.Fault{Unreachable: true}, 503},
		{"answer lost after the commit", 1, faults.Fault{LoseAnswer: true}, -1}, // -1: either outcome, told apart by the table
	}
	for _, op := range []string{"create", "update"} {
		for i, tt := range tests {
			t.Run(op+"/"+tt.name, func(t *testing.T) {
				env := stacktest.Start(t)
				ctx := context.Background()
				ft := &faults.Transport{}
				st := faultyStore(env, ft)
				id := fmt.Sprintf("c%02d", i)
				now := env.Clock.Now()
				var before *store.Record
				if op == "update" {
					before = record(env, id, 1)
					if err := env.Store.Create(ctx, before, connection.AuditEntry{ID: "01AU0", At: now, Actor: "alice", Action: connection.ActionCreated, Version: 1}, nil,
						events.ForConnection(events.ConnectionCreated, &before.Conn, "01EV0", "alice", "", nil, now)); err != nil {
						t.Fatal(err)
					}
				}
				ev := events.ForConnection(events.ConnectionCreated, &record(env, id, 1).Conn, "01EV1", "alice", "", nil, now)
				ft.On("TransactWriteItems", tt.times, tt.fault)
				var err error
				if op == "create" {
					err = st.Create(ctx, record(env, id, 1), connection.AuditEntry{ID: "01AU1", At: now, Actor: "alice", Action: connection.ActionCreated, Version: 1}, nil, ev)
				} else {
					next := record(env, id, 2)
					next.Conn.Name = "renamed"
					ev = events.ForConnection(events.ConnectionUpdated, &next.Conn, "01EV1", "alice", "", []string{"name"}, now)
					err = st.Update(ctx, next, 1, before.Conn.Owners, store.Changes{
						Audits: []connection.AuditEntry{{ID: "01AU1", At: now, Actor: "alice", Action: connection.ActionUpdated, Version: 2}},
						Events: []events.Event{ev}})
				}
				if ft.Hits("TransactWriteItems") == 0 {
					t.Fatal("the fault never met a call")
				}
				switch got := apperr.As(err).Kind.Status(); {
				case err == nil && tt.status > 0:
					t.Fatalf("succeeded, want %d", tt.status)
				case err != nil && tt.status == 0:
					t.Fatalf("%v, want success", err)
				case err != nil && got != 503 && got != 409 && (tt.status != -1 || got == 500):
					t.Fatalf("%v: status %d, want a retryable 503 or 409", err, got)
				case err != nil && tt.status > 0 && got != tt.status:
					t.Fatalf("%v: status %d, want %d", err, got, tt.status)
				}

				// The change and its event: both or neither.
				r, gerr := env.Store.Get(ctx, "t1", id)
				changed := gerr == nil && (op == "create" || r.Conn.Version == 2)
				if gerr != nil && !apperr.Is(gerr, apperr.NotFound) {
					t.Fatal(gerr)
				}
				pending, perr := env.Store.Pending(ctx, 100)
				if perr != nil {
					t.Fatal(perr)
				}
				n := 0
				for _, p := range pending {
					if p.ID() == ev.ID() {
						n++
					}
				}
				if changed && n != 1 || !changed && n != 0 {
					t.Errorf("changed: %v, its event %d times in the outbox", changed, n)
				}
				if op == "update" && !changed && (gerr != nil || r.Conn.Version != 1 || r.Conn.Name != before.Conn.Name) {
					t.Errorf("a failed update touched the connection: %+v %v", r, gerr)
				}
				if tt.status == 0 && !changed {
					t.Error("the write succeeded but the table lacks it")
				}
				if tt.status > 0 && changed {
					t.Errorf("the write failed (%v) but the table holds it", err)
				}
			})
		}
	}
}
