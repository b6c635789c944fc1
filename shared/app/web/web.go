// Package web wires the web function: the Connections page (GET / and its
// assets), served from the files embedded in the binary. It builds no AWS
// client and reaches no table, key or other function.
package web

import (
	"github.com/connmgr/connmgr/shared/app"
	"github.com/connmgr/connmgr/shared/httpapi"
	"github.com/connmgr/connmgr/shared/webpage"
	files "github.com/connmgr/connmgr/web"
)

// Handler is the function's handler, the builder its main passes to app.Main.
func Handler(a *app.App) (any, error) { return app.Serve(Router(a)) }

// Router serves the page.
func Router(a *app.App) (*httpapi.Router, error) {
	cfg := a.Config()
	site, err := webpage.New(files.Files, webpage.Config{Issuer: cfg.JwtIssuer, Audience: cfg.JwtAudience, ClientID: cfg.PageClientID,
		TokenEndpoint: cfg.PageTokenEndpoint})
	if err != nil {
		return nil, err
	}
	rt := httpapi.NewRouter(a.Logger())
	site.Routes(rt)
	return rt, nil
}
