package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/connmgr/connmgr/local/stacktest"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/store"
)

// TestListRoundTrips: a listing reads every audience at once, then the page
// with one BatchGetItem: two sequential round trips for a member who
// reaches ten audiences as for an administrator's one, with the same
// connections in the same order, and pages that join up without a gap or
// a repeat.
func TestListRoundTrips(t *testing.T) {
	env := stacktest.Start(t)
	ctx := context.Background()
	now := env.Clock.Now()
	sites := []string{"/sites/s0", "/sites/s1", "/sites/s2", "/sites/s3"}
	var want []string
	for i := range 40 {
		id := fmt.Sprintf("01LIST%020d", i)
		av := connection.Availability{Scope: connection.ScopeSite, Site: sites[i%4]}
		switch i % 10 {
		case 3: // available to a whole collection
			av = connection.Availability{Scope: connection.ScopeSiteCollection, SiteCollection: sites[i%4]}
		case 7:
			av = connection.Availability{Scope: connection.ScopeTenant}
		}
		r := &store.Record{Conn: connection.Connection{
			Tenant: "t1", ID: id, Type: "http-basic", Name: "conn " + id, Kind: connection.Shared,
			Availability: av, Owners: []string{"olga"}, CreatedBy: "olga",
			CreatedAt: now, UpdatedAt: now, Version: 1, Status: connection.StatusActive,
			Settings: map[string]any{"baseUrl": "https://api.example.com"}, SecretVersion: 1,
		}}
		if err := env.Store.Create(ctx, r, connection.AuditEntry{ID: "01A" + id, At: now, Actor: "olga", Action: connection.ActionCreated, Version: 1}, nil); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	member := []store.Audience{store.AudienceOwner("mia"), store.AudienceTenant()}
	for _, s := range sites {
		member = append(member, store.AudienceSite(s), store.AudienceCollection(s))
	}
	// Concurrent calls are one round trip only if they overlap; the
	// emulator answers too fast to be sure of that without a latency.
	env.DDB.SetLatency(20 * time.Millisecond)

	tests := []struct {
		name    string
		q       store.ListQuery
		queries int64
	}{
		{"administrator", store.ListQuery{Tenant: "t1", All: true}, 1},
		{"member of four sites", store.ListQuery{Tenant: "t1", Audiences: member}, int64(len(member))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env.Reset()
			recs, next, err := env.Store.List(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(recs); !slices.Equal(got, want) || next != "" {
				t.Fatalf("listed %v (next %q), want %v", got, next, want)
			}
			if q, b, trips := env.DDB.Count("Query"), env.DDB.Count("BatchGetItem"), env.Trips.Count(); q != tt.queries || b != 1 || trips != 2 {
				t.Errorf("%d Queries, %d BatchGetItems (%d requests sent) in %d round trips; want %d, 1 in 2", q, b, env.DDB.Sent("DynamoDB"), trips, tt.queries)
			}

			// Pages of 15 join up, each at most two round trips.
			var paged []string
			q := tt.q
			q.Limit = 15
			for range 10 {
				env.Reset()
				recs, next, err := env.Store.List(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				if trips := env.Trips.Count(); trips > 2 {
					t.Errorf("a page after %q took %d round trips", q.After, trips)
				}
				paged = append(paged, ids(recs)...)
				if next == "" {
					break
				}
				q.After = next
			}
			if !slices.Equal(paged, want) {
				t.Errorf("pages of 15 listed %v, want %v", paged, want)
			}
		})
	}
}

func ids(recs []*store.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Conn.ID
	}
	return out
}
