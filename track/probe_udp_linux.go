//go:build linux

package track

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/net/dns/dnsmessage"
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
	name, err := dnsmessage.NewName(fqdn(pr.p.DNSName))
	if err != nil {
		return Result{Err: fmt.Errorf("nslookup: query name %q: %w", pr.p.DNSName, err)}
	}
	op := "nslookup " + pr.p.DNSName + " " + dst.Addr().String()
	return attempts(ctx, op, 1, pr.p.Timeout, func(ctx context.Context) error {
		return pr.dnsQuery(ctx, dst, name)
	})
}

func fqdn(n string) string {
	if n == "" || n[len(n)-1] != '.' {
		return n + "."
	}
	return n
}

func (pr *nativeProber) dnsQuery(ctx context.Context, dst netip.AddrPort, name dnsmessage.Name) error {
	s, err := pr.connected(unix.SOCK_DGRAM, dst)
	if err != nil {
		return err
	}
	defer s.close()
	stop := s.closeOnDone(ctx)
	defer stop()
	var idb [2]byte
	_, _ = rand.Read(idb[:])
	id := binary.BigEndian.Uint16(idb[:])
	q := dnsmessage.Question{Name: name, Type: dnsmessage.TypeNS, Class: dnsmessage.ClassINET}
	b := dnsmessage.NewBuilder(make([]byte, 0, 64), dnsmessage.Header{ID: id, RecursionDesired: true})
	if err := b.StartQuestions(); err != nil {
		return fmt.Errorf("build query: %w", err)
	}
	if err := b.Question(q); err != nil {
		return fmt.Errorf("build query: %w", err)
	}
	msg, err := b.Finish()
	if err != nil {
		return fmt.Errorf("build query: %w", err)
	}
	if err := s.sendto(msg, nil); err != nil {
		return ctxErr(ctx, "send query", err)
	}
	deadline, _ := ctx.Deadline()
	in := make([]byte, 1232)
	for {
		n, _, err := s.recvfrom(in, deadline)
		if err != nil {
			return ctxErr(ctx, "read answer", err)
		}
		ok, err := checkDNSAnswer(in[:n], id, q)
		if errors.Is(err, errIgnore) {
			continue
		}
		if !ok {
			return err
		}
		return nil
	}
}

// checkDNSAnswer decides on a datagram received for query (id, q): true
// for an answer with RCODE NOERROR or NXDOMAIN; false with the reason for
// another RCODE; errIgnore for anything that is not an answer to it.
func checkDNSAnswer(b []byte, id uint16, q dnsmessage.Question) (bool, error) {
	var p dnsmessage.Parser
	h, err := p.Start(b)
	if err != nil || !h.Response || h.ID != id {
		return false, errIgnore
	}
	got, err := p.Question()
	if err != nil || got.Type != q.Type || got.Class != q.Class || !equalFoldName(got.Name, q.Name) {
		return false, errIgnore
	}
	switch h.RCode {
	case dnsmessage.RCodeSuccess, dnsmessage.RCodeNameError:
		return true, nil
	}
	return false, fmt.Errorf("server answered %v", h.RCode)
}

func equalFoldName(a, b dnsmessage.Name) bool {
	if a.Length != b.Length {
		return false
	}
	for i := range int(a.Length) {
		x, y := a.Data[i], b.Data[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
