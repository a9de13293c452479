package rtsync

import (
	"fmt"
	"net/netip"
)

// Family is an IP family. An mwan3 interface belongs to exactly one.
type Family uint8

// The two families rtsync manages.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

// String returns "ipv4" or "ipv6", the words mwan3's config uses.
func (f Family) String() string {
	switch f {
	case IPv4:
		return "ipv4"
	case IPv6:
		return "ipv6"
	}
	return fmt.Sprintf("family(%d)", uint8(f))
}

// bits is the address length of the family.
func (f Family) bits() int {
	if f == IPv6 {
		return 128
	}
	return 32
}

// Interface is one mwan3 interface (a `config interface` section) together
// with netifd's view of it. The daemon fills it from the config and netifd.
type Interface struct {
	// Name is the mwan3/netifd interface name; it only appears in output.
	Name string
	// ID is the interface id (1..iface_max, config order, disabled ones
	// included). It is the table number and selects the rule priorities.
	ID int
	// Family is the interface's only family.
	Family Family
	// Enabled is the config's `enabled` option.
	Enabled bool
	// Up is netifd's `up`.
	Up bool
	// Device is netifd's `l3_device`, empty while the interface is down.
	Device string
}

// Input is everything [Desired] needs besides the kernel snapshot. It comes
// already validated from the config; rtsync re-checks only what would
// otherwise produce colliding priorities or tables.
type Input struct {
	// Mask is the configured mmx_mask (0x3F00 by default).
	Mask uint32
	// SourceRouting is globals.source_routing: when false the `from`
	// selector of default routes is dropped when they are copied.
	SourceRouting bool
	// TableLookup is globals.rt_table_lookup: extra source tables.
	TableLookup []uint32
	// Interfaces lists every configured interface in config order.
	Interfaces []Interface
	// NoIPv6 disables everything IPv6 (kernel without IPv6).
	NoIPv6 bool
}

// Link is a network device as rtnetlink reports it.
type Link struct {
	Index int
	Name  string
	// Up is the administrative state (IFF_UP).
	Up bool
	// Carrier is IFF_LOWER_UP: the device has a carrier.
	Carrier bool
}

// LinkChange reports a change of a device's state; Deleted is set when the
// device went away.
type LinkChange struct {
	Link
	Deleted bool
}

// RuleAction is what an ip rule does when it matches.
type RuleAction uint8

// Rule actions; [ActionOther] stands for every action rtsync never creates.
const (
	ActionLookup RuleAction = iota + 1
	ActionBlackhole
	ActionUnreachable
	ActionOther
)

// Rule is an ip rule, reduced to the selectors mwan3 uses.
type Rule struct {
	Family   Family
	Priority uint32
	// IIF is the `iif` selector (device name), empty for none.
	IIF string
	// Mark and Mask form the `fwmark Mark/Mask` selector; Mask 0 is none.
	Mark, Mask uint32
	Action     RuleAction
	// Table is the table of [ActionLookup].
	Table uint32
	// Unmanaged marks a kernel rule that has selectors, flags or an action
	// rtsync never sets: such a rule is never considered ours.
	Unmanaged bool
}

// Route is one kernel route. The struct is comparable; the few variable
// parts are kept as their raw netlink payloads in strings.
type Route struct {
	Family   Family
	Table    uint32
	Type     uint8 // RTN_* (1 unicast, 6 blackhole, 7 unreachable, ...)
	Protocol uint8 // RTPROT_*
	Scope    uint8 // RT_SCOPE_*
	Tos      uint8
	Flags    uint32 // rtm_flags
	// Dst is the destination; a zero-length prefix is the default route.
	Dst netip.Prefix
	// Src is the IPv6 `from` selector, invalid when there is none.
	Src netip.Prefix
	// Gateway is RTA_GATEWAY, or RTA_VIA when its family differs.
	Gateway netip.Addr
	// OIF is the output device's index, 0 for none.
	OIF      int
	PrefSrc  netip.Addr
	Priority uint32 // the metric
	// Pref is RTA_PREF (IPv6 router preference), present when HasPref.
	Pref    uint8
	HasPref bool
	// NHID is RTA_NH_ID (a nexthop object), 0 for none.
	NHID  uint32
	Realm uint32
	// Metrics, MultiPath and Encap are raw RTA_METRICS, RTA_MULTIPATH and
	// RTA_ENCAP payloads.
	Metrics   string
	MultiPath string
	EncapType uint16
	Encap     string
}

// IsDefault reports whether r is a default route (0.0.0.0/0 or ::/0).
func (r Route) IsDefault() bool { return r.Dst.Bits() == 0 }

// UsesDevice reports whether r leaves through the device with index dev:
// its output device or that of one of its nexthops.
func (r Route) UsesDevice(dev int) bool {
	if r.OIF == dev {
		return true
	}
	for nh := range nexthops(r.Family, r.MultiPath) {
		if nh.ifindex == dev {
			return true
		}
	}
	return false
}

// Snapshot is the part of the kernel's state [Desired] reads.
type Snapshot struct {
	Links []Link
	// Routes holds every route of every table, both families.
	Routes []Route
}

// Table is the desired content of one interface's routing table.
type Table struct {
	Family    Family
	ID        uint32
	Interface string
	Routes    []Route
}

// State is a desired (or applied) policy routing state.
type State struct {
	// Rules, sorted by family then priority.
	Rules []Rule
	// Tables, sorted by family then id; one per enabled interface that is up.
	Tables []Table
	// Connected4 and Connected6 feed nft's connected bypass sets.
	Connected4, Connected6 []netip.Prefix
	// Custom4 and Custom6 feed nft's custom bypass sets (rt_table_lookup).
	Custom4, Custom6 []netip.Prefix
	// names maps link indexes to names for rendering.
	names map[int]string
}

// Result is what one reconcile produced.
type Result struct {
	// State is the desired state that was reconciled; nil when the input
	// was invalid or the kernel could not be read.
	State *State
	// Links is the snapshot of the devices taken by the reconcile.
	Links []Link
	// Changes counts the kernel operations issued.
	Changes int
	// Err is the reconcile's error, nil when everything was applied.
	Err error
}
