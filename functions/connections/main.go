// Command connections serves the connections HTTP API: connection CRUD,
// connection types, availability, owners and audit.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/connmgr/connmgr/shared/app"
)

func main() {
	lambda.Start(app.FromEnv(app.FnConnections).MustRouter(app.FnConnections).Serve)
}
