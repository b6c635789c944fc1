package workflow

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	awsevents "github.com/aws/aws-lambda-go/events"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/events"
	"github.com/connmgr/connmgr/shared/httpapi"
	"github.com/connmgr/connmgr/shared/identity"
	"github.com/connmgr/connmgr/shared/retry"
	"github.com/connmgr/connmgr/shared/runs"
	"github.com/connmgr/connmgr/shared/store"
)

// Routes registers the runs API on rt (the runs function's routes in template.yaml).
func (s *Service) Routes(rt *httpapi.Router) {
	rt.Handle("POST /runs", s.handleStart)
	rt.Handle("GET /runs", s.handleList)
	rt.Handle("GET /runs/{id}", s.handleGet)
	rt.Handle("POST /runs/{id}/resume", s.handleResume)
	rt.Handle("POST /runs/{id}/terminate", s.handleTerminate)
	rt.Handle("POST /runs/{id}/rebind", s.handleRebind)
	rt.Handle("GET /connections/{id}/usage", s.handleUsage)
	rt.Handle("POST /connections/{id}/replace", s.handleReplace)
}

// StartInput is the body of POST /runs.
type StartInput struct {
	WorkflowID string      `json:"workflowId"`
	Site       string      `json:"site"`
	Steps      []runs.Step `json:"steps"`
}

// Start creates a run owned by the caller and starts its execution; each
// step's connection must be one the run may use (422 otherwise).
func (s *Service) Start(ctx context.Context, caller identity.Caller, in StartInput) (*runs.Run, error) {
	if in.WorkflowID == "" || len(in.WorkflowID) > 128 || strings.ContainsAny(in.WorkflowID, "#\x00\r\n") {
		return nil, apperr.InvalidField("workflowId", "invalid_workflow_id", "workflowId is 1 to 128 characters")
	}
	site, err := identity.CanonicalPath(in.Site)
	if err != nil {
		return nil, apperr.InvalidField("site", "invalid_site", "site must be a site path such as /sites/hr")
	}
	if !caller.CanAccessSite(site) {
		return nil, apperr.E(apperr.Forbidden, "site_not_accessible", "you cannot access that site")
	}
	if err := runs.ValidateSteps(in.Steps); err != nil {
		return nil, err
	}
	if err := s.checkConnections(ctx, caller, site, in.Steps); err != nil {
		return nil, err
	}
	now := s.Now().UTC()
	run := &runs.Run{
		Tenant: caller.Tenant, ID: s.NewID(), WorkflowID: in.WorkflowID, Site: site, Owner: caller.User,
		Status: runs.StatusRunning, Steps: in.Steps, Results: []runs.StepResult{}, Version: 1, CreatedAt: now, UpdatedAt: now,
	}
	if err := s.Store.CreateRun(ctx, run); err != nil {
		return nil, fmt.Errorf("workflow.Start: %w", err)
	}
	// One call, not a loop: what a retry could cure (throttling, 5xx, a
	// lost connection) the Step Functions client's retryer has already
	// retried (shared/app), under the same execution name, so at most one
	// execution starts.
	startErr := s.Engine.Start(ctx, StepInput{Tenant: run.Tenant, RunID: run.ID})
	if startErr == nil {
		return run, nil
	}
	s.Log.ErrorContext(ctx, "run not started", slog.String("run", run.ID), slog.String("error", startErr.Error()))
	_ = s.Finish(ctx, FinishInput{Tenant: run.Tenant, RunID: run.ID, Status: runs.StatusFailed, Error: "engine_unavailable"})
	return nil, startErr
}

// Get returns a run the caller may see.
func (s *Service) Get(ctx context.Context, caller identity.Caller, id string) (*runs.Run, error) {
	r, err := s.Store.GetRun(ctx, caller.Tenant, id)
	if err != nil {
		return nil, err
	}
	if !runs.CanSee(caller, r) {
		return nil, apperr.NotFoundf("run not found")
	}
	return r, nil
}

// Resume resumes a suspended run the caller may act on; with ifMatch, only
// the version of the run the caller read (one suspension, one resume).
func (s *Service) Resume(ctx context.Context, caller identity.Caller, id string, ifMatch int64) (*runs.Run, error) {
	if _, err := s.Get(ctx, caller, id); err != nil {
		return nil, err
	}
	return s.resume(ctx, caller.Tenant, id, "", "resumed_by_user", ifMatch)
}

// Terminate ends a run that has not finished.
func (s *Service) Terminate(ctx context.Context, caller identity.Caller, id string, ifMatch int64) (*runs.Run, error) {
	if _, err := s.Get(ctx, caller, id); err != nil {
		return nil, err
	}
	var token string
	var wasRunning bool
	run, err := s.transition(ctx, caller.Tenant, id, store.RunCondition{}, func(r *runs.Run) ([]events.Event, error) {
		if ifMatch != 0 && r.Version != ifMatch {
			return nil, errStale
		}
		if r.Status.Terminal() {
			return nil, apperr.E(apperr.Conflict, "run_finished", "the run has already finished")
		}
		token, wasRunning = r.TaskToken, r.Status == runs.StatusRunning
		r.Status, r.TaskToken, r.Suspension, r.FinishedAt, r.Reason = runs.StatusTerminated, "", nil, s.Now().UTC(), "terminated_by_user"
		return []events.Event{s.event(events.RunTerminated, r, "terminated_by_user")}, nil
	})
	if err != nil {
		return nil, err
	}
	// The run is terminated; end its execution too (both are no-ops when
	// it already ended).
	if wasRunning {
		err = s.Engine.Stop(ctx, id)
	} else if err = s.Engine.Abort(ctx, token); apperr.Is(err, apperr.Conflict) {
		err = nil
	}
	if err != nil {
		s.Log.WarnContext(ctx, "terminated run's execution not ended; it ends at its next step or its timeout", slog.String("run", id), slog.String("error", err.Error()))
	}
	return run, nil
}

// ListFilter narrows GET /runs.
type ListFilter struct {
	Status runs.Status
	Cursor string
	Limit  int
}

// List returns the runs the caller may see, in id (start) order.
func (s *Service) List(ctx context.Context, caller identity.Caller, f ListFilter) ([]*runs.Run, string, error) {
	q := store.RunListQuery{Tenant: caller.Tenant, Limit: f.Limit}
	if f.Cursor != "" {
		after, err := f.cursorScope(caller).Decode(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		q.After = after
	}
	if caller.TenantAdmin {
		q.All = true
	} else {
		q.Audiences = append(q.Audiences, store.RunsOwnedBy(caller.User))
		for _, p := range append(slices.Clone(caller.OwnedSites), caller.SiteCollections...) {
			q.Audiences = append(q.Audiences, store.RunsUnder(p))
		}
	}
	q.Keep = func(r *runs.Run) bool { return runs.CanSee(caller, r) && (f.Status == "" || r.Status == f.Status) }
	list, next, err := s.Store.ListRuns(ctx, q)
	if err != nil {
		return nil, "", err
	}
	if next != "" {
		next = f.cursorScope(caller).Encode(next)
	}
	return list, next, nil
}

// cursorScope binds GET /runs cursors to the caller and the status filter
// (store.CursorScope says what that protects).
func (f ListFilter) cursorScope(caller identity.Caller) store.CursorScope {
	return store.CursorScope{Tenant: caller.Tenant, User: caller.User, Route: "GET /runs", Filters: map[string]string{"status": string(f.Status)}}
}

// RunView is a run as the API shows it.
type RunView struct {
	ID         string           `json:"id"`
	WorkflowID string           `json:"workflowId"`
	Site       string           `json:"site"`
	Owner      string           `json:"owner"`
	Status     runs.Status      `json:"status"`
	Reason     string           `json:"reason,omitempty"`
	Steps      []StepView       `json:"steps"`
	Suspension *runs.Suspension `json:"suspension,omitempty"`
	Changes    []runs.Change    `json:"changes,omitempty"`
	CreatedAt  time.Time        `json:"createdAt"`
	UpdatedAt  time.Time        `json:"updatedAt"`
	FinishedAt time.Time        `json:"finishedAt,omitzero"`
}

// StepView is a step's definition and its latest outcome.
type StepView struct {
	runs.Step
	Result *runs.StepResult `json:"result,omitempty"`
}

// NewRunView renders r (never its task token).
func NewRunView(r *runs.Run) RunView {
	v := RunView{ID: r.ID, WorkflowID: r.WorkflowID, Site: r.Site, Owner: r.Owner, Status: r.Status, Reason: r.Reason,
		Suspension: r.Suspension, Changes: r.Changes, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, FinishedAt: r.FinishedAt, Steps: make([]StepView, len(r.Steps))}
	for i, st := range r.Steps {
		v.Steps[i].Step = st
		if i < len(r.Results) && r.Results[i].ID != "" {
			res := r.Results[i]
			v.Steps[i].Result = &res
		}
	}
	return v
}

func (s *Service) handleStart(ctx context.Context, r *httpapi.Request) (httpapi.Response, error) {
	var in StartInput
	if err := r.DecodeJSON(&in); err != nil {
		return httpapi.Response{}, err
	}
	run, err := s.Start(ctx, r.Caller, in)
	if err != nil {
		return httpapi.Response{}, err
	}
	resp := runResponse(http.StatusAccepted, run)
	resp.Headers["Location"] = "/runs/" + run.ID
	return resp, nil
}

func runResponse(status int, run *runs.Run) httpapi.Response {
	resp := httpapi.JSON(status, NewRunView(run))
	resp.Headers = map[string]string{"ETag": httpapi.ETag(run.Version)}
	return resp
}

func (s *Service) handleGet(ctx context.Context, r *httpapi.Request) (httpapi.Response, error) {
	run, err := s.Get(ctx, r.Caller, r.Param("id"))
	if err != nil {
		return httpapi.Response{}, err
	}
	// Only this view shows the steps' response bodies; lists and other
	// answers carry each step's outcome without them.
	if err := s.Store.RunOutputs(ctx, run, 0); err != nil {
		return httpapi.Response{}, err
	}
	return runResponse(http.StatusOK, run), nil
}

func (s *Service) handleList(ctx context.Context, r *httpapi.Request) (httpapi.Response, error) {
	if err := r.OnlyQuery("status", "cursor", "limit"); err != nil {
		return httpapi.Response{}, err
	}
	limit, err := r.PageLimit()
	if err != nil {
		return httpapi.Response{}, err
	}
	f := ListFilter{Status: runs.Status(r.Query("status")), Cursor: r.Query("cursor"), Limit: limit}
	if f.Status != "" && !slices.Contains(runs.Statuses, f.Status) {
		return httpapi.Response{}, apperr.InvalidField("status", "invalid_status", "status must be running, suspended, succeeded, failed or terminated")
	}
	list, next, err := s.List(ctx, r.Caller, f)
	if err != nil {
		return httpapi.Response{}, err
	}
	items := make([]RunView, len(list))
	for i, run := range list {
		items[i] = NewRunView(run)
	}
	return httpapi.Page(items, next), nil
}

func (s *Service) handleResume(ctx context.Context, r *httpapi.Request) (httpapi.Response, error) {
	ifMatch, err := r.IfMatch()
	if err != nil {
		return httpapi.Response{}, err
	}
	run, err := s.Resume(ctx, r.Caller, r.Param("id"), ifMatch)
	if err != nil {
		return httpapi.Response{}, err
	}
	return runResponse(http.StatusAccepted, run), nil
}

func (s *Service) handleTerminate(ctx context.Context, r *httpapi.Request) (httpapi.Response, error) {
	ifMatch, err := r.IfMatch()
	if err != nil {
		return httpapi.Response{}, err
	}
	run, err := s.Terminate(ctx, r.Caller, r.Param("id"), ifMatch)
	if err != nil {
		return httpapi.Response{}, err
	}
	return runResponse(http.StatusAccepted, run), nil
}

// Fan-out limits of the automatic resume: well under Step Functions'
// SendTaskSuccess quota (bucket 3,000, refill 500/s in the largest Regions).
const (
	resumeConcurrency = 8
	resumeInterval    = 10 * time.Millisecond // ≤ 100 resumes/s per invocation
)

// resumeThrottledRetry retries a run whose resume Step Functions refused
// after the SDK's attempts (throttled by a mass resume): the run is put
// back suspended, and the event's redeliveries, three in all, may be spent
// before the bucket refills, leaving it suspended for good. The waits stay
// well inside the function's 300 s timeout.
var resumeThrottledRetry = retry.Policy{Base: time.Second, Max: 10 * time.Second, MaxWait: 90 * time.Second}

// ResumeOnEvent is the resume-runs function: on Connection Updated, resume
// every run suspended on that connection. A redelivered event resumes
// nothing twice; runs another path resumed are skipped.
func (s *Service) ResumeOnEvent(ctx context.Context, ev awsevents.EventBridgeEvent) error {
	if !s.AutoResume {
		return nil
	}
	var d events.ConnectionDetail
	if err := json.Unmarshal(ev.Detail, &d); err != nil || d.Tenant == "" || d.ConnectionID == "" || d.EventID == "" {
		s.Log.WarnContext(ctx, "ignoring a malformed connection event", slog.String("detailType", ev.DetailType))
		return nil
	}
	// Credentials, settings or enabling fix any suspension on the
	// connection; availability or owners changes can only fix a run that
	// was not allowed to use it (not_usable): the others stay suspended.
	var onlyIf func(r *runs.Run) error
	if ev.DetailType == events.ConnectionUpdated {
		onlyIf = func(r *runs.Run) error {
			if r.Suspension == nil || !fixes(r.Suspension.Reason, d.Changes) {
				return apperr.E(apperr.Conflict, "not_applicable", "the change does not concern this suspension")
			}
			return nil
		}
	}
	ids, err := s.Store.SuspendedOn(ctx, d.Tenant, d.ConnectionID)
	if err != nil {
		return fmt.Errorf("workflow.ResumeOnEvent: %w", err) // EventBridge retries the delivery
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		resumed  int
		failures []string
	)
	sem := make(chan struct{}, resumeConcurrency)
	tick := time.NewTicker(resumeInterval)
	defer tick.Stop()
	for _, id := range ids {
		<-tick.C
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			err := resumeThrottledRetry.Do(ctx, func(int) (bool, error) {
				_, err := s.resumeWith(ctx, d.Tenant, id, d.EventID, "connection_updated", 0, onlyIf)
				return apperr.Is(err, apperr.Unavailable), err
			})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				resumed++
			case apperr.Is(err, apperr.Conflict):
				// Resumed by another path, or by this event already: a no-op.
			default:
				failures = append(failures, id)
				s.Log.WarnContext(ctx, "run not resumed", slog.String("run", id), slog.String("error", err.Error()))
			}
		}()
	}
	wg.Wait()
	s.Log.InfoContext(ctx, "connection updated: suspended runs resumed", slog.String("tenant", d.Tenant), slog.String("connection", d.ConnectionID),
		slog.String("eventId", d.EventID), slog.Int("suspended", len(ids)), slog.Int("resumed", resumed), slog.Int("failed", len(failures)))
	if len(failures) > 0 {
		return fmt.Errorf("workflow.ResumeOnEvent: %d runs not resumed", len(failures))
	}
	return nil
}

// ReasonNotUsable is the suspension reason of a run whose owner may not
// use the connection at its site (the resolver's not_usable).
const ReasonNotUsable = "not_usable"
