// Package expirycheck wires the scheduled expiry check: refreshes through
// the resolve function, transitions and warnings in the table, events
// through the outbox, whose leftovers it drains.
package expirycheck

import (
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/connmgr/connmgr/shared/app"
	"github.com/connmgr/connmgr/shared/app/table"
	check "github.com/connmgr/connmgr/shared/expirycheck"
	"github.com/connmgr/connmgr/shared/outbox"
	"github.com/connmgr/connmgr/shared/resolver/resolveclient"
)

// Handler is the function's handler, the builder its main passes to app.Main.
func Handler(a *app.App) (any, error) {
	c, err := Check(a)
	if err != nil {
		return nil, err
	}
	return c.Handle, nil
}

// Check is the expiry check.
func Check(a *app.App) (*check.Check, error) {
	st := table.Store(a)
	drain := outbox.New(check.Settled(st, check.DefaultGrace, a.Now), table.Publisher(a), a.Logger())
	return check.New(check.Config{
		Store: st, Refresher: resolveclient.NewClient(app.Client(a, app.Lambda, lambda.NewFromConfig), a.Config().ResolveFunction),
		Events: table.Outbox(a), Outbox: drain, Policy: table.Policy(a), Now: a.Now, NewID: a.NewID, Log: a.Logger(),
	})
}
