//go:build linux

package track

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Native makes the native probers: sockets bound to the interface's
// device, source address and mark, of the interface's family only (spec
// §5.3.2). The zero value opens sockets in the caller's network namespace.
type Native struct {
	// Socket creates a socket like socket(2) (the type already carries
	// SOCK_NONBLOCK|SOCK_CLOEXEC). Nil means unix.Socket. Tests use it to
	// create the sockets inside a network namespace.
	Socket func(domain, typ, proto int) (int, error)
}

func defaultProbers() ProberFactory { return Native{} }

// NewProber returns the prober of p's (normalized) method bound by b.
func (n Native) NewProber(p Params, b Binding) (Prober, error) {
	if len(b.Device) == 0 || len(b.Device) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("new prober: invalid device name %q", b.Device)
	}
	src := b.Source
	if src.IsValid() && src.IsUnspecified() {
		src = netip.Addr{}
	}
	if src.IsValid() {
		src = src.Unmap()
		if src.Is4() != (p.Family == IPv4) {
			return nil, fmt.Errorf("new prober: source address %s is not %s", src, p.Family)
		}
	}
	pr := &nativeProber{n: n, p: p, b: b, src: src}
	switch p.method() {
	case MethodPing:
		pr.icmp = newICMPConn(pr, p.Size, p.MaxTTL)
	case MethodNpingICMP:
		pr.icmp = newICMPConn(pr, 0, defaultNpingTTL)
	}
	pr.resolver = &net.Resolver{PreferGo: true, StrictErrors: true, Dial: pr.dialResolver}
	return pr, nil
}

// nativeProber implements every method; Probe dispatches on the method.
type nativeProber struct {
	n        Native
	p        Params
	b        Binding
	src      netip.Addr
	resolver *net.Resolver
	icmp     *icmpConn // ping, nping-icmp
}

// Close closes the prober's persistent socket (ping) and waits for its
// reader; probes in flight fail.
func (pr *nativeProber) Close() error {
	if pr.icmp != nil {
		return pr.icmp.Close()
	}
	return nil
}

func (pr *nativeProber) Probe(ctx context.Context, target string) Result {
	dst, err := pr.resolve(ctx, target)
	if err != nil {
		return Result{Err: err}
	}
	switch pr.p.method() {
	case MethodArping:
		return pr.arp(ctx, dst, pr.p.Count, true)
	case MethodNpingARP:
		return pr.arp(ctx, dst, pr.p.Count, false)
	case MethodNpingICMP:
		return pr.ping(ctx, dst)
	case MethodNpingTCP:
		return pr.tcpProbe(ctx, netip.AddrPortFrom(dst, npingTCPPort))
	case MethodNpingUDP:
		return pr.udpProbe(ctx, netip.AddrPortFrom(dst, npingUDPPort))
	case MethodHTTPing:
		return pr.httpProbe(ctx, target, dst)
	case MethodNslookup:
		return pr.dnsProbe(ctx, netip.AddrPortFrom(dst, 53))
	default:
		return pr.ping(ctx, dst)
	}
}

// nping's defaults.
const (
	npingTCPPort    = 80
	npingUDPPort    = 40125
	defaultNpingTTL = 64
	probeSpacing    = time.Second // between the `count` probes of one target
)

// resolve turns a target into an address of the interface's family. Host
// names are resolved by a resolver whose queries use sockets bound like
// the probes (legacy's shim bound the probe tools' DNS look-ups too).
func (pr *nativeProber) resolve(ctx context.Context, target string) (netip.Addr, error) {
	a, err := netip.ParseAddr(target)
	if err != nil {
		network := "ip4"
		if pr.p.Family == IPv6 {
			network = "ip6"
		}
		// Bounded like a probe: the resolver's own timeouts (5 s, twice
		// per server) would stall the round.
		rctx, cancel := context.WithTimeout(ctx, pr.p.Timeout)
		addrs, lerr := pr.resolver.LookupNetIP(rctx, network, target)
		cancel()
		if lerr != nil {
			return netip.Addr{}, fmt.Errorf("resolve %q: %w", target, lerr)
		}
		if len(addrs) == 0 {
			return netip.Addr{}, fmt.Errorf("resolve %q: no %s address", target, pr.p.Family)
		}
		a = addrs[0]
	}
	if a.Is4In6() {
		a = a.Unmap()
	}
	if a.Is4() != (pr.p.Family == IPv4) {
		return netip.Addr{}, fmt.Errorf("target %s is not %s", a, pr.p.Family)
	}
	return a, nil
}

func (pr *nativeProber) domain() int {
	if pr.p.Family == IPv6 {
		return unix.AF_INET6
	}
	return unix.AF_INET
}

// sock is a non-blocking socket in the runtime poller. One goroutine at a
// time reads it and one at a time sends on it; the functions they hand to
// the poller are made once with the socket (a closure per call escaped to
// the heap, several allocations per packet).
type sock struct {
	f  *os.File
	rc syscall.RawConn

	rd struct { // the read in progress
		b    []byte
		n    int
		from syscall.Sockaddr
		err  error
	}
	readFn func(fd uintptr) bool
	wr     struct { // the send in progress
		b   []byte
		to  unix.Sockaddr
		err error
	}
	sendFn func(fd uintptr) bool
}

func newSock(f *os.File, rc syscall.RawConn) *sock {
	s := &sock{f: f, rc: rc}
	s.readFn = func(fd uintptr) bool {
		s.rd.n, s.rd.from, s.rd.err = syscall.Recvfrom(int(fd), s.rd.b, 0)
		return !errors.Is(s.rd.err, syscall.EAGAIN)
	}
	s.sendFn = func(fd uintptr) bool {
		s.wr.err = unix.Sendto(int(fd), s.wr.b, 0, s.wr.to)
		return !errors.Is(s.wr.err, unix.EAGAIN)
	}
	return s
}

// open creates a socket bound like legacy's shim: SO_BINDTODEVICE, SO_MARK
// and bind(source) for IP sockets.
func (pr *nativeProber) open(typ, proto int) (*sock, error) {
	return pr.openDomain(pr.domain(), typ, proto, true)
}

func (pr *nativeProber) openDomain(domain, typ, proto int, bindIP bool) (*sock, error) {
	socket := pr.n.Socket
	if socket == nil {
		socket = unix.Socket
	}
	fd, err := socket(domain, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	if err := pr.setup(fd, bindIP); err != nil {
		unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "probe")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("socket: %w", err)
	}
	return newSock(f, rc), nil
}

func (pr *nativeProber) setup(fd int, bindIP bool) error {
	if !bindIP {
		return nil
	}
	if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, pr.b.Device); err != nil {
		return fmt.Errorf("bind to device %s: %w", pr.b.Device, err)
	}
	if pr.b.Mark != 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(pr.b.Mark)); err != nil {
			return fmt.Errorf("set mark 0x%x: %w", pr.b.Mark, err)
		}
	}
	if !pr.src.IsValid() {
		return nil
	}
	sa, err := pr.sockaddr(fd, netip.AddrPortFrom(pr.src, 0))
	if err != nil {
		return err
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fmt.Errorf("bind to %s: %w", pr.src, err)
	}
	return nil
}

// ifindex returns the index of the named device, asked through fd so that
// it is looked up in the socket's network namespace.
func ifindex(fd int, dev string) (int, error) {
	ifr, err := unix.NewIfreq(dev)
	if err != nil {
		return 0, fmt.Errorf("device %q: %w", dev, err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, fmt.Errorf("device %q: %w", dev, err)
	}
	return int(ifr.Uint32()), nil
}

// sockaddrOn is sockaddr for the socket s, whose descriptor is only
// needed to look up the index of an IPv6 link-local zone.
func (pr *nativeProber) sockaddrOn(s *sock, ap netip.AddrPort) (unix.Sockaddr, error) {
	if a := ap.Addr(); !a.IsLinkLocalUnicast() && !a.IsLinkLocalMulticast() {
		return pr.sockaddr(-1, ap)
	}
	var sa unix.Sockaddr
	err := s.control(func(fd int) error {
		var err error
		sa, err = pr.sockaddr(fd, ap)
		return err
	})
	return sa, err
}

// sockaddr converts ap; IPv6 link-local addresses get the zone's index
// (the bound device when there is no zone), looked up through fd.
func (pr *nativeProber) sockaddr(fd int, ap netip.AddrPort) (unix.Sockaddr, error) {
	a := ap.Addr()
	if a.Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}, nil
	}
	sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
	if a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() {
		zone := a.Zone()
		if zone == "" {
			zone = pr.b.Device
		}
		idx, err := ifindex(fd, zone)
		if err != nil {
			return nil, err
		}
		sa.ZoneId = uint32(idx)
	}
	return sa, nil
}

func (s *sock) close() { s.f.Close() }

// closeOnDone closes the socket when ctx is done, which interrupts any
// blocked operation; call the returned function to stop watching.
func (s *sock) closeOnDone(ctx context.Context) func() bool {
	return context.AfterFunc(ctx, func() { s.f.Close() })
}

func (s *sock) control(fn func(fd int) error) error {
	var ferr error
	if err := s.rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

func (s *sock) sendto(b []byte, to unix.Sockaddr) error {
	s.wr.b, s.wr.to = b, to
	err := s.rc.Write(s.sendFn)
	serr := s.wr.err
	s.wr.b, s.wr.to, s.wr.err = nil, nil, nil
	if err != nil {
		return err
	}
	return serr
}

// recvfrom waits until deadline for a datagram and returns it with the
// sender's IP address (invalid for other sockets). It uses package
// syscall: x/sys/unix asks the socket's protocol (one more system call)
// for every IP datagram.
func (s *sock) recvfrom(b []byte, deadline time.Time) (int, netip.Addr, error) {
	if err := s.f.SetReadDeadline(deadline); err != nil {
		return 0, netip.Addr{}, err
	}
	s.rd.b = b
	err := s.rc.Read(s.readFn)
	n, from, rerr := s.rd.n, s.rd.from, s.rd.err
	s.rd.b, s.rd.from, s.rd.err = nil, nil, nil
	if err != nil {
		return 0, netip.Addr{}, err
	}
	var a netip.Addr
	switch sa := from.(type) {
	case *syscall.SockaddrInet4:
		a = netip.AddrFrom4(sa.Addr)
	case *syscall.SockaddrInet6:
		a = netip.AddrFrom16(sa.Addr).Unmap()
	}
	return n, a, rerr
}

// connect starts a non-blocking connect and waits until deadline for it
// to complete.
func (s *sock) connect(sa unix.Sockaddr, deadline time.Time) error {
	err := s.control(func(fd int) error { return unix.Connect(fd, sa) })
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINPROGRESS) {
		return err
	}
	if err := s.f.SetWriteDeadline(deadline); err != nil {
		return err
	}
	var cerr error
	err = s.rc.Write(func(fd uintptr) bool {
		v, e := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		switch {
		case e != nil:
			cerr = e
		case v != 0:
			cerr = syscall.Errno(v)
		default:
			if _, e := unix.Getpeername(int(fd)); errors.Is(e, unix.ENOTCONN) {
				return false // still connecting
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	return cerr
}

// ctxErr turns the error of an interrupted operation into ctx's error.
func ctxErr(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(cerr, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, cerr)
	}
	if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%s: timeout", op)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// dialer opens a connected TCP or UDP socket bound like the probes.
func (pr *nativeProber) dial(ctx context.Context, typ int, dst netip.AddrPort, deadline time.Time) (net.Conn, error) {
	if dst.Addr().Is4In6() {
		dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	}
	if dst.Addr().Is4() != (pr.p.Family == IPv4) {
		return nil, fmt.Errorf("dial %s: not %s", dst, pr.p.Family)
	}
	s, err := pr.open(typ, 0)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", dst, err)
	}
	defer s.close()
	stop := s.closeOnDone(ctx)
	defer stop()
	sa, err := pr.sockaddrOn(s, dst)
	if err == nil {
		err = s.connect(sa, deadline)
	}
	if err != nil {
		return nil, ctxErr(ctx, "dial "+dst.String(), err)
	}
	// FileConn reads the descriptor (File.Fd), which must not race with
	// the close on cancellation: stop watching first.
	if !stop() {
		return nil, ctxErr(ctx, "dial "+dst.String(), net.ErrClosed)
	}
	c, err := net.FileConn(s.f)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", dst, err)
	}
	return c, nil
}

func deadlineOf(ctx context.Context, d time.Duration) time.Time {
	t := time.Now().Add(d)
	if dl, ok := ctx.Deadline(); ok && dl.Before(t) {
		return dl
	}
	return t
}

// dialResolver is the resolver's Dial: DNS queries for host-name targets
// leave through the interface like the probes.
func (pr *nativeProber) dialResolver(ctx context.Context, network, address string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", address, err)
	}
	typ := unix.SOCK_DGRAM
	if network == "tcp" || network == "tcp4" || network == "tcp6" {
		typ = unix.SOCK_STREAM
	}
	return pr.dial(ctx, typ, ap, deadlineOf(ctx, pr.p.Timeout))
}
