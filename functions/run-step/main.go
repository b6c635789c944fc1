// Command run-step is the state machine's task for one connector action: it
// resolves the step's credential through the resolve function and performs
// the request against the connection's own host.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/connmgr/connmgr/shared/app"
	"github.com/connmgr/connmgr/shared/app/runstep"
)

func main() { lambda.Start(app.Main(app.FnRunStep, runstep.Handler)) }
