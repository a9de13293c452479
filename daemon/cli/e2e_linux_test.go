package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mwan3d/mwan3d/internal/bed"
	"github.com/mwan3d/mwan3d/internal/testbed"
	"github.com/mwan3d/mwan3d/ubus"
)

// e2e runs the mwan3 command (a link named mwan3 to the bed's binary) in
// the router namespace of a bed, as LuCI runs it on a router.
type e2e struct {
	t       *testing.T
	b       *bed.Bed
	mwan3   string
	init    string // recording stand-in for /etc/init.d/mwan3
	initLog string
	probe   string // testdata/useprobe, built static
}

func newE2E(t *testing.T, b *bed.Bed) *e2e {
	t.Helper()
	dir := t.TempDir()
	e := &e2e{t: t, b: b, mwan3: filepath.Join(dir, "mwan3"), init: filepath.Join(dir, "init.d-mwan3"),
		initLog: filepath.Join(dir, "init.log"), probe: filepath.Join(dir, "useprobe")}
	if err := os.Symlink(b.Binary, e.mwan3); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("#!/bin/sh\necho \"$@\" >> %s\necho \"init script: $1\"\n", e.initLog)
	if err := os.WriteFile(e.init, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", e.probe, "./testdata/useprobe")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build useprobe: %v: %s", err, out)
	}
	return e
}

// run runs `mwan3 args…` in the router namespace and returns its output
// and exit status.
func (e *e2e) run(args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", e.b.TB.Router.Name, "env",
		"MWAN3_UBUS_SOCKET=" + e.b.Broker.Path(), "MWAN3_INIT_SCRIPT=" + e.init, e.mwan3}, args...)...)
	var o, er bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &er
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		e.t.Fatalf("mwan3 %s: %v", strings.Join(args, " "), err)
	}
	return o.String(), er.String(), code
}

// transcript runs commands and records them as a person would see them.
func (e *e2e) transcript(cmds ...[]string) string {
	e.t.Helper()
	var b strings.Builder
	for _, args := range cmds {
		out, errOut, code := e.run(args...)
		fmt.Fprintf(&b, "$ mwan3 %s\n%s", strings.Join(args, " "), out)
		if errOut != "" {
			fmt.Fprintf(&b, "[stderr]\n%s", errOut)
		}
		fmt.Fprintf(&b, "[exit %d]\n\n", code)
	}
	return normalise(strings.ReplaceAll(b.String(), e.init, DefaultInitScript))
}

// volatile are what changes from run to run: times, counters, cgroup and
// link ids, link-local addresses, the test's process id.
var volatile = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`\d+h:\d\dm:\d\ds`), "HHh:MMm:SSs"},
	{regexp.MustCompile(`(?m)^[ 0-9KMGT]{5} [ 0-9KMGT]{5} (S |- |MARK|LOG)`), "    P     B $1"},
	{regexp.MustCompile(`packets \d+ bytes \d+`), "packets P bytes B"},
	{regexp.MustCompile(`socket cgroupv2 level (\d+) \d+`), "socket cgroupv2 level $1 ID"},
	{regexp.MustCompile(`(?m)^\d+: `), "N: "},
	{regexp.MustCompile(`@if\d+`), "@ifN"},
	{regexp.MustCompile(`mwan3-cli-\d+`), "mwan3-cli-PID"},
	{regexp.MustCompile(`fe80::[0-9a-f:]+/64 scope link`), "fe80::ID/64 scope link"},
}

func normalise(s string) string {
	for _, v := range volatile {
		s = v.re.ReplaceAllString(s, v.repl)
	}
	return s
}

// mountCgroup2 mounts the cgroup2 hierarchy in a directory of the test:
// `ip netns exec`, which runs the daemon and the command, mounts a fresh
// /sys and hides the system's cgroup mounts.
func mountCgroup2(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cgroup2")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("cgroup2", dir, "cgroup2", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		if os.Getenv("MWAN3D_REQUIRE_ROOT_TESTS") == "1" {
			t.Fatalf("mount cgroup2: %v", err)
		}
		t.Skipf("cgroup v2 is not available: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// waitBalanced waits until policy balanced has exactly the members named
// (in any order).
func waitBalanced(t *testing.T, b *bed.Bed, members ...string) {
	t.Helper()
	slices.Sort(members)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	for {
		rep, err := b.Call(ctx, "status", ubus.Table{{Name: "section", Value: "policies"}})
		var got []string
		if err == nil {
			pols, _ := rep.GetTable("policies")
			v4, _ := pols.GetTable("ipv4")
			list, _ := v4.GetArray("balanced")
			for _, m := range arrayTables(list) {
				got = append(got, fieldString(m, "interface", ""))
			}
			slices.Sort(got)
			if slices.Equal(got, members) {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("balanced has %v, want %v (%v)", got, members, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestEndToEnd runs every subcommand against mwan3d on the testbed: three
// WANs with wanc's upstream cut, then with wanb taken down by `mwan3
// ifdown`, then with the service stopped; `use` and `explain` are checked
// against real traffic.
func TestEndToEnd(t *testing.T) {
	testbed.RequireRoot(t)
	cg := mountCgroup2(t)
	conf, err := os.ReadFile("testdata/e2e.conf")
	if err != nil {
		t.Fatal(err)
	}
	b := bed.New(t, bed.Options{WANs: 3, Config: string(conf), FlowTimeout: 2 * time.Second})
	ctx := t.Context()
	if err := b.TB.CutUpstream(2); err != nil {
		t.Fatal(err)
	}
	cgdir := filepath.Join(cg, fmt.Sprintf("mwan3-cli-%d", os.Getpid()))
	if err := b.Start(ctx, "--cgroup", cgdir); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WaitStatus(ctx, "online", "wan", "wanb"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WaitStatus(ctx, "offline", "wanc"); err != nil {
		t.Fatal(err)
	}
	waitBalanced(t, b, "wan", "wanb")
	e := newE2E(t, b)
	for _, port := range []int{testbed.EchoPort, 7007, 7008, 7009} {
		if _, err := b.TB.TCPFlows(b.TB.LAN, 0, testbed.IPv4, port); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("running", func(t *testing.T) {
		got := e.transcript(
			[]string{}, []string{"interfaces"}, []string{"policies"}, []string{"connected"}, []string{"rules"},
			[]string{"status"}, []string{"internal"}, []string{"internal", "ipv6"},
			[]string{"connected", "--json"}, []string{"policies", "--json"},
			[]string{"explain", "198.51.100.7", "tcp", "7007"}, []string{"explain", "192.0.2.5"},
			[]string{"ifup"}, []string{"ifup", "wan", "wanb"}, []string{"ifup", "lte"}, []string{"ifup", "lan"},
			[]string{"ifdown"}, []string{"ifdown", "a", "b"},
			[]string{"use", "wanb"}, []string{"use", "lan", "true"}, []string{"use", "lte", "true"},
		)
		checkGolden(t, "e2e-running", got)
	})

	t.Run("explain matches traffic", func(t *testing.T) {
		for _, port := range []int{7007, 7008, 7009, testbed.EchoPort} {
			out, errOut, code := e.run("explain", "--json", "198.51.100.7", "tcp", fmt.Sprint(port))
			if code != 0 {
				t.Fatalf("explain port %d: %d %s", port, code, errOut)
			}
			rep, err := ubus.ParseJSON([]byte(out))
			if err != nil {
				t.Fatal(err)
			}
			action := fieldString(rep, "action", "")
			share := map[string]float64{}
			ifs, _ := rep.GetArray("interfaces")
			for _, c := range arrayTables(ifs) {
				p, _ := c.GetFloat("probability")
				share[fieldString(c, "interface", "")] = p
			}
			flows, err := b.TB.TCPFlows(b.TB.LAN, 40, testbed.IPv4, port)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]int{}
			for _, w := range flows {
				name := "none"
				if w >= 0 {
					name = b.TB.WANs[w].Name
				}
				seen[name]++
			}
			t.Logf("port %d: explain %s %v; 40 flows took %v", port, action, share, seen)
			switch action {
			case "balance":
				for name, n := range seen {
					if share[name] == 0 {
						t.Errorf("port %d: %d flows took %s, which explain did not name (%v)", port, n, name, share)
					}
				}
				for name, p := range share {
					// 40 flows miss an interface with a share of 25 % or
					// more with a probability below 1e-5.
					if p >= 0.25 && seen[name] == 0 {
						t.Errorf("port %d: no flow took %s (explained %.0f %%)", port, name, p*100)
					}
				}
			case "blackhole", "unreachable":
				if seen["none"] != len(flows) {
					t.Errorf("port %d: explained %s, but flows took %v", port, action, seen)
				}
			default:
				t.Errorf("port %d: unexpected action %s", port, action)
			}
		}
	})

	t.Run("use", func(t *testing.T) {
		// TCP from a static binary: the echo server reports the source.
		for i, name := range []string{"wan", "wanb"} {
			out, errOut, code := e.run("use", name, e.probe, "tcp", netip.AddrPortFrom(b.TB.Echo4, uint16(testbed.EchoPort)).String())
			w := b.TB.WANs[i]
			running := fmt.Sprintf("Running '%s tcp %s:%d' with DEVICE=%s SRCIP=%s FWMARK=0x%x00 FAMILY=ipv4\n",
				e.probe, b.TB.Echo4, testbed.EchoPort, w.Dev, w.Addr4.Addr(), i+1)
			if code != 0 || errOut != running {
				t.Fatalf("use %s: status %d, stderr %q, want %q", name, code, errOut, running)
			}
			ap, err := netip.ParseAddrPort(strings.TrimSpace(out))
			if err != nil {
				t.Fatalf("use %s: echo answered %q", name, out)
			}
			if got, _ := b.TB.WANBySource(ap.Addr()); got != i {
				t.Errorf("use %s: the internet host saw %s, the address of WAN %d", name, ap.Addr(), got)
			}
		}
		// ICMP, counted at the internet host by the WAN's public address.
		for _, args := range [][]string{{e.probe, "icmp", b.TB.Echo4.String()}, {"ping", "-c", "1", "-W", "3", b.TB.Echo4.String()}} {
			if _, err := exec.LookPath(args[0]); err != nil {
				t.Logf("%s is not installed here: skipped", args[0])
				continue
			}
			before := echoRequests(t, b)
			if _, errOut, code := e.run(append([]string{"use", "wanb"}, args...)...); code != 0 {
				t.Fatalf("use wanb %s: status %d: %s", args[0], code, errOut)
			}
			after := echoRequests(t, b)
			if after[1]-before[1] != 1 || after[0] != before[0] || after[2] != before[2] {
				t.Errorf("use wanb %s: echo requests per WAN at the internet host went from %v to %v", args[0], before, after)
			}
		}
		// Exit statuses, the environment and the cgroup.
		for _, c := range []struct {
			args []string
			code int
			out  string
		}{
			{[]string{e.probe, "exit", "7"}, 7, ""},
			{[]string{"sh", "-c", "exit 3"}, 3, ""},
			{[]string{"exit", "5"}, 5, ""}, // a shell built-in runs in sh -c
			{[]string{"sh", "-c", "echo $DEVICE $SRCIP $FWMARK $FAMILY"}, 0, "eth2 10.0.2.2 0x200 ipv4\n"},
			{[]string{"cat", "/proc/self/cgroup"}, 0, "0::/" + filepath.Base(cgdir) + "/wanb\n"},
			{[]string{"/nonexistent/program"}, 127, ""},
		} {
			out, errOut, code := e.run(append([]string{"use", "wanb"}, c.args...)...)
			if code != c.code || !strings.HasSuffix(out, c.out) {
				t.Errorf("use wanb %q: status %d, stdout %q, stderr %q; want %d, %q", c.args, code, out, errOut, c.code, c.out)
			}
		}
	})

	t.Run("ifdown", func(t *testing.T) {
		if out, errOut, code := e.run("ifdown", "wanb"); code != 0 || out != "" || errOut != "" {
			t.Fatalf("ifdown wanb: %d %q %q", code, out, errOut)
		}
		waitBalanced(t, b, "wan")
		got := e.transcript([]string{"interfaces"}, []string{"policies"}, []string{"explain", "198.51.100.7", "tcp", "7007"})
		checkGolden(t, "e2e-ifdown", got)
		flows, err := b.TB.TCPFlows(b.TB.LAN, 10, testbed.IPv4, testbed.EchoPort)
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(flows, func(w int) bool { return w != 0 }) {
			t.Errorf("flows after ifdown wanb: %v, want all on wan", flows)
		}
		if out, errOut, code := e.run("ifup", "wanb"); code != 0 || out != "" || errOut != "" {
			t.Fatalf("ifup wanb: %d %q %q", code, out, errOut)
		}
		waitBalanced(t, b, "wan", "wanb")
	})

	t.Run("stopped", func(t *testing.T) {
		if err := b.Stop(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(cgdir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup directory %s left after stop: %v", cgdir, err)
		}
		got := e.transcript(
			[]string{"interfaces"}, []string{"status"}, []string{"internal"}, []string{"status", "--json"},
			[]string{"explain", "198.51.100.7"}, []string{"ifup", "wan"}, []string{"ifdown", "wan"}, []string{"use", "wanb", "true"},
			[]string{"start"}, []string{"stop"}, []string{"restart"},
		)
		checkGolden(t, "e2e-stopped", got)
		log, err := os.ReadFile(e.initLog)
		if err != nil {
			t.Fatal(err)
		}
		if want := "enable\nstart\ndisable\nstop\nenable\nstop\nstart\n"; string(log) != want {
			t.Errorf("init script runs:\n%s\nwant\n%s", log, want)
		}
	})
}

// echoRequests counts, at the internet host, the ICMP echo requests to
// the echo address that came through each WAN (by its public address).
func echoRequests(t *testing.T, b *bed.Bed) []int {
	t.Helper()
	ctx := t.Context()
	in := b.TB.Internet
	if _, err := in.Run(ctx, "nft", "list", "table", "ip", "clicount"); err != nil {
		script := "add table ip clicount\nadd chain ip clicount in { type filter hook input priority 0; }\n"
		for i, w := range b.TB.WANs {
			script += fmt.Sprintf("add rule ip clicount in ip saddr %s ip daddr %s icmp type echo-request counter comment \"wan%d\"\n",
				w.Public4, b.TB.Echo4, i)
		}
		f := filepath.Join(t.TempDir(), "count.nft")
		if err := os.WriteFile(f, []byte(script), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := in.Run(ctx, "nft", "-f", f); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	out, err := in.Run(ctx, "nft", "list", "table", "ip", "clicount")
	if err != nil {
		t.Fatal(err)
	}
	counts := make([]int, len(b.TB.WANs))
	re := regexp.MustCompile(`packets (\d+) bytes \d+ comment "wan(\d+)"`)
	for _, m := range re.FindAllStringSubmatch(out, -1) {
		var n, i int
		fmt.Sscan(m[1], &n)
		fmt.Sscan(m[2], &i)
		counts[i] = n
	}
	return counts
}
