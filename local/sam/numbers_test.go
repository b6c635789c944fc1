package sam_test

import (
	"strconv"
	"testing"

	"github.com/connmgr/connmgr/local/sam"
)

// TestContractStageThrottling: the HTTP API's stage throttling is set from
// the template's parameters, and the typed parse (which the local gateway
// reads) sees their defaults.
func TestContractStageThrottling(t *testing.T) {
	tmpl, err := sam.LoadFromWorkingDir()
	if err != nil {
		t.Fatal(err)
	}
	api, err := tmpl.HTTPAPI()
	if err != nil {
		t.Fatal(err)
	}
	th := api.Throttle
	if th.RateParam != "ApiThrottlingRateLimit" || th.BurstParam != "ApiThrottlingBurstLimit" {
		t.Fatalf("stage throttling set by %q and %q, want the parameters ApiThrottlingRateLimit and ApiThrottlingBurstLimit", th.RateParam, th.BurstParam)
	}
	for param, got := range map[string]float64{th.RateParam: th.Rate, th.BurstParam: float64(th.Burst)} {
		def, _ := tmpl.CF.Parameters[param].Default.(string)
		if want, err := strconv.ParseFloat(def, 64); err != nil || got != want || got <= 0 {
			t.Errorf("%s: typed value %v, want its default %q", param, got, def)
		}
	}
	if th.Burst < int(th.Rate) {
		t.Errorf("burst %d below the rate %v: a second's worth could never arrive at once", th.Burst, th.Rate)
	}
}
