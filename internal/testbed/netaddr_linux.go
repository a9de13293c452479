//go:build linux

package testbed

import (
	"net"
	"net/netip"
)

// prefixNet converts an address with its prefix length to the form the
// netlink package takes (the address keeps its host bits).
func prefixNet(p netip.Prefix) *net.IPNet {
	bits := 32
	if p.Addr().Is6() {
		bits = 128
	}
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), bits)}
}

// hostNet is the single-address prefix of a.
func hostNet(a netip.Addr) *net.IPNet {
	return prefixNet(netip.PrefixFrom(a, a.BitLen()))
}
