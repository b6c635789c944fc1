// Package httpaction performs the http.request connector action: one HTTP
// request to the connection's own host, authenticated as the connection's
// type says.
//
// Credentials never go to another host: the URL is the connection's base
// URL joined with a path, redirects to another host are not followed, and
// the address dialled, after DNS, must pass shared/netguard's rule for the
// deployment's networks.
//
// What it must never do: keep any form of a credential value. Whatever the
// target answers is scrubbed of every form of every credential value
// (scrub.go says which forms) and then checked; a part still holding one is
// withheld whole (Result.Withheld). Reason is a fixed vocabulary; a
// returned error whose text holds a form is replaced by a fixed one.
package httpaction

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/connmgr/connmgr/shared/netguard"
)

// Credential authenticates a request. Secrets lists every value it sends
// that is secret, raw and each field once, of any length: a Basic
// credential's username and password (not the pair, not its base64), a
// token, a key. Do derives the encoded forms (see forms) so that a response
// echoing them back in any of them can be scrubbed.
type Credential interface {
	Apply(req *http.Request) error
	Secrets() []string
}

// Request is one http.request action.
type Request struct {
	BaseURL    string
	Method     string
	Path       string
	Query      map[string]string
	Headers    map[string]string
	Body       json.RawMessage
	Credential Credential
}

// Outcome classes.
const (
	Succeeded  = "succeeded"
	AuthFailed = "auth_failed"
	Transient  = "transient"
	Failed     = "failed"
)

// Result is what the target answered, classified and scrubbed of the
// credential. Body holds the response, re-encoded compact, when it is JSON
// within MaxBody bytes.
type Result struct {
	Outcome string
	Reason  string
	Status  int
	Headers map[string]string
	Body    json.RawMessage
	// Withheld names the parts of the answer not kept because a form of a
	// credential value was left in them after scrubbing: "body" and
	// "header:<Name>" (a name from keptHeaders).
	Withheld []string
}

// MaxBody caps the response body kept with a run.
const MaxBody = 64 << 10

// keptHeaders are the response headers kept with a run.
var keptHeaders = []string{"Content-Type", "Content-Length", "ETag", "Last-Modified", "Location", "Retry-After", "Request-Id", "X-Request-Id"}

// Networks says which target addresses are allowed besides public ones;
// the rule is netguard's.
type Networks = netguard.Networks

const (
	PublicOnly = netguard.PublicOnly // AWS default
	Loopback   = netguard.Loopback   // make dev: local test servers
	Private    = netguard.Private    // loopback, private and link-local too
)

// ParseNetworks reads the TARGET_NETWORKS setting.
func ParseNetworks(s string) (Networks, error) { return netguard.ParseNetworks(s) }

// DefaultTimeout is how long one action (a step's request, a connection
// test's request) may take, redirects included.
const DefaultTimeout = 10 * time.Second

// Client performs actions.
type Client struct {
	http *http.Client
}

// ErrTargetNotAllowed is returned (wrapped) when the target's address is refused.
var ErrTargetNotAllowed = netguard.ErrNotAllowed

// New returns a Client that refuses addresses outside allowed and gives up
// on a request after timeout.
func New(allowed Networks, timeout time.Duration) *Client {
	dialer := &net.Dialer{
		Timeout: 5 * time.Second,
		// Checked on the address actually dialled, after DNS: a name that
		// resolves to a private address is refused too.
		Control: netguard.Control(allowed),
	}
	transport := &http.Transport{
		DialContext:           dialer.DialContext,
		Proxy:                 nil, // a proxy would dial on our behalf, past the address check
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       30 * time.Second,
	}
	return &Client{http: &http.Client{
		Transport: transport,
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errTooManyRedirects
			}
			if !sameOrigin(req.URL, via[0].URL) {
				return http.ErrUseLastResponse // answer with the redirect; never follow it elsewhere
			}
			return nil
		},
	}}
}

var errTooManyRedirects = errors.New("too many redirects")

func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host)
}

// Target joins base and path: the result is always on base's host.
func Target(base, path string, query map[string]string) (*url.URL, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("httpaction: the connection's base URL is not an http(s) URL")
	}
	joined := u.JoinPath(path)
	if joined.Host != u.Host {
		return nil, fmt.Errorf("httpaction: path leaves the connection's host")
	}
	q := joined.Query()
	for k, v := range query {
		q.Set(k, v)
	}
	joined.RawQuery = q.Encode()
	joined.Fragment = ""
	return joined, nil
}

// Do performs req. A returned error means the action could not be attempted
// (a bad base URL); everything the target did is in the Result.
func (c *Client) Do(ctx context.Context, req Request) (Result, error) {
	sc := newScrubber(req.Credential.Secrets())
	u, err := Target(req.BaseURL, req.Path, req.Query)
	if err != nil {
		return Result{}, sc.err(err)
	}
	var body io.Reader
	if len(req.Body) > 0 {
		body = bytes.NewReader(req.Body)
	}
	hreq, err := http.NewRequestWithContext(ctx, req.Method, u.String(), body)
	if err != nil {
		return Result{}, sc.err(fmt.Errorf("httpaction: build request: %w", err))
	}
	for k, v := range req.Headers {
		hreq.Header.Set(k, v)
	}
	if len(req.Body) > 0 && hreq.Header.Get("Content-Type") == "" {
		hreq.Header.Set("Content-Type", "application/json")
	}
	hreq.Header.Set("User-Agent", "connmgr-http-action/1")
	if err := req.Credential.Apply(hreq); err != nil {
		return Result{}, sc.err(fmt.Errorf("httpaction: apply credential: %w", err))
	}
	resp, err := c.http.Do(hreq)
	if err != nil {
		return classifyError(err), nil
	}
	defer resp.Body.Close()
	res := Result{Status: resp.StatusCode, Headers: map[string]string{}}
	for _, h := range keptHeaders {
		if v := resp.Header.Get(h); v != "" {
			if kept, ok := sc.text(v); ok {
				res.Headers[h] = kept
			} else {
				res.Withheld = append(res.Withheld, "header:"+h)
			}
		}
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err == nil && len(raw) <= MaxBody && json.Valid(raw) && len(bytes.TrimSpace(raw)) > 0 {
		if body, ok := sc.body(raw); !ok {
			res.Withheld = append(res.Withheld, "body")
		} else if len(body) <= MaxBody {
			res.Body = body
		}
	}
	res.Outcome, res.Reason = classifyStatus(resp.StatusCode)
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		res.Reason = "redirect_not_followed"
	}
	return res, nil
}

func classifyStatus(code int) (string, string) {
	reason := "http_" + strconv.Itoa(code)
	switch {
	case code >= 200 && code < 300:
		return Succeeded, ""
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return AuthFailed, "target_rejected_credentials_" + strconv.Itoa(code)
	case code == http.StatusRequestTimeout || code == http.StatusTooEarly || code == http.StatusTooManyRequests || code >= 500:
		return Transient, reason
	}
	return Failed, reason
}

func classifyError(err error) Result {
	switch {
	case errors.Is(err, ErrTargetNotAllowed):
		return Result{Outcome: Failed, Reason: "target_not_allowed"}
	case errors.Is(err, errTooManyRedirects):
		return Result{Outcome: Failed, Reason: "too_many_redirects"}
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return Result{Outcome: Transient, Reason: "timeout"}
	}
	return Result{Outcome: Transient, Reason: "network_error"}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
