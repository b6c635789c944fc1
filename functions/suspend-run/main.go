// Command suspend-run is the state machine's callback task: it records the
// task token and marks the run suspended until it is resumed or 10 days pass.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/connmgr/connmgr/shared/app"
	"github.com/connmgr/connmgr/shared/app/suspendrun"
)

func main() { lambda.Start(app.Main(app.FnSuspendRun, suspendrun.Handler)) }
