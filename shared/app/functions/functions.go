// Package functions builds any function by name, for the local runtime and
// the tests that start functions as their mains do. No main may import it:
// it links every function's dependencies.
package functions

import (
	"fmt"

	"github.com/connmgr/connmgr/shared/app"
	"github.com/connmgr/connmgr/shared/app/connections"
	"github.com/connmgr/connmgr/shared/app/expirycheck"
	"github.com/connmgr/connmgr/shared/app/finishrun"
	"github.com/connmgr/connmgr/shared/app/oauthcallback"
	"github.com/connmgr/connmgr/shared/app/resolve"
	"github.com/connmgr/connmgr/shared/app/resumeruns"
	"github.com/connmgr/connmgr/shared/app/runs"
	"github.com/connmgr/connmgr/shared/app/runstep"
	"github.com/connmgr/connmgr/shared/app/suspendrun"
	"github.com/connmgr/connmgr/shared/app/web"
	"github.com/connmgr/connmgr/shared/httpapi"
)

var builders = map[string]func(*app.App) (any, error){
	app.FnConnections:   connections.Handler,
	app.FnOAuthCallback: oauthcallback.Handler,
	app.FnResolve:       resolve.Handler,
	app.FnRuns:          runs.Handler,
	app.FnRunStep:       runstep.Handler,
	app.FnSuspendRun:    suspendrun.Handler,
	app.FnFinishRun:     finishrun.Handler,
	app.FnResumeRuns:    resumeruns.Handler,
	app.FnExpiryCheck:   expirycheck.Handler,
	app.FnWeb:           web.Handler,
}

var routers = map[string]func(*app.App) (*httpapi.Router, error){
	app.FnConnections:   connections.Router,
	app.FnOAuthCallback: oauthcallback.Router,
	app.FnRuns:          runs.Router,
	app.FnWeb:           web.Router,
}

// Builder is function's builder: the one its main passes to app.Main (the
// template contract test checks each main against it).
func Builder(function string) (func(*app.App) (any, error), bool) {
	b, ok := builders[function]
	return b, ok
}

// Handler returns function's Lambda handler, built from a.
func Handler(a *app.App, function string) (any, error) {
	b, ok := builders[function]
	if !ok {
		return nil, fmt.Errorf("functions: unknown function %q", function)
	}
	return b(a)
}

// Router returns the HTTP API router of an HTTP function, built from a.
func Router(a *app.App, function string) (*httpapi.Router, error) {
	r, ok := routers[function]
	if !ok {
		return nil, fmt.Errorf("functions: %s is not an HTTP function", function)
	}
	return r(a)
}
