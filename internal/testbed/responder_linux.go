//go:build linux

package testbed

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// responderState is what the latency responder does with an echo request
// to the internet host: nothing while latency is 0 or the upstream is cut,
// otherwise drop loss % of them and answer the rest after latency.
type responderState struct {
	latency time.Duration
	loss    int
	cut     bool
}

// latencyResponder answers ICMP echo requests for the internet host's
// addresses arriving on one device of an ISP namespace, after a delay. It
// reads them from a packet socket (which sees them before nftables drops
// them) and sends the answers back out of the same device to the sender's
// MAC address, so the ISP's routing, conntrack and NAT never see them.
type latencyResponder struct {
	file    *os.File
	raw     syscall.RawConn
	ifindex int
	log     *slog.Logger

	mu sync.Mutex
	st responderState

	queue chan pendingReply
	stop  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

type pendingReply struct {
	due time.Time
	pkt []byte
	to  unix.SockaddrLinklayer
}

// responderQueue bounds the answers waiting for their time (at most
// MaxLatency × rate); requests beyond it are dropped.
const responderQueue = 4096

// newLatencyResponder starts a responder on dev in n. It answers nothing
// until Set gives it a latency.
func newLatencyResponder(n *NS, dev string, log *slog.Logger) (*latencyResponder, error) {
	l, err := n.Handle().LinkByName(dev)
	if err != nil {
		return nil, fmt.Errorf("latency responder: %s in %s: %w", dev, n.Name, err)
	}
	ifindex := l.Attrs().Index
	fd := -1
	err = n.Do(func() error {
		var err error
		fd, err = openEchoSocket(ifindex)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("latency responder on %s in %s: %w", dev, n.Name, err)
	}
	f := os.NewFile(uintptr(fd), "packet:"+dev)
	raw, err := f.SyscallConn()
	if err != nil {
		return nil, errors.Join(fmt.Errorf("latency responder on %s in %s: %w", dev, n.Name, err), f.Close())
	}
	if err := forceRcvBuf(raw, pingRcvBuf); err != nil {
		return nil, errors.Join(fmt.Errorf("latency responder on %s in %s: %w", dev, n.Name, err), f.Close())
	}
	r := &latencyResponder{
		file: f, raw: raw, ifindex: ifindex, log: log.With("responder", n.Name),
		queue: make(chan pendingReply, responderQueue), stop: make(chan struct{}),
	}
	r.wg.Go(r.receive)
	r.wg.Go(r.send)
	return r, nil
}

// openEchoSocket opens a non-blocking packet socket (network layer, no link
// header) bound to ifindex that receives only the ICMP and ICMPv6 echo
// requests addressed to this host's link address. Call it inside the
// namespace.
func openEchoSocket(ifindex int) (int, error) {
	// Protocol 0 receives nothing until bind, after the filter is in place.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("packet socket: %w", err)
	}
	prog, err := bpf.Assemble(echoRequestFilter)
	if err == nil {
		fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: (*unix.SockFilter)(unsafe.Pointer(&prog[0]))}
		err = unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog)
	}
	if err != nil {
		return -1, errors.Join(fmt.Errorf("attach filter: %w", err), unix.Close(fd))
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		return -1, errors.Join(fmt.Errorf("bind packet socket: %w", err), unix.Close(fd))
	}
	return fd, nil
}

// echoRequestFilter accepts the incoming IPv4 ICMP type 8 and IPv6 (no
// extension header) ICMPv6 type 128 packets for this host. Offsets are from
// the network header (SOCK_DGRAM).
var echoRequestFilter = []bpf.Instruction{
	/* 0 */ bpf.LoadExtension{Num: bpf.ExtType},
	/* 1 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.PACKET_HOST, SkipFalse: 13},
	/* 2 */ bpf.LoadExtension{Num: bpf.ExtProto},
	/* 3 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.ETH_P_IP, SkipFalse: 5},
	/* 4 */ bpf.LoadAbsolute{Off: 9, Size: 1},
	/* 5 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: protoICMP, SkipTrue: 9},
	/* 6 */ bpf.LoadMemShift{Off: 0},
	/* 7 */ bpf.LoadIndirect{Off: 0, Size: 1},
	/* 8 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: icmpEchoRequest, SkipTrue: 5, SkipFalse: 6},
	/* 9 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.ETH_P_IPV6, SkipFalse: 5},
	/* 10 */ bpf.LoadAbsolute{Off: 6, Size: 1},
	/* 11 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: protoICMPv6, SkipTrue: 3},
	/* 12 */ bpf.LoadAbsolute{Off: ipv6HeaderLen, Size: 1},
	/* 13 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: icmp6EchoReq, SkipFalse: 1},
	/* 14 */ bpf.RetConstant{Val: 0xffff},
	/* 15 */ bpf.RetConstant{Val: 0},
}

// htons converts a 16-bit value to network byte order in memory.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

// Set changes what the responder does with the next requests.
func (r *latencyResponder) Set(st responderState) {
	r.mu.Lock()
	r.st = st
	r.mu.Unlock()
}

func (r *latencyResponder) state() responderState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st
}

func (r *latencyResponder) receive() {
	buf := make([]byte, 1<<16)
	for {
		var n int
		var from unix.Sockaddr
		var rerr error
		err := r.raw.Read(func(fd uintptr) bool {
			n, from, rerr = unix.Recvfrom(int(fd), buf, 0)
			return !errors.Is(rerr, unix.EAGAIN)
		})
		if err != nil {
			return // closed
		}
		if rerr != nil {
			r.log.Debug("latency responder: receive", "err", rerr)
			continue
		}
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok {
			continue
		}
		st := r.state()
		if st.latency == 0 || st.cut || (st.loss > 0 && rand.IntN(100) < st.loss) {
			continue
		}
		reply, ok := echoReply(buf[:n], isPublic)
		if !ok {
			continue
		}
		proto := uint16(unix.ETH_P_IP)
		if reply[0]>>4 == 6 {
			proto = unix.ETH_P_IPV6
		}
		p := pendingReply{
			due: time.Now().Add(st.latency),
			pkt: reply,
			to:  unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: r.ifindex, Halen: ll.Halen, Addr: ll.Addr},
		}
		select {
		case r.queue <- p:
		default:
			r.log.Debug("latency responder: queue full, request dropped")
		}
	}
}

func (r *latencyResponder) send() {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		var p pendingReply
		select {
		case <-r.stop:
			return
		case p = <-r.queue:
		}
		timer.Reset(time.Until(p.due))
		select {
		case <-r.stop:
			return
		case <-timer.C:
		}
		var werr error
		err := r.raw.Write(func(fd uintptr) bool {
			werr = unix.Sendto(int(fd), p.pkt, 0, &p.to)
			return !errors.Is(werr, unix.EAGAIN)
		})
		if err != nil {
			return // closed
		}
		if werr != nil {
			r.log.Debug("latency responder: send", "err", werr)
		}
	}
}

// Close stops the responder, closes its socket and waits for its
// goroutines. It is idempotent.
func (r *latencyResponder) Close() {
	r.once.Do(func() {
		close(r.stop)
		if err := r.file.Close(); err != nil {
			r.log.Debug("latency responder: close", "err", err)
		}
		r.wg.Wait()
	})
}

// forceRcvBuf sets the receive buffer of a socket to bytes, beyond
// net.core.rmem_max (the testbed runs as root).
func forceRcvBuf(raw syscall.RawConn, bytes int) error {
	var serr error
	err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, bytes)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("set receive buffer: %w", err)
	}
	return nil
}
