package oauth_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/connmgr/connmgr/local/oauthprovider"
	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/oauth"
	"github.com/connmgr/connmgr/shared/secret"
	"github.com/connmgr/connmgr/shared/store"
)

const appType = "sharepoint-online-app"

var hrSite = map[string]any{"siteUrl": "https://contoso.sharepoint.com/sites/hr"}

type keyPair struct{ key, cert string }

func newKeyPair(t *testing.T, now time.Time, validFor time.Duration, pkcs1 bool) keyPair {
	t.Helper()
	k, c, err := oauthprovider.GenerateCertificate("connmgr test", now, validFor, pkcs1)
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{string(k), string(c)}
}

// keyCanaries are pieces of a PEM private key's body: none may appear in
// any output.
func keyCanaries(keyPEM string) []string {
	b, _ := pem.Decode([]byte(keyPEM))
	body := base64.StdEncoding.EncodeToString(b.Bytes)
	var out []string
	for i := 0; i+24 <= len(body); i += 200 {
		out = append(out, body[i:i+24])
	}
	return out
}

func checkNoKey(t *testing.T, where, text string, keys ...string) {
	t.Helper()
	for _, k := range keys {
		for _, c := range keyCanaries(k) {
			if strings.Contains(text, c) {
				t.Errorf("%s holds the private key: %.300s", where, text)
				return
			}
		}
	}
}

func pemOf(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

// TestCertificateRegistration: a sharepoint-online-app registration takes
// a certificate and its private key instead of a client secret, checks
// them, seals them, and shows only the thumbprint and notAfter.
func TestCertificateRegistration(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := f.env.Clock.Now()
	a := newKeyPair(t, now, 365*24*time.Hour, false)
	b := newKeyPair(t, now, 200*24*time.Hour, true)
	expired := newKeyPair(t, now.Add(-30*24*time.Hour), 24*time.Hour, false)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	ecKey := pemOf("PRIVATE KEY", ecDER)
	encrypted := strings.Replace(a.key, "-----BEGIN PRIVATE KEY-----\n", "-----BEGIN PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n\n", 1)
	input := func(cert, key string) oauth.ClientInput {
		return oauth.ClientInput{ClientID: "sp-app", ClientCertificate: cert, ClientPrivateKey: secret.New(key), TokenURL: "https://login.example.test/t/oauth2/v2.0/token"}
	}
	exp := "2030-01-01T00:00:00Z"
	bad := []struct {
		name        string
		typ         string
		in          oauth.ClientInput
		field, code string
	}{
		{"another pair's key", appType, input(a.cert, b.key), "clientPrivateKey", "key_certificate_mismatch"},
		{"key and certificate swapped", appType, input(a.key, a.cert), "clientCertificate", "invalid_certificate"},
		{"not PEM", appType, input(a.cert, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"), "clientPrivateKey", "invalid_private_key"},
		{"two keys", appType, input(a.cert, a.key+b.key), "clientPrivateKey", "invalid_private_key"},
		{"key then certificate", appType, input(a.cert, a.key+a.cert), "clientPrivateKey", "invalid_private_key"},
		{"encrypted key", appType, input(a.cert, encrypted), "clientPrivateKey", "invalid_private_key"},
		{"EC key", appType, input(a.cert, ecKey), "clientPrivateKey", "invalid_private_key"},
		{"1024-bit key", appType, input(a.cert, pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small))), "clientPrivateKey", "invalid_private_key"},
		{"corrupt key", appType, input(a.cert, strings.Replace(a.key, "\n", "\nAAAA", 3)), "clientPrivateKey", "invalid_private_key"},
		{"oversize key", appType, input(a.cert, a.key+strings.Repeat(" ", 17<<10)), "clientPrivateKey", "invalid_private_key"},
		{"certificate chain", appType, input(a.cert+b.cert, a.key), "clientCertificate", "invalid_certificate"},
		{"expired certificate", appType, input(expired.cert, expired.key), "clientCertificate", "certificate_expired"},
		{"key without certificate", appType, input("", a.key), "clientCertificate", "required"},
		{"certificate without key", appType, input(a.cert, ""), "clientPrivateKey", "required"},
		{"neither on creation", appType, input("", ""), "clientCertificate", "required"},
		{"a client secret instead", appType, oauth.ClientInput{ClientID: "sp-app", ClientSecret: secret.New("s"), TokenURL: "https://login.example.test/t"}, "clientSecret", "not_applicable"},
		{"a secret expiry date", appType, func() oauth.ClientInput { in := input(a.cert, a.key); in.ClientSecretExpiresAt = &exp; return in }(), "clientSecretExpiresAt", "not_applicable"},
		{"HTTP Basic", appType, func() oauth.ClientInput { in := input(a.cert, a.key); in.AuthStyle = oauth.AuthStyleHeader; return in }(), "authStyle", "not_applicable"},
		{"a certificate for a client secret type", "oauth2-client-credentials", input(a.cert, a.key), "clientCertificate", "not_applicable"},
		{"a private key for a client secret type", "oauth2-client-credentials", oauth.ClientInput{ClientID: "x", ClientSecret: secret.New("s"), ClientPrivateKey: secret.New(a.key), TokenURL: "https://x.example.test/t"}, "clientPrivateKey", "not_applicable"},
		{"no directory tenant", appType, oauth.ClientInput{ClientID: "sp-app", ClientCertificate: a.cert, ClientPrivateKey: secret.New(a.key)}, "directoryTenant", "required"},
	}
	var out strings.Builder
	for _, tt := range bad {
		_, err := f.registry.Put(ctx, f.admin, tt.typ, tt.in, 0)
		e := apperr.As(err)
		if e.Kind != apperr.Invalid || e.Field != tt.field || e.Code != tt.code {
			t.Errorf("%s: %v (field %q code %q), want field %q code %q", tt.name, err, e.Field, e.Code, tt.field, tt.code)
		}
		if err != nil {
			fmt.Fprintf(&out, "%v %+v %s\n", err, e, e.Message)
		}
	}
	checkNoKey(t, "an error", out.String(), a.key, b.key, expired.key)

	v, err := f.registry.Put(ctx, f.admin, appType, input(a.cert, a.key), 0)
	if err != nil {
		t.Fatal(err)
	}
	certA, _ := pem.Decode([]byte(a.cert))
	parsedA, _ := x509.ParseCertificate(certA.Bytes)
	sum := sha1.Sum(certA.Bytes)
	raw, _ := json.Marshal(v)
	if !v.ClientSecret || v.ClientCertificateThumbprint != strings.ToUpper(hex.EncodeToString(sum[:])) ||
		!v.ClientSecretExpiresAt.Equal(parsedA.NotAfter.Truncate(time.Second)) || v.DirectoryTenant != "" {
		t.Fatalf("view %s", raw)
	}
	checkNoKey(t, "the view", string(raw), a.key)
	reg, _ := f.env.Store.GetOAuthClient(ctx, "t1", appType)
	pt, err := f.opener.Open(ctx, reg.SecretBinding(), reg.Secret)
	if err != nil || !strings.Contains(string(pt), "-----BEGIN PRIVATE KEY-----") || !strings.Contains(string(pt), strings.TrimSpace(a.cert)) {
		t.Fatalf("sealed secret: %v", err)
	}
	// An update without the pair keeps it; moving the token endpoint to
	// another host needs it again.
	keep := oauth.ClientInput{ClientID: "sp-app-2", TokenURL: "https://login.example.test/t/oauth2/v2.0/token"}
	if v, err = f.registry.Put(ctx, f.admin, appType, keep, 1); err != nil || v.ClientCertificateThumbprint == "" || !v.ClientSecretExpiresAt.Equal(parsedA.NotAfter.Truncate(time.Second)) {
		t.Fatalf("update without the pair: %+v %v", v, err)
	}
	keep.TokenURL = "https://elsewhere.example.test/token"
	if _, err := f.registry.Put(ctx, f.admin, appType, keep, 2); apperr.As(err).Field != "clientPrivateKey" || !apperr.Is(err, apperr.Conflict) {
		t.Fatalf("token endpoint moved without the key: %v", err)
	}
	// A new pair (PKCS #1 this time) replaces the old one under a new version.
	in := input(b.cert, b.key)
	in.TokenURL = keep.TokenURL
	if v, err = f.registry.Put(ctx, f.admin, appType, in, 2); err != nil {
		t.Fatal(err)
	}
	reg, _ = f.env.Store.GetOAuthClient(ctx, "t1", appType)
	certB, _ := pem.Decode([]byte(b.cert))
	sumB := sha1.Sum(certB.Bytes)
	if reg.SecretVersion != 2 || v.ClientCertificateThumbprint != strings.ToUpper(hex.EncodeToString(sumB[:])) {
		t.Fatalf("after replacing the pair: secret v%d %+v", reg.SecretVersion, v)
	}
	list, _ := f.registry.List(ctx, f.admin)
	raw, _ = json.Marshal(list)
	checkNoKey(t, "the list", string(raw), a.key, b.key)
}

// TestDirectoryTenant: the SharePoint types' endpoints are the Microsoft
// identity platform of the directory the registration names.
func TestDirectoryTenant(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	typ, _ := connection.Lookup("sharepoint-online", "type")
	in := oauth.ClientInput{ClientID: "sp", ClientSecret: secret.New("s"), DirectoryTenant: " Contoso.onmicrosoft.com "}
	bad := []struct {
		name, typ   string
		in          oauth.ClientInput
		field, code string
	}{
		{"missing", "sharepoint-online", oauth.ClientInput{ClientID: "sp", ClientSecret: secret.New("s")}, "directoryTenant", "required"},
		{"token endpoint alone overridden", "sharepoint-online", oauth.ClientInput{ClientID: "sp", ClientSecret: secret.New("s"), TokenURL: "https://idp.example.test/token"}, "directoryTenant", "required"},
		{"common", "sharepoint-online", oauth.ClientInput{ClientID: "sp", ClientSecret: secret.New("s"), DirectoryTenant: "common"}, "directoryTenant", "invalid_directory_tenant"},
		{"a path", "sharepoint-online", oauth.ClientInput{ClientID: "sp", ClientSecret: secret.New("s"), DirectoryTenant: "contoso.com/../evil"}, "directoryTenant", "invalid_directory_tenant"},
		{"another type", "oauth2-generic", oauth.ClientInput{ClientID: "g", ClientSecret: secret.New("s"), AuthorizeURL: "https://idp.example.test/a", TokenURL: "https://idp.example.test/t", DirectoryTenant: "contoso.com"}, "directoryTenant", "not_applicable"},
	}
	for _, tt := range bad {
		_, err := f.registry.Put(ctx, f.admin, tt.typ, tt.in, 0)
		if e := apperr.As(err); e.Field != tt.field || e.Code != tt.code {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	v, err := f.registry.Put(ctx, f.admin, "sharepoint-online", in, 0)
	if err != nil || v.DirectoryTenant != "contoso.onmicrosoft.com" {
		t.Fatalf("put: %+v %v", v, err)
	}
	reg, _ := f.env.Store.GetOAuthClient(ctx, "t1", "sharepoint-online")
	if d := reg.Destinations(); len(d) != 1 || d[0] != "https://login.microsoftonline.com:443" {
		t.Errorf("destinations %v", d)
	}
	p, err := oauth.NewProvider(typ, reg, nil, oauth.ProviderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.AuthorizeURL != "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize" ||
		p.TokenURL != "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token" {
		t.Errorf("endpoints %s %s", p.AuthorizeURL, p.TokenURL)
	}
	if got := strings.Join(p.ScopesFor(hrSite), " "); got != "https://contoso.sharepoint.com/.default offline_access" {
		t.Errorf("scopes %q", got)
	}
	u, _ := url.Parse(p.AuthCodeURL("st", "verifier-verifier-verifier-verifier-verifier", redirectURI, p.ScopesFor(hrSite)))
	if u.Query().Get("scope") != "https://contoso.sharepoint.com/.default offline_access" || u.Query().Get("code_challenge_method") != "S256" {
		t.Errorf("authorize URL %s", u)
	}
	// Another directory: the same host, so the secret stays.
	in2 := oauth.ClientInput{ClientID: "sp", DirectoryTenant: "72f988bf-86f1-41af-91ab-2d7cd011db47"}
	if v, err = f.registry.Put(ctx, f.admin, "sharepoint-online", in2, 1); err != nil || v.DirectoryTenant != in2.DirectoryTenant {
		t.Fatalf("another directory: %+v %v", v, err)
	}
	// A registration that names no directory and overrides nothing (as
	// stored before directoryTenant existed) is not usable.
	if _, err := oauth.NewProvider(typ, &store.OAuthClient{Type: "sharepoint-online", ClientID: "sp"}, nil, oauth.ProviderOptions{}); err != oauth.ErrNotConfigured {
		t.Errorf("no directory: %v", err)
	}
	// Both endpoints overridden (the local provider): no directory needed.
	if _, err := f.registry.Put(ctx, f.admin, "sharepoint-online", oauth.ClientInput{ClientID: "sp", ClientSecret: secret.New("s"),
		AuthorizeURL: "https://idp.example.test/a", TokenURL: "https://idp.example.test/t"}, 2); err != nil {
		t.Errorf("overridden endpoints: %v", err)
	}
}

// registerApp registers the provider as t1's sharepoint-online-app client
// with pair.
func (f *fixture) registerApp(t *testing.T, pair keyPair) {
	t.Helper()
	in := oauth.ClientInput{ClientID: f.idp.ClientID(), ClientCertificate: pair.cert, ClientPrivateKey: secret.New(pair.key), TokenURL: f.idp.TokenURL()}
	ifMatch := int64(0)
	if cur, err := f.registry.Get(context.Background(), f.admin, appType); err == nil {
		ifMatch = cur.Version
	}
	if _, err := f.registry.Put(context.Background(), f.admin, appType, in, ifMatch); err != nil {
		t.Fatal(err)
	}
}

// TestClientAssertionGrant: the client credentials grant with a
// certificate, verified by the local provider (golang-jwt), for the scope
// of the connection's SharePoint; the wrong key is refused.
func TestClientAssertionGrant(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := f.env.Clock.Now()
	a, b := newKeyPair(t, now, 365*24*time.Hour, false), newKeyPair(t, now, 365*24*time.Hour, true)
	if err := f.idp.TrustCertificate([]byte(a.cert)); err != nil {
		t.Fatal(err)
	}
	f.registerApp(t, a)
	p := f.provider(t, appType)
	scopes := p.ScopesFor(hrSite)
	if strings.Join(scopes, " ") != "https://contoso.sharepoint.com/.default" {
		t.Fatalf("scopes %v", scopes)
	}
	ts, err := p.ClientCredentials(ctx, scopes)
	if err != nil {
		t.Fatalf("%v (refused: %v)", err, f.idp.RefusedAssertions())
	}
	if !f.idp.ValidAccessToken(ts.AccessToken()) || ts.RefreshToken() != "" || f.idp.Assertions() != 1 {
		t.Fatalf("token %v, %d assertions", ts, f.idp.Assertions())
	}
	if sc := f.idp.Scopes(); len(sc) != 1 || sc[0].Scope != "https://contoso.sharepoint.com/.default" {
		t.Errorf("scope requested: %v", sc)
	}
	// Each request signs a new assertion (a new jti): a second one works.
	if _, err := p.ClientCredentials(ctx, scopes); err != nil || f.idp.Assertions() != 2 {
		t.Fatalf("second grant: %v", err)
	}
	// A registered pair the provider does not trust: invalid_client.
	f.registerApp(t, b)
	_, err = f.provider(t, appType).ClientCredentials(ctx, scopes)
	pe, ok := oauth.AsError(err)
	if !ok || pe.Code != "invalid_client" || !pe.Rejected {
		t.Fatalf("untrusted certificate: %v", err)
	}
	checkNoKey(t, "the error", fmt.Sprintf("%v %+v", err, pe), a.key, b.key)
}

// TestClientAssertionShape: what goes to the token endpoint, read off the
// wire: the form of RFC 7523 and the JWT Microsoft expects.
func TestClientAssertionShape(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	pair := newKeyPair(t, now, 365*24*time.Hour, true)
	var form url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		form = r.PostForm
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"at","token_type":"Bearer","expires_in":3599}`))
	}))
	defer srv.Close()
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.registry.Put(ctx, f.admin, appType, oauth.ClientInput{ClientID: "app-1", ClientCertificate: pair.cert,
		ClientPrivateKey: secret.New(pair.key), TokenURL: srv.URL + "/tenant/oauth2/v2.0/token"}, 0); err != nil {
		t.Fatal(err)
	}
	reg, _ := f.env.Store.GetOAuthClient(ctx, "t1", appType)
	sealed, _ := f.opener.Open(ctx, reg.SecretBinding(), reg.Secret)
	typ, _ := connection.Lookup(appType, "type")
	p, err := oauth.NewProvider(typ, reg, sealed, oauth.ProviderOptions{HTTPClient: localHTTP, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.ClientCredentials(ctx, p.ScopesFor(hrSite)); err != nil {
		t.Fatal(err)
	}
	if form.Get("grant_type") != "client_credentials" || form.Get("client_id") != "app-1" || form.Has("client_secret") ||
		form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" || form.Get("scope") != "https://contoso.sharepoint.com/.default" {
		t.Fatalf("form %v", form)
	}
	block, _ := pem.Decode([]byte(pair.cert))
	cert, _ := x509.ParseCertificate(block.Bytes)
	s1, s256 := sha1.Sum(block.Bytes), sha256.Sum256(block.Bytes)
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(form.Get("client_assertion"), claims, func(*jwt.Token) (any, error) { return cert.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Header["typ"] != "JWT" || tok.Header["x5t"] != base64.RawURLEncoding.EncodeToString(s1[:]) || tok.Header["x5t#S256"] != base64.RawURLEncoding.EncodeToString(s256[:]) {
		t.Errorf("header %v", tok.Header)
	}
	iat, _ := claims.GetIssuedAt()
	nbf, _ := claims.GetNotBefore()
	exp, _ := claims.GetExpirationTime()
	if claims["aud"] != srv.URL+"/tenant/oauth2/v2.0/token" || claims["iss"] != "app-1" || claims["sub"] != "app-1" ||
		!iat.Equal(now) || !nbf.Equal(now) || !exp.Equal(now.Add(5*time.Minute)) {
		t.Errorf("claims %v", claims)
	}
	jti, _ := claims["jti"].(string)
	if len(jti) != 36 || jti[14] != '4' {
		t.Errorf("jti %q", jti)
	}
	first := form.Get("client_assertion")
	p.ClientCredentials(ctx, nil)
	if form.Get("client_assertion") == first {
		t.Error("the assertion was reused")
	}
}

// TestCertificateRedacted: the private key never prints, whatever holds it.
func TestCertificateRedacted(t *testing.T) {
	pair := newKeyPair(t, time.Now(), time.Hour, false)
	f := newFixture(t)
	ctx := context.Background()
	in := oauth.ClientInput{ClientID: "app", ClientCertificate: pair.cert, ClientPrivateKey: secret.New(pair.key), TokenURL: "https://login.example.test/t"}
	if _, err := f.registry.Put(ctx, f.admin, appType, in, 0); err != nil {
		t.Fatal(err)
	}
	p := f.provider(t, appType)
	var decoded oauth.ClientInput
	raw, _ := json.Marshal(map[string]string{"clientId": "app", "clientCertificate": pair.cert, "clientPrivateKey": pair.key})
	if err := json.Unmarshal(raw, &decoded); err != nil || decoded.ClientPrivateKey.Reveal() != pair.key {
		t.Fatalf("decode: %v", err)
	}
	var out bytes.Buffer
	for _, v := range []any{p, *p, in, &in, decoded, struct{ P *oauth.Provider }{p}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
			fmt.Fprintf(&out, verb+"\n", v)
		}
		b, _ := json.Marshal(v)
		out.Write(b)
	}
	slog.New(slog.NewJSONHandler(&out, nil)).Info("x", "provider", p, "input", in)
	checkNoKey(t, "fmt, JSON and slog output", out.String(), pair.key)
	if !strings.Contains(out.String(), "clientCertificate:") {
		t.Errorf("the provider does not say it holds a certificate: %.200s", out.String())
	}
}
