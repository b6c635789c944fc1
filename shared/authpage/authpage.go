// Package authpage serves the public OAuth 2 callback route: it hands the
// provider's answer to the resolve function (which alone may decrypt the
// PKCE verifier and client secret) and answers the person's browser with a
// small page saying what happened.
//
// The page never echoes a query value: provider error descriptions and
// codes are attacker-controlled text.
package authpage

import (
	"context"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"strings"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/httpapi"
	"github.com/connmgr/connmgr/shared/resolver/resolveapi"
)

// Completer completes authorizations (resolveclient.Client).
type Completer interface {
	CompleteAuthorization(ctx context.Context, in resolveapi.CallbackInput) (*resolveapi.Completion, error)
}

// Page serves GET /oauth/callback.
type Page struct {
	resolve Completer
	log     *slog.Logger
}

// New returns the callback page.
func New(c Completer, log *slog.Logger) *Page { return &Page{resolve: c, log: log} }

// Routes registers the public callback route.
func (p *Page) Routes(rt *httpapi.Router) {
	rt.HandlePublic("GET /oauth/callback", p.handle)
}

// page is the callback page. html/template would do, but its reflection
// keeps every method of every linked type in the binary; four escaped
// strings do not need it.
const page = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>%[1]s</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}.ok{color:#0a6d2c}.bad{color:#a4161a}code{background:#f3f3f3;padding:0 .2rem}</style></head>
<body><h1 class="%[2]s">%[1]s</h1><p>%[3]s</p>%[4]s
<p>You can close this window and return to the Connections page.</p></body></html>
`

type view struct {
	Title, Message, Code, Class string
}

func (p *Page) handle(ctx context.Context, r *httpapi.Request) (httpapi.Response, error) {
	in := resolveapi.CallbackInput{
		State: r.Query("state"), Code: r.Query("code"), Error: r.Query("error"),
		RedirectURI: arrivedAt(r),
	}
	done, err := p.resolve.CompleteAuthorization(ctx, in)
	if err != nil {
		e := apperr.As(err)
		p.log.ErrorContext(ctx, "authorization could not be completed", slog.String("error", err.Error()))
		return render(e.Kind.Status(), view{Title: "Something went wrong", Class: "bad",
			Message: "The connection could not be authorized right now. Try again in a few minutes.", Code: e.Code}), nil
	}
	if !done.OK || done.Connection == nil {
		v := view{Title: "The connection was not authorized", Class: "bad", Message: "The authorization could not be completed."}
		status := http.StatusBadRequest
		if done.Error != nil {
			v.Message, v.Code = done.Error.Message, done.Error.Code
			if done.Error.Status >= 400 {
				status = done.Error.Status
			}
		}
		return render(status, v), nil
	}
	c := done.Connection
	p.log.InfoContext(ctx, "connection authorized", slog.String("tenant", c.Tenant), slog.String("connection", c.ID), slog.String("user", c.User))
	return render(http.StatusOK, view{Title: "Connection authorized", Class: "ok",
		Message: "“" + c.Name + "” is connected and ready for your workflows."}), nil
}

// arrivedAt is the URL this request was sent to, without its query: the
// resolver checks it equals the registered redirect URI exactly.
func arrivedAt(r *httpapi.Request) string {
	proto := r.Header("x-forwarded-proto")
	if proto == "" {
		proto = "https"
	}
	host := r.Header("host")
	if host == "" {
		host = r.RequestContext.DomainName
	}
	return strings.ToLower(proto) + "://" + host + r.RawPath
}

func render(status int, v view) httpapi.Response {
	code := ""
	if v.Code != "" {
		code = "<p>Code: <code>" + html.EscapeString(v.Code) + "</code></p>"
	}
	body := fmt.Sprintf(page, html.EscapeString(v.Title), html.EscapeString(v.Class), html.EscapeString(v.Message), code)
	return httpapi.Response{Status: status, HTML: body, Headers: map[string]string{"Referrer-Policy": "no-referrer"}}
}
