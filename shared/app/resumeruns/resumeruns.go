// Package resumeruns wires the resume-runs function, the EventBridge
// target of Connection Updated and Connection Recovered: it resumes the
// runs suspended on the connection through Step Functions.
package resumeruns

import (
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/connmgr/connmgr/shared/app"
	"github.com/connmgr/connmgr/shared/app/table"
	"github.com/connmgr/connmgr/shared/workflow"
	"github.com/connmgr/connmgr/shared/workflow/sfnengine"
)

// Handler is the function's handler, the builder its main passes to app.Main.
func Handler(a *app.App) (any, error) {
	return workflow.New(workflow.Deps{
		Store: table.Store(a), Engine: sfnengine.New(app.Client(a, app.StepFunctions, sfn.NewFromConfig), a.Config().StateMachineARN),
		Events: table.Outbox(a), Now: a.Now, NewID: a.NewID, Log: a.Logger(), AutoResume: a.Config().AutoResume,
	}).ResumeOnEvent, nil
}
