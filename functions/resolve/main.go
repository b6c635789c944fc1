// Command resolve hands credentials to workflow steps (Lambda Invoke, never
// HTTP), refreshes OAuth tokens, completes OAuth authorizations and tests
// connections. It is the only function allowed to call kms:Decrypt.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/connmgr/connmgr/shared/app"
	"github.com/connmgr/connmgr/shared/app/resolve"
)

func main() { lambda.Start(app.Main(app.FnResolve, resolve.Handler)) }
