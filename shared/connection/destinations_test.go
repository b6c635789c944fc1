package connection

import (
	"slices"
	"testing"

	"github.com/connmgr/connmgr/shared/identity"
)

func TestOrigin(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"https://API.Example.com/v1?x=1", "https://api.example.com:443", true},
		{"https://api.example.com:443", "https://api.example.com:443", true},
		{"http://api.example.com", "http://api.example.com:80", true},
		{"HTTPS://api.example.com:8443/", "https://api.example.com:8443", true},
		{"http://[::1]:3000/x", "http://[::1]:3000", true},
		{"ftp://api.example.com", "", false},
		{"api.example.com/v1", "", false},
		{"https:///nohost", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := Origin(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Origin(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestDestinations(t *testing.T) {
	tests := []struct {
		name string
		conn Connection
		want []string
	}{
		{"basic", Connection{Type: "http-basic", Settings: map[string]any{"baseUrl": "https://a.example.com/v1", "testPath": "/x"}}, []string{"https://a.example.com:443"}},
		{"sharepoint site", Connection{Type: "sharepoint-online", Settings: map[string]any{"siteUrl": "https://contoso.sharepoint.com/sites/hr"}}, []string{"https://contoso.sharepoint.com:443"}},
		{"oauth base, test URL and token endpoint", Connection{Type: "oauth2-generic", TokenEndpoint: "https://idp.example.com:443",
			Settings: map[string]any{"baseUrl": "https://a.example.com", "testUrl": "https://b.example.com/me"}},
			[]string{"https://a.example.com:443", "https://b.example.com:443", "https://idp.example.com:443"}},
		{"fixed host", Connection{Type: "microsoft-graph", Settings: map[string]any{}}, []string{"https://graph.microsoft.com:443"}},
		{"same origin twice", Connection{Type: "oauth2-generic", Settings: map[string]any{"baseUrl": "https://a.example.com", "testUrl": "https://A.example.com:443/me"}}, []string{"https://a.example.com:443"}},
		{"not a URL stays distinct", Connection{Type: "http-basic", Settings: map[string]any{"baseUrl": "a.example.com"}}, []string{"invalid:a.example.com"}},
		{"not a string", Connection{Type: "http-basic", Settings: map[string]any{"baseUrl": 42.0}}, []string{"invalid-setting:baseUrl"}},
	}
	for _, tt := range tests {
		if got := tt.conn.Destinations(); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestDestinationSettings(t *testing.T) {
	want := map[string][]string{
		"http-basic": {"baseUrl"}, "http-api-key": {"baseUrl"}, "sharepoint-online": {"siteUrl"}, "sharepoint-online-app": {"siteUrl"},
		"oauth2-generic": {"baseUrl", "testUrl"}, "oauth2-client-credentials": {"baseUrl", "testUrl"},
		"microsoft-graph": nil, "salesforce": {"instanceUrl"},
	}
	for _, typ := range Types() {
		w, ok := want[typ.ID]
		if !ok {
			t.Errorf("type %s: say which of its settings name a host", typ.ID)
			continue
		}
		if got := typ.DestinationSettings(); !slices.Equal(got, w) {
			t.Errorf("%s: %v, want %v", typ.ID, got, w)
		}
	}
}

func TestChangedDestinations(t *testing.T) {
	typ, _ := Lookup("oauth2-generic", "type")
	tests := []struct {
		name          string
		before, after map[string]any
		want          []string
	}{
		{"path only", map[string]any{"baseUrl": "https://a.example.com/v1"}, map[string]any{"baseUrl": "https://a.example.com/v2"}, nil},
		{"case and default port", map[string]any{"baseUrl": "https://a.example.com"}, map[string]any{"baseUrl": "https://A.EXAMPLE.com:443/"}, nil},
		{"host", map[string]any{"baseUrl": "https://a.example.com"}, map[string]any{"baseUrl": "https://b.example.com"}, []string{"baseUrl"}},
		{"test URL added", map[string]any{"baseUrl": "https://a.example.com"}, map[string]any{"baseUrl": "https://a.example.com", "testUrl": "https://a.example.com/me"}, []string{"testUrl"}},
		{"removed", map[string]any{"baseUrl": "https://a.example.com", "testUrl": "https://t.example.com"}, map[string]any{"baseUrl": "https://a.example.com"}, []string{"testUrl"}},
		{"scopes are not a host", map[string]any{"scopes": []any{"a"}}, map[string]any{"scopes": []any{"b"}}, nil},
	}
	for _, tt := range tests {
		if got := typ.ChangedDestinations(tt.before, tt.after); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestBindingCoversDestinations(t *testing.T) {
	c := Connection{Tenant: "t", ID: "c", Type: "http-basic", Settings: map[string]any{"baseUrl": "https://a.example.com"}}
	b1 := c.Binding(3)
	c.Settings = map[string]any{"baseUrl": "https://b.example.com"}
	b2 := c.Binding(3)
	if b1.Context()["destinations"] == b2.Context()["destinations"] || b1.Version != 3 || b1.Subject != "c" || b1.Tenant != "t" {
		t.Errorf("bindings %+v %+v", b1, b2)
	}
}

func TestConfigureAndMoveRules(t *testing.T) {
	personal := &Connection{Tenant: "t", Kind: Personal, CreatedBy: "mia", Owners: []string{"mia"}, Availability: Availability{Scope: ScopePersonal}}
	hr := &Connection{Tenant: "t", Kind: Shared, CreatedBy: "ann", Owners: []string{"ann", "sca-it"}, Availability: Availability{Scope: ScopeSiteCollection, SiteCollection: "/sites/hr"}}
	admin := identity.Caller{Tenant: "t", User: "root", TenantAdmin: true}
	scaIT := identity.Caller{Tenant: "t", User: "sca-it", SiteCollections: []string{"/sites/it"}}
	scaHR := identity.Caller{Tenant: "t", User: "sca-hr", SiteCollections: []string{"/sites/hr"}}
	mia := identity.Caller{Tenant: "t", User: "mia"}
	ann := identity.Caller{Tenant: "t", User: "ann", OwnedSites: []string{"/sites/hr"}}
	tests := []struct {
		name string
		got  bool
		want bool
	}{
		{"creator configures own personal", CanConfigure(mia, personal), true},
		{"tenant admin configures another's personal", CanConfigure(admin, personal), false},
		{"sca configures another's personal", CanConfigure(scaHR, personal), false},
		{"tenant admin manages another's personal", CanManage(admin, personal), true},
		{"owner configures shared", CanConfigure(ann, hr), true},
		{"sca of another collection configures shared (manage all)", CanConfigure(scaIT, hr), true},
		{"other tenant", CanConfigure(identity.Caller{Tenant: "u", User: "mia"}, personal), false},
		{"owner + sca of another collection moves hr to it", CanMoveAvailability(scaIT, hr, Availability{Scope: ScopeSiteCollection, SiteCollection: "/sites/it"}), false},
		{"owner + sca of another collection moves hr within hr", CanMoveAvailability(scaIT, hr, Availability{Scope: ScopeSite, Site: "/sites/hr/x"}), false},
		{"tenant admin moves anywhere", CanMoveAvailability(admin, hr, Availability{Scope: ScopeSiteCollection, SiteCollection: "/sites/it"}), true},
		{"personal never moves", CanMoveAvailability(admin, personal, Availability{Scope: ScopeTenant}), false},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	// An owner who administers both collections may move between them.
	both := identity.Caller{Tenant: "t", User: "sca-it", SiteCollections: []string{"/sites/it", "/sites/hr"}}
	if !CanMoveAvailability(both, hr, Availability{Scope: ScopeSiteCollection, SiteCollection: "/sites/it"}) {
		t.Error("an owner administering both collections may move the connection")
	}
}
