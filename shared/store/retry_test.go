package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connmgr/connmgr/local/stacktest"
	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/expiry"
	"github.com/connmgr/connmgr/shared/store"
)

// busy is the table's client under load, as DynamoDB behaves then: its
// first `fail` batch calls process one request each and hand back the rest
// unprocessed, and its first `fail` transactions are cancelled by a
// TransactionConflict. It counts the calls by operation.
type busy struct {
	store.DynamoDB
	mu    sync.Mutex
	fail  int
	calls map[string]int
}

func (b *busy) take(op string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.calls == nil {
		b.calls = map[string]int{}
	}
	b.calls[op]++
	if b.fail > 0 {
		b.fail--
		return true
	}
	return false
}

func (b *busy) count(op string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls[op]
}

func (b *busy) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	if !b.take("BatchWriteItem") {
		return b.DynamoDB.BatchWriteItem(ctx, in, opts...)
	}
	for table, reqs := range in.RequestItems {
		out, err := b.DynamoDB.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{table: reqs[:1]}}, opts...)
		if err == nil && len(reqs) > 1 {
			out.UnprocessedItems = map[string][]types.WriteRequest{table: reqs[1:]}
		}
		return out, err
	}
	return &dynamodb.BatchWriteItemOutput{}, nil
}

func (b *busy) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	if !b.take("BatchGetItem") {
		return b.DynamoDB.BatchGetItem(ctx, in, opts...)
	}
	for table, ka := range in.RequestItems {
		first := ka
		first.Keys = ka.Keys[:1]
		out, err := b.DynamoDB.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{table: first}}, opts...)
		if err == nil && len(ka.Keys) > 1 {
			rest := ka
			rest.Keys = ka.Keys[1:]
			out.UnprocessedKeys = map[string]types.KeysAndAttributes{table: rest}
		}
		return out, err
	}
	return &dynamodb.BatchGetItemOutput{}, nil
}

func (b *busy) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	if !b.take("TransactWriteItems") {
		return b.DynamoDB.TransactWriteItems(ctx, in, opts...)
	}
	reasons := make([]types.CancellationReason, len(in.TransactItems))
	for i := range reasons {
		reasons[i].Code = aws.String("None")
	}
	reasons[0].Code = aws.String("TransactionConflict")
	return nil, &types.TransactionCanceledException{Message: aws.String("Transaction cancelled"), CancellationReasons: reasons}
}

func bulkRecord(env *stacktest.Env, id string) *store.Record {
	now := env.Clock.Now()
	return &store.Record{Conn: connection.Connection{
		Tenant: "t1", ID: id, Type: "http-basic", Name: "conn " + id, Kind: connection.Shared,
		Availability: connection.Availability{Scope: connection.ScopeTenant}, Owners: []string{"alice"}, CreatedBy: "alice",
		CreatedAt: now, UpdatedAt: now, Version: 1, Status: connection.StatusActive,
		Settings: map[string]any{"baseUrl": "https://api.example.com"}, SecretVersion: 1,
	}}
}

// TestStoreRetriesWhatTheSDKDoesNot: unprocessed batch items and keys, and
// transactions cancelled by a TransactionConflict, are tried again with
// backoff, a bounded number of times; what is still left is an error
// (throttled for batches, concurrent change for transactions).
func TestStoreRetriesWhatTheSDKDoesNot(t *testing.T) {
	const batchAttempts, txAttempts = 6, 4 // batchRetry, conflictRetry
	tests := []struct {
		op    string // BulkPut, List or ApplyStatusChanges
		fail  int
		calls int
		ok    bool
	}{
		{"BulkPut", 0, 1, true},
		{"BulkPut", 2, 3, true},
		{"BulkPut", 100, batchAttempts, false},
		{"List", 0, 1, true},
		{"List", 2, 3, true},
		{"List", 100, batchAttempts, false},
		{"ApplyStatusChanges", 0, 1, true},
		{"ApplyStatusChanges", 3, 4, true},
		{"ApplyStatusChanges", 100, txAttempts, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.op, tt.fail), func(t *testing.T) {
			env := stacktest.Start(t)
			ctx := context.Background()
			b := &busy{DynamoDB: env.DynamoDB}
			st := store.New(b, env.Stack.TableName, env.Clock.Now)
			var recs []*store.Record
			for i := range 8 {
				recs = append(recs, bulkRecord(env, fmt.Sprintf("c%d", i)))
			}
			var err error
			var api string
			switch tt.op {
			case "BulkPut":
				api = "BatchWriteItem"
				b.fail = tt.fail
				err = st.BulkPut(ctx, recs) // 16 requests in one batch: enough to outlast the attempts
				if tt.ok {
					for _, r := range recs {
						if _, gerr := env.Store.Get(ctx, "t1", r.Conn.ID); gerr != nil {
							t.Errorf("%s: %v", r.Conn.ID, gerr)
						}
					}
				}
			case "List":
				api = "BatchGetItem"
				if err := env.Store.BulkPut(ctx, recs); err != nil {
					t.Fatal(err)
				}
				b.fail = tt.fail
				var got []*store.Record
				got, _, err = st.List(ctx, store.ListQuery{Tenant: "t1", All: true, Limit: 10})
				if tt.ok && len(got) != len(recs) {
					t.Errorf("listed %d of %d", len(got), len(recs))
				}
			case "ApplyStatusChanges":
				api = "TransactWriteItems"
				now := env.Clock.Now()
				pe := now.Add(3 * 24 * time.Hour)
				for _, id := range []string{"a", "b", "c"} {
					passwordConn(t, env, id, pe)
				}
				var chs []store.StatusChange
				for _, e := range due(t, env, now, now) {
					chs = append(chs, store.StatusChange{Entry: e, To: connection.StatusExpiring, Reason: expiry.ReasonPasswordExpiring,
						Audit: connection.AuditEntry{ID: "01ZZ" + e.ID, At: now, Actor: "system:expiry-check", Action: expiry.ActionExpiring, Version: e.Conn.Version + 1, Changes: []string{"status"}}})
				}
				b.fail = tt.fail
				for i, cerr := range st.ApplyStatusChanges(ctx, chs) {
					if !tt.ok && !errors.Is(cerr, store.ErrConcurrentChange) {
						t.Errorf("%s: %v, want a concurrent change", chs[i].Entry.ID, cerr)
					}
					err = errors.Join(err, cerr)
				}
			}
			if got := b.count(api); got != tt.calls {
				t.Errorf("%d %s calls, want %d", got, api, tt.calls)
			}
			switch {
			case tt.ok && err != nil:
				t.Fatal(err)
			case !tt.ok && err == nil:
				t.Fatal("succeeded with work left undone")
			case !tt.ok && tt.op != "ApplyStatusChanges" && !apperr.Is(err, apperr.Throttled):
				t.Errorf("%v is not classified throttled", err)
			}
		})
	}
}

// TestStoreRetryWaitsHonourTheContext: a deadline that passes during the
// backoff ends the retries there.
func TestStoreRetryWaitsHonourTheContext(t *testing.T) {
	env := stacktest.Start(t)
	b := &busy{DynamoDB: env.DynamoDB, fail: 100}
	st := store.New(b, env.Stack.TableName, env.Clock.Now)
	var recs []*store.Record
	for i := range 8 {
		recs = append(recs, bulkRecord(env, fmt.Sprintf("c%d", i)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := st.BulkPut(ctx, recs)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("returned %s after the start, well past the deadline", d)
	}
}
