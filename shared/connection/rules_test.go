package connection

import (
	"testing"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/identity"
)

func TestDefaultAvailability(t *testing.T) {
	tests := []struct {
		name   string
		caller identity.Caller
		want   Availability
		kind   apperr.Kind // when an error is expected
	}{
		{"tenant admin", identity.Caller{TenantAdmin: true, SiteCollections: []string{"/sites/hr"}}, Availability{Scope: ScopeTenant}, 0},
		{"site collection admin", identity.Caller{SiteCollections: []string{"/sites/hr"}, OwnedSites: []string{"/sites/it"}}, Availability{Scope: ScopeSiteCollection, SiteCollection: "/sites/hr"}, 0},
		{"two collections", identity.Caller{SiteCollections: []string{"/sites/hr", "/sites/it"}}, Availability{}, apperr.Invalid},
		{"site owner", identity.Caller{OwnedSites: []string{"/sites/hr/payroll"}}, Availability{Scope: ScopeSite, Site: "/sites/hr/payroll"}, 0},
		{"two sites", identity.Caller{OwnedSites: []string{"/sites/a", "/sites/b"}}, Availability{}, apperr.Invalid},
		{"member", identity.Caller{Sites: []string{"/sites/a"}}, Availability{}, apperr.Forbidden},
	}
	for _, tt := range tests {
		got, err := DefaultAvailability(tt.caller)
		if tt.kind != 0 {
			if !apperr.Is(err, tt.kind) {
				t.Errorf("%s: err %v, want %v", tt.name, err, tt.kind)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: %+v, %v; want %+v", tt.name, got, err, tt.want)
		}
	}
}

func TestWithinAuthority(t *testing.T) {
	sca := identity.Caller{SiteCollections: []string{"/sites/hr"}}
	owner := identity.Caller{OwnedSites: []string{"/sites/hr/payroll"}}
	tests := []struct {
		name   string
		caller identity.Caller
		a      Availability
		want   bool
	}{
		{"admin tenant", identity.Caller{TenantAdmin: true}, Availability{Scope: ScopeTenant}, true},
		{"sca tenant", sca, Availability{Scope: ScopeTenant}, false},
		{"sca own collection", sca, Availability{Scope: ScopeSiteCollection, SiteCollection: "/sites/hr"}, true},
		{"sca other collection", sca, Availability{Scope: ScopeSiteCollection, SiteCollection: "/sites/it"}, false},
		{"sca site inside", sca, Availability{Scope: ScopeSite, Site: "/sites/hr/payroll"}, true},
		{"sca site outside", sca, Availability{Scope: ScopeSite, Site: "/sites/hrx"}, false},
		{"owner own site", owner, Availability{Scope: ScopeSite, Site: "/sites/hr/payroll"}, true},
		{"owner collection", owner, Availability{Scope: ScopeSiteCollection, SiteCollection: "/sites/hr"}, false},
		{"owner other site", owner, Availability{Scope: ScopeSite, Site: "/sites/hr"}, false},
	}
	for _, tt := range tests {
		if got := WithinAuthority(tt.caller, tt.a); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestCanUse(t *testing.T) {
	shared := &Connection{Tenant: "t", Kind: Shared, CreatedBy: "alice", Availability: Availability{Scope: ScopeSiteCollection, SiteCollection: "/sites/hr"}}
	personal := &Connection{Tenant: "t", Kind: Personal, CreatedBy: "alice", Availability: Availability{Scope: ScopePersonal}}
	tests := []struct {
		name string
		use  Use
		conn *Connection
		want bool
	}{
		{"shared in collection", Use{Tenant: "t", Site: "/sites/hr/payroll", RunOwner: "bob"}, shared, true},
		{"shared outside", Use{Tenant: "t", Site: "/sites/it", RunOwner: "alice"}, shared, false},
		{"shared other tenant", Use{Tenant: "u", Site: "/sites/hr", RunOwner: "alice"}, shared, false},
		{"personal creator", Use{Tenant: "t", Site: "/sites/any", RunOwner: "alice"}, personal, true},
		{"personal other user", Use{Tenant: "t", Site: "/sites/any", RunOwner: "bob"}, personal, false},
	}
	for _, tt := range tests {
		if got := CanUse(tt.use, tt.conn); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestNormalizeAvailability(t *testing.T) {
	tests := []struct {
		in    Availability
		want  Availability
		field string
	}{
		{Availability{Scope: ScopeTenant}, Availability{Scope: ScopeTenant}, ""},
		{Availability{Scope: ScopeSiteCollection, SiteCollection: "/sites/HR/"}, Availability{Scope: ScopeSiteCollection, SiteCollection: "/sites/hr"}, ""},
		{Availability{Scope: ScopeSite, Site: "/sites/hr/my payroll"}, Availability{Scope: ScopeSite, Site: "/sites/hr/my%20payroll"}, ""},
		{Availability{Scope: ScopeSite}, Availability{}, "availability.site"},
		{Availability{Scope: ScopeTenant, Site: "/sites/x"}, Availability{}, "availability"},
		{Availability{Scope: ScopePersonal}, Availability{}, "availability.scope"},
		{Availability{}, Availability{}, "availability.scope"},
	}
	for _, tt := range tests {
		got, err := tt.in.Normalize("availability")
		if tt.field != "" {
			if f := apperr.As(err).Field; f != tt.field {
				t.Errorf("%+v: field %q (err %v), want %q", tt.in, f, err, tt.field)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%+v: %+v, %v", tt.in, got, err)
		}
	}
}

func TestCanAuthorize(t *testing.T) {
	shared := &Connection{Tenant: "t1", Kind: Shared, Owners: []string{"alice"}, CreatedBy: "alice",
		Availability: Availability{Scope: ScopeSite, Site: "/sites/hr"}}
	personal := &Connection{Tenant: "t1", Kind: Personal, Owners: []string{"bob"}, CreatedBy: "bob",
		Availability: Availability{Scope: ScopePersonal}}
	tests := []struct {
		name   string
		caller identity.Caller
		conn   *Connection
		want   bool
	}{
		{"shared owner", identity.Caller{Tenant: "t1", User: "alice"}, shared, true},
		{"shared tenant admin", identity.Caller{Tenant: "t1", User: "root", TenantAdmin: true}, shared, true},
		{"shared site collection admin", identity.Caller{Tenant: "t1", User: "sca", SiteCollections: []string{"/sites/it"}}, shared, true},
		{"shared member", identity.Caller{Tenant: "t1", User: "carol", Sites: []string{"/sites/hr"}}, shared, false},
		{"shared owner of another tenant", identity.Caller{Tenant: "t2", User: "alice"}, shared, false},
		{"personal creator", identity.Caller{Tenant: "t1", User: "bob"}, personal, true},
		// The tokens would act as the admin's account inside bob's personal connection.
		{"personal tenant admin", identity.Caller{Tenant: "t1", User: "root", TenantAdmin: true}, personal, false},
		{"personal creator of another tenant", identity.Caller{Tenant: "t2", User: "bob"}, personal, false},
	}
	for _, tt := range tests {
		if got := CanAuthorize(tt.caller, tt.conn); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	if CanManageOAuthClients(identity.Caller{Tenant: "t1", User: "sca", SiteCollections: []string{"/sites/hr"}}) {
		t.Error("a site collection administrator may not manage OAuth clients")
	}
	if !CanManageOAuthClients(identity.Caller{Tenant: "t1", User: "root", TenantAdmin: true}) {
		t.Error("a tenant administrator manages OAuth clients")
	}
}
