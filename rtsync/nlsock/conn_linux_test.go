package nlsock

import (
	"errors"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/mwan3d/mwan3d/internal/testbed"
)

const timeout = 5 * time.Second

// openIn opens a socket in a new namespace (loopback up).
func openIn(t *testing.T, ns *testbed.NS, groups uint32) *Conn {
	t.Helper()
	c, err := Open(netns.NsHandle(ns.NetNSFd()), unix.NETLINK_ROUTE, groups)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// linkNames dumps the links' names.
func linkNames(t *testing.T, c *Conn) []string {
	t.Helper()
	var names []string
	err := c.Execute(unix.RTM_GETLINK, FlagDump, make([]byte, unix.SizeofIfInfomsg), timeout, func(m Message) bool {
		if m.Type != unix.RTM_NEWLINK {
			t.Errorf("message type %d in a link dump", m.Type)
			return true
		}
		for b := m.Data[unix.SizeofIfInfomsg:]; len(b) >= 4; {
			l := int(ne.Uint16(b))
			if l < 4 || l > len(b) {
				t.Fatalf("bad attribute length %d", l)
			}
			if ne.Uint16(b[2:]) == unix.IFLA_IFNAME {
				names = append(names, string(b[4:l-1]))
			}
			b = b[min((l+3)&^3, len(b)):]
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// blackhole is an RTM_NEWROUTE/RTM_DELROUTE payload: blackhole 10.9.0.0/16
// in table 100.
func blackhole() []byte {
	b := make([]byte, unix.SizeofRtMsg)
	b[0], b[1] = unix.AF_INET, 16
	b[4], b[5], b[6], b[7] = 100, unix.RTPROT_STATIC, unix.RT_SCOPE_UNIVERSE, unix.RTN_BLACKHOLE
	dst := netip.MustParseAddr("10.9.0.0").As4()
	b = ne.AppendUint16(b, 8)
	b = ne.AppendUint16(b, unix.RTA_DST)
	return append(b, dst[:]...)
}

// TestConnNamespace checks that a socket opened for a namespace sees that
// namespace, and that the caller's thread is not left in it.
func TestConnNamespace(t *testing.T) {
	ns := testbed.NewNS(t, "nlsock")
	c := openIn(t, ns, 0)
	if got := linkNames(t, c); len(got) != 1 || got[0] != "lo" {
		t.Errorf("links in the new namespace: %v, want [lo]", got)
	}
	here, err := Open(netns.None(), unix.NETLINK_ROUTE, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer here.Close()
	if got := linkNames(t, here); !slices.Contains(got, "lo") {
		t.Errorf("links here: %v, want lo among them", got)
	}
	// Many sockets, to catch a thread left in the namespace.
	for range 50 {
		c, err := Open(netns.NsHandle(ns.NetNSFd()), unix.NETLINK_ROUTE, 0)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	cur, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	if ours, _ := netns.GetFromPath("/proc/self/ns/net"); !cur.Equal(ours) {
		t.Error("this thread was left in another namespace")
	}
}

// TestConnAcksAndErrors checks acknowledged requests and the kernel's
// errors, which must stay comparable with errors.Is.
func TestConnAcksAndErrors(t *testing.T) {
	c := openIn(t, testbed.NewNS(t, "nlsock"), 0)
	noReplies := func(m Message) bool {
		t.Errorf("unexpected reply of type %d", m.Type)
		return true
	}
	if err := c.Execute(unix.RTM_NEWROUTE, FlagAck|FlagCreate|FlagExcl, blackhole(), timeout, noReplies); err != nil {
		t.Fatalf("add route: %v", err)
	}
	err := c.Execute(unix.RTM_NEWROUTE, FlagAck|FlagCreate|FlagExcl, blackhole(), timeout, noReplies)
	if !errors.Is(err, syscall.EEXIST) {
		t.Errorf("add it again: %v, want EEXIST", err)
	}
	if err := c.Execute(unix.RTM_DELROUTE, FlagAck, blackhole(), timeout, noReplies); err != nil {
		t.Errorf("delete route: %v", err)
	}
	err = c.Execute(unix.RTM_DELROUTE, FlagAck, blackhole(), timeout, noReplies)
	if !errors.Is(err, syscall.ESRCH) {
		t.Errorf("delete it again: %v, want ESRCH", err)
	}
	// An invalid request: the kernel's explanation (extended ack) joins
	// the errno where the kernel gives one.
	bad := blackhole()
	bad[1] = 40 // a /40 IPv4 prefix
	err = c.Execute(unix.RTM_NEWROUTE, FlagAck|FlagCreate, bad, timeout, noReplies)
	if !errors.Is(err, syscall.EINVAL) {
		t.Errorf("invalid route: %v, want EINVAL", err)
	}
	t.Logf("invalid route: %v", err)
	// The socket is still in step after the errors.
	if got := linkNames(t, c); len(got) != 1 {
		t.Errorf("links after errors: %v", got)
	}
}

// TestConnSubscription checks notifications and that Close ends a waiting
// Receive.
func TestConnSubscription(t *testing.T) {
	ns := testbed.NewNS(t, "nlsock")
	sub := openIn(t, ns, unix.RTMGRP_IPV4_ROUTE)
	mustOK := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	mustOK(sub.SetReceiveBuffer(1 << 16))
	req := openIn(t, ns, 0)
	mustOK(req.Execute(unix.RTM_NEWROUTE, FlagAck|FlagCreate, blackhole(), timeout, func(Message) bool { return true }))
	got := make(chan uint16, 1)
	go func() {
		_ = sub.Receive(func(m Message) {
			select {
			case got <- m.Type:
			default:
			}
		})
	}()
	select {
	case typ := <-got:
		if typ != unix.RTM_NEWROUTE {
			t.Errorf("notification of type %d, want RTM_NEWROUTE", typ)
		}
	case <-time.After(timeout):
		t.Fatal("no notification")
	}
	done := make(chan error, 1)
	go func() { done <- sub.Receive(func(Message) {}) }()
	time.Sleep(50 * time.Millisecond) // let it wait
	sub.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Receive on a closed socket returned no error")
		}
	case <-time.After(timeout):
		t.Fatal("Close did not end Receive")
	}
}
