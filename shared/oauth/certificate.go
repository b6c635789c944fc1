package oauth

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/secret"
)

// Client authentication with a certificate (private_key_jwt, RFC 7523
// section 2.2, as the Microsoft identity platform takes it): each token
// request carries a JWT the client signs with its certificate's private
// key (RS256), its header naming the certificate by thumbprint (x5t, the
// base64url SHA-1 of the DER certificate, which Microsoft requires; and
// x5t#S256), its claims aud = the token endpoint, iss = sub = the client
// ID, a random jti, nbf = iat = now and exp five minutes on.
//
// The private key is a secret like a client secret: entered once with the
// tenant's registration (clientPrivateKey, write-only), checked against
// the certificate, sealed with it and bound to the registration's
// endpoints, never printed. The certificate is public: the registration
// shows its thumbprint, and its notAfter is the registration's
// clientSecretExpiresAt, so the expiry check warns before it expires.

// ClientAssertionType is the client_assertion_type of a JWT client assertion.
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// AssertionLifetime is how long a client assertion is valid.
const AssertionLifetime = 5 * time.Minute

// Limits of the PEM inputs and of the key.
const (
	maxPEMLength  = 16 << 10
	minRSABits    = 2048
	maxRSABits    = 8192
	pemPrivateKey = "PRIVATE KEY"     // PKCS #8
	pemRSAKey     = "RSA PRIVATE KEY" // PKCS #1
	pemCert       = "CERTIFICATE"
)

// clientCertificate is a registration's certificate and its private key.
// It redacts itself however it is printed.
type clientCertificate struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

// Field names of the registration input, for errors.
const (
	fieldCertificate = "clientCertificate"
	fieldPrivateKey  = "clientPrivateKey"
)

// parseClientCertificate checks what a tenant administrator entered: one
// PEM certificate with an RSA public key, valid at now; one unencrypted
// PEM RSA private key (PKCS #8 or PKCS #1) of 2048 to 8192 bits that is
// the certificate's. Errors name the field and never quote the input or
// a parser's message about it.
func parseClientCertificate(certPEM, keyPEM string, now time.Time) (*clientCertificate, error) {
	cert, err := parseCertificatePEM(certPEM)
	if err != nil {
		return nil, err
	}
	if !now.Before(cert.NotAfter) {
		return nil, apperr.InvalidField(fieldCertificate, "certificate_expired", "clientCertificate has expired; register a current certificate")
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, apperr.InvalidField(fieldCertificate, "invalid_certificate", "clientCertificate must hold an RSA public key")
	}
	key, err := parsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, err
	}
	if !key.PublicKey.Equal(pub) {
		return nil, apperr.InvalidField(fieldPrivateKey, "key_certificate_mismatch", "clientPrivateKey is not the private key of clientCertificate")
	}
	return &clientCertificate{key: key, cert: cert}, nil
}

func parseCertificatePEM(s string) (*x509.Certificate, error) {
	bad := apperr.InvalidField(fieldCertificate, "invalid_certificate", "clientCertificate must be one PEM-encoded X.509 certificate (-----BEGIN CERTIFICATE-----)")
	if len(s) > maxPEMLength {
		return nil, bad
	}
	block, rest := pem.Decode([]byte(s))
	if block == nil || block.Type != pemCert || len(block.Headers) > 0 || strings.TrimSpace(string(rest)) != "" {
		return nil, bad
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, bad
	}
	return cert, nil
}

func parsePrivateKeyPEM(s string) (*rsa.PrivateKey, error) {
	bad := apperr.InvalidField(fieldPrivateKey, "invalid_private_key",
		"clientPrivateKey must be one unencrypted PEM-encoded RSA private key, PKCS #8 (-----BEGIN PRIVATE KEY-----) or PKCS #1 (-----BEGIN RSA PRIVATE KEY-----), of 2048 to 8192 bits")
	if len(s) > maxPEMLength {
		return nil, bad
	}
	b := []byte(s)
	defer clear(b)
	block, rest := pem.Decode(b)
	if block == nil || len(block.Headers) > 0 || strings.TrimSpace(string(rest)) != "" {
		return nil, bad // Proc-Type/DEK-Info headers: an encrypted legacy key
	}
	defer clear(block.Bytes)
	var key *rsa.PrivateKey
	switch block.Type {
	case pemPrivateKey:
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, bad
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, bad
		}
		key = rk
	case pemRSAKey:
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, bad
		}
		key = k
	default:
		return nil, bad // ENCRYPTED PRIVATE KEY, EC PRIVATE KEY, a certificate...
	}
	if n := key.N.BitLen(); n < minRSABits || n > maxRSABits {
		return nil, bad
	}
	return key, nil
}

// encode is the sealed plaintext: the key as PKCS #8 PEM, then the
// certificate. Clear it after sealing.
func (c *clientCertificate) encode() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(c.key)
	if err != nil {
		return nil, errors.New("oauth: the client certificate's private key cannot be encoded")
	}
	out := pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der})
	clear(der)
	return append(out, pem.EncodeToMemory(&pem.Block{Type: pemCert, Bytes: c.cert.Raw})...), nil
}

// decodeClientCertificate reads an opened registration secret of a
// certificate type. Its errors say nothing of the content.
func decodeClientCertificate(b []byte) (*clientCertificate, error) {
	bad := errors.New("oauth: the stored client certificate is unreadable")
	keyBlock, rest := pem.Decode(b)
	if keyBlock == nil || keyBlock.Type != pemPrivateKey {
		return nil, bad
	}
	defer clear(keyBlock.Bytes)
	certBlock, _ := pem.Decode(rest)
	if certBlock == nil || certBlock.Type != pemCert {
		return nil, bad
	}
	k, err := x509.ParsePKCS8PrivateKey(keyBlock.Bytes)
	if err != nil {
		return nil, bad
	}
	key, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, bad
	}
	cert, err := x509.ParseCertificate(certBlock.Bytes)
	if err != nil {
		return nil, bad
	}
	if pub, ok := cert.PublicKey.(*rsa.PublicKey); !ok || !key.PublicKey.Equal(pub) {
		return nil, bad
	}
	return &clientCertificate{key: key, cert: cert}, nil
}

// x5t is the certificate's thumbprint as a JWT header names it: base64url
// of the SHA-1 of the DER certificate, unpadded.
func (c *clientCertificate) x5t() string {
	sum := sha1.Sum(c.cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func (c *clientCertificate) x5tS256() string {
	sum := sha256.Sum256(c.cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// thumbprint is the hex SHA-1 thumbprint, upper case, as the Microsoft
// Entra admin center shows a certificate.
func (c *clientCertificate) thumbprint() string {
	sum := sha1.Sum(c.cert.Raw)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// assertion is a client assertion for clientID at the token endpoint
// audience, issued at now.
func (c *clientCertificate) assertion(clientID, audience string, now time.Time) (string, error) {
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", fmt.Errorf("oauth: client assertion id: %w", err)
	}
	jti[6], jti[8] = jti[6]&0x0f|0x40, jti[8]&0x3f|0x80 // a version 4 UUID, as Microsoft's examples use
	h := hex.EncodeToString(jti)
	header, err := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "x5t": c.x5t(), "x5t#S256": c.x5tS256()})
	if err != nil {
		return "", err
	}
	iat := now.Unix()
	claims, err := json.Marshal(map[string]any{
		"aud": audience, "iss": clientID, "sub": clientID,
		"jti": h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:],
		"iat": iat, "nbf": iat, "exp": now.Add(AssertionLifetime).Unix(),
	})
	if err != nil {
		return "", err
	}
	signing := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(claims)
	digest := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, c.key, crypto.SHA256, digest[:])
	if err != nil {
		return "", errors.New("oauth: the client assertion could not be signed")
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

func (c clientCertificate) describe() string {
	if c.cert == nil {
		return "oauth.clientCertificate{none}"
	}
	return fmt.Sprintf("oauth.clientCertificate{thumbprint:%s notAfter:%s privateKey:%s}", c.thumbprint(), c.cert.NotAfter.UTC().Format(time.RFC3339), secret.Redacted)
}

// String redacts the private key.
func (c clientCertificate) String() string { return c.describe() }

// GoString redacts the private key.
func (c clientCertificate) GoString() string { return c.describe() }

// Format redacts the private key for every verb.
func (c clientCertificate) Format(f fmt.State, _ rune) { io.WriteString(f, c.describe()) }

// LogValue redacts the private key.
func (c clientCertificate) LogValue() slog.Value { return slog.StringValue(c.describe()) }

// MarshalJSON redacts the private key.
func (c clientCertificate) MarshalJSON() ([]byte, error) { return json.Marshal(c.describe()) }
