package manager_test

import (
	"strings"
	"testing"

	"github.com/connmgr/connmgr/local/apitest"
	"github.com/connmgr/connmgr/shared/app"
	"github.com/connmgr/connmgr/shared/events"
)

// TestDestinationChangesNeedCredentials: any change of where a secret may
// go (baseUrl's scheme, host or port) needs new credentials in the same
// request; other settings keep the secret.
func TestDestinationChangesNeedCredentials(t *testing.T) {
	env := apitest.Start(t, app.FnConnections)
	id := create(t, env, admin, basicBody("d"))
	newCreds := map[string]any{"username": "u2", "password": "p2"}
	tests := []struct {
		name     string
		body     map[string]any
		status   int
		code     string
		field    string
		credsSet bool // a new secret version
	}{
		{"path change keeps the secret", map[string]any{"settings": map[string]any{"baseUrl": "https://api.example.com/v2", "testPath": "/ping"}}, 200, "", "", false},
		{"other host", map[string]any{"settings": map[string]any{"baseUrl": "https://evil.example.net"}}, 409, "credentials_required", "settings.baseUrl", false},
		{"other port", map[string]any{"settings": map[string]any{"baseUrl": "https://api.example.com:8443/v2"}}, 409, "credentials_required", "settings.baseUrl", false},
		{"other scheme", map[string]any{"settings": map[string]any{"baseUrl": "http://api.example.com/v2"}}, 409, "credentials_required", "settings.baseUrl", false},
		{"other host with credentials", map[string]any{"settings": map[string]any{"baseUrl": "https://new.example.net"}, "credentials": newCreds}, 200, "", "", true},
		{"name only", map[string]any{"name": "renamed"}, 200, "", "", false},
	}
	secretVersion := func() string {
		es := env.Do(apitest.Request{Method: "GET", Path: "/connections/" + id + "/audit", Caller: admin})
		var v struct {
			Items []struct {
				Action  string
				Details map[string]string
			}
		}
		es.Decode(t, &v)
		for _, e := range v.Items {
			if e.Action == "connection.credentials_changed" {
				return e.Details["secretVersion"]
			}
		}
		return "1"
	}
	for _, tt := range tests {
		before := secretVersion()
		r := env.Do(apitest.Request{Method: "PATCH", Path: "/connections/" + id, Caller: admin, Body: tt.body})
		if r.Status != tt.status || r.ErrorCode() != tt.code || r.ErrorField() != tt.field {
			t.Errorf("%s: %d %s", tt.name, r.Status, r.Body)
		}
		if changed := secretVersion() != before; changed != tt.credsSet {
			t.Errorf("%s: secret version changed = %v, want %v", tt.name, changed, tt.credsSet)
		}
	}
	var v struct{ Settings map[string]any }
	env.Do(apitest.Request{Method: "GET", Path: "/connections/" + id, Caller: admin}).Decode(t, &v)
	if v.Settings["baseUrl"] != "https://new.example.net" {
		t.Errorf("a refused change was stored: %v", v.Settings)
	}
}

// TestAvailabilityNeedsAuthorityOverBothScopes: an administrator of another
// collection who makes themself an owner still cannot move a connection
// out of a collection they do not administer.
func TestAvailabilityNeedsAuthorityOverBothScopes(t *testing.T) {
	env := apitest.Start(t, app.FnConnections)
	p := personas("t1")
	id := create(t, env, p["scaHR"], basicBody("hr")) // available to /sites/hr
	it := p["scaIT"]
	if r := env.Do(apitest.Request{Method: "PUT", Path: "/connections/" + id + "/owners", Caller: it, Body: map[string]any{"owners": []string{"sca-hr", "sca-it"}}}); r.Status != 200 {
		t.Fatalf("sca-it adds themself as owner: %d %s", r.Status, r.Body)
	}
	for _, a := range []map[string]any{
		{"scope": "siteCollection", "siteCollection": "/sites/it"},
		{"scope": "site", "site": "/sites/it/x"},
		{"scope": "site", "site": "/sites/hr/payroll"},
	} {
		r := env.Do(apitest.Request{Method: "PUT", Path: "/connections/" + id + "/availability", Caller: it, Body: a})
		if r.Status != 403 || r.ErrorCode() != "availability_not_allowed" {
			t.Errorf("move to %v: %d %s", a, r.Status, r.Body)
		}
	}
	// The collection's own administrator may.
	if r := env.Do(apitest.Request{Method: "PUT", Path: "/connections/" + id + "/availability", Caller: p["scaHR"], Body: map[string]any{"scope": "site", "site": "/sites/hr/payroll"}}); r.Status != 200 {
		t.Errorf("sca-hr narrows it: %d %s", r.Status, r.Body)
	}
	// The owners change names its actor and the previous owners.
	r := env.Do(apitest.Request{Method: "GET", Path: "/connections/" + id + "/audit", Caller: p["scaHR"]})
	var audit struct {
		Items []struct {
			Actor, Action string
			Details       map[string]string
		}
	}
	r.Decode(t, &audit)
	var found bool
	for _, e := range audit.Items {
		if e.Action == "connection.owners_changed" {
			found = true
			if e.Actor != "sca-it" || e.Details["previous"] != "sca-hr" || e.Details["added"] != "sca-it" {
				t.Errorf("owners audit entry: %+v", e)
			}
		}
	}
	if !found {
		t.Error("no owners audit entry")
	}
	var ev *events.ConnectionDetail
	for _, d := range detailsOf(t, env, events.ConnectionUpdated) {
		if strings.Join(d.Changes, ",") == "owners" {
			ev = &d
		}
	}
	if ev == nil || ev.Actor != "sca-it" || strings.Join(ev.PreviousOwners, ",") != "sca-hr" || strings.Join(ev.Owners, ",") != "sca-hr,sca-it" {
		t.Errorf("owners event: %+v", ev)
	}
}
