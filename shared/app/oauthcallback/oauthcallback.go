// Package oauthcallback wires the OAuth callback function: the public
// GET /oauth/callback route, which hands the provider's answer to the
// resolve function. It must never reach the table or the key: it builds
// the Lambda client and nothing else.
package oauthcallback

import (
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/connmgr/connmgr/shared/app"
	"github.com/connmgr/connmgr/shared/authpage"
	"github.com/connmgr/connmgr/shared/httpapi"
	"github.com/connmgr/connmgr/shared/resolver/resolveclient"
)

// Handler is the function's handler, the builder its main passes to app.Main.
func Handler(a *app.App) (any, error) { return app.Serve(Router(a)) }

// Router serves the callback page.
func Router(a *app.App) (*httpapi.Router, error) {
	rt := httpapi.NewRouter(a.Logger())
	authpage.New(resolveclient.NewClient(app.Client(a, app.Lambda, lambda.NewFromConfig), a.Config().ResolveFunction), a.Logger()).Routes(rt)
	return rt, nil
}
