//go:build linux

package track

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// ICMP message types.
const (
	icmpv4EchoRequest = 8
	icmpv4EchoReply   = 0
	icmpv6EchoRequest = 128
	icmpv6EchoReply   = 129
)

// icmpConn is a prober's ICMP or ICMPv6 echo socket, shared by its
// concurrent probes and kept open between rounds (opening a socket and
// attaching its filter cost more than the probe itself). It is a raw
// socket (root; a BPF program passes only echo replies with our
// identifier) or, when raw sockets are not permitted, an unprivileged ping
// socket (the kernel picks the identifier and demultiplexes). A reader
// goroutine hands each reply to the probe waiting for its sequence number.
// A socket that fails (device gone: SO_BINDTODEVICE holds the old
// interface index) is replaced by the next probe.
type icmpConn struct {
	pr        *nativeProber
	size, ttl int
	v6        bool

	mu      sync.Mutex
	s       *sock
	raw     bool
	id      uint16
	next    uint16 // next sequence number
	out     []byte // request being sent (guarded by mu)
	waiting map[uint16]icmpWaiter
	closed  bool
	readers sync.WaitGroup
}

// icmpWaiter is a request waiting for its reply.
type icmpWaiter struct {
	dst netip.Addr
	idx int // the request's index within its probe
	ch  chan echoHit
}

type echoHit struct {
	idx int
	at  time.Time
}

func newICMPConn(pr *nativeProber, size, ttl int) *icmpConn {
	return &icmpConn{pr: pr, size: size, ttl: ttl, v6: pr.p.Family == IPv6, waiting: map[uint16]icmpWaiter{}}
}

// ping runs an echo probe (ping, nping-icmp) on the prober's ICMP socket.
func (pr *nativeProber) ping(ctx context.Context, dst netip.Addr) Result {
	e := &icmpProbe{c: pr.icmp, ctx: ctx, dst: dst, ch: make(chan echoHit, pr.p.Count)}
	defer e.release()
	return echoLoop(ctx, "ping "+dst.String(), e, echoSpec{count: pr.p.Count, timeout: pr.p.Timeout})
}

// open replaces the socket; c.mu is held.
func (c *icmpConn) open() error {
	if c.closed {
		return net.ErrClosed
	}
	if c.s != nil {
		c.s.close()
		c.s = nil
	}
	proto := unix.IPPROTO_ICMP
	if c.v6 {
		proto = unix.IPPROTO_ICMPV6
	}
	var idb [2]byte
	_, _ = rand.Read(idb[:])
	c.id = binary.BigEndian.Uint16(idb[:])
	c.raw = true
	s, err := c.pr.open(unix.SOCK_RAW, proto)
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		c.raw = false
		s, err = c.pr.open(unix.SOCK_DGRAM, proto)
	}
	if err != nil {
		return err
	}
	err = s.control(func(fd int) error {
		if c.v6 {
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, c.ttl); err != nil {
				return fmt.Errorf("set hop limit: %w", err)
			}
		} else if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_TTL, c.ttl); err != nil {
			return fmt.Errorf("set ttl: %w", err)
		}
		if c.raw {
			return attachEchoFilter(fd, c.v6, c.id)
		}
		return nil
	})
	if err != nil {
		s.close()
		return err
	}
	c.s = s
	if c.out == nil {
		c.out = make([]byte, 8+c.size)
		for i := 8; i < len(c.out); i++ {
			c.out[i] = byte(i)
		}
	}
	c.readers.Go(func() { c.read(s, c.raw, c.id) })
	return nil
}

// send sends request idx of a probe to dst and registers its waiter.
func (c *icmpConn) send(dst netip.Addr, idx int, ch chan echoHit) (uint16, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.s == nil {
		if err := c.open(); err != nil {
			return 0, err
		}
	}
	seq := c.next
	c.next++
	c.waiting[seq] = icmpWaiter{dst: dst, idx: idx, ch: ch}
	b := c.out
	b[0] = icmpv4EchoRequest
	if c.v6 {
		b[0] = icmpv6EchoRequest
	}
	b[1], b[2], b[3] = 0, 0, 0
	binary.BigEndian.PutUint16(b[4:], c.id)
	binary.BigEndian.PutUint16(b[6:], seq)
	if !c.v6 && c.raw { // ping sockets and ICMPv6 get their checksum from the kernel
		binary.BigEndian.PutUint16(b[2:], checksum(b))
	}
	var to unix.Sockaddr
	err := c.s.control(func(fd int) error {
		var err error
		to, err = c.pr.sockaddr(fd, netip.AddrPortFrom(dst, 0))
		return err
	})
	if err == nil {
		err = c.s.sendto(b, to)
	}
	if staleSocket(err) {
		c.s.close() // the reader exits; the next send opens a new socket
		c.s = nil
	}
	return seq, err
}

// staleSocket reports send errors after which the socket is replaced: a
// socket bound to a device that was deleted keeps the old interface index
// and fails for ever, even when a device of the same name comes back.
func staleSocket(err error) bool {
	for _, e := range []error{unix.ENODEV, unix.ENXIO, unix.ENETDOWN, unix.ENETUNREACH, net.ErrClosed} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// forget unregisters the requests of a finished probe.
func (c *icmpConn) forget(seqs []uint16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, seq := range seqs {
		delete(c.waiting, seq)
	}
}

// read delivers the replies arriving on s until it is closed.
func (c *icmpConn) read(s *sock, raw bool, id uint16) {
	buf := make([]byte, 8+c.size+60+256)
	for {
		n, from, err := s.recvfrom(buf, time.Time{})
		at := time.Now()
		if err != nil {
			if errors.Is(err, os.ErrClosed) || errors.Is(err, net.ErrClosed) {
				return
			}
			c.mu.Lock()
			if c.s == s { // broken: the next send opens a new socket
				s.close()
				c.s = nil
			}
			c.mu.Unlock()
			return
		}
		seq, err := parseEchoReply(buf[:n], c.v6, raw, id)
		if err != nil {
			continue
		}
		c.mu.Lock()
		w, ok := c.waiting[uint16(seq)]
		if ok && w.dst.WithZone("") == addrOf(from) {
			delete(c.waiting, uint16(seq))
			select {
			case w.ch <- echoHit{idx: w.idx, at: at}:
			default:
			}
		}
		c.mu.Unlock()
	}
}

// Close closes the socket and waits for its reader.
func (c *icmpConn) Close() error {
	c.mu.Lock()
	c.closed = true
	if c.s != nil {
		c.s.close()
		c.s = nil
	}
	c.mu.Unlock()
	c.readers.Wait()
	return nil
}

// icmpProbe is one echo probe of one target on the shared socket.
type icmpProbe struct {
	c     *icmpConn
	ctx   context.Context
	dst   netip.Addr
	ch    chan echoHit
	seqs  []uint16
	timer *time.Timer
}

func (e *icmpProbe) send(idx int) error {
	seq, err := e.c.send(e.dst, idx, e.ch)
	e.seqs = append(e.seqs, seq)
	return err
}

func (e *icmpProbe) recv(deadline time.Time) (int, time.Time, error) {
	d := time.Until(deadline)
	if e.timer == nil {
		e.timer = time.NewTimer(d)
	} else {
		e.timer.Reset(d)
	}
	select {
	case h := <-e.ch:
		return h.idx, h.at, nil
	case <-e.timer.C:
		return 0, time.Now(), os.ErrDeadlineExceeded
	case <-e.ctx.Done():
		return 0, time.Now(), e.ctx.Err()
	}
}

func (e *icmpProbe) release() {
	if e.timer != nil {
		e.timer.Stop()
	}
	e.c.forget(e.seqs)
}

// attachEchoFilter lets only echo replies with our identifier reach a raw
// socket. IPv4 raw sockets see the IP header (variable length), IPv6 ones
// start at the ICMPv6 header.
func attachEchoFilter(fd int, v6 bool, id uint16) error {
	var prog []bpf.Instruction
	if v6 {
		prog = []bpf.Instruction{
			bpf.LoadAbsolute{Off: 0, Size: 1},
			bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: icmpv6EchoReply, SkipTrue: 3},
			bpf.LoadAbsolute{Off: 4, Size: 2},
			bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(id), SkipTrue: 1},
			bpf.RetConstant{Val: 0xffff},
			bpf.RetConstant{Val: 0},
		}
	} else {
		prog = []bpf.Instruction{
			bpf.LoadMemShift{Off: 0},
			bpf.LoadIndirect{Off: 0, Size: 1},
			bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: icmpv4EchoReply, SkipTrue: 3},
			bpf.LoadIndirect{Off: 4, Size: 2},
			bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(id), SkipTrue: 1},
			bpf.RetConstant{Val: 0xffff},
			bpf.RetConstant{Val: 0},
		}
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return fmt.Errorf("assemble echo filter: %w", err)
	}
	filter := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		filter[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return fmt.Errorf("attach echo filter: %w", err)
	}
	return nil
}

// parseEchoReply returns the sequence number of an echo reply to us, or
// errIgnore. Raw IPv4 datagrams start with the IP header and carry a
// checksum to verify (the kernel verifies ICMPv6 and ping sockets).
func parseEchoReply(b []byte, v6, raw bool, id uint16) (int, error) {
	if raw && !v6 {
		if len(b) < 20 || b[0]>>4 != 4 {
			return 0, errIgnore
		}
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || len(b) < ihl+8 {
			return 0, errIgnore
		}
		b = b[ihl:]
		if checksum(b) != 0 {
			return 0, errIgnore
		}
	}
	if len(b) < 8 {
		return 0, errIgnore
	}
	want := byte(icmpv4EchoReply)
	if v6 {
		want = icmpv6EchoReply
	}
	if b[0] != want || b[1] != 0 {
		return 0, errIgnore
	}
	if raw && binary.BigEndian.Uint16(b[4:]) != id {
		return 0, errIgnore
	}
	return int(binary.BigEndian.Uint16(b[6:])), nil
}

// checksum is the Internet checksum (RFC 1071); 0 over a message that
// carries a correct one.
func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// addrOf returns the address of an IP socket address (no zone).
func addrOf(sa unix.Sockaddr) netip.Addr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrFrom4(a.Addr)
	case *unix.SockaddrInet6:
		return netip.AddrFrom16(a.Addr).Unmap()
	}
	return netip.Addr{}
}
