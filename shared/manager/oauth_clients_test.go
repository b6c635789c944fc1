package manager_test

import (
	"strings"
	"testing"
	"time"

	"github.com/connmgr/connmgr/local/apitest"
	"github.com/connmgr/connmgr/shared/app"
)

// TestOAuthClientSecretExpiryRoutes: PUT /oauth-clients/{type} accepts and
// validates clientSecretExpiresAt, and every view shows it.
func TestOAuthClientSecretExpiryRoutes(t *testing.T) {
	env := apitest.Start(t, app.FnConnections)
	const path = "/oauth-clients/oauth2-client-credentials"
	now := env.Clock.Now().UTC()
	exp := now.Add(30 * 24 * time.Hour).Truncate(time.Second)
	body := func(secret string, expiresAt any) map[string]any {
		b := map[string]any{"clientId": "crm-app", "tokenUrl": "https://idp.example.test/token"}
		if secret != "" {
			b["clientSecret"] = secret
		}
		if expiresAt != nil {
			b["clientSecretExpiresAt"] = expiresAt
		}
		return b
	}
	for _, bad := range []struct {
		name      string
		expiresAt any
		code      string
	}{
		{"not a date", "next spring", "invalid_format"},
		{"not a string", 1767225600, "invalid_type"},
		{"in the past", now.Add(-time.Minute).Format(time.RFC3339), "invalid_value"},
		{"the zero time", "0001-01-01T00:00:00Z", "out_of_range"},
		{"the Unix epoch", "1970-01-01T00:00:00Z", "out_of_range"},
	} {
		r := env.Do(apitest.Request{Method: "PUT", Path: path, Caller: admin, Body: body("CANARY-client-secret", bad.expiresAt)})
		if r.Status != 400 || r.ErrorCode() != bad.code || r.ErrorField() != "clientSecretExpiresAt" {
			t.Errorf("%s: %d %s", bad.name, r.Status, r.Body)
		}
	}
	var v struct {
		ClientSecretExpiresAt time.Time
		ClientSecretSet       bool
		Version               int64
	}
	r := env.Do(apitest.Request{Method: "PUT", Path: path, Caller: admin, Body: body("CANARY-client-secret", exp.Format(time.RFC3339))})
	if r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	r.Decode(t, &v)
	if !v.ClientSecretExpiresAt.Equal(exp) || !v.ClientSecretSet || strings.Contains(string(r.Body), "CANARY") {
		t.Fatalf("create view: %s", r.Body)
	}
	r = env.Do(apitest.Request{Method: "GET", Path: path, Caller: admin})
	if r.Decode(t, &v); r.Status != 200 || !v.ClientSecretExpiresAt.Equal(exp) {
		t.Fatalf("GET: %d %s", r.Status, r.Body)
	}
	var list struct{ Items []map[string]any }
	env.Do(apitest.Request{Method: "GET", Path: "/oauth-clients", Caller: admin}).Decode(t, &list)
	if len(list.Items) != 1 || list.Items[0]["clientSecretExpiresAt"] != exp.Format(time.RFC3339) {
		t.Fatalf("list: %+v", list.Items)
	}
	// An update without the date keeps it.
	r = env.Do(apitest.Request{Method: "PUT", Path: path, Caller: admin, Body: body("", nil), Headers: map[string]string{"If-Match": r.Headers["ETag"]}})
	if r.Decode(t, &v); r.Status != 200 || !v.ClientSecretExpiresAt.Equal(exp) || v.Version != 2 {
		t.Fatalf("update without the date: %d %s", r.Status, r.Body)
	}
	// "" clears it; the view then omits it.
	r = env.Do(apitest.Request{Method: "PUT", Path: path, Caller: admin, Body: body("", ""), Headers: map[string]string{"If-Match": r.Headers["ETag"]}})
	if r.Status != 200 || strings.Contains(string(r.Body), "clientSecretExpiresAt") {
		t.Fatalf("cleared: %d %s", r.Status, r.Body)
	}
	// A member may not see or set it.
	member := &apitest.Caller{Tenant: "t1", User: "bob"}
	if r := env.Do(apitest.Request{Method: "PUT", Path: path, Caller: member, Body: body("x", exp.Format(time.RFC3339))}); r.Status != 403 {
		t.Errorf("member PUT: %d %s", r.Status, r.Body)
	}
}
