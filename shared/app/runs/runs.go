// Package runs wires the runs function: the workflow runs HTTP API (start,
// list, get, resume, terminate) over the table, Step Functions and the bus.
package runs

import (
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/connmgr/connmgr/shared/app"
	"github.com/connmgr/connmgr/shared/app/table"
	"github.com/connmgr/connmgr/shared/httpapi"
	"github.com/connmgr/connmgr/shared/ratelimit"
	"github.com/connmgr/connmgr/shared/workflow"
	"github.com/connmgr/connmgr/shared/workflow/sfnengine"
)

// Handler is the function's handler, the builder its main passes to app.Main.
func Handler(a *app.App) (any, error) { return app.Serve(Router(a)) }

// Router is the function's HTTP API.
func Router(a *app.App) (*httpapi.Router, error) {
	rt := httpapi.NewRouter(a.Logger())
	workflow.New(workflow.Deps{
		Store: table.Store(a), Engine: sfnengine.New(app.Client(a, app.StepFunctions, sfn.NewFromConfig), a.Config().StateMachineARN),
		Events: table.Outbox(a), Now: a.Now, NewID: a.NewID, Log: a.Logger(),
	}).Routes(rt)
	// A start writes the run and starts an execution: the costly route.
	rt.Admit(ratelimit.New(table.Store(a), a.Config().TenantCostlyRate, a.Now).Admit("runstart"), "POST /runs")
	return rt, nil
}
