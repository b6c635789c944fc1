// Command expiry-check is the scheduled expiry check: EventBridge invokes
// it on the ExpiryCheckSchedule rule (hourly by default).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/connmgr/connmgr/shared/app"
	"github.com/connmgr/connmgr/shared/app/expirycheck"
)

func main() { lambda.Start(app.Main(app.FnExpiryCheck, expirycheck.Handler)) }
