// Package standins starts the local stand-ins for the AWS services the
// functions call, with template.yaml's resources in them: DynamoDB and KMS
// (local/emulator: the table, the key), the Lambda Invoke API
// (local/lambdaserver), Step Functions (local/asl behind local/sfnserver:
// the template's state machines, their tasks invoking the registered
// functions) and EventBridge (local/eventbus: the template's rules and
// schedules, delivering to the registered functions). It resolves each
// function's template environment to them (Env).
//
// The local runtime (make dev) registers the functions in-process;
// `go run ./local/cmd/emulators` and the RIE smoke test register them as
// Remote functions running under the Runtime Interface Emulator.
//
// Everything listens on loopback only.
package standins

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/connmgr/connmgr/local/asl"
	"github.com/connmgr/connmgr/local/clock"
	"github.com/connmgr/connmgr/local/devauth"
	"github.com/connmgr/connmgr/local/emulator"
	"github.com/connmgr/connmgr/local/eventbus"
	"github.com/connmgr/connmgr/local/lambdaserver"
	"github.com/connmgr/connmgr/local/loopback"
	"github.com/connmgr/connmgr/local/sam"
	"github.com/connmgr/connmgr/local/sfnserver"
	"github.com/connmgr/connmgr/shared/app"
)

// Options configure Start; zero values are fine.
type Options struct {
	// Clock drives the Lambda retries, the state machines and the
	// schedules (nil: real time).
	Clock *clock.Clock
	// Logger returns the logger of a component ("lambda", "stepfunctions",
	// "events"); nil discards their logs.
	Logger func(component string) *slog.Logger
	// EngineInvoker wraps how the Step Functions engine invokes the
	// functions (nil: as registered).
	EngineInvoker func(next asl.Invoker) asl.Invoker
	// SFNLimits throttles the Step Functions API as its quotas do (nil:
	// unlimited); tests shrink a bucket to see throttling.
	SFNLimits *sfnserver.Limits
	// EventLogSize is how many events the bus keeps for Events (0:
	// eventbus.DefaultLogSize).
	EventLogSize int
	// Stack chooses the DynamoDB and KMS addresses and KMS's folder.
	Stack emulator.StackOptions
}

// StandIns are the running stand-ins.
type StandIns struct {
	Template *sam.Template
	Stack    *emulator.Stack
	// Lambda holds the functions, invoked by name (their logical ids)
	// through the Lambda API at LambdaURL, by the state machines and by the
	// bus. Register them before ServeBus.
	Lambda    *lambdaserver.Registry
	LambdaURL string
	Engine    *asl.Engine
	SFNURL    string
	// Bus is nil until ServeBus; EventsURL is its address from the start.
	Bus       *eventbus.Bus
	EventsURL string

	opts          Options
	busLn         net.Listener
	stateMachines map[string]string // logical id -> ARN
	closers       []func()
}

// Start runs the stand-ins and creates the template's table, key and state
// machines. The bus's address is known at once (it is part of every
// function's environment), but it serves only after ServeBus.
func Start(ctx context.Context, tmpl *sam.Template, opts Options) (_ *StandIns, err error) {
	if opts.Clock == nil {
		opts.Clock = clock.New()
	}
	if opts.Logger == nil {
		discard := slog.New(slog.NewTextHandler(io.Discard, nil))
		opts.Logger = func(string) *slog.Logger { return discard }
	}
	s := &StandIns{Template: tmpl, opts: opts}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.Stack, err = emulator.Start(ctx, tmpl, opts.Stack); err != nil {
		return nil, fmt.Errorf("standins: DynamoDB and KMS: %w", err)
	}
	s.closers = append(s.closers, s.Stack.Close)
	s.Lambda = lambdaserver.NewRegistry(lambdaserver.Options{Clock: opts.Clock, Region: emulator.Region, AccountID: emulator.AccountID, Logger: opts.Logger("lambda")})
	s.closers = append(s.closers, s.Lambda.Close)
	lsrv, err := lambdaserver.Start("", s.Lambda)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { lsrv.Close() })
	s.LambdaURL = lsrv.URL
	if s.busLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { s.busLn.Close() })
	s.EventsURL = "http://" + s.busLn.Addr().String()
	if err := s.startStepFunctions(); err != nil {
		return nil, err
	}
	return s, nil
}

// startStepFunctions loads every state machine of the template into the
// local engine, its substitutions resolved to the registry's functions,
// and serves the Step Functions API.
func (s *StandIns) startStepFunctions() error {
	var invoker asl.Invoker = s.Lambda
	if s.opts.EngineInvoker != nil {
		invoker = s.opts.EngineInvoker(invoker)
	}
	s.Engine = asl.NewEngine(asl.Options{Clock: s.opts.Clock, Invoker: invoker, Region: emulator.Region, AccountID: emulator.AccountID, Logger: s.opts.Logger("stepfunctions")})
	s.closers = append(s.closers, s.Engine.Close)
	machines, err := s.Template.StateMachines()
	if err != nil {
		return err
	}
	s.stateMachines = map[string]string{}
	for _, m := range machines {
		subs := map[string]string{}
		for name, v := range m.Substitutions {
			target, ok := sam.GetAttTarget(v)
			fn, attr, _ := strings.Cut(target, ".")
			if _, err := s.Template.CF.GetServerlessFunctionWithName(fn); !ok || err != nil || attr != "Arn" {
				return fmt.Errorf("standins: state machine %s substitution %s = %q: only !GetAtt <Function>.Arn is resolved locally", m.LogicalID, name, v)
			}
			subs[name] = s.Lambda.ARN(fn)
		}
		sm, err := s.Engine.CreateStateMachine(asl.StateMachineSpec{Name: m.LogicalID, Definition: m.Definition, Substitutions: subs})
		if err != nil {
			return fmt.Errorf("standins: state machine %s: %w", m.LogicalID, err)
		}
		s.stateMachines[m.LogicalID] = sm.ARN
	}
	srv, err := loopback.Serve("", sfnserver.HandlerWith(s.Engine, s.opts.SFNLimits), nil)
	if err != nil {
		return fmt.Errorf("standins: step functions: %w", err)
	}
	s.closers = append(s.closers, func() { srv.Close() })
	s.SFNURL = srv.URL
	return nil
}

// ServeBus starts the bus with the template's rules and schedules (a
// schedule from a parameter takes params' value, else its default) and
// serves the EventBridge API at EventsURL. Every function a rule targets
// must be registered first.
func (s *StandIns) ServeBus(params map[string]string) error {
	rules, err := s.Template.EventRules()
	if err != nil {
		return err
	}
	for i, r := range rules {
		if _, ok := sam.RefTarget(r.Schedule); ok {
			if rules[i].Schedule, err = s.Value(r.Schedule, params); err != nil {
				return fmt.Errorf("standins: rule %s schedule: %w", r.Name, err)
			}
		}
	}
	if s.Bus, err = eventbus.New(eventbus.Options{Rules: rules, Invoker: s.Lambda, Clock: s.opts.Clock, Region: emulator.Region, AccountID: emulator.AccountID, Logger: s.opts.Logger("events"), LogSize: s.opts.EventLogSize}); err != nil {
		return fmt.Errorf("standins: event bus: %w", err)
	}
	s.closers = append(s.closers, s.Bus.Close)
	srv := &http.Server{Handler: eventbus.Handler(s.Bus), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(s.busLn)
	s.closers = append(s.closers, func() { srv.Close() })
	return nil
}

// StateMachineARN is the local ARN of the template's state machine id.
func (s *StandIns) StateMachineARN(id string) string { return s.stateMachines[id] }

// Value resolves one environment value of the template to its local
// counterpart: a parameter to params' value or its default, the table to
// its name, a function to its logical id (the registry's name for it), the
// bus to its logical id, a state machine or a function to its local ARN,
// the key to its ARN.
func (s *StandIns) Value(v string, params map[string]string) (string, error) {
	t := s.Template
	if target, ok := sam.RefTarget(v); ok {
		if p, ok := params[target]; ok {
			return p, nil
		}
		if p, ok := t.CF.Parameters[target]; ok {
			if d, ok := p.Default.(string); ok {
				return d, nil
			}
			return "", fmt.Errorf("parameter %s has no local value", target)
		}
		if _, ok := t.CF.GetAllDynamoDBTableResources()[target]; ok {
			return s.Stack.TableName, nil
		}
		if _, err := t.CF.GetServerlessFunctionWithName(target); err == nil {
			return target, nil
		}
		if _, ok := t.CF.GetAllEventsEventBusResources()[target]; ok {
			return target, nil // the local bus routes by the bus's logical id
		}
		if arn, ok := s.stateMachines[target]; ok {
			return arn, nil
		}
		return "", fmt.Errorf("no local value for !Ref %s", target)
	}
	if target, ok := sam.GetAttTarget(v); ok {
		res, attr, _ := strings.Cut(target, ".")
		if _, ok := t.CF.GetAllKMSKeyResources()[res]; ok && attr == "Arn" {
			return s.Stack.KeyID, nil
		}
		if _, err := t.CF.GetServerlessFunctionWithName(res); err == nil && attr == "Arn" {
			return s.Lambda.ARN(res), nil
		}
		return "", fmt.Errorf("no local value for !GetAtt %s", target)
	}
	if strings.HasPrefix(v, "sub:") {
		return "", fmt.Errorf("!Sub values are not resolved locally: %s", v)
	}
	return v, nil
}

// Env is f's environment as its main reads it against the stand-ins: the
// template's variables resolved by Value, and the endpoint variables
// pointing every client at its stand-in.
func (s *StandIns) Env(f sam.Function, params map[string]string) (map[string]string, error) {
	env := map[string]string{
		app.EnvDynamoDBEndpoint: s.Stack.DynamoDB.URL,
		app.EnvKMSEndpoint:      s.Stack.KMS.URL,
		app.EnvLambdaEndpoint:   s.LambdaURL,
		app.EnvEventsEndpoint:   s.EventsURL,
		app.EnvSFNEndpoint:      s.SFNURL,
	}
	for name, v := range f.Environment {
		local, err := s.Value(v, params)
		if err != nil {
			return nil, fmt.Errorf("standins: %s %s: %w", f.LogicalID, name, err)
		}
		env[name] = local
	}
	return env, nil
}

// Close stops the stand-ins, newest first.
func (s *StandIns) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

// LocalParameters are the template parameters' values on this machine for
// an API served at apiURL (the OAuth redirect URI is its callback): the
// local identity provider's issuer and audience, loopback targets (local
// test servers listen on 127.0.0.1) and level; the other parameters take
// their defaults.
func LocalParameters(apiURL string, level slog.Level) map[string]string {
	return map[string]string{
		"JwtIssuer":             devauth.Issuer,
		"JwtAudience":           devauth.Audience,
		"PageClientId":          "connmgr-local-page", // the page signs in with POST /dev/token here
		"OAuthRedirectUri":      apiURL + "/oauth/callback",
		"AllowedTargetNetworks": "loopback",
		"LogLevel":              strings.ToUpper(level.String()),
	}
}
