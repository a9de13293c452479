package cli

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// This file prints links, addresses, routes and rules the way iproute2's
// `ip` does (6.x, without -d), from plain values that internal_linux.go
// reads with rtnetlink (rtmsg.go, rulemsg.go). What those do not decode is
// left out: the qdisc of a link, IPv6 route preferences ("pref medium")
// and route metrics other than the priority.

// Link flags (IFF_*, linux/if.h).
const (
	iffUp          = 0x1
	iffBroadcast   = 0x2
	iffDebug       = 0x4
	iffLoopback    = 0x8
	iffPointToPt   = 0x10
	iffNoTrailers  = 0x20
	iffRunning     = 0x40
	iffNoARP       = 0x80
	iffPromisc     = 0x100
	iffAllMulti    = 0x200
	iffMaster      = 0x400
	iffSlave       = 0x800
	iffMulticast   = 0x1000
	iffPortSel     = 0x2000
	iffAutoMedia   = 0x4000
	iffDynamic     = 0x8000
	iffLowerUp     = 0x10000
	iffDormant     = 0x20000
	iffEcho        = 0x40000
	lifetimeInfini = 0xffffffff
)

// linkFlagNames are the flags in the order ip prints them.
var linkFlagNames = []struct {
	bit  uint32
	name string
}{
	{iffLoopback, "LOOPBACK"}, {iffBroadcast, "BROADCAST"}, {iffPointToPt, "POINTOPOINT"}, {iffMulticast, "MULTICAST"},
	{iffNoARP, "NOARP"}, {iffAllMulti, "ALLMULTI"}, {iffPromisc, "PROMISC"}, {iffMaster, "MASTER"}, {iffSlave, "SLAVE"},
	{iffDebug, "DEBUG"}, {iffDynamic, "DYNAMIC"}, {iffAutoMedia, "AUTOMEDIA"}, {iffPortSel, "PORTSEL"},
	{iffNoTrailers, "NOTRAILERS"}, {iffUp, "UP"}, {iffLowerUp, "LOWER_UP"}, {iffDormant, "DORMANT"}, {iffEcho, "ECHO"},
}

// ipLink is a network device with its addresses of one family.
type ipLink struct {
	Index int
	Name  string
	Peer  string // after '@': the parent's name, or "if<N>" in another namespace
	// PeerDown is set when the parent is in this namespace and down (ip
	// then adds M-DOWN to the flags).
	PeerDown bool
	Flags    uint32 // IFF_*
	MTU      int
	Master   string
	State    string // operational state as ip prints it: UP, DOWN, UNKNOWN, …
	Group    uint32
	TxQLen   int
	Addrs    []ipAddr
}

// ipAddr is one address of a link.
type ipAddr struct {
	Prefix      netip.Prefix
	Peer        netip.Prefix // point-to-point peer, when set
	Broadcast   netip.Addr
	Scope       int
	Flags       uint32 // IFA_F_*
	Label       string // IPv4 only
	Valid, Pref uint32 // seconds; lifetimeInfini for forever
}

// linkFlags prints <…> of a link.
func linkFlags(f uint32) string {
	var names []string
	if f&iffUp != 0 && f&iffRunning == 0 {
		names = append(names, "NO-CARRIER")
	}
	f &^= iffRunning
	for _, n := range linkFlagNames {
		if f&n.bit != 0 {
			names = append(names, n.name)
			f &^= n.bit
		}
	}
	if f != 0 {
		names = append(names, fmt.Sprintf("%x", f))
	}
	return strings.Join(names, ",")
}

// operStates are the operational states (IF_OPER_*) as ip prints them.
var operStates = []string{"UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP"}

// operState names an operational state.
func operState(s int) string {
	if s >= 0 && s < len(operStates) {
		return operStates[s]
	}
	return strconv.Itoa(s)
}

// scopeName is rtnl_rtscope_n2a.
func scopeName(s int) string {
	switch s {
	case 0:
		return "global"
	case 200:
		return "site"
	case 253:
		return "link"
	case 254:
		return "host"
	case 255:
		return "nowhere"
	}
	return strconv.Itoa(s)
}

// addrFlagNames are the address flags ip prints, in its order; IPv4's
// 0x01 reads "secondary", IPv6's "temporary".
var addrFlagNames = []struct {
	bit  uint32
	name string
}{
	{0x02, "nodad"}, {0x04, "optimistic"}, {0x08, "dadfailed"}, {0x10, "home"}, {0x20, "deprecated"},
	{0x40, "tentative"}, {0x100, "mngtmpaddr"}, {0x200, "noprefixroute"}, {0x400, "autojoin"}, {0x800, "stable-privacy"},
}

func lifetime(s uint32) string {
	if s == lifetimeInfini {
		return "forever"
	}
	return fmt.Sprintf("%dsec", s)
}

// formatAddrs prints `ip -4|-6 a show` for links that have addresses of
// the family (links come with their addresses of that family only).
func formatAddrs(links []ipLink, v6 bool) string {
	var b strings.Builder
	for _, l := range links {
		if len(l.Addrs) == 0 {
			continue
		}
		name := l.Name
		if l.Peer != "" {
			name += "@" + l.Peer
		}
		flags := linkFlags(l.Flags)
		if l.PeerDown {
			flags += ",M-DOWN"
		}
		fmt.Fprintf(&b, "%d: %s: <%s> mtu %d", l.Index, name, flags, l.MTU)
		if l.Master != "" {
			fmt.Fprintf(&b, " master %s", l.Master)
		}
		fmt.Fprintf(&b, " state %s", l.State)
		if l.Group == 0 {
			b.WriteString(" group default")
		} else {
			fmt.Fprintf(&b, " group %d", l.Group)
		}
		if l.TxQLen > 0 {
			fmt.Fprintf(&b, " qlen %d", l.TxQLen)
		}
		b.WriteByte('\n')
		for _, a := range l.Addrs {
			kw := "inet"
			if v6 {
				kw = "inet6"
			}
			fmt.Fprintf(&b, "    %s %s", kw, a.Prefix.Addr())
			if a.Peer.IsValid() {
				fmt.Fprintf(&b, " peer %s", a.Peer)
			} else {
				fmt.Fprintf(&b, "/%d", a.Prefix.Bits())
			}
			if a.Broadcast.IsValid() {
				fmt.Fprintf(&b, " brd %s", a.Broadcast)
			}
			fmt.Fprintf(&b, " scope %s", scopeName(a.Scope))
			if a.Flags&0x01 != 0 {
				if v6 {
					b.WriteString(" temporary")
				} else {
					b.WriteString(" secondary")
				}
			}
			if a.Flags&0x80 == 0 {
				b.WriteString(" dynamic")
			}
			for _, f := range addrFlagNames {
				if a.Flags&f.bit != 0 {
					b.WriteString(" " + f.name)
				}
			}
			if !v6 && a.Label != "" {
				b.WriteString(" " + a.Label)
			}
			fmt.Fprintf(&b, "\n       valid_lft %s preferred_lft %s\n", lifetime(a.Valid), lifetime(a.Pref))
		}
	}
	return b.String()
}

// Route types (RTN_*) and protocols (RTPROT_*) ip names.
var (
	routeTypeNames = map[int]string{0: "none", 2: "local", 3: "broadcast", 4: "anycast", 5: "multicast",
		6: "blackhole", 7: "unreachable", 8: "prohibit", 9: "throw", 10: "nat", 11: "xresolve"}
	routeProtoNames = map[int]string{0: "unspec", 1: "redirect", 2: "kernel", 3: "boot", 4: "static", 8: "gated",
		9: "ra", 10: "mrt", 11: "zebra", 12: "bird", 13: "dnrouted", 14: "xorp", 15: "ntk", 16: "dhcp",
		17: "mrouted", 18: "keepalived", 42: "babel", 99: "openr", 186: "bgp", 187: "isis", 188: "ospf",
		189: "rip", 192: "eigrp"}
	// nexthop flags (RTNH_F_*) in ip's order.
	nexthopFlagNames = []struct {
		bit  int
		name string
	}{{1, "dead"}, {4, "onlink"}, {2, "pervasive"}, {8, "offload"}, {64, "trap"}, {16, "linkdown"}, {32, "unresolved"}}
)

// ipRoute is one route.
type ipRoute struct {
	Table  int
	Type   int          // RTN_*; 1 is unicast
	Dst    netip.Prefix // invalid or /0: default
	Gw     netip.Addr
	Dev    string
	Proto  int
	Scope  int
	Src    netip.Addr
	Metric int // 0: none
	Flags  int // RTNH_F_*
	Hops   []ipNexthop
}

// ipNexthop is one path of a multipath route.
type ipNexthop struct {
	Gw     netip.Addr
	Dev    string
	Weight int // ip prints hops+1
	Flags  int
}

func nexthopFlags(f int) string {
	var s string
	for _, n := range nexthopFlagNames {
		if f&n.bit != 0 {
			s += " " + n.name
		}
	}
	return s
}

// formatRoutes prints `ip route show` of one table.
func formatRoutes(routes []ipRoute) string {
	var b strings.Builder
	for _, r := range routes {
		if t, ok := routeTypeNames[r.Type]; ok {
			b.WriteString(t + " ")
		} else if r.Type != 1 {
			fmt.Fprintf(&b, "%d ", r.Type)
		}
		if !r.Dst.IsValid() || r.Dst.Bits() == 0 {
			b.WriteString("default")
		} else if r.Dst.IsSingleIP() {
			b.WriteString(r.Dst.Addr().String())
		} else {
			b.WriteString(r.Dst.String())
		}
		if r.Gw.IsValid() {
			fmt.Fprintf(&b, " via %s", r.Gw)
		}
		if r.Dev != "" {
			fmt.Fprintf(&b, " dev %s", r.Dev)
		}
		if r.Proto != 3 {
			if p, ok := routeProtoNames[r.Proto]; ok {
				fmt.Fprintf(&b, " proto %s", p)
			} else {
				fmt.Fprintf(&b, " proto %d", r.Proto)
			}
		}
		if r.Scope != 0 {
			fmt.Fprintf(&b, " scope %s", scopeName(r.Scope))
		}
		if r.Src.IsValid() {
			fmt.Fprintf(&b, " src %s", r.Src)
		}
		if r.Metric != 0 {
			fmt.Fprintf(&b, " metric %d", r.Metric)
		}
		b.WriteString(nexthopFlags(r.Flags))
		for _, h := range r.Hops {
			b.WriteString("\n\tnexthop")
			if h.Gw.IsValid() {
				fmt.Fprintf(&b, " via %s", h.Gw)
			}
			if h.Dev != "" {
				fmt.Fprintf(&b, " dev %s", h.Dev)
			}
			fmt.Fprintf(&b, " weight %d%s", h.Weight, nexthopFlags(h.Flags))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Rule actions (FR_ACT_*).
const (
	ruleToTable     = 1
	ruleGoto        = 2
	ruleNop         = 3
	ruleBlackhole   = 6
	ruleUnreachable = 7
	ruleProhibit    = 8
)

// ipRule is one ip rule.
type ipRule struct {
	Priority   int
	Invert     bool
	Src, Dst   netip.Prefix // invalid: all
	Mark       uint32
	Mask       uint32
	HasMark    bool
	Iif, Oif   string
	Table      int
	Action     int
	Goto       int
	SuppressPL int // suppress_prefixlength, -1 when not set
	hasMask    bool
}

// tableName is rtnl_rttable_n2a without /etc/iproute2/rt_tables.
func tableName(t int) string {
	switch t {
	case 253:
		return "default"
	case 254:
		return "main"
	case 255:
		return "local"
	}
	return strconv.Itoa(t)
}

// formatRules prints `ip rule show`.
func formatRules(rules []ipRule) string {
	var b strings.Builder
	for _, r := range rules {
		fmt.Fprintf(&b, "%d:\t", r.Priority)
		if r.Invert {
			b.WriteString("not ")
		}
		b.WriteString("from ")
		if r.Src.IsValid() && r.Src.Bits() > 0 {
			b.WriteString(prefixOrHost(r.Src))
		} else {
			b.WriteString("all")
		}
		if r.Dst.IsValid() && r.Dst.Bits() > 0 {
			fmt.Fprintf(&b, " to %s", prefixOrHost(r.Dst))
		}
		if r.HasMark {
			fmt.Fprintf(&b, " fwmark %#x", r.Mark)
			if r.Mask != 0xffffffff {
				fmt.Fprintf(&b, "/%#x", r.Mask)
			}
		}
		if r.Iif != "" {
			fmt.Fprintf(&b, " iif %s", r.Iif)
		}
		if r.Oif != "" {
			fmt.Fprintf(&b, " oif %s", r.Oif)
		}
		switch r.Action {
		case ruleToTable:
			fmt.Fprintf(&b, " lookup %s", tableName(r.Table))
			if r.SuppressPL >= 0 {
				fmt.Fprintf(&b, " suppress_prefixlength %d", r.SuppressPL)
			}
		case ruleGoto:
			fmt.Fprintf(&b, " goto %d", r.Goto)
		case ruleNop:
			b.WriteString(" nop")
		case ruleBlackhole:
			b.WriteString(" blackhole")
		case ruleUnreachable:
			b.WriteString(" unreachable")
		case ruleProhibit:
			b.WriteString(" prohibit")
		default:
			fmt.Fprintf(&b, " action %d", r.Action)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// prefixOrHost prints a prefix, a host without its length.
func prefixOrHost(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}
