package runtime

import (
	"context"
	"maps"
	"slices"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"

	"github.com/connmgr/connmgr/local/emulator"
)

// Calls records which AWS API operations each function made, so a test
// can hold them against the function's IAM role in template.yaml, and
// counts each function's requests and round trips (Counter).
type Calls struct {
	mu       sync.Mutex
	byFn     map[string]map[string]bool // logical id → "Service:Operation"
	counters map[string]*emulator.Counter
}

// Counter counts the AWS requests function fn (a logical id) sends, by
// service, and their sequential round trips (its Trips, one per function:
// a function's calls never join another's round trip).
func (c *Calls) Counter(fn string) *emulator.Counter {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counters == nil {
		c.counters = map[string]*emulator.Counter{}
	}
	if c.counters[fn] == nil {
		c.counters[fn] = &emulator.Counter{Trips: &emulator.RoundTrips{}}
	}
	return c.counters[fn]
}

// Counters are every function's counters, by logical id.
func (c *Calls) Counters() map[string]*emulator.Counter {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.counters)
}

func (c *Calls) record(fn string) func(*middleware.Stack) error {
	counter := c.Counter(fn)
	return func(stack *middleware.Stack) error {
		if err := counter.Middleware(stack); err != nil {
			return err
		}
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("connmgrRecordCall",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				op := awsmiddleware.GetServiceID(ctx) + ":" + middleware.GetOperationName(ctx)
				c.mu.Lock()
				if c.byFn == nil {
					c.byFn = map[string]map[string]bool{}
				}
				if c.byFn[fn] == nil {
					c.byFn[fn] = map[string]bool{}
				}
				c.byFn[fn][op] = true
				c.mu.Unlock()
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	}
}

// Of lists the operations function fn (a logical id) made, sorted, as
// "Service:Operation" (for example "DynamoDB:GetItem", "SFN:StartExecution").
func (c *Calls) Of(fn string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for op := range c.byFn[fn] {
		out = append(out, op)
	}
	slices.Sort(out)
	return out
}
