// Command finish-run is the state machine's final task: it gives a run its
// final status (succeeded, failed or terminated) and emits the event once.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/connmgr/connmgr/shared/app"
	"github.com/connmgr/connmgr/shared/app/finishrun"
)

func main() { lambda.Start(app.Main(app.FnFinishRun, finishrun.Handler)) }
