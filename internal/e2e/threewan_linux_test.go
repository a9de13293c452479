package e2e

import (
	"context"
	"testing"

	"github.com/mwan3d/mwan3d/internal/bed"
	"github.com/mwan3d/mwan3d/internal/testbed"
)

// TestThreeWANs: equal balancing over three WANs and tiers
// (testdata/three_wan.conf).
func TestThreeWANs(t *testing.T) {
	t.Parallel()
	b := startBed(t, bed.Options{WANs: 3}, "three_wan.conf", "wan", "wanb", "wanc")
	t.Run("balanced 1:1:1", func(t *testing.T) {
		checkShares(t, "1:1:1", tcp(t, b.TB, b.TB.LAN, shareFlows, testbed.IPv4, 0), []float64{1.0 / 3, 1.0 / 3, 1.0 / 3})
	})
	t.Run("tiers", func(t *testing.T) { tiers(t, b) })
}

// tiers: policy tiers has wan at metric 1, wanb and wanc at metric 2.
// While wan is up it carries everything; when netifd takes it down, the
// metric-2 members share the traffic; with wanb down too, wanc carries it
// alone; once both are back, wan takes everything again.
func tiers(t *testing.T, b *bed.Bed) {
	const port = 7101
	tb := b.TB
	flows := func() []int { return tcp(t, tb, tb.LAN, 40, testbed.IPv4, port) }
	expectOn(t, "all up", flows(), 3, 0)
	t.Cleanup(func() {
		for _, name := range []string{"wan", "wanb"} {
			if err := b.Netifd.Up(context.Background(), name); err != nil {
				t.Error(err)
			}
		}
	})
	if err := b.Netifd.Down(t.Context(), "wan"); err != nil {
		t.Fatal(err)
	}
	waitPolicy(t, b, "ipv4", "tiers", "wanb", "wanc")
	expectOn(t, "wan down", flows(), 3, 1, 2)
	if err := b.Netifd.Down(t.Context(), "wanb"); err != nil {
		t.Fatal(err)
	}
	waitPolicy(t, b, "ipv4", "tiers", "wanc")
	expectOn(t, "wan and wanb down", flows(), 3, 2)
	for _, name := range []string{"wan", "wanb"} {
		if err := b.Netifd.Up(t.Context(), name); err != nil {
			t.Fatal(err)
		}
	}
	waitStatus(t, b, "online", "wan", "wanb")
	waitPolicy(t, b, "ipv4", "tiers", "wan")
	expectOn(t, "all up again", flows(), 3, 0)
}
