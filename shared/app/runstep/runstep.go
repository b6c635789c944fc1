// Package runstep wires the run-step function, the state machine's task
// for one connector action: the credential from the resolve function, the
// request to the connection's own host, the result in the table.
package runstep

import (
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/connmgr/connmgr/shared/app"
	"github.com/connmgr/connmgr/shared/app/table"
	"github.com/connmgr/connmgr/shared/httpaction"
	"github.com/connmgr/connmgr/shared/resolver/resolveclient"
	"github.com/connmgr/connmgr/shared/workflow"
)

// Handler is the function's handler, the builder its main passes to app.Main.
func Handler(a *app.App) (any, error) {
	cfg := a.Config()
	return workflow.New(workflow.Deps{
		Store: table.Store(a), Credentials: resolveclient.NewClient(app.Client(a, app.Lambda, lambda.NewFromConfig), cfg.ResolveFunction),
		Action: httpaction.New(cfg.TargetNetworks, httpaction.DefaultTimeout),
		Events: table.Outbox(a), Now: a.Now, NewID: a.NewID, Log: a.Logger(),
	}).RunStep, nil
}
