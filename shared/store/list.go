package store

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/connection"
)

// ListQuery selects connections of one tenant.
type ListQuery struct {
	Tenant string
	// All lists every connection of the tenant (gsi2); otherwise the union
	// of Audiences (gsi1).
	All       bool
	Audiences []Audience
	After     string // exclusive lower bound on id (the cursor)
	Limit     int
	// Keep filters the records read back (permissions, type, status, scope).
	Keep func(*Record) bool
}

// maxExamined bounds the ids one page may read when filters reject most of them.
const maxExamined = 1000

// List returns up to Limit records in id order and the id to continue after
// ("" when there is nothing more).
func (s *Store) List(ctx context.Context, q ListQuery) ([]*Record, string, error) {
	var sources []*source
	if q.All {
		sources = []*source{tenantSource(tenantConnsKey(q.Tenant))}
	} else {
		for _, a := range slices.Compact(slices.Sorted(slices.Values(q.Audiences))) {
			sources = append(sources, audienceSource(audienceKey(q.Tenant, string(a))))
		}
	}
	get := func(ctx context.Context, ids []string) (map[string]*Record, error) {
		return batchGet(ctx, s, "store.List", ids, func(id string) map[string]types.AttributeValue { return key(connPK(q.Tenant, id), skConn) },
			func(it connItem) (string, *Record, error) {
				r, err := fromItem(it)
				if err != nil {
					return "", nil, err
				}
				return r.Conn.ID, r, nil
			})
	}
	return page(ctx, s, sources, q.After, q.Limit, get, q.Keep)
}

func tenantSource(pk string) *source {
	return &source{index: IndexTenant, pkAttr: "gsi2pk", skAttr: "gsi2sk", pk: pk}
}

func audienceSource(pk string) *source {
	return &source{index: IndexAudience, pkAttr: "gsi1pk", skAttr: "gsi1sk", pk: pk}
}

// page merges sources (each already in id order) into one page of up to
// limit items after the id after, reading each batch of ids with get and
// keeping those keep accepts. It returns the id to continue after, "" when
// no source has more.
func page[T any](ctx context.Context, s *Store, sources []*source, after string, limit int,
	get func(context.Context, []string) (map[string]T, error), keep func(T) bool) ([]T, string, error) {
	if limit <= 0 {
		limit = 50
	}
	for _, src := range sources {
		src.after = after
	}
	var out []T
	last := after
	for examined := 0; len(out) < limit && examined < maxExamined; {
		// Take the next batch of distinct ids in order across the sources.
		var ids []string
		for len(ids) < limit-len(out) {
			id, ok, err := nextID(ctx, s, sources, limit)
			if err != nil {
				return nil, "", err
			}
			if !ok {
				break
			}
			ids = append(ids, id)
		}
		if len(ids) == 0 {
			return out, "", nil
		}
		examined += len(ids)
		items, err := get(ctx, ids)
		if err != nil {
			return nil, "", err
		}
		for _, id := range ids {
			last = id
			if it, ok := items[id]; ok && (keep == nil || keep(it)) {
				out = append(out, it)
			}
		}
	}
	// Only report a cursor if another id may follow.
	for _, src := range sources {
		if len(src.buf) > 0 || !src.done {
			return out, last, nil
		}
	}
	return out, "", nil
}

type source struct {
	index, pkAttr, skAttr, pk string
	after                     string
	buf                       []string
	startKey                  map[string]types.AttributeValue
	done                      bool
}

func (src *source) fill(ctx context.Context, s *Store, limit int) error {
	for len(src.buf) == 0 && !src.done {
		kc := expression.Key(src.pkAttr).Equal(expression.Value(src.pk))
		if src.after != "" {
			kc = kc.And(expression.Key(src.skAttr).GreaterThan(expression.Value(src.after)))
		}
		expr, err := expression.NewBuilder().WithKeyCondition(kc).Build()
		if err != nil {
			return fmt.Errorf("store.List: %w", err)
		}
		out, err := s.db.Query(ctx, &dynamodb.QueryInput{
			TableName: aws.String(s.table), IndexName: aws.String(src.index),
			KeyConditionExpression: expr.KeyCondition(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
			Limit: aws.Int32(int32(limit)), ExclusiveStartKey: src.startKey,
		})
		if err != nil {
			return fmt.Errorf("store.List query %s: %w", src.index, classify(err))
		}
		for _, item := range out.Items {
			if v, ok := item[src.skAttr].(*types.AttributeValueMemberS); ok {
				src.buf = append(src.buf, v.Value)
			}
		}
		src.startKey = out.LastEvaluatedKey
		src.done = len(out.LastEvaluatedKey) == 0
	}
	return nil
}

// listReaders bounds the Queries one listing runs at once. A member's
// audiences (their own, the tenant's, and a site's and its collection's for
// each site they reach) are read concurrently, so a page costs one round
// trip of Queries and one BatchGetItem however many sites the caller has.
const listReaders = 16

// fillAll fills every source whose buffer is empty and which has more,
// listReaders at a time; the first error, if any, is the answer.
func fillAll(ctx context.Context, s *Store, sources []*source, limit int) error {
	var empty []*source
	for _, src := range sources {
		if len(src.buf) == 0 && !src.done {
			empty = append(empty, src)
		}
	}
	if len(empty) == 1 {
		return empty[0].fill(ctx, s, limit)
	}
	errs := make([]error, len(empty))
	sem := make(chan struct{}, listReaders)
	var wg sync.WaitGroup
	for i, src := range empty {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = src.fill(ctx, s, limit)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// nextID pops the smallest head id across sources, dropping duplicates.
func nextID(ctx context.Context, s *Store, sources []*source, limit int) (string, bool, error) {
	if err := fillAll(ctx, s, sources, limit); err != nil {
		return "", false, err
	}
	min := ""
	for _, src := range sources {
		if len(src.buf) > 0 && (min == "" || src.buf[0] < min) {
			min = src.buf[0]
		}
	}
	if min == "" {
		return "", false, nil
	}
	for _, src := range sources {
		if len(src.buf) > 0 && src.buf[0] == min {
			src.buf = src.buf[1:]
		}
	}
	return min, true, nil
}

// batchGet reads items by id, consistently, retrying unprocessed keys
// (batchRetry);
// decode turns an item into its id and value. Ids not found are absent.
func batchGet[I, T any](ctx context.Context, s *Store, op string, ids []string, keyOf func(string) map[string]types.AttributeValue,
	decode func(I) (string, T, error)) (map[string]T, error) {
	out := make(map[string]T, len(ids))
	for chunk := range slices.Chunk(ids, 100) {
		keys := make([]map[string]types.AttributeValue, 0, len(chunk))
		for _, id := range chunk {
			keys = append(keys, keyOf(id))
		}
		req := map[string]types.KeysAndAttributes{s.table: {Keys: keys, ConsistentRead: aws.Bool(true)}}
		err := batchRetry.Do(ctx, func(int) (bool, error) {
			res, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return false, fmt.Errorf("%s batch get: %w", op, classify(err))
			}
			for _, item := range res.Responses[s.table] {
				var it I
				if err := attributevalue.UnmarshalMap(item, &it); err != nil {
					return false, fmt.Errorf("%s: %w", op, err)
				}
				id, v, err := decode(it)
				if err != nil {
					return false, err
				}
				out[id] = v
			}
			if req = res.UnprocessedKeys; len(req) > 0 {
				return true, errUnprocessed
			}
			return false, nil
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
	}
	return out, nil
}

// getItem reads one item consistently; absent is NotFound with notFound as
// its message.
func getItem[I any](ctx context.Context, s *Store, op, pk, sk, notFound string) (I, error) {
	var it I
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: key(pk, sk), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return it, fmt.Errorf("%s: %w", op, classify(err))
	}
	if out.Item == nil {
		return it, apperr.NotFoundf("%s", notFound)
	}
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return it, fmt.Errorf("%s: %w", op, err)
	}
	return it, nil
}

// Audit lists a connection's audit entries, newest first, continuing before
// the entry id in before ("" from the newest).
func (s *Store) Audit(ctx context.Context, tenant, id, before string, limit int) ([]connection.AuditEntry, string, error) {
	if limit <= 0 {
		limit = 50
	}
	kc := expression.Key("pk").Equal(expression.Value(connPK(tenant, id)))
	if before != "" {
		kc = kc.And(expression.Key("sk").Between(expression.Value(auditSK("")), expression.Value(auditSK(before))))
	} else {
		kc = kc.And(expression.Key("sk").BeginsWith(auditSK("")))
	}
	expr, err := expression.NewBuilder().WithKeyCondition(kc).Build()
	if err != nil {
		return nil, "", fmt.Errorf("store.Audit: %w", err)
	}
	var entries []connection.AuditEntry
	var startKey map[string]types.AttributeValue
	for {
		out, err := s.db.Query(ctx, &dynamodb.QueryInput{
			TableName: aws.String(s.table), KeyConditionExpression: expr.KeyCondition(),
			ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
			ScanIndexForward: aws.Bool(false), Limit: aws.Int32(int32(limit + 1)), ExclusiveStartKey: startKey,
			ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			return nil, "", fmt.Errorf("store.Audit %s: %w", id, classify(err))
		}
		for _, item := range out.Items {
			var it auditItem
			if err := attributevalue.UnmarshalMap(item, &it); err != nil {
				return nil, "", fmt.Errorf("store.Audit: %w", err)
			}
			if it.ID == before { // Between is inclusive
				continue
			}
			entries = append(entries, connection.AuditEntry{ID: it.ID, At: it.At, Actor: it.Actor,
				Action: connection.Action(it.Action), Version: it.Version, Changes: it.Changes, Details: it.Details})
		}
		startKey = out.LastEvaluatedKey
		if len(entries) > limit || len(startKey) == 0 {
			break
		}
	}
	if len(entries) > limit {
		return entries[:limit], entries[limit-1].ID, nil
	}
	return entries, "", nil
}
