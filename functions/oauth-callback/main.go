// Command oauth-callback serves the public GET /oauth/callback route: it
// passes the provider's answer to the resolve function and shows the
// result. It has no access to the table or the key.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/connmgr/connmgr/shared/app"
	"github.com/connmgr/connmgr/shared/app/oauthcallback"
)

func main() { lambda.Start(app.Main(app.FnOAuthCallback, oauthcallback.Handler)) }
