package oauthprovider

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func mustKey(t *testing.T, keyPEM []byte) *rsa.PrivateKey {
	t.Helper()
	b, _ := pem.Decode(keyPEM)
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*rsa.PrivateKey)
}

func certDER(t *testing.T, certPEM []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(certPEM)
	return b.Bytes
}

// TestClientAssertionVerified: the token endpoint takes a client
// assertion only when everything Microsoft checks holds; anything else is
// 401 invalid_client and no token.
func TestClientAssertionVerified(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	p, err := Start(Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	keyPEM, certPEM, err := GenerateCertificate("trusted", now, 24*time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	otherKeyPEM, otherCertPEM, _ := GenerateCertificate("other", now, 24*time.Hour, false)
	_, expiredCertPEM, _ := GenerateCertificate("expired", now.Add(-48*time.Hour), 24*time.Hour, false)
	if err := p.TrustCertificate(certPEM); err != nil {
		t.Fatal(err)
	}
	key, other := mustKey(t, keyPEM), mustKey(t, otherKeyPEM)
	thumb := x5t(certDER(t, certPEM))
	id := p.ClientID()
	claims := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"aud": p.TokenURL(), "iss": id, "sub": id, "jti": "j-" + time.Now().Format(time.RFC3339Nano),
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
		if edit != nil {
			edit(c)
		}
		return c
	}
	sign := func(c jwt.MapClaims, k *rsa.PrivateKey, x5t string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
		tok.Header["x5t"] = x5t
		s, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	post := func(form url.Values) (int, map[string]any) {
		t.Helper()
		resp, err := http.PostForm(p.TokenURL(), form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	form := func(assertion string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "scope": {"https://contoso.sharepoint.com/.default"},
			"client_assertion_type": {ClientAssertionType}, "client_assertion": {assertion}}
	}

	status, body := post(form(sign(claims(nil), key, thumb)))
	if status != 200 || body["access_token"] == nil || !p.ValidAccessToken(body["access_token"].(string)) {
		t.Fatalf("a good assertion: %d %v (refused: %v)", status, body, p.RefusedAssertions())
	}
	if p.Assertions() != 1 {
		t.Fatalf("%d assertions verified", p.Assertions())
	}
	if sc := p.Scopes(); len(sc) != 1 || sc[0] != (ScopeRequest{"token", "https://contoso.sharepoint.com/.default"}) {
		t.Errorf("scopes %v", sc)
	}

	replayed := sign(claims(func(c jwt.MapClaims) { c["jti"] = "once" }), key, thumb)
	post(form(replayed))
	hs, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(nil)).SignedString([]byte("k"))
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	good := sign(claims(nil), key, thumb)
	parts := strings.Split(good, ".")
	swapped, _ := json.Marshal(claims(func(c jwt.MapClaims) { c["jti"] = "swapped" }))
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(swapped) + "." + parts[2]
	sum := sha256.Sum256(certDER(t, otherCertPEM))
	bad := []struct {
		name string
		form url.Values
	}{
		{"signed by another key, naming the trusted certificate", form(sign(claims(nil), other, thumb))},
		{"a certificate not trusted", form(sign(claims(nil), other, x5t(certDER(t, otherCertPEM))))},
		{"no x5t", form(sign(claims(nil), key, ""))},
		{"x5t#S256 only", form(sign(claims(nil), key, base64.RawURLEncoding.EncodeToString(sum[:])))},
		{"audience another endpoint", form(sign(claims(func(c jwt.MapClaims) { c["aud"] = p.TokenURL() + "x" }), key, thumb))},
		{"audience a list with another", form(sign(claims(func(c jwt.MapClaims) { c["aud"] = []string{p.TokenURL(), "https://evil.example"} }), key, thumb))},
		{"expired", form(sign(claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Second).Unix() }), key, thumb))},
		{"no exp", form(sign(claims(func(c jwt.MapClaims) { delete(c, "exp") }), key, thumb))},
		{"exp a day away", form(sign(claims(func(c jwt.MapClaims) { c["exp"] = now.Add(24 * time.Hour).Unix() }), key, thumb))},
		{"not yet valid", form(sign(claims(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() }), key, thumb))},
		{"issued in the future", form(sign(claims(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Hour).Unix() }), key, thumb))},
		{"issuer another client", form(sign(claims(func(c jwt.MapClaims) { c["iss"] = "someone" }), key, thumb))},
		{"subject another client", form(sign(claims(func(c jwt.MapClaims) { c["sub"] = "someone" }), key, thumb))},
		{"no jti", form(sign(claims(func(c jwt.MapClaims) { delete(c, "jti") }), key, thumb))},
		{"jti replayed", form(replayed)},
		{"HS256", form(hs)},
		{"alg none", form(none)},
		{"payload swapped", form(tampered)},
		{"garbage", form("not.a.jwt")},
		{"another assertion type", func() url.Values {
			f := form(sign(claims(nil), key, thumb))
			f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
			return f
		}()},
		{"with a client secret", func() url.Values {
			f := form(sign(claims(nil), key, thumb))
			f.Set("client_secret", p.ClientSecret())
			return f
		}()},
		{"client_id another client", func() url.Values {
			f := form(sign(claims(nil), key, thumb))
			f.Set("client_id", "someone")
			return f
		}()},
	}
	for _, b := range bad {
		status, body := post(b.form)
		if status != http.StatusUnauthorized || body["error"] != "invalid_client" || body["access_token"] != nil {
			t.Errorf("%s: %d %v", b.name, status, body)
		}
	}
	for i, r := range p.RefusedAssertions() {
		t.Logf("%s: %s", bad[i].name, r)
	}
	if got := len(p.RefusedAssertions()); got != len(bad) {
		t.Errorf("%d assertions refused, want %d: %v", got, len(bad), p.RefusedAssertions())
	}
	// An expired certificate stops being a credential.
	p.DistrustCertificates()
	if err := p.TrustCertificate(expiredCertPEM); err != nil {
		t.Fatal(err)
	}
	status, _ = post(form(sign(claims(nil), key, x5t(certDER(t, expiredCertPEM)))))
	if status != http.StatusUnauthorized {
		t.Errorf("expired certificate: %d", status)
	}
	if p.Assertions() != 2 { // the good one and the first use of "once"
		t.Errorf("%d assertions verified, want 2", p.Assertions())
	}
}

// TestResourceScopesAtAuthorize: the authorization endpoint records a
// Microsoft resource scope and approves with the OIDC scopes beside it.
func TestResourceScopesAtAuthorize(t *testing.T) {
	p, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	q := url.Values{"client_id": {p.ClientID()}, "response_type": {"code"}, "redirect_uri": {"https://app.example.test/cb"}, "state": {"s"},
		"scope": {"https://contoso.sharepoint.com/.default offline_access"}}
	back, err := p.Authorize(t.Context(), p.AuthorizeURL()+"?"+q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if back.Query().Get("code") == "" {
		t.Fatalf("redirected to %s", back)
	}
	if sc := p.Scopes(); len(sc) != 1 || sc[0].Scope != "https://contoso.sharepoint.com/.default offline_access" || sc[0].Endpoint != "authorize" {
		t.Errorf("scopes %v", sc)
	}
	for in, want := range map[string]string{
		"https://contoso.sharepoint.com/.default offline_access": "offline_access",
		"https://contoso.sharepoint.com/.default":                "openid",
		"openid email": "openid email",
	} {
		if got := oidcScopes(in); got != want {
			t.Errorf("oidcScopes(%q) = %q, want %q", in, got, want)
		}
	}
}
