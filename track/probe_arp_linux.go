//go:build linux

package track

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

const ethPARP = 0x0806

// htons converts a 16-bit value to network byte order for sockaddr_ll.
func htons(v uint16) uint16 { return v<<8 | v>>8 }

var broadcastHW = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// arpEcho sends ARP requests for one address on the device (a packet
// socket bound to the device, as legacy's shim rebound arping's) and
// reads the replies.
type arpEcho struct {
	s   *sock
	dst netip.Addr
	to  *unix.SockaddrLinklayer
	out []byte
	in  []byte
}

// arp runs an ARP probe: arping (-w timeout: the whole probe lasts at
// most timeout, until count replies) or nping-arp (count requests).
func (pr *nativeProber) arp(ctx context.Context, dst netip.Addr, count int, arping bool) Result {
	op := probeOp{"arping", netip.AddrPortFrom(dst, 0)}
	if !dst.Is4() {
		return Result{Err: fmt.Errorf("%s: ARP needs an IPv4 target", op)}
	}
	e, err := pr.newARPEcho(dst)
	if err != nil {
		return Result{Err: fmt.Errorf("%s: %w", op, err)}
	}
	defer e.s.close()
	stop := e.s.closeOnDone(ctx)
	defer stop()
	return echoLoop(ctx, op, e, echoSpec{count: count, timeout: pr.p.Timeout, untilReplies: arping})
}

func (pr *nativeProber) newARPEcho(dst netip.Addr) (*arpEcho, error) {
	s, err := pr.openDomain(unix.AF_PACKET, unix.SOCK_DGRAM, int(htons(ethPARP)), false)
	if err != nil {
		return nil, err
	}
	e := &arpEcho{s: s, dst: dst, in: make([]byte, 256)}
	err = s.control(func(fd int) error {
		idx, err := ifindex(fd, pr.b.Device)
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(ethPARP), Ifindex: idx}); err != nil {
			return fmt.Errorf("bind to %s: %w", pr.b.Device, err)
		}
		sa, err := unix.Getsockname(fd)
		if err != nil {
			return fmt.Errorf("getsockname: %w", err)
		}
		ll, ok := sa.(*unix.SockaddrLinklayer)
		if !ok || ll.Halen != 6 {
			return fmt.Errorf("device %s has no Ethernet address", pr.b.Device)
		}
		src := pr.src
		if !src.IsValid() {
			if src, err = deviceIPv4(fd, pr.b.Device); err != nil {
				return err
			}
		}
		if !src.Is4() {
			return fmt.Errorf("build request: source address %s is not IPv4", src)
		}
		e.out = arpRequest([6]byte(ll.Addr[:6]), src, dst)
		e.to = &unix.SockaddrLinklayer{Protocol: htons(ethPARP), Ifindex: idx, Halen: 6}
		copy(e.to.Addr[:], broadcastHW)
		return nil
	})
	if err != nil {
		s.close()
		return nil, err
	}
	return e, nil
}

// deviceIPv4 is the device's primary IPv4 address (arping's default
// sender address).
func deviceIPv4(fd int, dev string) (netip.Addr, error) {
	ifr, err := unix.NewIfreq(dev)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("device %q: %w", dev, err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFADDR, ifr); err != nil {
		return netip.Addr{}, fmt.Errorf("IPv4 address of %s: %w", dev, err)
	}
	b, err := ifr.Inet4Addr()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("IPv4 address of %s: %w", dev, err)
	}
	return netip.AddrFrom4([4]byte(b)), nil
}

func (e *arpEcho) send(int) error { return e.s.sendto(e.out, e.to) }

func (e *arpEcho) recv(deadline time.Time) (int, time.Time, error) {
	n, _, err := e.s.recvfrom(e.in, deadline)
	at := time.Now()
	if err != nil {
		return 0, at, err
	}
	if !isARPReplyFrom(e.in[:n], e.dst) {
		return 0, at, errIgnore
	}
	return -1, at, nil
}

// ARP over Ethernet for IPv4 (RFC 826): hardware type, protocol type,
// address lengths and operation, then sender and target addresses. Coded
// here: mdlayher/arp, with the Ethernet and packet socket packages it
// brings, added 12 KB to the binary.
const (
	arpHeaderLen  = 8
	arpHwEthernet = 1
	arpProtoIPv4  = 0x0800
	arpOpRequest  = 1
	arpOpReply    = 2
)

// arpRequest asks who has dst, from hw and src, sent to the broadcast
// address as arping does.
func arpRequest(hw [6]byte, src, dst netip.Addr) []byte {
	b := make([]byte, 0, arpHeaderLen+2*(6+4))
	b = binary.BigEndian.AppendUint16(b, arpHwEthernet)
	b = binary.BigEndian.AppendUint16(b, arpProtoIPv4)
	b = append(b, 6, 4)
	b = binary.BigEndian.AppendUint16(b, arpOpRequest)
	b = append(b, hw[:]...)
	b = append(b, src.AsSlice()...)
	b = append(b, broadcastHW...)
	return append(b, dst.AsSlice()...)
}

// isARPReplyFrom reports whether b is an ARP reply sent by dst (IPv4),
// whatever the hardware address length.
func isARPReplyFrom(b []byte, dst netip.Addr) bool {
	if len(b) < arpHeaderLen || b[5] != 4 || binary.BigEndian.Uint16(b[6:]) != arpOpReply {
		return false
	}
	hlen := int(b[4])
	if len(b) < arpHeaderLen+2*hlen+2*4 {
		return false
	}
	spa := b[arpHeaderLen+hlen : arpHeaderLen+hlen+4]
	return netip.AddrFrom4([4]byte(spa)) == dst
}
