package nft

import (
	"net/netip"
	"time"
)

// Input is everything Render needs: the configuration, already validated
// and normalised by the daemon, and the current state of the interfaces.
type Input struct {
	// Mask is the mmx_mask. It needs at least MinMaskBits bits.
	Mask Mask
	// Logging is the global logging switch; a rule logs only when both it
	// and the rule's Logging are set.
	Logging bool
	// LogLevel is the global loglevel in legacy spelling (emerg alert crit
	// error warning notice info debug); empty means notice.
	LogLevel string
	// NoIPv6 renders IPv4 only, for kernels without IPv6.
	NoIPv6 bool

	// Interfaces lists every interface section in config order, including
	// disabled ones (they keep their id).
	Interfaces []Interface
	// Policies lists the usable policies.
	Policies []Policy
	// Rules lists the usable rules in config order (first match wins).
	Rules []UserRule
	// Ipsets gives the address family of named sets that rules match
	// with their ipset option. A set not listed here is IPv4 (the default
	// family of legacy ipsets).
	Ipsets []Ipset

	// Connected are the networks of the connected bypass sets (both
	// families mixed; route monitor, spec §4R.4).
	Connected []netip.Prefix
	// Custom are the networks of the custom bypass sets (routes of the
	// rt_table_lookup tables).
	Custom []netip.Prefix

	// Uses pins locally generated traffic of cgroups to interfaces (a hook
	// for `mwan3 use`), masqueraded when its source address belongs to
	// another interface.
	Uses []Use
}

// Interface is one interface section with its current state.
type Interface struct {
	Name    string
	ID      int    // 1-based position among all interface sections
	Family  Family // IPv4 or IPv6
	Enabled bool
	// Online is mwan3's hotplug state: the interface takes part in
	// policies. Only enabled interfaces can be online.
	Online bool
	// Device is the L3 device while netifd reports the interface up, or
	// empty. An enabled interface with a device pins connections that
	// arrive on it.
	Device string
}

// Policy is one policy section.
type Policy struct {
	Name string
	// LastResort is "unreachable" (also for empty or unknown values),
	// "blackhole" or "default".
	LastResort string
	// Members in use_member order.
	Members []Member
}

// Member is one member of a policy.
type Member struct {
	Name      string
	Interface string
	Metric    int // lower is preferred; members above 256 are ignored
	Weight    int // share among the online members of the best metric; at least 1
}

// UserRule is one rule section of the configuration.
type UserRule struct {
	Name   string
	Family Family // FamilyAny, IPv4 or IPv6
	// Proto is a protocol name or number; "all" or empty matches any.
	Proto string
	// SrcIP and SrcMasked (DestIP and DestMasked) are the alternatives
	// the source (destination) address must match one of: prefixes, and
	// addresses under non-contiguous masks. Both empty match any address.
	SrcIP      []netip.Prefix
	SrcMasked  []MaskedAddr
	DestIP     []netip.Prefix
	DestMasked []MaskedAddr
	SrcPort    []PortRange // only honoured for tcp and udp
	DestPort   []PortRange
	// SrcIface is the netifd interface packets must arrive on, SrcDevice
	// its current L3 device. A rule with a SrcIface but no SrcDevice is
	// skipped until the interface comes up.
	SrcIface  string
	SrcDevice string
	// Ipset names a set in the mwan3 table that the destination must be
	// in (created when missing, never emptied by re-applies).
	Ipset   string
	Sticky  bool
	Timeout time.Duration // sticky entry lifetime; 0 means 600 s
	Logging bool
	// UsePolicy is a policy name, or "default", "unreachable" or
	// "blackhole".
	UsePolicy string
}

// SrcMatches reports whether the source address a passes the rule's
// src_ip options (SrcIP and SrcMasked), as the rendered rule tests it.
func (r *UserRule) SrcMatches(a netip.Addr) bool { return admits(r.SrcIP, r.SrcMasked, a) }

// DestMatches reports whether the destination address a passes the rule's
// dest_ip options (DestIP and DestMasked), as the rendered rule tests it.
func (r *UserRule) DestMatches(a netip.Addr) bool { return admits(r.DestIP, r.DestMasked, a) }

// Ipset declares the address family of a user set.
type Ipset struct {
	Name   string
	Family Family
}

// Use marks locally generated traffic from sockets of a cgroup (v2 id of
// the ancestor at Level) of the interface's family with the interface's
// mark, so that it is routed through the interface's table; the output
// chain accepts it at once, leaving its conntrack mark zero. The source
// address was chosen by the first route lookup (usually for another WAN),
// so a nat postrouting chain masquerades the new connections that leave
// with the interface's mark, a zero conntrack mark and a source address
// of the router that is not one of the out interface's, and replies come
// back the same way (legacy `mwan3 use` bound the sockets to the
// interface's address instead, spec §8.9). The kernel allows no socket
// (cgroup) test in postrouting, hence the conntrack mark: connections
// marked by the hook (forwarded, or the router's own by user rules) have
// it set and are never masqueraded.
type Use struct {
	Cgroup    uint64
	Level     uint32
	Interface string
}
