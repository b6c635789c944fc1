// Command dev runs the whole system locally (`make dev`): the API on
// http://127.0.0.1:3000 (PORT overrides the port; it listens on loopback
// only) over in-process DynamoDB and KMS emulators. It says on stderr what
// it is doing while it starts, then prints the banner on stdout. It stops
// on SIGINT or SIGTERM.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/connmgr/connmgr/local/runtime"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "dev:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	began := time.Now()
	say := func(msg string) { fmt.Fprintf(os.Stderr, "dev: %5.1fs  %s\n", time.Since(began).Seconds(), msg) }
	say("starting the local runtime")
	opts := runtime.Options{Addr: runtime.DefaultAddr, Log: os.Stderr, Progress: say}
	if port := os.Getenv("PORT"); port != "" {
		opts.Addr = "127.0.0.1:" + port
	}
	if lvl := os.Getenv("LOG_LEVEL"); lvl != "" {
		if err := opts.LogLevel.UnmarshalText([]byte(lvl)); err != nil {
			return fmt.Errorf("LOG_LEVEL: %w", err)
		}
	}
	rt, err := runtime.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer rt.Close()
	if err := rt.Banner(os.Stdout); err != nil {
		return err
	}
	say("ready at " + rt.URL)
	select {
	case <-ctx.Done():
		fmt.Fprintln(os.Stderr, "dev: stopping")
		return rt.Close()
	case err := <-rt.Done():
		return err
	}
}
