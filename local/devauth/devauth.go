// Package devauth is the local identity provider of `make dev`: a signing key
// generated at start, `POST /dev/token` that mints identity tokens with the
// claims the API reads (sub, tid, roles, sca, owns, sites), and the personas
// printed at start-up.
//
// The key is RSA (RS256) because API Gateway's JWT authorizer accepts only
// RSA-based algorithms; a token the local gateway accepts is one the
// deployed API could accept from a real issuer.
//
// It is local only: /dev/token must never be in template.yaml, and the
// handler never logs tokens or request bodies.
package devauth

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/connmgr/connmgr/shared/identity"
)

// Local identity settings: the gateway checks tokens against these.
const (
	Issuer     = "https://connmgr.local/dev"
	Audience   = "connmgr-local"
	TokenPath  = "/dev/token"
	DefaultTTL = 8 * time.Hour
	keyBits    = 2048
	maxBody    = 16 << 10
)

// Signer holds the key of one run.
type Signer struct {
	key *rsa.PrivateKey
	kid string
	now func() time.Time
	// OnMint, when set, sees the claims of every token minted.
	OnMint func(Claims)
}

// New generates a key; now is the clock iat and exp are read from.
func New(now func() time.Time) (*Signer, error) {
	key, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		return nil, fmt.Errorf("devauth: generate key: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	var id [6]byte
	rand.Read(id[:])
	return &Signer{key: key, kid: fmt.Sprintf("dev-%x", id), now: now}, nil
}

// KeyID is the kid every token of this signer carries.
func (s *Signer) KeyID() string { return s.kid }

// PublicKey looks up a verification key by kid, as a JWKS would.
func (s *Signer) PublicKey(kid string) (crypto.PublicKey, error) {
	if kid != s.kid {
		return nil, fmt.Errorf("devauth: unknown key id %q", kid)
	}
	return &s.key.PublicKey, nil
}

// Claims are a token's claims as JSON values.
type Claims map[string]any

// ClaimError reports a body that cannot become a token.
type ClaimError struct{ Msg string }

func (e *ClaimError) Error() string { return "devauth: " + e.Msg }

// Mint signs claims after checking them: sub and tid are required strings;
// roles, sca, owns and sites are arrays of strings when present. iss and
// aud are set to the local values; iat to now; exp to now + DefaultTTL
// unless claims set it.
func (s *Signer) Mint(claims Claims) (token string, expires time.Time, err error) {
	if err := check(claims); err != nil {
		return "", time.Time{}, err
	}
	now := s.now()
	mc := jwt.MapClaims{}
	for k, v := range claims {
		mc[k] = v
	}
	mc["iss"] = Issuer
	mc["aud"] = Audience
	if _, ok := mc["iat"]; !ok {
		mc["iat"] = now.Unix()
	}
	if _, ok := mc["exp"]; !ok {
		mc["exp"] = now.Add(DefaultTTL).Unix()
	}
	if exp, err := mc.GetExpirationTime(); err == nil && exp != nil {
		expires = exp.Time
	}
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, mc)
	t.Header["kid"] = s.kid
	token, err = t.SignedString(s.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("devauth: sign: %w", err)
	}
	if s.OnMint != nil {
		s.OnMint(claims)
	}
	return token, expires, nil
}

func check(c Claims) error {
	for _, name := range []string{identity.ClaimSubject, identity.ClaimTenant} {
		v, ok := c[name].(string)
		if !ok || strings.TrimSpace(v) == "" {
			return &ClaimError{Msg: name + " is required and must be a non-empty string"}
		}
	}
	for _, name := range []string{identity.ClaimRoles, identity.ClaimSiteCollections, identity.ClaimOwnedSites, identity.ClaimSites} {
		v, present := c[name]
		if !present {
			continue
		}
		list, ok := stringList(v)
		if !ok {
			return &ClaimError{Msg: name + " must be an array of strings"}
		}
		for _, e := range list {
			if e == "" || strings.ContainsAny(e, " \t\n") {
				return &ClaimError{Msg: name + " must hold non-empty strings without spaces (encode a space in a site path as %20)"}
			}
		}
	}
	for _, name := range []string{"exp", "nbf", "iat"} {
		if v, present := c[name]; present {
			switch v.(type) {
			case json.Number, float64, int, int64:
			default:
				return &ClaimError{Msg: name + " must be a number of seconds since 1970"}
			}
		}
	}
	return nil
}

// stringList reads an array of strings from decoded JSON or from Go callers.
func stringList(v any) ([]string, bool) {
	switch x := v.(type) {
	case []string:
		return x, true
	case []any:
		out := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out[i] = s
		}
		return out, true
	}
	return nil, false
}

// ServeHTTP answers POST /dev/token: a JSON object of claims in, {"token",
// "expiresAt"} out; a body without sub or tid is a 400.
func (s *Signer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"message": "use POST with a JSON object of claims"})
		return
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.UseNumber()
	var claims Claims
	if err := dec.Decode(&claims); err != nil || claims == nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "the body must be a JSON object of claims, e.g. {\"sub\":\"alice\",\"tid\":\"contoso\"}"})
		return
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "the body holds more than one JSON value"})
		return
	}
	token, exp, err := s.Mint(claims)
	var ce *ClaimError
	switch {
	case errors.As(err, &ce):
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": ce.Msg})
		return
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, map[string]string{"message": "could not sign the token"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": token, "expiresAt": exp.UTC().Format(time.RFC3339)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// Persona is a ready-made caller for trying the API.
type Persona struct {
	Name        string
	Description string
	Claims      Claims
}

// Personas are the callers `make dev` prints tokens for, all of tenant
// "contoso".
func Personas() []Persona {
	return []Persona{
		{"tenant-admin", "tenant administrator: sees and manages every connection of the tenant",
			Claims{"sub": "alice@contoso", "tid": "contoso", "roles": []any{identity.RoleTenantAdmin}}},
		{"site-collection-admin", "administers the site collection /sites/hr",
			Claims{"sub": "bob@contoso", "tid": "contoso", "sca": []any{"/sites/hr"}}},
		{"site-owner", "Full Control of /sites/hr/payroll",
			Claims{"sub": "carol@contoso", "tid": "contoso", "owns": []any{"/sites/hr/payroll"}, "sites": []any{"/sites/hr/payroll"}}},
		{"member", "can access /sites/hr/payroll",
			Claims{"sub": "dave@contoso", "tid": "contoso", "sites": []any{"/sites/hr/payroll"}}},
	}
}
