package workflow

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/httpapi"
	"github.com/connmgr/connmgr/shared/identity"
	"github.com/connmgr/connmgr/shared/runs"
	"github.com/connmgr/connmgr/shared/store"
)

// Usage, rebind and replace: seeing what uses a connection, and repairing
// the runs that wait on one that is gone or not usable.

// ReasonRebound is the Run Resumed reason of a rebind.
const ReasonRebound = "rebound"

var errToNotUsable = apperr.E(apperr.Unprocessable, "connection_not_usable", "the run's owner cannot use that connection at the run's site")

// usableBy says whether the run's owner may use the connection to at the
// run's site, and the caller may see it: the rule POST /runs applies. A
// missing and an invisible connection get the same answer.
func (s *Service) usableBy(ctx context.Context, caller identity.Caller, run *runs.Run, to string) error {
	rec, err := s.Store.Get(ctx, caller.Tenant, to)
	if apperr.Is(err, apperr.NotFound) {
		return errToNotUsable
	}
	if err != nil {
		return err
	}
	if !connection.CanSee(caller, &rec.Conn) || !connection.CanUse(connection.Use{Tenant: run.Tenant, Site: run.Site, RunOwner: run.Owner}, &rec.Conn) {
		return errToNotUsable
	}
	return nil
}

// rebindSteps points the run's remaining steps (from the current one on)
// that use from at to, recording the change; none is Conflict.
func rebindSteps(r *runs.Run, from, to, actor string, at func() runs.Change) error {
	var changed []string
	for i := max(r.Current, 0); i < len(r.Steps); i++ {
		if r.Steps[i].Connection == from {
			r.Steps[i].Connection = to
			changed = append(changed, r.Steps[i].ID)
		}
	}
	if len(changed) == 0 {
		return apperr.E(apperr.Conflict, "connection_not_in_run", "no remaining step of the run uses that connection")
	}
	if len(r.Connections()) > runs.MaxConnections {
		return apperr.E(apperr.Conflict, "too_many_connections", fmt.Sprintf("a run uses at most %d distinct connections", runs.MaxConnections))
	}
	c := at()
	c.Action, c.Actor, c.From, c.To, c.Steps = "rebind", actor, from, to, changed
	r.Changes = append(r.Changes, c)
	if n := len(r.Changes); n > runs.MaxChanges {
		r.Changes = slices.Clone(r.Changes[n-runs.MaxChanges:])
	}
	return nil
}

// Rebind points a suspended run's remaining steps from one connection to
// another and resumes it. ifMatch pins the run version (0: none).
func (s *Service) Rebind(ctx context.Context, caller identity.Caller, id, from, to string, ifMatch int64) (*runs.Run, error) {
	run, err := s.Get(ctx, caller, id)
	if err != nil {
		return nil, err
	}
	if from == "" || to == "" || from == to {
		return nil, apperr.InvalidField("to", "invalid_rebind", "from and to are two different connection ids")
	}
	if err := s.usableBy(ctx, caller, run, to); err != nil {
		return nil, withField(err, "to")
	}
	return s.resumeWith(ctx, caller.Tenant, id, "", ReasonRebound, ifMatch, func(r *runs.Run) error {
		return rebindSteps(r, from, to, caller.User, func() runs.Change { return runs.Change{At: s.Now().UTC()} })
	})
}

func withField(err error, field string) error {
	if e, ok := err.(*apperr.Error); ok && e.Field == "" {
		c := *e
		c.Field = field
		return &c
	}
	return err
}

// ReplaceItem is one run a replace looked at.
type ReplaceItem struct {
	RunID      string `json:"runId"`
	WorkflowID string `json:"workflowId"`
	Site       string `json:"site"`
	Owner      string `json:"owner"`
	// Reason says why a run is skipped: not_usable (its owner cannot use
	// the replacement at its site), or the code of what failed.
	Reason string `json:"reason,omitempty"`
}

// Replaced is the outcome of Replace.
type Replaced struct {
	DryRun bool `json:"dryRun"`
	// Rebound are the runs rebound and resumed (with dryRun: that would be).
	Rebound []ReplaceItem `json:"rebound"`
	Skipped []ReplaceItem `json:"skipped"`
	// Hidden counts the suspended runs on the connection the caller may
	// not act on (left alone, never named).
	Hidden int `json:"hidden"`
}

// Replace rebinds every run suspended on connection id that the caller
// may act on to connection with, and resumes them. id may be a connection
// already deleted: repairing runs left waiting on it is what this is for.
func (s *Service) Replace(ctx context.Context, caller identity.Caller, id, with string, dryRun bool) (*Replaced, error) {
	if with == "" || with == id {
		return nil, apperr.InvalidField("with", "invalid_replacement", "with is another connection's id")
	}
	ids, err := s.Store.SuspendedOn(ctx, caller.Tenant, id)
	if err != nil {
		return nil, err
	}
	out := &Replaced{DryRun: dryRun, Rebound: []ReplaceItem{}, Skipped: []ReplaceItem{}}
	for _, rid := range ids {
		run, err := s.Store.GetRun(ctx, caller.Tenant, rid)
		if apperr.Is(err, apperr.NotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !runs.CanSee(caller, run) {
			out.Hidden++
			continue
		}
		it := ReplaceItem{RunID: run.ID, WorkflowID: run.WorkflowID, Site: run.Site, Owner: run.Owner}
		if err := s.usableBy(ctx, caller, run, with); err != nil {
			if !errorsIsNotUsable(err) {
				return nil, err
			}
			it.Reason = "not_usable"
			out.Skipped = append(out.Skipped, it)
			continue
		}
		if !dryRun {
			_, err := s.resumeWith(ctx, caller.Tenant, run.ID, "", ReasonRebound, 0, func(r *runs.Run) error {
				return rebindSteps(r, id, with, caller.User, func() runs.Change { return runs.Change{At: s.Now().UTC()} })
			})
			if err != nil {
				it.Reason = apperr.As(err).Code
				out.Skipped = append(out.Skipped, it)
				continue
			}
		}
		out.Rebound = append(out.Rebound, it)
	}
	return out, nil
}

func errorsIsNotUsable(err error) bool {
	e, ok := err.(*apperr.Error)
	return ok && e.Code == errToNotUsable.Code
}

// UsagePage is one page of GET /connections/{id}/usage.
type UsagePage struct {
	Items []store.UsageItem `json:"items"`
	// Hidden counts this page's entries the caller may not see.
	Hidden     int    `json:"hidden"`
	NextCursor string `json:"nextCursor,omitempty"`
}

// Usage lists the workflows (each with its last run) and the running or
// suspended runs that use a connection the caller may see; entries about
// runs the caller may not see are only counted.
func (s *Service) Usage(ctx context.Context, caller identity.Caller, id, cursor string, limit int) (*UsagePage, error) {
	rec, err := s.Store.Get(ctx, caller.Tenant, id)
	if err != nil {
		return nil, err
	}
	if !connection.CanSee(caller, &rec.Conn) {
		return nil, apperr.NotFoundf("connection not found")
	}
	scope := store.CursorScope{Tenant: caller.Tenant, User: caller.User, Route: "GET /connections/{id}/usage", Filters: map[string]string{"id": id}}
	after := ""
	if cursor != "" {
		if after, err = scope.Decode(cursor); err != nil {
			return nil, err
		}
	}
	items, hidden, next, err := s.Store.Usage(ctx, caller.Tenant, id, after, limit, func(u store.UsageItem) bool {
		return runs.CanSee(caller, &runs.Run{Tenant: caller.Tenant, Owner: u.Owner, Site: u.Site})
	})
	if err != nil {
		return nil, err
	}
	p := &UsagePage{Items: items, Hidden: hidden}
	if p.Items == nil {
		p.Items = []store.UsageItem{}
	}
	if next != "" {
		p.NextCursor = scope.Encode(next)
	}
	return p, nil
}

func (s *Service) handleUsage(ctx context.Context, r *httpapi.Request) (httpapi.Response, error) {
	if err := r.OnlyQuery("cursor", "limit"); err != nil {
		return httpapi.Response{}, err
	}
	limit, err := r.PageLimit()
	if err != nil {
		return httpapi.Response{}, err
	}
	p, err := s.Usage(ctx, r.Caller, r.Param("id"), r.Query("cursor"), limit)
	if err != nil {
		return httpapi.Response{}, err
	}
	return httpapi.JSON(http.StatusOK, p), nil
}

func (s *Service) handleRebind(ctx context.Context, r *httpapi.Request) (httpapi.Response, error) {
	ifMatch, err := r.IfMatch()
	if err != nil {
		return httpapi.Response{}, err
	}
	var in struct {
		From string `json:"from"`
		To   string `json:"to"`
	}
	if err := r.DecodeJSON(&in); err != nil {
		return httpapi.Response{}, err
	}
	run, err := s.Rebind(ctx, r.Caller, r.Param("id"), in.From, in.To, ifMatch)
	if err != nil {
		return httpapi.Response{}, err
	}
	return runResponse(http.StatusAccepted, run), nil
}

func (s *Service) handleReplace(ctx context.Context, r *httpapi.Request) (httpapi.Response, error) {
	var in struct {
		With   string `json:"with"`
		DryRun bool   `json:"dryRun"`
	}
	if err := r.DecodeJSON(&in); err != nil {
		return httpapi.Response{}, err
	}
	out, err := s.Replace(ctx, r.Caller, r.Param("id"), in.With, in.DryRun)
	if err != nil {
		return httpapi.Response{}, err
	}
	return httpapi.JSON(http.StatusOK, out), nil
}
