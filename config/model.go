package config

import (
	"fmt"
	"math/bits"
	"net/netip"
	"strconv"
	"strings"
)

// Family is an address family: "ipv4" or "ipv6"; rules may also say "any".
type Family string

// Families as the configuration spells them.
const (
	IPv4 Family = "ipv4"
	IPv6 Family = "ipv6"
	Any  Family = "any"
)

// Matches reports whether a rule of family f applies to packets of family
// pass (IPv4 or IPv6).
func (f Family) Matches(pass Family) bool { return f == Any || f == pass }

// Config is a loaded, validated /etc/config/mwan3. Everything in it is
// usable as it stands: options that legacy mwan3 would ignore or default
// are already ignored or defaulted (with a warning in the Diags Load
// returned). A Config is not modified after Load.
type Config struct {
	File       string       `json:"file"`
	Globals    Globals      `json:"globals"`
	Interfaces []*Interface `json:"interfaces"` // every interface section, in file order
	Members    []*Member    `json:"members"`    // usable members, in file order
	Policies   []*Policy    `json:"policies"`   // usable policies, in file order
	Rules      []*Rule      `json:"rules"`      // usable rules, in file order (first match wins)
}

// Globals is the "globals" section.
type Globals struct {
	Line          int      `json:"line,omitempty"`
	MMXMask       uint32   `json:"mmx_mask"`
	Logging       bool     `json:"logging"`
	LogLevel      string   `json:"loglevel"`
	RTTableLookup []uint32 `json:"rt_table_lookup,omitempty"`
	SourceRouting bool     `json:"source_routing"`
}

// DefaultMask is mwan3's default mmx_mask.
const DefaultMask = 0x3F00

// MaskBits is the number of 1-bits in the mask.
func (g Globals) MaskBits() int { return bits.OnesCount32(g.MMXMask) }

// IfaceMax is the number of interface ids the mask can carry: 2^b − 4,
// because the three highest values are the special marks (default,
// unreachable, blackhole) and 0 means "no decision".
func (g Globals) IfaceMax() int { return ifaceMax(g.MMXMask) }

func ifaceMax(mask uint32) int {
	b := bits.OnesCount32(mask)
	if b < 3 {
		return 0
	}
	return 1<<b - 4
}

// Interface is a "config interface" section. Disabled interfaces are kept:
// they still own their id.
type Interface struct {
	Name    string `json:"name"`
	Line    int    `json:"line"`
	ID      int    `json:"id"`      // 1-based position among all interface sections
	Enabled bool   `json:"enabled"` // false also when the section had to be ignored
	Family  Family `json:"family"`

	TrackIP             []string `json:"track_ip,omitempty"`
	TrackMethod         string   `json:"track_method"`
	HTTPingSSL          bool     `json:"httping_ssl"`
	Reliability         int      `json:"reliability"`
	Count               int      `json:"count"`
	Timeout             int      `json:"timeout"`           // seconds
	Interval            int      `json:"interval"`          // seconds
	FailureInterval     int      `json:"failure_interval"`  // seconds
	RecoveryInterval    int      `json:"recovery_interval"` // seconds
	KeepFailureInterval bool     `json:"keep_failure_interval"`
	Down                int      `json:"down"`
	Up                  int      `json:"up"`
	Size                int      `json:"size"`
	MaxTTL              int      `json:"max_ttl"`
	CheckQuality        bool     `json:"check_quality"`
	FailureLatency      int      `json:"failure_latency"`  // milliseconds
	RecoveryLatency     int      `json:"recovery_latency"` // milliseconds
	FailureLoss         int      `json:"failure_loss"`     // percent
	RecoveryLoss        int      `json:"recovery_loss"`    // percent
	InitialState        string   `json:"initial_state"`    // "online" or "offline"
	// FlushConntrack lists the events (ifup, ifdown, connected,
	// disconnected) on which this interface's connections are flushed.
	FlushConntrack []string `json:"flush_conntrack,omitempty"`
}

// Tracked reports whether the interface gets a tracker.
func (i *Interface) Tracked() bool { return i.Enabled && len(i.TrackIP) > 0 }

// Member is a "config member" section whose interface exists.
type Member struct {
	Name      string `json:"name"`
	Line      int    `json:"line"`
	Interface string `json:"interface"`
	Metric    int    `json:"metric"`
	Weight    int    `json:"weight"`
}

// Policy is a "config policy" section. Members lists the usable members in
// use_member order.
type Policy struct {
	Name       string   `json:"name"`
	Line       int      `json:"line"`
	Members    []string `json:"members"`
	LastResort string   `json:"last_resort"` // unreachable, blackhole or default
}

// Special use_policy targets that are not policies.
const (
	PolicyDefault     = "default"
	PolicyUnreachable = "unreachable"
	PolicyBlackhole   = "blackhole"
)

// Rule is a "config rule" section that can match something.
type Rule struct {
	Name      string `json:"name"`
	Line      int    `json:"line"`
	UsePolicy string `json:"use_policy"` // a policy name, default, unreachable or blackhole
	Family    Family `json:"family"`     // ipv4, ipv6 or any
	// Proto is the protocol as a lower-case name ("tcp") or a number; "all"
	// matches every protocol. ProtoNum is its number, -1 for all.
	Proto    string      `json:"proto"`
	ProtoNum int         `json:"proto_num"`
	SrcIP    []Address   `json:"src_ip,omitempty"`
	DestIP   []Address   `json:"dest_ip,omitempty"`
	SrcPort  []PortRange `json:"src_port,omitempty"`
	DestPort []PortRange `json:"dest_port,omitempty"`
	SrcIface string      `json:"src_iface,omitempty"` // a netifd interface name
	IPSet    string      `json:"ipset,omitempty"`     // destination set name
	Sticky   bool        `json:"sticky"`
	Timeout  int         `json:"timeout"` // sticky lifetime, seconds
	Logging  bool        `json:"logging"`
}

// Variants lists the families (IPv4 and/or IPv6) the rule is emitted for:
// those its family allows, and for which every address option it sets
// holds at least one address of that family.
func (r *Rule) Variants() []Family {
	var out []Family
	for _, f := range []Family{IPv4, IPv6} {
		if !r.Family.Matches(f) {
			continue
		}
		if len(r.SrcIP) > 0 && len(AddressesOf(r.SrcIP, f)) == 0 {
			continue
		}
		if len(r.DestIP) > 0 && len(AddressesOf(r.DestIP, f)) == 0 {
			continue
		}
		out = append(out, f)
	}
	return out
}

// AddressesOf returns the addresses of family f.
func AddressesOf(as []Address, f Family) []Address {
	var out []Address
	for _, a := range as {
		if a.Family() == f {
			out = append(out, a)
		}
	}
	return out
}

// Address is an address match: an address with a mask. The mask is usually
// a prefix (CIDR), but iptables' dotted masks such as 0.0.0.1/0.0.0.1 (odd
// addresses) may be non-contiguous; Bits is -1 then.
type Address struct {
	Addr netip.Addr // already masked
	Mask netip.Addr
	Bits int
}

// Family returns IPv4 or IPv6.
func (a Address) Family() Family {
	if a.Addr.Is4() {
		return IPv4
	}
	return IPv6
}

// Prefix returns the address as a prefix when its mask is contiguous.
func (a Address) Prefix() (netip.Prefix, bool) {
	if a.Bits < 0 {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a.Addr, a.Bits), true
}

func (a Address) String() string {
	if a.Bits < 0 {
		return a.Addr.String() + "/" + a.Mask.String()
	}
	if a.Bits == a.Addr.BitLen() {
		return a.Addr.String()
	}
	return fmt.Sprintf("%s/%d", a.Addr, a.Bits)
}

// MarshalText writes the address as String does.
func (a Address) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// ParseAddress reads an IP address, a CIDR or (IPv4) an address with a
// dotted netmask. Host bits under the mask are cleared, as iptables does.
func ParseAddress(s string) (Address, error) {
	addrPart, maskPart, hasMask := strings.Cut(s, "/")
	addr, err := netip.ParseAddr(addrPart)
	if err != nil || addr.Zone() != "" {
		return Address{}, fmt.Errorf("%q is not an IP address", addrPart)
	}
	addr = addr.Unmap()
	if !hasMask {
		return Address{Addr: addr, Mask: fullMask(addr.BitLen()), Bits: addr.BitLen()}, nil
	}
	if n, err := strconv.Atoi(maskPart); err == nil && isDigits(maskPart) {
		if n < 0 || n > addr.BitLen() {
			return Address{}, fmt.Errorf("prefix length /%s is out of range for %s", maskPart, addr)
		}
		p := netip.PrefixFrom(addr, n).Masked()
		return Address{Addr: p.Addr(), Mask: prefixMask(addr.BitLen(), n), Bits: n}, nil
	}
	mask, err := netip.ParseAddr(maskPart)
	if err != nil || mask.BitLen() != addr.BitLen() {
		return Address{}, fmt.Errorf("%q is not a prefix length or netmask for %s", maskPart, addr)
	}
	a, m := addr.AsSlice(), mask.AsSlice()
	for i := range a {
		a[i] &= m[i]
	}
	masked, _ := netip.AddrFromSlice(a)
	out := Address{Addr: masked, Mask: mask, Bits: -1}
	if n, ok := maskLen(m); ok {
		out.Bits = n
	}
	return out, nil
}

func fullMask(bitLen int) netip.Addr { return prefixMask(bitLen, bitLen) }

func prefixMask(bitLen, n int) netip.Addr {
	b := make([]byte, bitLen/8)
	for i := range b {
		switch {
		case n >= 8:
			b[i] = 0xff
			n -= 8
		case n > 0:
			b[i] = byte(0xff << (8 - n))
			n = 0
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// maskLen returns the prefix length of a contiguous mask.
func maskLen(m []byte) (int, bool) {
	n, done := 0, false
	for _, b := range m {
		if done {
			if b != 0 {
				return 0, false
			}
			continue
		}
		ones := bits.LeadingZeros8(^b)
		if b<<ones != 0 {
			return 0, false
		}
		n += ones
		done = ones < 8
	}
	return n, true
}

// PortRange is a port or an inclusive range of ports.
type PortRange struct {
	From, To uint16
}

func (p PortRange) String() string {
	if p.From == p.To {
		return strconv.Itoa(int(p.From))
	}
	return fmt.Sprintf("%d-%d", p.From, p.To)
}

// MarshalText writes the range as String does.
func (p PortRange) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// ParsePorts reads iptables multiport syntax: ports and ranges (a:b, and
// a-b too) separated by commas. An open end (":1024", "1024:") means 0 or
// 65535.
func ParsePorts(s string) ([]PortRange, error) {
	var out []PortRange
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return nil, fmt.Errorf("empty port in %q", s)
		}
		lo, hi, isRange := strings.Cut(item, ":")
		openEnds := isRange // only iptables' a:b form may leave an end open
		if !isRange {
			lo, hi, isRange = strings.Cut(item, "-")
		}
		from, err := parsePort(lo, 0, openEnds)
		if err != nil {
			return nil, err
		}
		to := from
		if isRange {
			if to, err = parsePort(hi, 65535, openEnds); err != nil {
				return nil, err
			}
			if from > to {
				return nil, fmt.Errorf("port range %q runs backwards", item)
			}
		}
		out = append(out, PortRange{From: from, To: to})
	}
	return out, nil
}

func parsePort(s string, open uint16, mayBeOpen bool) (uint16, error) {
	if s == "" && mayBeOpen {
		return open, nil
	}
	if !isDigits(s) {
		return 0, fmt.Errorf("%q is not a port number", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > 65535 {
		return 0, fmt.Errorf("port %s is out of range 0-65535", s)
	}
	return uint16(n), nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// protocols maps the protocol names iptables and nft know (OpenWrt's
// /etc/protocols) to their numbers.
var protocols = map[string]int{
	"icmp": 1, "igmp": 2, "ipencap": 4, "ipip": 4, "tcp": 6, "egp": 8, "pup": 12,
	"udp": 17, "idp": 22, "ipv6": 41, "rsvp": 46, "gre": 47, "esp": 50, "ah": 51,
	"icmpv6": 58, "ipv6-icmp": 58, "mtp": 92, "encap": 98, "pim": 103, "comp": 108,
	"l2tp": 115, "sctp": 132, "udplite": 136, "mpls-in-ip": 137, "ethernet": 143,
}

// ParseProto reads a protocol name (any case) or number. "all" and 0 mean
// every protocol (-1).
func ParseProto(s string) (name string, num int, err error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" || s == "all" {
		return "all", -1, nil
	}
	if isDigits(s) {
		n, err := strconv.Atoi(s)
		if err != nil || n > 255 {
			return "", 0, fmt.Errorf("protocol number %s is out of range 0-255", s)
		}
		if n == 0 {
			return "all", -1, nil
		}
		for name, num := range protocols {
			if num == n && name != "ipv6-icmp" && name != "ipencap" {
				return name, n, nil
			}
		}
		return s, n, nil
	}
	n, ok := protocols[s]
	if !ok {
		return "", 0, fmt.Errorf("unknown protocol %q", s)
	}
	return s, n, nil
}

// Mark returns the firewall mark for value v under mask: the bits of v,
// least significant first, deposited onto the 1-bits of the mask, least
// significant first. A v that does not fit is cut to the mask's width.
func Mark(mask uint32, v uint32) uint32 {
	var out uint32
	for bit := uint32(1); mask != 0 && v != 0; bit <<= 1 {
		if mask&bit == 0 {
			continue
		}
		if v&1 != 0 {
			out |= bit
		}
		v >>= 1
		mask &^= bit
	}
	return out
}
