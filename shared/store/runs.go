package store

import (
	"context"
	"encoding/json"
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
	"github.com/connmgr/connmgr/shared/expiry"
	"github.com/connmgr/connmgr/shared/identity"
	"github.com/connmgr/connmgr/shared/runs"
)

// Run keys (see doc.go).
func runPK(tenant, id string) string         { return "T#" + tenant + "#R#" + id }
func tenantRunsKey(tenant string) string     { return "T#" + tenant + "#RUNS" }
func runAudienceKey(tenant, a string) string { return "T#" + tenant + "#RA#" + a }
func suspendedOnKey(tenant, conn string) string {
	return "T#" + tenant + "#SUSP#" + conn
}

const (
	skRun     = "RUN"
	skSuspend = "SUSP"
	// skStop marks a run terminated while running: run-step reads it
	// before each further step, one read unit whatever the run's size.
	skStop = "STOP"
)

// stopItem is a run's stop marker.
type stopItem struct {
	PK string `dynamodbav:"pk"`
	SK string `dynamodbav:"sk"`
}

// outputSK keys the result of a run's step i: each attempt's result, its
// response body included, is written to an item of its own as the step
// ends (PutStepResult), so a step costs one small write and the run item,
// written once per run-step invocation, stays bounded whatever the targets
// return.
func outputSK(i int) string { return fmt.Sprintf("OUT#%03d", i) }

// outputItem is the latest result of one step, its body at most
// httpaction.MaxBody bytes.
type outputItem struct {
	PK     string `dynamodbav:"pk"`
	SK     string `dynamodbav:"sk"`
	StepID string `dynamodbav:"stepId"`
	Step   int    `dynamodbav:"step"`
	Result string `dynamodbav:"result"` // runs.StepResult, JSON
}

// MaxRunItemBytes is the size the run item never exceeds (DynamoDB allows
// 400 KB): step definitions are bounded by runs.MaxStepsBytes, results in
// the item are summaries (no body, bounded headers), bodies are kept in
// output items.
const MaxRunItemBytes = 350 << 10

// RunAudience names a gsi1 partition of runs: their owner, or a path that is
// the run's site or one of its ancestors.
type RunAudience string

// RunsOwnedBy and RunsUnder are the run audiences a caller queries.
func RunsOwnedBy(user string) RunAudience { return RunAudience("OWNER#" + user) }
func RunsUnder(path string) RunAudience   { return RunAudience("PATH#" + path) }

func runAudiences(r *runs.Run) []RunAudience {
	out := []RunAudience{RunsOwnedBy(r.Owner)}
	for _, p := range identity.CollectionsOf(r.Site) {
		out = append(out, RunsUnder(p))
	}
	return out
}

type runItem struct {
	PK          string    `dynamodbav:"pk"`
	SK          string    `dynamodbav:"sk"`
	GSI2PK      string    `dynamodbav:"gsi2pk"`
	GSI2SK      string    `dynamodbav:"gsi2sk"`
	Tenant      string    `dynamodbav:"tenant"`
	ID          string    `dynamodbav:"id"`
	WorkflowID  string    `dynamodbav:"workflowId"`
	Site        string    `dynamodbav:"site"`
	Owner       string    `dynamodbav:"owner"`
	Status      string    `dynamodbav:"status"`
	Steps       string    `dynamodbav:"steps"`   // JSON
	Results     string    `dynamodbav:"results"` // JSON
	Current     int       `dynamodbav:"current"`
	Suspension  string    `dynamodbav:"suspension,omitempty"` // JSON
	Changes     string    `dynamodbav:"changes,omitempty"`    // JSON
	TaskToken   string    `dynamodbav:"taskToken,omitempty"`
	ResumeEvent string    `dynamodbav:"resumeEvent,omitempty"`
	Announced   bool      `dynamodbav:"resumeAnnounced,omitempty"` // runs.Run.ResumeAnnounced
	Reason      string    `dynamodbav:"reason,omitempty"`
	Suspensions int       `dynamodbav:"suspensions,omitempty"`
	SuspAttempt int       `dynamodbav:"suspendAttempt,omitempty"` // runs.Run.SuspendAttempt
	Version     int64     `dynamodbav:"version"`
	CreatedAt   time.Time `dynamodbav:"createdAt"`
	UpdatedAt   time.Time `dynamodbav:"updatedAt"`
	FinishedAt  time.Time `dynamodbav:"finishedAt,omitempty"`
}

// suspEdgeItem is the edge of a suspended run: in gsi1 under the connection
// it waits for, and in the due index until its owners were warned of its
// approaching termination (Warned, set once per suspension).
type suspEdgeItem struct {
	PK     string `dynamodbav:"pk"`
	SK     string `dynamodbav:"sk"`
	GSI1PK string `dynamodbav:"gsi1pk"`
	GSI1SK string `dynamodbav:"gsi1sk"`
	GSI3PK string `dynamodbav:"gsi3pk,omitempty"`
	GSI3SK string `dynamodbav:"gsi3sk,omitempty"`
	Warned bool   `dynamodbav:"warned,omitempty"`
}

func (s *Store) suspendedEdge(r *runs.Run) suspEdgeItem {
	e := suspEdgeItem{PK: runPK(r.Tenant, r.ID), SK: skSuspend, GSI1PK: suspendedOnKey(r.Tenant, r.Suspension.Connection), GSI1SK: r.ID}
	if !r.Suspension.TerminatesAt.IsZero() {
		e.GSI3PK, e.GSI3SK = dueKeys(runDueKind, r.Tenant, r.ID, expiry.RunDue(r.Suspension.TerminatesAt), s.now())
	}
	return e
}

// edgeItem places an item's id in a gsi1 partition.
type edgeItem struct {
	PK     string `dynamodbav:"pk"`
	SK     string `dynamodbav:"sk"`
	GSI1PK string `dynamodbav:"gsi1pk"`
	GSI1SK string `dynamodbav:"gsi1sk"`
}

func toRunItem(r *runs.Run) (runItem, error) {
	steps, err := json.Marshal(r.Steps)
	if err != nil {
		return runItem{}, fmt.Errorf("store: marshal steps: %w", err)
	}
	summaries := make([]runs.StepResult, len(r.Results))
	for i, res := range r.Results {
		res.Body = nil // kept in the step's output item
		summaries[i] = res
	}
	results, err := json.Marshal(summaries)
	if err != nil {
		return runItem{}, fmt.Errorf("store: marshal results: %w", err)
	}
	it := runItem{
		PK: runPK(r.Tenant, r.ID), SK: skRun, GSI2PK: tenantRunsKey(r.Tenant), GSI2SK: r.ID,
		Tenant: r.Tenant, ID: r.ID, WorkflowID: r.WorkflowID, Site: r.Site, Owner: r.Owner, Status: string(r.Status),
		Steps: string(steps), Results: string(results), Current: r.Current, TaskToken: r.TaskToken,
		ResumeEvent: r.ResumeEvent, Announced: r.ResumeAnnounced, Reason: r.Reason, Suspensions: r.Suspensions, SuspAttempt: r.SuspendAttempt, Version: r.Version,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(), FinishedAt: r.FinishedAt.UTC(),
	}
	if r.FinishedAt.IsZero() {
		it.FinishedAt = time.Time{}
	}
	if r.Suspension != nil {
		b, err := json.Marshal(r.Suspension)
		if err != nil {
			return runItem{}, fmt.Errorf("store: marshal suspension: %w", err)
		}
		it.Suspension = string(b)
	}
	if len(r.Changes) > 0 {
		b, err := json.Marshal(r.Changes[max(len(r.Changes)-runs.MaxChanges, 0):])
		if err != nil {
			return runItem{}, fmt.Errorf("store: marshal changes: %w", err)
		}
		it.Changes = string(b)
	}
	return it, nil
}

func fromRunItem(it runItem) (*runs.Run, error) {
	r := &runs.Run{
		Tenant: it.Tenant, ID: it.ID, WorkflowID: it.WorkflowID, Site: it.Site, Owner: it.Owner,
		Status: runs.Status(it.Status), Current: it.Current, TaskToken: it.TaskToken, ResumeEvent: it.ResumeEvent, ResumeAnnounced: it.Announced,
		Reason: it.Reason, Suspensions: it.Suspensions, SuspendAttempt: it.SuspAttempt, Version: it.Version,
		CreatedAt: it.CreatedAt, UpdatedAt: it.UpdatedAt, FinishedAt: it.FinishedAt,
	}
	if err := json.Unmarshal([]byte(it.Steps), &r.Steps); err != nil {
		return nil, fmt.Errorf("store: steps of run %s: %w", it.ID, err)
	}
	if err := json.Unmarshal([]byte(it.Results), &r.Results); err != nil {
		return nil, fmt.Errorf("store: results of run %s: %w", it.ID, err)
	}
	if it.Changes != "" {
		if err := json.Unmarshal([]byte(it.Changes), &r.Changes); err != nil {
			return nil, fmt.Errorf("store: changes of run %s: %w", it.ID, err)
		}
	}
	if it.Suspension != "" {
		r.Suspension = &runs.Suspension{}
		if err := json.Unmarshal([]byte(it.Suspension), r.Suspension); err != nil {
			return nil, fmt.Errorf("store: suspension of run %s: %w", it.ID, err)
		}
	}
	return r, nil
}

// CreateRun stores a new run with its audience edges. A run id already
// stored is a Conflict (a retried start must not overwrite progress).
func (s *Store) CreateRun(ctx context.Context, r *runs.Run, evs ...events.Event) error {
	it, err := toRunItem(r)
	if err != nil {
		return err
	}
	ti, err := s.put(it, notExists())
	if err != nil {
		return err
	}
	items := []types.TransactWriteItem{ti}
	uses, err := s.usageWrites(nil, r)
	if err != nil {
		return err
	}
	items = append(items, uses...)
	for i, a := range runAudiences(r) {
		ti, err := s.put(edgeItem{PK: runPK(r.Tenant, r.ID), SK: fmt.Sprintf("EDGE#%d", i), GSI1PK: runAudienceKey(r.Tenant, string(a)), GSI1SK: r.ID}, nil)
		if err != nil {
			return err
		}
		items = append(items, ti)
	}
	err = s.transact(ctx, items, evs)
	if conditionFailedAt(err, 0) {
		return apperr.Wrap(apperr.Conflict, "run_exists", "a run with this id already exists", err)
	}
	if err != nil {
		return fmt.Errorf("store.CreateRun %s: %w", r.ID, classify(err))
	}
	return nil
}

// GetRun reads a run; absent is NotFound.
func (s *Store) GetRun(ctx context.Context, tenant, id string) (*runs.Run, error) {
	if !validKeyPart(id) {
		return nil, apperr.NotFoundf("run not found")
	}
	it, err := getItem[runItem](ctx, s, "store.GetRun "+id, runPK(tenant, id), skRun, "run not found")
	if err != nil {
		return nil, err
	}
	return fromRunItem(it)
}

// RunCondition adds to the version check of UpdateRun.
type RunCondition struct {
	// NotResumedBy rejects the write when the run's last resume came from this event.
	NotResumedBy string
}

// UpdateRun writes next in place of the version expected and keeps the
// suspended-on-connection edge in step with its status: present exactly
// while the run is suspended. A stale version is PreconditionFailed.
func (s *Store) UpdateRun(ctx context.Context, prev, next *runs.Run, cond RunCondition, evs ...events.Event) error {
	it, err := toRunItem(next)
	if err != nil {
		return err
	}
	c := expression.Name("version").Equal(expression.Value(prev.Version))
	if cond.NotResumedBy != "" {
		c = c.And(expression.Name("resumeEvent").NotEqual(expression.Value(cond.NotResumedBy)).Or(expression.AttributeNotExists(expression.Name("resumeEvent"))))
	}
	ti, err := s.put(it, &c)
	if err != nil {
		return err
	}
	items := []types.TransactWriteItem{ti}
	uses, err := s.usageWrites(prev, next)
	if err != nil {
		return err
	}
	items = append(items, uses...)
	if prev.Status == runs.StatusRunning && next.Status == runs.StatusTerminated {
		ti, err := s.put(stopItem{PK: runPK(next.Tenant, next.ID), SK: skStop}, nil)
		if err != nil {
			return err
		}
		items = append(items, ti)
	}
	wasSusp := prev.Status == runs.StatusSuspended && prev.Suspension != nil
	isSusp := next.Status == runs.StatusSuspended && next.Suspension != nil
	if wasSusp && (!isSusp || prev.Suspension.Connection != next.Suspension.Connection) {
		ti, err := s.del(runPK(prev.Tenant, prev.ID), skSuspend, nil)
		if err != nil {
			return err
		}
		items = append(items, ti)
	}
	if isSusp && (!wasSusp || prev.Suspension.Connection != next.Suspension.Connection) {
		ti, err := s.put(s.suspendedEdge(next), nil)
		if err != nil {
			return err
		}
		items = append(items, ti)
	}
	err = s.transact(ctx, items, evs)
	if conditionFailedAt(err, 0) {
		return apperr.Wrap(apperr.PreconditionFailed, "run_changed", "the run changed concurrently", err)
	}
	if err != nil {
		return fmt.Errorf("store.UpdateRun %s: %w", next.ID, classify(err))
	}
	return nil
}

// RunStopped reports whether the run was terminated while running (its
// stop marker, written with the termination): a strongly consistent read
// of a small item, where reading the run would cost its size.
func (s *Store) RunStopped(ctx context.Context, tenant, id string) (bool, error) {
	_, err := getItem[stopItem](ctx, s, "store.RunStopped "+id, runPK(tenant, id), skStop, "not stopped")
	if apperr.Is(err, apperr.NotFound) {
		return false, nil
	}
	return err == nil, err
}

// PutStepResult writes the latest result of run's step i to the step's
// own item: one write of about a kilobyte per step (a body adds its size),
// no transaction. The run item's copy follows at run-step's next write of
// the run; until then RunOutputs reads the newer result from here.
func (s *Store) PutStepResult(ctx context.Context, tenant, runID string, i int, res runs.StepResult) error {
	b, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("store.PutStepResult: %w", err)
	}
	av, err := attributevalue.MarshalMap(outputItem{PK: runPK(tenant, runID), SK: outputSK(i), StepID: res.ID, Step: i, Result: string(b)})
	if err != nil {
		return fmt.Errorf("store.PutStepResult: %w", err)
	}
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: av}); err != nil {
		return fmt.Errorf("store.PutStepResult %s step %d: %w", runID, i, classify(err))
	}
	return nil
}

// RunOutputs reads the step items of r's steps from step from on (one
// Query) into r.Results: the response bodies, which the run item leaves
// out, and any result newer than the run item's copy (a run-step
// invocation writes the run item after its steps, or failed to).
func (s *Store) RunOutputs(ctx context.Context, r *runs.Run, from int) error {
	kc := expression.Key("pk").Equal(expression.Value(runPK(r.Tenant, r.ID))).And(expression.Key("sk").Between(expression.Value(outputSK(from)), expression.Value("OUT#~")))
	expr, err := expression.NewBuilder().WithKeyCondition(kc).Build()
	if err != nil {
		return fmt.Errorf("store.RunOutputs: %w", err)
	}
	in := &dynamodb.QueryInput{TableName: aws.String(s.table), KeyConditionExpression: expr.KeyCondition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(), ConsistentRead: aws.Bool(true)}
	for {
		out, err := s.db.Query(ctx, in)
		if err != nil {
			return fmt.Errorf("store.RunOutputs %s: %w", r.ID, classify(err))
		}
		var its []outputItem
		if err := attributevalue.UnmarshalListOfMaps(out.Items, &its); err != nil {
			return fmt.Errorf("store.RunOutputs %s: %w", r.ID, err)
		}
		for _, it := range its {
			if it.Step < 0 || it.Step >= len(r.Steps) || r.Steps[it.Step].ID != it.StepID {
				continue // a step since rebound or renumbered: not this run's step any more
			}
			var res runs.StepResult
			if err := json.Unmarshal([]byte(it.Result), &res); err != nil {
				return fmt.Errorf("store.RunOutputs %s step %d: %w", r.ID, it.Step, err)
			}
			for len(r.Results) <= it.Step {
				r.Results = append(r.Results, runs.StepResult{})
			}
			if cur := r.Results[it.Step]; cur.ID != res.ID || res.Attempts > cur.Attempts || res.Attempts == cur.Attempts && !res.At.Before(cur.At) {
				r.Results[it.Step] = res
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// RunListQuery selects runs of one tenant, like ListQuery for connections.
type RunListQuery struct {
	Tenant    string
	All       bool
	Audiences []RunAudience
	After     string
	Limit     int
	Keep      func(*runs.Run) bool
}

// ListRuns returns up to Limit runs in id order and the id to continue after.
func (s *Store) ListRuns(ctx context.Context, q RunListQuery) ([]*runs.Run, string, error) {
	var sources []*source
	if q.All {
		sources = []*source{tenantSource(tenantRunsKey(q.Tenant))}
	} else {
		for _, a := range slices.Compact(slices.Sorted(slices.Values(q.Audiences))) {
			sources = append(sources, audienceSource(runAudienceKey(q.Tenant, string(a))))
		}
	}
	get := func(ctx context.Context, ids []string) (map[string]*runs.Run, error) {
		return batchGet(ctx, s, "store.ListRuns", ids, func(id string) map[string]types.AttributeValue { return key(runPK(q.Tenant, id), skRun) },
			func(it runItem) (string, *runs.Run, error) {
				r, err := fromRunItem(it)
				if err != nil {
					return "", nil, err
				}
				return r.ID, r, nil
			})
	}
	return page(ctx, s, sources, q.After, q.Limit, get, q.Keep)
}

// SuspendedOn lists the ids of runs suspended on a connection (gsi1).
func (s *Store) SuspendedOn(ctx context.Context, tenant, conn string) ([]string, error) {
	src := audienceSource(suspendedOnKey(tenant, conn))
	var ids []string
	for {
		if err := src.fill(ctx, s, 100); err != nil {
			return nil, err
		}
		if len(src.buf) == 0 {
			return ids, nil
		}
		ids = append(ids, src.buf...)
		src.buf = nil
	}
}
