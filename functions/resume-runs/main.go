// Command resume-runs is the EventBridge target of Connection Updated: it
// resumes the runs suspended on the updated connection.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/connmgr/connmgr/shared/app"
	"github.com/connmgr/connmgr/shared/app/resumeruns"
)

func main() { lambda.Start(app.Main(app.FnResumeRuns, resumeruns.Handler)) }
