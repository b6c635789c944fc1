package netguard

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
)

// Networks says which addresses are allowed besides public ones.
type Networks string

const (
	PublicOnly Networks = "public"   // AWS default
	Loopback   Networks = "loopback" // make dev: local test servers
	Private    Networks = "private"  // loopback, private and link-local too
)

// ParseNetworks reads the TARGET_NETWORKS setting.
func ParseNetworks(s string) (Networks, error) {
	switch n := Networks(s); n {
	case PublicOnly, Loopback, Private:
		return n, nil
	}
	return "", fmt.Errorf("netguard: networks must be public, loopback or private, not %q", s)
}

// ErrNotAllowed is returned (wrapped) by Control for a refused address.
var ErrNotAllowed = errors.New("target address not allowed")

// class is what an address range is.
type class int

const (
	public    class = iota
	refused         // never allowed
	loopback        // Loopback or Private
	private         // Private
	mapped          // ::ffff:0:0/96: the IPv4 address itself
	compat          // ::/96: IPv4-compatible, a tunnel
	sixToFour       // 2002::/16
	teredo          // 2001::/32
)

// ranges are the special ranges, the first match wins (::1 before ::/96).
// Anything else is public if it is IPv4 or in 2000::/3.
var ranges = []struct {
	prefix netip.Prefix
	class  class
}{
	{netip.MustParsePrefix("0.0.0.0/8"), refused},
	{netip.MustParsePrefix("10.0.0.0/8"), private},
	{netip.MustParsePrefix("100.64.0.0/10"), refused},
	{netip.MustParsePrefix("127.0.0.0/8"), loopback},
	{netip.MustParsePrefix("169.254.0.0/16"), private},
	{netip.MustParsePrefix("172.16.0.0/12"), private},
	{netip.MustParsePrefix("192.0.0.0/24"), refused},
	{netip.MustParsePrefix("192.0.2.0/24"), refused},
	{netip.MustParsePrefix("192.88.99.0/24"), refused},
	{netip.MustParsePrefix("192.168.0.0/16"), private},
	{netip.MustParsePrefix("198.18.0.0/15"), refused},
	{netip.MustParsePrefix("198.51.100.0/24"), refused},
	{netip.MustParsePrefix("203.0.113.0/24"), refused},
	{netip.MustParsePrefix("224.0.0.0/4"), refused},
	{netip.MustParsePrefix("240.0.0.0/4"), refused},

	{netip.MustParsePrefix("::1/128"), loopback},
	{netip.MustParsePrefix("::ffff:0:0/96"), mapped},
	{netip.MustParsePrefix("::/96"), compat},
	{netip.MustParsePrefix("64:ff9b::/96"), refused},
	{netip.MustParsePrefix("64:ff9b:1::/48"), refused},
	{netip.MustParsePrefix("100::/64"), refused},
	{netip.MustParsePrefix("2001::/32"), teredo},
	{netip.MustParsePrefix("2001:2::/48"), refused},
	{netip.MustParsePrefix("2001:db8::/32"), refused},
	{netip.MustParsePrefix("2002::/16"), sixToFour},
	{netip.MustParsePrefix("3fff::/20"), refused},
	{netip.MustParsePrefix("fc00::/7"), private},
	{netip.MustParsePrefix("fe80::/10"), private},
	{netip.MustParsePrefix("fec0::/10"), refused},
	{netip.MustParsePrefix("ff00::/8"), refused},
}

var globalUnicast = netip.MustParsePrefix("2000::/3")

// Allowed reports whether addr may be connected to under n. An invalid
// address is refused; a zone is ignored; an unknown n is PublicOnly.
func Allowed(addr netip.Addr, n Networks) bool {
	if !addr.IsValid() {
		return false
	}
	addr = addr.WithZone("")
	c := public
	for _, r := range ranges {
		if r.prefix.Contains(addr) {
			c = r.class
			break
		}
	}
	if c == public && addr.Is6() && !globalUnicast.Contains(addr) {
		c = refused
	}
	b := addr.As16()
	switch c {
	case public:
		return true
	case loopback:
		return n == Loopback || n == Private
	case private:
		return n == Private
	case mapped:
		return Allowed(addr.Unmap(), n)
	case compat:
		return isPublic4(b[12:16])
	case sixToFour:
		return isPublic4(b[2:6])
	case teredo:
		client := [4]byte{^b[12], ^b[13], ^b[14], ^b[15]}
		return isPublic4(b[4:8]) && isPublic4(client[:])
	}
	return false
}

// isPublic4 reports whether the IPv4 address in b is allowed with no
// other networks.
func isPublic4(b []byte) bool {
	return Allowed(netip.AddrFrom4([4]byte(b)), PublicOnly)
}

// Control returns a net.Dialer Control function refusing, with an error
// wrapping ErrNotAllowed, any address Allowed refuses under n. It sees the
// address actually dialled, after DNS resolution.
func Control(n Networks) func(network, address string, c syscall.RawConn) error {
	return func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: cannot read dialled address %q", ErrNotAllowed, address)
		}
		if !Allowed(ap.Addr(), n) {
			return fmt.Errorf("%w: %s", ErrNotAllowed, ap.Addr())
		}
		return nil
	}
}
