//go:build linux

package track

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ICMP message types.
const (
	icmpv4EchoRequest = 8
	icmpv4EchoReply   = 0
	icmpv4Unreachable = 3
	icmpv4TimeExceed  = 11
	icmpv4ParamProb   = 12
	icmpv6EchoRequest = 128
	icmpv6EchoReply   = 129
	icmpv6Unreachable = 1
	icmpv6TimeExceed  = 3
	icmpv6ParamProb   = 4
)

// icmpConn is a prober's ICMP or ICMPv6 echo socket, shared by its
// concurrent probes and kept open between rounds (opening a socket and
// attaching its filter cost more than the probe itself). It is a raw
// socket (root; a BPF program passes only echo replies with our
// identifier and ICMP errors) or, when raw sockets are not permitted, an
// unprivileged ping socket (the kernel picks the identifier and
// demultiplexes). A reader goroutine hands each reply, and on a raw socket
// each ICMP error about a request (destination unreachable, time exceeded,
// parameter problem), to the probe waiting for its sequence number. A
// socket that fails (device gone: SO_BINDTODEVICE holds the old interface
// index) is replaced by the next probe.
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

// echoHit is the fate of request idx: answered at `at`, or failed with
// err (an ICMP error about it).
type echoHit struct {
	idx int
	at  time.Time
	err error
}

func newICMPConn(pr *nativeProber, size, ttl int) *icmpConn {
	return &icmpConn{pr: pr, size: size, ttl: ttl, v6: pr.p.Family == IPv6, waiting: map[uint16]icmpWaiter{}}
}

// ping runs an echo probe (ping, nping-icmp) on the prober's ICMP socket.
func (pr *nativeProber) ping(ctx context.Context, dst netip.Addr) Result {
	e := &icmpProbe{c: pr.icmp, ctx: ctx, dst: dst, ch: make(chan echoHit, pr.p.Count)}
	defer e.release()
	return echoLoop(ctx, probeOp{"ping", netip.AddrPortFrom(dst, 0)}, e, echoSpec{count: pr.p.Count, timeout: pr.p.Timeout})
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
	c.id = uint16(rand.Uint32())
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
	to, err := c.pr.sockaddrOn(c.s, netip.AddrPortFrom(dst, 0))
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
		// The request a reply answers came from its destination; an
		// ICMP error names the request's destination in the packet it
		// quotes.
		var hitErr *echoError
		seq, err := parseEchoReply(buf[:n], c.v6, raw, id)
		if err != nil && raw {
			if hitErr, err = parseEchoError(buf[:n], c.v6, id); err == nil {
				seq = hitErr.seq
				hitErr.from = from
				from = hitErr.dst
			}
		}
		if err != nil {
			continue
		}
		c.mu.Lock()
		w, ok := c.waiting[uint16(seq)]
		if ok && w.dst.WithZone("") == from {
			delete(c.waiting, uint16(seq))
			hit := echoHit{idx: w.idx, at: at}
			if hitErr != nil {
				hit.err = hitErr
			}
			select {
			case w.ch <- hit:
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
		if h.err != nil {
			return 0, h.at, &requestFailed{seq: h.idx, err: h.err}
		}
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

// attachEchoFilter lets only echo replies with our identifier and ICMP
// errors (which parseEchoError checks) reach a raw socket.
func attachEchoFilter(fd int, v6 bool, id uint16) error {
	filter := echoFilter(v6, id)
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return fmt.Errorf("attach echo filter: %w", err)
	}
	return nil
}

// echoFilter is the classic BPF program of attachEchoFilter. IPv4 raw
// sockets see the IP header (variable length), IPv6 ones start at the
// ICMPv6 header. Written as raw instructions: x/net/bpf's assembler adds
// 20 KB to the binary for these twelve.
func echoFilter(v6 bool, id uint16) []unix.SockFilter {
	stmt := func(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
	jeq := func(k uint32, skip uint8) unix.SockFilter {
		return unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: skip, K: k}
	}
	const (
		drop   = 0
		accept = 0xffff
		ret    = unix.BPF_RET | unix.BPF_K
	)
	reply, errs := uint32(icmpv4EchoReply), [3]uint32{icmpv4Unreachable, icmpv4TimeExceed, icmpv4ParamProb}
	prog := []unix.SockFilter{
		stmt(unix.BPF_LDX|unix.BPF_B|unix.BPF_MSH, 0), // X = IP header length
		stmt(unix.BPF_LD|unix.BPF_B|unix.BPF_IND, 0),  // A = ICMP type
	}
	loadID := stmt(unix.BPF_LD|unix.BPF_H|unix.BPF_IND, 4)
	if v6 {
		reply, errs = icmpv6EchoReply, [3]uint32{icmpv6Unreachable, icmpv6TimeExceed, icmpv6ParamProb}
		prog = []unix.SockFilter{stmt(unix.BPF_LD|unix.BPF_B|unix.BPF_ABS, 0)}
		loadID = stmt(unix.BPF_LD|unix.BPF_H|unix.BPF_ABS, 4)
	}
	return append(prog,
		jeq(reply, 5),
		jeq(errs[0], 3),
		jeq(errs[1], 2),
		jeq(errs[2], 1),
		stmt(ret, drop),
		stmt(ret, accept), // an error
		loadID,            // a reply
		jeq(uint32(id), 1),
		stmt(ret, drop),
		stmt(ret, accept),
	)
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

// echoError is an ICMP error about one of our echo requests: that request
// will not be answered, and iputils' ping stops waiting for it (it counts
// the error, and `ping -c 1` ends at once). A round whose targets all
// report such errors is decided without waiting for the timeout.
type echoError struct {
	seq       int
	dst       netip.Addr // the request's destination
	from      netip.Addr // who sent the error
	typ, code uint8
	v6        bool
}

func (e *echoError) Error() string {
	var what string
	switch {
	case e.typ == icmpv4Unreachable && !e.v6, e.typ == icmpv6Unreachable && e.v6:
		what = "destination unreachable (code " + strconv.Itoa(int(e.code)) + ")"
	case e.typ == icmpv4TimeExceed && !e.v6, e.typ == icmpv6TimeExceed && e.v6:
		what = "time exceeded"
	default:
		what = "parameter problem"
	}
	return "ICMP " + what + " from " + e.from.String()
}

// parseEchoError decodes an ICMP error (as read from a raw socket: IPv4
// with its IP header) that quotes one of our echo requests (identifier
// id), or returns errIgnore.
func parseEchoError(b []byte, v6 bool, id uint16) (*echoError, error) {
	if !v6 {
		if len(b) < 20 || b[0]>>4 != 4 {
			return nil, errIgnore
		}
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || len(b) < ihl+8 {
			return nil, errIgnore
		}
		b = b[ihl:]
		if checksum(b) != 0 {
			return nil, errIgnore
		}
	}
	if len(b) < 8 {
		return nil, errIgnore
	}
	e := &echoError{typ: b[0], code: b[1], v6: v6}
	q := b[8:] // the quoted request: IP header, then at least 8 bytes of ICMP
	var echo []byte
	if v6 {
		if e.typ != icmpv6Unreachable && e.typ != icmpv6TimeExceed && e.typ != icmpv6ParamProb {
			return nil, errIgnore
		}
		if len(q) < 40+8 || q[0]>>4 != 6 || q[6] != unix.IPPROTO_ICMPV6 {
			return nil, errIgnore
		}
		e.dst = netip.AddrFrom16([16]byte(q[24:40]))
		echo = q[40:]
		if echo[0] != icmpv6EchoRequest {
			return nil, errIgnore
		}
	} else {
		if e.typ != icmpv4Unreachable && e.typ != icmpv4TimeExceed && e.typ != icmpv4ParamProb {
			return nil, errIgnore
		}
		if len(q) < 20 || q[0]>>4 != 4 {
			return nil, errIgnore
		}
		qihl := int(q[0]&0x0f) * 4
		if qihl < 20 || len(q) < qihl+8 || q[9] != unix.IPPROTO_ICMP {
			return nil, errIgnore
		}
		e.dst = netip.AddrFrom4([4]byte(q[16:20]))
		echo = q[qihl:]
		if echo[0] != icmpv4EchoRequest {
			return nil, errIgnore
		}
	}
	if binary.BigEndian.Uint16(echo[4:]) != id {
		return nil, errIgnore
	}
	e.seq = int(binary.BigEndian.Uint16(echo[6:]))
	return e, nil
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
