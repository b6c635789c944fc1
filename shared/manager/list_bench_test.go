package manager_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/connmgr/connmgr/local/apitest"
	"github.com/connmgr/connmgr/shared/app"
)

// listSites are the sites of the list benchmarks' member.
var listSites = []string{"/sites/b0", "/sites/b1", "/sites/b2", "/sites/b3"}

// listWorld is 40 shared connections, 10 available at each of listSites:
// a tenant administrator lists them from the tenant index, a member who
// can reach the four sites through ten audiences (their own, the
// tenant's, and each site's and its collection's).
func listWorld(tb testing.TB) (*apitest.Env, *apitest.Caller) {
	tb.Helper()
	env := apitest.Start(tb, app.FnConnections)
	for i := range 40 {
		resp := env.Do(apitest.Request{Method: "POST", Path: "/connections", Caller: admin, Body: map[string]any{
			"type": "http-basic", "name": fmt.Sprintf("Bench %d", i), "kind": "shared",
			"availability": map[string]any{"scope": "site", "site": listSites[i%4]},
			"settings":     map[string]any{"baseUrl": "https://api.example.com"},
			"credentials":  map[string]any{"username": "svc", "password": "bench-pw"},
		}})
		if resp.Status != 201 {
			tb.Fatalf("create: %d %s", resp.Status, resp.Body)
		}
	}
	return env, &apitest.Caller{Tenant: "t1", User: "mia", Sites: listSites}
}

// listCost is what one GET /connections of caller costs: DynamoDB
// requests, sequential round trips, and read units as DynamoDB bills them
// for these items (each Query of the KEYS_ONLY index, under 4 KB, half a
// unit; each item read back strongly, under 4 KB, one unit).
type listCost struct{ calls, trips, units float64 }

func listOnce(tb testing.TB, env *apitest.Env, caller *apitest.Caller) {
	var list struct{ Items []any }
	resp := env.Do(apitest.Request{Method: "GET", Path: "/connections?limit=50", Caller: caller})
	if resp.Status != 200 {
		tb.Fatalf("list: %d %s", resp.Status, resp.Body)
	}
	resp.Decode(tb, &list)
	if len(list.Items) != 40 {
		tb.Fatalf("listed %d connections, want 40", len(list.Items))
	}
}

func (env *listEnv) cost(n int) listCost {
	return listCost{
		calls: float64(env.DDB.Sent("DynamoDB")) / float64(n),
		trips: float64(env.Trips.Count()) / float64(n),
		units: (0.5*float64(env.DDB.Count("Query")) + float64(env.DDB.ItemsRead("BatchGetItem"))) / float64(n),
	}
}

type listEnv struct{ *apitest.Env }

// benchLatency delays each DynamoDB request so concurrent ones overlap
// (see emulator.Counter.SetLatency); ns/op is mostly this wait.
const benchLatency = 5 * time.Millisecond

func benchmarkList(b *testing.B, member bool) {
	env, m := listWorld(b)
	caller := admin
	if member {
		caller = m
	}
	env.DDB.SetLatency(benchLatency)
	listOnce(b, env, caller)
	env.DDB.Reset()
	for b.Loop() {
		listOnce(b, env, caller)
	}
	c := (&listEnv{env}).cost(b.N)
	b.ReportMetric(c.calls, "ddb-calls/op")
	b.ReportMetric(c.trips, "round-trips/op")
	b.ReportMetric(c.units, "read-units/op")
}

// BenchmarkListAdmin: a tenant administrator lists 40 connections.
func BenchmarkListAdmin(b *testing.B) { benchmarkList(b, false) }

// BenchmarkListMember: a member lists the same 40 connections through 4 sites.
func BenchmarkListMember(b *testing.B) { benchmarkList(b, true) }

// TestMemberListCostsLikeAdmins: a member who reaches the connections
// through four sites waits no more round trips and pays no more read
// units than 1.5 times a tenant administrator listing them; the member
// sends more requests (one Query per audience, concurrently), which is
// what the round trips and read units bound.
func TestMemberListCostsLikeAdmins(t *testing.T) {
	env, member := listWorld(t)
	env.DDB.SetLatency(20 * time.Millisecond)
	listOnce(t, env, admin) // and nothing left of the creates in flight
	measure := func(c *apitest.Caller) listCost {
		env.DDB.Reset()
		listOnce(t, env, c)
		return (&listEnv{env}).cost(1)
	}
	a, m := measure(admin), measure(member)
	t.Logf("admin: %+v; member: %+v", a, m)
	if a.trips != 2 || m.trips > 1.5*a.trips {
		t.Errorf("round trips: member %v, admin %v; want admin 2, member at most 1.5 times", m.trips, a.trips)
	}
	if m.units > 1.5*a.units {
		t.Errorf("read units: member %v, admin %v; want at most 1.5 times", m.units, a.units)
	}
}
