package netguard

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

// Which modes allow an address: PublicOnly, Loopback, Private.
var (
	all   = [3]bool{true, true, true}
	never = [3]bool{false, false, false}
	loop  = [3]bool{false, true, true}
	priv  = [3]bool{false, false, true}
)

var modes = [3]Networks{PublicOnly, Loopback, Private}

// TestAllowed covers every range of the rule: its first and last address
// and, where the neighbour is decided otherwise, the addresses just outside.
func TestAllowed(t *testing.T) {
	tests := []struct {
		addr string
		want [3]bool
	}{
		// public
		{"1.1.1.1", all}, {"8.8.8.8", all}, {"2606:4700::1111", all},

		// 0.0.0.0/8 "this network"
		{"0.0.0.0", never}, {"0.255.255.255", never}, {"1.0.0.0", all},
		// 10.0.0.0/8
		{"9.255.255.255", all}, {"10.0.0.0", priv}, {"10.255.255.255", priv}, {"11.0.0.0", all},
		// 100.64.0.0/10 shared address space
		{"100.63.255.255", all}, {"100.64.0.0", never}, {"100.100.100.200", never}, {"100.127.255.255", never}, {"100.128.0.0", all},
		// 127.0.0.0/8 loopback
		{"126.255.255.255", all}, {"127.0.0.0", loop}, {"127.0.0.1", loop}, {"127.255.255.255", loop}, {"128.0.0.0", all},
		// 169.254.0.0/16 link-local
		{"169.253.255.255", all}, {"169.254.0.0", priv}, {"169.254.169.254", priv}, {"169.254.255.255", priv}, {"169.255.0.0", all},
		// 172.16.0.0/12
		{"172.15.255.255", all}, {"172.16.0.0", priv}, {"172.31.255.255", priv}, {"172.32.0.0", all},
		// 192.0.0.0/24 IETF protocol assignments
		{"191.255.255.255", all}, {"192.0.0.0", never}, {"192.0.0.255", never}, {"192.0.1.0", all},
		// 192.0.2.0/24 documentation
		{"192.0.1.255", all}, {"192.0.2.0", never}, {"192.0.2.255", never}, {"192.0.3.0", all},
		// 192.88.99.0/24 6to4 relay anycast
		{"192.88.98.255", all}, {"192.88.99.0", never}, {"192.88.99.255", never}, {"192.88.100.0", all},
		// 192.168.0.0/16
		{"192.167.255.255", all}, {"192.168.0.0", priv}, {"192.168.255.255", priv}, {"192.169.0.0", all},
		// 198.18.0.0/15 benchmarking
		{"198.17.255.255", all}, {"198.18.0.0", never}, {"198.19.255.255", never}, {"198.20.0.0", all},
		// 198.51.100.0/24 documentation
		{"198.51.99.255", all}, {"198.51.100.0", never}, {"198.51.100.255", never}, {"198.51.101.0", all},
		// 203.0.113.0/24 documentation
		{"203.0.112.255", all}, {"203.0.113.0", never}, {"203.0.113.255", never}, {"203.0.114.0", all},
		// 224.0.0.0/4 multicast
		{"223.255.255.255", all}, {"224.0.0.0", never}, {"224.0.0.251", never}, {"239.255.255.255", never},
		// 240.0.0.0/4 reserved, broadcast
		{"240.0.0.0", never}, {"255.255.255.254", never}, {"255.255.255.255", never},

		// ::1 loopback, :: unspecified
		{"::", never}, {"::1", loop},
		// ::/96 IPv4-compatible: a tunnel, allowed only to a public IPv4
		{"::2", never}, {"::0.255.255.255", never}, {"::1.0.0.0", all}, {"::8.8.8.8", all},
		{"::127.0.0.1", never}, {"::10.0.0.1", never}, {"::169.254.169.254", never}, {"::255.255.255.255", never},
		{"::1:0:0", never}, // just after ::/96: outside 2000::/3
		// ::ffff:0:0/96 IPv4-mapped: the IPv4 address itself
		{"::fffe:ffff:ffff", never}, {"::ffff:0.0.0.0", never}, {"::ffff:8.8.8.8", all},
		{"::ffff:127.0.0.1", loop}, {"::ffff:10.0.0.1", priv}, {"::ffff:169.254.169.254", priv},
		{"::ffff:100.64.0.1", never}, {"::ffff:198.18.0.1", never}, {"::ffff:255.255.255.255", never},
		{"::1:0:0:0", never}, // just after: outside 2000::/3
		// 64:ff9b::/96 and 64:ff9b:1::/48 NAT64, whatever they embed
		{"64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff", never}, {"64:ff9b::", never}, {"64:ff9b::8.8.8.8", never},
		{"64:ff9b::127.0.0.1", never}, {"64:ff9b::ffff:ffff", never}, {"64:ff9b::1:0:0", never},
		{"64:ff9b:1::", never}, {"64:ff9b:1::808:808", never}, {"64:ff9b:1:ffff:ffff:ffff:ffff:ffff", never}, {"64:ff9b:2::", never},
		// 100::/64 discard-only
		{"100::", never}, {"100::ffff:ffff:ffff:ffff", never},
		// 2000::/3 global unicast: everything outside is refused
		{"1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", never}, {"2000::", all}, {"3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", all}, {"4000::", never},
		// 2001::/32 Teredo: server IPv4 in bits 32-64, client IPv4 inverted in the last 32
		{"2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff", all},
		{"2001::", never},                    // server 0.0.0.0, client 255.255.255.255
		{"2001:0:808:808::fefd:fcfb", all},   // server 8.8.8.8, client 1.2.3.4
		{"2001:0:808:808::102:304", never},   // client 254.253.252.251 (the bits are inverted)
		{"2001:0:808:808::80ff:fffe", never}, // client 127.0.0.1
		{"2001:0:808:808::f5ff:fffe", never}, // client 10.0.0.1
		{"2001:0:808:808::5601:5601", never}, // client 169.254.169.254
		{"2001:0:a00:1::fefd:fcfb", never},   // server 10.0.0.1
		{"2001:0:ffff:ffff:ffff:ffff:ffff:ffff", never},
		{"2001:1::", all},
		// 2001:2::/48 benchmarking
		{"2001:1:ffff:ffff:ffff:ffff:ffff:ffff", all}, {"2001:2::", never}, {"2001:2:0:ffff:ffff:ffff:ffff:ffff", never}, {"2001:2:1::", all},
		// 2001:db8::/32 documentation
		{"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", all}, {"2001:db8::", never}, {"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", never}, {"2001:db9::", all},
		// 2002::/16 6to4: IPv4 in bits 16-48
		{"2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", all},
		{"2002::", never},           // 0.0.0.0
		{"2002:808:808::1", all},    // 8.8.8.8
		{"2002:7f00:1::", never},    // 127.0.0.1
		{"2002:a00:1::", never},     // 10.0.0.1
		{"2002:a9fe:a9fe::", never}, // 169.254.169.254
		{"2002:6440:1::", never},    // 100.64.0.1
		{"2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", never},
		{"2003::", all},
		// 3fff::/20 documentation
		{"3fff::", never}, {"3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", never}, {"3fff:1000::", all},
		// fc00::/7 unique local
		{"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", never}, {"fc00::", priv}, {"fd12:3456::1", priv}, {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", priv}, {"fe00::", never},
		// fe80::/10 link-local
		{"fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", never}, {"fe80::", priv}, {"fe80::1%eth0", priv}, {"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", priv},
		// fec0::/10 site-local
		{"fec0::", never}, {"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", never},
		// ff00::/8 multicast
		{"ff00::", never}, {"ff02::1", never}, {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", never},
	}
	for _, tt := range tests {
		addr := netip.MustParseAddr(tt.addr)
		for i, n := range modes {
			if got := Allowed(addr, n); got != tt.want[i] {
				t.Errorf("Allowed(%s, %s) = %v, want %v", tt.addr, n, got, tt.want[i])
			}
		}
		if got := Allowed(addr, ""); got != tt.want[0] {
			t.Errorf("Allowed(%s, unset) = %v, want %v (as public)", tt.addr, got, tt.want[0])
		}
	}
	for _, n := range modes {
		if Allowed(netip.Addr{}, n) {
			t.Errorf("the invalid address is allowed in %s", n)
		}
	}
}

func TestParseNetworks(t *testing.T) {
	for _, s := range []string{"public", "loopback", "private"} {
		if n, err := ParseNetworks(s); err != nil || string(n) != s {
			t.Errorf("ParseNetworks(%q) = %q, %v", s, n, err)
		}
	}
	for _, s := range []string{"", "Public", "all", "any"} {
		if _, err := ParseNetworks(s); err == nil {
			t.Errorf("ParseNetworks(%q) accepted", s)
		}
	}
}

// TestControlRefusesDial dials a real loopback listener: refused (and never
// connected) with public networks only, also by name; reached with Loopback.
func TestControlRefusesDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())

	for _, addr := range []string{ln.Addr().String(), net.JoinHostPort("localhost", port)} {
		d := net.Dialer{Timeout: time.Second, Control: Control(PublicOnly)}
		c, err := d.Dial("tcp", addr)
		if err == nil {
			c.Close()
			t.Fatalf("dial %s with public networks only: connected", addr)
		}
		if !errors.Is(err, ErrNotAllowed) {
			t.Errorf("dial %s: %v, want ErrNotAllowed", addr, err)
		}
	}
	select {
	case <-accepted:
		t.Fatal("a refused dial reached the listener")
	case <-time.After(50 * time.Millisecond):
	}

	d := net.Dialer{Timeout: time.Second, Control: Control(Loopback)}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial with loopback allowed: %v", err)
	}
	c.Close()
	select {
	case <-accepted:
	case <-time.After(time.Second):
		t.Fatal("the allowed dial did not reach the listener")
	}
}
