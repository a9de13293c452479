//go:build linux

package testbed

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestSanitizeAndStalePID(t *testing.T) {
	tests := []struct {
		in    string
		limit int
		want  string
	}{
		{"TestFoo/sub_test", 24, "TestFoo_sub_test"},
		{"a-b.c", 12, "a_b_c"},
		{"", 5, "x"},
		{"abcdefghijkl", 4, "abcd"},
	}
	for _, tt := range tests {
		if got := sanitize(tt.in, tt.limit); got != tt.want {
			t.Errorf("sanitize(%q, %d) = %q, want %q", tt.in, tt.limit, got, tt.want)
		}
	}
	pids := []struct {
		name string
		pid  int
		ok   bool
	}{
		{"mwtb-router-TestX-1234-a1b2c3", 1234, true},
		{"mwtb-isp1-TestX_sub-99-ffffff", 99, true},
		{"mwtb-isp1-TestX-99-fffff", 0, false},  // short suffix
		{"mwtb-isp1-TestX-99-zzzzzz", 0, false}, // not hex
		{"mwtb-isp1-TestX-x9-abcdef", 0, false}, // pid not a number
		{"other-router-TestX-1234-a1b2c3", 0, false},
		{"nftexp4264", 0, false},
	}
	for _, tt := range pids {
		pid, ok := stalePID(tt.name)
		if pid != tt.pid || ok != tt.ok {
			t.Errorf("stalePID(%q) = %d, %v; want %d, %v", tt.name, pid, ok, tt.pid, tt.ok)
		}
	}
}

// netnsInode returns the inode of the network namespace at path.
func netnsInode(t testing.TB, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st.Ino
}

func TestNSDoDoesNotLeakIntoOtherThreads(t *testing.T) {
	n := NewNS(t, "do")
	if !strings.HasPrefix(n.Name, "mwtb-do-TestNSDoDoesNotLea") {
		t.Errorf("name %q does not carry the prefix and the test name", n.Name)
	}
	if _, err := os.Stat(n.Path()); err != nil {
		t.Fatalf("namespace mount: %v", err)
	}
	hostIno := netnsInode(t, "/proc/self/ns/net")
	nsIno := netnsInode(t, n.Path())
	for range 20 {
		var inside uint64
		err := n.Do(func() error {
			var st unix.Stat_t
			if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
				return err
			}
			inside = st.Ino
			return nil
		})
		if err != nil {
			t.Fatalf("Do: %v", err)
		}
		if inside != nsIno {
			t.Fatalf("Do ran in namespace %d, want %d", inside, nsIno)
		}
	}
	if got := netnsInode(t, "/proc/thread-self/ns/net"); got != hostIno {
		t.Fatalf("test goroutine's thread is in namespace %d, want %d", got, hostIno)
	}
	// The Do threads exit with their goroutines; none may stay in the namespace.
	var stray []string
	for range 100 {
		stray = stray[:0]
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range tasks {
			var st unix.Stat_t
			if unix.Stat(filepath.Join("/proc/self/task", task.Name(), "ns/net"), &st) == nil && st.Ino == nsIno {
				stray = append(stray, task.Name())
			}
		}
		if len(stray) == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(stray) > 0 {
		t.Errorf("threads %v are still in the namespace after Do returned", stray)
	}

	wantErr := errors.New("boom")
	if err := n.Do(func() error { return wantErr }); !errors.Is(err, wantErr) {
		t.Errorf("Do error = %v, want %v", err, wantErr)
	}
	func() {
		defer func() {
			if r := recover(); r != "inside" {
				t.Errorf("recovered %v, want the panic of f", r)
			}
		}()
		_ = n.Do(func() error { panic("inside") })
	}()
}

// linkNS connects a and b with a veth pair (devices "va" in a, "vb" in b)
// and gives them the addresses.
func linkNS(t *testing.T, a, b *NS, addrA, addrB netip.Prefix) {
	t.Helper()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: "va"},
		PeerName:      "vb",
		PeerNamespace: netlink.NsFd(b.NetNSFd()),
	}
	if err := a.Handle().LinkAdd(veth); err != nil {
		t.Fatalf("veth: %v", err)
	}
	for _, side := range []struct {
		ns   *NS
		dev  string
		addr netip.Prefix
	}{{a, "va", addrA}, {b, "vb", addrB}} {
		l, err := side.ns.Handle().LinkByName(side.dev)
		if err != nil {
			t.Fatal(err)
		}
		if err := side.ns.Handle().AddrAdd(l, &netlink.Addr{IPNet: prefixNet(side.addr), Flags: unix.IFA_F_NODAD}); err != nil {
			t.Fatal(err)
		}
		if err := side.ns.Handle().LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
}

func TestNSSocketsHandlesAndCommands(t *testing.T) {
	a := NewNS(t, "a")
	b := NewNS(t, "b")
	linkNS(t, a, b, netip.MustParsePrefix("10.99.0.1/24"), netip.MustParsePrefix("10.99.0.2/24"))

	links, err := a.Handle().LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	if strings.Join(names, ",") != "lo,va" {
		t.Errorf("links in a = %v, want lo and va only", names)
	}

	l, err := b.Listen("tcp", "10.99.0.2:7777")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			accepted <- err.Error()
			return
		}
		defer c.Close()
		accepted <- c.RemoteAddr().String()
		_, _ = io.Copy(c, c)
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c, err := a.Dial(ctx, "tcp", "10.99.0.2:7777")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := <-accepted; !strings.HasPrefix(got, "10.99.0.1:") {
		t.Errorf("b saw the connection from %s, want 10.99.0.1", got)
	}
	if _, err := a.Dial(ctx, "tcp", "localhost:7777"); err == nil {
		t.Error("Dial accepted a host name")
	}

	pc, err := b.ListenPacket("udp", "10.99.0.2:7778")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	uc, err := a.Dial(ctx, "udp", "10.99.0.2:7778")
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	if _, err := uc.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	nr, from, err := pc.ReadFrom(buf)
	if err != nil || string(buf[:nr]) != "hi" || !strings.HasPrefix(from.String(), "10.99.0.1:") {
		t.Errorf("udp read = %q from %v, %v", buf[:nr], from, err)
	}

	conn, err := a.NftConn()
	if err != nil {
		t.Fatal(err)
	}
	conn.AddTable(&nftables.Table{Name: "tbtest", Family: nftables.TableFamilyINet})
	if err := conn.Flush(); err != nil {
		t.Fatalf("add table: %v", err)
	}
	conn2, err := a.NftConn()
	if err != nil {
		t.Fatal(err)
	}
	tables, err := conn2.ListTables()
	if err != nil || len(tables) != 1 || tables[0].Name != "tbtest" {
		t.Errorf("tables in a = %v, %v; want tbtest only", tables, err)
	}
	out, err := a.Run(ctx, "nft", "list", "tables")
	if err != nil || !strings.Contains(out, "table inet tbtest") {
		t.Errorf("nft list tables in a = %q, %v", out, err)
	}
	if _, err := a.Run(ctx, "false"); err == nil {
		t.Error("Run of a failing command returned no error")
	}
}

func TestNSCleanupKillsProcessesAndRemovesNamespace(t *testing.T) {
	RequireRoot(t)
	var path string
	var pid int
	var ino uint64
	t.Run("inner", func(t *testing.T) {
		n := NewNS(t, "clean")
		path = n.Path()
		ino = netnsInode(t, path)
		cmd, err := n.Start("sleep", "60")
		if err != nil {
			t.Fatal(err)
		}
		pid = cmd.Process.Pid
	})
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("namespace %s still mounted after cleanup (stat: %v)", path, err)
	}
	if err := unix.Kill(pid, 0); !errors.Is(err, unix.ESRCH) {
		t.Errorf("process %d still exists after cleanup (kill 0: %v)", pid, err)
	}
	if pids := pidsInNetNS(ino); len(pids) > 0 {
		t.Errorf("processes %v still in the namespace", pids)
	}
}

func TestNSDialRefusesNames(t *testing.T) {
	n := NewNS(t, "dial")
	_, err := n.Dial(t.Context(), "tcp", "example.com:80")
	if err == nil || !strings.Contains(err.Error(), "must be an IP address") {
		t.Errorf("Dial(example.com) = %v, want an IP-literal error", err)
	}
}

func BenchmarkNSDo(b *testing.B) {
	n := NewNS(b, "bench")
	b.ReportAllocs()
	for b.Loop() {
		if err := n.Do(func() error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
