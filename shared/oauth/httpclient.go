package oauth

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/connmgr/connmgr/shared/netguard"
)

// HTTPOptions shape the client that talks to token endpoints.
type HTTPOptions struct {
	// Timeout of one request; default DefaultHTTPTimeout.
	Timeout time.Duration
	// AllowPrivateNetworks lets the client reach loopback, private and
	// link-local addresses (netguard.Private): only for the local provider
	// of `make dev` and tests. In AWS a registration must not turn the
	// Lambda into a proxy to internal addresses.
	AllowPrivateNetworks bool
}

// ErrRedirect: token endpoints must answer, not redirect (a 307 would
// resend the client secret to wherever it points).
var ErrRedirect = errors.New("oauth: the token endpoint redirected; redirects are not followed")

// NewHTTPClient returns the client for token endpoints: a timeout, no
// redirects, and no connections to addresses netguard refuses (public only,
// or netguard.Private with AllowPrivateNetworks), checked on the address
// actually dialled, after DNS resolution.
func NewHTTPClient(o HTTPOptions) *http.Client {
	if o.Timeout <= 0 {
		o.Timeout = DefaultHTTPTimeout
	}
	networks, refused := netguard.PublicOnly, "oauth: token endpoint address is not public: %w"
	if o.AllowPrivateNetworks {
		networks, refused = netguard.Private, "oauth: token endpoint address is not allowed, even with private networks: %w"
	}
	check := netguard.Control(networks)
	dialer := &net.Dialer{Timeout: o.Timeout, Control: func(network, address string, c syscall.RawConn) error {
		if err := check(network, address, c); err != nil {
			return fmt.Errorf(refused, err)
		}
		return nil
	}}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = dialer.DialContext
	tr.Proxy = nil
	return &http.Client{
		Timeout:       o.Timeout,
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return ErrRedirect },
	}
}
