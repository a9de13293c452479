//go:build linux

package nft

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/internal/testbed"
)

// These tests apply plans in the router namespace of a testbed and send
// real traffic from the LAN client; the internet host's echo server tells
// which WAN carried each connection. The ip rules and tables that rtsync
// will own are set up here by hand (spec §3.4, §3.5).

// tIface maps an mwan3 interface of the test config to a testbed WAN.
type tIface struct {
	name string
	id   int
	fam  Family
	wan  int
}

// setupRouting adds the per-interface tables and ip rules, and the global
// blackhole/unreachable rules, in the router namespace.
func setupRouting(t *testing.T, tb *testbed.Testbed, mask Mask, ifaces []tIface) {
	t.Helper()
	var cmds [][]string
	for _, f := range []Family{IPv4, IPv6} {
		opt := "-4"
		if f == IPv6 {
			opt = "-6"
		}
		used := false
		for _, ifc := range ifaces {
			if ifc.fam != f {
				continue
			}
			used = true
			w := tb.WANs[ifc.wan]
			tab := strconv.Itoa(ifc.id)
			mark := fmt.Sprintf("%#x/%#x", mask.Mark(uint32(ifc.id)), uint32(mask))
			addr, gw, lan := w.Addr4, w.Gateway4, tb.LANPrefix4
			if f == IPv6 {
				addr, gw, lan = w.Addr6, w.Gateway6, tb.LANPrefix6
			}
			cmds = append(cmds,
				[]string{opt, "route", "add", addr.Masked().String(), "dev", w.Dev, "table", tab},
				[]string{opt, "route", "add", lan.String(), "dev", tb.LANDev, "table", tab},
				[]string{opt, "route", "add", "default", "via", gw.String(), "dev", w.Dev, "table", tab},
				[]string{opt, "rule", "add", "pref", strconv.Itoa(1000 + ifc.id), "iif", w.Dev, "lookup", tab},
				[]string{opt, "rule", "add", "pref", strconv.Itoa(2000 + ifc.id), "fwmark", mark, "lookup", tab},
				[]string{opt, "rule", "add", "pref", strconv.Itoa(3000 + ifc.id), "fwmark", mark, "unreachable"},
			)
		}
		if used {
			all := mask.Value(uint32(mask))
			cmds = append(cmds,
				[]string{opt, "rule", "add", "pref", strconv.Itoa(2000 + int(all-2)), "fwmark", fmt.Sprintf("%#x/%#x", mask.BlackholeMark(), uint32(mask)), "blackhole"},
				[]string{opt, "rule", "add", "pref", strconv.Itoa(2000 + int(all-1)), "fwmark", fmt.Sprintf("%#x/%#x", mask.UnreachableMark(), uint32(mask)), "unreachable"},
			)
		}
	}
	for _, c := range cmds {
		if _, err := tb.Router.Run(t.Context(), "ip", c...); err != nil {
			t.Fatal(err)
		}
	}
}

// connected lists the router's connected networks (what the route monitor
// would put into the connected sets).
func connected(tb *testbed.Testbed) []netip.Prefix {
	out := pfx("127.0.0.0/8", "224.0.0.0/3", "fe80::/64")
	for _, p := range []netip.Prefix{tb.LANPrefix4, tb.LANPrefix6} {
		if p.IsValid() {
			out = append(out, p)
		}
	}
	for _, w := range tb.WANs {
		for _, p := range []netip.Prefix{w.Addr4, w.Addr6} {
			if p.IsValid() {
				out = append(out, p.Masked())
			}
		}
	}
	return out
}

// trafficBed is a testbed with an Applier in its router namespace.
type trafficBed struct {
	t  *testing.T
	tb *testbed.Testbed
	a  *Applier
}

func (b *trafficBed) apply(in *Input) *Plan {
	b.t.Helper()
	p := renderOK(b.t, in)
	if err := b.a.Apply(p); err != nil {
		b.t.Fatal(err)
	}
	return p
}

// flows opens n TCP connections from the LAN client to the echo server on
// port and returns how many each WAN carried (index len(WANs): failed).
func (b *trafficBed) flows(n int, fam testbed.Family, port int) []int {
	b.t.Helper()
	res, err := b.tb.TCPFlows(b.tb.LAN, n, fam, port)
	if err != nil {
		b.t.Fatal(err)
	}
	count := make([]int, len(b.tb.WANs)+1)
	for _, w := range res {
		if w < 0 {
			w = len(b.tb.WANs)
		}
		count[w]++
	}
	return count
}

// allVia checks that n flows all used WAN want.
func (b *trafficBed) allVia(n int, fam testbed.Family, port, want int) {
	b.t.Helper()
	count := b.flows(n, fam, port)
	if count[want] != n {
		b.t.Errorf("%d flows to port %d: per WAN (last = failed) %v, want all on WAN %d", n, port, count, want)
	}
}

func newTrafficBed(t *testing.T, spec testbed.Spec, mask Mask, ifaces []tIface) *trafficBed {
	tb := testbed.New(t, spec)
	setupRouting(t, tb, mask, ifaces)
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	return &trafficBed{t: t, tb: tb, a: NewApplier(WithNetNS(tb.Router.NetNSFd()), WithLogger(log))}
}

// Ports of the IPv4 traffic config.
const (
	portHTTPS       = 443
	portUnreachable = 7001
	portBlackhole   = 7002
	portDefault     = 7003
	portSticky      = 7004
	portIpset       = 7005
	portForeign     = 7006
)

// trafficInput is the config of the IPv4 traffic tests: wan and wanb
// balanced 3:2 at metric 1, wanc at metric 2.
func trafficInput(tb *testbed.Testbed) *Input {
	in := &Input{Mask: DefaultMask, Connected: connected(tb)}
	for i, w := range tb.WANs {
		in.Interfaces = append(in.Interfaces, Interface{Name: w.Name, ID: i + 1, Family: IPv4, Enabled: true, Online: true, Device: w.Dev})
	}
	only := func(i int) Policy {
		return Policy{Name: tb.WANs[i].Name + "_only", Members: []Member{{Name: tb.WANs[i].Name + "_m1", Interface: tb.WANs[i].Name, Metric: 1, Weight: 1}}}
	}
	in.Policies = []Policy{
		{Name: "balanced", Members: []Member{
			{Name: "wan_m1_w3", Interface: "wan", Metric: 1, Weight: 3},
			{Name: "wanb_m1_w2", Interface: "wanb", Metric: 1, Weight: 2},
			{Name: "wanc_m2_w1", Interface: "wanc", Metric: 2, Weight: 1},
		}},
		only(1), only(2),
	}
	port := func(p int) []PortRange { return []PortRange{{uint16(p), uint16(p)}} }
	in.Rules = []UserRule{
		{Name: "https", Proto: "tcp", DestPort: port(portHTTPS), UsePolicy: "wanb_only"},
		{Name: "unreach", Proto: "tcp", DestPort: port(portUnreachable), UsePolicy: "unreachable"},
		{Name: "black", Proto: "tcp", DestPort: port(portBlackhole), UsePolicy: "blackhole"},
		{Name: "main", Proto: "tcp", DestPort: port(portDefault), UsePolicy: "default"},
		{Name: "sticky", Proto: "tcp", DestPort: port(portSticky), Sticky: true, UsePolicy: "balanced"},
		{Name: "pinned", Proto: "tcp", DestPort: port(portIpset), Ipset: "pinned", UsePolicy: "wanc_only"},
		{Name: "foreign", Proto: "tcp", DestPort: port(portForeign), UsePolicy: "wanb_only"},
		{Name: "default_rule", UsePolicy: "balanced"},
	}
	return in
}

func TestTrafficIPv4(t *testing.T) {
	spec := testbed.Spec{WANs: 3, Family: testbed.IPv4}
	b := newTrafficBed(t, spec, DefaultMask, []tIface{{"wan", 1, IPv4, 0}, {"wanb", 2, IPv4, 1}, {"wanc", 3, IPv4, 2}})
	b.apply(trafficInput(b.tb))

	t.Run("port 443 via wanb", func(t *testing.T) {
		b.allVia(50, testbed.IPv4, portHTTPS, 1)
	})

	t.Run("weights 3:2", func(t *testing.T) {
		const n = 2000
		count := b.flows(n, testbed.IPv4, 0)
		share := float64(count[0]) / n
		t.Logf("per WAN (last = failed): %v, wan share %.3f", count, share)
		if count[0]+count[1] != n || share < 0.55 || share > 0.65 {
			t.Errorf("per WAN %v: want only wan and wanb, wan at 60±5%%", count)
		}
	})

	t.Run("tier 2 takes over", func(t *testing.T) {
		in := trafficInput(b.tb)
		in.Interfaces[0].Online, in.Interfaces[1].Online = false, false
		b.apply(in)
		b.allVia(50, testbed.IPv4, 0, 2)
		in.Interfaces[1].Online = true // wanb back: tier 1 again
		b.apply(in)
		b.allVia(50, testbed.IPv4, 0, 1)
		b.apply(trafficInput(b.tb))
	})

	t.Run("unreachable blackhole default", func(t *testing.T) {
		dial := func(port int) error {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			c, err := b.tb.LAN.Dial(ctx, "tcp", netip.AddrPortFrom(b.tb.Echo4, uint16(port)).String())
			if err == nil {
				c.Close()
			}
			return err
		}
		if err := dial(portUnreachable); !errors.Is(err, syscall.ENETUNREACH) && !errors.Is(err, syscall.EHOSTUNREACH) {
			t.Errorf("connect to the unreachable port: %v, want an ICMP unreachable error", err)
		}
		var ne net.Error
		if err := dial(portBlackhole); !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("connect to the blackhole port: %v, want a timeout (silent drop)", err)
		}
		// The main table's best default route is wan's (metric 10).
		b.allVia(30, testbed.IPv4, portDefault, 0)
	})

	t.Run("established connection keeps its WAN", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		c, err := b.tb.LAN.Dial(ctx, "tcp", netip.AddrPortFrom(b.tb.Echo4, testbed.EchoPort).String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(c)
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		first := wanOf(t, b.tb, line)
		// New connections now go elsewhere; the old one must keep its WAN.
		in := trafficInput(b.tb)
		in.Rules[len(in.Rules)-1].UsePolicy = "wanc_only"
		b.apply(in)
		b.allVia(20, testbed.IPv4, 0, 2)
		if _, err := c.Write([]byte("still here\n")); err != nil {
			t.Fatal(err)
		}
		if echo, err := r.ReadString('\n'); err != nil || echo != "still here\n" {
			t.Fatalf("connection on WAN %d broke after the re-apply: %q, %v", first, echo, err)
		}
		b.apply(trafficInput(b.tb))
	})

	t.Run("sticky keeps and moves", func(t *testing.T) {
		first := b.flows(1, testbed.IPv4, portSticky)
		sticky := indexOf(first)
		if sticky != 0 && sticky != 1 {
			t.Fatalf("first sticky flow on %v", first)
		}
		b.allVia(40, testbed.IPv4, portSticky, sticky)
		// A re-apply (with an unrelated change) keeps the sticky entry.
		in := trafficInput(b.tb)
		in.Connected = append(in.Connected, pfx("100.64.0.0/10")...)
		b.apply(in)
		b.allVia(40, testbed.IPv4, portSticky, sticky)
		// Its WAN goes offline: the client moves to the other tier-1 WAN
		// and sticks there, also after the first WAN is back.
		other := 1 - sticky
		in.Interfaces[sticky].Online = false
		b.apply(in)
		b.allVia(40, testbed.IPv4, portSticky, other)
		in.Interfaces[sticky].Online = true
		b.apply(in)
		b.allVia(40, testbed.IPv4, portSticky, other)
	})

	t.Run("ipset elements survive", func(t *testing.T) {
		if _, err := b.tb.Router.Run(t.Context(), "nft", "add", "element", "inet", TableName, "pinned", "{ "+b.tb.Echo4.String()+" }"); err != nil {
			t.Fatal(err)
		}
		b.allVia(20, testbed.IPv4, portIpset, 2)
		in := trafficInput(b.tb)
		in.Interfaces[0].Online = false
		b.apply(in)
		b.allVia(20, testbed.IPv4, portIpset, 2)
		b.apply(trafficInput(b.tb))
		b.allVia(20, testbed.IPv4, portIpset, 2)
	})

	// Another table sets bits outside the mask on the packet and
	// conntrack marks before mwan3's hook. Both survive: out via wanb
	// (mwan3 bits 0x200) and back to the LAN, where the destination is
	// connected and the packet gets the default mark for routing (legacy
	// step 6) while the conntrack mark keeps wanb.
	t.Run("foreign mark bits survive", func(t *testing.T) {
		foreign := fmt.Sprintf(`table inet foreign {
	chain pre {
		type filter hook prerouting priority mangle; policy accept;
		ip saddr %[1]s tcp dport %[2]d meta mark set meta mark | 0x10000 ct mark set ct mark | 0x20000
		ip saddr %[3]s tcp sport %[2]d meta mark set meta mark | 0x10000
	}
	chain post {
		type filter hook postrouting priority filter; policy accept;
		oifname "%[4]s" tcp dport %[2]d meta mark & 0x00013f00 == 0x00010200 ct mark & 0x00023f00 == 0x00020200 counter
		oifname "%[5]s" tcp sport %[2]d meta mark & 0x00013f00 == 0x00013f00 ct mark & 0x00023f00 == 0x00020200 counter
	}
}
`, b.tb.LANAddr4, portForeign, b.tb.Echo4, b.tb.WANs[1].Dev, b.tb.LANDev)
		path := filepath.Join(t.TempDir(), "foreign.nft")
		if err := os.WriteFile(path, []byte(foreign), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := b.tb.Router.Run(t.Context(), "nft", "-f", path); err != nil {
			t.Fatal(err)
		}
		b.allVia(10, testbed.IPv4, portForeign, 1)
		out, err := b.tb.Router.Run(t.Context(), "nft", "list", "chain", "inet", "foreign", "post")
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`counter packets (\d+)`).FindAllStringSubmatch(out, -1)
		if len(m) != 2 || m[0][1] == "0" || m[1][1] == "0" {
			t.Errorf("packets with foreign and mwan3 bits intact, out and back:\n%s", out)
		}
	})

	t.Run("invalid plan keeps the ruleset", func(t *testing.T) {
		// -s: without counter values and sticky expiry times, which move.
		before, err := b.tb.Router.Run(t.Context(), "nft", "-s", "list", "ruleset")
		if err != nil {
			t.Fatal(err)
		}
		bad := renderOK(t, trafficInput(b.tb))
		bad.Table.Chains[0].Rules = append(bad.Table.Chains[0].Rules, Rule{Exprs: []Expr{Verdict{Kind: Jump, Chain: "missing"}}})
		if err := b.a.Apply(bad); err == nil {
			t.Fatal("invalid plan applied")
		}
		after, err := b.tb.Router.Run(t.Context(), "nft", "-s", "list", "ruleset")
		if err != nil {
			t.Fatal(err)
		}
		if before != after {
			t.Errorf("table changed:\n%s", lineDiff(before, after))
		}
		b.allVia(20, testbed.IPv4, portHTTPS, 1)
	})
}

// TestTrafficDualStack runs the default config's shape on a dual-stack
// testbed: IPv6 follows its own members and neighbour discovery keeps
// working.
func TestTrafficDualStack(t *testing.T) {
	spec := testbed.Spec{WANs: 2, Family: testbed.Dual}
	ifaces := []tIface{{"wan", 1, IPv4, 0}, {"wan6", 2, IPv6, 0}, {"wanb", 3, IPv4, 1}, {"wanb6", 4, IPv6, 1}}
	b := newTrafficBed(t, spec, DefaultMask, ifaces)
	in := &Input{Mask: DefaultMask, Connected: connected(b.tb)}
	for _, ifc := range ifaces {
		in.Interfaces = append(in.Interfaces, Interface{Name: ifc.name, ID: ifc.id, Family: ifc.fam, Enabled: true, Online: true, Device: b.tb.WANs[ifc.wan].Dev})
	}
	in.Policies = []Policy{
		{Name: "balanced", Members: []Member{m("wan_m1_w3"), m("wanb_m1_w3"), m("wan6_m1_w3"), m("wanb6_m1_w3")}},
		{Name: "wanb_only", Members: []Member{m("wanb_m1_w2"), m("wanb6_m1_w2")}},
	}
	in.Rules = []UserRule{
		{Name: "https", Proto: "tcp", DestPort: []PortRange{{443, 443}}, UsePolicy: "wanb_only"},
		{Name: "default_rule", UsePolicy: "balanced"},
	}
	b.apply(in)
	b.allVia(30, testbed.IPv6, 443, 1)
	b.allVia(30, testbed.IPv4, 443, 1)
	for _, fam := range []testbed.Family{testbed.IPv4, testbed.IPv6} {
		count := b.flows(60, fam, 0)
		if count[0] == 0 || count[1] == 0 || count[2] != 0 {
			t.Errorf("%v balanced flows per WAN (last = failed): %v, want both WANs used", fam, count)
		}
	}
	// wanb6 offline: IPv6 port 443 falls to wanb_only's last resort
	// (unreachable) while IPv4 keeps using wanb.
	in.Interfaces[3].Online = false
	b.apply(in)
	b.allVia(10, testbed.IPv4, 443, 1)
	if count := b.flows(5, testbed.IPv6, 443); count[2] != 5 {
		t.Errorf("IPv6 port 443 with wanb6 offline: %v, want all failing (unreachable)", count)
	}
}

func indexOf(count []int) int {
	for i, c := range count {
		if c > 0 {
			return i
		}
	}
	return -1
}

// wanOf maps an echo server's source line to a WAN index.
func wanOf(t *testing.T, tb *testbed.Testbed, line string) int {
	t.Helper()
	ap, err := netip.ParseAddrPort(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("echo line %q: %v", line, err)
	}
	i, ok := tb.WANBySource(ap.Addr())
	if !ok {
		t.Fatalf("echo line %q: unknown source", line)
	}
	return i
}
