package workflow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/events"
	"github.com/connmgr/connmgr/shared/httpaction"
	"github.com/connmgr/connmgr/shared/logging"
	"github.com/connmgr/connmgr/shared/resolver"
	"github.com/connmgr/connmgr/shared/retry"
	"github.com/connmgr/connmgr/shared/runs"
	"github.com/connmgr/connmgr/shared/store"
)

// Store is the persistence of runs.
type Store interface {
	CreateRun(ctx context.Context, r *runs.Run, evs ...events.Event) error
	GetRun(ctx context.Context, tenant, id string) (*runs.Run, error)
	// RunOutputs fills, from step from on, the response bodies GetRun
	// leaves out and any step result newer than the run item's.
	RunOutputs(ctx context.Context, r *runs.Run, from int) error
	// PutStepResult writes a step's latest result to its own item.
	PutStepResult(ctx context.Context, tenant, runID string, i int, res runs.StepResult) error
	// RunStopped reports whether the run was terminated while running.
	RunStopped(ctx context.Context, tenant, id string) (bool, error)
	Usage(ctx context.Context, tenant, conn, after string, limit int, keep func(store.UsageItem) bool) ([]store.UsageItem, int, string, error)
	UpdateRun(ctx context.Context, prev, next *runs.Run, cond store.RunCondition, evs ...events.Event) error
	ListRuns(ctx context.Context, q store.RunListQuery) ([]*runs.Run, string, error)
	SuspendedOn(ctx context.Context, tenant, conn string) ([]string, error)
	Get(ctx context.Context, tenant, id string) (*store.Record, error)
	// Audit lists a connection's audit entries, newest first.
	Audit(ctx context.Context, tenant, id, before string, limit int) ([]connection.AuditEntry, string, error)
}

// Engine runs executions (StepFunctions in AWS and against the local engine).
type Engine interface {
	Start(ctx context.Context, in StepInput) error
	Resume(ctx context.Context, token string) error
	Abort(ctx context.Context, token string) error
	Stop(ctx context.Context, runID string) error
}

// Credentials resolves a step's credential (the resolve function).
type Credentials interface {
	Resolve(ctx context.Context, in resolver.Input) (*resolver.Credential, error)
}

// Action performs an http.request step.
type Action interface {
	Do(ctx context.Context, req httpaction.Request) (httpaction.Result, error)
}

// Events publishes the events a committed transition wrote to the outbox.
type Events interface {
	Flush(ctx context.Context, evs []events.Event)
}

// Deps are the Service's collaborators; only the ones a function uses need be set.
type Deps struct {
	Store       Store
	Engine      Engine
	Credentials Credentials
	Action      Action
	Events      Events
	Now         func() time.Time
	NewID       func() string
	Log         *slog.Logger
	// AutoResume turns the resume of runs on Connection Updated on or off.
	AutoResume bool
	// StepReserve is how much of an invocation one more step needs
	// (0: DefaultStepReserve).
	StepReserve time.Duration
}

// Service is the workflow runs service.
type Service struct {
	Deps
}

// New returns a Service.
func New(d Deps) *Service { return &Service{Deps: d} }

// transitionRetry bounds re-reads when a transition races another writer
// (a conditional-check failure, which the SDK does not retry).
var transitionRetry = retry.Policy{Attempts: 4, Base: 10 * time.Millisecond, Max: 100 * time.Millisecond}

// transition applies change to the run as stored and writes it conditioned
// on the version read, re-reading after a lost race. change returns the
// events to emit, or errNoChange to stop without writing.
func (s *Service) transition(ctx context.Context, tenant, id string, cond store.RunCondition, change func(r *runs.Run) ([]events.Event, error)) (*runs.Run, error) {
	return s.transitionFrom(ctx, &runs.Run{Tenant: tenant, ID: id}, cond, change)
}

// transitionFrom is transition starting from known, the run as this
// invocation read or wrote it (Version set): its first attempt saves a
// read, and a lost race re-reads. A known run without a Version is read.
func (s *Service) transitionFrom(ctx context.Context, known *runs.Run, cond store.RunCondition, change func(r *runs.Run) ([]events.Event, error)) (*runs.Run, error) {
	var out *runs.Run
	err := transitionRetry.Do(ctx, func(attempt int) (bool, error) {
		prev := known
		if attempt > 1 || known.Version == 0 {
			var err error
			if prev, err = s.Store.GetRun(ctx, known.Tenant, known.ID); err != nil {
				return false, err
			}
		}
		next := clone(prev)
		evs, err := change(next)
		if err != nil {
			out = prev
			return false, err
		}
		next.Version = prev.Version + 1
		next.UpdatedAt = s.Now().UTC()
		err = s.Store.UpdateRun(ctx, prev, next, cond, evs...)
		if err == nil {
			s.Events.Flush(ctx, evs)
			out = next
		}
		return apperr.Is(err, apperr.PreconditionFailed), err
	})
	return out, err
}

var errNoChange = errors.New("no change")

var errStale = apperr.E(apperr.PreconditionFailed, "version_mismatch", "the run changed since you read it; read it again")

func clone(r *runs.Run) *runs.Run {
	c := *r
	c.Steps = slices.Clone(r.Steps)
	c.Results = slices.Clone(r.Results)
	c.Changes = slices.Clone(r.Changes)
	if r.Suspension != nil {
		s := *r.Suspension
		c.Suspension = &s
	}
	return &c
}

func (s *Service) event(detailType string, r *runs.Run, reason string) events.Event {
	return events.ForRun(detailType, r, s.NewID(), reason, s.Now())
}

// StepOutput is what RunStep's invocation came to: ids and codes only.
// The state machine sees Outcome "done" as the task's result; every other
// outcome reaches it as a function error (see RunContinues).
type StepOutput struct {
	Outcome    string `json:"outcome"` // continue, done, suspend, fail
	Step       int    `json:"step"`
	Connection string `json:"connection,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

// RunContinues, RunSuspended and StepFailed are RunStep's answers other
// than a finished run, as function errors the state machine catches by
// name (a Lambda function error's type is the Go type's name). A run whose
// steps succeed thus ends at RunStep itself: one state transition for a
// whole run, where a Choice on a result would cost one more per
// invocation and a final state one more per run. Lambda's Errors metric
// counts these answers too (suspensions and continuations are rare).
// Their messages reach the execution history: ids and codes only.
type (
	// RunContinues: the run goes on at Step in a new invocation (this
	// one's time ran out, or the step is to be retried after a wait).
	RunContinues struct{ Step int }
	// RunSuspended: the step's authentication failed; the run waits on a
	// task token (the Suspend state reads the step from the run).
	RunSuspended struct {
		Step       int
		Connection string
		Reason     string
	}
	// StepFailed: the step failed for good, or the run cannot go on; the
	// run records Reason (FinalReason).
	StepFailed struct {
		Step   int
		Reason string
	}
)

func (e *RunContinues) Error() string { return fmt.Sprintf("the run continues at step %d", e.Step) }
func (e *RunSuspended) Error() string {
	return fmt.Sprintf("step %d failed to authenticate with connection %s (%s): the run suspends", e.Step, e.Connection, e.Reason)
}
func (e *StepFailed) Error() string { return fmt.Sprintf("step %d failed: %s", e.Step, e.Reason) }

// StepTransient is RunStep's function error for a failure worth retrying;
// the state machine retries it by this name with backoff.
type StepTransient struct{ Reason string }

func (e *StepTransient) Error() string { return "transient step failure: " + e.Reason }

// TaskUnavailable is a task's function error for a failure of the run
// store (or the Step Functions API) that may pass: throttling, an outage, a
// race lost to other writers every time. The state machine retries it by
// this name with backoff; once the retries are exhausted, MarkFailed
// records task_unavailable. Reason is the failure's code; the cause is
// logged, never returned (a function error reaches the execution history).
type TaskUnavailable struct{ Reason string }

func (e *TaskUnavailable) Error() string { return "workflow task unavailable: " + e.Reason }

// TooManySuspensions is Suspend's function error for a run that was
// suspended runs.MaxSuspensions times already: the state machine routes it
// by this name to MarkTerminated, which records too_many_suspensions.
type TooManySuspensions struct{ Suspensions int }

func (e *TooManySuspensions) Error() string {
	return fmt.Sprintf("the run was suspended %d times, the most a run may be", e.Suspensions)
}

// taskError classifies a failure of the run store or the Step Functions API
// in a task: the cause goes to the log, the state machine gets a
// TaskUnavailable to retry.
func (s *Service) taskError(ctx context.Context, op, tenant, runID string, err error) error {
	code := apperr.As(err).Code
	s.Log.WarnContext(ctx, op+" failed; the state machine retries the task", slog.String("tenant", tenant), slog.String("run", runID),
		slog.String("code", code), slog.String("error", err.Error()))
	return &TaskUnavailable{Reason: code}
}

// DefaultStepReserve is the longest one step may take: the resolve
// function's timeout (30 s in template.yaml), the action's
// (httpaction.DefaultTimeout) and the write of its outcome. RunStep starts
// another step in the same invocation only while more than this remains
// before the invocation's deadline, so a step it chose to start never meets
// the Lambda timeout (Sandbox.Timedout fails the run: the step's action may
// have taken effect). With run-step's 60 s timeout, an invocation starts
// steps for its first 15 s.
const DefaultStepReserve = 30*time.Second + httpaction.DefaultTimeout + 5*time.Second

// RunStep is the state machine's task: it runs the run's steps (runSteps)
// and answers a finished run with its output, anything else with the
// error the state machine catches by name (RunContinues, RunSuspended,
// StepFailed; StepTransient and TaskUnavailable it retries).
func (s *Service) RunStep(ctx context.Context, in StepInput) (StepOutput, error) {
	out, err := s.runSteps(ctx, in)
	if err != nil {
		return StepOutput{}, err
	}
	switch out.Outcome {
	case "done":
		return out, nil
	case "continue":
		return StepOutput{}, &RunContinues{Step: out.Step}
	case "suspend":
		return StepOutput{}, &RunSuspended{Step: out.Step, Connection: out.Connection, Reason: out.Reason}
	}
	return StepOutput{}, &StepFailed{Step: out.Step, Reason: out.Reason}
}

// runSteps executes the run's steps from the one it stands at on, one after
// another in this invocation while they succeed and time remains (see
// DefaultStepReserve), and says what the state machine does next: it
// returns only to suspend, to wait before retrying a transient failure, to
// fail, when time runs out, or with the run finished. A run that succeeds
// is recorded as such here (its Run Succeeded event with it), so the
// execution ends with this task.
//
// Each step's result is written to an item of its own as the step ends
// (one small write); the run item is written once, as the invocation
// ends, in a transaction with what the run's status change brings. Before
// each further step the run's stop marker is read (one read unit), so a
// run terminated meanwhile runs no more steps. An invocation whose last
// write failed (TaskUnavailable, then retried) left its results in the
// step items: the retry reads them and goes on after the steps that
// succeeded.
//
// The state machine's retries of a step are per task entry
// ($$.State.RetryCount, in.Attempt): a transient failure of the first step
// of an entry is a StepTransient error, retried with backoff; one after
// steps succeeded in this invocation answers continue at that step, so the
// step gets an entry (and retry count) of its own, and that entry's first
// attempt fails at once (the failure is recorded) to have the state
// machine wait before the step runs again. A step's attempts and waits are
// thus the same whether it ran first in its invocation or not.
func (s *Service) runSteps(ctx context.Context, in StepInput) (StepOutput, error) {
	ctx = logging.WithExecution(ctx, in.RunID) // executions are named by run id
	run, err := s.Store.GetRun(ctx, in.Tenant, in.RunID)
	if apperr.Is(err, apperr.NotFound) {
		// No record to run or to record in: the run fails, MarkFailed finds
		// nothing to update.
		s.Log.ErrorContext(ctx, "step of a run that does not exist", slog.String("tenant", in.Tenant), slog.String("run", in.RunID))
		return StepOutput{Outcome: "fail", Reason: "run_not_found"}, nil
	}
	if err != nil {
		return StepOutput{}, s.taskError(ctx, "workflow.RunStep: read the run", in.Tenant, in.RunID, err)
	}
	switch {
	case run.Status == runs.StatusSucceeded:
		// A retry of the invocation that recorded the success (its answer
		// was lost): the run is done.
		return StepOutput{Outcome: "done", Step: len(run.Steps)}, nil
	case run.Status != runs.StatusRunning:
		return StepOutput{Step: run.Current, Outcome: "fail", Reason: "run_not_running"}, nil
	case run.Current < 0 || run.Current > len(run.Steps):
		return StepOutput{Step: run.Current, Outcome: "fail", Reason: "no_such_step"}, nil
	}
	if err := s.Store.RunOutputs(ctx, run, run.Current); err != nil {
		return StepOutput{}, s.taskError(ctx, "workflow.RunStep: read the steps' results", in.Tenant, in.RunID, err)
	}
	// Steps run by an invocation whose write of the run was lost are not
	// run again; their results go into this invocation's write.
	ran := map[int]runs.StepResult{}
	first := run.Current
	for first < len(run.Steps) && succeeded(run, first) {
		ran[first] = run.Results[first]
		first++
	}
	if first == len(run.Steps) {
		return s.record(ctx, in, run, ran, StepOutput{Outcome: "done", Step: first})
	}
	if in.Attempt == 0 && first < len(run.Results) && run.Results[first].ID == run.Steps[first].ID && run.Results[first].Outcome == runs.OutcomeTransient {
		// The invocation before failed this step transiently after others
		// succeeded: the state machine waits before it runs again.
		return StepOutput{}, &StepTransient{Reason: run.Results[first].Reason}
	}
	for i := first; ; i++ {
		if i > first {
			stopped, err := s.Store.RunStopped(ctx, in.Tenant, in.RunID)
			if err != nil {
				return StepOutput{}, s.taskError(ctx, "workflow.RunStep: read the run's stop marker", in.Tenant, in.RunID, err)
			}
			if stopped {
				// Terminated meanwhile: no further step runs. The results
				// of this invocation's steps stay in their own items.
				s.Log.InfoContext(ctx, "run terminated while running: no further step", slog.String("run", in.RunID))
				return StepOutput{Step: i, Outcome: "fail", Reason: "run_not_running"}, nil
			}
		}
		step := run.Steps[i]
		res := s.attempt(ctx, run, step)
		prevAttempts := 0
		if i < len(run.Results) && run.Results[i].ID == step.ID {
			prevAttempts = run.Results[i].Attempts
		}
		res.ID, res.Attempts, res.At = step.ID, prevAttempts+1, s.Now().UTC()
		if err := s.Store.PutStepResult(ctx, in.Tenant, in.RunID, i, res); err != nil {
			// The action ran but its outcome is not recorded: the retry
			// runs the step again (at least once, as with Lambda's own
			// retries).
			return StepOutput{}, s.taskError(ctx, "workflow.RunStep: record the outcome", in.Tenant, in.RunID, err)
		}
		ran[i] = res
		s.Log.InfoContext(ctx, "step ran", slog.String("tenant", in.Tenant), slog.String("run", in.RunID), slog.String("step", step.ID),
			slog.String("outcome", string(res.Outcome)), slog.Int("status", res.Status), slog.String("reason", res.Reason))
		out := StepOutput{Step: i, Connection: step.Connection}
		switch res.Outcome {
		case runs.OutcomeSucceeded:
			if i+1 < len(run.Steps) && s.timeForAnother(ctx) {
				continue
			}
			out.Outcome, out.Step = "continue", i+1
			if i+1 == len(run.Steps) {
				out.Outcome = "done"
			}
		case runs.OutcomeAuthFailed:
			out.Outcome, out.Reason = "suspend", res.Reason
		case runs.OutcomeTransient:
			out.Outcome, out.Reason = outcomeTransient, res.Reason
		default:
			out.Outcome, out.Reason = "fail", res.Reason
		}
		out, err := s.record(ctx, in, run, ran, out)
		if err == nil && out.Outcome == outcomeTransient {
			if i == first {
				return StepOutput{}, &StepTransient{Reason: out.Reason}
			}
			out.Outcome = "continue"
		}
		return out, err
	}
}

// outcomeTransient is a transient failure's outcome inside runSteps, never
// answered to the state machine.
const outcomeTransient = "transient"

// succeeded reports whether run's step i has a successful result.
func succeeded(run *runs.Run, i int) bool {
	return i < len(run.Results) && run.Results[i].ID == run.Steps[i].ID && run.Results[i].Outcome == runs.OutcomeSucceeded
}

// timeForAnother says whether another step fits before the invocation's
// deadline (real time, as Lambda's deadline is).
func (s *Service) timeForAnother(ctx context.Context) bool {
	deadline, ok := ctx.Deadline()
	reserve := s.StepReserve
	if reserve <= 0 {
		reserve = DefaultStepReserve
	}
	return !ok || time.Until(deadline) > reserve
}

// record writes the run item as this invocation leaves it: the results of
// the steps it ran, the step it stands at (out.Step) and, when out is
// done, the run's success and its event. run is the run as the
// invocation read it.
func (s *Service) record(ctx context.Context, in StepInput, run *runs.Run, ran map[int]runs.StepResult, out StepOutput) (StepOutput, error) {
	_, err := s.transitionFrom(ctx, run, store.RunCondition{}, func(r *runs.Run) ([]events.Event, error) {
		if r.Status != runs.StatusRunning {
			return nil, errNoChange
		}
		for i, res := range ran {
			for len(r.Results) <= i {
				r.Results = append(r.Results, runs.StepResult{})
			}
			r.Results[i] = res
		}
		r.Current = out.Step
		if out.Outcome == "fail" || out.Outcome == outcomeTransient {
			r.Reason = out.Reason
		}
		if out.Outcome != "done" {
			return nil, nil
		}
		r.Status, r.FinishedAt, r.TaskToken, r.Suspension = runs.StatusSucceeded, s.Now().UTC(), "", nil
		r.Reason = FinalReason(runs.StatusSucceeded, "", r.Reason)
		return []events.Event{s.event(events.RunSucceeded, r, r.Reason)}, nil
	})
	if errors.Is(err, errNoChange) {
		return StepOutput{Step: out.Step, Outcome: "fail", Connection: out.Connection, Reason: "run_not_running"}, nil
	}
	if err != nil {
		// The steps' results are in their own items: the retry goes on
		// after the ones that succeeded.
		return StepOutput{}, s.taskError(ctx, "workflow.RunStep: record the run", in.Tenant, in.RunID, err)
	}
	return out, nil
}

// attempt resolves the step's credential and performs its request.
func (s *Service) attempt(ctx context.Context, run *runs.Run, step runs.Step) runs.StepResult {
	cred, err := s.Credentials.Resolve(ctx, resolver.Input{
		Tenant: run.Tenant, ConnectionID: step.Connection, RunID: run.ID, StepID: step.ID,
		WorkflowID: run.WorkflowID, Site: run.Site, RunOwner: run.Owner,
	})
	if err != nil {
		f := resolver.AsFailure(err)
		switch {
		case f.AuthFailure:
			return runs.StepResult{Outcome: runs.OutcomeAuthFailed, Reason: string(f.Code)}
		case f.Retryable:
			return runs.StepResult{Outcome: runs.OutcomeTransient, Reason: string(f.Code)}
		}
		return runs.StepResult{Outcome: runs.OutcomeFailed, Reason: string(f.Code)}
	}
	in := step.Input
	res, err := s.Action.Do(ctx, httpaction.Request{BaseURL: cred.BaseURL, Method: in.Method, Path: in.Path, Query: in.Query, Headers: in.Headers, Body: in.Body, Credential: cred})
	if err != nil {
		return runs.StepResult{Outcome: runs.OutcomeFailed, Reason: "invalid_base_url"}
	}
	return runs.StepResult{Outcome: runs.Outcome(res.Outcome), Reason: res.Reason, Status: res.Status,
		Headers: runs.KeptHeaders(res.Headers), Body: res.Body, Withheld: res.Withheld}
}

// SuspendInput is the suspension task's payload. TaskToken is a secret.
// The step, its connection and the reason are the run's: RunStep recorded
// them (the step it stands at and that step's result) before it answered
// RunSuspended.
type SuspendInput struct {
	Tenant    string `json:"tenant"`
	RunID     string `json:"runId"`
	TaskToken string `json:"taskToken"`
	// Attempt is the task's $$.State.RetryCount: 0, then 1, 2, ... when the
	// state machine retries the task after a Lambda service error.
	Attempt int `json:"attempt"`
}

// LogValue keeps the token out of any log.
func (in SuspendInput) LogValue() slog.Value {
	return slog.GroupValue(slog.String("tenant", in.Tenant), slog.String("run", in.RunID), slog.Int("attempt", in.Attempt))
}

// errNothingToSuspendOn: the run does not stand at a step whose
// authentication failed; the state machine fails it.
var errNothingToSuspendOn = errors.New("workflow.Suspend: the run does not stand at a step that failed to authenticate")

// Suspend records the task token and marks the run suspended on the step
// it stands at for at most runs.SuspensionTimeout. If the connection
// changed after the step failed (a fix that raced the suspension), the run
// resumes at once.
//
// A retried attempt of the task (in.Attempt above the one recorded) finds
// the run suspended by the attempt before it, whose token died with it: it
// records its own token and the suspension stands, counted once. A run
// suspended runs.MaxSuspensions times is not suspended again: Suspend
// answers TooManySuspensions and the state machine terminates the run.
func (s *Service) Suspend(ctx context.Context, in SuspendInput) error {
	ctx = logging.WithExecution(ctx, in.RunID)
	if in.TaskToken == "" {
		return errors.New("workflow.Suspend: no task token")
	}
	now := s.Now().UTC()
	var failedAt time.Time
	retried := false
	run, err := s.transition(ctx, in.Tenant, in.RunID, store.RunCondition{}, func(r *runs.Run) ([]events.Event, error) {
		if r.Status == runs.StatusSuspended && in.Attempt > r.SuspendAttempt {
			retried = true
			r.TaskToken, r.SuspendAttempt = in.TaskToken, in.Attempt
			return nil, nil
		}
		if r.Status != runs.StatusRunning {
			return nil, errNoChange
		}
		i := r.Current
		if i < 0 || i >= len(r.Steps) || i >= len(r.Results) || r.Results[i].ID != r.Steps[i].ID || r.Results[i].Outcome != runs.OutcomeAuthFailed {
			return nil, errNothingToSuspendOn
		}
		if r.Suspensions >= runs.MaxSuspensions {
			return nil, &TooManySuspensions{Suspensions: r.Suspensions}
		}
		res := r.Results[i]
		failedAt = res.At
		r.Status, r.TaskToken = runs.StatusSuspended, in.TaskToken
		r.Suspensions, r.SuspendAttempt = r.Suspensions+1, in.Attempt
		r.Suspension = &runs.Suspension{Connection: r.Steps[i].Connection, Reason: res.Reason, SuspendedAt: now, TerminatesAt: now.Add(runs.SuspensionTimeout)}
		return []events.Event{s.event(events.RunSuspended, r, res.Reason)}, nil
	})
	var tooMany *TooManySuspensions
	switch {
	case errors.As(err, &tooMany):
		s.Log.WarnContext(ctx, "run suspended too many times: it terminates", slog.Any("input", in), slog.Int("suspensions", tooMany.Suspensions))
		return tooMany
	case errors.Is(err, errNothingToSuspendOn):
		s.Log.ErrorContext(ctx, "suspension of a run that stands at no failed authentication", slog.Any("input", in), slog.Int("step", run.Current))
		return err
	case errors.Is(err, errNoChange) && run.Status.Terminal():
		// Terminated meanwhile: the wait is pointless, end it.
		s.Log.InfoContext(ctx, "suspension of a run no longer running", slog.Any("input", in), slog.String("status", string(run.Status)))
		if aerr := s.Engine.Abort(ctx, in.TaskToken); aerr != nil && !errors.Is(aerr, ErrTokenGone) {
			return s.taskError(ctx, "workflow.Suspend: end the wait", in.Tenant, in.RunID, aerr)
		}
		return nil
	case errors.Is(err, errNoChange):
		// Suspended by a later attempt of this task already: this attempt's
		// token is dead, the run waits on the recorded one.
		s.Log.WarnContext(ctx, "stale suspension attempt ignored", slog.Any("input", in), slog.Int("recordedAttempt", run.SuspendAttempt))
		return nil
	case apperr.Is(err, apperr.NotFound):
		return fmt.Errorf("workflow.Suspend %s: %w", in.RunID, err)
	case err != nil:
		return s.taskError(ctx, "workflow.Suspend: record the suspension", in.Tenant, in.RunID, err)
	}
	sus := run.Suspension
	if retried {
		s.Log.InfoContext(ctx, "retried suspension recorded its token", slog.Any("input", in), slog.Int("suspensions", run.Suspensions))
		if run.Current < len(run.Results) {
			failedAt = run.Results[run.Current].At
		}
	} else {
		s.Log.InfoContext(ctx, "run suspended", slog.Any("input", in), slog.Int("step", run.Current), slog.String("connection", sus.Connection),
			slog.String("reason", sus.Reason), slog.Time("terminatesAt", sus.TerminatesAt), slog.Int("suspensions", run.Suspensions))
	}
	if s.fixedSince(ctx, in.Tenant, sus.Connection, sus.Reason, failedAt) {
		if _, err := s.resume(ctx, in.Tenant, in.RunID, "", "connection_changed_meanwhile", 0); err != nil && !apperr.Is(err, apperr.Conflict) {
			s.Log.WarnContext(ctx, "immediate resume failed; the run stays suspended", slog.String("run", in.RunID), slog.String("error", err.Error()))
		}
	}
	return nil
}

// resume moves a suspended run back to running and completes its wait. by
// is the id of the event that asked (empty for a person); the same event
// never resumes a run twice.
func (s *Service) resume(ctx context.Context, tenant, id, by, reason string, ifMatch int64) (*runs.Run, error) {
	return s.resumeWith(ctx, tenant, id, by, reason, ifMatch, nil)
}

// resumeWith is resume with before applied to the suspended run in the
// same write (a rebind); an error from before stops it, nothing written.
func (s *Service) resumeWith(ctx context.Context, tenant, id, by, reason string, ifMatch int64, before func(r *runs.Run) error) (*runs.Run, error) {
	var token string
	var prev runs.Run
	run, err := s.transition(ctx, tenant, id, store.RunCondition{NotResumedBy: by}, func(r *runs.Run) ([]events.Event, error) {
		if ifMatch != 0 && r.Version != ifMatch {
			return nil, errStale
		}
		if r.Status != runs.StatusSuspended {
			return nil, apperr.E(apperr.Conflict, "run_not_suspended", "the run is not suspended")
		}
		if by != "" && r.ResumeEvent == by {
			return nil, apperr.E(apperr.Conflict, "already_resumed", "this event already resumed the run")
		}
		prev = *r
		if before != nil {
			if err := before(r); err != nil {
				return nil, err
			}
		}
		token = r.TaskToken
		announced := r.ResumeAnnounced
		r.Status, r.TaskToken, r.Suspension, r.ResumeAnnounced = runs.StatusRunning, "", nil, false
		if by != "" {
			r.ResumeEvent = by
		}
		if announced {
			return nil, nil // an earlier, refused resume published Run Resumed
		}
		return []events.Event{s.event(events.RunResumed, r, reason)}, nil
	})
	if apperr.Is(err, apperr.PreconditionFailed) && !errors.Is(err, errStale) {
		// Lost every race: someone else changed the run each time.
		return nil, apperr.E(apperr.Conflict, "run_not_suspended", "the run changed concurrently")
	}
	if err != nil {
		return nil, err
	}
	if err := s.Engine.Resume(ctx, token); err != nil {
		if errors.Is(err, ErrTokenGone) {
			// The wait ended (timed out) as we resumed: the state machine
			// terminates the run; nothing to undo.
			s.Log.InfoContext(ctx, "resume found the suspension already ended", slog.String("tenant", tenant), slog.String("run", id))
			return run, nil
		}
		// The execution still waits: put the run back so a later resume can
		// try again.
		if _, rerr := s.transition(ctx, tenant, id, store.RunCondition{}, func(r *runs.Run) ([]events.Event, error) {
			if r.Status != runs.StatusRunning || r.Version != run.Version {
				return nil, errNoChange
			}
			r.Status, r.TaskToken, r.Suspension, r.ResumeEvent = runs.StatusSuspended, token, prev.Suspension, prev.ResumeEvent
			// Run Resumed is out: the next resume must not publish another.
			r.ResumeAnnounced = true
			r.Steps, r.Changes = prev.Steps, prev.Changes
			return nil, nil
		}); rerr != nil && !errors.Is(rerr, errNoChange) {
			s.Log.ErrorContext(ctx, "run left running without a resumed execution", slog.String("run", id), slog.String("error", rerr.Error()))
		}
		return nil, err
	}
	return run, nil
}

// FinishInput is the payload of the final tasks.
type FinishInput struct {
	Tenant string      `json:"tenant"`
	RunID  string      `json:"runId"`
	Status runs.Status `json:"status"`
	Error  string      `json:"error,omitempty"`
}

// Finish gives a run its final status once; a run already finished (for
// example terminated by a user) keeps its status, so retries and races
// emit one event.
func (s *Service) Finish(ctx context.Context, in FinishInput) error {
	ctx = logging.WithExecution(ctx, in.RunID)
	if !in.Status.Terminal() {
		return fmt.Errorf("workflow.Finish: %q is not a final status", in.Status)
	}
	_, err := s.transition(ctx, in.Tenant, in.RunID, store.RunCondition{}, func(r *runs.Run) ([]events.Event, error) {
		if r.Status.Terminal() {
			return nil, errNoChange
		}
		r.Status, r.FinishedAt, r.TaskToken, r.Suspension = in.Status, s.Now().UTC(), "", nil
		r.Reason = FinalReason(in.Status, in.Error, r.Reason)
		dt := map[runs.Status]string{runs.StatusSucceeded: events.RunSucceeded, runs.StatusFailed: events.RunFailed, runs.StatusTerminated: events.RunTerminated}[in.Status]
		return []events.Event{s.event(dt, r, r.Reason)}, nil
	})
	if errors.Is(err, errNoChange) {
		return nil
	}
	if apperr.Is(err, apperr.NotFound) {
		// Nothing to record (run-step answered run_not_found): retrying
		// cannot help.
		s.Log.ErrorContext(ctx, "finish of a run that does not exist", slog.String("tenant", in.Tenant), slog.String("run", in.RunID), slog.String("error", in.Error))
		return nil
	}
	return err
}

// LambdaServiceErrors are the errors Step Functions reports when the Lambda
// service, not the function, failed: the invocation was refused or
// throttled, or its answer was lost. Every task retries them. Lambda.Unknown
// is not one of them: the function ran and failed without an error type
// (out of memory, the runtime exited), as Sandbox.Timedout means it ran out
// of time; neither is retried, since a step's action may have taken effect.
var LambdaServiceErrors = []string{"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException", "Lambda.TooManyRequestsException"}

// FinalReason is the reason a run records when the state machine gives it
// its final status after the error named errName (the Error of the failure
// MarkFailed or MarkTerminated caught; "" when none). recorded is the
// reason the run holds (a failed step's, written by RunStep).
func FinalReason(status runs.Status, errName, recorded string) string {
	switch status {
	case runs.StatusSucceeded:
		return ""
	case runs.StatusTerminated:
		switch errName {
		case "States.Timeout":
			return "suspension_timeout"
		case "TooManySuspensions":
			return "too_many_suspensions"
		}
		return "terminated"
	}
	switch {
	case errName == "StepFailed" && recorded != "":
		return recorded
	case errName == "StepFailed":
		return "step_failed"
	case errName == "StepTransient":
		return "retries_exhausted: " + recorded
	case errName == "TaskUnavailable":
		return "retries_exhausted: task_unavailable"
	case slices.Contains(LambdaServiceErrors, errName):
		return "retries_exhausted: lambda_unavailable"
	case errName == "Lambda.Unknown":
		return "task_crashed"
	case errName == "Sandbox.Timedout":
		return "task_timed_out"
	case strings.HasPrefix(errName, "States."):
		return "state_machine_error: " + errName
	case reasonCode.MatchString(errName):
		return errName // already a reason, such as engine_unavailable
	case errName == "":
		return "failed"
	}
	return "task_failed: " + errName
}

// reasonCode matches the reasons the code writes (lower snake case).
var reasonCode = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
