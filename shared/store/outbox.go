package store

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connmgr/connmgr/shared/events"
)

// The outbox: every change that emits events writes one outbox item per
// event in the same transaction, so an event can never be lost or report a
// change that did not commit. After the commit the writer publishes and
// deletes them; whatever publication fails stays in the outbox partition
// of gsi1 until the scheduled drain publishes it (at least once).
const (
	outboxPartition = "OUTBOX"
	skOutbox        = "OUTBOX"
)

func outboxPK(eventID string) string { return "EVT#" + eventID }

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
		ti, err := s.put(outboxItem{PK: outboxPK(e.ID()), SK: skOutbox, GSI1PK: outboxPartition, GSI1SK: e.ID(), DetailType: e.DetailType, Detail: detail}, nil)
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

// Pending lists up to limit events still in the outbox, oldest first.
func (s *Store) Pending(ctx context.Context, limit int) ([]events.Event, error) {
	kc := expression.Key("gsi1pk").Equal(expression.Value(outboxPartition))
	expr, err := expression.NewBuilder().WithKeyCondition(kc).Build()
	if err != nil {
		return nil, err
	}
	out, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(s.table), IndexName: aws.String(IndexAudience),
		KeyConditionExpression: expr.KeyCondition(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		Limit: aws.Int32(int32(limit)),
	})
	if err != nil {
		return nil, fmt.Errorf("store.Pending: %w", classify(err))
	}
	var pending []events.Event
	for _, k := range out.Items {
		// The index is KEYS_ONLY: read the item itself.
		got, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: map[string]types.AttributeValue{"pk": k["pk"], "sk": k["sk"]}, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return nil, fmt.Errorf("store.Pending: %w", classify(err))
		}
		if got.Item == nil {
			continue // published meanwhile
		}
		var it outboxItem
		if err := attributevalue.UnmarshalMap(got.Item, &it); err != nil {
			return nil, fmt.Errorf("store.Pending: %w", err)
		}
		e, err := events.Decode(it.DetailType, it.Detail)
		if err != nil {
			return nil, fmt.Errorf("store.Pending %s: %w", it.SK, err)
		}
		pending = append(pending, e)
	}
	return pending, nil
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
