package daemon

import (
	"fmt"
	"net/netip"

	"github.com/mwan3d/mwan3d/config"
	"github.com/mwan3d/mwan3d/ubus"
)

// NetifdInterface is the part of netifd's interface status (`ubus call
// network.interface.<name> status`, or one entry of `network.interface
// dump`) that mwan3 reads.
type NetifdInterface struct {
	Interface  string             `ubus:"interface"` // only in dump entries
	Up         bool               `ubus:"up"`
	Pending    bool               `ubus:"pending"`
	Available  bool               `ubus:"available"`
	Uptime     int64              `ubus:"uptime"`    // present only when up
	L3Device   string             `ubus:"l3_device"` // present only when up
	Device     string             `ubus:"device"`
	Proto      string             `ubus:"proto"`
	Metric     int64              `ubus:"metric"`
	IPv4       []NetifdAddress    `ubus:"ipv4-address"`
	IPv6       []NetifdAddress    `ubus:"ipv6-address"`
	IPv6Prefix []NetifdAddress    `ubus:"ipv6-prefix"`
	IPv6Assign []NetifdAssignment `ubus:"ipv6-prefix-assignment"`
	Routes     []NetifdRoute      `ubus:"route"`
}

// NetifdAddress is an address (or prefix) with its length.
type NetifdAddress struct {
	Address string `ubus:"address"`
	Mask    int    `ubus:"mask"`
}

// NetifdAssignment is a delegated prefix assigned to this interface.
type NetifdAssignment struct {
	Address      string        `ubus:"address"`
	Mask         int           `ubus:"mask"`
	LocalAddress NetifdAddress `ubus:"local-address"`
}

// NetifdRoute is a route netifd installed for the interface.
type NetifdRoute struct {
	Target  string `ubus:"target"`
	Mask    int    `ubus:"mask"`
	Nexthop string `ubus:"nexthop"`
	Source  string `ubus:"source"`
	Table   any    `ubus:"table"` // a number or a name; nil for main
	Metric  int64  `ubus:"metric"`
}

// ParseNetifdStatus decodes one status reply.
func ParseNetifdStatus(t ubus.Table) (NetifdInterface, error) {
	var n NetifdInterface
	if err := t.Decode(&n); err != nil {
		return n, fmt.Errorf("netifd status: %w", err)
	}
	return n, nil
}

// ParseNetifdDump decodes `network.interface dump`: {"interface": [...]}.
func ParseNetifdDump(t ubus.Table) ([]NetifdInterface, error) {
	var d struct {
		Interface []NetifdInterface `ubus:"interface"`
	}
	if err := t.Decode(&d); err != nil {
		return nil, fmt.Errorf("netifd dump: %w", err)
	}
	return d.Interface, nil
}

// Gateway returns the next hop of the interface's default route of family
// fam in the main table (LuCI's rule: target 0.0.0.0 or ::, mask 0, no
// table); invalid when it has none (point-to-point links).
func (n NetifdInterface) Gateway(fam config.Family) netip.Addr {
	for _, r := range n.Routes {
		if r.Mask != 0 || r.Table != nil {
			continue
		}
		t, err := netip.ParseAddr(r.Target)
		if err != nil || !t.IsUnspecified() || (t.Is4() != (fam == config.IPv4)) {
			continue
		}
		if gw, err := netip.ParseAddr(r.Nexthop); err == nil && !gw.IsUnspecified() {
			return gw
		}
	}
	return netip.Addr{}
}

// Source returns the probe source address netifd knows for the family
// (spec §5.3.3): the first address of the interface, for IPv6 else the
// local address of its first prefix assignment. Invalid when netifd knows
// none; the caller then falls back to the device's addresses.
func (n NetifdInterface) Source(fam config.Family) netip.Addr {
	list := n.IPv4
	if fam == config.IPv6 {
		list = n.IPv6
	}
	for _, a := range list {
		if ip, err := netip.ParseAddr(a.Address); err == nil {
			return ip
		}
	}
	if fam == config.IPv6 {
		for _, pa := range n.IPv6Assign {
			if ip, err := netip.ParseAddr(pa.LocalAddress.Address); err == nil {
				return ip
			}
		}
	}
	return netip.Addr{}
}

// Prefixes returns the interface's own networks of the family (its
// addresses with their masks, masked), which netifd routes on-link.
func (n NetifdInterface) Prefixes(fam config.Family) []netip.Prefix {
	list := n.IPv4
	if fam == config.IPv6 {
		list = n.IPv6
	}
	var out []netip.Prefix
	for _, a := range list {
		ip, err := netip.ParseAddr(a.Address)
		if err != nil {
			continue
		}
		if p, err := ip.Prefix(a.Mask); err == nil {
			out = append(out, p)
		}
	}
	return out
}
