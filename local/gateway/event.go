package gateway

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

var errTooLarge = errors.New("request body exceeds API Gateway's 10 MB limit")

type eventInput struct {
	routeKey  string
	params    map[string]string
	now       time.Time
	requestID string
	accountID string
	apiID     string
	jwt       *events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription
}

// buildEvent is what API Gateway HTTP API hands a Lambda for r (payload
// format 2.0):
//   - rawPath and requestContext.http.path are the percent-decoded path (HTTP
//     APIs decode it; path parameters are decoded too), rawQueryString stays
//     encoded;
//   - header names are lower-cased and repeated headers joined with ",";
//     Cookie headers move to cookies, one entry per cookie;
//   - repeated query parameters are joined with ",";
//   - a body whose content type is not text-like arrives base64-encoded.
func buildEvent(r *http.Request, in eventInput) (events.APIGatewayV2HTTPRequest, error) {
	var ev events.APIGatewayV2HTTPRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return ev, fmt.Errorf("read body: %w", err)
	}
	if len(body) > MaxBodyBytes {
		return ev, errTooLarge
	}
	ev = events.APIGatewayV2HTTPRequest{
		Version:        "2.0",
		RouteKey:       in.routeKey,
		RawPath:        r.URL.Path,
		RawQueryString: r.URL.RawQuery,
		Headers:        map[string]string{},
	}
	for name, values := range r.Header {
		name = strings.ToLower(name)
		if name == "cookie" {
			ev.Cookies = append(ev.Cookies, cookies(values)...)
			continue
		}
		ev.Headers[name] = strings.Join(values, ",")
	}
	host, port := splitHost(r.Host)
	ev.Headers["host"] = r.Host
	sourceIP, _ := splitHost(r.RemoteAddr)
	if prev := ev.Headers["x-forwarded-for"]; prev != "" {
		ev.Headers["x-forwarded-for"] = prev + ", " + sourceIP
	} else {
		ev.Headers["x-forwarded-for"] = sourceIP
	}
	ev.Headers["x-forwarded-proto"] = "http"
	if port != "" {
		ev.Headers["x-forwarded-port"] = port
	}
	if r.ContentLength >= 0 && len(body) > 0 {
		ev.Headers["content-length"] = fmt.Sprint(len(body))
	}
	if r.URL.RawQuery != "" {
		q, _ := url.ParseQuery(r.URL.RawQuery) // like API Gateway, keep what parses
		if len(q) > 0 {
			ev.QueryStringParameters = make(map[string]string, len(q))
			for k, v := range q {
				ev.QueryStringParameters[k] = strings.Join(v, ",")
			}
		}
	}
	if len(in.params) > 0 {
		ev.PathParameters = in.params
	}
	if len(body) > 0 {
		if textual(r.Header.Get("Content-Type")) {
			ev.Body = string(body)
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
	}
	prefix, _, _ := strings.Cut(host, ".")
	ev.RequestContext = events.APIGatewayV2HTTPRequestContext{
		RouteKey:     in.routeKey,
		AccountID:    in.accountID,
		Stage:        "$default",
		RequestID:    in.requestID,
		APIID:        in.apiID,
		DomainName:   host,
		DomainPrefix: prefix,
		Time:         in.now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
		TimeEpoch:    in.now.UnixMilli(),
		HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
			Method: r.Method, Path: r.URL.Path, Protocol: r.Proto, SourceIP: sourceIP, UserAgent: r.UserAgent(),
		},
	}
	if in.jwt != nil {
		ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{JWT: in.jwt}
	}
	return ev, nil
}

// cookies splits Cookie header values into single "name=value" entries.
func cookies(values []string) []string {
	var out []string
	for _, v := range values {
		for _, c := range strings.Split(v, ";") {
			if c = strings.TrimSpace(c); c != "" {
				out = append(out, c)
			}
		}
	}
	return out
}

func splitHost(hostport string) (host, port string) {
	h, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport, ""
	}
	return h, p
}

// textual reports whether API Gateway passes a body of this content type as
// text; everything else (including no content type) is base64-encoded.
func textual(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	if strings.HasPrefix(mt, "text/") {
		return true
	}
	switch mt {
	case "application/json", "application/xml", "application/javascript", "application/ecmascript":
		return true
	}
	return strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "+xml")
}
