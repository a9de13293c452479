package e2e

import (
	"net/netip"
	"testing"

	"github.com/mwan3d/mwan3d/internal/bed"
	"github.com/mwan3d/mwan3d/internal/testbed"
)

// Ports of the rules in testdata/two_wan.conf.
const (
	portWeighted  = 7100
	portFailover  = 7101
	portByPort    = 7102
	portSticky    = 7104
	portLRUnreach = 7105
	portLRBlack   = 7106
	portLRDefault = 7107
)

// WAN indexes of the two-WAN testbed.
const (
	wanA = 0 // "wan"
	wanB = 1 // "wanb"
)

// TestTwoWANs runs the IPv4 scenarios on one two-WAN bed: one daemon, one
// configuration (testdata/two_wan.conf) with a rule per scenario. The
// subtests run in order; each leaves the bed as it found it.
func TestTwoWANs(t *testing.T) {
	t.Parallel()
	b := startBed(t, bed.Options{WANs: 2}, "two_wan.conf", "wan", "wanb")
	t.Run("weighted", func(t *testing.T) { weighted(t, b) })
	t.Run("rules", func(t *testing.T) { rules(t, b) })
	t.Run("router", func(t *testing.T) { routerOriginated(t, b) })
	t.Run("sticky", func(t *testing.T) { sticky(t, b) })
	t.Run("last_resort", func(t *testing.T) { lastResort(t, b) })
	f := failover{primary: wanA, backup: wanB, policy: "wan_wanb", port: portFailover, families: []testbed.Family{testbed.IPv4}}
	t.Run("failover by tracker", func(t *testing.T) { failoverTracker(t, b, f) })
	t.Run("failover by carrier", func(t *testing.T) { failoverCarrier(t, b, f) })
	t.Run("reload under load", func(t *testing.T) { reloadUnderLoad(t, b) })
	t.Run("flapping storm", func(t *testing.T) { flappingStorm(t, b) })
}

// weighted: a 3:2 policy gives wan 60 % of 3000 new connections, ± 4 %
// (see shareTolerance).
func weighted(t *testing.T, b *bed.Bed) {
	checkShares(t, "3:2", tcp(t, b.TB, b.TB.LAN, shareFlows, testbed.IPv4, portWeighted), []float64{0.6, 0.4})
}

// rules: each rule kind sends matching connections to its policy while
// the others stay balanced.
func rules(t *testing.T, b *bed.Bed) {
	tb := b.TB
	echo := func(port int) netip.AddrPort { return netip.AddrPortFrom(tb.Echo4, uint16(port)) }
	inet := func(last byte) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, last}), uint16(tb.EchoPort))
	}
	lan := dialer{tb: tb, ns: tb.LAN}

	// The control: what matches no specific rule is balanced.
	expectOn(t, "TCP to the echo port (default_rule_v4, balanced)", tcp(t, tb, tb.LAN, 40, testbed.IPv4, 0), 2, wanA, wanB)

	t.Run("dest_port", func(t *testing.T) {
		expectOn(t, "TCP to port 7102 (wanb_only)", tcp(t, tb, tb.LAN, 20, testbed.IPv4, portByPort), 2, wanB)
	})
	t.Run("proto", func(t *testing.T) {
		expectOn(t, "UDP to the echo port (by_proto: udp → wanb_only)", udp(t, tb, tb.LAN, 20, testbed.IPv4, 0), 2, wanB)
	})
	t.Run("src_ip", func(t *testing.T) {
		second := netip.MustParseAddr("192.168.1.101")
		if _, err := tb.LAN.Run(t.Context(), "ip", "address", "add", second.String()+"/24", "dev", tb.LANClientDev, "nodad"); err != nil {
			t.Fatal(err)
		}
		atEnd(t, tb.LAN, "ip", "address", "del", second.String()+"/24", "dev", tb.LANClientDev)
		from := dialer{tb: tb, ns: tb.LAN, src: second}
		expectOn(t, "from 192.168.1.101 (by_src: wanb_only)", from.flows(t, echo(tb.EchoPort), 20), 2, wanB)
		expectOn(t, "from 192.168.1.100 (balanced)", lan.flows(t, echo(tb.EchoPort), 40), 2, wanA, wanB)
	})
	t.Run("dest_ip list", func(t *testing.T) {
		for _, last := range []byte{1, 2} {
			expectOn(t, inet(last).String()+" (by_dst: wan_only)", lan.flows(t, inet(last), 20), 2, wanA)
		}
	})
	t.Run("ipset", func(t *testing.T) {
		dst := inet(3)
		expectOn(t, dst.String()+" before it is in e2e_dst (balanced)", lan.flows(t, dst, 40), 2, wanA, wanB)
		run(t, b, "nft", "add", "element", "inet", "mwan3", "e2e_dst", "{ 198.51.100.3 }")
		atEnd(t, tb.Router, "nft", "delete", "element", "inet", "mwan3", "e2e_dst", "{ 198.51.100.3 }")
		expectOn(t, dst.String()+" in e2e_dst (by_ipset: wanb_only)", lan.flows(t, dst, 20), 2, wanB)
	})
	t.Run("use_policy default", func(t *testing.T) {
		dst := inet(4)
		expectOn(t, dst.String()+" (by_default: main table, metric 10 via wan)", lan.flows(t, dst, 20), 2, wanA)
		// The main table decides: prefer wanb there and the rule follows.
		gw := tb.WANs[wanB].Gateway4.String()
		run(t, b, "ip", "route", "add", "default", "via", gw, "dev", tb.WANs[wanB].Dev, "metric", "5")
		atEnd(t, tb.Router, "ip", "route", "del", "default", "via", gw, "dev", tb.WANs[wanB].Dev, "metric", "5")
		expectOn(t, dst.String()+" (by_default: main table, metric 5 via wanb)", lan.flows(t, dst, 20), 2, wanB)
	})
}

// routerOriginated: the router's own connections follow the rules too.
// The router picks their source address from the main table (wan's,
// metric 10) before the mark routes them, so those that leave by wanb
// need the router's masquerade, as on OpenWrt (fw4's wan zone): without
// it wanb's ISP cannot route the answers back. The test adds it for its
// duration.
func routerOriginated(t *testing.T, b *bed.Bed) {
	tb := b.TB
	masquerade(t, b)
	expectOn(t, "router TCP to port 7102 (wanb_only)", tcp(t, tb, tb.Router, 20, testbed.IPv4, portByPort), 2, wanB)
	expectOn(t, "router TCP to the echo port (balanced)", tcp(t, tb, tb.Router, 40, testbed.IPv4, 0), 2, wanA, wanB)
	expectOn(t, "router UDP to the echo port (by_proto: wanb_only)", udp(t, tb, tb.Router, 20, testbed.IPv4, 0), 2, wanB)
	router := dialer{tb: tb, ns: tb.Router}
	dst := netip.AddrPortFrom(netip.MustParseAddr("198.51.100.1"), uint16(tb.EchoPort))
	expectOn(t, "router TCP to "+dst.String()+" (by_dst: wan_only)", router.flows(t, dst, 20), 2, wanA)
}
