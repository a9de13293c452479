//go:build linux

package testbed

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// AddInternetAddrs puts more addresses on the internet host's loopback, next
// to the targets: every ISP routes them to the internet host, which answers
// pings to them (and TCP or UDP where something listens), so a
// configuration's real-world track_ip targets (1.1.1.1, 2606:4700:4700::1111,
// …) work inside the testbed unchanged. The addresses must be unicast, of
// the testbed's families, outside its LAN, WAN links and ISP uplinks, and
// new; MaxInternetAddrs bounds the loopback's addresses in all. SetLatency
// does not delay pings to them (it covers the plan's public networks
// only). They go with the testbed.
func (tb *Testbed) AddInternetAddrs(addrs ...netip.Addr) error {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	add, err := checkInternetAddrs(tb.Spec.Family, append(tb.publicAddrs(), tb.extra...), addrs)
	if err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	h := tb.Internet.Handle()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("testbed: lo in %s: %w", tb.Internet.Name, err)
	}
	for _, a := range add {
		if err := h.AddrAdd(lo, &netlink.Addr{IPNet: hostNet(a), Flags: unix.IFA_F_NODAD}); err != nil {
			return fmt.Errorf("testbed: address %s on lo in %s: %w", a, tb.Internet.Name, err)
		}
		tb.extra = append(tb.extra, a)
	}
	return nil
}
