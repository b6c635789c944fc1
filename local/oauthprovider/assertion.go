package oauthprovider

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Client assertions (private_key_jwt, RFC 7523 section 2.2) as the
// Microsoft identity platform checks them, with github.com/golang-jwt/jwt
// (not the product's own code): client_assertion_type is the JWT bearer
// URN; the JWT is RS256, its header's x5t (base64url SHA-1 of the DER
// certificate) names a certificate trusted for the client, whose public key
// verifies the signature; aud is this token endpoint; iss and sub are the
// client ID (and client_id, when sent, too); exp is present, in the future
// and at most an hour away; nbf and iat are not in the future; jti is
// present and never seen before. No client secret may come with it.
// Anything else is refused with 401 invalid_client.

// ClientAssertionType is the only client_assertion_type accepted.
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// maxAssertionLifetime: an assertion that expires later is refused.
const maxAssertionLifetime = time.Hour

// ScopeRequest is a scope parameter the provider received: at the
// authorization endpoint or in a client credentials token request.
type ScopeRequest struct {
	Endpoint string // "authorize" or "token"
	Scope    string
}

// TrustCertificate makes the certificate (PEM) a credential of the
// provider's client: client assertions whose x5t names it and whose
// signature its public key verifies authenticate the client. A client may
// have several.
func (p *Provider) TrustCertificate(certPEM []byte) error {
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return errors.New("oauthprovider: not a PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fmt.Errorf("oauthprovider: %w", err)
	}
	if _, ok := cert.PublicKey.(*rsa.PublicKey); !ok {
		return errors.New("oauthprovider: the certificate's key is not RSA")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.certs[x5t(cert.Raw)] = cert
	return nil
}

// DistrustCertificates forgets every trusted certificate.
func (p *Provider) DistrustCertificates() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.certs)
}

// Assertions reports how many client assertions were verified and
// accepted.
func (p *Provider) Assertions() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.assertions
}

// RefusedAssertions lists why each refused client assertion was refused.
func (p *Provider) RefusedAssertions() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.refusedJWTs)
}

// Scopes lists the scope parameters received, in order.
func (p *Provider) Scopes() []ScopeRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.scopes)
}

func x5t(der []byte) string {
	sum := sha1.Sum(der)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// verifyAssertionLocked checks the client assertion of a token request.
func (p *Provider) verifyAssertionLocked(form url.Values) error {
	if form.Get("client_assertion_type") != ClientAssertionType {
		return errors.New("client_assertion_type is not " + ClientAssertionType)
	}
	if form.Has("client_secret") {
		return errors.New("a client secret came with the client assertion")
	}
	raw := form.Get("client_assertion")
	if raw == "" {
		return errors.New("no client_assertion")
	}
	clientID := p.oidc.ClientID
	if id := form.Get("client_id"); id != "" && id != clientID {
		return errors.New("client_id is not the client's")
	}
	now := p.now()
	claims := jwt.RegisteredClaims{}
	_, err := jwt.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		thumb, _ := t.Header["x5t"].(string)
		cert := p.certs[thumb]
		if cert == nil {
			return nil, errors.New("x5t names no trusted certificate")
		}
		if !now.Before(cert.NotAfter) {
			return nil, errors.New("the certificate has expired")
		}
		return cert.PublicKey, nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience(p.TokenURL()), jwt.WithIssuer(clientID), jwt.WithSubject(clientID),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil {
		return fmt.Errorf("client assertion: %w", err)
	}
	if len(claims.Audience) != 1 {
		return errors.New("aud must be the token endpoint alone")
	}
	if claims.ExpiresAt.Sub(now) > maxAssertionLifetime {
		return errors.New("exp is more than an hour away")
	}
	if claims.ID == "" {
		return errors.New("no jti")
	}
	for id, exp := range p.jtis {
		if !now.Before(exp) {
			delete(p.jtis, id)
		}
	}
	if _, seen := p.jtis[claims.ID]; seen {
		return errors.New("jti replayed")
	}
	p.jtis[claims.ID] = claims.ExpiresAt.Time
	return nil
}

// oidcScopes drops the resource scopes (absolute URLs, the Microsoft
// identity platform's https://<resource>/.default) from a scope parameter;
// what is left is mockoidc's to check ("openid" when nothing is).
func oidcScopes(scope string) string {
	var keep []string
	for _, s := range strings.Fields(scope) {
		if u, err := url.Parse(s); err == nil && u.Scheme != "" && u.Host != "" {
			continue
		}
		keep = append(keep, s)
	}
	if len(keep) == 0 {
		return "openid"
	}
	return strings.Join(keep, " ")
}

// GenerateCertificate makes an RSA key (2048 bits) and a self-signed
// certificate for it, valid from an hour before now for validFor, both
// PEM: the key PKCS #8 (-----BEGIN PRIVATE KEY-----), or PKCS #1
// (-----BEGIN RSA PRIVATE KEY-----) when pkcs1. For tests and `make dev`:
// what a tenant administrator uploads to the application registration
// (the certificate) and enters in the connection manager (both).
func GenerateCertificate(commonName string, now time.Time, validFor time.Duration, pkcs1 bool) (keyPEM, certPEM []byte, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: commonName},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(validFor),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	if pkcs1 {
		keyPEM = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	} else {
		k, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, nil, err
		}
		keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k})
	}
	return keyPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}
