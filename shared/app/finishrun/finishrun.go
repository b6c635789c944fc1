// Package finishrun wires the finish-run function, the state machine's
// final task: the run's final status in the table, its event on the bus.
package finishrun

import (
	"github.com/connmgr/connmgr/shared/app"
	"github.com/connmgr/connmgr/shared/app/table"
	"github.com/connmgr/connmgr/shared/workflow"
)

// Handler is the function's handler, the builder its main passes to app.Main.
func Handler(a *app.App) (any, error) {
	return workflow.New(workflow.Deps{Store: table.Store(a), Events: table.Outbox(a), Now: a.Now, NewID: a.NewID, Log: a.Logger()}).Finish, nil
}
