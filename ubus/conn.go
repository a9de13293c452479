package ubus

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mwan3d/mwan3d/ubus/internal/blob"
)

// defaultSockets are tried in this order when Dial gets an empty path: the
// current path (OpenWrt 21.02 and later), then the one of older releases.
var defaultSockets = [...]string{"/var/run/ubus/ubus.sock", "/var/run/ubus.sock"}

const (
	defaultTimeout = 10 * time.Second // internal operations (restore, Close)
	writeTimeout   = 10 * time.Second // a write that ubusd does not drain
	maxHandlers    = 1024             // method handlers running at once
	queueLen       = 1024             // events waiting per listener/subscriber
)

var errClosed = errors.New("ubus: connection closed")

// Conn is a client connection to ubusd. It is safe for concurrent use:
// requests from many goroutines are multiplexed on the one socket and
// matched to their answers by sequence number.
//
// When ubusd goes away, calls in flight fail with StatusConnectionFailed,
// and the Conn reconnects with exponential backoff (unless disabled with
// WithoutReconnect): it registers its objects again (they get new ids),
// registers its event listeners again, and looks up and subscribes to its
// subscription targets again. Calls made while disconnected fail at once.
type Conn struct {
	path string // socket path; "" tries defaultSockets
	opt  options

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	reg    chan struct{} // serializes registrations and their restoration
	maint  *worker       // reconnection work triggered by ubusd messages
	notes  *worker       // SubscribersChanged callbacks, in order
	hsem   chan struct{} // bounds running method handlers

	mu          sync.Mutex
	sess        *session
	closed      bool
	seq         uint16
	objects     []*Object
	listeners   []*Listener
	subscribers []*Subscriber
	byID        map[uint32]any // object id → *Object, *Listener or *Subscriber
	ids         map[string]uint32
	watcher     *Listener // ubus.object.add/remove: subscription targets, taken paths
}

type options struct {
	log        *slog.Logger
	reconnect  bool
	minBackoff time.Duration
	maxBackoff time.Duration
	timeout    time.Duration
	onConnect  func()
	noFollow   bool
}

// Option configures a Conn.
type Option func(*options)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithBackoff sets the delays between reconnection attempts: the first
// retry waits min, each failure doubles the wait up to max (defaults 100 ms
// and 5 s).
func WithBackoff(min, max time.Duration) Option {
	return func(o *options) { o.minBackoff, o.maxBackoff = min, max }
}

// WithoutReconnect makes the Conn give up when ubusd goes away, as libubus
// does without ubus_auto_connect.
func WithoutReconnect() Option { return func(o *options) { o.reconnect = false } }

// WithoutResubscribe makes subscriptions end when their target object goes
// away, as in libubus, instead of following it when it comes back.
func WithoutResubscribe() Option { return func(o *options) { o.noFollow = true } }

// WithTimeout bounds the operations the Conn makes on its own behalf:
// re-registration after a reconnect and the unregistration done by Close
// methods (default 10 s).
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithOnConnect sets a function called after every reconnection, once the
// objects, listeners and subscriptions have been registered again (not for
// the first connection). It runs on the Conn's supervisor goroutine; a
// daemon uses it to resynchronize state it learnt from the bus.
func WithOnConnect(f func()) Option { return func(o *options) { o.onConnect = f } }

// session is one connection to ubusd, from HELLO to EOF.
type session struct {
	nc      *net.UnixConn
	id      uint32 // client id from HELLO
	wmu     sync.Mutex
	pending map[uint16]*request // guarded by Conn.mu
	async   chan []byte         // frames written by the writer goroutine
	flush   chan struct{}       // closed by Close: write what is queued, then stop
	flushed chan struct{}       // closed by the writer when it stops
	done    chan struct{}       // closed when the reader exits
	err     error               // why the session ended; set before done
}

// Dial connects to ubusd at path and reads its HELLO. An empty path tries
// /var/run/ubus/ubus.sock, then /var/run/ubus.sock (OpenWrt 19.07 and
// older). ctx bounds the connection only.
func Dial(ctx context.Context, path string, opts ...Option) (*Conn, error) {
	c := &Conn{
		path: path,
		opt: options{
			log:        slog.New(slog.DiscardHandler),
			reconnect:  true,
			minBackoff: 100 * time.Millisecond,
			maxBackoff: 5 * time.Second,
			timeout:    defaultTimeout,
		},
		reg:  make(chan struct{}, 1),
		hsem: make(chan struct{}, maxHandlers),
		byID: map[uint32]any{},
		ids:  map[string]uint32{},
	}
	for _, o := range opts {
		o(&c.opt)
	}
	s, err := c.connect(ctx)
	if err != nil {
		return nil, err
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.maint = newWorker(c, queueLen)
	c.notes = newWorker(c, queueLen)
	c.sess = s
	c.start(s)
	c.wg.Go(func() { c.supervise(s) })
	return c, nil
}

// connect opens a socket and reads the HELLO.
func (c *Conn) connect(ctx context.Context) (*session, error) {
	paths := defaultSockets[:]
	if c.path != "" {
		paths = []string{c.path}
	}
	var nc net.Conn
	var err error
	for _, p := range paths {
		var d net.Dialer
		if nc, err = d.DialContext(ctx, "unix", p); err == nil {
			break
		}
	}
	if err != nil {
		return nil, &StatusError{Op: "connect", Status: StatusConnectionFailed, Err: err}
	}
	uc := nc.(*net.UnixConn)
	deadline := time.Now().Add(c.opt.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	uc.SetReadDeadline(deadline)
	m, err := ReadMessage(uc)
	if err == nil && (m.Type != MsgHello || m.Peer <= 1) {
		err = fmt.Errorf("ubus: expected HELLO, got %v", m)
	}
	if err != nil {
		uc.Close()
		return nil, &StatusError{Op: "connect", Status: StatusConnectionFailed, Err: err}
	}
	uc.SetReadDeadline(time.Time{})
	return &session{
		nc:      uc,
		id:      m.Peer,
		pending: map[uint16]*request{},
		async:   make(chan []byte, 256),
		flush:   make(chan struct{}),
		flushed: make(chan struct{}),
		done:    make(chan struct{}),
	}, nil
}

// start runs a session's reader and writer goroutines.
func (c *Conn) start(s *session) {
	c.wg.Go(func() { c.readLoop(s) })
	c.wg.Go(func() {
		defer close(s.flushed)
		for {
			select {
			case f := <-s.async:
				if err := s.write(f, time.Time{}); err != nil {
					return
				}
			case <-s.flush:
				deadline := time.Now().Add(time.Second)
				for {
					select {
					case f := <-s.async:
						if err := s.write(f, deadline); err != nil {
							return
						}
					default:
						return
					}
				}
			case <-s.done:
				return
			}
		}
	})
}

// supervise waits for the session to end and reconnects.
func (c *Conn) supervise(s *session) {
	for {
		select {
		case <-s.done:
		case <-c.ctx.Done():
			return
		}
		if c.ctx.Err() != nil {
			return // closed
		}
		c.opt.log.Warn("ubus: connection lost", "err", s.err)
		c.mu.Lock()
		c.sess = nil
		clear(c.byID)
		clear(c.ids)
		for _, o := range c.objects {
			o.id.Store(0)
			o.active.Store(false)
		}
		c.mu.Unlock()
		if !c.opt.reconnect {
			return
		}
		var err error
		backoff := c.opt.minBackoff
		for {
			t := time.NewTimer(backoff)
			select {
			case <-c.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			if s, err = c.connect(c.ctx); err == nil {
				break
			}
			c.opt.log.Debug("ubus: reconnect failed", "err", err)
			backoff = min(2*backoff, c.opt.maxBackoff)
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			s.nc.Close()
			return
		}
		c.sess = s
		c.mu.Unlock()
		c.start(s)
		c.opt.log.Info("ubus: reconnected", "client", fmt.Sprintf("%08x", s.id))
		c.restore()
		if c.opt.onConnect != nil {
			c.opt.onConnect()
		}
	}
}

// restore registers everything again on a new session.
func (c *Conn) restore() {
	ctx, cancel := context.WithTimeout(c.ctx, c.opt.timeout)
	defer cancel()
	if err := c.lockReg(ctx); err != nil {
		return
	}
	defer c.unlockReg()
	c.mu.Lock()
	objects := append([]*Object(nil), c.objects...)
	listeners := append([]*Listener(nil), c.listeners...)
	subscribers := append([]*Subscriber(nil), c.subscribers...)
	c.mu.Unlock()
	// Listeners first: the Conn's own watch of ubusd's object events is
	// one, and objects that cannot be registered wait for it.
	for _, l := range listeners {
		if err := l.register(ctx); err != nil {
			c.opt.log.Error("ubus: cannot register event listener again", "patterns", l.patterns, "err", err)
		}
	}
	for _, o := range objects {
		if err := c.addObject(ctx, o); err != nil && (o.Name == "" || !c.awaitPath(ctx, o)) {
			c.opt.log.Error("ubus: cannot register object again", "object", o.Name, "err", err)
		}
	}
	for _, s := range subscribers {
		if err := s.register(ctx); err != nil {
			c.opt.log.Error("ubus: cannot subscribe again", "err", err)
		}
	}
}

func (c *Conn) lockReg(ctx context.Context) error {
	select {
	case c.reg <- struct{}{}:
		return nil
	case <-ctx.Done():
		return &StatusError{Op: "register", Status: StatusTimeout, Err: ctx.Err()}
	}
}

func (c *Conn) unlockReg() { <-c.reg }

// Close closes the connection and stops its goroutines, waiting for them
// (running handlers included: their context is canceled).
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	s := c.sess
	c.sess = nil
	ls := append([]*Listener(nil), c.listeners...)
	ss := append([]*Subscriber(nil), c.subscribers...)
	c.mu.Unlock()
	c.cancel()
	if s != nil {
		// Send the answers the reader already queued (event
		// acknowledgements, errors), as libubus does before it exits.
		close(s.flush)
		<-s.flushed
		s.nc.Close()
	}
	for _, l := range ls {
		l.w.stop()
	}
	for _, sb := range ss {
		sb.w.stop()
	}
	c.maint.stop()
	c.notes.stop()
	c.wg.Wait()
	return nil
}

// ClientID returns the id ubusd gave the current connection, 0 while
// disconnected.
func (c *Conn) ClientID() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess == nil {
		return 0
	}
	return c.sess.id
}

// write sends a frame, bounded by deadline (or writeTimeout). A failed or
// partial write corrupts the stream, so it ends the session.
func (s *session) write(f []byte, deadline time.Time) error {
	if deadline.IsZero() {
		deadline = time.Now().Add(writeTimeout)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.nc.SetWriteDeadline(deadline)
	if _, err := s.nc.Write(f); err != nil {
		s.nc.Close()
		return err
	}
	return nil
}

// post queues a frame for the writer goroutine, for answers the reader
// produces itself; it never blocks and drops the frame if the queue is
// full.
func (s *session) post(f []byte) {
	select {
	case s.async <- f:
	default:
	}
}

// reqOpts are the variations of a request.
type reqOpts struct {
	notify bool // NOTIFY with replies: completed by the subscribers' answers
	// onData runs on the reader goroutine, with c.mu held, for each DATA
	// answer, before any later message is read: ADD_OBJECT uses it to make
	// the new object reachable before ubusd can route anything to it.
	onData func(*Message)
}

// request is a pending request, waiting for DATA and the final STATUS.
type request struct {
	reqOpts
	peer   uint32
	data   []*Message
	status Status
	hasObj bool           // the STATUS carried OBJID (came from an object owner)
	subs   map[uint32]int // notify: subscribers still to answer
	errs   []error        // notify: failures of subscribers
	done   chan struct{}
}

// response is the result of a request.
type response struct {
	data   []*Message
	status Status
	hasObj bool
}

// do sends a request and waits for its answer. peer is the header peer
// (the object id for INVOKE and NOTIFY, else 0).
func (c *Conn) do(ctx context.Context, op string, typ MsgType, peer uint32, body func([]byte) []byte, opts reqOpts) (*response, error) {
	c.mu.Lock()
	s := c.sess
	if s == nil {
		err := errClosed
		if !c.closed {
			err = errors.New("ubus: not connected")
		}
		c.mu.Unlock()
		return nil, &StatusError{Op: op, Status: StatusConnectionFailed, Err: err}
	}
	seq := c.nextSeq(s)
	r := &request{reqOpts: opts, peer: peer, done: make(chan struct{})}
	s.pending[seq] = r
	c.mu.Unlock()
	drop := func() {
		c.mu.Lock()
		if s.pending[seq] == r {
			delete(s.pending, seq)
		}
		c.mu.Unlock()
	}
	f := body(blob.Frame(uint8(typ), seq, peer))
	if err := checkSize(blob.Finish(f)); err != nil {
		drop()
		return nil, &StatusError{Op: op, Status: StatusInvalidArgument, Err: err}
	}
	deadline, _ := ctx.Deadline()
	if err := s.write(f, deadline); err != nil {
		drop()
		return nil, &StatusError{Op: op, Status: StatusConnectionFailed, Err: err}
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		drop()
		return nil, &StatusError{Op: op, Status: StatusTimeout, Err: ctx.Err()}
	case <-s.done:
		drop()
		return nil, &StatusError{Op: op, Status: StatusConnectionFailed, Err: s.err}
	}
	if r.status != StatusOK {
		// The DATA received before an error status still counts.
		return &response{data: r.data, status: r.status, hasObj: r.hasObj},
			&StatusError{Op: op, Status: r.status, Err: errors.Join(r.errs...), fromOwner: r.hasObj}
	}
	if err := errors.Join(r.errs...); err != nil {
		return nil, &StatusError{Op: op, Status: StatusOf(err), Err: err}
	}
	return &response{data: r.data, status: r.status, hasObj: r.hasObj}, nil
}

// nextSeq returns the next sequence number not used by a pending request.
// Called with c.mu held.
func (c *Conn) nextSeq(s *session) uint16 {
	for {
		c.seq++
		if _, busy := s.pending[c.seq]; !busy {
			return c.seq
		}
	}
}

func checkSize(f []byte) error {
	if blob.Pad4(len(f)-HeaderLen) > MaxBodyLen {
		return fmt.Errorf("%w (%d bytes)", ErrTooLarge, len(f)-HeaderLen)
	}
	return nil
}

// send writes a frame that expects no answer.
func (c *Conn) send(ctx context.Context, op string, typ MsgType, peer uint32, body func([]byte) []byte) error {
	c.mu.Lock()
	s := c.sess
	var seq uint16
	if s != nil {
		seq = c.nextSeq(s)
	}
	c.mu.Unlock()
	if s == nil {
		return &StatusError{Op: op, Status: StatusConnectionFailed, Err: errors.New("ubus: not connected")}
	}
	f := blob.Finish(body(blob.Frame(uint8(typ), seq, peer)))
	if err := checkSize(f); err != nil {
		return &StatusError{Op: op, Status: StatusInvalidArgument, Err: err}
	}
	deadline, _ := ctx.Deadline()
	if err := s.write(f, deadline); err != nil {
		return &StatusError{Op: op, Status: StatusConnectionFailed, Err: err}
	}
	return nil
}

// readLoop is the only reader of a session. It classifies frames by type
// and never runs user code or waits for it.
func (c *Conn) readLoop(s *session) {
	br := bufio.NewReaderSize(s.nc, 16<<10)
	var err error
	for {
		var m *Message
		if m, err = ReadMessage(br); err != nil {
			break
		}
		if m.Version != 0 {
			err = fmt.Errorf("ubus: message with version %d", m.Version)
			break
		}
		switch m.Type {
		case MsgData, MsgStatus:
			c.reply(s, m)
		case MsgInvoke:
			c.invoked(s, m)
		case MsgNotify:
			c.subscribersChanged(m)
		case MsgUnsubscribe:
			c.targetGone(m)
		}
	}
	s.nc.Close()
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) {
		err = errClosed
	}
	s.err = err
	close(s.done)
}

// reply routes a DATA or STATUS to its pending request.
func (c *Conn) reply(s *session, m *Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := s.pending[m.Seq]
	if r == nil {
		return // late answer to a request that timed out, or unsolicited
	}
	if r.notify {
		c.notifyReply(s, r, m)
		return
	}
	if m.Peer != r.peer {
		return
	}
	if m.Type == MsgData {
		r.data = append(r.data, m)
		if r.onData != nil {
			r.onData(m)
		}
		return
	}
	st, _ := m.GetU32(AttrStatus)
	_, r.hasObj = m.GetU32(AttrObjID)
	r.status = Status(st)
	delete(s.pending, m.Seq)
	close(r.done)
}

// notifyReply handles the answers to a NOTIFY that waits for replies:
// ubusd's STATUS with the SUBSCRIBERS list (peer = our object), then one
// STATUS per subscriber (peer = subscriber object). Called with c.mu held.
func (c *Conn) notifyReply(s *session, r *request, m *Message) {
	if m.Type != MsgStatus {
		return
	}
	st, _ := m.GetU32(AttrStatus)
	if r.subs == nil {
		if m.Peer != r.peer {
			return
		}
		r.status = Status(st)
		r.subs = map[uint32]int{}
		if list, ok := m.Get(AttrSubscribers); ok && st == 0 {
			for a := range blob.All(list) {
				if len(a.Data) == 4 {
					r.subs[be32(a.Data)]++
				}
			}
		}
	} else if r.subs[m.Peer] > 0 {
		if r.subs[m.Peer]--; r.subs[m.Peer] == 0 {
			delete(r.subs, m.Peer)
		}
		if st != 0 {
			r.errs = append(r.errs, fmt.Errorf("subscriber %08x: %w", m.Peer, Status(st)))
		}
	}
	if len(r.subs) == 0 {
		delete(s.pending, m.Seq)
		close(r.done)
	}
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// statusFrame builds the STATUS answering an invocation.
func statusFrame(seq uint16, peer, obj uint32, st Status) []byte {
	return appendStatus(make([]byte, 0, 28), seq, peer, obj, st)
}

// appendStatus appends the STATUS answering an invocation to b.
func appendStatus(b []byte, seq uint16, peer, obj uint32, st Status) []byte {
	start := len(b)
	f := blob.AppendFrame(b, uint8(MsgStatus), seq, peer)
	f = blob.AppendU32(f, uint8(AttrStatus), uint32(st))
	f = blob.AppendU32(f, uint8(AttrObjID), obj)
	blob.Finish(f[start:])
	return f
}

// invoked dispatches an INVOKE: a method call on one of our objects, an
// event for a listener, or a notification for a subscriber.
func (c *Conn) invoked(s *session, m *Message) {
	id, ok := m.GetU32(AttrObjID)
	if !ok {
		return
	}
	c.mu.Lock()
	target := c.byID[id]
	c.mu.Unlock()
	switch t := target.(type) {
	case *Object:
		c.call(s, t, id, m)
	case *Listener:
		t.deliver(s, id, m)
	case *Subscriber:
		t.deliver(s, id, m)
	default:
		s.post(statusFrame(m.Seq, m.Peer, id, StatusNotFound))
	}
}

// worker runs functions in order on one goroutine. post never blocks: it
// drops the function when the queue is full or the worker stopped, and
// logs the first drop of a series and how many were lost once it recovers.
type worker struct {
	log      *slog.Logger
	ch       chan func()
	done     chan struct{}
	stopOnce sync.Once
	dropped  atomic.Int64
}

func newWorker(c *Conn, size int) *worker {
	w := &worker{log: c.opt.log, ch: make(chan func(), size), done: make(chan struct{})}
	c.wg.Go(func() {
		for {
			select {
			case f := <-w.ch:
				f()
			case <-w.done:
				return
			}
		}
	})
	return w
}

// post queues f; what names the work for the log.
func (w *worker) post(what string, f func()) bool {
	select {
	case <-w.done:
		return false
	default:
	}
	select {
	case w.ch <- f:
		if n := w.dropped.Swap(0); n > 0 {
			w.log.Warn("ubus: handler queue accepts work again", "dropped", n)
		}
		return true
	default:
		if w.dropped.Add(1) == 1 {
			w.log.Warn("ubus: handler too slow, queue full: dropping", "what", what)
		}
		return false
	}
}

func (w *worker) stop() { w.stopOnce.Do(func() { close(w.done) }) }
