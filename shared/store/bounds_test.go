package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/connmgr/connmgr/local/stacktest"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/events"
	"github.com/connmgr/connmgr/shared/httpapi"
	"github.com/connmgr/connmgr/shared/identity"
	"github.com/connmgr/connmgr/shared/oauth"
	"github.com/connmgr/connmgr/shared/store"
)

// TestItemsAtTheirBounds writes the largest connection, owners change,
// audit entry and outbox event the API can produce, and holds each item to
// its stated bound (DynamoDB allows 400 KB an item; the emulators that do
// not enforce that limit pass or fail here by the same numbers):
//
//	connection  ≤ 200 KB: request body ≤ httpapi.MaxBodyBytes (settings, name), ≤ 20 owners of ≤ 256 bytes,
//	            sealed secret ≤ the larger of the body and oauth.MaxTokenSetBytes (+ GCM tag, data key)
//	audit entry ≤ 20 KB: changes name fields; details hold owners (≤ 20 × 256) and short facts
//	outbox      ≤ 24 KB: an event's detail names ids, owners and previous owners, and changed fields
func TestItemsAtTheirBounds(t *testing.T) {
	env := stacktest.Start(t)
	ctx := context.Background()
	now := env.Clock.Now()
	long := func(c string, n int) string { return strings.Repeat(c, n) }
	var owners []string
	for i := range connection.MaxOwners {
		owners = append(owners, long(string(rune('a'+i)), identity.MaxUserLen))
	}
	var scopes []any
	for range 50 {
		scopes = append(scopes, long("s", 256))
	}
	c := connection.Connection{
		Tenant: long("t", identity.MaxTenantLen), ID: long("i", 26), Type: "oauth2-generic", Name: long("名", connection.MaxNameLength),
		Kind: connection.Shared, Availability: connection.Availability{Scope: connection.ScopeSite, Site: "/sites/" + long("x", 1000)},
		Owners: owners, CreatedBy: owners[0], CreatedAt: now, UpdatedAt: now, Version: 1, Status: connection.StatusActive,
		Settings:     map[string]any{"baseUrl": "https://" + long("h", 2000), "testUrl": "https://" + long("h", 2000), "scopes": scopes},
		SecretFields: []string{"accessToken", "refreshToken"}, SecretVersion: 1, TokenEndpoint: "https://" + long("e", 200) + ":443",
	}
	pt := []byte(long("k", max(httpapi.MaxBodyBytes, oauth.MaxTokenSetBytes)))
	sealed, err := env.Sealer.Seal(ctx, c.Binding(1), pt)
	if err != nil {
		t.Fatal(err)
	}
	rec := &store.Record{Conn: c, Secret: sealed}
	previous := strings.Join(owners, " ")
	audit := connection.AuditEntry{ID: long("A", 26), At: now, Actor: owners[0], Action: connection.ActionOwnersChanged, Version: 1,
		Changes: []string{"owners"}, Details: map[string]string{"added": previous, "removed": previous, "previous": previous}}
	ev := events.ForConnection(events.ConnectionUpdated, &c, long("E", 26), owners[0], "", []string{"owners", "settings.baseUrl", "settings.testUrl", "settings.scopes"}, now).
		WithPreviousOwners(owners)
	if err := env.Store.Create(ctx, rec, audit, nil, ev); err != nil {
		t.Fatalf("the largest connection does not store: %v", err)
	}
	pk := "T#" + c.Tenant + "#C#" + c.ID
	sizes := map[string]int{
		"connection": stacktest.ItemSize(rawItem(t, env, pk, "CONN")),
		"audit":      stacktest.ItemSize(rawItem(t, env, pk, "AUDIT#"+audit.ID)),
		"outbox":     stacktest.ItemSize(rawItem(t, env, "EVT#"+ev.ID(), "OUTBOX")),
		"owner edge": stacktest.ItemSize(rawItem(t, env, pk, "OWNER#"+owners[19])),
	}
	bounds := map[string]int{"connection": 200 << 10, "audit": 20 << 10, "outbox": 24 << 10, "owner edge": 4 << 10}
	t.Logf("item sizes at the bounds: %v (limits %v)", sizes, bounds)
	for k, n := range sizes {
		if n > bounds[k] {
			t.Errorf("%s item %d bytes, over its bound %d", k, n, bounds[k])
		}
	}
	// A provider's token set larger than the bound is refused before it
	// could be sealed onto the item.
	big := oauth.NewTokenSet(long("x", oauth.MaxTokenSetBytes), "r", "Bearer", now, now)
	if _, err := big.Encode(); err != oauth.ErrTokenSetTooLarge {
		t.Errorf("an oversized token set encodes: %v", err)
	}
}
