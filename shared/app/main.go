package app

import (
	"context"
	"fmt"
	"os"

	"github.com/connmgr/connmgr/shared/httpapi"
)

// Main builds function's application from the process environment, once
// per cold start, and returns the Lambda handler build makes of it: the
// function's own builder, such as runs.Handler from shared/app/runs, so its
// binary links only the clients and services that function uses. A
// configuration error ends the process: Lambda reports the failed init and
// retries a fresh environment.
func Main(function string, build func(*App) (any, error)) any {
	cfg, err := LoadConfig(function, os.Getenv)
	if err == nil {
		var a *App
		if a, err = New(context.Background(), cfg, Options{}); err == nil {
			var h any
			if h, err = build(a); err == nil {
				return h
			}
		}
	}
	fmt.Fprintf(os.Stderr, `{"level":"ERROR","msg":"init failed","function":%q,"error":%q}`+"\n", function, err.Error())
	os.Exit(1)
	return nil
}

// Serve is the Lambda handler of an HTTP function's router.
func Serve(rt *httpapi.Router, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return rt.Serve, nil
}
