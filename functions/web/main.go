// Command web serves the Connections page: GET / and its assets, public,
// from files embedded in the binary. It has no access to the table, the
// key or any other function.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/connmgr/connmgr/shared/app"
	"github.com/connmgr/connmgr/shared/app/web"
)

func main() { lambda.Start(app.Main(app.FnWeb, web.Handler)) }
