// Package netguard is the one rule for which IP addresses the connection
// manager may connect to on a tenant's behalf: targets of the http.request
// action and connection tests (shared/httpaction) and OAuth token endpoints
// (shared/oauth). Tenants choose the hosts; without this rule a connection
// would turn a Lambda function into a proxy to the instance metadata
// service, the VPC or the function's own loopback.
//
// It provides:
//
//   - Networks: which addresses a deployment allows besides public ones
//     (PublicOnly in AWS, Loopback or Private for `make dev` and tests),
//     and ParseNetworks for the TARGET_NETWORKS setting.
//   - Allowed(addr, networks): the decision for one address.
//   - Control(networks): a net.Dialer Control function that applies
//     Allowed to the address actually dialled, after DNS resolution, so a
//     name that resolves (or re-resolves) to a refused address is refused.
//
// # The rule
//
// Refused whatever the networks:
//
//   - unspecified and "this network": 0.0.0.0/8 (0.0.0.0 reaches the local
//     host), ::
//   - multicast 224.0.0.0/4, ff00::/8; reserved 240.0.0.0/4, which holds
//     the broadcast address 255.255.255.255
//   - shared address space (carrier-grade NAT) 100.64.0.0/10
//   - IETF protocol assignments 192.0.0.0/24, the deprecated 6to4 relay
//     anycast 192.88.99.0/24
//   - benchmarking 198.18.0.0/15, 2001:2::/48
//   - documentation 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
//     2001:db8::/32, 3fff::/20
//   - NAT64 64:ff9b::/96 and 64:ff9b:1::/48, always: the translator would
//     dial an IPv4 address on our behalf, past this check
//   - discard-only 100::/64, deprecated site-local fec0::/10, and every
//     other IPv6 address outside global unicast 2000::/3 (all of it is
//     reserved or unassigned)
//
// Allowed only with Loopback or Private: 127.0.0.0/8 and ::1.
//
// Allowed only with Private: RFC 1918 (10/8, 172.16/12, 192.168/16),
// unique local fc00::/7 and link-local 169.254.0.0/16 and fe80::/10
// (which hold the instance metadata service).
//
// Addresses that carry an IPv4 address:
//
//   - IPv4-mapped ::ffff:0:0/96 is that IPv4 address (a dual-stack socket
//     dials it as such) and is judged as it.
//   - 6to4 2002::/16 (IPv4 in bits 16-48), Teredo 2001::/32 (server IPv4
//     in bits 32-64, client IPv4 in the last 32 bits inverted) and the
//     deprecated IPv4-compatible ::/96 are tunnels: allowed only when every
//     IPv4 address they carry is public, whatever the networks. A tunnel
//     to a loopback or private address is never the way a test server is
//     reached.
//
// Everything else is public and allowed.
//
// # What it must never do
//
// Allow an address because of its name, or check anything but the address
// dialled: a check before DNS resolution, or of a proxy's address, is no
// check. Widen a mode silently: a new range is added to the table in
// netguard.go and to the table test, edges included.
package netguard
