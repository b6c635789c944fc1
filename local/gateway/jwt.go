package gateway

import (
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/golang-jwt/jwt/v5"

	"github.com/connmgr/connmgr/shared/identity"
)

// JWT is an HttpApi JWT authorizer's configuration with its key set.
type JWT struct {
	Issuer   string
	Audience []string
	// Key returns the public key with the given kid, as the issuer's JWKS
	// would.
	Key func(kid string) (crypto.PublicKey, error)
}

// AuthError is a rejected token. Reason is for logs; Description is what
// API Gateway puts in the www-authenticate header.
type AuthError struct {
	Reason      string
	Description string
}

func (e *AuthError) Error() string { return e.Reason }

// Algorithms the JWT authorizer accepts: API Gateway supports RSA only.
var Algorithms = []string{"RS256", "RS384", "RS512"}

// Verify checks an Authorization header as API Gateway's JWT authorizer
// does (token alone or prefixed with Bearer; kid, signature, iss, aud or
// client_id, exp, nbf and iat against now) and returns the claims as the
// authorizer hands them to the Lambda.
func (j *JWT) Verify(authorization []string, now time.Time) (*events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription, error) {
	if len(authorization) == 0 || strings.TrimSpace(authorization[0]) == "" {
		return nil, &AuthError{Reason: "no Authorization header"}
	}
	if len(authorization) > 1 {
		return nil, &AuthError{Reason: "several Authorization headers", Description: "the token is malformed"}
	}
	raw := strings.TrimSpace(authorization[0])
	if scheme, rest, ok := strings.Cut(raw, " "); ok && strings.EqualFold(scheme, "Bearer") {
		raw = strings.TrimSpace(rest)
	}
	if strings.Count(raw, ".") != 2 {
		return nil, &AuthError{Reason: "malformed Authorization header", Description: "the token is malformed"}
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods(Algorithms),
		jwt.WithIssuer(j.Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithJSONNumber(),
	)
	claims := jwt.MapClaims{}
	tok, err := parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("the token has no kid header")
		}
		return j.Key(kid)
	})
	if err != nil {
		if tok != nil && tok.Method != nil && !slices.Contains(Algorithms, tok.Method.Alg()) {
			return nil, &AuthError{Reason: "algorithm " + tok.Method.Alg() + " not accepted", Description: "the token's algorithm or key id is not accepted"}
		}
		return nil, authError(err)
	}
	if !j.audienceOK(claims) {
		return nil, &AuthError{Reason: "wrong audience", Description: "the token does not have a valid audience"}
	}
	return &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: FlattenClaims(claims), Scopes: scopes(claims)}, nil
}

// audienceOK: aud must name one of the configured audiences; client_id is
// consulted only when aud is absent.
func (j *JWT) audienceOK(c jwt.MapClaims) bool {
	if _, present := c["aud"]; present {
		aud, err := c.GetAudience()
		return err == nil && slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(j.Audience, a) })
	}
	id, _ := c["client_id"].(string)
	return id != "" && slices.Contains(j.Audience, id)
}

func authError(err error) *AuthError {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return &AuthError{Reason: "malformed token", Description: "the token is malformed"}
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return &AuthError{Reason: "bad signature", Description: "signature is invalid"}
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return &AuthError{Reason: "unverifiable token: " + err.Error(), Description: "the token's algorithm or key id is not accepted"}
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return &AuthError{Reason: "missing claim: " + err.Error(), Description: "the token is missing a required claim"}
	case errors.Is(err, jwt.ErrTokenExpired):
		return &AuthError{Reason: "expired token", Description: "the token has expired"}
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return &AuthError{Reason: "token not valid yet (nbf)", Description: "the token is not valid yet"}
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return &AuthError{Reason: "token issued in the future (iat)", Description: "the token is not valid yet"}
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return &AuthError{Reason: "wrong issuer", Description: "the token does not have a valid issuer"}
	}
	return &AuthError{Reason: "invalid token: " + err.Error(), Description: "the token is invalid"}
}

// FlattenClaims renders claims as API Gateway's JWT authorizer hands them
// to a Lambda: every value a string, an array as "[a b c]"
// (identity.FormatList), numbers as written, objects as compact JSON.
func FlattenClaims(c map[string]any) map[string]string {
	out := make(map[string]string, len(c))
	for k, v := range c {
		out[k] = claimString(v)
	}
	return out
}

func claimString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case []string:
		return identity.FormatList(x)
	case []any:
		items := make([]string, len(x))
		for i, e := range x {
			items[i] = claimString(e)
		}
		return identity.FormatList(items)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// scopes are the token's scope (space-separated) or scp claim.
func scopes(c jwt.MapClaims) []string {
	var out []string
	switch s := c["scope"].(type) {
	case string:
		out = strings.Fields(s)
	}
	if out == nil {
		switch s := c["scp"].(type) {
		case string:
			out = strings.Fields(s)
		case []any:
			for _, e := range s {
				if str, ok := e.(string); ok {
					out = append(out, str)
				}
			}
		}
	}
	return out
}
