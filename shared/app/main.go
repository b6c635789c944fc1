package app

import (
	"context"
	"fmt"
	"os"

	"github.com/connmgr/connmgr/shared/httpapi"
)

// FromEnv builds function's application from the process environment, once
// per cold start. A configuration error ends the process: Lambda reports
// the failed init and retries a fresh environment.
func FromEnv(function string) *App {
	cfg, err := LoadConfig(function, os.Getenv)
	if err == nil {
		var a *App
		if a, err = New(context.Background(), cfg, Options{}); err == nil {
			return a
		}
	}
	fmt.Fprintf(os.Stderr, `{"level":"ERROR","msg":"init failed","function":%q,"error":%q}`+"\n", function, err.Error())
	os.Exit(1)
	return nil
}

// MustRouter is the HTTP router of function, or ends the process.
func (a *App) MustRouter(function string) *httpapi.Router {
	rt, err := a.Router(function)
	if err != nil {
		fmt.Fprintf(os.Stderr, `{"level":"ERROR","msg":"init failed","function":%q,"error":%q}`+"\n", function, err.Error())
		os.Exit(1)
	}
	return rt
}
