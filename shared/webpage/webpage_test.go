package webpage_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"io"
	"io/fs"
	"log/slog"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/aws/aws-lambda-go/events"

	"github.com/connmgr/connmgr/shared/httpapi"
	"github.com/connmgr/connmgr/shared/webpage"
	"github.com/connmgr/connmgr/web"
)

// MaxGzippedBytes is the page's weight budget: the page and every asset,
// as sent gzipped (issue 11: at most 150 KB).
const MaxGzippedBytes = 150 * 1000

var cfg = webpage.Config{Issuer: "https://login.example.com/tenant/v2.0", Audience: "api://connmgr", ClientID: `page"<client>`}

func serve(t *testing.T, files fs.FS, path, acceptEncoding string) events.APIGatewayV2HTTPResponse {
	t.Helper()
	site, err := webpage.New(files, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rt := httpapi.NewRouter(slog.New(slog.NewTextHandler(io.Discard, nil)))
	site.Routes(rt)
	ev := events.APIGatewayV2HTTPRequest{RouteKey: webpage.RouteIndex, RawPath: path, Headers: map[string]string{}}
	if p, ok := strings.CutPrefix(path, "/assets/"); ok {
		ev.RouteKey, ev.PathParameters = webpage.RouteAssets, map[string]string{"file": p}
	}
	if acceptEncoding != "" {
		ev.Headers["accept-encoding"] = acceptEncoding
	}
	resp, err := rt.Serve(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func body(t *testing.T, r events.APIGatewayV2HTTPResponse) string {
	t.Helper()
	if !r.IsBase64Encoded {
		return r.Body
	}
	b, err := base64.StdEncoding.DecodeString(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	if r.Headers["Content-Encoding"] == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if b, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	return string(b)
}

func TestPageHeaders(t *testing.T) {
	site, err := webpage.New(web.Files, cfg)
	if err != nil {
		t.Fatal(err)
	}
	index := serve(t, web.Files, "/", "")
	html := body(t, index)
	asset := serve(t, web.Files, site.AssetsPath()+"/main.js", "gzip, deflate, br")
	for _, tc := range []struct {
		name string
		resp events.APIGatewayV2HTTPResponse
		want map[string]string
	}{
		{"page", index, map[string]string{"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}},
		{"asset", asset, map[string]string{"Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "public, max-age=31536000, immutable",
			"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}},
	} {
		if tc.resp.StatusCode != 200 {
			t.Fatalf("%s: status %d %s", tc.name, tc.resp.StatusCode, tc.resp.Body)
		}
		want := map[string]string{
			"X-Frame-Options":         "DENY",
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "no-referrer",
			"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self' https://login.example.com; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
		}
		for k, v := range tc.want {
			want[k] = v
		}
		for k, v := range want {
			if got := tc.resp.Headers[k]; got != v {
				t.Errorf("%s: %s = %q, want %q", tc.name, k, got, v)
			}
		}
	}
	// The page names its assets by their hash, and escapes the configuration.
	for _, s := range []string{`src="` + site.AssetsPath() + `/main.js"`, `href="` + site.AssetsPath() + `/app.css"`,
		`content="https://login.example.com/tenant/v2.0"`, `content="page&#34;&lt;client&gt;"`} {
		if !strings.Contains(html, s) {
			t.Errorf("the page lacks %s", s)
		}
	}
	// No inline script or style: the CSP would refuse them anyway.
	for _, bad := range []string{"<script>", "style=", "<style", "onclick", "javascript:"} {
		if strings.Contains(html, bad) {
			t.Errorf("the page holds %q", bad)
		}
	}
	if js := body(t, asset); !strings.Contains(js, "import") {
		t.Errorf("main.js does not decompress to the module: %.80q", js)
	}
}

func TestAssetNamesCarryTheirHash(t *testing.T) {
	files := fstest.MapFS{
		"index.html":     {Data: []byte(`<script type="module" src="{{assets}}/main.js"></script>{{issuer}}{{audience}}{{clientId}}`)},
		"assets/main.js": {Data: []byte(`export {}`)},
	}
	a, err := webpage.New(files, cfg)
	if err != nil {
		t.Fatal(err)
	}
	files["assets/main.js"] = &fstest.MapFile{Data: []byte(`export const x = 1`)}
	b, err := webpage.New(files, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a.AssetsPath() == b.AssetsPath() {
		t.Fatalf("a changed asset keeps its path %s", a.AssetsPath())
	}
	for path, want := range map[string]int{
		b.AssetsPath() + "/main.js":    200,
		a.AssetsPath() + "/main.js":    404, // an earlier deployment's
		b.AssetsPath() + "/other.js":   404,
		b.AssetsPath() + "/../main.js": 404,
		"/assets/main.js":              404,
	} {
		r := serve(t, files, path, "")
		if r.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, r.StatusCode, want)
		}
		if want == 404 && r.Headers["Cache-Control"] != "no-store" {
			t.Errorf("GET %s: a 404 is cached: %q", path, r.Headers["Cache-Control"])
		}
	}
	if _, err := webpage.New(fstest.MapFS{"index.html": {Data: []byte(`{{assets}}{{nonsense}}`)}}, cfg); err == nil {
		t.Error("an unknown placeholder was accepted")
	}
	if _, err := webpage.New(files, webpage.Config{Issuer: "http://login.example.com"}); err == nil {
		t.Error("an http issuer was accepted")
	}
}

func TestAcceptEncoding(t *testing.T) {
	site, err := webpage.New(web.Files, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for ae, gz := range map[string]bool{"": false, "gzip": true, "br, gzip;q=0.5": true, "gzip;q=0": false, "*": true, "identity": false, "GZIP": true} {
		r := serve(t, web.Files, site.AssetsPath()+"/app.css", ae)
		if got := r.Headers["Content-Encoding"] == "gzip"; got != gz {
			t.Errorf("Accept-Encoding %q: gzip %v, want %v", ae, got, gz)
		}
		if !strings.Contains(body(t, r), ":root") {
			t.Errorf("Accept-Encoding %q: not the stylesheet", ae)
		}
	}
}

// TestPageWeight holds the page and all its assets, gzipped, to the budget.
func TestPageWeight(t *testing.T) {
	site, err := webpage.New(web.Files, cfg)
	if err != nil {
		t.Fatal(err)
	}
	raw, gz := site.Weight()
	t.Logf("page weight: %d bytes, %d gzipped (budget %d)", raw, gz, MaxGzippedBytes)
	if gz > MaxGzippedBytes {
		t.Errorf("the page weighs %d bytes gzipped, over the budget of %d", gz, MaxGzippedBytes)
	}
}

// TestConnectSrc: the page may connect to its own origin, the issuer's and
// the configured token endpoint's (Amazon Cognito's is on the user pool's
// domain), and nowhere else; a malformed token endpoint is refused.
func TestConnectSrc(t *testing.T) {
	for _, tc := range []struct {
		name, issuer, token, want string
	}{
		{"issuer only", "https://login.example.com/tenant/v2.0", "", "connect-src 'self' https://login.example.com;"},
		{"token endpoint on the issuer's origin", "https://login.example.com/tenant/v2.0", "https://login.example.com/tenant/oauth2/v2.0/token",
			"connect-src 'self' https://login.example.com;"},
		{"Cognito", "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC", "https://contoso.auth.eu-west-1.amazoncognito.com/oauth2/token",
			"connect-src 'self' https://cognito-idp.eu-west-1.amazonaws.com https://contoso.auth.eu-west-1.amazoncognito.com;"},
		{"a port is part of the origin", "https://idp.example.com:8443/realms/x", "https://IdP.example.com/token",
			"connect-src 'self' https://idp.example.com:8443 https://idp.example.com;"},
		{"not https", "https://login.example.com", "http://login.example.com/token", ""},
		{"a query", "https://login.example.com", "https://login.example.com/token?x=1", ""},
		{"no host", "https://login.example.com", "/token", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := webpage.Config{Issuer: tc.issuer, Audience: "api://connmgr", ClientID: "page", TokenEndpoint: tc.token}
			site, err := webpage.New(web.Files, c)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("token endpoint %q was accepted", tc.token)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			rt := httpapi.NewRouter(slog.New(slog.NewTextHandler(io.Discard, nil)))
			site.Routes(rt)
			resp, err := rt.Serve(context.Background(), events.APIGatewayV2HTTPRequest{RouteKey: webpage.RouteIndex, RawPath: "/"})
			if err != nil {
				t.Fatal(err)
			}
			csp := resp.Headers["Content-Security-Policy"]
			if !strings.Contains(csp, "; "+tc.want+" ") {
				t.Errorf("CSP %q lacks %q", csp, tc.want)
			}
			if meta := `<meta name="connmgr-token-endpoint" content="` + tc.token + `">`; !strings.Contains(body(t, resp), meta) {
				t.Errorf("the page lacks %s", meta)
			}
		})
	}
}
