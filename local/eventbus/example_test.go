package eventbus_test

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/connmgr/connmgr/local/eventbus"
	"github.com/connmgr/connmgr/local/lambdaserver"
	"github.com/connmgr/connmgr/local/sam"
)

// A bus delivers matching events to functions of a lambdaserver registry.
// The local runtime takes the rules from Template.EventRules and registers
// every function of Template.Functions under its logical id.
func ExampleNew() {
	reg := lambdaserver.NewRegistry(lambdaserver.Options{})
	defer reg.Close()
	reg.RegisterFunc("ResumeRunsFunction", func(ctx context.Context, ev events.EventBridgeEvent) error {
		fmt.Printf("%s from %s: %s\n", ev.DetailType, ev.Source, ev.Detail)
		return nil
	}, 0)
	bus, err := eventbus.New(eventbus.Options{Invoker: reg, Rules: []sam.EventRule{{
		Name: "ConnectionUpdated", EventBus: "default", Enabled: true,
		Pattern: map[string]any{"detail-type": []any{"Connection Updated"}},
		Targets: []sam.EventTarget{{ID: "resume", Function: "ResumeRunsFunction"}},
	}}})
	if err != nil {
		panic(err)
	}
	defer bus.Close()
	res, _ := bus.PutEvents(context.Background(), []eventbus.Entry{
		{Source: "connmgr.connections", DetailType: "Connection Updated", Detail: `{"connectionId":"c-1"}`},
		{Source: "connmgr.connections", DetailType: "Connection Deleted", Detail: `{"connectionId":"c-2"}`},
		{Source: "connmgr.connections", DetailType: "Connection Updated", Detail: `[1]`},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reg.WaitIdle(ctx)
	fmt.Println(res[2].ErrorCode, len(bus.Events("")))
	// Output:
	// Connection Updated from connmgr.connections: {"connectionId":"c-1"}
	// MalformedDetail 2
}
