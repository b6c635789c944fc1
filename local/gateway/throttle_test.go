package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/connmgr/connmgr/local/gateway"
	"github.com/connmgr/connmgr/local/sam"
)

// TestStageThrottling: past the burst, with no time to refill, the
// gateway answers API Gateway's own 429 without invoking the function;
// without a configuration it never throttles.
func TestStageThrottling(t *testing.T) {
	for _, tc := range []struct {
		rate   float64
		burst  int
		passed int
	}{{0.001, 3, 3}, {0, 0, 10}} {
		invoked := 0
		g, err := gateway.New(gateway.Config{ThrottleRate: tc.rate, ThrottleBurst: tc.burst, Functions: []gateway.Function{{
			Name: "f", Routes: []sam.Route{{Method: "GET", Path: "/x", Public: true}},
			Handler: func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
				invoked++
				return events.APIGatewayV2HTTPResponse{StatusCode: 200}, nil
			},
		}}})
		if err != nil {
			t.Fatal(err)
		}
		statuses := map[int]int{}
		for range 10 {
			w := httptest.NewRecorder()
			g.ServeHTTP(w, httptest.NewRequest("GET", "/x", nil))
			statuses[w.Code]++
			if w.Code == http.StatusTooManyRequests && strings.TrimSpace(w.Body.String()) != `{"message":"Too Many Requests"}` {
				t.Errorf("429 body %q", w.Body)
			}
		}
		if statuses[200] != tc.passed || statuses[429] != 10-tc.passed || invoked != tc.passed {
			t.Errorf("rate %v burst %d: statuses %v, invoked %d; want %d passed", tc.rate, tc.burst, statuses, invoked, tc.passed)
		}
	}
}
