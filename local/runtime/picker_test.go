package runtime_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestPickerAgreesWithTheResolver: for every persona and site, the picker
// (GET /connections?usableAt=) lists exactly the connections the resolve
// function lets a run of that persona at that site use.
func TestPickerAgreesWithTheResolver(t *testing.T) {
	rt, logs := start(t)
	claims := map[string]map[string]any{
		"tenantAdmin":   {"sub": "ta", "tid": "contoso", "roles": []string{"tenant_admin"}},
		"scaHR":         {"sub": "sca-hr", "tid": "contoso", "sca": []string{"/sites/hr"}},
		"ownerPayroll":  {"sub": "owner-payroll", "tid": "contoso", "owns": []string{"/sites/hr/payroll"}, "sites": []string{"/sites/hr/payroll"}},
		"memberPayroll": {"sub": "member-payroll", "tid": "contoso", "sites": []string{"/sites/hr/payroll", "/sites/it"}},
		"memberIT":      {"sub": "member-it", "tid": "contoso", "sites": []string{"/sites/it"}},
	}
	users := map[string]*client{}
	for p, c := range claims {
		users[p] = login(t, rt, c)
	}
	create := func(who string, body map[string]any) string {
		body["type"], body["settings"] = "http-basic", map[string]any{"baseUrl": "https://api.example.com"}
		body["credentials"] = map[string]any{"username": "u", "password": "p"}
		r := users[who].do("POST", "/connections", body, nil)
		users[who].expect(r, 201, "create "+fmt.Sprint(body["name"]))
		var v struct{ ID string }
		decode(t, r, &v)
		return v.ID
	}
	conns := map[string]string{
		"tenant":        create("tenantAdmin", map[string]any{"name": "tenant", "kind": "shared"}),
		"hr":            create("scaHR", map[string]any{"name": "hr", "kind": "shared"}),
		"payroll":       create("ownerPayroll", map[string]any{"name": "payroll", "kind": "shared"}),
		"it":            create("tenantAdmin", map[string]any{"name": "it", "kind": "shared", "availability": map[string]any{"scope": "site", "site": "/sites/it"}}),
		"personalMP":    create("memberPayroll", map[string]any{"name": "mine", "kind": "personal"}),
		"personalAdmin": create("tenantAdmin", map[string]any{"name": "admin's own", "kind": "personal"}),
	}
	name := map[string]string{}
	for n, id := range conns {
		name[id] = n
	}
	resolves := func(user, site, id string) bool {
		in, _ := json.Marshal(map[string]string{"tenant": "contoso", "connectionId": id, "runId": "r", "stepId": "s", "workflowId": "w", "site": site, "runOwner": user})
		out, err := rt.Lambda.Invoke(context.Background(), "ResolveFunction", in)
		if err != nil {
			t.Fatal(err)
		}
		var res struct {
			OK      bool
			Failure struct{ Code string }
		}
		json.Unmarshal(out, &res)
		if !res.OK && res.Failure.Code != "not_usable" {
			t.Fatalf("resolve %s: %s", name[id], out)
		}
		return res.OK
	}
	sites := []string{"/sites/hr", "/sites/hr/payroll", "/sites/it"}
	checked := 0
	for p, c := range users {
		user := claims[p]["sub"].(string)
		for _, site := range sites {
			r := c.do("GET", "/connections?limit=100&usableAt="+site, nil, nil)
			if r.status == 403 {
				continue // a site the persona cannot reach: no run of theirs there
			}
			c.expect(r, 200, "picker")
			var page struct {
				Items []struct {
					ID          string
					Permissions []string
				}
			}
			decode(t, r, &page)
			var listed, usable []string
			for _, it := range page.Items {
				listed = append(listed, name[it.ID])
				if !slices.Contains(it.Permissions, "use") {
					t.Errorf("%s at %s: %s listed without the use permission", p, site, name[it.ID])
				}
			}
			for n, id := range conns {
				if resolves(user, site, id) {
					usable = append(usable, n)
				}
				checked++
			}
			slices.Sort(listed)
			slices.Sort(usable)
			if !slices.Equal(listed, usable) {
				t.Errorf("%s at %s: picker %v, resolver %v", p, site, listed, usable)
			}
		}
	}
	t.Logf("%d (persona, site, connection) resolutions compared with the picker", checked)
	// Administrators see others' personal connections, but never pick them.
	r := users["tenantAdmin"].do("GET", "/connections?limit=100&usableAt=/sites/hr/payroll", nil, nil)
	if strings.Contains(string(r.body), conns["personalMP"]) {
		t.Error("the tenant admin's picker offers the member's personal connection")
	}
	// Unknown query parameters and unreachable sites are refused.
	for _, q := range []string{"?site=/sites/hr", "?usableat=/sites/hr", "?limit=5&Type=http-basic"} {
		r := users["memberIT"].do("GET", "/connections"+q, nil, nil)
		users["memberIT"].expect(r, 400, "unknown parameter "+q)
		if !strings.Contains(string(r.body), `"code":"unknown_parameter"`) {
			t.Errorf("%s: %s", q, r.body)
		}
	}
	users["memberIT"].expect(users["memberIT"].do("GET", "/connections?usableAt=/sites/hr", nil, nil), 403, "picker for an unreachable site")
	users["memberIT"].expect(users["memberIT"].do("GET", "/connections?usableAt=hr", nil, nil), 400, "picker for a malformed site")
	checkLogLines(t, logs)
}
