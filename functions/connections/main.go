// Command connections serves the connections HTTP API: connection CRUD,
// connection types, availability, owners, audit, OAuth authorization and
// client registrations, and connection tests.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/connmgr/connmgr/shared/app"
	"github.com/connmgr/connmgr/shared/app/connections"
)

func main() { lambda.Start(app.Main(app.FnConnections, connections.Handler)) }
