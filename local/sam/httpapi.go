package sam

import (
	"fmt"
	"maps"
	"slices"
)

// HTTPAPI is the template's AWS::Serverless::HttpApi and its authorizers.
type HTTPAPI struct {
	LogicalID         string
	DefaultAuthorizer string
	Authorizers       map[string]JWTAuthorizer
	// Throttle is the stage's throttling (DefaultRouteSettings), with the
	// values of the parameters' defaults.
	Throttle Throttle
}

// Throttle is API Gateway's stage throttling: a token bucket refilled at
// Rate requests a second holding Burst. RateParam and BurstParam name the
// template parameters that set them ("" when literal or unset).
type Throttle struct {
	Rate                  float64
	Burst                 int
	RateParam, BurstParam string
}

// JWTAuthorizer is an HttpApi JWT authorizer. Issuer and Audience keep
// references as markers ("ref:JwtIssuer"); see ParameterRef.
type JWTAuthorizer struct {
	Name           string
	IdentitySource string
	Issuer         string
	Audience       []string
}

// HTTPAPI returns the template's one HttpApi.
func (t *Template) HTTPAPI() (*HTTPAPI, error) {
	api, err := t.optionalHTTPAPI()
	if err != nil {
		return nil, err
	}
	if api == nil {
		return nil, fmt.Errorf("sam: %s has no AWS::Serverless::HttpApi", TemplateFile)
	}
	return api, nil
}

// optionalHTTPAPI is the one HttpApi, nil when there is none.
func (t *Template) optionalHTTPAPI() (*HTTPAPI, error) {
	apis := t.CF.GetAllServerlessHttpApiResources()
	switch len(apis) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, fmt.Errorf("sam: %s has %d HttpApis, want 1", TemplateFile, len(apis))
	}
	for id, res := range apis {
		api := &HTTPAPI{LogicalID: id, Authorizers: map[string]JWTAuthorizer{}}
		if rs := res.DefaultRouteSettings; rs != nil {
			api.Throttle.Rate, api.Throttle.Burst = derefOr(rs.ThrottlingRateLimit), derefOr(rs.ThrottlingBurstLimit)
			for field, param := range map[string]*string{"ThrottlingRateLimit": &api.Throttle.RateParam, "ThrottlingBurstLimit": &api.Throttle.BurstParam} {
				if v, ok := t.Raw("Resources", id, "Properties", "DefaultRouteSettings", field).(string); ok {
					*param, _ = t.ParameterRef(v)
				}
			}
		}
		if res.Auth == nil {
			return api, nil
		}
		api.DefaultAuthorizer = deref(res.Auth.DefaultAuthorizer)
		auths, _ := res.Auth.Authorizers.(map[string]any)
		for _, name := range slices.Sorted(maps.Keys(auths)) {
			a := JWTAuthorizer{Name: name}
			a.IdentitySource, _ = path(auths[name], "IdentitySource").(string)
			jwt := path(auths[name], "JwtConfiguration")
			if jwt == nil {
				continue // a Lambda authorizer: not modelled
			}
			a.Issuer, _ = firstOf(jwt, "issuer", "Issuer").(string)
			var err error
			if a.Audience, err = stringList(firstOf(jwt, "audience", "Audience")); err != nil {
				return nil, fmt.Errorf("sam: HttpApi %s authorizer %s audience: %w", id, name, err)
			}
			api.Authorizers[name] = a
		}
		return api, nil
	}
	panic("unreachable")
}

// DefaultJWTAuthorizer is the JWT authorizer that DefaultAuthorizer names.
func (a *HTTPAPI) DefaultJWTAuthorizer() (JWTAuthorizer, error) {
	if a.DefaultAuthorizer == "" {
		return JWTAuthorizer{}, fmt.Errorf("sam: HttpApi %s has no DefaultAuthorizer", a.LogicalID)
	}
	j, ok := a.Authorizers[a.DefaultAuthorizer]
	if !ok {
		return JWTAuthorizer{}, fmt.Errorf("sam: HttpApi %s: DefaultAuthorizer %s is not a JWT authorizer", a.LogicalID, a.DefaultAuthorizer)
	}
	return j, nil
}

func firstOf(v any, keys ...string) any {
	for _, k := range keys {
		if x := path(v, k); x != nil {
			return x
		}
	}
	return nil
}

// ParameterRef returns the template parameter v refers to ("ref:JwtIssuer"
// → "JwtIssuer"); ok is false when v is not a Ref to a declared parameter.
func (t *Template) ParameterRef(v string) (name string, ok bool) {
	name, ok = RefTarget(v)
	if !ok {
		return "", false
	}
	_, ok = t.CF.Parameters[name]
	return name, ok
}

func derefOr[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
