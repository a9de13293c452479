package e2e

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/internal/bed"
	"github.com/mwan3d/mwan3d/internal/testbed"
)

// sticky: the rule sticky (balanced, timeout 600) keeps the client's new
// connections on the WAN of its first one; when that WAN dies they move
// to the other, and stay there when it comes back (the entry is younger
// than the timeout).
func sticky(t *testing.T, b *bed.Bed) {
	tb := b.TB
	first := tcp(t, tb, tb.LAN, 1, testbed.IPv4, portSticky)[0]
	if first < 0 {
		t.Fatal("the first sticky connection failed")
	}
	other := 1 - first
	expectOn(t, "sticky connections", tcp(t, tb, tb.LAN, 30, testbed.IPv4, portSticky), 2, first)

	name := tb.WANs[first].Name
	if err := tb.CutUpstream(first); err != nil {
		t.Fatal(err)
	}
	restoreAtEnd(t, b, first, name)
	waitStatus(t, b, "offline", name)
	waitPolicy(t, b, "ipv4", "balanced", tb.WANs[other].Name)
	expectOn(t, "sticky connections while "+name+" is offline", tcp(t, tb, tb.LAN, 30, testbed.IPv4, portSticky), 2, other)

	if err := tb.Restore(first); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, b, "online", name)
	waitPolicy(t, b, "ipv4", "balanced", "wan", "wanb")
	expectOn(t, "sticky connections after "+name+" is back", tcp(t, tb, tb.LAN, 30, testbed.IPv4, portSticky), 2, other)
}

// lastResort: the policies lr_unreach, lr_black and lr_default have wanb
// as their only member; with wanb offline their last_resort decides.
func lastResort(t *testing.T, b *bed.Bed) {
	tb := b.TB
	dst := func(port int) netip.AddrPort { return netip.AddrPortFrom(tb.Echo4, uint16(port)) }
	lan := dialer{tb: tb, ns: tb.LAN}
	serveEcho(t, tb, portLRUnreach, portLRBlack, portLRDefault)
	for _, port := range []int{portLRUnreach, portLRBlack, portLRDefault} {
		expectOn(t, "while wanb is online", lan.flows(t, dst(port), 5), 2, wanB)
	}
	if err := tb.CutUpstream(wanB); err != nil {
		t.Fatal(err)
	}
	restoreAtEnd(t, b, wanB, "wanb")
	waitStatus(t, b, "offline", "wanb")
	for _, p := range []string{"lr_unreach", "lr_black", "lr_default"} {
		waitPolicy(t, b, "ipv4", p)
	}

	t.Run("unreachable", func(t *testing.T) {
		// The router answers with an ICMP unreachable: the connect fails
		// at once with its error, not after the timeout.
		start := time.Now()
		_, err := lan.flow(dst(portLRUnreach), flowTimeout)
		took := time.Since(start)
		if !errors.Is(err, syscall.EHOSTUNREACH) && !errors.Is(err, syscall.ENETUNREACH) {
			t.Errorf("connect: %v, want EHOSTUNREACH or ENETUNREACH", err)
		}
		t.Logf("unreachable: %v after %v", err, took.Round(time.Millisecond))
	})
	t.Run("blackhole", func(t *testing.T) {
		_, err := lan.flow(dst(portLRBlack), time.Second)
		if !isTimeout(err) {
			t.Errorf("connect: %v, want a timeout (no answer at all)", err)
		}
	})
	t.Run("default", func(t *testing.T) {
		expectOn(t, "last_resort default (main table: metric 10 via wan)", lan.flows(t, dst(portLRDefault), 10), 2, wanA)
	})
}
