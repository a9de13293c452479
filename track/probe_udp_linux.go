//go:build linux

package track

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// udpEcho is nping's UDP mode on a connected socket: an empty datagram per
// probe; a datagram back or an ICMP port unreachable (ECONNREFUSED on a
// connected socket) is an answer, as nping counts them.
type udpEcho struct {
	s       *sock
	in      []byte
	refused bool // ECONNREFUSED reported on send: an answer to an earlier probe
}

func (pr *nativeProber) udpProbe(ctx context.Context, dst netip.AddrPort) Result {
	op := probeOp{"nping-udp", dst}
	s, err := pr.connected(unix.SOCK_DGRAM, dst)
	if err != nil {
		return Result{Err: fmt.Errorf("%s: %w", op, err)}
	}
	defer s.close()
	stop := s.closeOnDone(ctx)
	defer stop()
	e := &udpEcho{s: s, in: make([]byte, 512)}
	return echoLoop(ctx, op, e, echoSpec{count: pr.p.Count, timeout: pr.p.Timeout})
}

// connected opens a socket bound like the probes and connects it to dst
// (immediate for UDP).
func (pr *nativeProber) connected(typ int, dst netip.AddrPort) (*sock, error) {
	s, err := pr.open(typ, 0)
	if err != nil {
		return nil, err
	}
	err = s.control(func(fd int) error {
		sa, err := pr.sockaddr(fd, dst)
		if err != nil {
			return err
		}
		if err := unix.Connect(fd, sa); err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		return nil
	})
	if err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (e *udpEcho) send(int) error {
	for range 2 {
		err := e.s.sendto(nil, nil)
		if !errors.Is(err, unix.ECONNREFUSED) {
			return err
		}
		e.refused = true
	}
	return nil
}

func (e *udpEcho) recv(deadline time.Time) (int, time.Time, error) {
	if e.refused {
		e.refused = false
		return -1, time.Now(), nil
	}
	_, _, err := e.s.recvfrom(e.in, deadline)
	at := time.Now()
	if err != nil && !errors.Is(err, unix.ECONNREFUSED) {
		return 0, at, err
	}
	return -1, at, nil
}

// dnsProbe sends one query (legacy's nslookup: one look-up; count does not
// apply) for the NS records of Params.DNSName to the server dst.
func (pr *nativeProber) dnsProbe(ctx context.Context, dst netip.AddrPort) Result {
	qname, err := dnsName(pr.p.DNSName)
	if err != nil {
		return Result{Err: fmt.Errorf("nslookup: query name %q: %w", pr.p.DNSName, err)}
	}
	op := "nslookup " + pr.p.DNSName + " " + dst.Addr().String()
	return attempts(ctx, op, 1, pr.p.Timeout, func(ctx context.Context) error {
		return pr.dnsQuery(ctx, dst, qname)
	})
}

func (pr *nativeProber) dnsQuery(ctx context.Context, dst netip.AddrPort, qname []byte) error {
	s, err := pr.connected(unix.SOCK_DGRAM, dst)
	if err != nil {
		return err
	}
	defer s.close()
	stop := s.closeOnDone(ctx)
	defer stop()
	// math/rand/v2's generator is seeded by the kernel and not predictable
	// from outside, which is all a query ID needs.
	id := uint16(rand.Uint32())
	if err := s.sendto(newDNSQuery(id, qname), nil); err != nil {
		return ctxErr(ctx, "send query", err)
	}
	deadline, _ := ctx.Deadline()
	in := make([]byte, 1232)
	for {
		n, _, err := s.recvfrom(in, deadline)
		if err != nil {
			return ctxErr(ctx, "read answer", err)
		}
		ok, err := checkDNSAnswer(in[:n], id, qname)
		if errors.Is(err, errIgnore) {
			continue
		}
		if !ok {
			return err
		}
		return nil
	}
}
