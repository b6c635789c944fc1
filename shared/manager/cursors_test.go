package manager_test

import (
	"net/url"
	"testing"

	"github.com/connmgr/connmgr/local/apitest"
	"github.com/connmgr/connmgr/shared/app"
)

// TestCursorsAreBound: a page cursor continues only the listing it came
// from: the same route, caller, tenant and filters. Any other use, or an
// altered cursor, is 400 invalid_cursor.
func TestCursorsAreBound(t *testing.T) {
	env := apitest.Start(t, app.FnConnections)
	other := &apitest.Caller{Tenant: "t1", User: "carol", TenantAdmin: true}
	elsewhere := &apitest.Caller{Tenant: "t2", User: "alice", TenantAdmin: true}
	var ids []string
	for _, n := range []string{"a", "b", "c"} {
		ids = append(ids, create(t, env, admin, basicBody(n)))
	}
	for _, n := range []string{"x", "y"} {
		create(t, env, elsewhere, basicBody(n))
	}
	next := func(path string, c *apitest.Caller) string {
		t.Helper()
		var page struct{ NextCursor string }
		r := env.Do(apitest.Request{Method: "GET", Path: path, Caller: c})
		if r.Status != 200 {
			t.Fatalf("%s: %d %s", path, r.Status, r.Body)
		}
		r.Decode(t, &page)
		if page.NextCursor == "" {
			t.Fatalf("%s: no next page", path)
		}
		return url.QueryEscape(page.NextCursor)
	}
	list := next("/connections?limit=1", admin)
	filtered := next("/connections?limit=1&type=http-basic", admin)
	// Rename twice: the audit log has three entries.
	for _, n := range []string{"a2", "a3"} {
		if r := env.Do(apitest.Request{Method: "PATCH", Path: "/connections/" + ids[0], Caller: admin, Body: map[string]any{"name": n}}); r.Status != 200 {
			t.Fatalf("rename: %d %s", r.Status, r.Body)
		}
	}
	audit := next("/connections/"+ids[0]+"/audit?limit=1", admin)
	altered := []byte(list)
	if i := len(altered) / 2; altered[i] == 'A' { // still base64url
		altered[i] = 'B'
	} else {
		altered[i] = 'A'
	}
	tests := []struct {
		name   string
		path   string
		caller *apitest.Caller
		ok     bool
	}{
		{"the next page", "/connections?limit=1&cursor=" + list, admin, true},
		{"a smaller page", "/connections?limit=2&cursor=" + list, admin, true},
		{"the filtered next page", "/connections?limit=1&type=http-basic&cursor=" + filtered, admin, true},
		{"the audit's next page", "/connections/" + ids[0] + "/audit?limit=1&cursor=" + audit, admin, true},
		{"another caller", "/connections?limit=1&cursor=" + list, other, false},
		{"another tenant", "/connections?limit=1&cursor=" + list, elsewhere, false},
		{"a filter added", "/connections?limit=1&type=http-basic&cursor=" + list, admin, false},
		{"a filter removed", "/connections?limit=1&cursor=" + filtered, admin, false},
		{"another filter value", "/connections?limit=1&type=http-api-key&cursor=" + filtered, admin, false},
		{"another filter", "/connections?limit=1&status=active&cursor=" + list, admin, false},
		{"a list cursor on the audit route", "/connections/" + ids[0] + "/audit?limit=1&cursor=" + list, admin, false},
		{"an audit cursor on the list", "/connections?limit=1&cursor=" + audit, admin, false},
		{"another connection's audit", "/connections/" + ids[1] + "/audit?limit=1&cursor=" + audit, admin, false},
		{"altered", "/connections?limit=1&cursor=" + string(altered), admin, false},
		{"an unbound id", "/connections?limit=1&cursor=" + url.QueryEscape(ids[0]), admin, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := env.Do(apitest.Request{Method: "GET", Path: tt.path, Caller: tt.caller})
			if tt.ok {
				if r.Status != 200 {
					t.Fatalf("%d %s", r.Status, r.Body)
				}
				return
			}
			if r.Status != 400 || r.ErrorCode() != "invalid_cursor" || r.ErrorField() != "cursor" {
				t.Fatalf("%d %s; want 400 invalid_cursor", r.Status, r.Body)
			}
		})
	}
}
