package runtime

import (
	"context"
	"slices"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// Calls records which AWS API operations each function made, so a test
// can hold them against the function's IAM role in template.yaml.
type Calls struct {
	mu   sync.Mutex
	byFn map[string]map[string]bool // logical id → "Service:Operation"
}

func (c *Calls) record(fn string) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
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
