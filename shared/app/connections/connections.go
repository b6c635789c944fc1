// Package connections wires the connections function: the connections HTTP
// API (connection CRUD, types, availability, owners, audit, OAuth
// authorization and client registrations, connection tests) over the
// table, the key (kms:GenerateDataKey only: it seals, never opens), the
// resolve function and the bus.
package connections

import (
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/connmgr/connmgr/shared/app"
	"github.com/connmgr/connmgr/shared/app/table"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/httpapi"
	"github.com/connmgr/connmgr/shared/manager"
	"github.com/connmgr/connmgr/shared/oauth"
	"github.com/connmgr/connmgr/shared/ratelimit"
	"github.com/connmgr/connmgr/shared/resolver/resolveclient"
	"github.com/connmgr/connmgr/shared/vault/kmsvault"
)

// Handler is the function's handler, the builder its main passes to app.Main.
func Handler(a *app.App) (any, error) { return app.Serve(Router(a)) }

// Router is the function's HTTP API.
func Router(a *app.App) (*httpapi.Router, error) {
	cfg := a.Config()
	st := table.Store(a)
	sealer := kmsvault.NewSealer(app.Client(a, app.KMS, kms.NewFromConfig), cfg.KMSKeyID)
	authz, err := oauth.NewAuthorizer(oauth.AuthorizerConfig{Store: st, Sealer: sealer, RedirectURI: cfg.OAuthRedirectURI,
		AllowLoopbackHTTP: cfg.LocalNetworks(), Now: a.Now})
	if err != nil {
		return nil, err
	}
	rt := httpapi.NewRouter(a.Logger())
	manager.New(manager.Deps{
		Store: st, Sealer: sealer, Authorizer: authz,
		Clients: oauth.NewRegistry(st, sealer, oauth.RegistryOptions{Now: a.Now, AllowLoopbackHTTP: cfg.LocalNetworks()}),
		Tester:  resolveclient.NewClient(app.Client(a, app.Lambda, lambda.NewFromConfig), cfg.ResolveFunction),
		Events:  table.Outbox(a), Now: a.Now, NewID: a.NewID, Expiry: table.Policy(a),
		Settings: connection.SettingsPolicy{AllowHTTP: cfg.LocalNetworks()},
	}).Routes(rt)
	// A test calls the resolver and the target: the costly route.
	rt.Admit(ratelimit.New(st, cfg.TenantCostlyRate, a.Now).Admit("test"), "POST /connections/{id}/test")
	return rt, nil
}
