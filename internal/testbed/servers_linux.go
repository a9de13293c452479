//go:build linux

package testbed

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// servers are the internet host's TCP and UDP echo servers and its HTTP
// server, as goroutines serving sockets created in its namespace.
//
// Protocol: a TCP echo server first writes the client's address as the
// server saw it ("203.0.113.10:40000\n", "[2001:db8:1::2]:40000\n"), then
// echoes everything it receives. A UDP echo server answers each datagram
// with that line followed by the datagram. The HTTP server answers every
// request with 200 and that line as the body.
type servers struct {
	ns  *NS
	log *slog.Logger

	mu      sync.Mutex
	closed  bool
	ports   map[int]bool // echo ports served
	closers []io.Closer  // listeners and packet sockets
	conns   map[net.Conn]struct{}
	http    *http.Server
	wg      sync.WaitGroup
}

func newServers(ns *NS, log *slog.Logger) *servers {
	return &servers{ns: ns, log: log, ports: map[int]bool{}, conns: map[net.Conn]struct{}{}}
}

// sourceLine is the echo servers' report of the client's address.
func sourceLine(a net.Addr) string {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return a.String() + "\n"
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String() + "\n"
}

// ensureEcho serves TCP echo on port (all addresses) and UDP echo on port of
// each address in udp, unless that port is served already. UDP sockets are
// bound to one address each so that answers leave from the address the
// client sent to (the ISPs' NAT needs that).
func (s *servers) ensureEcho(port int, udp []netip.Addr) error {
	if port <= 0 || port > 65535 || port == HTTPPort {
		return fmt.Errorf("echo port %d: want 1..65535 except %d (HTTP)", port, HTTPPort)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("echo port %d: %w", port, errClosed)
	}
	if s.ports[port] {
		return nil
	}
	l, err := s.ns.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return fmt.Errorf("echo server: %w", err)
	}
	s.closers = append(s.closers, l)
	s.wg.Go(func() { s.acceptTCP(l) })
	for _, a := range udp {
		pc, err := s.ns.ListenPacket("udp", hostPort(a, port))
		if err != nil {
			return fmt.Errorf("echo server: %w", err)
		}
		s.closers = append(s.closers, pc)
		s.wg.Go(func() { s.serveUDP(pc) })
	}
	s.ports[port] = true
	return nil
}

func (s *servers) acceptTCP(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Warn("echo server: accept", "err", err)
			}
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Go(func() { s.echoTCP(c) })
		s.mu.Unlock()
	}
}

func (s *servers) echoTCP(c net.Conn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	if _, err := io.WriteString(c, sourceLine(c.RemoteAddr())); err != nil {
		return
	}
	_, _ = io.Copy(c, c) // ends when the client closes or the server shuts down
}

func (s *servers) serveUDP(pc net.PacketConn) {
	buf := make([]byte, 1<<16)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Warn("echo server: udp read", "err", err)
			}
			return
		}
		reply := append([]byte(sourceLine(from)), buf[:n]...)
		if _, err := pc.WriteTo(reply, from); err != nil {
			s.log.Debug("echo server: udp write", "err", err)
		}
	}
}

// startHTTP serves HTTP on port of all addresses.
func (s *servers) startHTTP(port int) error {
	l, err := s.ns.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return fmt.Errorf("http server: %w", err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			addr, err := net.ResolveTCPAddr("tcp", r.RemoteAddr)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			_, _ = io.WriteString(w, sourceLine(addr))
		}),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.Join(fmt.Errorf("http server: %w", errClosed), l.Close())
	}
	s.http = srv
	s.wg.Go(func() {
		if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			s.log.Warn("http server", "err", err)
		}
	})
	return nil
}

// Close stops every server and waits for their goroutines.
func (s *servers) Close() {
	s.mu.Lock()
	s.closed = true
	for _, c := range s.closers {
		c.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	srv := s.http
	s.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
	s.wg.Wait()
}
