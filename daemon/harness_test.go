package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/internal/netifdtest"
	"github.com/mwan3d/mwan3d/nft"
	"github.com/mwan3d/mwan3d/nft/nfttest"
	"github.com/mwan3d/mwan3d/rtsync"
	"github.com/mwan3d/mwan3d/track"
	"github.com/mwan3d/mwan3d/ubus"
	"github.com/mwan3d/mwan3d/ubus/ubustest"
)

// fakeRoutes stands in for rtsync.Watcher: every input is reconciled at
// once against a fixed kernel snapshot (a LAN route) with rtsync's own
// Desired, and the result is delivered like the watcher does.
type fakeRoutes struct {
	mu      sync.Mutex
	inputs  []rtsync.Input
	results chan rtsync.Result
	links   chan rtsync.LinkChange
	cleaned bool
	closed  chan struct{}
	once    sync.Once
}

func newFakeRoutes() *fakeRoutes {
	return &fakeRoutes{results: make(chan rtsync.Result, 1), links: make(chan rtsync.LinkChange, 16), closed: make(chan struct{})}
}

var lanSnapshot = rtsync.Snapshot{
	Links: []rtsync.Link{{Index: 1, Name: "lo", Up: true, Carrier: true}, {Index: 2, Name: "br-lan", Up: true, Carrier: true}},
	Routes: []rtsync.Route{
		{Family: rtsync.IPv4, Table: 254, Type: 1, Protocol: 2, Scope: 253, Dst: netip.MustParsePrefix("192.168.1.0/24"), OIF: 2, PrefSrc: netip.MustParseAddr("192.168.1.1")},
		{Family: rtsync.IPv4, Table: 255, Type: 2, Protocol: 2, Scope: 254, Dst: netip.MustParsePrefix("192.168.1.1/32"), OIF: 2, PrefSrc: netip.MustParseAddr("192.168.1.1")},
	},
}

func (f *fakeRoutes) SetInput(in rtsync.Input) {
	f.mu.Lock()
	f.inputs = append(f.inputs, in)
	f.mu.Unlock()
	st, err := rtsync.Desired(in, lanSnapshot)
	r := rtsync.Result{State: st, Err: err}
	select {
	case <-f.results:
	default:
	}
	f.results <- r
}

func (f *fakeRoutes) last() rtsync.Input {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.inputs) == 0 {
		return rtsync.Input{}
	}
	return f.inputs[len(f.inputs)-1]
}

func (f *fakeRoutes) upDevices() string {
	var out []string
	for _, i := range f.last().Interfaces {
		if i.Up {
			out = append(out, i.Name+"="+i.Device)
		}
	}
	return strings.Join(out, " ")
}

func (f *fakeRoutes) Results() <-chan rtsync.Result         { return f.results }
func (f *fakeRoutes) LinkChanges() <-chan rtsync.LinkChange { return f.links }
func (f *fakeRoutes) Run(ctx context.Context) error {
	select {
	case <-ctx.Done():
	case <-f.closed:
	}
	return nil
}
func (f *fakeRoutes) Close() error { f.once.Do(func() { close(f.closed) }); return nil }
func (f *fakeRoutes) Cleanup() error {
	f.mu.Lock()
	f.cleaned = true
	f.mu.Unlock()
	return nil
}

// fakeTrackers stands in for track.Manager: it records the commands and
// keeps a plausible status; tests inject the events.
type fakeTrackers struct {
	mu     sync.Mutex
	calls  []string
	status map[string]track.Snapshot
	events chan track.Event
	closed bool
}

func newFakeTrackers() *fakeTrackers {
	return &fakeTrackers{status: map[string]track.Snapshot{}, events: make(chan track.Event, 64)}
}

func (f *fakeTrackers) record(format string, args ...any) {
	f.mu.Lock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
	f.mu.Unlock()
}

func (f *fakeTrackers) set(name string, change func(*track.Snapshot)) {
	f.mu.Lock()
	s := f.status[name]
	change(&s)
	f.status[name] = s
	f.mu.Unlock()
}

func (f *fakeTrackers) Start(name string, p track.Params, b track.Binding, up bool) error {
	f.record("start %s paused=%v", name, !up)
	f.set(name, func(s *track.Snapshot) {
		s.Interface, s.Tracking, s.Status = name, track.TrackingPaused, track.StatusDisabled
		s.Targets = nil
		for _, t := range p.Targets {
			s.Targets = append(s.Targets, track.TargetSnapshot{Target: t, Latency: -1, Loss: -1})
		}
	})
	return nil
}

func (f *fakeTrackers) Stop(name string) error {
	f.record("stop %s", name)
	f.mu.Lock()
	delete(f.status, name)
	f.mu.Unlock()
	return nil
}

func (f *fakeTrackers) Reconfigure(name string, p track.Params) error {
	f.record("reconfigure %s", name)
	return nil
}

func bindingString(b track.Binding) string {
	return fmt.Sprintf("%s %s %#x", b.Device, b.Source, b.Mark)
}

func (f *fakeTrackers) IfUp(name string, b track.Binding) error {
	f.record("ifup %s %s", name, bindingString(b))
	f.set(name, func(s *track.Snapshot) { s.Tracking, s.Device = track.TrackingActive, b.Device })
	return nil
}

func (f *fakeTrackers) IfDown(name string) error {
	f.record("ifdown %s", name)
	f.set(name, func(s *track.Snapshot) { s.Tracking, s.Status = track.TrackingPaused, track.StatusDisabled })
	return nil
}

func (f *fakeTrackers) IfUpdate(name string, b track.Binding) error {
	f.record("ifupdate %s %s", name, bindingString(b))
	return nil
}

func (f *fakeTrackers) Carrier(device string, up bool) { f.record("carrier %s %v", device, up) }

func (f *fakeTrackers) Status(name string) (track.Snapshot, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.status[name]
	if !ok {
		return track.Snapshot{Interface: name, Tracking: track.TrackingDown}, false
	}
	return s, true
}

func (f *fakeTrackers) Events() <-chan track.Event { return f.events }

func (f *fakeTrackers) Close() error {
	f.record("close")
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	return nil
}

// takeCalls returns the calls recorded since the last take.
func (f *fakeTrackers) takeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func (f *fakeTrackers) peekCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// emit sends a tracker event, updating the status first as a tracker does.
func (f *fakeTrackers) emit(name string, a track.Action, dev string, first bool) {
	st := map[track.Action]track.Status{track.ActionConnected: track.StatusOnline, track.ActionDisconnected: track.StatusOffline,
		track.ActionConnecting: track.StatusConnecting, track.ActionDisconnecting: track.StatusDisconnecting}[a]
	f.set(name, func(s *track.Snapshot) { s.Status = st })
	f.events <- track.Event{Interface: name, Action: a, Device: dev, FirstConnect: first, Time: time.Now()}
}

// testConfig has two tracked WANs, an untracked one that starts offline,
// a disabled one, and rules using each kind of policy.
const testConfig = `
config globals 'globals'
	option mmx_mask '0x3F00'

config interface 'wan'
	option enabled '1'
	option family 'ipv4'
	list track_ip '198.51.100.1'
	list track_ip '198.51.100.2'
	option reliability '1'

config interface 'wanb'
	option enabled '1'
	option family 'ipv4'
	list track_ip '198.51.100.3'
	list flush_conntrack 'ifdown'
	list flush_conntrack 'disconnected'

config interface 'wanc'
	option enabled '1'
	option family 'ipv4'
	option initial_state 'offline'

config interface 'wand'
	option enabled '0'
	option family 'ipv4'
	list track_ip '198.51.100.4'

config member 'wan_m1_w3'
	option interface 'wan'
	option metric '1'
	option weight '3'

config member 'wanb_m1_w1'
	option interface 'wanb'
	option metric '1'
	option weight '1'

config member 'wanb_m2'
	option interface 'wanb'
	option metric '2'

config member 'wanc_m1'
	option interface 'wanc'

config policy 'balanced'
	list use_member 'wan_m1_w3'
	list use_member 'wanb_m1_w1'

config policy 'wan_wanb'
	list use_member 'wan_m1_w3'
	list use_member 'wanb_m2'

config policy 'wanc_only'
	list use_member 'wanc_m1'
	option last_resort 'blackhole'

config rule 'https'
	option proto 'tcp'
	option dest_port '443'
	option sticky '1'
	option use_policy 'wan_wanb'

config rule 'from_guest'
	option src_iface 'guest'
	option use_policy 'wanc_only'

config rule 'dns'
	option proto 'udp'
	option dest_port '53'
	option dest_ip '192.0.2.0/24'
	option use_policy 'default'

config rule 'default_rule_v4'
	option dest_ip '0.0.0.0/0'
	option family 'ipv4'
	option use_policy 'balanced'
`

// netifdWAN returns the netifd interface of WAN n on ethN, 10.0.n.2/24.
func netifdWAN(name string, n int) netifdtest.Interface {
	return netifdtest.Interface{
		Name:   name,
		Device: fmt.Sprintf("eth%d", n),
		Metric: 10 * n,
		IPv4:   []netip.Prefix{netip.MustParsePrefix(fmt.Sprintf("10.0.%d.2/24", n))},
		Routes: []netifdtest.Route{{Target: netip.MustParsePrefix("0.0.0.0/0"), Nexthop: netip.MustParseAddr(fmt.Sprintf("10.0.%d.1", n))}},
	}
}

// harness runs the daemon against a ubustest broker, the fake netifd and
// fake kernel parts, with recording hooks.
type harness struct {
	t       testing.TB
	logger  *slog.Logger
	dir     string
	cfgPath string
	broker  *ubustest.Broker
	netifd  *netifdtest.Netifd
	client  *ubus.Conn
	nft     *nfttest.Fake
	// kernelNFT replaces the fake applier when set (benchmarks).
	kernelNFT NFT
	routes    *fakeRoutes
	trackers  *fakeTrackers
	hookLog   string
	reload    chan struct{}

	mu      sync.Mutex
	flushes []string
	events  []string

	cancel context.CancelFunc
	done   chan error
}

func newHarness(t testing.TB, cfg string) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{t: t, logger: testLogger(t), dir: dir, cfgPath: filepath.Join(dir, "mwan3"), nft: &nfttest.Fake{},
		routes: newFakeRoutes(), trackers: newFakeTrackers(), reload: make(chan struct{}, 1)}
	h.writeConfig(cfg)
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	recorder(t, filepath.Join(dir, "etc"), "mwan3.user", "")
	recorder(t, filepath.Join(dir, "etc"), "hotplug-call", "")
	h.hookLog = filepath.Join(dir, "etc", "log")
	h.broker = ubustest.New(t)
	h.netifd = netifdtest.Start(t, h.broker.Path())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := ubus.Dial(ctx, h.broker.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	h.client = c
	if _, err := c.Listen(ctx, InterfaceEvent, func(_ string, data ubus.Table) {
		a, _ := data.GetString("action")
		i, _ := data.GetString("interface")
		d, _ := data.GetString("device")
		s, _ := data.GetString("status")
		o, _ := data.GetBool("online")
		h.mu.Lock()
		h.events = append(h.events, fmt.Sprintf("%s %s %s %s online=%v", a, i, d, s, o))
		h.mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) writeConfig(cfg string) {
	h.t.Helper()
	if err := os.WriteFile(h.cfgPath, []byte(cfg), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// addNetifd publishes interfaces in the fake netifd.
func (h *harness) addNetifd(up bool, ifs ...netifdtest.Interface) {
	h.t.Helper()
	for _, i := range ifs {
		if err := h.netifd.Add(h.t.Context(), i, up); err != nil {
			h.t.Fatal(err)
		}
	}
}

// start runs the daemon and waits for its mwan3 object.
func (h *harness) start() {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	opts := Options{
		ConfigPath:  h.cfgPath,
		UbusSocket:  h.broker.Path(),
		StateDir:    filepath.Join(h.dir, "run"),
		HooksDir:    filepath.Join(h.dir, "etc"),
		HotplugCall: filepath.Join(h.dir, "etc", "hotplug-call"),
		StartupWait: 10 * time.Second,
		Logger:      h.logger,
		Reload:      h.reload,
		Kernel: &Kernel{
			NFT:      h.nftApplier(),
			Routes:   h.routes,
			Trackers: h.trackers,
			FlushConntrack: func(mask, mark uint32) (uint, error) {
				h.mu.Lock()
				h.flushes = append(h.flushes, fmt.Sprintf("%#x/%#x", mark, mask))
				h.mu.Unlock()
				return 3, nil
			},
			Uptime: func() time.Duration { return 1000 * time.Second },
		},
	}
	go func() { h.done <- Run(ctx, opts) }()
	wctx, wcancel := context.WithTimeout(h.t.Context(), 10*time.Second)
	defer wcancel()
	if err := h.broker.WaitObject(wctx, ObjectName); err != nil {
		h.t.Fatalf("daemon did not register %s: %v", ObjectName, err)
	}
	h.t.Cleanup(func() { h.stop() })
}

func (h *harness) nftApplier() NFT {
	if h.kernelNFT != nil {
		return h.kernelNFT
	}
	return h.nft
}

// stop stops the daemon and returns Run's error.
func (h *harness) stop() error {
	if h.cancel == nil {
		return nil
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		return err
	case <-time.After(20 * time.Second):
		h.t.Fatal("daemon did not stop")
		return nil
	}
}

// eventually waits until cond holds.
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (h *harness) call(method string, args any) (ubus.Table, error) {
	ctx, cancel := context.WithTimeout(h.t.Context(), 10*time.Second)
	defer cancel()
	return h.client.Call(ctx, ObjectName, method, args)
}

func (h *harness) mustCall(method string, args any) ubus.Table {
	h.t.Helper()
	t, err := h.call(method, args)
	if err != nil {
		h.t.Fatalf("call %s %v: %v", method, args, err)
	}
	return t
}

// hooks returns the hook runs recorded so far (after waiting for n).
func (h *harness) hooks(n int) []string {
	h.t.Helper()
	var lines []string
	h.eventually(fmt.Sprintf("%d hook runs", n), func() bool {
		data, _ := os.ReadFile(h.hookLog)
		lines = nil
		for l := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
			if l != "" {
				lines = append(lines, strings.TrimSpace(l))
			}
		}
		return len(lines) >= n
	})
	return lines
}

// ubusEvents waits for n mwan3.interface events and returns them.
func (h *harness) ubusEvents(n int) []string {
	h.t.Helper()
	var out []string
	h.eventually(fmt.Sprintf("%d ubus events", n), func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		out = slices.Clone(h.events)
		return len(out) >= n
	})
	return out
}

func (h *harness) flushed() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.flushes)
}

// active returns the active interfaces of a policy in the plan in force.
func (h *harness) active(policy string) string {
	return activeIn(h.nft.Current(), policy)
}

// activeIn is active for plan p.
func activeIn(p *nft.Plan, policy string) string {
	if p == nil {
		return "no plan"
	}
	for _, ps := range p.Policies {
		if ps.Policy == policy && ps.Family == nft.IPv4 {
			var names []string
			for _, a := range ps.Active {
				names = append(names, a.Interface)
			}
			if len(names) == 0 {
				return ps.LastResort
			}
			return strings.Join(names, " ")
		}
	}
	return "missing"
}

// waitActive waits until a policy's active interfaces are want.
func (h *harness) waitActive(policy, want string) {
	h.t.Helper()
	h.eventually(fmt.Sprintf("policy %s = %q (now %q)", policy, want, h.active(policy)), func() bool { return h.active(policy) == want })
}

// waitCalls waits until the trackers received the calls want (in order,
// as a subsequence of what happened) and returns everything recorded.
func (h *harness) waitCalls(want ...string) []string {
	h.t.Helper()
	var got []string
	ok := func() bool {
		got = h.trackers.peekCalls()
		i := 0
		for _, c := range got {
			if i < len(want) && c == want[i] {
				i++
			}
		}
		return i == len(want)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			h.t.Fatalf("tracker calls %q, want %q in order", got, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
	h.trackers.takeCalls()
	return got
}

type netifdInterface = netifdtest.Interface

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// netifdStart starts another fake netifd on the harness's bus.
func netifdStart(t testing.TB, h *harness) *netifdtest.Netifd {
	return netifdtest.Start(t, h.broker.Path())
}
