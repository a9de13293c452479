package daemon

import (
	"net"
	"testing"

	"github.com/mwan3d/mwan3d/internal/testbed"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestFlushConntrackMark: only the entries carrying the interface's mark
// under the mask go; foreign mark bits do not protect them, other marks and
// unmarked entries stay.
func TestFlushConntrackMark(t *testing.T) {
	testbed.RequireRoot(t)
	ns := testbed.NewNS(t, "ct")
	h := ns.Handle()
	flow := func(src string, sport uint16, mark uint32, v6 bool) {
		fam := netlink.InetFamily(unix.AF_INET)
		dst := "198.51.100.1"
		if v6 {
			fam, dst = unix.AF_INET6, "2001:db8::1"
		}
		f := &netlink.ConntrackFlow{FamilyType: uint8(fam), Mark: mark, TimeOut: 100}
		f.Forward = netlink.IPTuple{SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst), Protocol: unix.IPPROTO_TCP, SrcPort: sport, DstPort: 443}
		f.Reverse = netlink.IPTuple{SrcIP: net.ParseIP(dst), DstIP: net.ParseIP(src), Protocol: unix.IPPROTO_TCP, SrcPort: 443, DstPort: sport}
		f.ProtoInfo = &netlink.ProtoInfoTCP{State: tcpEstablished}
		if err := h.ConntrackCreate(netlink.ConntrackTable, fam, f); err != nil {
			t.Fatalf("create flow: %v", err)
		}
	}
	flow("10.0.0.1", 1001, 0x100, false)   // wan
	flow("10.0.0.1", 1002, 0x10100, false) // wan plus a foreign bit
	flow("10.0.0.1", 1003, 0x200, false)   // another interface
	flow("10.0.0.1", 1004, 0x10000, false) // foreign bit only
	flow("10.0.0.1", 1005, 0, false)       // unmarked
	flow("2001:db8::2", 1006, 0x100, true)
	flow("2001:db8::2", 1007, 0x300, true)

	n, err := FlushConntrackMark(h, 0x3f00, 0x100)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("deleted %d entries, want 3", n)
	}
	var left []uint32
	for _, fam := range []netlink.InetFamily{unix.AF_INET, unix.AF_INET6} {
		flows, err := h.ConntrackTableList(netlink.ConntrackTable, fam)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range flows {
			left = append(left, f.Mark)
		}
	}
	want := map[uint32]bool{0x200: true, 0x10000: true, 0: true, 0x300: true}
	if len(left) != len(want) {
		t.Errorf("left marks %#x, want %v", left, want)
	}
	for _, m := range left {
		if !want[m] {
			t.Errorf("entry with mark %#x survived", m)
		}
	}
	if _, err := FlushConntrackMark(h, 0x3f00, 0x4000); err == nil {
		t.Error("a mark outside the mask was accepted")
	}
}

const tcpEstablished = 3
