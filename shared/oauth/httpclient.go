package oauth

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// HTTPOptions shape the client that talks to token endpoints.
type HTTPOptions struct {
	// Timeout of one request; default DefaultHTTPTimeout.
	Timeout time.Duration
	// AllowPrivateNetworks lets the client reach loopback, private and
	// link-local addresses: only for the local provider of `make dev` and
	// tests. In AWS a registration must not turn the Lambda into a proxy
	// to internal addresses.
	AllowPrivateNetworks bool
}

// ErrRedirect: token endpoints must answer, not redirect (a 307 would
// resend the client secret to wherever it points).
var ErrRedirect = errors.New("oauth: the token endpoint redirected; redirects are not followed")

// NewHTTPClient returns the client for token endpoints: a timeout, no
// redirects, and (unless allowed) no connections to non-public addresses,
// checked on the address actually dialled, after DNS resolution.
func NewHTTPClient(o HTTPOptions) *http.Client {
	if o.Timeout <= 0 {
		o.Timeout = DefaultHTTPTimeout
	}
	dialer := &net.Dialer{Timeout: o.Timeout}
	if !o.AllowPrivateNetworks {
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("oauth: cannot check address %q: %w", address, err)
			}
			if a := ap.Addr().Unmap(); !a.IsGlobalUnicast() || a.IsPrivate() {
				return fmt.Errorf("oauth: token endpoint address %s is not public", a)
			}
			return nil
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = dialer.DialContext
	tr.Proxy = nil
	return &http.Client{
		Timeout:       o.Timeout,
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return ErrRedirect },
	}
}
