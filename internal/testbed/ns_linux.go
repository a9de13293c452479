//go:build linux

package testbed

import (
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
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// netnsDir is where `ip netns` keeps its named namespaces (bind mounts).
const netnsDir = "/run/netns"

// namePrefix marks the namespaces made by this package, so that the ones
// left behind by a killed test binary can be recognised and removed.
const namePrefix = "mwtb"

// RequireRoot skips the test with a clear message unless it runs as root
// with network namespaces available. With MWAN3D_REQUIRE_ROOT_TESTS=1 in the
// environment it fails the test instead of skipping it.
func RequireRoot(t testing.TB) {
	t.Helper()
	reason := rootUnavailable()
	if reason == "" {
		return
	}
	if os.Getenv("MWAN3D_REQUIRE_ROOT_TESTS") == "1" {
		t.Fatalf("testbed: %s (MWAN3D_REQUIRE_ROOT_TESTS=1 turns this skip into a failure)", reason)
	}
	t.Skipf("testbed: %s; run as root to enable this test", reason)
}

var (
	probeOnce   sync.Once
	probeReason string
)

// rootUnavailable returns why namespace tests cannot run here, or "".
// The probe (creating and discarding a namespace) runs once per process.
func rootUnavailable() string {
	if os.Geteuid() != 0 {
		return "not running as root"
	}
	probeOnce.Do(func() {
		errc := make(chan error, 1)
		go func() {
			errc <- onThrowawayThread(func() error { return unix.Unshare(unix.CLONE_NEWNET) })
		}()
		if err := <-errc; err != nil {
			probeReason = fmt.Sprintf("network namespaces unavailable: unshare(CLONE_NEWNET): %v", err)
			return
		}
		if err := prepareNetnsDir(); err != nil {
			probeReason = fmt.Sprintf("cannot prepare %s: %v", netnsDir, err)
		}
	})
	return probeReason
}

// prepareNetnsDir makes /run/netns a shared mount point, as `ip netns add`
// does, so that namespaces mounted there are visible to `ip netns exec`.
func prepareNetnsDir() error {
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return fmt.Errorf("mkdir %s: %w", netnsDir, err)
	}
	err := unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if !errors.Is(err, unix.EINVAL) {
		if err != nil {
			return fmt.Errorf("make %s shared: %w", netnsDir, err)
		}
		return nil
	}
	// Not a mount point yet: bind it onto itself, then make it shared.
	if err := unix.Mount(netnsDir, netnsDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", netnsDir, err)
	}
	if err := unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make %s shared: %w", netnsDir, err)
	}
	return nil
}

// NS is one network namespace owned by a test. It is created with a unique
// name and removed in t.Cleanup (also after a failure or a panic), after the
// processes started in it with Start have been killed.
//
// The test's own goroutines never change namespace: Do runs a function on a
// fresh OS thread that is thrown away afterwards, and the netlink and
// nftables handles are bound to the namespace by file descriptor.
type NS struct {
	// Name is the `ip netns` name of the namespace.
	Name string

	fd     int
	handle *netlink.Handle
	closed atomic.Bool

	mu    sync.Mutex
	procs []*exec.Cmd
}

// NewNS creates a network namespace whose name starts with prefix and
// includes the test name, the process id and a random suffix. Its loopback
// is up. The test is skipped (or failed, see RequireRoot) without root.
func NewNS(t testing.TB, prefix string) *NS {
	t.Helper()
	RequireRoot(t)
	n, err := newNS(prefix, t.Name())
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	t.Cleanup(func() {
		if err := n.close(); err != nil {
			t.Errorf("testbed: %v", err)
		}
	})
	return n
}

var reapOnce sync.Once

func newNS(prefix, testName string) (*NS, error) {
	reapOnce.Do(reapStale)
	var suffix [3]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return nil, fmt.Errorf("random namespace suffix: %w", err)
	}
	name := fmt.Sprintf("%s-%s-%s-%d-%s", namePrefix, sanitize(prefix, 12), sanitize(testName, 24),
		os.Getpid(), hex.EncodeToString(suffix[:]))
	path := filepath.Join(netnsDir, name)
	if err := createNetNS(path); err != nil {
		return nil, fmt.Errorf("create namespace %s: %w", name, err)
	}
	n := &NS{Name: name, fd: -1}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open namespace %s: %w", name, err), n.close())
	}
	n.fd = fd
	h, err := netlink.NewHandleAt(netns.NsHandle(fd))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("netlink handle in %s: %w", name, err), n.close())
	}
	n.handle = h
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("set lo up in %s: %w", name, err), n.close())
	}
	return n, nil
}

// createNetNS creates a network namespace and bind-mounts it at path. The
// unshare happens on a throwaway thread that is never unlocked, so no other
// goroutine ever runs in the new namespace by accident.
func createNetNS(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("create mount point: %w", err)
	}
	if err := f.Close(); err != nil {
		return errors.Join(fmt.Errorf("create mount point: %w", err), os.Remove(path))
	}
	errc := make(chan error, 1)
	go func() {
		errc <- onThrowawayThread(func() error {
			if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
				return fmt.Errorf("unshare: %w", err)
			}
			src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
			if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
				return fmt.Errorf("bind mount %s: %w", src, err)
			}
			return nil
		})
	}()
	if err := <-errc; err != nil {
		return errors.Join(err, os.Remove(path))
	}
	return nil
}

// onThrowawayThread locks the calling goroutine to its OS thread for good
// and runs f, which may change the thread's network namespace. The caller's
// goroutine must return afterwards: the runtime then ends the thread, so no
// other goroutine ever runs in that namespace.
//
// The main thread is the exception: the runtime cannot end it and parks it
// forever instead, which would keep the namespace alive until the process
// exits. There, the thread's namespace is set back after f.
func onThrowawayThread(f func() error) error {
	runtime.LockOSThread() // never unlocked
	if unix.Gettid() != unix.Getpid() {
		return f()
	}
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the main thread's namespace: %w", err)
	}
	defer unix.Close(orig)
	defer func() {
		// If this fails the thread stays in the namespace: nothing better to do.
		_ = unix.Setns(orig, unix.CLONE_NEWNET)
	}()
	return f()
}

// removeNetNS unmounts and removes a named namespace. The kernel destroys the
// namespace, and every link in it, once nothing else refers to it.
func removeNetNS(path string) error {
	err := unix.Unmount(path, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

// close kills the processes started in the namespace, closes the handles
// and removes the namespace. It is idempotent.
func (n *NS) close() error {
	if n.closed.Swap(true) {
		return nil
	}
	var errs []error
	n.mu.Lock()
	procs := n.procs
	n.procs = nil
	n.mu.Unlock()
	for _, cmd := range procs {
		if cmd.Process == nil || cmd.ProcessState != nil {
			continue
		}
		// Start put the command in its own process group: kill all of it.
		if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("kill %s in %s: %w", cmd.Path, n.Name, err))
		}
		_ = cmd.Wait() // the exit status of a killed process is of no interest
	}
	if n.handle != nil {
		n.handle.Close()
	}
	if n.fd >= 0 {
		if err := unix.Close(n.fd); err != nil {
			errs = append(errs, fmt.Errorf("close namespace fd of %s: %w", n.Name, err))
		}
	}
	if err := removeNetNS(filepath.Join(netnsDir, n.Name)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Path returns the path of the namespace's bind mount: /run/netns/<name>.
func (n *NS) Path() string { return filepath.Join(netnsDir, n.Name) }

// NetNSFd returns a file descriptor of the namespace, valid until cleanup.
func (n *NS) NetNSFd() int { return n.fd }

// Handle returns a netlink handle bound to the namespace. It is shared by
// all callers and closed at cleanup.
func (n *NS) Handle() *netlink.Handle { return n.handle }

// NftConn returns a new nftables connection bound to the namespace. Use a
// fresh one per transaction: with google/nftables v0.3.0 a Conn keeps
// failing after one failed Flush.
func (n *NS) NftConn() (*nftables.Conn, error) {
	c, err := nftables.New(nftables.WithNetNSFd(n.fd))
	if err != nil {
		return nil, fmt.Errorf("nftables conn in %s: %w", n.Name, err)
	}
	return c, nil
}

// errClosed is returned by Do after the namespace has been cleaned up.
var errClosed = errors.New("namespace already removed")

// Do runs f on a fresh, locked OS thread inside the namespace and returns
// its error. The thread is thrown away afterwards, so other goroutines never
// run in the namespace. Sockets created by f stay in the namespace when f
// returns. A panic in f is re-raised in the caller.
//
// Goroutines started by f run in the namespace the Go runtime gives them
// (usually the initial one), not in n: create sockets in f itself.
func (n *NS) Do(f func() error) error {
	if n.closed.Load() {
		return fmt.Errorf("do in %s: %w", n.Name, errClosed)
	}
	type result struct {
		err      error
		panicked bool
		value    any
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				done <- result{panicked: true, value: v}
			}
		}()
		done <- result{err: onThrowawayThread(func() error {
			if err := unix.Setns(n.fd, unix.CLONE_NEWNET); err != nil {
				return fmt.Errorf("setns %s: %w", n.Name, err)
			}
			return f()
		})}
	}()
	r := <-done
	if r.panicked {
		panic(r.value)
	}
	return r.err
}

// Run runs a command inside the namespace (`ip netns exec`) and returns its
// combined output. The error includes the output.
func (n *NS) Run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s in %s: %w: %s", name, strings.Join(args, " "), n.Name, err,
			strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Start starts a command inside the namespace (`ip netns exec`) in a process
// group of its own. The group is killed at cleanup unless the caller has
// waited for the command already.
func (n *NS) Start(name string, args ...string) (*exec.Cmd, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed.Load() {
		return nil, fmt.Errorf("start %s in %s: %w", name, n.Name, errClosed)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s in %s: %w", name, n.Name, err)
	}
	n.procs = append(n.procs, cmd)
	return cmd, nil
}

// Listen announces on a socket created inside the namespace (see net.Listen).
func (n *NS) Listen(network, addr string) (net.Listener, error) {
	var l net.Listener
	err := n.Do(func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen %s %s in %s: %w", network, addr, n.Name, err)
	}
	return l, nil
}

// ListenPacket opens a packet socket inside the namespace (see
// net.ListenPacket; raw "ip4:icmp" style networks work too).
func (n *NS) ListenPacket(network, addr string) (net.PacketConn, error) {
	var c net.PacketConn
	err := n.Do(func() error {
		var err error
		c, err = net.ListenPacket(network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen %s %s in %s: %w", network, addr, n.Name, err)
	}
	return c, nil
}

// Dial connects from inside the namespace. The host part of addr must be an
// IP literal: name resolution would run on other threads, outside the
// namespace.
func (n *NS) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return n.dial(ctx, net.Dialer{}, network, addr)
}

func (n *NS) dial(ctx context.Context, d net.Dialer, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s %s in %s: %w", network, addr, n.Name, err)
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return nil, fmt.Errorf("dial %s %s in %s: host must be an IP address: %w", network, addr, n.Name, err)
	}
	// No parallel dialing: every socket must be created on the Do thread.
	d.FallbackDelay = -1
	var c net.Conn
	err = n.Do(func() error {
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s %s in %s: %w", network, addr, n.Name, err)
	}
	return c, nil
}

// sanitize keeps letters, digits and '_' of s (others become '_'), at most
// limit characters.
func sanitize(s string, limit int) string {
	b := []byte(s)
	if len(b) > limit {
		b = b[:limit]
	}
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "x"
	}
	return string(b)
}

// stalePID returns the process id embedded in a namespace name made by this
// package, or false for other names.
func stalePID(name string) (int, bool) {
	if !strings.HasPrefix(name, namePrefix+"-") {
		return 0, false
	}
	f := strings.Split(name, "-")
	if len(f) < 5 || len(f[len(f)-1]) != 6 {
		return 0, false
	}
	if _, err := hex.DecodeString(f[len(f)-1]); err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(f[len(f)-2])
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

// reapStale removes the namespaces this package made in processes that no
// longer exist (a test binary killed before its cleanup ran), killing the
// processes still running in them. Errors are ignored: it is best effort.
func reapStale() {
	entries, err := os.ReadDir(netnsDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, ok := stalePID(e.Name())
		if !ok || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		path := filepath.Join(netnsDir, e.Name())
		var st unix.Stat_t
		if unix.Stat(path, &st) == nil {
			killInNetNS(st.Ino)
		}
		_ = removeNetNS(path)
	}
}

// killInNetNS kills every process whose network namespace has inode ino.
func killInNetNS(ino uint64) {
	for _, pid := range pidsInNetNS(ino) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(time.Second)
	for len(pidsInNetNS(ino)) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

// pidsInNetNS lists the processes (other than this one) whose network
// namespace has inode ino.
func pidsInNetNS(ino uint64) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(filepath.Join("/proc", e.Name(), "ns", "net"), &st) == nil && st.Ino == ino {
			pids = append(pids, pid)
		}
	}
	return pids
}
