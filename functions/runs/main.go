// Command runs serves the workflow runs HTTP API: start, list, get, resume
// and terminate runs.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/connmgr/connmgr/shared/app"
	"github.com/connmgr/connmgr/shared/app/runs"
)

func main() { lambda.Start(app.Main(app.FnRuns, runs.Handler)) }
