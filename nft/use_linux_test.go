//go:build linux

package nft

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/internal/testbed"
	"golang.org/x/sys/unix"
)

// cgroup2Mount returns the mount point of the cgroup v2 hierarchy and the
// hierarchy path of its root, from /proc/self/mountinfo.
func cgroup2Mount() (dir, root string, err error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional…] - fstype source superoptions
		fields := strings.Fields(sc.Text())
		for i, x := range fields {
			if x == "-" && i+1 < len(fields) && fields[i+1] == "cgroup2" && len(fields) > 4 {
				return fields[4], fields[3], nil
			}
		}
	}
	if err := sc.Err(); err != nil {
		return "", "", err
	}
	return "", "", errors.New("no cgroup2 mount in /proc/self/mountinfo")
}

// tempCgroup creates a cgroup v2 group with a unique name, removed at
// cleanup, and returns its directory, its id and its level.
func tempCgroup(t *testing.T) (dir string, id uint64, level uint32) {
	t.Helper()
	mnt, root, err := cgroup2Mount()
	if err != nil {
		if os.Getenv("MWAN3D_REQUIRE_ROOT_TESTS") == "1" {
			t.Fatal(err)
		}
		t.Skipf("cgroup v2 unavailable: %v", err)
	}
	var suffix [4]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(mnt, fmt.Sprintf("mwan3d-nfttest-%d-%s", os.Getpid(), hex.EncodeToString(suffix[:])))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("create cgroup: %v", err)
	}
	t.Cleanup(func() {
		if err := os.Remove(dir); err != nil {
			t.Errorf("remove cgroup: %v", err)
		}
	})
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	// The level counts from the hierarchy's root: the mount's root path
	// plus the new group.
	level = 1
	if r := strings.Trim(root, "/"); r != "" {
		level += uint32(strings.Count(r, "/") + 1)
	}
	return dir, st.Ino, level
}

// udpEcho answers every datagram on a socket of ns with the sender's
// address; it stops at cleanup.
func udpEcho(t *testing.T, ns *testbed.NS, addr netip.AddrPort) {
	t.Helper()
	pc, err := ns.ListenPacket("udp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return // closed
			}
			_, _ = pc.WriteTo([]byte(from.String()+"\n"), from)
		}
	})
	t.Cleanup(func() {
		pc.Close()
		wg.Wait()
	})
}

// TestKernelUseMasquerade runs a shell in a temporary cgroup inside a
// router namespace with two uplinks to an ISP namespace. The router's
// main table routes via the first uplink; a Use pins the cgroup to the
// second. The ISP's echo server reports the source it saw: the shell's
// datagrams leave via the second uplink with its address (masqueraded),
// other traffic keeps the first uplink's. Without the masquerade chain
// the rerouted datagrams carry the first uplink's address.
func TestKernelUseMasquerade(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash (for /dev/udp) not installed")
	}
	router := testbed.NewNS(t, "use")
	isp := testbed.NewNS(t, "useisp")
	cgDir, cgID, cgLevel := tempCgroup(t)

	run := func(ns *testbed.NS, args ...string) {
		t.Helper()
		if _, err := ns.Run(t.Context(), args[0], args[1:]...); err != nil {
			t.Fatal(err)
		}
	}
	// Without masquerade, replies to the first uplink's address arrive on
	// the second: no reverse path filter (set before the links exist,
	// which copy the default).
	run(router, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0")
	for i, dev := range []string{"wan0", "wan1"} {
		peer := fmt.Sprintf("isp%d", i)
		run(router, "ip", "link", "add", dev, "type", "veth", "peer", "name", peer, "netns", isp.Name)
		run(router, "ip", "addr", "add", fmt.Sprintf("10.%d.0.2/24", i+1), "dev", dev)
		run(router, "ip", "addr", "add", fmt.Sprintf("fd00:%d::2/64", i+1), "dev", dev, "nodad")
		run(router, "ip", "link", "set", dev, "up")
		run(isp, "ip", "addr", "add", fmt.Sprintf("10.%d.0.1/24", i+1), "dev", peer)
		run(isp, "ip", "addr", "add", fmt.Sprintf("fd00:%d::1/64", i+1), "dev", peer, "nodad")
		run(isp, "ip", "link", "set", peer, "up")
	}
	run(isp, "ip", "addr", "add", "198.51.100.7/32", "dev", "lo")
	run(isp, "ip", "addr", "add", "2001:db8:ff::7/128", "dev", "lo")
	run(router, "ip", "route", "add", "default", "via", "10.1.0.1")
	run(router, "ip", "-6", "route", "add", "default", "via", "fd00:1::1")
	// wanb is interface 2, wanb6 interface 4 (marks 0x200, 0x400).
	run(router, "ip", "route", "add", "default", "via", "10.2.0.1", "dev", "wan1", "table", "2")
	run(router, "ip", "-6", "route", "add", "default", "via", "fd00:2::1", "dev", "wan1", "table", "4")
	run(router, "ip", "rule", "add", "pref", "2002", "fwmark", "0x200/0x3f00", "lookup", "2")
	run(router, "ip", "-6", "rule", "add", "pref", "2004", "fwmark", "0x400/0x3f00", "lookup", "4")

	in := &Input{
		Mask: DefaultMask,
		Interfaces: []Interface{
			{Name: "wan", ID: 1, Family: IPv4, Enabled: true, Online: true, Device: "wan0"},
			{Name: "wanb", ID: 2, Family: IPv4, Enabled: true, Online: true, Device: "wan1"},
			{Name: "wan6", ID: 3, Family: IPv6, Enabled: true, Online: true, Device: "wan0"},
			{Name: "wanb6", ID: 4, Family: IPv6, Enabled: true, Online: true, Device: "wan1"},
		},
		Policies: []Policy{{Name: "wanb_only", Members: []Member{
			{Name: "wanb_m1", Interface: "wanb", Metric: 1, Weight: 1}, {Name: "wanb6_m1", Interface: "wanb6", Metric: 1, Weight: 1},
		}}},
		// The router's own datagrams to port 7008 go out the second
		// uplink too, by a rule: not masqueraded (as legacy).
		Rules: []UserRule{{Name: "viab", Proto: "udp", DestPort: []PortRange{{7008, 7008}}, UsePolicy: "wanb_only"}},
		Uses:  []Use{{Cgroup: cgID, Level: cgLevel, Interface: "wanb"}, {Cgroup: cgID, Level: cgLevel, Interface: "wanb6"}},
	}
	a := NewApplier(WithNetNS(router.NetNSFd()))
	p := renderOK(t, in)
	if err := a.Apply(p); err != nil {
		t.Fatal(err)
	}

	echo4, echo6 := netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("2001:db8:ff::7")
	for _, addr := range []netip.Addr{echo4, echo6} {
		for _, port := range []uint16{7007, 7008} {
			udpEcho(t, isp, netip.AddrPortFrom(addr, port))
		}
	}
	// fromRouter sends a datagram from the test process (not in the
	// cgroup) and returns the source address the echo server saw.
	fromRouter := func(target netip.AddrPort) netip.Addr {
		t.Helper()
		c, err := router.Dial(t.Context(), "udp", target.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatalf("echo from %s: %v", target, err)
		}
		return sourceOf(t, line)
	}
	// fromCgroup does the same from a shell started in the cgroup.
	fromCgroup := func(target netip.AddrPort) netip.Addr {
		t.Helper()
		fd, err := unix.Open(cgDir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		// bash's read takes one byte per call, which would truncate the
		// datagram: head reads it whole.
		script := `exec 3<>"/dev/udp/$1/$2" && printf x >&3 && timeout 5 head -n 1 <&3`
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", router.Name, bash, "-c", script, "bash",
			target.Addr().String(), fmt.Sprint(target.Port()))
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
		cmd.WaitDelay = time.Second
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("shell in the cgroup: %v: %s", err, out)
		}
		return sourceOf(t, string(out))
	}

	for _, tt := range []struct {
		echo          netip.Addr
		first, second string // the addresses of the uplinks
	}{
		{echo4, "10.1.0.2", "10.2.0.2"},
		{echo6, "fd00:1::2", "fd00:2::2"},
	} {
		use, rule := netip.AddrPortFrom(tt.echo, 7007), netip.AddrPortFrom(tt.echo, 7008)
		if got := fromRouter(use); got.String() != tt.first {
			t.Errorf("%s from the router: source %s, want %s (first uplink)", use, got, tt.first)
		}
		if got := fromCgroup(use); got.String() != tt.second {
			t.Errorf("%s from the cgroup: source %s, want %s (second uplink, masqueraded)", use, got, tt.second)
		}
		if got := fromRouter(rule); got.String() != tt.first {
			t.Errorf("%s from the router, second uplink by a rule: source %s, want %s (not masqueraded)", rule, got, tt.first)
		}
	}
	vals, err := a.Counters(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vals {
		if v.Kind == CounterMember && v.Packets != 1 {
			t.Errorf("counter %s: %d packets, want 1 (the rule sent one datagram per family)", v.Name, v.Packets)
		}
	}

	// Without the masquerade chain the datagrams are still rerouted but
	// keep the first uplink's address.
	if _, err := router.Run(t.Context(), "nft", "delete", "chain", "inet", TableName, chainPostrouting); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		echo netip.Addr
		want string
	}{{echo4, "10.1.0.2"}, {echo6, "fd00:1::2"}} {
		if got := fromCgroup(netip.AddrPortFrom(tt.echo, 7007)); got.String() != tt.want {
			t.Errorf("%s from the cgroup without masquerade: source %s, want %s", tt.echo, got, tt.want)
		}
	}
}

// sourceOf parses the echo server's "address:port" line.
func sourceOf(t *testing.T, line string) netip.Addr {
	t.Helper()
	host, _, err := net.SplitHostPort(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("echo line %q: %v", line, err)
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		t.Fatalf("echo line %q: %v", line, err)
	}
	return a
}
