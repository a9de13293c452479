//go:build linux

package track

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/arp"
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
		hw := net.HardwareAddr(append([]byte(nil), ll.Addr[:6]...))
		src := pr.src
		if !src.IsValid() {
			if src, err = deviceIPv4(fd, pr.b.Device); err != nil {
				return err
			}
		}
		pkt, err := arp.NewPacket(arp.OperationRequest, hw, src, broadcastHW, dst)
		if err != nil {
			return fmt.Errorf("build request: %w", err)
		}
		if e.out, err = pkt.MarshalBinary(); err != nil {
			return fmt.Errorf("build request: %w", err)
		}
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

// isARPReplyFrom reports whether b is an ARP reply sent by dst.
func isARPReplyFrom(b []byte, dst netip.Addr) bool {
	var p arp.Packet
	if err := p.UnmarshalBinary(b); err != nil {
		return false
	}
	return p.Operation == arp.OperationReply && p.SenderIP == dst
}
