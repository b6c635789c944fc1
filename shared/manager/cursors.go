package manager

import (
	"github.com/connmgr/connmgr/shared/identity"
	"github.com/connmgr/connmgr/shared/store"
)

// The page cursors of the connection routes, each bound to the caller, its
// route and its filters (store.CursorScope says what that protects).

func listScope(caller identity.Caller, f ListFilter) store.CursorScope {
	return store.CursorScope{Tenant: caller.Tenant, User: caller.User, Route: "GET /connections",
		Filters: map[string]string{"type": f.Type, "scope": string(f.Scope), "status": string(f.Status), "usableAt": f.UsableAt}}
}

func auditScope(caller identity.Caller, id string) store.CursorScope {
	return store.CursorScope{Tenant: caller.Tenant, User: caller.User, Route: "GET /connections/{id}/audit",
		Filters: map[string]string{"id": id}}
}
