//go:build linux

package track

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/internal/testbed"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"
)

// nsNative returns native probers whose sockets are created in ns.
func nsNative(ns *testbed.NS) Native {
	return Native{Socket: func(domain, typ, proto int) (int, error) {
		var fd int
		err := ns.Do(func() error {
			var err error
			fd, err = unix.Socket(domain, typ, proto)
			return err
		})
		return fd, err
	}}
}

func probeParams(m Method, f Family) Params {
	p := DefaultParams()
	p.Method = string(m)
	p.Family = f
	p.Timeout = time.Second
	p, _ = p.Normalize("test")
	return p
}

func probeOnce(t *testing.T, n Native, p Params, b Binding, target string) Result {
	t.Helper()
	pr, err := n.NewProber(p, b)
	if err != nil {
		return Result{Err: err}
	}
	defer closeProber(pr)
	return pr.Probe(context.Background(), target)
}

// serveDNS answers queries on pc: "ok" with NOERROR, "garbage" with
// random bytes only, "garbage+ok" with garbage first, "refused" with
// REFUSED.
func serveDNS(pc net.PacketConn, mode string) {
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		var p dnsmessage.Parser
		h, err := p.Start(buf[:n])
		if err != nil {
			continue
		}
		q, err := p.Question()
		if err != nil {
			continue
		}
		if strings.HasPrefix(mode, "garbage") {
			_, _ = pc.WriteTo([]byte("\x00\x01garbage that is not DNS"), from)
			// The right ID with a wrong question is garbage too.
			bad := dnsmessage.Message{Header: dnsmessage.Header{ID: h.ID, Response: true},
				Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName("other."), Type: q.Type, Class: q.Class}}}
			if b, err := bad.Pack(); err == nil {
				_, _ = pc.WriteTo(b, from)
			}
			if mode == "garbage" {
				continue
			}
		}
		rc := dnsmessage.RCodeSuccess
		if mode == "refused" {
			rc = dnsmessage.RCodeRefused
		}
		m := dnsmessage.Message{Header: dnsmessage.Header{ID: h.ID, Response: true, RCode: rc}, Questions: []dnsmessage.Question{q}}
		if b, err := m.Pack(); err == nil {
			_, _ = pc.WriteTo(b, from)
		}
	}
}

func startDNS(t *testing.T, ns *testbed.NS, addr, mode string) {
	t.Helper()
	pc, err := ns.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go serveDNS(pc, mode)
	t.Cleanup(func() { pc.Close() })
}

type methodCase struct {
	method Method
	family Family
	target func(tb *testbed.Testbed, w testbed.WAN) string
	arp    bool // answered by the gateway: below an upstream cut
}

func testbedMethods() []methodCase {
	t4 := func(tb *testbed.Testbed, _ testbed.WAN) string { return tb.Targets4[0].String() }
	t6 := func(tb *testbed.Testbed, _ testbed.WAN) string { return tb.Targets6[0].String() }
	gw := func(_ *testbed.Testbed, w testbed.WAN) string { return w.Gateway4.String() }
	return []methodCase{
		{MethodPing, IPv4, t4, false},
		{MethodPing, IPv6, t6, false},
		{MethodHTTPing, IPv4, func(tb *testbed.Testbed, _ testbed.WAN) string { return tb.HTTP4.String() }, false},
		{MethodHTTPing, IPv6, func(tb *testbed.Testbed, _ testbed.WAN) string { return tb.HTTP6.String() }, false},
		{MethodNpingTCP, IPv4, t4, false}, // port 80 of a target: the HTTP server accepts
		{MethodNpingTCP, IPv6, t6, false},
		{MethodNpingUDP, IPv4, t4, false}, // port 40125: ICMP port unreachable
		{MethodNpingUDP, IPv6, t6, false},
		{MethodNpingICMP, IPv4, t4, false},
		{MethodNpingICMP, IPv6, t6, false},
		{MethodNslookup, IPv4, t4, false},
		{MethodNslookup, IPv6, t6, false},
		{MethodArping, IPv4, gw, true},
		{MethodNpingARP, IPv4, gw, true},
	}
}

func wanBinding(w testbed.WAN, f Family) Binding {
	if f == IPv6 {
		return Binding{Device: w.Dev, Source: w.Addr6.Addr(), Mark: 0x3f00}
	}
	return Binding{Device: w.Dev, Source: w.Addr4.Addr(), Mark: 0x3f00}
}

// TestProbeMethodsTestbed checks every method through the right WAN: it
// succeeds, still succeeds when the other WAN is cut, fails when its own
// upstream is cut (ARP excepted: the gateway still answers) and fails when
// its own link loses carrier while the other WAN works (no escape).
func TestProbeMethodsTestbed(t *testing.T) {
	tb := testbed.New(t, testbed.Spec{WANs: 2, Family: testbed.Dual})
	startDNS(t, tb.Internet, netip.AddrPortFrom(tb.Targets4[0], 53).String(), "ok")
	startDNS(t, tb.Internet, netip.AddrPortFrom(tb.Targets6[0], 53).String(), "ok")
	n := nsNative(tb.Router)
	cases := testbedMethods()

	// attempt probes every case through WAN w concurrently; want says which
	// succeed. It returns the mismatches.
	attempt := func(phase string, w int, want func(c methodCase) bool) []string {
		var wg sync.WaitGroup
		res := make([]Result, len(cases))
		for i, c := range cases {
			wg.Go(func() {
				wan := tb.WANs[w]
				res[i] = probeOnce(t, n, probeParams(c.method, c.family), wanBinding(wan, c.family), c.target(tb, wan))
			})
		}
		wg.Wait()
		var bad []string
		for i, c := range cases {
			ok := success(c.method, res[i])
			if ok != want(c) {
				bad = append(bad, fmt.Sprintf("%s: %s %s via %s: success %v (sent %d received %d err %v), want %v",
					phase, c.method, c.family, tb.WANs[w].Name, ok, res[i].Sent, res[i].Received, res[i].Err, want(c)))
			}
		}
		return bad
	}
	run := func(phase string, w int, want func(c methodCase) bool) {
		t.Helper()
		for _, b := range attempt(phase, w, want) {
			t.Error(b)
		}
	}
	// runRestored is run after a Restore: the link comes back up and IPv6
	// needs its routes and neighbours again, which takes a moment on a
	// loaded machine, so it tries again for up to 10 s.
	runRestored := func(phase string, w int, want func(c methodCase) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			bad := attempt(phase, w, want)
			if len(bad) == 0 {
				return
			}
			if time.Now().After(deadline) {
				for _, b := range bad {
					t.Error(b)
				}
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	all := func(methodCase) bool { return true }
	none := func(methodCase) bool { return false }
	onlyARP := func(c methodCase) bool { return c.arp }

	run("healthy", 0, all)
	run("healthy", 1, all)

	mustOK(t, tb.CutUpstream(1))
	run("other WAN cut", 0, all)
	run("own upstream cut", 1, onlyARP)
	mustOK(t, tb.Restore(1))

	mustOK(t, tb.CutCarrier(0))
	run("own carrier cut", 0, none)
	run("other WAN without carrier", 1, all)
	mustOK(t, tb.Restore(0))
	runRestored("restored", 0, all)
}

// TestProbeSourceSeen checks that probes leave with the WAN's source
// address: the HTTP server answers with the address it saw, which the
// ISP's NAT maps to that WAN's public address.
func TestProbeSourceSeen(t *testing.T) {
	tb := testbed.New(t, testbed.Spec{WANs: 2, Family: testbed.IPv4})
	n := nsNative(tb.Router)
	for i, w := range tb.WANs {
		pr, err := n.NewProber(probeParams(MethodHTTPing, IPv4), wanBinding(w, IPv4))
		mustOK(t, err)
		// The probe's own socket, with a GET: the server's body is the
		// address it saw.
		c, err := pr.(*nativeProber).dial(t.Context(), unix.SOCK_STREAM, netip.AddrPortFrom(tb.HTTP4, 80), time.Now().Add(5*time.Second))
		mustOK(t, err)
		closeProber(pr)
		_, err = io.WriteString(c, "GET / HTTP/1.1\r\nHost: "+httpHost(tb.HTTP4.String())+"\r\nConnection: close\r\n\r\n")
		mustOK(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		mustOK(t, err)
		body, err := io.ReadAll(io.LimitReader(resp.Body, 100))
		c.Close()
		mustOK(t, err)
		ap, err := netip.ParseAddrPort(strings.TrimSpace(string(body)))
		mustOK(t, err)
		if got, ok := tb.WANBySource(ap.Addr()); !ok || got != i {
			t.Errorf("probe bound to %s left through WAN %d (%s)", w.Dev, got, ap)
		}
	}
}

// TestProbeBadInputNS runs the probes against bad targets, garbage replies
// and a device that disappears, in a namespace of their own on loopback.
func TestProbeBadInputNS(t *testing.T) {
	t.Parallel()
	ns := testbed.NewNS(t, "trackbad")
	h := ns.Handle()
	lo, err := h.LinkByName("lo")
	mustOK(t, err)
	mustOK(t, h.LinkSetUp(lo))
	for _, a := range []string{"127.0.0.2/8", "127.0.0.3/8", "127.0.0.4/8"} {
		addr, _ := netlink.ParseAddr(a)
		_ = h.AddrAdd(lo, addr)
	}
	startDNS(t, ns, "127.0.0.1:53", "garbage")
	startDNS(t, ns, "127.0.0.2:53", "garbage+ok")
	startDNS(t, ns, "127.0.0.3:53", "refused")
	// Garbage to HTTP and TLS probes: an SSH banner after the request
	// (answering before it would be "unsolicited").
	garbage := func(c net.Conn) {
		buf := make([]byte, 4096)
		_, _ = c.Read(buf)
		_, _ = c.Write([]byte("SSH-2.0-not-http\r\n\r\n"))
		_, _ = io.Copy(io.Discard, c) // until the client gives up
	}
	serveTCP(t, ns, "127.0.0.1:80", garbage)
	serveTCP(t, ns, "127.0.0.1:443", garbage)
	// A server that reads the request and hangs up without an answer.
	serveTCP(t, ns, "127.0.0.4:80", func(c net.Conn) { _, _ = c.Read(make([]byte, 4096)) })
	serveTCP(t, ns, "127.0.0.4:443", func(c net.Conn) { _, _ = c.Read(make([]byte, 4096)) })
	// TLS servers: one with a certificate (ServerHello), one without (an
	// alert); the handshake is driven by the first read.
	handshake := func(cfg *tls.Config) func(net.Conn) {
		return func(c net.Conn) {
			tc := tls.Server(c, cfg)
			_ = tc.Handshake()
			_, _ = io.Copy(io.Discard, c)
		}
	}
	serveTCP(t, ns, "127.0.0.2:443", handshake(&tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}))
	serveTCP(t, ns, "127.0.0.3:443", handshake(&tls.Config{}))
	goodHTTP, err := ns.Listen("tcp", "127.0.0.2:80")
	mustOK(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(404) }),
		ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(goodHTTP) }()
	t.Cleanup(func() { srv.Close() })

	n := nsNative(ns)
	lob := Binding{Device: "lo", Source: netip.MustParseAddr("127.0.0.1")}
	cases := []struct {
		name   string
		method Method
		family Family
		bind   Binding
		target string
		ok     bool
		errHas string
	}{
		{"host name from /etc/hosts", MethodPing, IPv4, lob, "localhost", true, ""},
		{"unresolvable host name", MethodPing, IPv4, lob, "no-such-host.invalid", false, "resolve"},
		{"target of the other family", MethodPing, IPv6, Binding{Device: "lo"}, "127.0.0.1", false, "is not ipv6"},
		{"target nobody answers", MethodPing, IPv4, lob, "192.0.2.1", false, "1 of 1 probes unanswered"},
		{"DNS garbage only", MethodNslookup, IPv4, lob, "127.0.0.1", false, "timeout"},
		{"DNS garbage, then an answer", MethodNslookup, IPv4, lob, "127.0.0.2", true, ""},
		{"DNS refused", MethodNslookup, IPv4, lob, "127.0.0.3", false, "RCodeRefused"},
		{"HTTP garbage", MethodHTTPing, IPv4, lob, "127.0.0.1", false, "malformed HTTP"},
		{"HTTP 404 is an answer", MethodHTTPing, IPv4, lob, "127.0.0.2", true, ""},
		{"HTTP hang-up without an answer", MethodHTTPing, IPv4, lob, "127.0.0.4", false, "closed before an answer"},
		{"HTTP port closed", MethodHTTPing, IPv4, lob, "127.0.0.3", false, "connection refused"},
		{"TCP reset is an answer", MethodNpingTCP, IPv4, lob, "127.0.0.3", true, ""},
		{"UDP port unreachable is an answer", MethodNpingUDP, IPv4, lob, "127.0.0.1", true, ""},
		{"device that does not exist", MethodPing, IPv4, Binding{Device: "nosuchdev"}, "127.0.0.1", false, "no such device"},
		{"ARP on loopback", MethodArping, IPv4, lob, "127.0.0.2", false, "unanswered"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := probeOnce(t, n, probeParams(tc.method, tc.family), tc.bind, tc.target)
			if ok := success(tc.method, res); ok != tc.ok {
				t.Errorf("success %v (sent %d received %d err %v), want %v", ok, res.Sent, res.Received, res.Err, tc.ok)
			}
			if tc.errHas != "" && (res.Err == nil || !strings.Contains(res.Err.Error(), tc.errHas)) {
				t.Errorf("error %v, want it to mention %q", res.Err, tc.errHas)
			}
		})
	}

	tlsCases := []struct {
		name, target string
		ok           bool
		errHas       string
	}{
		{"TLS ServerHello is an answer", "127.0.0.2", true, ""},
		{"TLS alert is an answer", "127.0.0.3", true, ""},
		{"TLS garbage", "127.0.0.1", false, "malformed TLS"},
		{"TLS hang-up without an answer", "127.0.0.4", false, "closed before an answer"},
	}
	for _, tc := range tlsCases {
		t.Run(tc.name, func(t *testing.T) {
			p := probeParams(MethodHTTPing, IPv4)
			p.HTTPSSL = true
			p.Count = 2
			res := probeOnce(t, n, p, lob, tc.target)
			if ok := success(MethodHTTPing, res); ok != tc.ok || (tc.ok && res.Received != 2) {
				t.Errorf("success %v (sent %d received %d err %v), want %v", ok, res.Sent, res.Received, res.Err, tc.ok)
			}
			if tc.errHas != "" && (res.Err == nil || !strings.Contains(res.Err.Error(), tc.errHas)) {
				t.Errorf("error %v, want it to mention %q", res.Err, tc.errHas)
			}
		})
	}

	t.Run("ping sockets when raw sockets are not permitted", func(t *testing.T) {
		mustOK(t, ns.Do(func() error {
			return os.WriteFile("/proc/sys/net/ipv4/ping_group_range", []byte("0 2147483647"), 0o644)
		}))
		noRaw := Native{Socket: func(domain, typ, proto int) (int, error) {
			if typ&0xf == unix.SOCK_RAW {
				return -1, unix.EPERM
			}
			return n.Socket(domain, typ, proto)
		}}
		p := probeParams(MethodPing, IPv4)
		p.Count = 2
		res := probeOnce(t, noRaw, p, lob, "127.0.0.4")
		if res.Received != 2 {
			t.Errorf("ping socket: %d of %d answered, err %v", res.Received, res.Sent, res.Err)
		}
	})

	t.Run("device vanishing mid-probe", func(t *testing.T) {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "vx0"}, PeerName: "vx1"}
		mustOK(t, h.LinkAdd(veth))
		for _, name := range []string{"vx0", "vx1"} {
			l, err := h.LinkByName(name)
			mustOK(t, err)
			mustOK(t, h.LinkSetUp(l))
		}
		l, _ := h.LinkByName("vx0")
		addr, _ := netlink.ParseAddr("10.99.0.1/24")
		mustOK(t, h.AddrAdd(l, addr))
		p := probeParams(MethodPing, IPv4)
		p.Count, p.Timeout = 3, 2*time.Second
		go func() {
			time.Sleep(500 * time.Millisecond)
			_ = h.LinkDel(l)
		}()
		start := time.Now()
		res := probeOnce(t, n, p, Binding{Device: "vx0", Source: netip.MustParseAddr("10.99.0.1")}, "10.99.0.2")
		t.Logf("probe ended %v after start with sent %d received %d err %v", time.Since(start), res.Sent, res.Received, res.Err)
		if res.Received != 0 || res.Err == nil {
			t.Errorf("probe on a vanished device: received %d err %v", res.Received, res.Err)
		}
	})

	t.Run("cancel interrupts a probe at once", func(t *testing.T) {
		p := probeParams(MethodPing, IPv4)
		p.Timeout = time.Hour
		pr, err := n.NewProber(p, lob)
		mustOK(t, err)
		defer closeProber(pr)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan Result)
		go func() { done <- pr.Probe(ctx, "192.0.2.1") }()
		time.Sleep(100 * time.Millisecond)
		cancel()
		res := <-done
		if !errors.Is(res.Err, context.Canceled) {
			t.Errorf("cancelled probe: %v", res.Err)
		}
	})
}

// waitEvent returns the next event of iface with action a, failing the
// test after a minute.
func waitEvent(t *testing.T, ch <-chan Event, iface string, a Action) Event {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("event channel closed waiting for %s %s", iface, a)
			}
			if ev.Interface == iface && ev.Action == a {
				return ev
			}
			t.Logf("event %s %s (waiting for %s %s)", ev.Interface, ev.Action, iface, a)
		case <-timeout:
			t.Fatalf("no %s event for %s within a minute", a, iface)
		}
	}
}

// watchCarrier forwards the router's link changes to the manager, like the
// daemon does, and records when each was seen.
func watchCarrier(t *testing.T, ns *testbed.NS, m *Manager) *sync.Map {
	seen := &sync.Map{}
	ch := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	nsh := netnsHandle(ns)
	mustOK(t, netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{Namespace: &nsh}))
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		last := map[string]bool{}
		for u := range ch {
			a := u.Attrs()
			carrier := a.OperState == netlink.OperUp || (a.OperState == netlink.OperUnknown && a.Flags&net.FlagRunning != 0)
			if prev, ok := last[a.Name]; ok && prev == carrier {
				continue
			}
			last[a.Name] = carrier
			seen.Store(fmt.Sprintf("%s %v", a.Name, carrier), time.Now())
			m.Carrier(a.Name, carrier)
		}
	}()
	t.Cleanup(func() {
		close(done)
		<-stopped
	})
	return seen
}

// TestTrackerTestbed runs trackers with native probes on the testbed: the
// shipped wan (4 targets, reliability 2) with interval 1 and down 3, an
// upstream cut of its WAN and not of the other, then a carrier cut.
func TestTrackerTestbed(t *testing.T) {
	t.Parallel()
	tb := testbed.New(t, testbed.Spec{WANs: 2, Family: testbed.IPv4})
	m := NewManager(Config{Logger: testLogger(t), Dir: t.TempDir(), Probers: nsNative(tb.Router)})
	defer m.Close()
	var targets []string
	for _, a := range tb.Targets4 {
		targets = append(targets, a.String())
	}
	p := DefaultParams(targets...)
	p.Reliability = 2
	p.Interval, p.FailureInterval, p.RecoveryInterval = time.Second, time.Second, time.Second
	p.Down, p.Up = 3, 3
	seen := watchCarrier(t, tb.Router, m)
	for i, w := range tb.WANs {
		mustOK(t, m.Start(w.Name, p, wanBinding(w, IPv4), true))
		_ = i
	}
	ev := m.Events()
	waitEvent(t, ev, "wan", ActionConnected)

	time.Sleep(1500 * time.Millisecond)
	mustOK(t, tb.CutUpstream(1)) // the other WAN: wan must not notice
	cut := time.Now()
	mustOK(t, tb.CutUpstream(0))
	waitEvent(t, ev, "wan", ActionDisconnecting)
	off := waitEvent(t, ev, "wan", ActionDisconnected)
	t.Logf("upstream cut → disconnected (interval 1, down 3, timeout 4, 4 targets, reliability 2): %v", off.Time.Sub(cut))
	if st, _ := m.Status("wanb"); st.Status == StatusOnline {
		t.Errorf("wanb still online with its upstream cut")
	}
	mustOK(t, tb.Restore(0))
	mustOK(t, tb.Restore(1))
	restored := time.Now()
	waitEvent(t, ev, "wan", ActionConnecting)
	on := waitEvent(t, ev, "wan", ActionConnected)
	t.Logf("restore → connected (up 3, recovery_interval 1): %v", on.Time.Sub(restored))

	time.Sleep(1500 * time.Millisecond)
	cut = time.Now()
	mustOK(t, tb.CutCarrier(0))
	off = waitEvent(t, ev, "wan", ActionDisconnected)
	if v, ok := seen.Load("eth1 false"); ok {
		t.Logf("carrier cut → disconnected: %v (link event → disconnected: %v)", off.Time.Sub(cut), off.Time.Sub(v.(time.Time)))
	} else {
		t.Logf("carrier cut → disconnected: %v", off.Time.Sub(cut))
	}
	if st, _ := m.Status("wan"); st.Carrier || st.Status != StatusOffline {
		t.Errorf("after carrier loss: carrier %v status %s", st.Carrier, st.Status)
	}
	mustOK(t, tb.Restore(0))
	restored = time.Now()
	on = waitEvent(t, ev, "wan", ActionConnected)
	t.Logf("carrier back → connected (up 3): %v", on.Time.Sub(restored))
}

// TestQualityTestbed injects 50 % loss and then latency with check_quality.
func TestQualityTestbed(t *testing.T) {
	t.Parallel()
	tb := testbed.New(t, testbed.Spec{WANs: 1, Family: testbed.IPv4})
	dir := t.TempDir()
	m := NewManager(Config{Logger: testLogger(t), Dir: dir, Probers: nsNative(tb.Router)})
	defer m.Close()
	w := tb.WANs[0]
	target := tb.Targets4[0].String()
	p := DefaultParams(target)
	p.CheckQuality = true
	p.Interval, p.FailureInterval, p.RecoveryInterval = time.Second, time.Second, time.Second
	p.Down, p.Up = 1, 1
	p.Timeout = 3 * time.Second
	ev := m.Events()

	t.Run("loss", func(t *testing.T) {
		// 10 pings per round: a round passes only with no loss at all
		// (recovery_loss 0), which 50 % loss allows once in 1024 rounds.
		lp := p
		lp.Count = 10
		lp.FailureLoss, lp.RecoveryLoss = 20, 0
		mustOK(t, tb.SetLoss(0, 50))
		mustOK(t, m.Start("wan", lp, wanBinding(w, IPv4), true))
		waitEvent(t, ev, "wan", ActionConnected)
		waitEvent(t, ev, "wan", ActionDisconnected)
		st, _ := m.Status("wan")
		ts := st.Targets[0]
		t.Logf("50%% loss: TRACK %s LOSS_ %d%% LATENCY_ %dms; window: loss %.1f%% avg %v jitter %v",
			ts.State, ts.Loss, ts.Latency, ts.Quality.LossPercent, ts.Quality.RTTAvg, ts.Quality.RTTStdDev)
		switch {
		case ts.Loss >= lp.FailureLoss && ts.State != TargetDown,
			ts.Loss < lp.FailureLoss && ts.Loss > lp.RecoveryLoss && ts.State != TargetSkipped:
			t.Errorf("loss %d%% classified %s", ts.Loss, ts.State)
		}
		mustOK(t, tb.SetLoss(0, 0))
		waitEvent(t, ev, "wan", ActionConnected)
		mustOK(t, m.Stop("wan"))
	})

	t.Run("latency", func(t *testing.T) {
		mustOK(t, tb.SetLatency(0, 1500*time.Millisecond))
		mustOK(t, m.Start("wan", p, wanBinding(w, IPv4), true))
		waitEvent(t, ev, "wan", ActionConnected)
		waitEvent(t, ev, "wan", ActionDisconnected)
		st, _ := m.Status("wan")
		t.Logf("latency 1500ms: TRACK %s LATENCY_ %dms", st.Targets[0].State, st.Targets[0].Latency)
		if st.Targets[0].State != TargetDown || st.Targets[0].Latency < 1000 {
			t.Errorf("latency 1500 ms: %s %d ms", st.Targets[0].State, st.Targets[0].Latency)
		}
		mustOK(t, tb.SetLatency(0, 100*time.Millisecond))
		waitEvent(t, ev, "wan", ActionConnected)
		st, _ = m.Status("wan")
		t.Logf("latency 100ms: TRACK %s LATENCY_ %dms", st.Targets[0].State, st.Targets[0].Latency)
		if st.Targets[0].State != TargetUp || st.Targets[0].Latency > 500 {
			t.Errorf("latency 100 ms: %s %d ms", st.Targets[0].State, st.Targets[0].Latency)
		}
		mustOK(t, tb.SetLatency(0, 0))
	})
}

// serveTCP accepts connections on addr in ns and hands each to handle (in
// a goroutine of its own, the connection closed after it) until the test
// ends.
func serveTCP(t *testing.T, ns *testbed.NS, addr string, handle func(net.Conn)) {
	t.Helper()
	l, err := ns.Listen("tcp", addr)
	mustOK(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				handle(c)
			}()
		}
	}()
}

func netnsHandle(ns *testbed.NS) netns.NsHandle { return netns.NsHandle(ns.NetNSFd()) }

// TestCloseReleasesEverything checks that Close leaves no tracker
// goroutine and no socket behind (native probes, persistent ICMP sockets
// included).
func TestCloseReleasesEverything(t *testing.T) {
	ns := testbed.NewNS(t, "trackclose")
	lo, err := ns.Handle().LinkByName("lo")
	mustOK(t, err)
	mustOK(t, ns.Handle().LinkSetUp(lo))
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		mustOK(t, err)
		return len(ents)
	}
	fd0 := fds()
	m := NewManager(Config{Logger: testLogger(t), Dir: t.TempDir(), Probers: nsNative(ns)})
	for i, method := range []Method{MethodPing, MethodNpingICMP, MethodNpingTCP, MethodNslookup, MethodHTTPing} {
		p := DefaultParams("127.0.0.1", "127.0.0.2")
		p.Method = string(method)
		p.Interval = time.Second
		mustOK(t, m.Start(fmt.Sprintf("wan%d", i), p, Binding{Device: "lo", Source: netip.MustParseAddr("127.0.0.1")}, true))
	}
	events := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range m.Events() {
			events++
		}
	}()
	time.Sleep(1500 * time.Millisecond)
	mustOK(t, m.Close())
	<-done
	if fd := fds(); fd > fd0 {
		t.Errorf("after Close: %d fds, before: %d", fd, fd0)
	}
	if g := trackGoroutines(); len(g) > 0 {
		t.Errorf("after Close, goroutines of the package remain:\n%s", strings.Join(g, "\n\n"))
	}
	if events < 5 {
		t.Errorf("%d events, want at least the 5 first connects", events)
	}
}

// TestDetectionTestbed measures on real probes the time from an upstream
// cut (requests silently dropped) to `disconnected` for the shipped wan (4
// targets, reliability 2, timeout 4) with the defaults and with interval
// 1, down 3; the cut falls 30 % of the interval after a round ended
// (TestDetectionTimes has the arithmetic). It takes about a minute and a
// half, so it runs only with MWAN3D_TRACK_SLOW=1.
func TestDetectionTestbed(t *testing.T) {
	if os.Getenv("MWAN3D_TRACK_SLOW") != "1" {
		t.Skip("takes over a minute; set MWAN3D_TRACK_SLOW=1 to run it")
	}
	tests := []struct {
		name           string
		interval, best time.Duration // best: cut just as a round starts
		down           int
	}{
		{"defaults", 10 * time.Second, 5*4*time.Second + 4*10*time.Second, 5},
		{"interval 1, down 3", time.Second, 3*4*time.Second + 2*time.Second, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tb := testbed.New(t, testbed.Spec{WANs: 1, Family: testbed.IPv4})
			m := NewManager(Config{Logger: testLogger(t), Dir: t.TempDir(), Probers: nsNative(tb.Router)})
			defer m.Close()
			var targets []string
			for _, a := range tb.Targets4 {
				targets = append(targets, a.String())
			}
			p := DefaultParams(targets...)
			p.Reliability = 2
			p.Interval, p.FailureInterval, p.RecoveryInterval = tc.interval, tc.interval, tc.interval
			p.Down = tc.down
			mustOK(t, m.Start("wan", p, wanBinding(tb.WANs[0], IPv4), true))
			ev := m.Events()
			waitEvent(t, ev, "wan", ActionConnected)
			st, _ := m.Status("wan")
			for turn := st.Turn; st.Turn == turn; { // the end of the next round
				time.Sleep(2 * time.Millisecond)
				st, _ = m.Status("wan")
			}
			phase := tc.interval * 3 / 10
			time.Sleep(phase)
			cut := time.Now()
			mustOK(t, tb.CutUpstream(0))
			waitEvent(t, ev, "wan", ActionDisconnecting)
			off := waitEvent(t, ev, "wan", ActionDisconnected)
			t.Logf("%s: upstream cut %v after a round → disconnected %v (virtual time: %v)",
				tc.name, phase, off.Time.Sub(cut).Round(time.Millisecond), tc.best+tc.interval-phase)
		})
	}
}

// trackGoroutines returns the stacks of the goroutines running code of
// this package other than tests.
func trackGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "mwan3d/track.") && !strings.Contains(g, "mwan3d/track.Test") {
			out = append(out, g)
		}
	}
	return out
}

// TestPingSocketSurvivesDeviceRecreation checks that the persistent ICMP
// socket of a prober is replaced when its device is deleted and created
// again under the same name (PPPoE reconnects do that): SO_BINDTODEVICE
// holds the old interface index.
func TestPingSocketSurvivesDeviceRecreation(t *testing.T) {
	a := testbed.NewNS(t, "trackre")
	b := testbed.NewNS(t, "trackrepeer")
	link := func() {
		t.Helper()
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "wz0"}, PeerName: "wz1", PeerNamespace: netlink.NsFd(b.NetNSFd())}
		mustOK(t, a.Handle().LinkAdd(veth))
		for _, side := range []struct {
			ns   *testbed.NS
			dev  string
			addr string
		}{{a, "wz0", "10.97.0.1/24"}, {b, "wz1", "10.97.0.2/24"}} {
			l, err := side.ns.Handle().LinkByName(side.dev)
			mustOK(t, err)
			addr, _ := netlink.ParseAddr(side.addr)
			mustOK(t, side.ns.Handle().AddrAdd(l, addr))
			mustOK(t, side.ns.Handle().LinkSetUp(l))
		}
		waitOperUp(t, a, "wz0")
		waitOperUp(t, b, "wz1")
	}
	link()
	p := probeParams(MethodPing, IPv4)
	pr, err := nsNative(a).NewProber(p, Binding{Device: "wz0", Source: netip.MustParseAddr("10.97.0.1")})
	mustOK(t, err)
	defer closeProber(pr)
	if r := pr.Probe(t.Context(), "10.97.0.2"); r.Received != 1 {
		t.Fatalf("before: %v", r.Err)
	}
	l, err := a.Handle().LinkByName("wz0")
	mustOK(t, err)
	mustOK(t, a.Handle().LinkDel(l))
	r := pr.Probe(t.Context(), "10.97.0.2")
	t.Logf("device gone: received %d, err %v", r.Received, r.Err)
	if r.Received != 0 {
		t.Errorf("probe answered without a device")
	}
	link()
	var ok bool
	for range 2 { // the first send may still find the old socket
		if r := pr.Probe(t.Context(), "10.97.0.2"); r.Received == 1 {
			ok = true
			break
		}
	}
	if !ok {
		t.Error("no answer through the re-created device")
	}
}

// TestPingICMPErrorEndsProbe checks that an ICMP error about a request
// (here "network unreachable" from the next router, which has no route to
// the target) ends the probe as failed without waiting for the timeout,
// as iputils' ping does, in both families.
func TestPingICMPErrorEndsProbe(t *testing.T) {
	a := testbed.NewNS(t, "trackunr")
	b := testbed.NewNS(t, "trackunrpeer")
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "wu0"}, PeerName: "wu1", PeerNamespace: netlink.NsFd(b.NetNSFd())}
	mustOK(t, a.Handle().LinkAdd(veth))
	for _, side := range []struct {
		ns    *testbed.NS
		dev   string
		addrs []string
	}{{a, "wu0", []string{"10.96.0.1/24", "2001:db8:96::1/64"}}, {b, "wu1", []string{"10.96.0.2/24", "2001:db8:96::2/64"}}} {
		l, err := side.ns.Handle().LinkByName(side.dev)
		mustOK(t, err)
		for _, s := range side.addrs {
			addr, err := netlink.ParseAddr(s)
			mustOK(t, err)
			addr.Flags = unix.IFA_F_NODAD
			mustOK(t, side.ns.Handle().AddrAdd(l, addr))
		}
		mustOK(t, side.ns.Handle().LinkSetUp(l))
	}
	waitOperUp(t, a, "wu0")
	waitOperUp(t, b, "wu1")
	// The peer forwards but has no route beyond its link: it answers
	// "network unreachable" (ICMPv6: "no route"), every time (no rate
	// limit).
	mustOK(t, b.Do(func() error {
		for f, v := range map[string]string{
			"/proc/sys/net/ipv4/ip_forward":          "1",
			"/proc/sys/net/ipv6/conf/all/forwarding": "1",
			"/proc/sys/net/ipv4/icmp_ratelimit":      "0",
			"/proc/sys/net/ipv6/icmp/ratelimit":      "0",
		} {
			if err := os.WriteFile(f, []byte(v), 0o644); err != nil {
				return err
			}
		}
		return nil
	}))
	l, err := a.Handle().LinkByName("wu0")
	mustOK(t, err)
	for _, gw := range []string{"10.96.0.2", "2001:db8:96::2"} {
		mustOK(t, a.Handle().RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: net.ParseIP(gw)}))
	}
	for _, tc := range []struct {
		f           Family
		src, target string
		count       int
	}{
		{IPv4, "10.96.0.1", "10.95.0.1", 1},
		{IPv6, "2001:db8:96::1", "2001:db8:95::1", 1},
		{IPv4, "10.96.0.1", "10.95.0.1", 3},
	} {
		p := probeParams(MethodPing, tc.f)
		p.Timeout = 4 * time.Second
		p.Count = tc.count
		start := time.Now()
		r := probeOnce(t, nsNative(a), p, Binding{Device: "wu0", Source: netip.MustParseAddr(tc.src)}, tc.target)
		t.Logf("%s ping -c %d %s: %v after %v", tc.f, tc.count, tc.target, r.Err, time.Since(start))
		if r.Received != 0 || r.Sent != tc.count || r.Err == nil || !strings.Contains(r.Err.Error(), "ICMP destination unreachable") {
			t.Errorf("%s ping -c %d: sent %d received %d err %v; want every request failed by an ICMP error",
				tc.f, tc.count, r.Sent, r.Received, r.Err)
		}
	}
}

// waitOperUp waits until dev in ns is operationally up: until then the
// kernel drops what is sent on it (the first ARP request of a probe, which
// is only retried a second later).
func waitOperUp(t *testing.T, ns *testbed.NS, dev string) {
	t.Helper()
	for range 500 {
		l, err := ns.Handle().LinkByName(dev)
		mustOK(t, err)
		if l.Attrs().OperState == netlink.OperUp {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s in %s not up after 5 s", dev, ns.Name)
}
