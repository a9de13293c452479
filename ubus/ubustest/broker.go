// Package ubustest provides an in-process ubus broker that behaves like
// ubusd, on a real unix socket, so that ubus clients (this module's
// ubus.Conn, the mwan3d CLI, or the real ubus tools) can be tested without
// an OpenWrt system.
//
// The broker reproduces ubusd's observable behaviour as recorded in the
// project's golden vectors: random client, object and type ids; LOOKUP with
// exact paths, trailing-'*' prefixes and full listings; INVOKE routing with
// ubusd's seq/peer rewriting and USER/GROUP attributes; ADD_OBJECT and
// REMOVE_OBJECT with type reuse; events (object 1 "register"/"send", trailing
// '*' patterns, one delivery per listening object, no loop-back, the global
// event counter); SUBSCRIBE/UNSUBSCRIBE/NOTIFY with ACTIVE notifications;
// ubusd's own ubus.object.add/remove events; the ACL object's "query" and the
// monitor (object 3); the 1 MiB message limit and the 1 MiB per-client
// output queue; and cleanup when a client goes away. Restart drops every
// client and all state, as a restart of ubusd does.
//
// ACL files are not implemented: every client is treated like root, which
// ubusd exempts from ACL checks (USER and GROUP still carry the peer's real
// user and group names).
package ubustest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mwan3d/mwan3d/ubus"
	"github.com/mwan3d/mwan3d/ubus/internal/blob"
)

// System object ids.
const (
	eventObjectID   = 1
	aclObjectID     = 2
	monitorObjectID = 3
	systemObjectMax = 1024
	maxTxQueue      = 1 << 20 // UBUS_CLIENT_MAX_TXQ_LEN
)

// Broker is an in-process ubus broker listening on a unix socket.
type Broker struct {
	path     string
	log      *slog.Logger
	identity *[2]string // fixed user and group, see WithIdentity

	wg sync.WaitGroup // accept loop and client goroutines

	mu       sync.Mutex
	cond     *sync.Cond // signalled whenever the state changes
	ln       *net.UnixListener
	closed   bool
	rnd      *rand.Rand
	clients  map[uint32]*client
	objects  map[uint32]*object
	types    map[uint32]*objType
	paths    map[string]*object
	patterns []*pattern // sorted by key; equal keys in insertion order
	monitors []*client
	eventSeq uint16   // global event counter (truncated to 16 bits on the wire)
	eventGen int      // one per sent event, for de-duplication per object
	accepted []uint32 // client ids in connection order, for tests
}

type client struct {
	id        uint32
	conn      *net.UnixConn
	user      string
	group     string
	root      bool
	objects   []*object // creation order
	monSeq    uint16
	processed int  // frames handled, for tests
	gone      bool // disconnected and cleaned up

	qmu    sync.Mutex
	qcond  *sync.Cond
	queue  [][]byte
	qbytes int
	qdone  bool
}

type object struct {
	id          uint32
	path        string
	hasPath     bool
	typ         *objType
	client      *client         // nil for ubusd's system objects
	subscribers []*subscription // newest first
	targets     []*subscription // subscriptions this object holds; newest first
	invokeSeq   uint16
	eventSeen   int
}

type objType struct {
	id       uint32
	methods  []method
	refcount int
}

type method struct {
	typ   uint8
	name  string
	value []byte
}

type subscription struct {
	subscriber, target *object
}

type pattern struct {
	key     string
	partial bool
	obj     *object
}

// Option configures a Broker.
type Option func(*Broker)

// WithLogger sets the logger for connection errors; the default discards.
func WithLogger(l *slog.Logger) Option { return func(b *Broker) { b.log = l } }

// WithIdentity reports every client with the given user and group names
// (in the USER and GROUP attributes of forwarded calls) and treats it as
// root, instead of reading the peer's credentials.
func WithIdentity(user, group string) Option {
	return func(b *Broker) { b.identity = &[2]string{user, group} }
}

// WithSeed makes the ids the broker hands out reproducible.
func WithSeed(seed uint64) Option {
	return func(b *Broker) { b.rnd = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
}

// New starts a broker on a socket in a fresh temporary directory of t and
// stops it when the test ends.
func New(t testing.TB, opts ...Option) *Broker {
	t.Helper()
	// Not t.TempDir: its long paths can exceed the 108-byte limit of unix
	// socket addresses.
	dir, err := os.MkdirTemp("", "ubustest")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Start(filepath.Join(dir, "ubus.sock"), opts...)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.Close()
		os.RemoveAll(dir)
	})
	return b
}

// Start starts a broker listening on path, replacing a stale socket.
func Start(path string, opts ...Option) (*Broker, error) {
	b := &Broker{path: path, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(b)
	}
	if b.rnd == nil {
		b.rnd = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	b.cond = sync.NewCond(&b.mu)
	b.reset()
	if err := b.listen(); err != nil {
		return nil, err
	}
	return b, nil
}

// Path returns the socket path.
func (b *Broker) Path() string { return b.path }

func (b *Broker) reset() {
	b.clients = map[uint32]*client{}
	b.objects = map[uint32]*object{}
	b.types = map[uint32]*objType{}
	b.paths = map[string]*object{}
	b.patterns = nil
	b.monitors = nil
	b.eventSeq, b.eventGen = 0, 0
	b.accepted = nil
	for id := uint32(eventObjectID); id <= monitorObjectID; id++ {
		b.objects[id] = &object{id: id}
	}
}

func (b *Broker) listen() error {
	os.Remove(b.path)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: b.path, Net: "unix"})
	if err != nil {
		return fmt.Errorf("ubustest: listen: %w", err)
	}
	// ubusd's socket is world-accessible (srw-rw-rw-).
	if err := os.Chmod(b.path, 0o666); err != nil {
		ln.Close()
		return fmt.Errorf("ubustest: listen: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	b.mu.Lock()
	b.ln = ln
	b.mu.Unlock()
	b.wg.Go(func() { b.accept(ln) })
	return nil
}

// Restart simulates a restart of ubusd: every client is disconnected, all
// objects, types, patterns and subscriptions are forgotten, and the broker
// listens again on the same path. Clients see EOF and must reconnect.
func (b *Broker) Restart() error {
	b.stop()
	b.mu.Lock()
	b.reset()
	b.closed = false
	b.mu.Unlock()
	return b.listen()
}

// Close disconnects every client, stops listening and removes the socket.
func (b *Broker) Close() error {
	b.stop()
	os.Remove(b.path)
	return nil
}

func (b *Broker) stop() {
	b.mu.Lock()
	b.closed = true
	ln := b.ln
	b.ln = nil
	var conns []*net.UnixConn
	for _, c := range b.clients {
		// A stopping ubusd sends nothing more: no ACTIVE=0, no
		// UNSUBSCRIBE, no ubus.object.remove while clients go.
		c.qmu.Lock()
		c.queue, c.qbytes, c.qdone = nil, 0, true
		c.qcond.Broadcast()
		c.qmu.Unlock()
		if c.conn != nil {
			conns = append(conns, c.conn)
		}
	}
	b.cond.Broadcast()
	b.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	for _, c := range conns {
		c.Close()
	}
	b.wg.Wait()
}

func (b *Broker) accept(ln *net.UnixListener) {
	for {
		conn, err := ln.AcceptUnix()
		if err != nil {
			return
		}
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			conn.Close()
			return
		}
		c := &client{id: b.allocID(func(id uint32) bool { return b.clients[id] != nil }), conn: conn}
		if b.identity != nil {
			c.user, c.group, c.root = b.identity[0], b.identity[1], true
		} else {
			uid, gid := peerCred(conn)
			c.user, c.group, c.root = lookupName(uid, true), lookupName(gid, false), uid == 0 && gid == 0
		}
		c.qcond = sync.NewCond(&c.qmu)
		b.clients[c.id] = c
		b.accepted = append(b.accepted, c.id)
		b.wg.Go(func() { b.writeLoop(c) })
		b.send(c, finish(newFrame(ubus.MsgHello, 0, c.id)))
		b.cond.Broadcast()
		b.mu.Unlock()
		b.wg.Go(func() { b.readLoop(c) })
	}
}

// allocID returns a random id ≥ 1024 that used does not claim.
func (b *Broker) allocID(used func(uint32) bool) uint32 {
	for {
		if id := b.rnd.Uint32(); id >= systemObjectMax && !used(id) {
			return id
		}
	}
}

func (b *Broker) readLoop(c *client) {
	defer b.disconnect(c)
	var hdr [ubus.HeaderLen + blob.HeaderLen]byte
	// Buffered: several frames sent in one write are read in one call.
	r := bufio.NewReaderSize(c.conn, 16<<10)
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		l := int(uint32(hdr[9])<<16 | uint32(hdr[10])<<8 | uint32(hdr[11]))
		if l < blob.HeaderLen || blob.Pad4(l) > ubus.MaxBodyLen {
			b.log.Debug("ubustest: invalid frame length, dropping client", "client", fmt.Sprintf("%08x", c.id), "len", l)
			return
		}
		frame := make([]byte, ubus.HeaderLen+l)
		copy(frame, hdr[:])
		if _, err := io.ReadFull(r, frame[len(hdr):]); err != nil {
			return
		}
		b.mu.Lock()
		if !c.gone {
			b.monitor(c, frame, false)
			b.handle(c, frame)
			c.processed++
			b.cond.Broadcast()
		}
		b.mu.Unlock()
	}
}

func (b *Broker) disconnect(c *client) {
	c.conn.Close()
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.gone {
		return
	}
	c.qmu.Lock()
	c.queue, c.qbytes, c.qdone = nil, 0, true
	c.qcond.Broadcast()
	c.qmu.Unlock()
	b.monitors = slices.DeleteFunc(b.monitors, func(m *client) bool { return m == c })
	for i := len(c.objects) - 1; i >= 0; i-- {
		b.freeObject(c.objects[i])
	}
	c.gone = true
	delete(b.clients, c.id)
	b.cond.Broadcast()
}

func (b *Broker) writeLoop(c *client) {
	for {
		c.qmu.Lock()
		for len(c.queue) == 0 && !c.qdone {
			c.qcond.Wait()
		}
		if c.qdone {
			c.qmu.Unlock()
			return
		}
		// Everything queued goes out in one write (writev).
		frames := net.Buffers(c.queue)
		c.queue = nil
		c.qmu.Unlock()
		n, err := frames.WriteTo(c.conn)
		c.qmu.Lock()
		c.qbytes -= int(n)
		c.qcond.Broadcast()
		c.qmu.Unlock()
		if err != nil {
			c.conn.Close()
			return
		}
	}
}

// send queues a frame for c, mirroring it to monitors first. Like ubusd it
// drops messages silently once 1 MiB is waiting for a client that does not
// read.
func (b *Broker) send(c *client, f []byte) {
	if f[1] != byte(ubus.MsgMonitor) {
		b.monitor(c, f, true)
	}
	c.qmu.Lock()
	defer c.qmu.Unlock()
	// ubusd writes at once when nothing is queued, so only a backlog counts.
	if c.qdone || c.qbytes > 0 && c.qbytes+len(f) > maxTxQueue {
		return
	}
	c.queue = append(c.queue, f)
	c.qbytes += len(f)
	c.qcond.Broadcast()
}

// monitor sends a copy of a frame received from or sent to c to every
// monitoring client.
func (b *Broker) monitor(c *client, f []byte, sent bool) {
	if len(b.monitors) == 0 {
		return
	}
	var body []byte
	body = blob.AppendU32(body, 0, c.id)                               // CLIENT
	body = blob.AppendU32(body, 1, be32(f[4:]))                        // PEER
	body = blob.AppendU32(body, 3, uint32(be16(f[2:])))                // SEQ
	body = blob.AppendU32(body, 4, uint32(f[1]))                       // TYPE
	body = blob.AppendU8(body, 2, boolByte(sent))                      // SEND
	body = blob.AppendAttr(body, 5, f[ubus.HeaderLen+blob.HeaderLen:]) // DATA
	for _, m := range b.monitors {
		m.monSeq++
		fr := newFrame(ubus.MsgMonitor, m.monSeq, 0)
		fr = append(fr, body...)
		b.send(m, finish(fr))
	}
}

// WaitObject blocks until an object with the given path is registered, or
// ctx ends.
func (b *Broker) WaitObject(ctx context.Context, path string) error {
	stop := context.AfterFunc(ctx, func() {
		b.mu.Lock()
		b.cond.Broadcast()
		b.mu.Unlock()
	})
	defer stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.paths[path] == nil {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("ubustest: waiting for %q: %w", path, err)
		}
		if b.closed {
			return errors.New("ubustest: broker closed")
		}
		b.cond.Wait()
	}
	return nil
}

// Paths lists the registered object paths, sorted.
func (b *Broker) Paths() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]string, 0, len(b.paths))
	for p := range b.paths {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// Clients returns the number of connected clients.
func (b *Broker) Clients() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.clients)
}

func boolByte(v bool) uint8 {
	if v {
		return 1
	}
	return 0
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func be16(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }

// cstring cuts a NUL-terminated payload at its first NUL, as C sees it.
func cstring(p []byte) string {
	s := string(p)
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return s
}
