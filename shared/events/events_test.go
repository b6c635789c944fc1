package events_test

import (
	"encoding/json"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/events"
	"github.com/connmgr/connmgr/shared/events/schemas"
	"github.com/connmgr/connmgr/shared/runs"
)

var at = time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)

func TestEveryDetailTypeHasASchema(t *testing.T) {
	files, err := fs.Glob(os.DirFS("schemas"), "*.json")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, dt := range events.Catalogue {
		want = append(want, schemas.File(dt))
		b, err := schemas.Schema(dt)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Title                string
			AdditionalProperties *bool
			Required             []string
		}
		if err := json.Unmarshal(b, &doc); err != nil || doc.Title != dt {
			t.Errorf("%s: title %q, %v", schemas.File(dt), doc.Title, err)
		}
		if doc.AdditionalProperties == nil || *doc.AdditionalProperties {
			t.Errorf("%s admits properties it does not list: a secret could ride along", schemas.File(dt))
		}
		required := []string{"schemaVersion", "eventId", "tenant", "status", "at"}
		switch {
		case dt == events.ConnectionCheckFailed:
			// Its connection may not decode: no status, no owners to
			// promise; what failed and when it is retried instead.
			required = []string{"schemaVersion", "eventId", "tenant", "connectionId", "reason", "retryAt", "at"}
		case strings.HasPrefix(dt, "Connection "):
			required = append(required, "owners")
		}
		for _, f := range required {
			if !slices.Contains(doc.Required, f) {
				t.Errorf("%s does not require %s", schemas.File(dt), f)
			}
		}
	}
	slices.Sort(want)
	if !slices.Equal(files, want) {
		t.Errorf("schemas/ holds %v, the catalogue needs %v", files, want)
	}
	if err := schemas.Validate("Connection Renamed", []byte(`{}`)); err == nil {
		t.Error("a detail type outside the catalogue validated")
	}
}

func conn(status connection.Status) *connection.Connection {
	return &connection.Connection{Tenant: "contoso", ID: "01HZCONN", Type: "http-basic", Name: "Payroll", Kind: connection.Shared,
		Owners: []string{"alice", "bob"}, Status: status, Version: 4}
}

func oauthConn(status connection.Status) *connection.Connection {
	c := conn(status)
	c.Type = "oauth2-generic"
	return c
}

func run(status runs.Status, suspended bool) *runs.Run {
	r := &runs.Run{Tenant: "contoso", ID: "01HZRUN", WorkflowID: "wf-payroll", Site: "/sites/hr", Owner: "bob", Status: status,
		Steps: []runs.Step{{ID: "fetch"}, {ID: "post"}}, Current: 1}
	if suspended {
		r.Suspension = &runs.Suspension{Connection: "01HZCONN", Reason: "credentials_expired", SuspendedAt: at, TerminatesAt: at.Add(runs.SuspensionTimeout)}
	}
	return r
}

// TestBuildersValidate: each builder, used as its emitter uses it, makes a
// detail its schema accepts.
func TestBuildersValidate(t *testing.T) {
	pe := at.Add(72 * time.Hour)
	tests := []events.Event{
		events.ForConnection(events.ConnectionCreated, conn(connection.StatusActive), "01EV1", "alice", "", []string{"name", "kind", "availability", "credentials.password"}, at),
		events.ForConnection(events.ConnectionCreated, conn(connection.StatusPendingAuthorization), "01EV2", "alice", "", []string{"name"}, at),
		events.ForConnection(events.ConnectionUpdated, conn(connection.StatusActive), "01EV3", "alice", "", []string{"credentials.password", "settings.passwordExpiresAt"}, at),
		events.ForConnection(events.ConnectionUpdated, conn(connection.StatusActive), "01EV4", "alice", "authorized", []string{"credentials.accessToken", "credentials.refreshToken", "status"}, at),
		events.ForConnection(events.ConnectionDeleted, conn(connection.StatusActive), "01EV5", "alice", "", nil, at),
		events.ForConnection(events.ConnectionExpiring, conn(connection.StatusExpiring), "01EV6", "", "password_expiring", []string{"status"}, at).WithExpiresAt(pe),
		events.ForConnection(events.ConnectionExpired, conn(connection.StatusExpired), "01EV7", "", "password_expired", []string{"status"}, at).WithExpiresAt(pe),
		events.ForConnection(events.ConnectionExpired, conn(connection.StatusExpired), "01EV8", "", "invalid_grant", []string{"status"}, at),
		events.ForConnection(events.ConnectionExpiring, oauthConn(connection.StatusExpiring), "01EV6R", "", "refresh_token_expiring", []string{"status"}, at).WithExpiresAt(pe),
		events.ForConnection(events.ConnectionExpired, oauthConn(connection.StatusExpired), "01EV7R", "", "refresh_token_expired", []string{"status"}, at).WithExpiresAt(pe),
		events.ForConnection(events.ConnectionRecovered, oauthConn(connection.StatusActive), "01EV11R", "", "refreshed", []string{"status"}, at),
		events.ForConnection(events.ConnectionRefreshFailed, conn(connection.StatusExpired), "01EV9", "", "invalid_grant", nil, at),
		events.ForConnection(events.ConnectionRecovered, conn(connection.StatusActive), "01EV10", "alice", "credentials_updated", []string{"credentials.password"}, at),
		events.ForConnection(events.ConnectionRecovered, conn(connection.StatusActive), "01EV11", "", "password_expiry_extended", []string{"status"}, at),
		events.ForRun(events.RunSuspended, run(runs.StatusSuspended, true), "01EV12", "target_rejected_credentials_401", at),
		events.ForRun(events.RunResumed, run(runs.StatusRunning, false), "01EV13", "connection_updated", at),
		events.ForRun(events.RunTerminated, run(runs.StatusTerminated, false), "01EV14", "suspension_timeout", at),
		events.ForRun(events.RunSucceeded, run(runs.StatusSucceeded, false), "01EV15", "", at),
		events.ForRun(events.RunFailed, run(runs.StatusFailed, false), "01EV16", "retries_exhausted: http_503", at),
		events.ForRun(events.RunTerminationApproaching, run(runs.StatusSuspended, true), "01EV17", "", at),
		events.ForOAuthClient(events.OAuthClientExpiring, "contoso", "oauth2-generic", "crm-app", "01EV18", "expiring", "client_secret_expiring", pe, at),
		events.ForOAuthClient(events.OAuthClientExpired, "contoso", "oauth2-generic", "crm-app", "01EV19", "expired", "client_secret_expired", pe, at),
		// Of an entry that did not decode (tenant and id only), and of one
		// that did.
		events.ForCheckFailure("contoso", "01HZCONN", nil, "01EV20", "unreadable_item", at, at.Add(time.Hour), at),
		events.ForCheckFailure("contoso", "01HZCONN", oauthConn(connection.StatusActive), "01EV21", "refresh_failed", at, at.Add(time.Hour), at),
		events.ForCheckFailure("contoso", "01HZCONN", conn(connection.StatusActive), "01EV22", "store_error", at, at.Add(time.Hour), at),
	}
	seen := map[string]bool{}
	for _, e := range tests {
		seen[e.DetailType] = true
		if err := schemas.ValidateEvent(e); err != nil {
			b, _ := e.Marshal()
			t.Errorf("%s: %v\n%s", e.DetailType, err, b)
		}
		// What goes on the bus is what the outbox stores and decodes.
		b, _ := e.Marshal()
		back, err := events.Decode(e.DetailType, b)
		if err != nil || schemas.ValidateEvent(back) != nil || back.ID() != e.ID() || back.Tenant() != "contoso" || !back.At().Equal(at) {
			t.Errorf("%s does not survive the outbox: %v", e.DetailType, err)
		}
	}
	for _, dt := range events.Catalogue {
		if !seen[dt] {
			t.Errorf("no builder case for %s", dt)
		}
	}
}

// TestSchemasReject: what a schema must refuse.
func TestSchemasReject(t *testing.T) {
	valid := func(e events.Event) map[string]any {
		b, _ := e.Marshal()
		var m map[string]any
		json.Unmarshal([]byte(b), &m)
		return m
	}
	expiring := events.ForConnection(events.ConnectionExpiring, conn(connection.StatusExpiring), "01EV", "", "password_expiring", []string{"status"}, at).WithExpiresAt(at.Add(time.Hour))
	suspended := events.ForRun(events.RunSuspended, run(runs.StatusSuspended, true), "01EV", "credentials_expired", at)
	client := events.ForOAuthClient(events.OAuthClientExpiring, "contoso", "oauth2-generic", "crm-app", "01EV", "expiring", "client_secret_expiring", at.Add(time.Hour), at)
	checkFailed := events.ForCheckFailure("contoso", "01HZCONN", conn(connection.StatusActive), "01EV", "unreadable_item", at, at.Add(time.Hour), at)
	tests := []struct {
		name   string
		dt     string
		base   events.Event
		mutate func(m map[string]any)
	}{
		{"a secret field", events.ConnectionExpiring, expiring, func(m map[string]any) { m["password"] = "hunter2" }},
		{"a credentials object", events.ConnectionExpiring, expiring, func(m map[string]any) { m["credentials"] = map[string]any{"password": "x"} }},
		{"no expiresAt", events.ConnectionExpiring, expiring, func(m map[string]any) { delete(m, "expiresAt") }},
		{"the wrong status", events.ConnectionExpiring, expiring, func(m map[string]any) { m["status"] = "active" }},
		{"no owners", events.ConnectionExpiring, expiring, func(m map[string]any) { delete(m, "owners") }},
		{"a schema version from the future", events.ConnectionExpiring, expiring, func(m map[string]any) { m["schemaVersion"] = 2 }},
		{"a timestamp that is not one", events.ConnectionExpiring, expiring, func(m map[string]any) { m["at"] = "yesterday" }},
		{"a change that carries a value", events.ConnectionExpiring, expiring, func(m map[string]any) { m["changes"] = []string{"credentials.password=hunter2"} }},
		{"a suspension without its deadline", events.RunSuspended, suspended, func(m map[string]any) { delete(m, "terminatesAt") }},
		{"a run event with a task token", events.RunSuspended, suspended, func(m map[string]any) { m["taskToken"] = "AAAA" }},
		{"a run event under a connection detail type", events.ConnectionExpired, suspended, func(m map[string]any) {}},
		{"another expiring reason", events.ConnectionExpiring, expiring, func(m map[string]any) { m["reason"] = "invalid_grant" }},
		{"a client secret", events.OAuthClientExpiring, client, func(m map[string]any) { m["clientSecret"] = "hunter2" }},
		{"a client event without its expiry", events.OAuthClientExpiring, client, func(m map[string]any) { delete(m, "expiresAt") }},
		{"a client event without its client id", events.OAuthClientExpiring, client, func(m map[string]any) { delete(m, "clientId") }},
		{"an expired client under the expiring detail type", events.OAuthClientExpiring, client, func(m map[string]any) { m["status"], m["reason"] = "expired", "client_secret_expired" }},
		{"a client event under the expired detail type", events.OAuthClientExpired, client, func(m map[string]any) {}},
		{"a client event under a connection detail type", events.ConnectionExpiring, client, func(m map[string]any) {}},
		{"a check failure with a setting", events.ConnectionCheckFailed, checkFailed, func(m map[string]any) { m["settings"] = "{not json" }},
		{"a check failure with the error text", events.ConnectionCheckFailed, checkFailed, func(m map[string]any) { m["error"] = "cannot unmarshal" }},
		{"a check failure without its reason", events.ConnectionCheckFailed, checkFailed, func(m map[string]any) { delete(m, "reason") }},
		{"a check failure for a reason not in the list", events.ConnectionCheckFailed, checkFailed, func(m map[string]any) { m["reason"] = "oops: details" }},
		{"a check failure without its retry", events.ConnectionCheckFailed, checkFailed, func(m map[string]any) { delete(m, "retryAt") }},
		{"a check failure without its connection", events.ConnectionCheckFailed, checkFailed, func(m map[string]any) { delete(m, "connectionId") }},
		{"a connection event under the check failure detail type", events.ConnectionCheckFailed, expiring, func(m map[string]any) {}},
		{"a check failure under a connection detail type", events.ConnectionExpired, checkFailed, func(m map[string]any) {}},
	}
	for _, tt := range tests {
		m := valid(tt.base)
		tt.mutate(m)
		b, _ := json.Marshal(m)
		if err := schemas.Validate(tt.dt, b); err == nil {
			t.Errorf("%s: validated %s", tt.name, b)
		}
	}
}
