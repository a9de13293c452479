//go:build linux

package track

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"

	"golang.org/x/sys/unix"
)

// tcpProbe is nping's TCP mode: count connection attempts to dst; an
// accepted connection (SYN-ACK) or a reset (RST) is an answer. The
// connection is closed with a reset, leaving no TIME_WAIT behind.
func (pr *nativeProber) tcpProbe(ctx context.Context, dst netip.AddrPort) Result {
	return attempts(ctx, "nping-tcp "+dst.String(), pr.p.Count, pr.p.Timeout, func(ctx context.Context) error {
		s, err := pr.open(unix.SOCK_STREAM, 0)
		if err != nil {
			return err
		}
		defer s.close()
		stop := s.closeOnDone(ctx)
		defer stop()
		err = s.control(func(fd int) error {
			return unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
		})
		if err != nil {
			return fmt.Errorf("set linger: %w", err)
		}
		sa, err := pr.sockaddrOn(s, dst)
		if err != nil {
			return err
		}
		deadline, _ := ctx.Deadline()
		err = s.connect(sa, deadline)
		if err == nil || errors.Is(err, unix.ECONNREFUSED) {
			return nil
		}
		return ctxErr(ctx, "connect", err)
	})
}

// httpProbe is httping: per probe a new connection to port 80 (443 with
// httping_ssl) of the resolved address, one request and the start of the
// answer (httping.go); its latency is the time from the connection attempt
// to the answer.
func (pr *nativeProber) httpProbe(ctx context.Context, target string, dst netip.Addr) Result {
	port, check := uint16(80), httpStatus
	if pr.p.HTTPSSL {
		port, check = 443, tlsAnswer
	}
	dstPort := netip.AddrPortFrom(dst, port)
	return attempts(ctx, "httping "+httpURL(target, pr.p.HTTPSSL), pr.p.Count, pr.p.Timeout, func(ctx context.Context) error {
		var req []byte
		if pr.p.HTTPSSL {
			req = tlsClientHelloRecord(newHelloParams(target))
		} else {
			req = httpRequest(target)
		}
		return pr.exchange(ctx, dstPort, req, check)
	})
}

// exchange connects to dst, sends req and reads until check says the
// answer is complete or wrong.
func (pr *nativeProber) exchange(ctx context.Context, dst netip.AddrPort, req []byte, check func([]byte) (bool, error)) error {
	deadline := deadlineOf(ctx, pr.p.Timeout)
	c, err := pr.dial(ctx, unix.SOCK_STREAM, dst, deadline)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := c.SetDeadline(deadline); err != nil {
		return fmt.Errorf("set deadline: %w", err)
	}
	if _, err := c.Write(req); err != nil {
		return ctxErr(ctx, "send", err)
	}
	var buf [maxStatusLine]byte
	n := 0
	for {
		k, rerr := c.Read(buf[n:])
		n += k
		done, err := check(buf[:n])
		switch {
		case err != nil:
			return err
		case done:
			return nil
		case errors.Is(rerr, io.EOF):
			return errors.New("receive: connection closed before an answer")
		case rerr != nil:
			return ctxErr(ctx, "receive", rerr)
		}
	}
}
