//go:build linux

package testbed

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// MaxFlows bounds the flows of one TCPFlows or UDPFlows call.
const MaxFlows = 1 << 16

// flowWorkers is how many flows run at the same time, each worker on a
// thread of its own inside the namespace.
const flowWorkers = 16

// echoTarget returns the echo server's address of family and the port
// (EchoPort when dport is 0), making sure the server listens on it.
func (tb *Testbed) echoTarget(family Family, dport int) (netip.AddrPort, error) {
	var dst netip.Addr
	switch family {
	case IPv4:
		dst = tb.Echo4
	case IPv6:
		dst = tb.Echo6
	default:
		return netip.AddrPort{}, fmt.Errorf("family %v: want IPv4 or IPv6", family)
	}
	if !dst.IsValid() {
		return netip.AddrPort{}, fmt.Errorf("family %v: the testbed is %v only", family, tb.Spec.Family)
	}
	if dport == 0 {
		dport = EchoPort
	}
	if err := tb.srv.ensureEcho(dport, tb.familyAddrs(tb.Echo4, tb.Echo6)); err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(dst, uint16(dport)), nil
}

// TCPFlows opens n TCP connections from the namespace from (the LAN client,
// the router, …) to the echo server of family on dport (0: EchoPort), each
// from a new source port, and returns for each the index of the WAN that
// carried it, or -1 when it failed (no answer within Spec.FlowTimeout).
// The error is for bad arguments or a server that cannot start.
func (tb *Testbed) TCPFlows(from *NS, n int, family Family, dport int) ([]int, error) {
	return tb.flows(from, n, family, dport, "tcp", func(c net.Conn) (string, error) {
		return bufio.NewReader(c).ReadString('\n')
	})
}

// UDPFlows sends one datagram from each of n new UDP sockets in from to the
// echo server of family on dport (0: EchoPort) and returns for each the
// index of the WAN that carried it, or -1 without an answer within
// Spec.FlowTimeout.
func (tb *Testbed) UDPFlows(from *NS, n int, family Family, dport int) ([]int, error) {
	return tb.flows(from, n, family, dport, "udp", func(c net.Conn) (string, error) {
		if _, err := c.Write([]byte("flow")); err != nil {
			return "", err
		}
		buf := make([]byte, 256)
		nr, err := c.Read(buf)
		if err != nil {
			return "", err
		}
		line, _, _ := strings.Cut(string(buf[:nr]), "\n")
		return line, nil
	})
}

// flows runs n flows of network from `from`; exchange talks to the server
// and returns its source line.
func (tb *Testbed) flows(from *NS, n int, family Family, dport int, network string,
	exchange func(net.Conn) (string, error)) ([]int, error) {
	if n < 0 || n > MaxFlows {
		return nil, fmt.Errorf("%s flows: n=%d out of range 0..%d", network, n, MaxFlows)
	}
	dst, err := tb.echoTarget(family, dport)
	if err != nil {
		return nil, fmt.Errorf("%s flows: %w", network, err)
	}
	res := make([]int, n)
	jobs := make(chan int)
	var wg sync.WaitGroup
	errs := make([]error, min(n, flowWorkers))
	for w := range errs {
		wg.Go(func() {
			errs[w] = from.Do(func() error {
				for i := range jobs {
					res[i] = tb.flow(network, dst, exchange)
				}
				return nil
			})
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%s flows: %w", network, err)
	}
	return res, nil
}

// flow runs one flow; it must run inside the source namespace.
func (tb *Testbed) flow(network string, dst netip.AddrPort, exchange func(net.Conn) (string, error)) int {
	timeout := tb.Spec.FlowTimeout
	d := net.Dialer{Timeout: timeout, FallbackDelay: -1}
	c, err := d.Dial(network, dst.String())
	if err != nil {
		return -1
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return -1
	}
	line, err := exchange(c)
	if err != nil {
		return -1
	}
	return tb.wanOfLine(line)
}

// wanOfLine maps an echo server's source line to a WAN index (-1: none).
func (tb *Testbed) wanOfLine(line string) int {
	ap, err := netip.ParseAddrPort(strings.TrimSpace(line))
	if err != nil {
		return -1
	}
	i, _ := tb.WANBySource(ap.Addr())
	return i
}

// StreamConfig configures a probe stream.
type StreamConfig struct {
	Family   Family        // IPv4 or IPv6
	Port     int           // echo server port (0: EchoPort)
	Interval time.Duration // between probes (0: 5 ms)
	// NewFlows sends each probe from a new socket (a new source port, so a
	// new conntrack flow that mwan3 places afresh). Otherwise all probes
	// share one socket: one flow, which mwan3 keeps on the WAN its conntrack
	// mark names until the entry goes.
	NewFlows bool
}

// Stream is a running probe stream: UDP datagrams to the echo server at a
// fixed interval, each answered with the source address the server saw.
type Stream struct {
	tb       *Testbed
	cfg      StreamConfig
	stop     chan struct{}
	once     sync.Once
	wg       sync.WaitGroup
	mu       sync.Mutex
	probes   []probe
	sendErrs int
}

// maxStreamProbes bounds a stream's memory: about 10 minutes at 5 ms.
const maxStreamProbes = 120000

// Stream starts a probe stream from the namespace from. Stop it to get the
// result; the testbed's cleanup stops it otherwise.
func (tb *Testbed) Stream(from *NS, cfg StreamConfig) (*Stream, error) {
	if cfg.Interval == 0 {
		cfg.Interval = 5 * time.Millisecond
	}
	if cfg.Interval < 0 {
		return nil, fmt.Errorf("stream: negative interval %v", cfg.Interval)
	}
	dst, err := tb.echoTarget(cfg.Family, cfg.Port)
	if err != nil {
		return nil, fmt.Errorf("stream: %w", err)
	}
	s := &Stream{tb: tb, cfg: cfg, stop: make(chan struct{})}
	var shared net.Conn
	if !cfg.NewFlows {
		err := from.Do(func() error {
			var err error
			shared, err = net.Dial("udp", dst.String())
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("stream from %s: %w", from.Name, err)
		}
		s.wg.Go(func() { s.receive(shared, -1) })
	}
	started := make(chan error, 1)
	s.wg.Go(func() {
		// The sender lives on a thread inside the namespace, so that it can
		// open a socket per probe.
		err := from.Do(func() error {
			started <- nil
			s.send(dst, shared)
			return nil
		})
		if err != nil {
			started <- err
		}
	})
	if err := <-started; err != nil {
		if shared != nil {
			shared.Close()
		}
		s.wg.Wait()
		return nil, fmt.Errorf("stream from %s: %w", from.Name, err)
	}
	tb.mu.Lock()
	tb.streams = append(tb.streams, s)
	tb.mu.Unlock()
	return s, nil
}

// send sends a probe every interval until Stop; it runs inside the
// namespace. It closes the shared socket when it ends.
func (s *Stream) send(dst netip.AddrPort, shared net.Conn) {
	ticker := time.NewTicker(s.cfg.Interval)
	defer ticker.Stop()
	if shared != nil {
		defer s.closeWhenAnswered(shared)
	}
	var payload [8]byte
	for {
		s.mu.Lock()
		seq := len(s.probes)
		full := seq >= maxStreamProbes
		if !full {
			s.probes = append(s.probes, probe{sent: time.Now(), wan: -1})
		}
		s.mu.Unlock()
		if full {
			return
		}
		binary.BigEndian.PutUint64(payload[:], uint64(seq))
		c := shared
		if c == nil {
			var err error
			c, err = net.Dial("udp", dst.String())
			if err != nil {
				s.countSendError()
			} else {
				_ = c.SetReadDeadline(time.Now().Add(s.tb.Spec.FlowTimeout))
				s.wg.Go(func() {
					defer c.Close()
					s.receive(c, seq)
				})
			}
		}
		if c != nil {
			if _, err := c.Write(payload[:]); err != nil {
				s.countSendError()
			}
		}
		select {
		case <-s.stop:
			return
		case <-ticker.C:
		}
	}
}

// closeWhenAnswered closes the shared socket, which ends its receiver, once
// every probe is answered or had Spec.FlowTimeout to be.
func (s *Stream) closeWhenAnswered(c net.Conn) {
	deadline := time.Now().Add(s.tb.Spec.FlowTimeout)
	for time.Now().Before(deadline) {
		pending := false
		s.mu.Lock()
		for i := len(s.probes) - 1; i >= 0 && time.Since(s.probes[i].sent) < s.tb.Spec.FlowTimeout; i-- {
			if s.probes[i].recv.IsZero() {
				pending = true
				break
			}
		}
		s.mu.Unlock()
		if !pending {
			break
		}
		time.Sleep(s.cfg.Interval)
	}
	c.Close()
}

func (s *Stream) countSendError() {
	s.mu.Lock()
	s.sendErrs++
	s.mu.Unlock()
}

// receive records the answers arriving on c; with only >= 0 it stops after
// the answer to that probe.
func (s *Stream) receive(c net.Conn, only int) {
	buf := make([]byte, 512)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		now := time.Now()
		line, rest, ok := strings.Cut(string(buf[:n]), "\n")
		if !ok || len(rest) != 8 {
			continue
		}
		seq := int(binary.BigEndian.Uint64([]byte(rest)))
		wan := s.tb.wanOfLine(line)
		s.mu.Lock()
		if seq >= 0 && seq < len(s.probes) && s.probes[seq].recv.IsZero() &&
			now.Sub(s.probes[seq].sent) <= s.tb.Spec.FlowTimeout {
			s.probes[seq].recv, s.probes[seq].wan = now, wan
		}
		s.mu.Unlock()
		if only >= 0 && seq == only {
			return
		}
	}
}

// Stop stops sending, waits up to Spec.FlowTimeout for the last answers and
// returns the result. It may be called more than once.
func (s *Stream) Stop() StreamResult {
	s.once.Do(func() { close(s.stop) })
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return summarize(s.probes, s.sendErrs, len(s.tb.WANs))
}

// pingRcvBuf is the receive buffer of Ping's socket.
const pingRcvBuf = 4 << 20

// MaxPings bounds the count of one Ping call (the ICMP sequence space).
const MaxPings = 1 << 16

// Ping sends count ICMP (or ICMPv6) echo requests from inside n to dst, one
// every interval, over a raw socket, and collects the answers until all
// came back or wait has passed since the last request.
func (n *NS) Ping(dst netip.Addr, count int, interval, wait time.Duration) (PingResult, error) {
	if count < 0 || count > MaxPings {
		return PingResult{}, fmt.Errorf("ping %s: count %d out of range 0..%d", dst, count, MaxPings)
	}
	if interval < 0 || wait < 0 {
		return PingResult{}, fmt.Errorf("ping %s: negative interval or wait", dst)
	}
	network, laddr, reqType, replyType, proto := "ip4:icmp", "0.0.0.0", icmp.Type(ipv4.ICMPTypeEcho), icmp.Type(ipv4.ICMPTypeEchoReply), protoICMP
	if dst.Is6() && !dst.Is4In6() {
		network, laddr, reqType, replyType, proto = "ip6:ipv6-icmp", "::", ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, protoICMPv6
	}
	dst = dst.Unmap()
	pc, err := n.ListenPacket(network, laddr)
	if err != nil {
		return PingResult{}, fmt.Errorf("ping %s: %w", dst, err)
	}
	defer pc.Close()
	// A fast ping must not lose answers to a full socket buffer while the
	// reader waits for a CPU.
	if sc, ok := pc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			if err := forceRcvBuf(raw, pingRcvBuf); err != nil {
				return PingResult{}, fmt.Errorf("ping %s: %w", dst, err)
			}
		}
	}
	id := rand.IntN(1 << 16)
	sent := make([]time.Time, count)
	rtts := make([]time.Duration, count)
	var mu sync.Mutex
	received := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			nr, from, err := pc.ReadFrom(buf)
			if err != nil {
				return // deadline or closed
			}
			now := time.Now()
			m, err := icmp.ParseMessage(proto, buf[:nr])
			if err != nil || m.Type != replyType {
				continue
			}
			echo, ok := m.Body.(*icmp.Echo)
			ipa, isIP := from.(*net.IPAddr)
			if !ok || echo.ID != id || !isIP {
				continue
			}
			if src, _ := netip.AddrFromSlice(ipa.IP); src.Unmap() != dst {
				continue
			}
			mu.Lock()
			if echo.Seq < count && !sent[echo.Seq].IsZero() && rtts[echo.Seq] == 0 {
				rtts[echo.Seq] = max(now.Sub(sent[echo.Seq]), 1)
				received++
			}
			all := received == count
			mu.Unlock()
			if all {
				return
			}
		}
	}()
	var sendErr error
	to := &net.IPAddr{IP: dst.AsSlice()}
	next := time.Now()
	for seq := range count {
		msg := icmp.Message{Type: reqType, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("mwan3d-testbed")}}
		b, err := msg.Marshal(nil) // ICMPv6: the kernel computes the checksum
		if err != nil {
			sendErr = err
			break
		}
		mu.Lock()
		sent[seq] = time.Now()
		mu.Unlock()
		if _, err := pc.WriteTo(b, to); err != nil {
			sendErr = err
			break
		}
		next = next.Add(interval)
		time.Sleep(time.Until(next))
	}
	if err := pc.SetReadDeadline(time.Now().Add(wait)); err != nil {
		sendErr = errors.Join(sendErr, err)
	}
	<-done
	mu.Lock()
	defer mu.Unlock()
	r := PingResult{}
	for seq := range count {
		if sent[seq].IsZero() {
			continue
		}
		r.Sent++
		if rtts[seq] > 0 {
			r.Received++
			r.RTTs = append(r.RTTs, rtts[seq])
		}
	}
	if sendErr != nil {
		return r, fmt.Errorf("ping %s from %s: %w", dst, n.Name, sendErr)
	}
	return r, nil
}
