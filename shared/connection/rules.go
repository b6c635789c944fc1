package connection

import (
	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/identity"
)

// The permission rules of product.md, one function each.

// CanCreate says whether the caller may create a connection of kind: shared
// connections need a tenant administrator, site collection administrator or
// site owner; any member may create a personal connection.
func CanCreate(c identity.Caller, kind Kind) error {
	switch kind {
	case Personal:
		return nil
	case Shared:
		if c.TenantAdmin || c.IsSiteCollectionAdmin() || len(c.OwnedSites) > 0 {
			return nil
		}
		return apperr.E(apperr.Forbidden, "forbidden", "only tenant administrators, site collection administrators and site owners create shared connections")
	}
	return apperr.InvalidField("kind", "invalid_kind", "kind must be shared or personal")
}

// DefaultAvailability is a new shared connection's availability when the
// creator names none: the tenant for a tenant administrator, their site
// collection for a site collection administrator, their site for a site owner.
// A creator with several collections or sites must choose.
func DefaultAvailability(c identity.Caller) (Availability, error) {
	switch {
	case c.TenantAdmin:
		return Availability{Scope: ScopeTenant}, nil
	case len(c.SiteCollections) == 1:
		return Availability{Scope: ScopeSiteCollection, SiteCollection: c.SiteCollections[0]}, nil
	case len(c.SiteCollections) > 1:
		return Availability{}, apperr.InvalidField("availability", "availability_required", "you administer several site collections: choose the availability")
	case len(c.OwnedSites) == 1:
		return Availability{Scope: ScopeSite, Site: c.OwnedSites[0]}, nil
	case len(c.OwnedSites) > 1:
		return Availability{}, apperr.InvalidField("availability", "availability_required", "you own several sites: choose the availability")
	}
	return Availability{}, apperr.E(apperr.Forbidden, "forbidden", "you cannot create shared connections")
}

// WithinAuthority says whether the caller may grant availability a (already
// normalized): tenant administrators any; site collection administrators
// their collections and sites in them; site owners the sites they own.
func WithinAuthority(c identity.Caller, a Availability) bool {
	if c.TenantAdmin {
		return true
	}
	switch a.Scope {
	case ScopeSiteCollection:
		return c.AdministersCollection(a.SiteCollection)
	case ScopeSite:
		return c.AdministersSite(a.Site) || c.OwnsSite(a.Site)
	}
	return false
}

// CanSee says whether the caller may see conn. Callers who may not see a
// connection are answered exactly as if it did not exist.
func CanSee(c identity.Caller, conn *Connection) bool {
	if c.Tenant != conn.Tenant {
		return false
	}
	if c.SeesAll() || conn.IsOwner(c.User) {
		return true
	}
	if conn.Kind != Shared {
		return false
	}
	if conn.Availability.Scope == ScopeTenant {
		return true
	}
	for _, s := range c.AccessibleSites() {
		if conn.Availability.Covers(s) {
			return true
		}
	}
	return false
}

// CanManage says whether the caller may rename, disable or delete conn and
// change a shared connection's owners: its owners, tenant administrators
// and site collection administrators ("view and manage all"). Where the
// connection's secret goes is CanConfigure's rule, not this one.
func CanManage(c identity.Caller, conn *Connection) bool {
	return c.Tenant == conn.Tenant && (conn.IsOwner(c.User) || c.SeesAll())
}

// CanConfigure says whether the caller may change conn's settings or
// credentials, or test it: for a shared connection whoever may manage it;
// for a personal connection only its creator. Administrators see and
// manage others' personal connections, but never redirect or use them.
func CanConfigure(c identity.Caller, conn *Connection) bool {
	if c.Tenant != conn.Tenant {
		return false
	}
	if conn.Kind == Personal {
		return c.User == conn.CreatedBy
	}
	return CanManage(c, conn)
}

// CanChangeAvailability says whether the caller may change conn's
// availability at all: tenant administrators, and owners who are site
// collection administrators. CanMoveAvailability decides a given move.
func CanChangeAvailability(c identity.Caller, conn *Connection) bool {
	if c.Tenant != conn.Tenant || conn.Kind != Shared {
		return false
	}
	return c.TenantAdmin || (conn.IsOwner(c.User) && c.IsSiteCollectionAdmin())
}

// CanMoveAvailability says whether the caller may move conn's availability
// to next (normalized): they may change availability, and both the current
// scope and the new one are within their authority, so nobody takes a
// connection out of a collection they do not administer.
func CanMoveAvailability(c identity.Caller, conn *Connection, next Availability) bool {
	return CanChangeAvailability(c, conn) && WithinAuthority(c, conn.Availability) && WithinAuthority(c, next)
}

// Use is who and where a workflow run wants to use a connection.
type Use struct {
	Tenant   string
	Site     string // canonical site the workflow runs on
	RunOwner string // user who owns the workflow run
}

// CanUse says whether a workflow run may use conn: a shared connection when
// the run's site is covered by its availability; a personal connection when
// the run's owner created it.
func CanUse(u Use, conn *Connection) bool {
	if u.Tenant != conn.Tenant {
		return false
	}
	switch conn.Kind {
	case Shared:
		return u.Site != "" && conn.Availability.Covers(u.Site)
	case Personal:
		return u.RunOwner != "" && u.RunOwner == conn.CreatedBy
	}
	return false
}

// CanAuthorize says whether the caller may run the OAuth authorization of
// conn (on creation or to reconnect it): for a shared connection whoever may
// manage it; for a personal connection only its creator, whose account the
// tokens then act as.
func CanAuthorize(c identity.Caller, conn *Connection) bool {
	if c.Tenant != conn.Tenant {
		return false
	}
	if conn.Kind == Personal {
		return c.User == conn.CreatedBy
	}
	return CanManage(c, conn)
}

// CanManageOAuthClients says whether the caller may register, change or
// remove the tenant's OAuth clients: tenant administrators only.
func CanManageOAuthClients(c identity.Caller) bool { return c.TenantAdmin }

// Actions a caller may take on a connection, as API responses list them
// (Permissions).
const (
	ActEdit               = "edit"      // rename, disable or enable
	ActConfigure          = "configure" // change settings or credentials
	ActDelete             = "delete"
	ActChangeAvailability = "changeAvailability"
	ActChangeOwners       = "changeOwners"
	ActTest               = "test"
	ActAuthorize          = "authorize"
	ActUse                = "use" // in a workflow run of the caller's, at some site they can reach
)

// Permissions lists what the caller may do with conn, computed by the rule
// functions above, so that clients never re-implement them. Availability
// moves are listed when the caller may move it at all (a given target
// still needs CanMoveAvailability).
func Permissions(c identity.Caller, conn *Connection) []string {
	out := []string{}
	if !CanSee(c, conn) {
		return out
	}
	manage, configure := CanManage(c, conn), CanConfigure(c, conn)
	add := func(ok bool, a string) {
		if ok {
			out = append(out, a)
		}
	}
	add(manage, ActEdit)
	add(configure, ActConfigure)
	add(manage, ActDelete)
	add(CanChangeAvailability(c, conn) && WithinAuthority(c, conn.Availability), ActChangeAvailability)
	add(manage && conn.Kind == Shared, ActChangeOwners)
	add(configure, ActTest)
	add(CanAuthorize(c, conn) && isAuthorizationCode(conn), ActAuthorize)
	add(CanUseSomewhere(c, conn), ActUse)
	return out
}

func isAuthorizationCode(conn *Connection) bool {
	t, err := Lookup(conn.Type, "type")
	return err == nil && t.AuthMethod == AuthOAuth2Code
}

// CanUseSomewhere says whether a run the caller owns at some site they can
// reach may use conn (CanUse at one of those sites): their own personal
// connection, or a shared one whose availability covers such a site.
func CanUseSomewhere(c identity.Caller, conn *Connection) bool {
	if c.Tenant != conn.Tenant {
		return false
	}
	if conn.Kind == Personal || conn.Availability.Scope == ScopeTenant {
		return CanUse(Use{Tenant: c.Tenant, Site: "/", RunOwner: c.User}, conn)
	}
	sites := append(c.AccessibleSites(), c.SiteCollections...) // a collection's root site is a site
	if p := conn.Availability.Site + conn.Availability.SiteCollection; c.CanAccessSite(p) {
		sites = append(sites, p)
	}
	for _, s := range sites {
		if CanUse(Use{Tenant: c.Tenant, Site: s, RunOwner: c.User}, conn) {
			return true
		}
	}
	return false
}
