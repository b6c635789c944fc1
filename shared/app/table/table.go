// Package table builds, for every function that keeps state (all but the
// OAuth callback), the store over the DynamoDB table and the outbox relay
// that publishes to the EventBridge bus what the store's transactions
// wrote. It must never build another service's client.
package table

import (
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"

	"github.com/connmgr/connmgr/shared/app"
	"github.com/connmgr/connmgr/shared/events"
	"github.com/connmgr/connmgr/shared/expiry"
	"github.com/connmgr/connmgr/shared/outbox"
	"github.com/connmgr/connmgr/shared/store"
)

type storeKey struct{}
type outboxKey struct{}

// Store is the function's store, with this deployment's due policy.
func Store(a *app.App) *store.Store {
	return app.Shared(a, storeKey{}, func() *store.Store {
		ddb := app.Client(a, app.DynamoDB, dynamodb.NewFromConfig, func(o *dynamodb.Options) {
			if a.Endpoint(app.DynamoDB) != "" {
				o.DisableValidateResponseChecksum = true // emulators send no X-Amz-Crc32
			}
		})
		return store.New(ddb, a.Config().TableName, a.Now).WithPolicy(Policy(a))
	})
}

// Publisher puts events on the function's bus.
func Publisher(a *app.App) *events.Publisher {
	return events.NewPublisher(app.Client(a, app.EventBridge, eventbridge.NewFromConfig), a.Config().EventBusName)
}

// Outbox publishes the events committed changes wrote.
func Outbox(a *app.App) *outbox.Relay {
	return app.Shared(a, outboxKey{}, func() *outbox.Relay { return outbox.New(Store(a), Publisher(a), a.Logger()) })
}

// Policy is the due policy: the defaults with this deployment's window.
func Policy(a *app.App) expiry.Policy {
	return expiry.Policy{ExpiringWindow: a.Config().ExpiringWindow}.WithDefaults()
}
