//go:build linux

// Package bed runs mwan3d the way a router does, on a namespace testbed:
// a ubustest broker stands in for ubusd, the fake netifd (netifdtest)
// publishes the testbed's WANs and LAN, and `mwan3d run` is a real
// subprocess in the router namespace with every path (config, state, hooks)
// in a directory of the bed's own. Recording scripts stand in for
// /etc/mwan3.user and hotplug-call, so a test sees every hook run with its
// environment.
//
// The scenario tests, the CLI tests and the demo share it: New for tests
// (torn down at cleanup), Open and Close for a program.
package bed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/internal/netifdtest"
	"github.com/mwan3d/mwan3d/internal/testbed"
	"github.com/mwan3d/mwan3d/ubus"
	"github.com/mwan3d/mwan3d/ubus/ubustest"
)

// Object is the ubus object of the daemon.
const Object = "mwan3"

// Options describe a bed.
type Options struct {
	// WANs is the number of WANs (testbed.Spec; 2 when 0).
	WANs int
	// Family selects IPv4, IPv6 or both (IPv4 when 0). With IPv6 every WAN
	// also appears in netifd as its IPv6 interface (wan6, wanb6, …) on the
	// same device, as OpenWrt's DHCPv6 interfaces do.
	Family testbed.Family
	// Config is the mwan3 configuration text.
	Config string
	// Binary is the mwan3d binary; when empty, New builds ./cmd/mwan3d once
	// per process (removed by Main) and Open builds it into the bed's
	// directory (removed by Close).
	Binary string
	// FlowTimeout bounds each flow of the testbed's traffic helpers.
	FlowTimeout time.Duration
	// Down lists netifd interfaces that start down (all start up).
	Down []string
	// Logger receives the testbed's messages (stderr when nil).
	Logger *slog.Logger
}

// Bed is a testbed with a bus, a fake netifd and (after Start) the daemon.
type Bed struct {
	TB     *testbed.Testbed
	Broker *ubustest.Broker
	Netifd *netifdtest.Netifd
	// Client is a ubus connection of the test's own.
	Client *ubus.Conn
	// Binary is the mwan3d binary the bed runs.
	Binary string
	// Dir holds the config, etc/ (hooks and their log), run/ (state) and
	// the daemon's logs.
	Dir                 string
	ConfigPath, HookLog string
	StateDir, HooksDir  string
	// HotplugCall is the recording stand-in for /sbin/hotplug-call.
	HotplugCall string

	sockDir string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been waited for
	werr error
	logs int
}

// New builds a bed for a test and tears it down at its end. It skips (or
// fails, see testbed.RequireRoot) without root.
func New(t testing.TB, o Options) *Bed {
	t.Helper()
	testbed.RequireRoot(t)
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	tb := testbed.New(t, spec(o))
	b, err := setup(tb, o, t.TempDir())
	if err != nil {
		t.Fatalf("bed: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("mwan3d logs:\n%s", b.Logs())
		}
		if err := b.shutdown(); err != nil {
			t.Errorf("bed: %v", err)
		}
	})
	return b
}

// Open builds a bed outside a test; Close removes it.
func Open(o Options) (*Bed, error) {
	tb, err := testbed.Open(spec(o))
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mwan3d-bed")
	if err != nil {
		return nil, errors.Join(err, tb.Close())
	}
	if o.Binary == "" {
		// Built into the bed's directory, so Close removes it.
		o.Binary = filepath.Join(dir, "mwan3d")
		if err := build(o.Binary); err != nil {
			return nil, errors.Join(err, tb.Close(), os.RemoveAll(dir))
		}
	}
	b, err := setup(tb, o, dir)
	if err != nil {
		return nil, errors.Join(err, tb.Close(), os.RemoveAll(dir))
	}
	return b, nil
}

// Close stops the daemon (SIGTERM), the fake netifd and the broker, and
// removes the testbed and the bed's directory. Only for beds from Open.
func (b *Bed) Close() error {
	return errors.Join(b.shutdown(), b.TB.Close(), os.RemoveAll(b.Dir))
}

func (b *Bed) shutdown() error {
	var errs []error
	if b.Running() {
		if err := b.Stop(syscall.SIGTERM); err != nil && !isSignalExit(err) {
			errs = append(errs, fmt.Errorf("stop mwan3d: %w", err))
		}
	}
	if b.Client != nil {
		b.Client.Close()
	}
	if b.Netifd != nil {
		b.Netifd.Close()
	}
	if b.Broker != nil {
		errs = append(errs, b.Broker.Close())
	}
	if b.sockDir != "" {
		errs = append(errs, os.RemoveAll(b.sockDir))
	}
	return errors.Join(errs...)
}

func spec(o Options) testbed.Spec {
	if o.WANs == 0 {
		o.WANs = 2
	}
	if o.Family == 0 {
		o.Family = testbed.IPv4
	}
	return testbed.Spec{WANs: o.WANs, Family: o.Family, FlowTimeout: o.FlowTimeout, Logger: o.Logger}
}

// setup adds the bus, the fake netifd and the files to a testbed.
func setup(tb *testbed.Testbed, o Options, dir string) (_ *Bed, err error) {
	b := &Bed{TB: tb, Dir: dir, Binary: o.Binary,
		ConfigPath: filepath.Join(dir, "mwan3"),
		StateDir:   filepath.Join(dir, "run"),
		HooksDir:   filepath.Join(dir, "etc"),
	}
	b.HookLog = filepath.Join(b.HooksDir, "log")
	b.HotplugCall = filepath.Join(b.HooksDir, "hotplug-call")
	defer func() {
		if err != nil {
			err = errors.Join(err, b.shutdown())
		}
	}()
	if b.Binary == "" {
		if b.Binary, err = Binary(); err != nil {
			return nil, err
		}
	}
	if err := b.WriteConfig(o.Config); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(b.HooksDir, 0o755); err != nil {
		return nil, err
	}
	for _, name := range []string{"mwan3.user", "hotplug-call"} {
		if err := WriteRecorder(filepath.Join(b.HooksDir, name), b.HookLog, ""); err != nil {
			return nil, err
		}
	}
	// A directory of its own keeps the socket path short (unix sockets
	// allow 107 bytes; test temp directories can be longer).
	if b.sockDir, err = os.MkdirTemp("", "mwub"); err != nil {
		return nil, err
	}
	if b.Broker, err = ubustest.Start(filepath.Join(b.sockDir, "ubus.sock")); err != nil {
		return nil, fmt.Errorf("ubus broker: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if b.Netifd, err = netifdtest.New(ctx, b.Broker.Path()); err != nil {
		return nil, fmt.Errorf("fake netifd: %w", err)
	}
	if b.Client, err = ubus.Dial(ctx, b.Broker.Path()); err != nil {
		return nil, fmt.Errorf("ubus client: %w", err)
	}
	for _, ifc := range Interfaces(tb) {
		if err := b.Netifd.Add(ctx, ifc, !slices.Contains(o.Down, ifc.Name)); err != nil {
			return nil, fmt.Errorf("netifd interface %s: %w", ifc.Name, err)
		}
	}
	return b, nil
}

// Interfaces are the netifd interfaces of a testbed: per WAN its IPv4
// interface (wan, wanb, …) and, with IPv6, its IPv6 one (wan6, wanb6, …),
// each with its address and default route; then lan.
func Interfaces(tb *testbed.Testbed) []netifdtest.Interface {
	var out []netifdtest.Interface
	for _, w := range tb.WANs {
		if w.Addr4.IsValid() {
			out = append(out, netifdtest.Interface{Name: w.Name, Device: w.Dev, Metric: w.Metric,
				IPv4:   []netip.Prefix{w.Addr4},
				Routes: []netifdtest.Route{{Target: netip.MustParsePrefix("0.0.0.0/0"), Nexthop: w.Gateway4, Metric: w.Metric}}})
		}
		if w.Addr6.IsValid() {
			out = append(out, netifdtest.Interface{Name: w.Name6, Proto: "dhcpv6", Device: w.Dev, Metric: w.Metric,
				IPv6:   []netip.Prefix{w.Addr6},
				Routes: []netifdtest.Route{{Target: netip.MustParsePrefix("::/0"), Nexthop: w.Gateway6, Metric: w.Metric}}})
		}
	}
	lan := netifdtest.Interface{Name: "lan", Device: tb.LANDev}
	if tb.RouterLAN4.IsValid() {
		lan.IPv4 = append(lan.IPv4, netip.PrefixFrom(tb.RouterLAN4, tb.LANPrefix4.Bits()))
	}
	if tb.RouterLAN6.IsValid() {
		lan.IPv6 = append(lan.IPv6, netip.PrefixFrom(tb.RouterLAN6, tb.LANPrefix6.Bits()))
	}
	return append(out, lan)
}

// WriteConfig replaces the daemon's configuration file.
func (b *Bed) WriteConfig(cfg string) error {
	return os.WriteFile(b.ConfigPath, []byte(cfg), 0o644)
}

// WriteRecorder writes a shell script at path that runs extra, then appends
// a line "<name> <sorted environment>" to log (PWD, SHLVL, _ and OLDPWD
// left out) — the stand-in for a user hook.
func WriteRecorder(path, log, extra string) error {
	body := fmt.Sprintf("#!/bin/sh\n%s\necho \"%s $(env | grep -v '^PWD=\\|^SHLVL=\\|^_=\\|^OLDPWD=' | sort | tr '\\n' ' ')\" >> %s\n",
		extra, filepath.Base(path), log)
	return os.WriteFile(path, []byte(body), 0o755)
}

// LogPath is the stderr log of the i-th start of the daemon (from 1).
func (b *Bed) LogPath(i int) string { return filepath.Join(b.Dir, fmt.Sprintf("mwan3d.%d.log", i)) }

// Logs returns the daemon's logs of every start.
func (b *Bed) Logs() string {
	b.mu.Lock()
	n := b.logs
	b.mu.Unlock()
	var sb strings.Builder
	for i := 1; i <= n; i++ {
		data, _ := os.ReadFile(b.LogPath(i))
		fmt.Fprintf(&sb, "--- start %d\n%s", i, data)
	}
	return sb.String()
}

// Args are the arguments of `mwan3d run` the bed starts the daemon with.
// `mwan3 use` cgroups are off (`--cgroup=`): cgroups are global, not per
// namespace, so concurrent beds would share them; a test of `use` passes
// `--cgroup DIR` of its own in extra (the last one counts).
func (b *Bed) Args(extra ...string) []string {
	return append([]string{"run", "-c", b.ConfigPath, "-s", b.Broker.Path(), "--state-dir", b.StateDir,
		"--hooks-dir", b.HooksDir, "--hotplug-call", b.HotplugCall, "--cgroup=", "-v"}, extra...)
}

// Start runs `mwan3d run` in the router namespace, its stderr to a log
// file of its own, with Args(extra...), and waits until it has registered
// its ubus object.
func (b *Bed) Start(ctx context.Context, extra ...string) error {
	b.mu.Lock()
	if b.cmd != nil {
		b.mu.Unlock()
		return errors.New("mwan3d is already running")
	}
	b.logs++
	logPath := b.LogPath(b.logs)
	b.mu.Unlock()
	args := append([]string{"-c", fmt.Sprintf(`exec "$0" "$@" 2>>%s`, logPath), b.Binary}, b.Args(extra...)...)
	cmd, err := b.TB.Router.Start("/bin/sh", args...)
	if err != nil {
		return fmt.Errorf("start mwan3d: %w", err)
	}
	done := make(chan struct{})
	b.mu.Lock()
	b.cmd, b.done = cmd, done
	b.mu.Unlock()
	go func() {
		werr := cmd.Wait()
		b.mu.Lock()
		b.werr = werr
		b.mu.Unlock()
		close(done)
	}()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	// Stop waiting as soon as the daemon exits (e.g. a refused config).
	go func() {
		select {
		case <-done:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := b.Broker.WaitObject(ctx, Object); err != nil {
		select {
		case <-done:
			b.mu.Lock()
			werr := b.werr
			b.cmd = nil
			b.mu.Unlock()
			return fmt.Errorf("mwan3d exited before registering its object (%v); log %s", werr, logPath)
		default:
		}
		return fmt.Errorf("mwan3d did not register its object: %w", err)
	}
	return nil
}

// Running tells whether the daemon process started by Start is alive.
func (b *Bed) Running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return false
	}
	select {
	case <-b.done:
		return false
	default:
		return true
	}
}

// Pid is the daemon's process id (0 when not started).
func (b *Bed) Pid() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return 0
	}
	return b.cmd.Process.Pid
}

// Stop sends sig to the daemon and waits (45 s at most) for it to exit;
// it returns the process's exit error (nil for status 0).
func (b *Bed) Stop(sig syscall.Signal) error {
	b.mu.Lock()
	cmd, done := b.cmd, b.done
	b.mu.Unlock()
	if cmd == nil {
		return errors.New("mwan3d is not running")
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal mwan3d: %w", err)
	}
	select {
	case <-done:
	case <-time.After(45 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return errors.New("mwan3d did not exit within 45 s of " + sig.String())
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cmd = nil
	return b.werr
}

func isSignalExit(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && !ee.Exited()
}

// Call calls a method of the daemon's object (10 s at most).
func (b *Bed) Call(ctx context.Context, method string, args any) (ubus.Table, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return b.Client.Call(ctx, Object, method, args)
}

// WaitStatus polls `status` until every named interface has the tracker
// status (online, offline, …) and returns the last reply.
func (b *Bed) WaitStatus(ctx context.Context, status string, names ...string) (ubus.Table, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var rep ubus.Table
	for {
		var err error
		rep, err = b.Call(ctx, "status", ubus.Table{{Name: "section", Value: "interfaces"}})
		if err == nil {
			ifs, _ := rep.GetTable("interfaces")
			ok := true
			for _, n := range names {
				i, _ := ifs.GetTable(n)
				if s, _ := i.GetString("status"); s != status {
					ok = false
				}
			}
			if ok {
				return rep, nil
			}
		}
		select {
		case <-ctx.Done():
			return rep, fmt.Errorf("interfaces %v not %s (last error %v): %s", names, status, err, rep)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Hooks returns the hook runs recorded so far, one line each.
func (b *Bed) Hooks() []string {
	data, _ := os.ReadFile(b.HookLog)
	var out []string
	for l := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// WaitHooks waits until the hook log holds every wanted line.
func (b *Bed) WaitHooks(ctx context.Context, want ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		got := b.Hooks()
		missing := ""
		for _, w := range want {
			if !slices.Contains(got, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("hook run %q missing; runs:\n%s", missing, strings.Join(got, "\n"))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WANIndex maps an mwan3 interface name (IPv4 or IPv6 one) to its testbed
// WAN index, or -1.
func (b *Bed) WANIndex(name string) int {
	for i, w := range b.TB.WANs {
		if w.Name == name || w.Name6 == name {
			return i
		}
	}
	return -1
}

// Leftovers lists what of the daemon's is still in the router namespace
// and the state directory: the nft table, ip rules 1000–3999, routes in
// the interface tables 1–8, the runtime directories.
func (b *Bed) Leftovers(ctx context.Context) []string {
	var left []string
	if out, err := b.TB.Router.Run(ctx, "nft", "list", "tables"); err != nil || strings.Contains(out, "mwan3") {
		left = append(left, "nft: "+out)
	}
	for _, fam := range []string{"-4", "-6"} {
		out, err := b.TB.Router.Run(ctx, "ip", fam, "rule", "show")
		if err != nil {
			left = append(left, err.Error())
		}
		for l := range strings.SplitSeq(out, "\n") {
			var prio int
			if _, err := fmt.Sscanf(l, "%d:", &prio); err == nil && prio >= 1000 && prio < 4000 {
				left = append(left, "rule: "+l)
			}
		}
		for table := 1; table <= testbed.MaxWANs; table++ {
			out, _ := b.TB.Router.Run(ctx, "ip", fam, "route", "show", "table", fmt.Sprint(table))
			if strings.TrimSpace(out) != "" && !strings.Contains(out, "does not exist") {
				left = append(left, fmt.Sprintf("table %d: %s", table, out))
			}
		}
	}
	for _, d := range []string{"mwan3", "mwan3track"} {
		if _, err := os.Stat(filepath.Join(b.StateDir, d)); !os.IsNotExist(err) {
			left = append(left, "state directory "+d)
		}
	}
	return left
}
