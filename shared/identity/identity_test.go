package identity

import (
	"reflect"
	"strings"
	"testing"

	"github.com/connmgr/connmgr/shared/apperr"
)

func TestParseList(t *testing.T) {
	tests := []struct {
		raw  string
		want []string
	}{
		{"", nil},
		{"[]", nil},
		{"[ ]", nil},
		{"tenant_admin", []string{"tenant_admin"}},
		{"[tenant_admin]", []string{"tenant_admin"}},
		{"[/sites/hr /sites/it]", []string{"/sites/hr", "/sites/it"}},
		{"[/sites/my%20site  /sites/a%5Bb%5D]", []string{"/sites/my%20site", "/sites/a%5Bb%5D"}},
	}
	for _, tt := range tests {
		if got := ParseList(tt.raw); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseList(%q) = %q, want %q", tt.raw, got, tt.want)
		}
		if tt.want != nil {
			if got := ParseList(FormatList(tt.want)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("round trip of %q = %q", tt.want, got)
			}
		}
	}
}

func TestCanonicalPath(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"/sites/hr", "/sites/hr", true},
		{"/sites/HR/", "/sites/hr", true},
		{"/sites/my%20site", "/sites/my%20site", true},
		{"/sites/my site", "/sites/my%20site", true},
		{"/sites/My%20Site/Payroll", "/sites/my%20site/payroll", true},
		{"sites/hr", "", false},
		{"/", "", false},
		{"/sites//hr", "", false},
		{"/sites/../hr", "", false},
		{"/sites/%zz", "", false},
		{"/sites/a#b", "", false},
	}
	for _, tt := range tests {
		got, err := CanonicalPath(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("CanonicalPath(%q) = %q, %v; want %q ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestInCollection(t *testing.T) {
	tests := []struct {
		site, col string
		want      bool
	}{
		{"/sites/hr", "/sites/hr", true},
		{"/sites/hr/payroll", "/sites/hr", true},
		{"/sites/hrx", "/sites/hr", false},
		{"/sites/it", "/sites/hr", false},
	}
	for _, tt := range tests {
		if got := InCollection(tt.site, tt.col); got != tt.want {
			t.Errorf("InCollection(%q, %q) = %v", tt.site, tt.col, got)
		}
	}
	if got, want := CollectionsOf("/sites/hr/payroll"), []string{"/sites/hr/payroll", "/sites/hr", "/sites"}; !reflect.DeepEqual(got, want) {
		t.Errorf("CollectionsOf = %q, want %q", got, want)
	}
}

func TestFromClaims(t *testing.T) {
	c, err := FromClaims(map[string]string{
		"sub": "u1", "tid": "t1", "roles": "[tenant_admin]",
		"sca": "[/sites/HR]", "owns": "[/sites/my%20site]", "sites": "[]",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Caller{Tenant: "t1", User: "u1", TenantAdmin: true, SiteCollections: []string{"/sites/hr"}, OwnedSites: []string{"/sites/my%20site"}}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("FromClaims = %+v, want %+v", c, want)
	}
	if _, err := FromClaims(map[string]string{"sub": strings.Repeat("u", MaxUserLen), "tid": strings.Repeat("t", MaxTenantLen)}); err != nil {
		t.Errorf("claims at their bounds: %v", err)
	}
	for _, claims := range []map[string]string{
		{"sub": "u1"},
		{"tid": "t1"},
		{"sub": "u#1", "tid": "t1"},
		{"sub": "u1", "tid": "t1", "sites": "[relative/path]"},
		// Key parts past their bounds never reach DynamoDB.
		{"sub": "u1", "tid": strings.Repeat("t", 3000)},
		{"sub": strings.Repeat("u", 3000), "tid": "t1"},
		{"sub": "u1", "tid": strings.Repeat("t", MaxTenantLen+1)},
		{"sub": strings.Repeat("u", MaxUserLen+1), "tid": "t1"},
		{"sub": "u1", "tid": "t1", "sites": "[/sites/" + strings.Repeat("s", 3000) + "]"},
	} {
		if _, err := FromClaims(claims); !apperr.Is(err, apperr.Unauthenticated) {
			t.Errorf("FromClaims(%v) err = %v, want unauthenticated", claims, err)
		}
	}
}
