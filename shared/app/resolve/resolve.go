// Package resolve wires the resolve function, invoked through Lambda
// Invoke (never HTTP): credential resolution, OAuth refresh, completing
// authorizations and connection tests, over the table, the key (the only
// function that may kms:Decrypt) and the bus.
package resolve

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/connmgr/connmgr/shared/app"
	"github.com/connmgr/connmgr/shared/app/table"
	"github.com/connmgr/connmgr/shared/httpaction"
	"github.com/connmgr/connmgr/shared/oauth"
	"github.com/connmgr/connmgr/shared/resolver"
	"github.com/connmgr/connmgr/shared/vault/kmsvault"
)

// Handler is the function's handler, the builder its main passes to app.Main.
func Handler(a *app.App) (any, error) {
	h, err := Resolver(a)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, ev json.RawMessage) (json.RawMessage, error) { return h.Handle(ctx, ev) }, nil
}

// Resolver serves the resolve function's operations.
func Resolver(a *app.App) (*resolver.Handler, error) {
	cfg := a.Config()
	st := table.Store(a)
	keys := app.Client(a, app.KMS, kms.NewFromConfig)
	cache := kmsvault.NewKeyCache(kmsvault.DefaultCacheEntries, kmsvault.DefaultCacheMaxAge, kmsvault.DefaultCacheMaxUses, a.Now)
	opener, sealer := kmsvault.NewOpener(keys, cache), kmsvault.NewSealer(keys, cfg.KMSKeyID)
	httpc := oauth.NewHTTPClient(oauth.HTTPOptions{AllowPrivateNetworks: cfg.LocalNetworks()})
	res, err := resolver.New(resolver.Config{Store: st, Opener: opener, Sealer: sealer, HTTPClient: httpc, Now: a.Now, Log: a.Logger(),
		NewID: a.NewID, Events: table.Outbox(a)})
	if err != nil {
		return nil, err
	}
	cb, err := oauth.NewCallback(oauth.CallbackConfig{Store: st, Opener: opener, Sealer: sealer, RedirectURI: cfg.OAuthRedirectURI,
		AllowLoopbackHTTP: cfg.LocalNetworks(), HTTPClient: httpc, Now: a.Now, NewID: a.NewID})
	if err != nil {
		return nil, err
	}
	return &resolver.Handler{Resolver: res, Callback: cb, Action: httpaction.New(cfg.TargetNetworks, httpaction.DefaultTimeout)}, nil
}
