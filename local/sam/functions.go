package sam

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/awslabs/goformation/v7/cloudformation/serverless"
)

// AuthNone is the authorizer name that makes an HttpApi route public.
const AuthNone = "NONE"

// Function is one AWS::Serverless::Function with Globals.Function merged in.
type Function struct {
	LogicalID string
	// Folder is the folder under functions/ the function is built from,
	// derived from LogicalID by convention ("" when LogicalID breaks it).
	Folder string
	// Environment is Globals.Function.Environment overlaid with the
	// function's own variables. References are markers ("ref:Table").
	Environment   map[string]string
	Runtime       string
	Architectures []string
	Handler       string
	Timeout       int // seconds; 0 when neither the function nor Globals set one
	// BuildMethod is Metadata.BuildMethod ("makefile").
	BuildMethod string
	// Routes are the function's HttpApi events, sorted by route key.
	Routes []Route
	// Policies are the function's IAM permissions as SAM writes them into
	// its generated role.
	Policies Policies
	// Role is set when the function names its own role, which replaces the
	// policies above.
	Role string
	// Resource is goformation's view of the function, for anything else.
	Resource *serverless.Function
}

// Route is one HttpApi event of a function.
type Route struct {
	Event  string // the event's name under Events
	API    string // the HttpApi it belongs to: "ref:HttpApi"
	Method string // upper case, or ANY
	Path   string
	// Authorizer is the authorizer in force: the event's own, else the API's
	// DefaultAuthorizer; "NONE" or "" means API Gateway forwards the request
	// without authenticating it.
	Authorizer string
	// Public reports that the route is served without authentication.
	Public bool
	// Scopes are the event's AuthorizationScopes.
	Scopes []string
}

// Key is the route key, "GET /connections/{id}".
func (r Route) Key() string { return r.Method + " " + r.Path }

// RouteKeys lists the function's route keys, sorted.
func (f Function) RouteKeys() []string {
	keys := make([]string, len(f.Routes))
	for i, r := range f.Routes {
		keys[i] = r.Key()
	}
	slices.Sort(keys)
	return keys
}

// IsHTTP reports whether the function serves HttpApi routes.
func (f Function) IsHTTP() bool { return len(f.Routes) > 0 }

// Functions lists the template's functions, sorted by logical id.
func (t *Template) Functions() ([]Function, error) {
	global, _ := t.CF.GetServerlessGlobalFunction() // absent Globals is not an error
	api, err := t.optionalHTTPAPI()
	if err != nil {
		return nil, err
	}
	resources := t.CF.GetAllServerlessFunctionResources()
	var out []Function
	for _, id := range slices.Sorted(maps.Keys(resources)) {
		res := resources[id]
		f := Function{LogicalID: id, Resource: res, Environment: map[string]string{}}
		f.Folder, _ = Folder(id)
		if global != nil {
			if global.Environment != nil {
				maps.Copy(f.Environment, global.Environment.Variables)
			}
			f.Runtime = deref(global.Runtime)
			if global.Architectures != nil {
				f.Architectures = *global.Architectures
			}
			f.Handler = deref(global.Handler)
			if global.Timeout != nil {
				f.Timeout = *global.Timeout
			}
		}
		if res.Environment != nil {
			maps.Copy(f.Environment, res.Environment.Variables)
		}
		if res.Runtime != nil {
			f.Runtime = *res.Runtime
		}
		if res.Architectures != nil {
			f.Architectures = res.Architectures
		}
		if res.Handler != nil {
			f.Handler = *res.Handler
		}
		if res.Timeout != nil {
			f.Timeout = *res.Timeout
		}
		f.Role = deref(res.Role)
		if bm, ok := res.AWSCloudFormationMetadata["BuildMethod"].(string); ok {
			f.BuildMethod = bm
		}
		if f.Routes, err = routes(id, res, api); err != nil {
			return nil, err
		}
		if f.Policies, err = t.policies(id); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// Function returns the function with the given logical id.
func (t *Template) Function(logicalID string) (Function, error) {
	fns, err := t.Functions()
	if err != nil {
		return Function{}, err
	}
	for _, f := range fns {
		if f.LogicalID == logicalID {
			return f, nil
		}
	}
	return Function{}, fmt.Errorf("sam: no function %s in %s", logicalID, TemplateFile)
}

func routes(id string, res *serverless.Function, api *HTTPAPI) ([]Route, error) {
	var out []Route
	for name, ev := range res.Events {
		if ev.Type != "HttpApi" {
			continue
		}
		if ev.Properties == nil || ev.Properties.HttpApiEvent == nil {
			return nil, fmt.Errorf("sam: %s event %s: an HttpApi event without Method and Path (the $default route) is not supported", id, name)
		}
		p := ev.Properties.HttpApiEvent
		r := Route{Event: name, API: deref(p.ApiId), Method: strings.ToUpper(deref(p.Method)), Path: deref(p.Path)}
		if r.Method == "" || r.Path == "" {
			return nil, fmt.Errorf("sam: %s event %s: Method and Path are required", id, name)
		}
		if p.Auth != nil {
			r.Authorizer = deref(p.Auth.Authorizer)
			r.Scopes = p.Auth.AuthorizationScopes
		}
		if r.Authorizer == "" && api != nil {
			r.Authorizer = api.DefaultAuthorizer
		}
		r.Public = r.Authorizer == "" || r.Authorizer == AuthNone
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Route) int { return strings.Compare(a.Key(), b.Key()) })
	for i := 1; i < len(out); i++ {
		if out[i].Key() == out[i-1].Key() {
			return nil, fmt.Errorf("sam: %s declares route %s twice (events %s and %s)", id, out[i].Key(), out[i-1].Event, out[i].Event)
		}
	}
	return out, nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
