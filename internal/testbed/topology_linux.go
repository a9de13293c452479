//go:build linux

package testbed

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// WAN is one uplink of the router: a veth from the router to its ISP.
type WAN struct {
	Name    string // mwan3 interface name: "wan", "wanb", "wanc", …
	Name6   string // mwan3 name of its IPv6 side: "wan6", "wanb6", …
	Dev     string // router device: "eth1", "eth2", …
	Metric  int    // metric of its default routes in main: 10, 20, 30, …
	ISP     *NS    // the ISP namespace
	ISPDev  string // the ISP's end of the WAN link ("cpe")
	InetDev string // the internet host's device towards this ISP ("isp1", …)

	Addr4    netip.Prefix // router address on the WAN, with its prefix length
	Gateway4 netip.Addr   // the ISP's address: the router's IPv4 gateway
	Public4  netip.Addr   // source address the internet host sees via this WAN
	Addr6    netip.Prefix // IPv6 counterparts, when the family includes IPv6
	Gateway6 netip.Addr
	Public6  netip.Addr
}

// Testbed is a router with several WANs, a LAN client and an internet host,
// each in a network namespace of its own (see the package comment). Fields
// of a family the Spec does not include are zero.
type Testbed struct {
	Spec Spec
	// Router is the namespace mwan3d manages; LAN holds the client and
	// Internet the host behind every ISP.
	Router, LAN, Internet *NS
	WANs                  []WAN

	LANDev                 string       // router's LAN device ("lan0")
	LANClientDev           string       // client's device ("eth0")
	LANPrefix4, LANPrefix6 netip.Prefix // LAN subnets
	RouterLAN4, RouterLAN6 netip.Addr   // router's LAN addresses (the client's gateway)
	LANAddr4, LANAddr6     netip.Addr   // client's addresses

	Targets4, Targets6 []netip.Addr // internet host addresses answering pings (track targets)
	Echo4, Echo6       netip.Addr   // TCP and UDP echo server, port EchoPort (and any asked for)
	HTTP4, HTTP6       netip.Addr   // HTTP server, port HTTPPort
	EchoPort           int

	log *slog.Logger
	srv *servers

	mu      sync.Mutex // guards ctl, the ISP rule sets, streams and extra
	ctl     []*wanControl
	streams []*Stream    // stopped at cleanup if the test did not
	extra   []netip.Addr // added by AddInternetAddrs

	namespaces []*NS // removed by Close, last first
}

// New builds a testbed as spec says and tears it down at the end of the test
// (also after a failure). It skips the test without root (see RequireRoot)
// and fails it when the spec is invalid or building fails.
func New(t testing.TB, spec Spec) *Testbed {
	t.Helper()
	RequireRoot(t)
	if spec.Logger == nil {
		spec.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	tb, err := open(spec, t.Name())
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	t.Cleanup(func() {
		if err := tb.Close(); err != nil {
			t.Errorf("testbed: %v", err)
		}
	})
	return tb
}

// Open builds a testbed outside a test (the demo); the caller must Close it.
// Without root or network namespaces it returns an error saying so.
func Open(spec Spec) (*Testbed, error) {
	if reason := rootUnavailable(); reason != "" {
		return nil, fmt.Errorf("testbed: %s", reason)
	}
	if spec.Logger == nil {
		spec.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	tb, err := open(spec, "open")
	if err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	return tb, nil
}

// open creates the namespaces and builds the topology; on failure it removes
// whatever it created.
func open(spec Spec, testName string) (tb *Testbed, err error) {
	spec, err = spec.validate()
	if err != nil {
		return nil, err
	}
	tb = &Testbed{
		Spec:         spec,
		LANDev:       routerLANDev,
		LANClientDev: lanDev,
		EchoPort:     EchoPort,
		log:          spec.Logger.With("component", "testbed"),
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, tb.Close())
			tb = nil
		}
	}()
	if tb.Router, err = tb.newNS("router", testName); err != nil {
		return tb, err
	}
	if tb.LAN, err = tb.newNS("lan", testName); err != nil {
		return tb, err
	}
	if tb.Internet, err = tb.newNS("inet", testName); err != nil {
		return tb, err
	}
	for i := range spec.WANs {
		p, err := planWAN(i)
		if err != nil {
			return tb, err
		}
		isp, err := tb.newNS(fmt.Sprintf("isp%d", i+1), testName)
		if err != nil {
			return tb, err
		}
		tb.WANs = append(tb.WANs, WAN{
			Name: p.name, Name6: p.name6, Dev: p.dev, Metric: p.metric,
			ISP: isp, ISPDev: ispCPEDev, InetDev: p.inetDev,
		})
		tb.ctl = append(tb.ctl, &wanControl{})
	}
	tb.srv = newServers(tb.Internet, tb.log)
	return tb, tb.build()
}

// newNS creates one namespace of the testbed and remembers it for Close.
func (tb *Testbed) newNS(prefix, testName string) (*NS, error) {
	n, err := newNS(prefix, testName)
	if err != nil {
		return nil, err
	}
	tb.namespaces = append(tb.namespaces, n)
	return n, nil
}

// Close stops the streams, servers and responders, then removes the
// namespaces (killing what was started in them). It is idempotent.
func (tb *Testbed) Close() error {
	tb.mu.Lock()
	for _, s := range tb.streams {
		s.Stop()
	}
	tb.streams = nil
	for _, c := range tb.ctl {
		if c.responder != nil {
			c.responder.Close()
			c.responder = nil
		}
	}
	if tb.srv != nil {
		tb.srv.Close()
		tb.srv = nil
	}
	namespaces := tb.namespaces
	tb.namespaces = nil
	tb.mu.Unlock()
	var errs []error
	for i := len(namespaces) - 1; i >= 0; i-- {
		errs = append(errs, namespaces[i].close())
	}
	return errors.Join(errs...)
}

// build configures the namespaces. The plan is the one of the package
// comment; fields of families the spec excludes stay zero.
func (tb *Testbed) build() error {
	fam := tb.Spec.Family
	if fam.Has(IPv4) {
		tb.LANPrefix4, tb.RouterLAN4, tb.LANAddr4 = lanPrefix4, routerLAN4, lanAddr4
		tb.Targets4, tb.Echo4, tb.HTTP4 = targets4, echo4, http4
	}
	if fam.Has(IPv6) {
		tb.LANPrefix6, tb.RouterLAN6, tb.LANAddr6 = lanPrefix6, routerLAN6, lanAddr6
		tb.Targets6, tb.Echo6, tb.HTTP6 = targets6, echo6, http6
	}
	forwarding := []*NS{tb.Router}
	for i := range tb.WANs {
		p, _ := planWAN(i) // i < MaxWANs: checked by New
		w := &tb.WANs[i]
		if fam.Has(IPv4) {
			w.Addr4, w.Gateway4, w.Public4 = p.router4, p.gateway4, p.public4.Addr()
		}
		if fam.Has(IPv6) {
			w.Addr6, w.Gateway6, w.Public6 = p.router6, p.gateway6, p.public6.Addr()
		}
		forwarding = append(forwarding, w.ISP)
	}
	for _, n := range []*NS{tb.Router, tb.LAN, tb.Internet} {
		if err := setSysctls(n, baseSysctls); err != nil {
			return err
		}
	}
	for _, n := range forwarding {
		if err := setSysctls(n, append(baseSysctls, forwardSysctls...)); err != nil {
			return err
		}
	}
	// Links: the router's LAN, then per WAN the router–ISP and ISP–internet links.
	lan := link{a: tb.Router, aDev: routerLANDev, b: tb.LAN, bDev: lanDev}
	lan.addrA = tb.familyPrefixes(netip.PrefixFrom(routerLAN4, lanPrefix4.Bits()), netip.PrefixFrom(routerLAN6, lanPrefix6.Bits()))
	lan.addrB = tb.familyPrefixes(netip.PrefixFrom(lanAddr4, lanPrefix4.Bits()), netip.PrefixFrom(lanAddr6, lanPrefix6.Bits()))
	if err := lan.create(); err != nil {
		return err
	}
	if err := addRoutes(tb.LAN, lanDev, tb.familyAddrs(routerLAN4, routerLAN6), 0); err != nil {
		return err
	}
	for i, w := range tb.WANs {
		p, _ := planWAN(i)
		// The WAN link's addresses and routes come from the ensure functions,
		// which Restore calls again.
		wl := link{a: tb.Router, aDev: w.Dev, b: w.ISP, bDev: ispCPEDev}
		if err := wl.create(); err != nil {
			return err
		}
		up := link{a: w.ISP, aDev: ispUpDev, b: tb.Internet, bDev: p.inetDev,
			addrA: tb.familyPrefixes(p.public4, p.public6), addrB: tb.familyPrefixes(p.inet4, p.inet6)}
		if err := up.create(); err != nil {
			return err
		}
		if err := addRoutes(w.ISP, ispUpDev, tb.familyAddrs(p.inet4.Addr(), p.inet6.Addr()), 0); err != nil {
			return err
		}
		if err := tb.ensureISP(i); err != nil {
			return err
		}
		if err := tb.ensureRouterWAN(i); err != nil {
			return err
		}
		if err := tb.setupISPTable(i); err != nil {
			return err
		}
	}
	// The internet host's public addresses live on its loopback.
	lo, err := tb.Internet.Handle().LinkByName("lo")
	if err != nil {
		return fmt.Errorf("lo in %s: %w", tb.Internet.Name, err)
	}
	for _, a := range tb.publicAddrs() {
		if err := tb.Internet.Handle().AddrAdd(lo, &netlink.Addr{IPNet: hostNet(a), Flags: unix.IFA_F_NODAD}); err != nil {
			return fmt.Errorf("address %s on lo in %s: %w", a, tb.Internet.Name, err)
		}
	}
	if err := tb.srv.startHTTP(HTTPPort); err != nil {
		return err
	}
	return tb.srv.ensureEcho(EchoPort, tb.familyAddrs(tb.Echo4, tb.Echo6))
}

// publicAddrs lists the internet host's loopback addresses of the families.
func (tb *Testbed) publicAddrs() []netip.Addr {
	var out []netip.Addr
	out = append(out, tb.Targets4...)
	out = append(out, tb.Targets6...)
	return append(out, tb.familyAddrs(tb.Echo4, tb.Echo6, tb.HTTP4, tb.HTTP6)...)
}

// familyPrefixes keeps the prefixes of the testbed's families.
func (tb *Testbed) familyPrefixes(ps ...netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if p.IsValid() && tb.Spec.Family.Has(familyOf(p.Addr())) {
			out = append(out, p)
		}
	}
	return out
}

// familyAddrs keeps the valid addresses of the testbed's families.
func (tb *Testbed) familyAddrs(as ...netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, a := range as {
		if a.IsValid() && tb.Spec.Family.Has(familyOf(a)) {
			out = append(out, a)
		}
	}
	return out
}

// ensureRouterWAN makes the router's side of WAN i as built: the device
// up with its addresses, and the default routes with the WAN's metric. It
// is what netifd does when the interface comes up.
func (tb *Testbed) ensureRouterWAN(i int) error {
	w := tb.WANs[i]
	if err := ensureLink(tb.Router, w.Dev, tb.familyPrefixes(w.Addr4, w.Addr6)); err != nil {
		return err
	}
	return replaceRoutes(tb.Router, w.Dev, tb.familyAddrs(w.Gateway4, w.Gateway6), w.Metric)
}

// ensureISP makes ISP i's end of the WAN link as built: up, with the
// gateway addresses and the routes to the LAN via the router (setting the
// device down, as CutCarrier does, removes them).
func (tb *Testbed) ensureISP(i int) error {
	w := tb.WANs[i]
	gw4, gw6 := netip.Prefix{}, netip.Prefix{}
	if w.Gateway4.IsValid() {
		gw4 = netip.PrefixFrom(w.Gateway4, w.Addr4.Bits())
	}
	if w.Gateway6.IsValid() {
		gw6 = netip.PrefixFrom(w.Gateway6, w.Addr6.Bits())
	}
	if err := ensureLink(w.ISP, ispCPEDev, tb.familyPrefixes(gw4, gw6)); err != nil {
		return err
	}
	for _, r := range []struct {
		dst netip.Prefix
		gw  netip.Addr
	}{{tb.LANPrefix4, w.Addr4.Addr()}, {tb.LANPrefix6, w.Addr6.Addr()}} {
		if !r.dst.IsValid() {
			continue
		}
		route := &netlink.Route{Dst: prefixNet(r.dst), Gw: r.gw.AsSlice()}
		if err := w.ISP.Handle().RouteReplace(route); err != nil {
			return fmt.Errorf("route %s via %s in %s: %w", r.dst, r.gw, w.ISP.Name, err)
		}
	}
	return nil
}

// ensureLink sets dev in n up and makes sure it has the addresses.
func ensureLink(n *NS, dev string, addrs []netip.Prefix) error {
	h := n.Handle()
	l, err := h.LinkByName(dev)
	if err != nil {
		return fmt.Errorf("%s in %s: %w", dev, n.Name, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up in %s: %w", dev, n.Name, err)
	}
	for _, p := range addrs {
		if err := h.AddrReplace(l, &netlink.Addr{IPNet: prefixNet(p), Flags: unix.IFA_F_NODAD}); err != nil {
			return fmt.Errorf("address %s on %s in %s: %w", p, dev, n.Name, err)
		}
	}
	return nil
}

// addRoutes adds a default route via each gateway on dev in n.
func addRoutes(n *NS, dev string, gws []netip.Addr, metric int) error {
	return defaultRoutes(n, dev, gws, metric, n.Handle().RouteAdd)
}

// replaceRoutes is addRoutes with replace semantics.
func replaceRoutes(n *NS, dev string, gws []netip.Addr, metric int) error {
	return defaultRoutes(n, dev, gws, metric, n.Handle().RouteReplace)
}

func defaultRoutes(n *NS, dev string, gws []netip.Addr, metric int, op func(*netlink.Route) error) error {
	l, err := n.Handle().LinkByName(dev)
	if err != nil {
		return fmt.Errorf("%s in %s: %w", dev, n.Name, err)
	}
	for _, gw := range gws {
		dst := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if gw.Is6() {
			dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
		r := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: prefixNet(dst), Gw: gw.AsSlice(), Priority: metric}
		if err := op(r); err != nil {
			return fmt.Errorf("default route via %s dev %s metric %d in %s: %w", gw, dev, metric, n.Name, err)
		}
	}
	return nil
}

// link is a veth pair between two namespaces with addresses on each end.
type link struct {
	a, b         *NS
	aDev, bDev   string
	addrA, addrB []netip.Prefix
}

// create makes the veth pair (the b end is created directly in b), adds the
// addresses without duplicate address detection and sets both ends up.
func (l link) create() error {
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: l.aDev},
		PeerName:      l.bDev,
		PeerNamespace: netlink.NsFd(l.b.NetNSFd()),
	}
	if err := l.a.Handle().LinkAdd(veth); err != nil {
		return fmt.Errorf("veth %s (%s) – %s (%s): %w", l.aDev, l.a.Name, l.bDev, l.b.Name, err)
	}
	if err := ensureLink(l.a, l.aDev, l.addrA); err != nil {
		return err
	}
	return ensureLink(l.b, l.bDev, l.addrB)
}

// baseSysctls are set in every namespace of a testbed: addresses usable at
// once (no DAD) and no reverse-path filter (policy routing sends replies
// back over any WAN). forwardSysctls turn a namespace into a router.
var (
	baseSysctls = []sysctl{
		{"net/ipv6/conf/all/accept_dad", "0"},
		{"net/ipv6/conf/default/accept_dad", "0"},
		{"net/ipv4/conf/all/rp_filter", "0"},
		{"net/ipv4/conf/default/rp_filter", "0"},
	}
	forwardSysctls = []sysctl{
		{"net/ipv4/ip_forward", "1"},
		{"net/ipv6/conf/all/forwarding", "1"},
		{"net/ipv6/conf/default/forwarding", "1"},
	}
)

type sysctl struct{ key, value string }

// setSysctls writes /proc/sys entries from inside n.
func setSysctls(n *NS, s []sysctl) error {
	return n.Do(func() error {
		var errs []error
		for _, kv := range s {
			p := filepath.Join("/proc/sys", kv.key)
			if err := os.WriteFile(p, []byte(kv.value), 0o644); err != nil {
				errs = append(errs, fmt.Errorf("sysctl %s=%s in %s: %w", strings.ReplaceAll(kv.key, "/", "."), kv.value, n.Name, err))
			}
		}
		return errors.Join(errs...)
	})
}

// WANBySource returns the index of the WAN whose public address is a: the
// source address the internet host saw.
func (tb *Testbed) WANBySource(a netip.Addr) (int, bool) {
	a = a.Unmap()
	for i, w := range tb.WANs {
		if a.IsValid() && (a == w.Public4 || a == w.Public6) {
			return i, true
		}
	}
	return -1, false
}

// wan returns WAN i or an error naming the valid range.
func (tb *Testbed) wan(i int) (*WAN, error) {
	if i < 0 || i >= len(tb.WANs) {
		return nil, fmt.Errorf("WAN index %d out of range 0..%d", i, len(tb.WANs)-1)
	}
	return &tb.WANs[i], nil
}

// Counters are the packets and bytes a WAN link carried, from the router's
// side: Tx towards the ISP, Rx from it. They are the router device's link
// statistics, so they include ARP and neighbour discovery.
type Counters struct {
	TxPackets, TxBytes uint64
	RxPackets, RxBytes uint64
}

// Counters reads the link statistics of WAN i's router device.
func (tb *Testbed) Counters(i int) (Counters, error) {
	w, err := tb.wan(i)
	if err != nil {
		return Counters{}, err
	}
	l, err := tb.Router.Handle().LinkByName(w.Dev)
	if err != nil {
		return Counters{}, fmt.Errorf("counters of %s: %w", w.Dev, err)
	}
	s := l.Attrs().Statistics
	if s == nil {
		return Counters{}, fmt.Errorf("counters of %s: no statistics in the link message", w.Dev)
	}
	return Counters{TxPackets: s.TxPackets, TxBytes: s.TxBytes, RxPackets: s.RxPackets, RxBytes: s.RxBytes}, nil
}

// hostPort joins an address and a port for net.Dial.
func hostPort(a netip.Addr, port int) string {
	return net.JoinHostPort(a.String(), fmt.Sprint(port))
}
