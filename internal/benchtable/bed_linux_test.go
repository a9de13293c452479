//go:build linux

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/config"
	"github.com/mwan3d/mwan3d/internal/bed"
	"github.com/mwan3d/mwan3d/internal/testbed"
	"github.com/mwan3d/mwan3d/ubus"
)

// The end-to-end benchmarks below run the real daemon on a testbed (root
// only); `make bench` runs them through this package's program. They are
// benchmarks so that `go test` without -bench never runs them.

var (
	warmup = flag.Duration("benchtable.warmup", 15*time.Second, "BenchmarkDaemon8x4: tracking time before the measurement")
	window = flag.Duration("benchtable.window", 30*time.Second, "BenchmarkDaemon8x4: measured tracking time per iteration")
)

func TestMain(m *testing.M) {
	code := bed.Main(m)
	if daemonBin.dir != "" {
		os.RemoveAll(daemonBin.dir)
	}
	os.Exit(code)
}

// daemonBin is the daemon built as for a router, once per process.
var daemonBin struct {
	once      sync.Once
	dir, path string
	err       error
}

// strippedBinary builds ./cmd/mwan3d as a router gets it (static,
// -trimpath, -ldflags '-s -w') into a temporary directory TestMain removes.
func strippedBinary(b *testing.B) string {
	b.Helper()
	daemonBin.once.Do(func() {
		if daemonBin.dir, daemonBin.err = os.MkdirTemp("", "benchtable-bin"); daemonBin.err != nil {
			return
		}
		daemonBin.path = filepath.Join(daemonBin.dir, "mwan3d")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", daemonBin.path, "github.com/mwan3d/mwan3d/cmd/mwan3d")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			daemonBin.err = fmt.Errorf("build mwan3d: %w: %s", err, out)
		}
	})
	if daemonBin.err != nil {
		b.Fatal(daemonBin.err)
	}
	return daemonBin.path
}

// quietLogger logs the testbed's warnings into the benchmark's output.
func quietLogger(b *testing.B) *slog.Logger {
	return slog.New(slog.NewTextHandler(b.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// trackedInterface is an mwan3 interface tracking the testbed's four
// targets with the shipped wan's options (reliability 2; interval 10,
// timeout 4, down 5, up 5 by default) and extra options.
func trackedInterface(name, extra string) string {
	var s strings.Builder
	fmt.Fprintf(&s, "\nconfig interface '%s'\n\toption enabled '1'\n\toption family 'ipv4'\n\toption reliability '2'\n", name)
	for i := 1; i <= 4; i++ {
		fmt.Fprintf(&s, "\tlist track_ip '198.51.100.%d'\n", i)
	}
	s.WriteString(extra)
	return s.String()
}

// detectConfig sends all traffic to wan (metric 1) and fails over to wanb
// (metric 2); both track four targets, wan with its extra options.
func detectConfig(extra string) string {
	return "config globals 'globals'\n\toption mmx_mask '0x3F00'\n" +
		trackedInterface("wan", extra) + trackedInterface("wanb", "") + `
config member 'wan_m1'
	option interface 'wan'
	option metric '1'

config member 'wanb_m2'
	option interface 'wanb'
	option metric '2'

config policy 'wan_wanb'
	list use_member 'wan_m1'
	list use_member 'wanb_m2'

config rule 'default_rule_v4'
	option dest_ip '0.0.0.0/0'
	option family 'ipv4'
	option use_policy 'wan_wanb'
`
}

// detectCase is a way of losing wan.
type detectCase struct {
	name  string
	extra string // wan's options besides the shipped ones
	cut   func(tb *testbed.Testbed, i int) error
	// phase: the cut comes at a random time within it after wan is
	// online, so that it falls anywhere in the tracker's round.
	phase time.Duration
	// probe is the stream's interval: the figure is at most this much
	// above the real time to the first flow on wanb.
	probe time.Duration
	// limit bounds the wait for wan to go offline.
	limit time.Duration
}

var detectCases = []detectCase{
	{name: "defaults", cut: (*testbed.Testbed).CutUpstream, phase: 10 * time.Second, probe: 20 * time.Millisecond, limit: 3 * time.Minute},
	{name: "interval1-down3", extra: "\toption interval '1'\n\toption down '3'\n", cut: (*testbed.Testbed).CutUpstream,
		phase: time.Second, probe: 10 * time.Millisecond, limit: time.Minute},
	{name: "carrier", cut: (*testbed.Testbed).CutCarrier, phase: time.Second, probe: 2 * time.Millisecond, limit: 30 * time.Second},
}

// BenchmarkDetection loses wan on a two-WAN bed running the daemon while
// the LAN client opens a new UDP flow every probe interval, and reports
// detect-ms: the time from the last new flow answered through wan before
// the cut to the first new flow answered through wanb, the outage a user
// sees. Each iteration is one run on a bed of its own.
//
//   - defaults: the shipped wan's tracking (4 targets, reliability 2,
//     timeout 4, interval 10, down 5), upstream cut silently;
//   - interval1-down3: the same with interval 1 and down 3;
//   - carrier: wan's link loses its carrier.
func BenchmarkDetection(b *testing.B) {
	for _, c := range detectCases {
		b.Run(c.name, func(b *testing.B) {
			testbed.RequireRoot(b)
			bin := strippedBinary(b)
			var runs []float64
			for b.Loop() {
				d, err := detectOnce(b, c, bin)
				if err != nil {
					b.Fatal(err)
				}
				runs = append(runs, float64(d)/1e6)
			}
			b.ReportMetric(MedianOf(runs, "").Value, "detect-ms")
		})
	}
}

// detectOnce builds a bed, starts the daemon, cuts wan at a random phase
// and measures the stream's switch to wanb.
func detectOnce(b *testing.B, c detectCase, bin string) (_ time.Duration, err error) {
	bd, err := bed.Open(bed.Options{Config: detectConfig(c.extra), Binary: bin, Logger: quietLogger(b)})
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%s: %w\nmwan3d logs:\n%s", c.name, err, bd.Logs())
		}
		err = errors.Join(err, bd.Close())
	}()
	ctx := b.Context()
	if err := bd.Start(ctx); err != nil {
		return 0, err
	}
	if _, err := bd.WaitStatus(ctx, "online", "wan", "wanb"); err != nil {
		return 0, err
	}
	s, err := bd.TB.Stream(bd.TB.LAN, testbed.StreamConfig{Family: testbed.IPv4, Interval: c.probe, NewFlows: true})
	if err != nil {
		return 0, err
	}
	time.Sleep(100*time.Millisecond + rand.N(c.phase))
	cut := time.Now()
	if err := c.cut(bd.TB, bd.WANIndex("wan")); err != nil {
		s.Stop()
		return 0, err
	}
	from, to := bd.WANIndex("wan"), bd.WANIndex("wanb")
	offline, werr := waitOffline(ctx, bd, "wan", c.limit)
	if werr == nil {
		werr = waitFlowOn(bd, to, 10*time.Second)
		time.Sleep(2 * c.probe) // the stream's flows reach wanb too
	}
	res := s.Stop()
	if werr != nil {
		return 0, werr
	}
	if len(res.Switches) != 1 || res.Switches[0].From != from || res.Switches[0].To != to {
		return 0, fmt.Errorf("stream switches %+v, want one from WAN %d to %d (sent %d, received %d, per WAN %v)",
			res.Switches, from, to, res.Sent, res.Received, res.PerWAN)
	}
	gap := res.Switches[0].Gap
	b.Logf("%s: cut to status offline %v; first flow on wanb %v after the last one on wan (probes every %v; sent %d, received %d, per WAN %v)",
		c.name, offline.Sub(cut).Round(time.Millisecond), gap.Round(100*time.Microsecond), c.probe, res.Sent, res.Received, res.PerWAN)
	return gap, nil
}

// waitOffline polls the daemon's status of iface every 50 ms until it is
// offline, at most limit, and returns when it saw it so.
func waitOffline(ctx context.Context, bd *bed.Bed, iface string, limit time.Duration) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	last := ""
	for {
		rep, err := bd.Call(ctx, "status", ubus.Table{{Name: "section", Value: "interfaces"}})
		if err == nil {
			ifs, _ := rep.GetTable("interfaces")
			i, _ := ifs.GetTable(iface)
			if last, _ = i.GetString("status"); last == "offline" {
				return time.Now(), nil
			}
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%s not offline within %v (status %q, last error %v)", iface, limit, last, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitFlowOn opens a new UDP flow from the LAN every 20 ms until one is
// answered through WAN index want, at most limit.
func waitFlowOn(bd *bed.Bed, want int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		wans, err := bd.TB.UDPFlows(bd.TB.LAN, 1, testbed.IPv4, 0)
		if err != nil {
			return err
		}
		if wans[0] == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("new flows still take WAN %d %v after the cut was detected, want %d", wans[0], limit, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// eightByFourConfig tracks all eight WANs of a testbed with four targets
// each (the shipped wan's options but interval 1) and balances over them.
func eightByFourConfig() string {
	var s strings.Builder
	s.WriteString("config globals 'globals'\n\toption mmx_mask '0x3F00'\n")
	for i := range testbed.MaxWANs {
		s.WriteString(trackedInterface(testbed.WANName(i), "\toption interval '1'\n"))
	}
	for i := range testbed.MaxWANs {
		fmt.Fprintf(&s, "\nconfig member '%s_m1'\n\toption interface '%[1]s'\n", testbed.WANName(i))
	}
	s.WriteString("\nconfig policy 'balanced'\n")
	for i := range testbed.MaxWANs {
		fmt.Fprintf(&s, "\tlist use_member '%s_m1'\n", testbed.WANName(i))
	}
	s.WriteString("\nconfig rule 'default_rule_v4'\n\toption dest_ip '0.0.0.0/0'\n\toption family 'ipv4'\n\toption use_policy 'balanced'\n")
	return s.String()
}

// BenchmarkDaemon8x4 runs the stripped daemon on an eight-WAN bed, every
// WAN tracked with four targets every second, and after -benchtable.warmup
// of tracking measures per iteration of -benchtable.window:
//
//   - cpu-µs/round: the daemon's CPU time (all its threads, from
//     /proc/<pid>/task/*/schedstat) over the probe rounds its trackers
//     completed (their TURN files): everything the daemon does while
//     online, divided by the rounds; its kernel part may include the
//     softirq work its probes cause along the testbed's veth links and
//     namespaces, done on the sending thread;
//   - user-µs/round: the user-space share of that, from the utime and
//     stime ticks of /proc/<pid>/stat (1/100 s each, so coarse);
//   - VmRSS-kB (the last iteration's) and VmHWM-kB (the peak since start)
//     from /proc/<pid>/status.
func BenchmarkDaemon8x4(b *testing.B) {
	bin := strippedBinary(b)
	bd := bed.New(b, bed.Options{WANs: testbed.MaxWANs, Config: eightByFourConfig(), Binary: bin, Logger: quietLogger(b)})
	ctx := b.Context()
	if err := bd.Start(ctx); err != nil {
		b.Fatal(err)
	}
	names := make([]string, testbed.MaxWANs)
	for i := range names {
		names[i] = testbed.WANName(i)
	}
	if _, err := bd.WaitStatus(ctx, "online", names...); err != nil {
		b.Fatal(err)
	}
	pid := bd.Pid()
	if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err != nil || strings.TrimSpace(string(comm)) != "mwan3d" {
		b.Fatalf("pid %d is %q, not mwan3d: %v", pid, comm, err)
	}
	time.Sleep(*warmup)
	var cpu time.Duration
	var rounds int
	user0, sys0, err := statTicks(pid)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		c0, err := cpuTime(pid)
		if err != nil {
			b.Fatal(err)
		}
		r0, err := turns(bd.StateDir, names)
		if err != nil {
			b.Fatal(err)
		}
		time.Sleep(*window)
		c1, err := cpuTime(pid)
		if err != nil {
			b.Fatal(err)
		}
		r1, err := turns(bd.StateDir, names)
		if err != nil {
			b.Fatal(err)
		}
		for i := range r0 {
			if r1[i] < r0[i] {
				b.Fatalf("%s's TURN went from %d to %d: it reconnected during the measurement", names[i], r0[i], r1[i])
			}
			rounds += r1[i] - r0[i]
		}
		cpu += c1 - c0
	}
	if rounds == 0 {
		b.Fatal("no probe round completed")
	}
	user1, sys1, err := statTicks(pid)
	if err != nil {
		b.Fatal(err)
	}
	mem := map[string]int{}
	for _, f := range []string{"VmRSS", "VmHWM"} {
		v, err := procStatusKB(pid, f)
		if err != nil {
			b.Fatal(err)
		}
		mem[f] = v
		b.ReportMetric(float64(v), f+"-kB")
	}
	perRound := float64(cpu.Nanoseconds()) / 1e3 / float64(rounds)
	b.ReportMetric(perRound, "cpu-µs/round")
	if ticks := (user1 - user0) + (sys1 - sys0); ticks > 0 {
		b.ReportMetric(perRound*float64(user1-user0)/float64(ticks), "user-µs/round")
	}
	b.Logf("mwan3d (stripped, %d tracked WANs × 4 targets, interval 1 s): %d rounds in %v of tracking, %v CPU "+
		"(/proc/%d/stat: user %d, system %d ticks of 1/100 s); VmRSS %d kB, VmHWM %d kB",
		testbed.MaxWANs, rounds, time.Duration(b.N)**window, cpu.Round(time.Microsecond), pid, user1-user0, sys1-sys0, mem["VmRSS"], mem["VmHWM"])
}

// cpuTime is the CPU time of process pid: the sum over its threads of the
// first field of /proc/<pid>/task/<tid>/schedstat (nanoseconds on a CPU).
// A thread that ended takes its time with it (the Go runtime keeps its
// threads).
func cpuTime(pid int) (time.Duration, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("cpu time of %d: %w", pid, err)
	}
	var sum time.Duration
	for _, t := range tasks {
		data, err := os.ReadFile(filepath.Join(dir, t.Name(), "schedstat"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("cpu time of %d: %w", pid, err)
		}
		f := strings.Fields(string(data))
		if len(f) == 0 {
			return 0, fmt.Errorf("cpu time of %d: empty schedstat of task %s", pid, t.Name())
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cpu time of %d: task %s: %w", pid, t.Name(), err)
		}
		sum += time.Duration(ns)
	}
	return sum, nil
}

// statTicks returns utime and stime of /proc/<pid>/stat, in clock ticks:
// a coarse cross-check of cpuTime that also tells user from kernel time.
func statTicks(pid int) (user, sys int64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name in parentheses may hold spaces and parentheses:
	// count the fields after its last ')'.
	i := strings.LastIndexByte(string(data), ')')
	f := strings.Fields(string(data[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format %q", pid, data)
	}
	// Fields 14 and 15 of the line (from 1): utime, stime.
	if user, err = strconv.ParseInt(f[11], 10, 64); err == nil {
		sys, err = strconv.ParseInt(f[12], 10, 64)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return user, sys, nil
}

// turns reads the TURN tracker file of each interface.
func turns(stateDir string, names []string) ([]int, error) {
	out := make([]int, len(names))
	for i, n := range names {
		data, err := os.ReadFile(filepath.Join(stateDir, "mwan3track", n, "TURN"))
		if err != nil {
			return nil, fmt.Errorf("turn of %s: %w", n, err)
		}
		if out[i], err = strconv.Atoi(strings.TrimSpace(string(data))); err != nil {
			return nil, fmt.Errorf("turn of %s: %w", n, err)
		}
	}
	return out, nil
}

// procStatusKB reads a field in kB ("VmRSS") of /proc/<pid>/status.
func procStatusKB(pid int, field string) (int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for l := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				return 0, fmt.Errorf("%s of %d: %w", field, pid, err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// TestProcReaders reads this process's CPU time and memory the way the
// benchmarks read the daemon's.
func TestProcReaders(t *testing.T) {
	pid := os.Getpid()
	c0, err := cpuTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	// The kernel accounts CPU time in ticks (10 ms here): spin until the
	// next one is counted, 5 s of wall time at most.
	x := 0
	c1 := c0
	for deadline := time.Now().Add(5 * time.Second); c1 <= c0 && time.Now().Before(deadline); {
		for i := range 1 << 20 {
			x ^= i * i
		}
		if c1, err = cpuTime(pid); err != nil {
			t.Fatal(err)
		}
	}
	if c0 <= 0 || c1 <= c0 {
		t.Errorf("cpu time %v then %v (x=%d): want positive and growing", c0, c1, x)
	}
	if user, sys, err := statTicks(pid); err != nil || user < 0 || sys < 0 {
		t.Errorf("stat ticks: user %d, system %d, %v", user, sys, err)
	}
	for _, f := range []string{"VmRSS", "VmHWM"} {
		if v, err := procStatusKB(pid, f); err != nil || v <= 0 {
			t.Errorf("%s: %d, %v", f, v, err)
		}
	}
	if _, err := procStatusKB(pid, "NoSuchField"); err == nil {
		t.Error("a missing field gave no error")
	}
	if _, err := cpuTime(-1); err == nil {
		t.Error("cpu time of pid -1 gave no error")
	}
	if _, _, err := statTicks(-1); err == nil {
		t.Error("stat ticks of pid -1 gave no error")
	}
}

// TestTurns reads TURN files and refuses missing or bad ones.
func TestTurns(t *testing.T) {
	dir := t.TempDir()
	for n, v := range map[string]string{"wan": "12\n", "wanb": "7\n", "bad": "x\n"} {
		if err := os.MkdirAll(filepath.Join(dir, "mwan3track", n), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "mwan3track", n, "TURN"), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := turns(dir, []string{"wan", "wanb"})
	if err != nil || len(got) != 2 || got[0] != 12 || got[1] != 7 {
		t.Errorf("turns: %v, %v", got, err)
	}
	for _, names := range [][]string{{"bad"}, {"missing"}} {
		if _, err := turns(dir, names); err == nil {
			t.Errorf("turns of %v: no error", names)
		}
	}
}

// TestConfigs: the benchmarks' configurations load without errors, with
// the tracking they claim.
func TestConfigs(t *testing.T) {
	type want struct {
		name                           string
		targets, interval, down, rules int
	}
	check := func(t *testing.T, text string, wants []want) {
		t.Helper()
		cfg, diags := config.Load("mwan3", []byte(text))
		if diags.HasErrors() {
			t.Fatalf("%v\n%s", diags, text)
		}
		if len(cfg.Interfaces) != len(wants) {
			t.Fatalf("%d interfaces, want %d", len(cfg.Interfaces), len(wants))
		}
		for i, w := range wants {
			got := cfg.Interfaces[i]
			if got.Name != w.name || !got.Tracked() || len(got.TrackIP) != w.targets || got.Interval != w.interval ||
				got.Down != w.down || got.Reliability != 2 || got.Timeout != 4 {
				t.Errorf("interface %d: %+v, want %+v, reliability 2, timeout 4", i, got, w)
			}
		}
		if len(cfg.Rules) != 1 {
			t.Errorf("%d rules, want 1", len(cfg.Rules))
		}
	}
	for _, c := range []struct {
		name           string
		interval, down int
	}{{"defaults", 10, 5}, {"interval1-down3", 1, 3}, {"carrier", 10, 5}} {
		i := slices.IndexFunc(detectCases, func(d detectCase) bool { return d.name == c.name })
		if i < 0 {
			t.Fatalf("no detection case %s", c.name)
		}
		t.Run(c.name, func(t *testing.T) {
			check(t, detectConfig(detectCases[i].extra), []want{{"wan", 4, c.interval, c.down, 1}, {"wanb", 4, 10, 5, 1}})
		})
	}
	t.Run("8x4", func(t *testing.T) {
		var wants []want
		for i := range testbed.MaxWANs {
			wants = append(wants, want{testbed.WANName(i), 4, 1, 5, 1})
		}
		check(t, eightByFourConfig(), wants)
	})
}
