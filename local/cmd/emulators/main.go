// Command emulators starts the local stand-ins for the AWS services the
// functions call, alone: DynamoDB and KMS with template.yaml's table and
// key, the Lambda Invoke API, Step Functions with the template's state
// machines, and EventBridge with its rules and schedules (local/standins,
// what `make dev` runs in-process). It prints their endpoints and each
// function's environment against them, for running the bootstraps under
// the Lambda Runtime Interface Emulator (aws-lambda-rie) or SAM local.
//
// The functions themselves run elsewhere: name each one's invoke URL with
// -function, and the state machines, the bus and the other functions'
// Lambda clients reach it there. An unnamed function answers every
// invocation with a FunctionNotRunning error saying so.
//
//	go run ./local/cmd/emulators \
//	  -function ResolveFunction=http://127.0.0.1:9001/2015-03-31/functions/function/invocations
//
// Everything listens on loopback; the stand-ins stop on SIGINT or SIGTERM.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/connmgr/connmgr/local/emulator"
	"github.com/connmgr/connmgr/local/lambdaserver"
	"github.com/connmgr/connmgr/local/sam"
	"github.com/connmgr/connmgr/local/standins"
)

// pairs is a repeatable Name=Value flag.
type pairs map[string]string

func (p pairs) String() string { return fmt.Sprint(map[string]string(p)) }

func (p pairs) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want Name=Value, got %q", v)
	}
	p[k] = val
	return nil
}

func main() {
	remote, params := pairs{}, pairs{}
	flag.Var(remote, "function", "`Name=URL`: invoke the template's function Name (its logical id) at URL, e.g. aws-lambda-rie's http://127.0.0.1:9001/2015-03-31/functions/function/invocations (repeatable)")
	flag.Var(params, "parameter", "`Name=Value`: a template parameter's local value (repeatable; see the defaults printed)")
	envJSON := flag.String("env-json", "", "also write every function's environment to this `file`, as sam local's --env-vars reads it")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, remote, params, *envJSON); err != nil {
		fmt.Fprintln(os.Stderr, "emulators:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, remote, overrides map[string]string, envJSON string) error {
	tmpl, err := sam.LoadFromWorkingDir()
	if err != nil {
		return err
	}
	fns, err := tmpl.Functions()
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if lvl := os.Getenv("LOG_LEVEL"); lvl != "" {
		if err := level.UnmarshalText([]byte(lvl)); err != nil {
			return fmt.Errorf("LOG_LEVEL: %w", err)
		}
	}
	logger := func(component string) *slog.Logger {
		return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With(slog.String("component", component))
	}
	si, err := standins.Start(ctx, tmpl, standins.Options{Logger: logger})
	if err != nil {
		return err
	}
	defer si.Close()
	params := standins.LocalParameters("http://127.0.0.1:3000", level)
	maps.Copy(params, overrides)
	known := map[string]bool{}
	for _, f := range fns {
		known[f.LogicalID] = true
		var h lambdaserver.Function
		if u, ok := remote[f.LogicalID]; ok {
			if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
				return fmt.Errorf("-function %s=%s: not an http(s) URL", f.LogicalID, u)
			}
			h = lambdaserver.Function{Name: f.LogicalID, Handler: standins.Remote{URL: u}}
		} else {
			h = lambdaserver.Function{Name: f.LogicalID, Handler: notRunning(f.LogicalID)}
		}
		h.Timeout = time.Duration(f.Timeout) * time.Second
		if err := si.Lambda.Register(h); err != nil {
			return err
		}
	}
	for name := range remote {
		if !known[name] {
			return fmt.Errorf("-function %s: %s has no such function", name, sam.TemplateFile)
		}
	}
	if err := si.ServeBus(params); err != nil {
		return err
	}
	envs := map[string]map[string]string{}
	for _, f := range fns {
		env, err := si.Env(f, params)
		if err != nil {
			return err
		}
		env["AWS_REGION"], env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = emulator.Region, "local", "local"
		envs[f.LogicalID] = env
	}
	if envJSON != "" {
		b, _ := json.MarshalIndent(envs, "", "  ")
		if err := os.WriteFile(envJSON, append(b, '\n'), 0o600); err != nil {
			return err
		}
	}
	printBanner(out, si, fns, remote, params, envs)
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "emulators: stopping")
	return nil
}

// notRunning answers for a function nobody named with -function.
type notRunning string

func (n notRunning) Invoke(context.Context, []byte) ([]byte, error) {
	return nil, messages.InvokeResponse_Error{Type: "FunctionNotRunning",
		Message: fmt.Sprintf("%s is not running here: start it under aws-lambda-rie (or sam local start-lambda) and pass -function %s=<its invoke URL>", string(n), string(n))}
}

func printBanner(out io.Writer, si *standins.StandIns, fns []sam.Function, remote, params map[string]string, envs map[string]map[string]string) {
	fmt.Fprintf(out, "AWS stand-ins for %s (loopback only; Ctrl-C stops them)\n\n", sam.TemplateFile)
	fmt.Fprintf(out, "  DynamoDB        %s  table %s\n", si.Stack.DynamoDB.URL, si.Stack.TableName)
	fmt.Fprintf(out, "  KMS             %s  key %s (%s)\n", si.Stack.KMS.URL, si.Stack.KeyID, si.Stack.KeyAlias)
	fmt.Fprintf(out, "  Lambda          %s\n", si.LambdaURL)
	fmt.Fprintf(out, "  Step Functions  %s\n", si.SFNURL)
	fmt.Fprintf(out, "  EventBridge     %s\n", si.EventsURL)
	fmt.Fprintf(out, "\nParameters: ")
	for i, k := range slices.Sorted(maps.Keys(params)) {
		if i > 0 {
			fmt.Fprint(out, " ")
		}
		fmt.Fprintf(out, "%s=%s", k, params[k])
	}
	fmt.Fprintf(out, "\n\nFunctions (the state machines, the bus and the Lambda API invoke them by logical id):\n")
	for _, f := range fns {
		where := "not running (-function " + f.LogicalID + "=<invoke URL>)"
		if u, ok := remote[f.LogicalID]; ok {
			where = u
		}
		fmt.Fprintf(out, "  %-24s %s\n", f.LogicalID, where)
	}
	fmt.Fprintf(out, "\nEach function's environment against the stand-ins. To run a bootstrap (go build -tags lambda.norpc) under the\n"+
		"Runtime Interface Emulator (go tool aws-lambda-rie), always on a loopback address:\n"+
		"  env <its line> go tool aws-lambda-rie --runtime-interface-emulator-address 127.0.0.1:9001 --runtime-api-address 127.0.0.1:9101 ./bootstrap\n"+
		"then name it here: -function <LogicalId>=http://127.0.0.1:9001/2015-03-31/functions/function/invocations\n")
	for _, f := range fns {
		env := envs[f.LogicalID]
		fmt.Fprintf(out, "\n# %s (functions/%s)\n", f.LogicalID, f.Folder)
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(env)) {
			kv = append(kv, k+"="+shellQuote(env[k]))
		}
		fmt.Fprintln(out, strings.Join(kv, " "))
	}
}

// shellQuote quotes v for a POSIX shell when it needs it.
func shellQuote(v string) string {
	if v != "" && strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@%+=,") == "" {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}
