// Package webpage serves the Connections page from its embedded files
// (package web): GET / answers the page, GET /assets/{file+} its modules,
// stylesheet and icon under a name that carries a hash of every asset, so
// assets are cached for a year and the page itself never.
//
// Every answer carries a strict Content Security Policy: scripts, styles
// and images from the page's own origin only, no inline script or style,
// and connections to the API (the same origin) and to the identity
// provider's origins only: the issuer's, and its token endpoint's when
// that is configured on another origin (Amazon Cognito's user pool
// domain). It never reads a request body, a cookie or a token, and serves
// nothing but the embedded files.
package webpage

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html"
	"io/fs"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/httpapi"
)

// Config is what the page is told of its sign-in.
type Config struct {
	// Issuer is the API's identity provider (JwtIssuer): the page signs
	// people in there with OpenID Connect (authorization code with PKCE),
	// and it is the only other origin the page may connect to.
	Issuer string
	// Audience is the audience the API's authorizer requires (JwtAudience):
	// the page sends the token issued for it.
	Audience string
	// ClientID is the page's client id at the identity provider.
	ClientID string
	// TokenEndpoint, when set, is the identity provider's token endpoint
	// (PageTokenEndpoint): the page uses it rather than the one the
	// issuer's discovery document names, and the CSP lets the page reach
	// its origin too. Empty: the discovery document's, which must then be
	// on the issuer's origin.
	TokenEndpoint string
}

// Routes are the page's route keys.
const (
	RouteIndex  = "GET /"
	RouteAssets = "GET /assets/{file+}"
)

// Headers of every answer.
const (
	cacheAssets  = "public, max-age=31536000, immutable"
	cachePage    = "no-store"
	frameOptions = "DENY"
)

var contentTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
	".svg": "image/svg+xml",
}

// Site is the page, ready to serve.
type Site struct {
	build  string // hash of every asset, the first segment of their paths
	csp    string
	index  file
	assets map[string]file // by path below assets/
}

type file struct {
	ctype    string
	body, gz []byte
}

// New reads the page from files (index.html and assets/) and fills in
// cfg.
func New(files fs.FS, cfg Config) (*Site, error) {
	issuer, err := url.Parse(cfg.Issuer)
	if err != nil || issuer.Scheme != "https" || issuer.Host == "" {
		return nil, fmt.Errorf("webpage: issuer %q is not an absolute https URL", cfg.Issuer)
	}
	connect := []string{"'self'", origin(issuer)}
	if cfg.TokenEndpoint != "" {
		tok, err := url.Parse(cfg.TokenEndpoint)
		if err != nil || tok.Scheme != "https" || tok.Host == "" || tok.User != nil || tok.RawQuery != "" || tok.Fragment != "" {
			return nil, fmt.Errorf("webpage: token endpoint %q is not an absolute https URL without query or fragment", cfg.TokenEndpoint)
		}
		if o := origin(tok); o != connect[1] {
			connect = append(connect, o)
		}
	}
	s := &Site{assets: map[string]file{}}
	h := sha256.New()
	var names []string
	err = fs.WalkDir(files, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		names = append(names, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("webpage: read assets: %w", err)
	}
	slices.Sort(names)
	for _, p := range names {
		ctype, ok := contentTypes[path.Ext(p)]
		if !ok {
			return nil, fmt.Errorf("webpage: %s: no content type for %q files", p, path.Ext(p))
		}
		b, err := fs.ReadFile(files, p)
		if err != nil {
			return nil, fmt.Errorf("webpage: %w", err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
		s.assets[strings.TrimPrefix(p, "assets/")] = file{ctype: ctype, body: b, gz: compress(b)}
	}
	s.build = hex.EncodeToString(h.Sum(nil))[:16]
	tmpl, err := fs.ReadFile(files, "index.html")
	if err != nil {
		return nil, fmt.Errorf("webpage: %w", err)
	}
	page := strings.NewReplacer(
		"{{assets}}", "/assets/"+s.build,
		"{{issuer}}", html.EscapeString(cfg.Issuer),
		"{{audience}}", html.EscapeString(cfg.Audience),
		"{{clientId}}", html.EscapeString(cfg.ClientID),
		"{{tokenEndpoint}}", html.EscapeString(cfg.TokenEndpoint),
	).Replace(string(tmpl))
	if strings.Contains(page, "{{") {
		return nil, fmt.Errorf("webpage: index.html has a placeholder New does not fill")
	}
	s.index = file{ctype: "text/html; charset=utf-8", body: []byte(page), gz: compress([]byte(page))}
	s.csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
		"connect-src " + strings.Join(connect, " ") + "; " +
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	return s, nil
}

// origin is u's scheme and host (with its port, if any), lower-cased as
// browsers compare them.
func origin(u *url.URL) string {
	return strings.ToLower(u.Scheme + "://" + u.Host)
}

// Routes registers the page's public routes.
func (s *Site) Routes(rt *httpapi.Router) {
	rt.HandlePublic(RouteIndex, s.serveIndex)
	rt.HandlePublic(RouteAssets, s.serveAsset)
}

// AssetsPath is where the assets are served, "/assets/<hash>".
func (s *Site) AssetsPath() string { return "/assets/" + s.build }

// Weight is the size of the page and all its assets, as sent without and
// with gzip.
func (s *Site) Weight() (raw, gzipped int) {
	raw, gzipped = len(s.index.body), len(s.index.gz)
	for _, f := range s.assets {
		raw += len(f.body)
		gzipped += len(f.gz)
	}
	return raw, gzipped
}

func (s *Site) serveIndex(_ context.Context, r *httpapi.Request) (httpapi.Response, error) {
	return s.answer(r, s.index, cachePage), nil
}

func (s *Site) serveAsset(_ context.Context, r *httpapi.Request) (httpapi.Response, error) {
	build, name, _ := strings.Cut(r.Param("file"), "/")
	f, ok := s.assets[name]
	if build != s.build || !ok {
		// An old page asks for assets of an earlier deployment: they are
		// gone, and a reload fetches the page that names the new ones.
		return httpapi.Response{}, apperr.E(apperr.NotFound, "not_found", "no such file")
	}
	return s.answer(r, f, cacheAssets), nil
}

func (s *Site) answer(r *httpapi.Request, f file, cache string) httpapi.Response {
	headers := map[string]string{
		"Content-Type":            f.ctype,
		"Cache-Control":           cache,
		"Content-Security-Policy": s.csp,
		"X-Frame-Options":         frameOptions,
		"Referrer-Policy":         "no-referrer",
		"Vary":                    "Accept-Encoding",
	}
	body := f.body
	if acceptsGzip(r.Header("accept-encoding")) {
		headers["Content-Encoding"] = "gzip"
		body = f.gz
	}
	return httpapi.Response{Status: 200, Headers: headers, Bytes: body}
}

// acceptsGzip reads an Accept-Encoding header: gzip (or *) without q=0.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "*" {
			continue
		}
		q := 1.0
		if k, v, ok := strings.Cut(strings.TrimSpace(params), "="); ok && strings.EqualFold(strings.TrimSpace(k), "q") {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				q = f
			}
		}
		return q > 0
	}
	return false
}

func compress(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}
