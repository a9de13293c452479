//go:build linux

package rtsync

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
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/internal/testbed"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// nsLab is a router namespace with a LAN veth (lan0) and WAN veths
// eth1..ethN whose peers sit in an ISP namespace.
type nsLab struct {
	router, isp *testbed.NS
	k           *NetlinkKernel
	in          Input
}

// ipBatch runs `ip -batch` with the given lines inside ns.
func ipBatch(t testing.TB, ns *testbed.NS, lines []string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "batch")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ns.Run(context.Background(), "ip", "-batch", path); err != nil {
		t.Fatal(err)
	}
}

func run(t testing.TB, ns *testbed.NS, args ...string) string {
	t.Helper()
	out, err := ns.Run(context.Background(), args[0], args[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// newNSLab builds the namespaces. With dual, every WAN i also has an IPv6
// interface; the config then lists wan<i> (IPv4, id 2i−1) and wan<i>_6
// (IPv6, id 2i); otherwise wan<i> has id i.
func newNSLab(t testing.TB, wans int, dual bool) *nsLab {
	t.Helper()
	l := &nsLab{router: testbed.NewNS(t, "rtsr"), isp: testbed.NewNS(t, "rtsi")}
	r := []string{
		"link add lan0 type veth peer name lanp netns " + l.isp.Name,
		"link set lan0 up",
		"addr add 192.168.1.1/24 dev lan0",
		"addr add fd00:1::1/64 dev lan0 nodad",
	}
	isp := []string{"link set lanp up"}
	l.in = Input{Mask: 0x3f00, NoIPv6: !dual}
	for i := 1; i <= wans; i++ {
		dev := "eth" + strconv.Itoa(i)
		r = append(r,
			fmt.Sprintf("link add %s type veth peer name isp%d netns %s", dev, i, l.isp.Name),
			"link set "+dev+" up",
			fmt.Sprintf("addr add 10.%d.0.2/24 dev %s", i, dev),
			fmt.Sprintf("route add default via 10.%d.0.1 dev %s metric %d", i, dev, 10*i),
		)
		isp = append(isp,
			fmt.Sprintf("link set isp%d up", i),
			fmt.Sprintf("addr add 10.%d.0.1/24 dev isp%d", i, i),
		)
		name := "wan" + strconv.Itoa(i)
		if !dual {
			l.in.Interfaces = append(l.in.Interfaces, Interface{Name: name, ID: i, Family: IPv4, Enabled: true, Up: true, Device: dev})
			continue
		}
		r = append(r,
			fmt.Sprintf("addr add 2001:db8:%d::2/64 dev %s nodad", i, dev),
			fmt.Sprintf("route add ::/0 via 2001:db8:%d::1 dev %s metric %d", i, dev, 10*i),
		)
		isp = append(isp, fmt.Sprintf("addr add 2001:db8:%d::1/64 dev isp%d nodad", i, i))
		l.in.Interfaces = append(l.in.Interfaces,
			Interface{Name: name, ID: 2*i - 1, Family: IPv4, Enabled: true, Up: true, Device: dev},
			Interface{Name: name + "_6", ID: 2 * i, Family: IPv6, Enabled: true, Up: true, Device: dev},
		)
	}
	ipBatch(t, l.router, r)
	ipBatch(t, l.isp, isp)
	ns := netns.NsHandle(l.router.NetNSFd())
	k, err := OpenKernel(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	l.k = k
	return l
}

// kernelText is everything rtsync could touch in the router namespace.
func (l *nsLab) kernelText(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	for _, f := range []string{"-4", "-6"} {
		b.WriteString(run(t, l.router, "ip", f, "rule"))
		b.WriteString(run(t, l.router, "ip", f, "route", "show", "table", "all"))
	}
	return b.String()
}

// ipLines runs an ip command in the router and returns its trimmed lines.
func (l *nsLab) ipLines(t testing.TB, args ...string) []string {
	t.Helper()
	var lines []string
	for _, line := range strings.Split(run(t, l.router, append([]string{"ip"}, args...)...), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, line)
		}
	}
	return lines
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// checkAgainstIP compares the desired state with `ip rule` and `ip route
// show table N` in the namespace.
func (l *nsLab) checkAgainstIP(t *testing.T, st *State) {
	t.Helper()
	for _, f := range families(l.in) {
		fam := "-" + f.String()[3:]
		var want []string
		prios := make(map[string]bool)
		for _, r := range st.Rules {
			if r.Family == f {
				want = append(want, strings.Replace(r.String(), "\t", " ", 1))
				prios[strconv.FormatUint(uint64(r.Priority), 10)+":"] = true
			}
		}
		var got []string
		for _, line := range l.ipLines(t, fam, "rule") {
			// Foreign rules may share a priority; ours all read "from all".
			if w := strings.Fields(line); prios[w[0]] && w[2] == "all" {
				got = append(got, strings.Join(strings.Fields(line), " "))
			}
		}
		for i := range want {
			want[i] = strings.Join(strings.Fields(want[i]), " ")
		}
		if !slices.Equal(got, want) {
			t.Errorf("ip %s rule:\n%s\nwant:\n%s", fam, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		for _, tb := range st.Tables {
			if tb.Family != f {
				continue
			}
			var want []string
			for _, r := range tb.Routes {
				want = append(want, r.format(st.names))
			}
			got := l.ipLines(t, fam, "route", "show", "table", strconv.Itoa(int(tb.ID)))
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("ip %s route show table %d:\n%s\nwant:\n%s", fam, tb.ID, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		}
	}
}

func TestKernelReconcile(t *testing.T) {
	l := newNSLab(t, 2, true)
	// Foreign state: tailscale-like rules at 1300 and 5210 with table 52, a
	// pbr-like rule at 2500, a rule in our slot with a selector we never
	// use, and a table of an id no interface has.
	ipBatch(t, l.router, []string{
		"rule add pref 1300 fwmark 0x80000/0xff0000 lookup main",
		"rule add pref 2500 fwmark 0x10000/0xff0000 lookup 100",
		"rule add pref 2001 from 10.0.0.0/8 lookup 9",
		"rule add pref 5210 fwmark 0x80000/0xff0000 lookup 52",
		"route add 100.64.0.0/10 dev lan0 table 52",
		"route add 10.50.0.0/16 dev lan0 table 50",
		"route add 10.60.0.0/16 via 192.168.1.254 dev lan0 proto static metric 5",
	})
	run(t, l.router, "ip", "-6", "rule", "add", "pref", "1300", "fwmark", "0x80000/0xff0000", "lookup", "main")
	before := l.kernelText(t)

	sy := NewSyncer(l.k, testLogger(t))
	res, err := sy.Reconcile(l.in)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first reconcile: %d changes", res.Changes)
	l.checkAgainstIP(t, res.State)
	checkGolden(t, "kernel/two-wans-dual.golden", l.stableText(t, res.State))

	res, err = sy.Reconcile(l.in)
	if err != nil {
		t.Fatal(err)
	}
	if res.Changes != 0 {
		t.Errorf("second reconcile made %d changes; the kernel does not read back what was written", res.Changes)
	}

	// The foreign rules are where they were.
	rules := strings.Join(l.ipLines(t, "-4", "rule"), "\n")
	for _, want := range []string{
		"1300:\tfrom all fwmark 0x80000/0xff0000 lookup main",
		"2001:\tfrom 10.0.0.0/8 lookup 9",
		"2500:\tfrom all fwmark 0x10000/0xff0000 lookup 100",
		"5210:\tfrom all fwmark 0x80000/0xff0000 lookup 52",
	} {
		if !strings.Contains(rules, want) {
			t.Errorf("foreign rule %q is gone:\n%s", want, rules)
		}
	}

	if err := sy.Cleanup(l.in); err != nil {
		t.Fatal(err)
	}
	if after := l.kernelText(t); after != before {
		t.Errorf("cleanup did not restore the kernel:\n%s", lineDiff(before, after))
	}
}

// stableText renders the parts of the kernel state that do not depend on
// link indexes or timing: our rules and tables as `ip` shows them.
func (l *nsLab) stableText(t testing.TB, st *State) string {
	var b strings.Builder
	for _, f := range families(l.in) {
		fam := "-" + f.String()[3:]
		fmt.Fprintf(&b, "# ip %s rule\n", fam)
		for _, line := range l.ipLines(t, fam, "rule") {
			b.WriteString(line + "\n")
		}
		for _, tb := range st.Tables {
			if tb.Family == f {
				fmt.Fprintf(&b, "# ip %s route show table %d\n", fam, tb.ID)
				for _, line := range l.ipLines(t, fam, "route", "show", "table", strconv.Itoa(int(tb.ID))) {
					b.WriteString(line + "\n")
				}
			}
		}
	}
	return b.String()
}

// eventually polls cond until it holds (10s at most) and logs how long it
// took; it never asserts on time.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("%s after %v", what, time.Since(start).Round(time.Millisecond))
}

func (l *nsLab) tableHas(t testing.TB, fam string, table int, line string) bool {
	return slices.Contains(l.ipLines(t, fam, "route", "show", "table", strconv.Itoa(table)), line)
}

func TestKernelWatcherFollowsMain(t *testing.T) {
	l := newNSLab(t, 2, true)
	w := NewWatcher(l.k, WatcherConfig{Debounce: 20 * time.Millisecond, Logger: testLogger(t)})
	w.SetInput(l.in)
	goroutines := runtime.NumGoroutine()
	done := make(chan error, 1)
	go func() { done <- w.Run(t.Context()) }()
	defer func() {
		if err := w.Close(); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Error(err)
		}
		// The subscriptions' goroutines exit right after closing their
		// channels; give them a moment, then none may be left.
		for start := time.Now(); runtime.NumGoroutine() > goroutines && time.Since(start) < 2*time.Second; {
			time.Sleep(time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > goroutines {
			buf := make([]byte, 1<<20)
			t.Errorf("%d goroutines left after Close:\n%s", n-goroutines, buf[:runtime.Stack(buf, true)])
		}
		if err := w.Cleanup(); err != nil {
			t.Error(err)
		}
		if got := l.ipLines(t, "-4", "rule"); len(got) != 3 {
			t.Errorf("rules left after cleanup:\n%s", strings.Join(got, "\n"))
		}
	}()

	res := <-w.Results()
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	l.checkAgainstIP(t, res.State)

	run(t, l.router, "ip", "route", "add", "10.42.0.0/16", "via", "192.168.1.254", "dev", "lan0", "proto", "static")
	want := "10.42.0.0/16 via 192.168.1.254 dev lan0 proto static"
	eventually(t, "main route copied to tables 1 and 3", func() bool {
		return l.tableHas(t, "-4", 1, want) && l.tableHas(t, "-4", 3, want)
	})
	run(t, l.router, "ip", "-6", "route", "add", "fd00:42::/48", "via", "fd00:1::254", "dev", "lan0", "proto", "static")
	want6 := "fd00:42::/48 via fd00:1::254 dev lan0 proto static metric 1024 pref medium"
	eventually(t, "IPv6 main route copied to tables 2 and 4", func() bool {
		return l.tableHas(t, "-6", 2, want6) && l.tableHas(t, "-6", 4, want6)
	})
	run(t, l.router, "ip", "route", "del", "10.42.0.0/16")
	eventually(t, "deleted main route removed from tables", func() bool {
		return !l.tableHas(t, "-4", 1, want) && !l.tableHas(t, "-4", 3, want)
	})
	// A WAN's default route moves to another gateway: replaced in table 1.
	run(t, l.router, "ip", "route", "replace", "default", "via", "10.1.0.9", "dev", "eth1", "metric", "10")
	eventually(t, "changed default route replaced in table 1", func() bool {
		return l.tableHas(t, "-4", 1, "default via 10.1.0.9 dev eth1 metric 10")
	})
	// Someone deletes one of our rules: the next reconcile puts it back.
	run(t, l.router, "ip", "rule", "del", "pref", "2001")
	run(t, l.router, "ip", "route", "add", "10.43.0.0/16", "dev", "lan0")
	eventually(t, "deleted rule restored by the next reconcile", func() bool {
		return slices.Contains(l.ipLines(t, "-4", "rule"), "2001:\tfrom all fwmark 0x100/0x3f00 lookup 1")
	})

	// Carrier loss on eth2 is reported.
	for c := range drain(w.LinkChanges()) {
		_ = c
	}
	// The kernel sends carrier changes from its (machine-wide) linkwatch
	// work, which runs non-urgent events at most once a second: the time
	// logged below is mostly the kernel's.
	run(t, l.isp, "ip", "link", "set", "isp2", "down")
	start := time.Now()
	for c := range w.LinkChanges() {
		if c.Name == "eth2" && !c.Carrier {
			t.Logf("carrier loss reported after %v", time.Since(start).Round(time.Microsecond))
			break
		}
	}
}

// drain yields what is buffered on ch without blocking.
func drain[T any](ch <-chan T) func(func(T) bool) {
	return func(yield func(T) bool) {
		for {
			select {
			case v := <-ch:
				if !yield(v) {
					return
				}
			default:
				return
			}
		}
	}
}

// TestKernelRouteStorm adds 10 000 routes to main and deletes half of them
// while the watcher runs; the tables must end exactly right.
func TestKernelRouteStorm(t *testing.T) {
	l := newNSLab(t, 2, false)
	var lost atomic.Int64
	log := slog.New(countingHandler{Handler: testLogger(t).Handler(), match: "subscription ended", n: &lost})
	w := NewWatcher(l.k, WatcherConfig{Debounce: 20 * time.Millisecond, Logger: log})
	w.SetInput(l.in)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	if res := <-w.Results(); res.Err != nil {
		t.Fatal(res.Err)
	}

	const n = 10000
	var adds, dels []string
	for i := range n {
		adds = append(adds, fmt.Sprintf("route add 10.%d.%d.0/24 dev lan0 proto static", 100+i/256, i%256))
		if i%2 == 0 {
			dels = append(dels, fmt.Sprintf("route del 10.%d.%d.0/24 dev lan0", 100+i/256, i%256))
		}
	}
	peak := sampleHeap(ctx)
	ipBatch(t, l.router, adds)
	ipBatch(t, l.router, dels)

	var main []string
	for _, line := range l.ipLines(t, "-4", "route", "show", "table", "main") {
		if !strings.HasPrefix(line, "default") {
			main = append(main, line)
		}
	}
	if len(main) != n/2+3 { // + 192.168.1.0/24, 10.1.0.0/24, 10.2.0.0/24
		t.Fatalf("main has %d routes, want %d", len(main), n/2+3)
	}
	tableLines := func(id int) []string {
		var out []string
		for _, line := range l.ipLines(t, "-4", "route", "show", "table", strconv.Itoa(id)) {
			if !strings.HasPrefix(line, "default") {
				out = append(out, line)
			}
		}
		return out
	}
	eventually(t, "tables converged after the storm", func() bool {
		return len(tableLines(1)) == n/2+2 && len(tableLines(2)) == n/2+2
	})
	for _, id := range []int{1, 2} {
		got, want := tableLines(id), forTable(main, id)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("table %d differs from main:\n%s", id, lineDiff(strings.Join(want, "\n"), strings.Join(got, "\n")))
		}
	}
	p := peak()
	t.Logf("subscriptions lost and renewed: %d; peak heap in use: %.1f MiB", lost.Load(), float64(p)/(1<<20))
	if p > 256<<20 {
		t.Errorf("peak heap %d MiB for %d routes", p>>20, n)
	}
}

// forTable returns the main lines that belong into table id of a lab with
// WANs on eth1, eth2, …: all but the other WANs' routes.
func forTable(main []string, id int) []string {
	var out []string
	for _, line := range main {
		if strings.Contains(line, " dev eth") && !strings.Contains(line, fmt.Sprintf(" dev eth%d ", id)) {
			continue
		}
		out = append(out, line)
	}
	return out
}

// countingHandler counts the records whose message contains match.
type countingHandler struct {
	slog.Handler
	match string
	n     *atomic.Int64
}

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.match) {
		h.n.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

func (h countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return countingHandler{Handler: h.Handler.WithAttrs(as), match: h.match, n: h.n}
}

func (h countingHandler) WithGroup(name string) slog.Handler {
	return countingHandler{Handler: h.Handler.WithGroup(name), match: h.match, n: h.n}
}

// sampleHeap samples the heap in use every 20ms until the returned function
// is called; that function returns the peak.
func sampleHeap(ctx context.Context) func() uint64 {
	stop := make(chan struct{})
	result := make(chan uint64)
	go func() {
		var peak uint64
		var ms runtime.MemStats
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-tick.C:
			case <-stop:
				result <- peak
				return
			case <-ctx.Done():
				result <- peak
				return
			}
		}
	}()
	return func() uint64 {
		close(stop)
		return <-result
	}
}

// gatedSource wraps a source so the test can stall the consumer of the
// notifications and overflow the kernel socket deterministically.
type gatedSource struct {
	src  source
	mu   sync.Mutex
	gate chan struct{} // closed: open
}

func (g *gatedSource) watch(done <-chan struct{}, s sink) error {
	return g.src.watch(done, gatedSink{sink: s, g: g, done: done})
}

func (g *gatedSource) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gate = make(chan struct{})
}

func (g *gatedSource) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.gate)
}

type gatedSink struct {
	sink
	g    *gatedSource
	done <-chan struct{}
}

func (s gatedSink) changed() {
	s.g.mu.Lock()
	gate := s.g.gate
	s.g.mu.Unlock()
	select {
	case <-gate:
	case <-s.done:
	}
	s.sink.changed()
}

// TestKernelResubscribesAfterOverflow stalls the watcher during a route
// storm so the kernel drops notifications (ENOBUFS): the subscription must
// be renewed and a full resync must bring the tables right.
func TestKernelResubscribesAfterOverflow(t *testing.T) {
	l := newNSLab(t, 2, false)
	l.k.subBuffer = 4096
	var lost atomic.Int64
	log := slog.New(countingHandler{Handler: testLogger(t).Handler(), match: "subscription ended", n: &lost})
	g := &gatedSource{src: l.k, gate: make(chan struct{})}
	close(g.gate)
	w := newWatcher(l.k, g, WatcherConfig{Debounce: 20 * time.Millisecond, Logger: log})
	w.SetInput(l.in)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	if res := <-w.Results(); res.Err != nil {
		t.Fatal(res.Err)
	}
	time.Sleep(50 * time.Millisecond) // the subscription's own resync
	g.hold()
	var adds []string
	for i := range 2000 {
		adds = append(adds, fmt.Sprintf("route add 10.%d.%d.0/24 dev lan0", 100+i/256, i%256))
	}
	ipBatch(t, l.router, adds)
	g.release()
	eventually(t, "subscription renewed after the overflow", func() bool { return lost.Load() > 0 })
	eventually(t, "tables resynced", func() bool {
		return len(l.ipLines(t, "-4", "route", "show", "table", "1")) == 2000+3 &&
			len(l.ipLines(t, "-4", "route", "show", "table", "2")) == 2000+3
	})
}

// BenchmarkKernelReconcile measures a full reconcile with 4 WANs and a main
// table of 1 000 and 100 000 LAN routes (each copied into all 4 tables):
// "initial" fills empty tables (4×N route writes), "steady" re-lists
// everything and finds nothing to do.
func BenchmarkKernelReconcile(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("main=%d", n), func(b *testing.B) {
			l := newNSLab(b, 4, false)
			lines := make([]string, 0, n)
			for i := range n {
				lines = append(lines, fmt.Sprintf("route add 10.%d.%d.%d/30 dev lan0 proto static", 100+i/16384, i/64%256, i%64*4))
			}
			ipBatch(b, l.router, lines)
			flush := []string{"route flush table 1", "route flush table 2", "route flush table 3", "route flush table 4"}
			b.Run("initial", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					b.StopTimer()
					ipBatch(b, l.router, flush)
					sy := NewSyncer(l.k, nil)
					b.StartTimer()
					res, err := sy.Reconcile(l.in)
					if err != nil {
						b.Fatal(err)
					}
					if res.Changes < 4*n {
						b.Fatalf("%d changes, want at least %d", res.Changes, 4*n)
					}
				}
				b.ReportMetric(float64(4*n), "routes-written/op")
			})
			b.Run("steady", func(b *testing.B) {
				sy := NewSyncer(l.k, nil)
				if _, err := sy.Reconcile(l.in); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					res, err := sy.Reconcile(l.in)
					if err != nil {
						b.Fatal(err)
					}
					if res.Changes != 0 {
						b.Fatalf("%d changes in a steady state", res.Changes)
					}
				}
			})
		})
	}
}

// dialMarked connects from ns to dst with SO_MARK mark and returns the
// source address the echo server saw (it answers with "addr:port\n").
func dialMarked(ns *testbed.NS, dst netip.AddrPort, mark uint32) (netip.Addr, error) {
	var seen netip.Addr
	err := ns.Do(func() error {
		d := net.Dialer{Timeout: 2 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
			}); err != nil {
				return err
			}
			return serr
		}}
		c, err := d.Dial("tcp", dst.String())
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return err
		}
		ap, err := netip.ParseAddrPort(strings.TrimSpace(line))
		seen = ap.Addr()
		return err
	})
	return seen, err
}

// TestKernelMarksSelectWAN checks the contract end to end on the testbed:
// traffic carrying mark(id) leaves through that interface's WAN, the
// blackhole and unreachable marks are refused, and a table without a route
// does not fall through to main (the 3000+id rule).
func TestKernelMarksSelectWAN(t *testing.T) {
	tb := testbed.New(t, testbed.Spec{WANs: 3, Family: testbed.Dual})
	in := Input{Mask: 0x3f00}
	for i, w := range tb.WANs {
		in.Interfaces = append(in.Interfaces,
			Interface{Name: w.Name, ID: 2*i + 1, Family: IPv4, Enabled: true, Up: true, Device: w.Dev},
			Interface{Name: w.Name6, ID: 2*i + 2, Family: IPv6, Enabled: true, Up: true, Device: w.Dev},
		)
	}
	k, err := OpenKernel(netns.NsHandle(tb.Router.NetNSFd()))
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	sy := NewSyncer(k, testLogger(t))
	res, err := sy.Reconcile(in)
	if err != nil {
		t.Fatal(err)
	}
	// Unmarked traffic uses main: the WAN with the lowest metric. This also
	// starts the echo server.
	if wans, err := tb.TCPFlows(tb.Router, 1, testbed.IPv4, 0); err != nil || wans[0] != 0 {
		t.Fatalf("unmarked flow: WAN %v, err %v; want 0", wans, err)
	}
	if _, err := tb.TCPFlows(tb.Router, 1, testbed.IPv6, 0); err != nil {
		t.Fatal(err)
	}
	m, _ := newMarks(in.Mask)
	for _, ifc := range in.Interfaces {
		echo := tb.Echo4
		if ifc.Family == IPv6 {
			echo = tb.Echo6
		}
		src, err := dialMarked(tb.Router, netip.AddrPortFrom(echo, uint16(tb.EchoPort)), m.mark(uint32(ifc.ID)))
		if err != nil {
			t.Errorf("%s (mark %#x): %v", ifc.Name, m.mark(uint32(ifc.ID)), err)
			continue
		}
		if got, _ := tb.WANBySource(src); tb.WANs[got].Dev != ifc.Device {
			t.Errorf("%s (mark %#x) left through WAN %d (%s), want %s", ifc.Name, m.mark(uint32(ifc.ID)), got, tb.WANs[got].Dev, ifc.Device)
		}
	}
	dst := netip.AddrPortFrom(tb.Echo4, uint16(tb.EchoPort))
	if _, err := dialMarked(tb.Router, dst, m.mark(m.unreachable())); !errors.Is(err, unix.ENETUNREACH) {
		t.Errorf("unreachable mark: err %v, want ENETUNREACH", err)
	}
	if _, err := dialMarked(tb.Router, dst, m.mark(m.blackhole())); err == nil {
		t.Error("blackhole mark: connected")
	}
	// Without a route in table 3 (wanb), wanb's mark must not fall through
	// to main.
	for _, r := range res.State.Tables {
		if r.Family == IPv4 && r.ID == 3 {
			for _, rt := range r.Routes {
				if rt.IsDefault() {
					if err := k.DelRoute(rt); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	if _, err := dialMarked(tb.Router, dst, m.mark(3)); !errors.Is(err, unix.ENETUNREACH) {
		t.Errorf("mark 3 without a default route in table 3: err %v, want ENETUNREACH", err)
	}
	if err := sy.Cleanup(in); err != nil {
		t.Fatal(err)
	}
}
