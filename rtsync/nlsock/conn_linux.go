package nlsock

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// bufSize is the receive buffer. The kernel sizes a dump's datagrams to
// the reader's buffer, up to 32 KiB; notifications are far smaller.
const bufSize = 32 << 10

// Conn is a netlink socket in the runtime poller, used either for
// requests (Execute) or for a subscription (Receive). Its methods are
// safe for concurrent use; Close interrupts a waiting Receive.
type Conn struct {
	f  *os.File
	rc syscall.RawConn

	mu  sync.Mutex // one Execute or Receive at a time; guards the rest
	seq uint32
	out []byte // the request being sent
	buf []byte // the datagram received
	// The poller's read and write callbacks and their results, made once
	// (a closure per call would allocate).
	n      int
	err    error
	readFn func(fd uintptr) bool
	sendFn func(fd uintptr) bool
}

// Open opens a netlink socket of protocol (unix.NETLINK_ROUTE, …) in the
// network namespace ns (netns.None() for the caller's), bound to the
// multicast groups (a bit mask, 0 for none).
func Open(ns netns.NsHandle, protocol int, groups uint32) (*Conn, error) {
	fd, err := socketIn(ns, protocol)
	if err != nil {
		return nil, fmt.Errorf("open netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind netlink socket: %w", err)
	}
	// Only the request's header quoted in error replies, and the kernel's
	// explanation added to them (kernels without these options do fine).
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1)
	f := os.NewFile(uintptr(fd), "netlink")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open netlink socket: %w", err)
	}
	c := &Conn{f: f, rc: rc, buf: make([]byte, bufSize)}
	c.readFn = func(fd uintptr) bool {
		c.n, c.err = unix.Read(int(fd), c.buf)
		return !errors.Is(c.err, unix.EAGAIN)
	}
	c.sendFn = func(fd uintptr) bool {
		c.n, c.err = unix.Write(int(fd), c.out)
		return !errors.Is(c.err, unix.EAGAIN)
	}
	return c, nil
}

// socketIn creates the socket in ns from a thread of its own: a thread
// that cannot return to its namespace is never used again (its goroutine
// ends locked to it, which ends the thread).
func socketIn(ns netns.NsHandle, protocol int) (int, error) {
	socket := func() (int, error) {
		return unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, protocol)
	}
	if !ns.IsOpen() {
		return socket()
	}
	type result struct {
		fd  int
		err error
	}
	res := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			res <- result{-1, fmt.Errorf("current network namespace: %w", err)}
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			res <- result{-1, fmt.Errorf("enter network namespace: %w", err)}
			return
		}
		fd, err := socket()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		res <- result{fd, err}
	}()
	r := <-res
	return r.fd, r.err
}

// Close closes the socket.
func (c *Conn) Close() error { return c.f.Close() }

// SetReceiveBuffer asks for a socket receive buffer of n bytes (the
// kernel caps it at net.core.rmem_max); it bounds the notifications a
// subscription can queue before the kernel drops them (ENOBUFS).
func (c *Conn) SetReceiveBuffer(n int) error {
	var serr error
	err := c.rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, n)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("set receive buffer: %w", err)
	}
	return nil
}

// SetBuffers sizes the socket's send and receive buffers to n bytes each,
// beyond net.core.[rw]mem_max when the process may (CAP_NET_ADMIN): a
// batch is sent in one datagram, and all its acknowledgements queue up
// before the first is read.
func (c *Conn) SetBuffers(n int) error {
	var serr error
	err := c.rc.Control(func(fd uintptr) {
		for _, opt := range [][2]int{{unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}, {unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}} {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt[0], n) == nil {
				continue
			}
			if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt[1], n); err != nil {
				serr = err
			}
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("set socket buffers: %w", err)
	}
	return nil
}

// Execute sends a request of type typ with flags (FlagAck, FlagDump and
// the like; FlagRequest is added) and payload, and reads its replies until
// the acknowledgement, the dump's end or, for a request with neither, the
// single reply, all within timeout (none when 0). fn gets every reply but
// acknowledgements and the dump's end; once it returns false the rest is
// read and dropped. The kernel's error reply is returned as a
// syscall.Errno (with the kernel's explanation, when it gives one);
// ErrDumpInterrupted when the kernel flagged the dump as inconsistent.
func (c *Conn) Execute(typ, flags uint16, payload []byte, timeout time.Duration, fn func(Message) bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	seq := c.seq
	c.out = appendRequest(c.out[:0], typ, flags, seq, payload)
	if err := c.f.SetDeadline(deadline(timeout)); err != nil {
		return fmt.Errorf("netlink request: %w", err)
	}
	if err := c.send(); err != nil {
		return fmt.Errorf("netlink request: send: %w", err)
	}
	interrupted, wanted := false, true
	for {
		if err := c.recv(); err != nil {
			return fmt.Errorf("netlink request: receive: %w", err)
		}
		for b := c.buf[:c.n]; len(b) > 0; {
			m, rest, err := next(b)
			if err != nil {
				return err
			}
			b = rest
			if m.Seq != seq {
				continue // a late reply to an earlier request that timed out
			}
			interrupted = interrupted || m.Flags&flagDumpIntr != 0
			switch m.Type {
			case typeError, typeDone:
				if err := errorOf(m); err != nil {
					return err
				}
				if interrupted {
					return ErrDumpInterrupted
				}
				return nil
			case typeNoop, typeOverrun:
				continue
			}
			wanted = wanted && fn(m)
			if flags&(FlagAck|FlagDump) == 0 && m.Flags&FlagMulti == 0 {
				return nil
			}
		}
	}
}

// SendBatch sends the batch's requests in one datagram and reads the
// answer to each request that asked for an acknowledgement, within
// timeout. It returns the kernel's errors by request index (0 is the first
// request added); the kernel's error about the datagram as a whole (no
// permission, no memory) is reported on the request it names, usually the
// first, and ends the wait. err is for the exchange itself: then the
// outcome is unknown.
func (c *Conn) SendBatch(b *Batch, timeout time.Duration) (failed []BatchError, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	first := c.seq + 1
	c.seq += uint32(b.n)
	for off, seq := 0, first; off < len(b.buf); seq++ {
		ne.PutUint32(b.buf[off+8:], seq)
		off += (int(ne.Uint32(b.buf[off:])) + 3) &^ 3
	}
	if err := c.f.SetDeadline(deadline(timeout)); err != nil {
		return nil, fmt.Errorf("netlink batch: %w", err)
	}
	c.out = b.buf
	err = c.send()
	c.out = nil
	if err != nil {
		return nil, fmt.Errorf("netlink batch: send: %w", err)
	}
	answered, waiting := make([]bool, b.n), b.acks
	for waiting > 0 {
		if err := c.recv(); err != nil {
			return failed, fmt.Errorf("netlink batch: receive: %w", err)
		}
		for d := c.buf[:c.n]; len(d) > 0; {
			m, rest, err := next(d)
			if err != nil {
				return failed, err
			}
			d = rest
			d := m.Seq - first // wraps around like the sequence numbers
			if m.Type != typeError || d >= uint32(b.n) || answered[d] {
				continue // not about this batch
			}
			i := int(d)
			answered[i] = true
			if b.ack[i] {
				waiting--
			}
			if err := errorOf(m); err != nil {
				failed = append(failed, BatchError{Index: i, Err: err})
				if i == 0 {
					return failed, nil // refused as a whole
				}
			}
		}
	}
	return failed, nil
}

// Batch collects requests to send in one datagram with SendBatch
// (nfnetlink's transactions). The zero value is empty.
type Batch struct {
	buf  []byte
	n    int    // requests
	ack  []bool // by request: asked for an acknowledgement
	acks int
}

// Add appends a request (FlagRequest is added; the sequence number is set
// when the batch is sent).
func (b *Batch) Add(typ, flags uint16, payload []byte) {
	b.buf = appendRequest(b.buf, typ, flags, 0, payload)
	for len(b.buf)%4 != 0 {
		b.buf = append(b.buf, 0)
	}
	b.n++
	b.ack = append(b.ack, flags&FlagAck != 0)
	if flags&FlagAck != 0 {
		b.acks++
	}
}

// Len is the number of requests in the batch.
func (b *Batch) Len() int { return b.n }

// Size is the batch's length in bytes.
func (b *Batch) Size() int { return len(b.buf) }

// BatchError is the kernel's error about one request of a batch.
type BatchError struct {
	Index int // of the request, in the order added
	Err   error
}

// Receive waits for the next datagram of a subscription, without a
// deadline, and calls fn with each message in it. An error ends the
// subscription: unix.ENOBUFS when the kernel dropped notifications, or
// the socket was closed.
func (c *Conn) Receive(fn func(Message)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.recv(); err != nil {
		return fmt.Errorf("netlink receive: %w", err)
	}
	for b := c.buf[:c.n]; len(b) > 0; {
		m, rest, err := next(b)
		if err != nil {
			return err
		}
		b = rest
		fn(m)
	}
	return nil
}

// deadline is now+timeout, or none for a timeout of 0 or less.
func deadline(timeout time.Duration) time.Time {
	if timeout <= 0 {
		return time.Time{}
	}
	return time.Now().Add(timeout)
}

// send writes c.out through the poller.
func (c *Conn) send() error {
	if err := c.rc.Write(c.sendFn); err != nil {
		return err
	}
	return c.err
}

// recv reads one datagram into c.buf[:c.n] through the poller.
func (c *Conn) recv() error {
	if err := c.rc.Read(c.readFn); err != nil {
		return err
	}
	return c.err
}
