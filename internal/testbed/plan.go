package testbed

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"time"
)

// Family selects the address families of a testbed or of a traffic helper.
type Family int

// The address families. Dual is both.
const (
	IPv4 Family = 1 << iota
	IPv6
	Dual = IPv4 | IPv6
)

// Has reports whether f includes all of g.
func (f Family) Has(g Family) bool { return f&g == g }

// String returns "IPv4", "IPv6" or "Dual".
func (f Family) String() string {
	switch f {
	case IPv4:
		return "IPv4"
	case IPv6:
		return "IPv6"
	case Dual:
		return "Dual"
	}
	return "Family(" + strconv.Itoa(int(f)) + ")"
}

// familyOf returns the family of an address (IPv4 for a mapped one).
func familyOf(a netip.Addr) Family {
	if a.Unmap().Is4() {
		return IPv4
	}
	return IPv6
}

// MaxWANs is the largest number of WANs a testbed can have.
const MaxWANs = 8

// EchoPort is the default port of the internet host's TCP and UDP echo
// servers; HTTPPort is the port of its HTTP server.
const (
	EchoPort = 7
	HTTPPort = 80
)

// Device names. Each namespace is private, so the names repeat across them.
const (
	routerLANDev = "lan0" // router end of the LAN link
	lanDev       = "eth0" // client end of the LAN link
	ispCPEDev    = "cpe"  // ISP end of a WAN link
	ispUpDev     = "up"   // ISP end of its link to the internet host
)

// The fixed part of the address plan (see the package comment).
var (
	lanPrefix4 = netip.MustParsePrefix("192.168.1.0/24")
	lanPrefix6 = netip.MustParsePrefix("fd00:100::/64")
	routerLAN4 = netip.MustParseAddr("192.168.1.1")
	routerLAN6 = netip.MustParseAddr("fd00:100::1")
	lanAddr4   = netip.MustParseAddr("192.168.1.100")
	lanAddr6   = netip.MustParseAddr("fd00:100::100")

	// publicNet4 and publicNet6 hold every address of the internet host's
	// loopback: the targets, the echo server and the HTTP server.
	publicNet4 = netip.MustParsePrefix("198.51.100.0/24")
	publicNet6 = netip.MustParsePrefix("2001:db8:ff::/64")
	targets4   = []netip.Addr{
		netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2"),
		netip.MustParseAddr("198.51.100.3"), netip.MustParseAddr("198.51.100.4"),
	}
	targets6 = []netip.Addr{
		netip.MustParseAddr("2001:db8:ff::1"), netip.MustParseAddr("2001:db8:ff::2"),
		netip.MustParseAddr("2001:db8:ff::3"), netip.MustParseAddr("2001:db8:ff::4"),
	}
	echo4 = netip.MustParseAddr("198.51.100.7")
	echo6 = netip.MustParseAddr("2001:db8:ff::7")
	http4 = netip.MustParseAddr("198.51.100.80")
	http6 = netip.MustParseAddr("2001:db8:ff::80")
)

// wanPlan is the address plan of WAN index i (0-based; n = i+1 below).
type wanPlan struct {
	name, name6 string // mwan3 interface names: wan/wan6, wanb/wanb6, …
	dev         string // router device: eth<n>
	inetDev     string // internet host's device towards the ISP: isp<n>
	metric      int    // 10*n

	// WAN link 10.0.n.0/24, fd00:n::/64: ISP .1/::1, router .2/::2.
	router4, router6   netip.Prefix
	gateway4, gateway6 netip.Addr
	// ISP uplink 203.0.113.8n/29, 2001:db8:n::/64: internet .8n+1/::1,
	// ISP (public) .8n+2/::2.
	public4, public6 netip.Prefix
	inet4, inet6     netip.Prefix
}

// WANName is the mwan3 interface name of WAN index i: wan, wanb, wanc, …
func WANName(i int) string {
	if i == 0 {
		return "wan"
	}
	return "wan" + string(rune('a'+i))
}

// planWAN returns the address plan of WAN index i, 0 <= i < MaxWANs.
func planWAN(i int) (wanPlan, error) {
	if i < 0 || i >= MaxWANs {
		return wanPlan{}, fmt.Errorf("WAN index %d out of range 0..%d", i, MaxWANs-1)
	}
	n := byte(i + 1)
	name := WANName(i)
	v6 := func(group, host byte) netip.Addr {
		return netip.AddrFrom16([16]byte{0: 0xfd, 3: group, 15: host})
	}
	pub6 := func(host byte) netip.Addr {
		return netip.AddrFrom16([16]byte{0: 0x20, 1: 0x01, 2: 0x0d, 3: 0xb8, 5: n, 15: host})
	}
	return wanPlan{
		name:     name,
		name6:    name + "6",
		dev:      "eth" + strconv.Itoa(i+1),
		inetDev:  "isp" + strconv.Itoa(i+1),
		metric:   10 * (i + 1),
		router4:  netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, n, 2}), 24),
		gateway4: netip.AddrFrom4([4]byte{10, 0, n, 1}),
		router6:  netip.PrefixFrom(v6(n, 2), 64),
		gateway6: v6(n, 1),
		public4:  netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, 113, 8*n + 2}), 29),
		inet4:    netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, 113, 8*n + 1}), 29),
		public6:  netip.PrefixFrom(pub6(2), 64),
		inet6:    netip.PrefixFrom(pub6(1), 64),
	}, nil
}

// validate checks a Spec and fills in defaults: a zero Family means IPv4.
func (s Spec) validate() (Spec, error) {
	if s.WANs < 1 || s.WANs > MaxWANs {
		return s, fmt.Errorf("testbed spec: %d WANs, want 1..%d", s.WANs, MaxWANs)
	}
	if s.Family == 0 {
		s.Family = IPv4
	}
	if s.Family&^Dual != 0 {
		return s, fmt.Errorf("testbed spec: unknown family %v", s.Family)
	}
	if s.FlowTimeout < 0 {
		return s, fmt.Errorf("testbed spec: negative flow timeout %v", s.FlowTimeout)
	}
	if s.FlowTimeout == 0 {
		s.FlowTimeout = defaultFlowTimeout
	}
	return s, nil
}

// defaultFlowTimeout bounds each connection or flow of the traffic helpers.
const defaultFlowTimeout = time.Second

// Spec says what testbed to build.
type Spec struct {
	// WANs is the number of WANs, 1..MaxWANs.
	WANs int
	// Family is the address families configured everywhere (zero: IPv4).
	Family Family
	// FlowTimeout bounds each connection or flow of TCPFlows, UDPFlows and
	// the reply wait of a Stream probe (zero: 1 s).
	FlowTimeout time.Duration
	// Logger receives the testbed's own messages (zero: the test's output).
	Logger *slog.Logger
}

// MaxInternetAddrs bounds the addresses on the internet host's loopback:
// the plan's (targets, echo and HTTP servers) and those
// Testbed.AddInternetAddrs adds.
const MaxInternetAddrs = 256

// planPrefixes are the networks of the address plan that an extra address
// of the internet host must stay out of: the LAN, every possible WAN link
// and every ISP uplink (an address there would shadow a router, an ISP or
// the internet host's own side of a link).
func planPrefixes() []netip.Prefix {
	out := []netip.Prefix{lanPrefix4, lanPrefix6}
	for i := range MaxWANs {
		p, _ := planWAN(i) // i < MaxWANs
		out = append(out, p.router4.Masked(), p.router6.Masked(), p.public4.Masked(), p.public6.Masked())
	}
	return out
}

// checkInternetAddrs validates extra addresses for the internet host of a
// testbed of family f that already has the addresses have: unicast, of
// the testbed's families, outside the plan's networks, no duplicates, at
// most MaxInternetAddrs in all. It returns them unmapped.
func checkInternetAddrs(f Family, have, add []netip.Addr) ([]netip.Addr, error) {
	if len(have)+len(add) > MaxInternetAddrs {
		return nil, fmt.Errorf("internet addresses: %d more would exceed %d", len(add), MaxInternetAddrs)
	}
	seen := make(map[netip.Addr]bool, len(have)+len(add))
	for _, a := range have {
		seen[a] = true
	}
	plan := planPrefixes()
	out := make([]netip.Addr, 0, len(add))
	for _, a := range add {
		a = a.Unmap()
		switch {
		case !a.IsValid() || a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() ||
			a.IsLinkLocalUnicast() || a.IsInterfaceLocalMulticast():
			return nil, fmt.Errorf("internet address %v: not a routable unicast address", a)
		case !f.Has(familyOf(a)):
			return nil, fmt.Errorf("internet address %v: the testbed is %v", a, f)
		case seen[a]:
			return nil, fmt.Errorf("internet address %v: already present", a)
		}
		for _, p := range plan {
			if p.Contains(a) {
				return nil, fmt.Errorf("internet address %v: inside the testbed's network %v", a, p)
			}
		}
		seen[a] = true
		out = append(out, a)
	}
	return out, nil
}
