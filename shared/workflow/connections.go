package workflow

import (
	"context"
	"fmt"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/identity"
	"github.com/connmgr/connmgr/shared/runs"
)

// checkConnections checks, before a run is created, that the run may use
// each step's connection: it exists, the caller (the run's owner) may see
// it, and connection.CanUse allows it on the run's site. A connection that
// fails any of these gets the same answer, so starting runs tells nothing
// about connections the caller cannot see. A connection that becomes
// unusable later still suspends the run when its step runs.
func (s *Service) checkConnections(ctx context.Context, caller identity.Caller, site string, steps []runs.Step) error {
	use := connection.Use{Tenant: caller.Tenant, Site: site, RunOwner: caller.User}
	usable := map[string]bool{}
	for i, st := range steps {
		ok, checked := usable[st.Connection]
		if !checked {
			rec, err := s.Store.Get(ctx, caller.Tenant, st.Connection)
			switch {
			case apperr.Is(err, apperr.NotFound):
			case err != nil:
				return fmt.Errorf("workflow.Start: connection of steps[%d]: %w", i, err)
			default:
				ok = connection.CanSee(caller, &rec.Conn) && connection.CanUse(use, &rec.Conn)
			}
			usable[st.Connection] = ok
		}
		if !ok {
			return errNotUsable(i)
		}
	}
	return nil
}

// errNotUsable is the one answer for a step's connection the run may not
// use, whatever the reason.
func errNotUsable(step int) error {
	return apperr.UnprocessableField(fmt.Sprintf("steps[%d].connection", step), "connection_not_usable",
		"no connection with that id is available to this run on its site")
}
