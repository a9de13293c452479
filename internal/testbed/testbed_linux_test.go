//go:build linux

package testbed

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// allEqual reports whether every element of got is want.
func allEqual(got []int, want int) bool {
	return len(got) > 0 && !slices.ContainsFunc(got, func(v int) bool { return v != want })
}

// checkFlows asserts that TCP and UDP flows of each family from n all take
// WAN want (-1: all fail).
func checkFlows(t *testing.T, tb *Testbed, from *NS, count, want int) {
	t.Helper()
	for _, f := range []Family{IPv4, IPv6} {
		if !tb.Spec.Family.Has(f) {
			continue
		}
		for _, proto := range []struct {
			name string
			run  func(*NS, int, Family, int) ([]int, error)
		}{{"tcp", tb.TCPFlows}, {"udp", tb.UDPFlows}} {
			got, err := proto.run(from, count, f, 0)
			if err != nil {
				t.Fatalf("%s %v flows: %v", proto.name, f, err)
			}
			if !allEqual(got, want) {
				t.Errorf("%s %v flows from %s took WANs %v, want all %d", proto.name, f, from.Name, got, want)
			}
		}
	}
}

// hasCarrier reports whether dev in n has its lower layer up.
func hasCarrier(t *testing.T, n *NS, dev string) bool {
	t.Helper()
	l, err := n.Handle().LinkByName(dev)
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().RawFlags&unix.IFF_LOWER_UP != 0
}

// delDefaultRoutes removes WAN i's default routes from the router's main table.
func delDefaultRoutes(t *testing.T, tb *Testbed, i int) {
	t.Helper()
	w := tb.WANs[i]
	l, err := tb.Router.Handle().LinkByName(w.Dev)
	if err != nil {
		t.Fatal(err)
	}
	for _, gw := range tb.familyAddrs(w.Gateway4, w.Gateway6) {
		bits := gw.BitLen()
		r := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: prefixNet(netip.PrefixFrom(netip.IPv6Unspecified(), 0)),
			Gw: gw.AsSlice(), Priority: w.Metric}
		if bits == 32 {
			r.Dst = prefixNet(netip.PrefixFrom(netip.IPv4Unspecified(), 0))
		}
		if err := tb.Router.Handle().RouteDel(r); err != nil {
			t.Fatalf("delete default route via %s: %v", gw, err)
		}
	}
}

func TestLowestMetricWANCarrierAndRouteChange(t *testing.T) {
	tb := New(t, Spec{WANs: 3, Family: Dual, FlowTimeout: 300 * time.Millisecond})
	for i, w := range tb.WANs {
		want := fmt.Sprintf("wan%s eth%d metric %d", strings.TrimPrefix(w.Name, "wan"), i+1, 10*(i+1))
		if got := fmt.Sprintf("%s %s metric %d", w.Name, w.Dev, w.Metric); got != want {
			t.Errorf("WAN %d = %q, want %q", i, got, want)
		}
	}
	before, err := tb.Counters(0)
	if err != nil {
		t.Fatal(err)
	}
	checkFlows(t, tb, tb.LAN, 8, 0)
	checkFlows(t, tb, tb.Router, 4, 0)
	after, err := tb.Counters(0)
	if err != nil {
		t.Fatal(err)
	}
	if after.TxPackets <= before.TxPackets || after.RxBytes <= before.RxBytes {
		t.Errorf("WAN 0 counters did not grow with its traffic: %+v then %+v", before, after)
	}

	// The HTTP server reports the source address too.
	client := &http.Client{Transport: &http.Transport{DialContext: tb.LAN.Dial}, Timeout: 5 * time.Second}
	for _, a := range []netip.Addr{tb.HTTP4, tb.HTTP6} {
		resp, err := client.Get("http://" + hostPort(a, HTTPPort) + "/")
		if err != nil {
			t.Fatalf("http get %s: %v", a, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || tb.wanOfLine(string(body)) != 0 {
			t.Errorf("http %s: %d %q %v, want 200 and WAN 0's address", a, resp.StatusCode, body, err)
		}
	}
	client.CloseIdleConnections()

	if err := tb.CutCarrier(0); err != nil {
		t.Fatal(err)
	}
	if hasCarrier(t, tb.Router, "eth1") {
		t.Error("eth1 still has carrier after CutCarrier")
	}
	// The linkdown default route still wins: the LAN is cut off.
	checkFlows(t, tb, tb.LAN, 2, -1)
	delDefaultRoutes(t, tb, 0)
	checkFlows(t, tb, tb.LAN, 8, 1)
	checkFlows(t, tb, tb.Router, 4, 1)

	if err := tb.Restore(0); err != nil {
		t.Fatal(err)
	}
	if !hasCarrier(t, tb.Router, "eth1") {
		t.Error("eth1 has no carrier after Restore")
	}
	checkFlows(t, tb, tb.LAN, 8, 0)

	// Another port starts another echo server; port 80 is HTTP.
	got, err := tb.TCPFlows(tb.LAN, 2, IPv4, 8080)
	if err != nil || !allEqual(got, 0) {
		t.Errorf("flows to port 8080: %v, %v", got, err)
	}
	if _, err := tb.UDPFlows(tb.LAN, 1, IPv4, HTTPPort); err == nil {
		t.Error("UDP flows to the HTTP port did not fail")
	}
	if _, err := tb.UDPFlows(tb.LAN, 1, Dual, 0); err == nil {
		t.Error("flows of family Dual did not fail")
	}
}

func TestCutUpstream(t *testing.T) {
	tb := New(t, Spec{WANs: 2, Family: Dual, FlowTimeout: 300 * time.Millisecond})
	if err := tb.CutUpstream(0); err != nil {
		t.Fatal(err)
	}
	if !hasCarrier(t, tb.Router, "eth1") {
		t.Error("eth1 lost its carrier with CutUpstream")
	}
	checkFlows(t, tb, tb.LAN, 2, -1)
	for _, gw := range []netip.Addr{tb.WANs[0].Gateway4, tb.WANs[0].Gateway6} {
		r, err := tb.Router.Ping(gw, 3, 10*time.Millisecond, 200*time.Millisecond)
		if err != nil || r.Received != 0 {
			t.Errorf("ping gateway %s with the upstream cut: %+v, %v; want no answer", gw, r, err)
		}
	}
	// The latency responder stays quiet while the upstream is cut.
	if err := tb.SetLatency(0, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if r, err := tb.LAN.Ping(tb.Targets4[0], 3, 10*time.Millisecond, 200*time.Millisecond); err != nil || r.Received != 0 {
		t.Errorf("ping with the upstream cut and latency: %+v, %v; want no answer", r, err)
	}
	if err := tb.Restore(0); err != nil {
		t.Fatal(err)
	}
	checkFlows(t, tb, tb.LAN, 4, 0)
	for _, gw := range []netip.Addr{tb.WANs[0].Gateway4, tb.WANs[0].Gateway6} {
		if r, err := tb.Router.Ping(gw, 3, 10*time.Millisecond, time.Second); err != nil || r.Received != 3 {
			t.Errorf("ping gateway %s after Restore: %+v, %v", gw, r, err)
		}
	}
}

func TestControlErrors(t *testing.T) {
	tb := New(t, Spec{WANs: 1})
	for name, err := range map[string]error{
		"loss -1":          tb.SetLoss(0, -1),
		"loss 101":         tb.SetLoss(0, 101),
		"latency negative": tb.SetLatency(0, -time.Millisecond),
		"latency too long": tb.SetLatency(0, MaxLatency+1),
		"wan 1 of 1":       tb.CutCarrier(1),
		"wan -1":           tb.CutUpstream(-1),
		"restore wan 5":    tb.Restore(5),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := tb.Counters(2); err == nil {
		t.Error("Counters(2) of a 1-WAN testbed: no error")
	}
	if _, err := tb.TCPFlows(tb.LAN, 1, IPv6, 0); err == nil {
		t.Error("IPv6 flows in an IPv4 testbed: no error")
	}
	if _, err := tb.TCPFlows(tb.LAN, MaxFlows+1, IPv4, 0); err == nil {
		t.Error("too many flows: no error")
	}
	// The testbed still works after the rejected changes.
	checkFlows(t, tb, tb.LAN, 2, 0)
}

func TestLoss(t *testing.T) {
	tb := New(t, Spec{WANs: 2, Family: Dual})
	if err := tb.SetLoss(0, 30); err != nil {
		t.Fatal(err)
	}
	// A machine busy with other tests can drop packets of its own (a full
	// backlog while softirqs wait for a CPU), which adds to the injected
	// loss; a run out of range is therefore repeated, up to three times.
	check := func(t *testing.T, dst netip.Addr) {
		var loss float64
		for attempt := 1; attempt <= 3; attempt++ {
			r, err := tb.LAN.Ping(dst, 1000, 2*time.Millisecond, 500*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			loss = r.Loss()
			t.Logf("attempt %d: %d/%d answered: %.1f %% loss", attempt, r.Received, r.Sent, 100*loss)
			if r.Sent == 1000 && loss >= 0.25 && loss <= 0.35 {
				return
			}
		}
		t.Errorf("loss %.3f over 1000 pings in each of 3 attempts, want 0.30 ± 0.05", loss)
	}
	t.Run("IPv4", func(t *testing.T) { check(t, tb.Targets4[0]) })
	t.Run("IPv6", func(t *testing.T) { check(t, tb.Targets6[0]) })
	// The latency responder drops the same share.
	if err := tb.SetLatency(0, 2*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	t.Run("responder", func(t *testing.T) { check(t, tb.Targets4[1]) })

	if err := tb.SetLoss(0, 0); err != nil {
		t.Fatal(err)
	}
	if err := tb.SetLatency(0, 0); err != nil {
		t.Fatal(err)
	}
	if r, err := tb.LAN.Ping(tb.Targets4[0], 100, time.Millisecond, time.Second); err != nil || r.Received != 100 {
		t.Errorf("after loss 0: %d/%d answered, %v", r.Received, r.Sent, err)
	}
	// WAN 1 never had loss: with WAN 0's route gone, everything arrives.
	if err := tb.SetLoss(0, 100); err != nil {
		t.Fatal(err)
	}
	delDefaultRoutes(t, tb, 0)
	if r, err := tb.LAN.Ping(tb.Targets6[0], 100, time.Millisecond, time.Second); err != nil || r.Received != 100 {
		t.Errorf("via WAN 1: %d/%d answered, %v", r.Received, r.Sent, err)
	}
}

func TestLatency(t *testing.T) {
	tb := New(t, Spec{WANs: 2, Family: Dual})
	const delay = 50 * time.Millisecond
	for _, dst := range []netip.Addr{tb.Targets4[0], tb.Targets6[1]} {
		t.Run(dst.String(), func(t *testing.T) {
			base, err := tb.LAN.Ping(dst, 20, 5*time.Millisecond, time.Second)
			if err != nil || base.Received != 20 {
				t.Fatalf("baseline: %+v, %v", base, err)
			}
			if err := tb.SetLatency(0, delay); err != nil {
				t.Fatal(err)
			}
			slow, err := tb.LAN.Ping(dst, 20, 5*time.Millisecond, time.Second)
			if err != nil || slow.Received != 20 {
				t.Fatalf("with latency: %+v, %v", slow, err)
			}
			extra := slow.Median() - base.Median()
			t.Logf("median rtt %v without, %v with %v latency: +%v", base.Median(), slow.Median(), delay, extra)
			if extra < delay-5*time.Millisecond || extra > delay+5*time.Millisecond {
				t.Errorf("latency added %v, want %v ± 5ms", extra, delay)
			}
			// The router's own pings via the same WAN are delayed too.
			r, err := tb.Router.Ping(dst, 3, 5*time.Millisecond, time.Second)
			if err != nil || r.Received != 3 || r.Median() < delay {
				t.Errorf("router ping with latency: %+v, %v", r, err)
			}
			if err := tb.SetLatency(0, 0); err != nil {
				t.Fatal(err)
			}
			fast, err := tb.LAN.Ping(dst, 20, 5*time.Millisecond, time.Second)
			if err != nil || fast.Received != 20 || fast.Median() >= delay/2 {
				t.Errorf("latency 0 again: median %v, %d/%d, %v", fast.Median(), fast.Received, fast.Sent, err)
			}
		})
	}
}

func TestStreamMeasuresSwitch(t *testing.T) {
	RequireRoot(t)
	for _, newFlows := range []bool{true, false} {
		t.Run(fmt.Sprintf("newflows=%v", newFlows), func(t *testing.T) {
			tb := New(t, Spec{WANs: 2, Family: IPv4, FlowTimeout: 300 * time.Millisecond})
			s, err := tb.Stream(tb.LAN, StreamConfig{Family: IPv4, Interval: 5 * time.Millisecond, NewFlows: newFlows})
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
			if err := tb.CutCarrier(0); err != nil {
				t.Fatal(err)
			}
			const outage = 100 * time.Millisecond
			time.Sleep(outage)
			delDefaultRoutes(t, tb, 0)
			time.Sleep(100 * time.Millisecond)
			r := s.Stop()
			t.Logf("sent %d, received %d, per WAN %v, longest gap %v, switches %+v", r.Sent, r.Received, r.PerWAN, r.LongestGap, r.Switches)
			if len(r.Switches) != 1 || r.Switches[0].From != 0 || r.Switches[0].To != 1 {
				t.Fatalf("switches %+v, want one from WAN 0 to WAN 1", r.Switches)
			}
			// Probes sent while the carrier was cut are lost: lower bounds only.
			if r.Switches[0].Gap < outage/2 || r.LongestGap < r.Switches[0].Gap {
				t.Errorf("gap %v, longest %v, want at least %v", r.Switches[0].Gap, r.LongestGap, outage/2)
			}
			if r.PerWAN[0] == 0 || r.PerWAN[1] == 0 || r.Received >= r.Sent || r.Received != r.PerWAN[0]+r.PerWAN[1] {
				t.Errorf("result %+v inconsistent with the switch", r)
			}
		})
	}
}

// openFDs returns this process's open file descriptors and their targets.
func openFDs(t *testing.T) map[string]string {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	fds := map[string]string{}
	for _, e := range entries {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil {
			fds[e.Name()] = target
		}
	}
	return fds
}

func TestBuildAndTeardownLeaveNothing(t *testing.T) {
	RequireRoot(t)
	// The witness namespace outlives the testbed. It holds one end of a veth
	// into every testbed namespace: the kernel deletes that end only when the
	// testbed namespace is really destroyed, not just unmounted.
	witness := NewNS(t, "witness")
	fdsBefore := openFDs(t)
	goroutinesBefore := runtime.NumGoroutine()
	var paths []string
	var inodes []uint64
	var build time.Duration
	var teardownStart time.Time
	t.Run("testbed", func(t *testing.T) {
		start := time.Now()
		tb := New(t, Spec{WANs: 4, Family: Dual})
		build = time.Since(start)
		// Exercise what starts goroutines and sockets, so teardown must stop them.
		if err := tb.SetLatency(3, time.Millisecond); err != nil {
			t.Fatal(err)
		}
		checkFlows(t, tb, tb.LAN, 2, 0)
		s, err := tb.Stream(tb.Router, StreamConfig{Family: IPv6, NewFlows: true})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		// Not stopped: the testbed's cleanup must stop it.
		_ = s
		all := []*NS{tb.Router, tb.LAN, tb.Internet}
		for _, w := range tb.WANs {
			all = append(all, w.ISP)
		}
		for i, n := range all {
			paths = append(paths, n.Path())
			inodes = append(inodes, netnsInode(t, n.Path()))
			veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: fmt.Sprintf("w%d", i)},
				PeerName: "witness", PeerNamespace: netlink.NsFd(n.NetNSFd())}
			if err := witness.Handle().LinkAdd(veth); err != nil {
				t.Fatal(err)
			}
		}
		// Registered last, so it runs first: teardown starts here.
		t.Cleanup(func() { teardownStart = time.Now() })
	})
	teardown := time.Since(teardownStart)
	t.Logf("4-WAN dual-stack testbed: built in %v, torn down in %v, total %v", build, teardown, build+teardown)

	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s still exists", p)
		}
	}
	for _, ino := range inodes {
		if pids := pidsInNetNS(ino); len(pids) > 0 {
			t.Errorf("processes %v still in namespace %d", pids, ino)
		}
	}
	// Nothing of this process may still refer to a testbed namespace: no
	// thread in it, no new descriptor (namespace or socket).
	for range 100 {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			t.Fatal(err)
		}
		stray := 0
		for _, task := range tasks {
			var st unix.Stat_t
			if unix.Stat(filepath.Join("/proc/self/task", task.Name(), "ns/net"), &st) == nil && slices.Contains(inodes, st.Ino) {
				stray++
			}
		}
		if stray == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for fd, target := range openFDs(t) {
		if fdsBefore[fd] != target && (strings.HasPrefix(target, "socket:") || strings.HasPrefix(target, "net:")) {
			t.Errorf("descriptor %s (%s) left open", fd, target)
		}
	}
	// The kernel destroys namespaces asynchronously: wait for the witness
	// ends to go.
	destroyStart := time.Now()
	var left []string
	for time.Since(destroyStart) < 10*time.Second {
		links, err := witness.Handle().LinkList()
		if err != nil {
			t.Fatal(err)
		}
		left = left[:0]
		for _, l := range links {
			if l.Attrs().Name != "lo" {
				left = append(left, l.Attrs().Name)
			}
		}
		if len(left) == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Errorf("witness veths %v remain: their testbed namespaces were not destroyed", left)
	} else {
		t.Logf("all %d namespaces destroyed by the kernel %v after teardown", len(inodes), time.Since(destroyStart))
	}
	var goroutines int
	for range 100 {
		if goroutines = runtime.NumGoroutine(); goroutines <= goroutinesBefore {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if goroutines > goroutinesBefore {
		t.Errorf("%d goroutines after teardown, %d before", goroutines, goroutinesBefore)
	}
}

func TestIPv6Only(t *testing.T) {
	tb := New(t, Spec{WANs: 2, Family: IPv6})
	if tb.Echo4.IsValid() || tb.WANs[0].Addr4.IsValid() || len(tb.Targets4) != 0 {
		t.Errorf("IPv4 fields set in an IPv6 testbed: %v %v %v", tb.Echo4, tb.WANs[0].Addr4, tb.Targets4)
	}
	checkFlows(t, tb, tb.LAN, 4, 0)
	addrs, err := tb.Router.Handle().AddrList(nil, unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if !a.IP.IsLoopback() {
			t.Errorf("IPv4 address %v in the router of an IPv6 testbed", a.IPNet)
		}
	}
	if r, err := tb.LAN.Ping(tb.Targets6[3], 5, time.Millisecond, time.Second); err != nil || r.Received != 5 {
		t.Errorf("ping: %+v, %v", r, err)
	}
}

// TestAddInternetAddrs makes real-world track targets answer inside the
// testbed, from the LAN through the router and an ISP.
func TestAddInternetAddrs(t *testing.T) {
	tb := New(t, Spec{WANs: 2, Family: Dual})
	extra := []netip.Addr{netip.MustParseAddr("1.1.1.1"), netip.MustParseAddr("2606:4700:4700::1111")}
	if err := tb.AddInternetAddrs(extra...); err != nil {
		t.Fatal(err)
	}
	for _, a := range extra {
		if r, err := tb.LAN.Ping(a, 3, time.Millisecond, time.Second); err != nil || r.Received != 3 {
			t.Errorf("ping %s from the LAN: %+v, %v", a, r, err)
		}
	}
	if err := tb.AddInternetAddrs(extra[0]); err == nil || !strings.Contains(err.Error(), "already present") {
		t.Errorf("adding %s twice: %v, want an error", extra[0], err)
	}
	if err := tb.AddInternetAddrs(netip.MustParseAddr("10.0.1.1")); err == nil {
		t.Error("an ISP gateway's address was accepted")
	}
}
