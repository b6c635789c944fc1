package loadgen_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/connmgr/connmgr/local/clock"
	"github.com/connmgr/connmgr/local/loadgen"
	"github.com/connmgr/connmgr/local/logbuf"
	"github.com/connmgr/connmgr/local/runtime"
)

// TestSmallestSetting is make load's smallest setting against the whole
// local system: every route of the mix answers, only with its success
// status or a clear overload answer (429 or 503 with Retry-After and a
// code), and the report names every route.
func TestSmallestSetting(t *testing.T) {
	ctx := context.Background()
	rt, err := runtime.Start(ctx, runtime.Options{Addr: "127.0.0.1:0", Clock: clock.New(), Log: &logbuf.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	const requests = 30
	results, err := loadgen.Run(ctx, loadgen.Config{URL: rt.URL, Levels: []int{2}, Duration: time.Minute, Requests: requests, Connections: 4, Sites: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := loadgen.Check(results); err != nil {
		t.Error(err)
	}
	r := results[0]
	if r.N != requests {
		t.Errorf("%d requests answered, want %d", r.N, requests)
	}
	success := map[string]int{
		loadgen.RouteList: 200, loadgen.RouteGet: 200, loadgen.RoutePicker: 200, loadgen.RouteCreate: 201,
		loadgen.RouteUpdate: 200, loadgen.RouteTest: 200, loadgen.RouteRunStart: 202,
	}
	for _, rr := range r.Routes {
		if rr.N == 0 {
			t.Errorf("%s: no request", rr.Route)
		}
		for status, n := range rr.Statuses {
			if status != success[rr.Route] && status != 429 && status != 503 {
				t.Errorf("%s: %d × %d", rr.Route, n, status)
			}
		}
		if rr.P50 <= 0 || rr.P99 < rr.P50 {
			t.Errorf("%s: p50 %s p99 %s", rr.Route, rr.P50, rr.P99)
		}
	}
	var out bytes.Buffer
	loadgen.Format(&out, r)
	for route := range success {
		if !strings.Contains(out.String(), route) {
			t.Errorf("the report lacks %s:\n%s", route, out.String())
		}
	}
	t.Logf("\n%s", out.String())
}

// TestLoopbackOnly: the generator refuses any API off loopback before
// sending anything.
func TestLoopbackOnly(t *testing.T) {
	for _, u := range []string{"http://example.com", "http://10.0.0.1:3000", "ftp://127.0.0.1", "http://0.0.0.0:3000"} {
		if _, err := loadgen.Run(context.Background(), loadgen.Config{URL: u}, nil); err == nil || !strings.Contains(err.Error(), "loadgen:") {
			t.Errorf("%s: %v, want refused", u, err)
		}
	}
}
