package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/events"
	"github.com/connmgr/connmgr/shared/runs"
)

// Usage: which workflows and runs use a connection. Items live in the
// connection's partition, written in the same transaction as each run's
// own transitions (CreateRun, UpdateRun), so they never disagree with the
// runs:
//
//	item              pk               sk
//	workflow usage    T#<t>#C#<conn>   U#W#<workflow>   the workflow's last run on it: id, site, owner, status, time
//	active run        T#<t>#C#<conn>   U#R#<run>        a run running or suspended on it (deleted when it ends)
//
// A run names at most runs.MaxConnections connections, so a transition
// writes at most 2 × that many usage items beside the run's own.

const (
	usagePrefix   = "U#"
	usageWorkflow = "U#W#"
	usageRun      = "U#R#"
)

// UsageItem is one usage entry: a workflow (its last run) or an active run.
type UsageItem struct {
	Kind       string      `json:"kind"` // "workflow" or "run"
	WorkflowID string      `json:"workflowId"`
	RunID      string      `json:"runId"` // the active run, or the workflow's last run
	Site       string      `json:"site"`
	Owner      string      `json:"owner"`
	Status     runs.Status `json:"status"`
	Reason     string      `json:"reason,omitempty"` // why a run is suspended
	At         time.Time   `json:"at"`               // when the run last changed
}

type usageItem struct {
	PK         string    `dynamodbav:"pk"`
	SK         string    `dynamodbav:"sk"`
	Kind       string    `dynamodbav:"kind"`
	WorkflowID string    `dynamodbav:"workflowId"`
	RunID      string    `dynamodbav:"runId"`
	Site       string    `dynamodbav:"site"`
	Owner      string    `dynamodbav:"owner"`
	Status     string    `dynamodbav:"status"`
	Reason     string    `dynamodbav:"reason,omitempty"`
	At         time.Time `dynamodbav:"at"`
}

func (it usageItem) item() UsageItem {
	return UsageItem{Kind: it.Kind, WorkflowID: it.WorkflowID, RunID: it.RunID, Site: it.Site, Owner: it.Owner,
		Status: runs.Status(it.Status), Reason: it.Reason, At: it.At}
}

// usageWrites keeps the usage items of the connections prev and next use
// in step with next (prev nil: a new run). Nothing is written when neither
// the status nor the connections changed.
func (s *Store) usageWrites(prev, next *runs.Run) ([]types.TransactWriteItem, error) {
	var before []string
	if prev != nil {
		before = prev.Connections()
		if prev.Status == next.Status && slices.Equal(before, next.Connections()) && suspReason(prev) == suspReason(next) {
			return nil, nil
		}
	}
	var items []types.TransactWriteItem
	add := func(ti types.TransactWriteItem, err error) error {
		if err == nil {
			items = append(items, ti)
		}
		return err
	}
	now := next.UpdatedAt.UTC()
	for _, c := range next.Connections() {
		pk := connPK(next.Tenant, c)
		base := usageItem{PK: pk, WorkflowID: next.WorkflowID, RunID: next.ID, Site: next.Site, Owner: next.Owner,
			Status: string(next.Status), Reason: suspReason(next), At: now}
		w := base
		w.SK, w.Kind = usageWorkflow+next.WorkflowID, "workflow"
		if err := add(s.put(w, nil)); err != nil {
			return nil, err
		}
		if next.Status.Terminal() {
			if err := add(s.del(pk, usageRun+next.ID, nil)); err != nil {
				return nil, err
			}
			continue
		}
		r := base
		r.SK, r.Kind = usageRun+next.ID, "run"
		if err := add(s.put(r, nil)); err != nil {
			return nil, err
		}
	}
	for _, c := range before {
		if !slices.Contains(next.Connections(), c) {
			if err := add(s.del(connPK(next.Tenant, c), usageRun+next.ID, nil)); err != nil {
				return nil, err
			}
		}
	}
	return items, nil
}

func suspReason(r *runs.Run) string {
	if r.Status == runs.StatusSuspended && r.Suspension != nil {
		return r.Suspension.Reason
	}
	return ""
}

// Usage lists a connection's usage entries in key order (workflows, then
// active runs), at most limit after the entry key after ("" from the
// first), and the key to continue after.
func (s *Store) Usage(ctx context.Context, tenant, conn, after string, limit int, keep func(UsageItem) bool) ([]UsageItem, int, string, error) {
	return s.usage(ctx, tenant, conn, usagePrefix, after, limit, keep)
}

// ActiveRuns lists every run running or suspended on a connection, with
// keep deciding which are shown; the others are only counted.
func (s *Store) ActiveRuns(ctx context.Context, tenant, conn string, keep func(UsageItem) bool) ([]UsageItem, int, error) {
	items, hidden, _, err := s.usage(ctx, tenant, conn, usageRun, "", 0, keep)
	return items, hidden, err
}

// usage reads the items under prefix; limit 0 reads them all. Items keep
// refuses are counted in hidden, never returned.
func (s *Store) usage(ctx context.Context, tenant, conn, prefix, after string, limit int, keep func(UsageItem) bool) ([]UsageItem, int, string, error) {
	kc := expression.Key("pk").Equal(expression.Value(connPK(tenant, conn))).And(expression.Key("sk").BeginsWith(prefix))
	expr, err := expression.NewBuilder().WithKeyCondition(kc).Build()
	if err != nil {
		return nil, 0, "", fmt.Errorf("store.Usage: %w", err)
	}
	in := &dynamodb.QueryInput{TableName: aws.String(s.table), KeyConditionExpression: expr.KeyCondition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(), ConsistentRead: aws.Bool(true)}
	if after != "" {
		in.ExclusiveStartKey = key(connPK(tenant, conn), after)
	}
	var out []UsageItem
	hidden := 0
	for {
		res, err := s.db.Query(ctx, in)
		if err != nil {
			return nil, 0, "", fmt.Errorf("store.Usage %s: %w", conn, classify(err))
		}
		var its []usageItem
		if err := attributevalue.UnmarshalListOfMaps(res.Items, &its); err != nil {
			return nil, 0, "", fmt.Errorf("store.Usage %s: %w", conn, err)
		}
		for _, it := range its {
			u := it.item()
			if keep != nil && !keep(u) {
				hidden++
			} else {
				out = append(out, u)
			}
			if limit > 0 && len(out)+hidden >= limit {
				return out, hidden, it.SK, nil
			}
		}
		if len(res.LastEvaluatedKey) == 0 {
			return out, hidden, "", nil
		}
		in.ExclusiveStartKey = res.LastEvaluatedKey
	}
}

// NoteConnectionDeleted records on a run suspended on conn that the
// connection was deleted (its suspension's reason becomes
// connection_deleted, with the event ev builds); a run no longer suspended
// on conn is left alone. Retried on a concurrent change of the run.
func (s *Store) NoteConnectionDeleted(ctx context.Context, tenant, runID, conn string, ev func(*runs.Run) events.Event) (bool, error) {
	noted := false
	err := conflictRetry.Do(ctx, func(int) (bool, error) {
		prev, err := s.GetRun(ctx, tenant, runID)
		if err != nil {
			return false, err
		}
		if prev.Status != runs.StatusSuspended || prev.Suspension == nil || prev.Suspension.Connection != conn ||
			prev.Suspension.Reason == runs.ReasonConnectionDeleted {
			return false, nil
		}
		next := *prev
		susp := *prev.Suspension
		susp.Reason = runs.ReasonConnectionDeleted
		next.Suspension, next.Version, next.UpdatedAt = &susp, prev.Version+1, s.now().UTC()
		err = s.UpdateRun(ctx, prev, &next, RunCondition{}, ev(&next))
		noted = err == nil
		// A concurrent change of the run: read it again and decide anew.
		return apperr.Is(err, apperr.PreconditionFailed), err
	})
	return noted, err
}
