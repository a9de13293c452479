//go:build linux

package track

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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

// httpProber is httping: HEAD / per probe on a new connection; any HTTP
// response is an answer and its latency is the time from the connection
// attempt to the response header.
type httpProber struct {
	client *http.Client
}

func (pr *nativeProber) initHTTP() {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			if a, ok := ctx.Value(dialAddrKey{}).(string); ok {
				address = a
			}
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return nil, fmt.Errorf("dial %s: %w", address, err)
			}
			return pr.dial(ctx, unix.SOCK_STREAM, ap, deadlineOf(ctx, pr.p.Timeout))
		},
		DisableKeepAlives:  true,
		DisableCompression: true,
		// A reachability probe like httping: the certificate is not
		// checked (targets are usually IP addresses).
		TLSClientConfig:        &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // reachability probe
		MaxResponseHeaderBytes: 64 << 10,
		Proxy:                  nil,
	}
	pr.http.client = &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// httpURL is the URL httping is given for target, with IPv6 literals in
// brackets (spec §10.22 REC).
func httpURL(target string, ssl bool) string {
	scheme := "http://"
	if ssl {
		scheme = "https://"
	}
	if a, err := netip.ParseAddr(target); err == nil && a.Is6() {
		return scheme + "[" + target + "]/"
	}
	return scheme + target + "/"
}

func (pr *nativeProber) httpProbe(ctx context.Context, target string, dst netip.Addr) Result {
	url := httpURL(target, pr.p.HTTPSSL)
	port := uint16(80)
	if pr.p.HTTPSSL {
		port = 443
	}
	// The request goes to the resolved address (host names are resolved
	// through the interface, above); the URL keeps the name for Host and SNI.
	addr := netip.AddrPortFrom(dst, port).String()
	return attempts(ctx, "httping "+url, pr.p.Count, pr.p.Timeout, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(withDialAddr(ctx, addr), http.MethodHead, url, nil)
		if err != nil {
			return fmt.Errorf("request: %w", err)
		}
		resp, err := pr.http.client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil
	})
}

type dialAddrKey struct{}

// withDialAddr makes the transport dial addr whatever the URL's host is.
func withDialAddr(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, dialAddrKey{}, addr)
}
