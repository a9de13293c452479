package e2e

import (
	"testing"

	"github.com/mwan3d/mwan3d/internal/bed"
	"github.com/mwan3d/mwan3d/internal/testbed"
)

// TestDualStack: balancing and failover for IPv6 next to IPv4, on two
// WANs that each carry an IPv4 and an IPv6 interface
// (testdata/dual_stack.conf). The ISPs route the LAN's IPv6 prefix to
// the router and masquerade towards the internet host, so the router
// forwards IPv6 without NAT.
func TestDualStack(t *testing.T) {
	t.Parallel()
	b := startBed(t, bed.Options{WANs: 2, Family: testbed.Dual}, "dual_stack.conf", "wan", "wanb", "wan6", "wanb6")
	t.Run("weighted IPv6", func(t *testing.T) {
		checkShares(t, "IPv6 3:2", tcp(t, b.TB, b.TB.LAN, shareFlows, testbed.IPv6, 0), []float64{0.6, 0.4})
	})
	t.Run("both families", func(t *testing.T) {
		expectOn(t, "IPv4 TCP", tcp(t, b.TB, b.TB.LAN, 40, testbed.IPv4, 0), 2, wanA, wanB)
		expectOn(t, "IPv6 UDP", udp(t, b.TB, b.TB.LAN, 40, testbed.IPv6, 0), 2, wanA, wanB)
	})
	t.Run("router", func(t *testing.T) {
		// As on the IPv4 bed, the router's own connections that leave by
		// the WAN their source address is not of need its masquerade.
		masquerade(t, b)
		expectOn(t, "router IPv6 TCP", tcp(t, b.TB, b.TB.Router, 40, testbed.IPv6, 0), 2, wanA, wanB)
		expectOn(t, "router IPv6 TCP to the failover port (wan6 first)", tcp(t, b.TB, b.TB.Router, 20, testbed.IPv6, 7101), 2, wanA)
	})
	f := failover{primary: wanA, backup: wanB, policy: "wan_wanb", port: 7101, families: []testbed.Family{testbed.IPv4, testbed.IPv6}}
	t.Run("failover by tracker", func(t *testing.T) { failoverTracker(t, b, f) })
}
