package daemon

import (
	"net/netip"
	"testing"

	"github.com/google/nftables"

	"github.com/mwan3d/mwan3d/internal/testbed"
)

// TestNftSetLookup reads sets that nft created in a namespace: an interval
// set with prefixes, a range and a single address, a plain set, and an
// IPv6 one.
func TestNftSetLookup(t *testing.T) {
	ns := testbed.NewNS(t, "setlookup")
	for _, c := range []string{
		"add table inet mwan3",
		"add set inet mwan3 ranges { type ipv4_addr; flags interval; auto-merge; }",
		"add element inet mwan3 ranges { 10.0.0.0/8, 192.0.2.5, 198.51.100.10-198.51.100.20 }",
		"add set inet mwan3 plain { type ipv4_addr; }",
		"add element inet mwan3 plain { 192.0.2.1, 192.0.2.3 }",
		"add set inet mwan3 six { type ipv6_addr; flags interval; }",
		"add element inet mwan3 six { 2001:db8:1::/48 }",
	} {
		nsRun(t, ns, "nft "+c)
	}
	lookup := nftSetLookup(nftables.WithNetNSFd(ns.NetNSFd()))
	tests := []struct {
		set, addr string
		want      bool
	}{
		{"ranges", "10.20.30.40", true},
		{"ranges", "11.0.0.0", false},
		{"ranges", "192.0.2.5", true},
		{"ranges", "192.0.2.4", false},
		{"ranges", "198.51.100.15", true},
		{"ranges", "198.51.100.21", false},
		{"ranges", "2001:db8:1::1", false},
		{"plain", "192.0.2.3", true},
		{"plain", "192.0.2.2", false},
		{"six", "2001:db8:1:ffff::1", true},
		{"six", "2001:db8:2::1", false},
		{"six", "10.0.0.1", false},
	}
	for _, tt := range tests {
		got, err := lookup(tt.set, netip.MustParseAddr(tt.addr))
		if err != nil || got != tt.want {
			t.Errorf("%s has %s: %v %v, want %v", tt.set, tt.addr, got, err, tt.want)
		}
	}
	if _, err := lookup("missing", netip.MustParseAddr("10.0.0.1")); err == nil {
		t.Error("a missing set was read")
	}
}
