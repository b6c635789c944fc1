package app

import (
	"context"
	"fmt"
	"os"
)

// Main builds function's application from the process environment, once
// per cold start, and returns its Lambda handler. A configuration error
// ends the process: Lambda reports the failed init and retries a fresh
// environment.
func Main(function string) any {
	cfg, err := LoadConfig(function, os.Getenv)
	if err == nil {
		var a *App
		if a, err = New(context.Background(), cfg, Options{}); err == nil {
			var h any
			if h, err = a.Handler(function); err == nil {
				return h
			}
		}
	}
	fmt.Fprintf(os.Stderr, `{"level":"ERROR","msg":"init failed","function":%q,"error":%q}`+"\n", function, err.Error())
	os.Exit(1)
	return nil
}
