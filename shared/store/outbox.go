package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connmgr/connmgr/shared/events"
)

// The outbox: every change that emits events writes one outbox item per
// event in the same transaction, so an event can never be lost or report a
// change that did not commit. After the commit the writer publishes and
// deletes them; whatever publication fails stays in the outbox partitions
// of gsi1 until the scheduled drain publishes it (at least once).
const (
	// OutboxShards is how many gsi1 partitions the outbox entries are
	// spread over, OUTBOX#0 to OUTBOX#15, by a hash of the event id: one
	// index partition takes about 1,000 writes a second, and every change
	// that emits events writes an entry per event. Pending reads them all.
	// Lowering it would strand the entries of the shards no longer read:
	// keep those in outboxPartitions until they are empty, as legacyOutbox.
	OutboxShards = 16
	outboxPrefix = "OUTBOX#"
	// legacyOutbox is the one partition entries were written to before
	// the shards; Pending still reads it, so an entry written then is
	// drained too. Once it is empty everywhere it can go.
	legacyOutbox = "OUTBOX"
	skOutbox     = "OUTBOX"
	// outboxReaders bounds the partition queries Pending runs at once.
	outboxReaders = 4
)

func outboxPK(eventID string) string { return "EVT#" + eventID }

// outboxPartition is the gsi1 partition of an event's outbox entry.
func outboxPartition(eventID string) string {
	return outboxPrefix + strconv.Itoa(shardOf(eventID, OutboxShards))
}

// outboxPartitions are the partitions Pending reads: every shard, and the
// legacy partition.
func outboxPartitions() []string {
	out := make([]string, 0, OutboxShards+1)
	for n := range OutboxShards {
		out = append(out, outboxPrefix+strconv.Itoa(n))
	}
	return append(out, legacyOutbox)
}

// shardOf spreads keys over n shards: FNV-1a of key, modulo n. Stable
// across releases and processes (the drain and the writers must agree).
func shardOf(key string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

type outboxItem struct {
	PK         string `dynamodbav:"pk"`
	SK         string `dynamodbav:"sk"`
	GSI1PK     string `dynamodbav:"gsi1pk"`
	GSI1SK     string `dynamodbav:"gsi1sk"`
	DetailType string `dynamodbav:"detailType"`
	Detail     string `dynamodbav:"detail"`
}

// outboxPuts are the transaction items recording evs.
func (s *Store) outboxPuts(evs []events.Event) ([]types.TransactWriteItem, error) {
	out := make([]types.TransactWriteItem, 0, len(evs))
	for _, e := range evs {
		detail, err := e.Marshal()
		if err != nil {
			return nil, fmt.Errorf("store: event %s: %w", e.DetailType, err)
		}
		ti, err := s.put(outboxItem{PK: outboxPK(e.ID()), SK: skOutbox, GSI1PK: outboxPartition(e.ID()), GSI1SK: e.ID(), DetailType: e.DetailType, Detail: detail}, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, ti)
	}
	return out, nil
}

// transact writes items and the outbox entries of evs in one transaction;
// its error is the transaction's, for the caller to read the cancellation
// reasons of its own items (the outbox entries come after them).
func (s *Store) transact(ctx context.Context, items []types.TransactWriteItem, evs []events.Event) error {
	outbox, err := s.outboxPuts(evs)
	if err != nil {
		return err
	}
	_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: append(items, outbox...)})
	return err
}

// Pending lists up to limit events still in the outbox, oldest first: it
// queries every outbox partition for its oldest limit entries (outboxReaders
// at a time), merges them in event id order (ids are ULIDs), and reads the
// first limit back with consistent BatchGetItems (the index is KEYS_ONLY).
func (s *Store) Pending(ctx context.Context, limit int) ([]events.Event, error) {
	if limit <= 0 {
		return nil, nil
	}
	parts := outboxPartitions()
	found := make([][]string, len(parts))
	errs := make([]error, len(parts))
	sem := make(chan struct{}, outboxReaders)
	var wg sync.WaitGroup
	for i, part := range parts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			found[i], errs[i] = s.outboxIDs(ctx, part, limit)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("store.Pending: %w", err)
	}
	ids := slices.Compact(slices.Sorted(slices.Values(slices.Concat(found...))))
	ids = ids[:min(limit, len(ids))]
	got, err := batchGet(ctx, s, "store.Pending", ids, func(id string) map[string]types.AttributeValue { return key(outboxPK(id), skOutbox) },
		func(it outboxItem) (string, events.Event, error) {
			e, err := events.Decode(it.DetailType, it.Detail)
			if err != nil {
				return "", events.Event{}, fmt.Errorf("store.Pending %s: %w", it.GSI1SK, err)
			}
			return it.GSI1SK, e, nil
		})
	if err != nil {
		return nil, err
	}
	pending := make([]events.Event, 0, len(ids))
	for _, id := range ids {
		if e, ok := got[id]; ok { // absent: published meanwhile
			pending = append(pending, e)
		}
	}
	return pending, nil
}

// outboxIDs are the event ids of the oldest limit entries of one outbox
// partition.
func (s *Store) outboxIDs(ctx context.Context, partition string, limit int) ([]string, error) {
	expr, err := expression.NewBuilder().WithKeyCondition(expression.Key("gsi1pk").Equal(expression.Value(partition))).Build()
	if err != nil {
		return nil, err
	}
	out, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(s.table), IndexName: aws.String(IndexAudience),
		KeyConditionExpression: expr.KeyCondition(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		Limit: aws.Int32(int32(limit)),
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", partition, classify(err))
	}
	ids := make([]string, 0, len(out.Items))
	for _, k := range out.Items {
		if v, ok := k["gsi1sk"].(*types.AttributeValueMemberS); ok {
			ids = append(ids, v.Value)
		}
	}
	return ids, nil
}

// Published removes published events from the outbox.
func (s *Store) Published(ctx context.Context, ids []string) error {
	for _, id := range ids {
		if _, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(s.table), Key: key(outboxPK(id), skOutbox)}); err != nil {
			return fmt.Errorf("store.Published: %w", classify(err))
		}
	}
	return nil
}
