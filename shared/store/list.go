package store

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

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
	if q.Limit <= 0 {
		q.Limit = 50
	}
	var sources []*source
	if q.All {
		sources = append(sources, &source{index: IndexTenant, pkAttr: "gsi2pk", skAttr: "gsi2sk", pk: tenantConnsKey(q.Tenant)})
	} else {
		seen := map[Audience]bool{}
		for _, a := range q.Audiences {
			if !seen[a] {
				seen[a] = true
				sources = append(sources, &source{index: IndexAudience, pkAttr: "gsi1pk", skAttr: "gsi1sk", pk: audienceKey(q.Tenant, string(a))})
			}
		}
	}
	for _, src := range sources {
		src.after = q.After
	}
	var page []*Record
	examined := 0
	last := q.After
	for len(page) < q.Limit && examined < maxExamined {
		// Take the next batch of distinct ids in order across the sources.
		var ids []string
		for len(ids) < q.Limit-len(page) {
			id, ok, err := nextID(ctx, s, sources, q.Limit)
			if err != nil {
				return nil, "", err
			}
			if !ok {
				break
			}
			ids = append(ids, id)
		}
		if len(ids) == 0 {
			return page, "", nil
		}
		examined += len(ids)
		recs, err := s.batchGet(ctx, q.Tenant, ids)
		if err != nil {
			return nil, "", err
		}
		for _, id := range ids {
			last = id
			if r, ok := recs[id]; ok && (q.Keep == nil || q.Keep(r)) {
				page = append(page, r)
			}
		}
	}
	// Only report a cursor if another id may follow.
	for _, src := range sources {
		if len(src.buf) > 0 || !src.done {
			return page, last, nil
		}
	}
	return page, "", nil
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

// nextID pops the smallest head id across sources, dropping duplicates.
func nextID(ctx context.Context, s *Store, sources []*source, limit int) (string, bool, error) {
	min := ""
	for _, src := range sources {
		if err := src.fill(ctx, s, limit); err != nil {
			return "", false, err
		}
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

// batchGet reads connection items by id, consistently, retrying unprocessed keys.
func (s *Store) batchGet(ctx context.Context, tenant string, ids []string) (map[string]*Record, error) {
	out := make(map[string]*Record, len(ids))
	for chunk := range slices.Chunk(ids, 100) {
		keys := make([]map[string]types.AttributeValue, 0, len(chunk))
		for _, id := range chunk {
			keys = append(keys, key(connPK(tenant, id), skConn))
		}
		req := map[string]types.KeysAndAttributes{s.table: {Keys: keys, ConsistentRead: aws.Bool(true)}}
		for attempt := 0; len(req) > 0; attempt++ {
			if attempt == 5 {
				return nil, fmt.Errorf("store.List: batch get left keys unprocessed after %d attempts", attempt)
			}
			res, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return nil, fmt.Errorf("store.List batch get: %w", classify(err))
			}
			for _, item := range res.Responses[s.table] {
				var it connItem
				if err := attributevalue.UnmarshalMap(item, &it); err != nil {
					return nil, fmt.Errorf("store.List: %w", err)
				}
				r, err := fromItem(it)
				if err != nil {
					return nil, err
				}
				out[r.Conn.ID] = r
			}
			req = res.UnprocessedKeys
		}
	}
	return out, nil
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
