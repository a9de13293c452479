package ubus

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mwan3d/mwan3d/ubus/internal/blob"
)

// Object is an object published on the bus, with methods that other
// clients call. Fill in Name and Methods, then pass it to
// [Conn.AddObject]; do not change them afterwards.
type Object struct {
	// Name is the object's path ("mwan3"). An object without a name is
	// anonymous: it has an id but is not listed, and can only be called by
	// clients that know its id.
	Name string
	// Methods are published in this order in the object's signature.
	Methods []Method
	// SubscribersChanged, if set, is called when the object gains its
	// first subscriber (true) or loses its last (false). Calls are made
	// in order, on a goroutine of the Conn.
	SubscribersChanged func(active bool)
	// BadArgs, if set, answers the calls whose arguments do not fit their
	// method's policy, in place of the method's handler and like one (on
	// a goroutine of its own): it may Reply with an explanation, e.g.
	// {"error": err.Error()}. The call ends with the status of the error
	// it returns, StatusInvalidArgument when it returns nil. Without it
	// such calls are answered StatusInvalidArgument with no data.
	BadArgs func(req *Request, err *ArgError) error

	conn   atomic.Pointer[Conn] // set while added
	id     atomic.Uint32        // 0 while not registered
	active atomic.Bool          // has subscribers
}

// Method is one method of an [Object].
type Method struct {
	Name string
	// Policy lists the arguments, in signature order; `ubus -v list`
	// shows their types. Before the handler runs, an argument present
	// with an incompatible type, or a required argument that is missing,
	// is answered with StatusInvalidArgument (see Object.BadArgs), as
	// libubus's policy parsing makes handlers do. Integer types are
	// compatible with one another (JSON clients send large numbers as
	// int64, booleans as int8), a double accepts integers too, and
	// TypeUnspec accepts anything.
	Policy  []Arg
	Handler Handler
}

// ArgError tells which argument of a call does not fit its method's
// policy.
type ArgError struct {
	Method  string
	Arg     string
	Want    Type // the policy's type
	Got     Type // the type received (when not Missing)
	Missing bool // a required argument is absent
}

// Error says what is wrong in words meant for the caller.
func (e *ArgError) Error() string {
	if e.Missing {
		return fmt.Sprintf("argument %q is required", e.Arg)
	}
	return fmt.Sprintf("argument %q must be %s, not %s", e.Arg, typeWords(e.Want), e.Got)
}

// typeWords names what a policy type accepts.
func typeWords(t Type) string {
	switch t {
	case TypeString:
		return "a string"
	case TypeTable:
		return "a table"
	case TypeArray:
		return "an array"
	case TypeDouble:
		return "a number"
	case TypeInt8:
		return "a boolean or an integer"
	}
	return "an integer"
}

// valueType is the blobmsg type of a decoded value.
func valueType(v any) Type {
	switch v.(type) {
	case nil:
		return TypeUnspec
	case []any:
		return TypeArray
	case Table:
		return TypeTable
	case string:
		return TypeString
	case int64:
		return TypeInt64
	case int32:
		return TypeInt32
	case int16:
		return TypeInt16
	case int8:
		return TypeInt8
	}
	return TypeDouble
}

// Arg is one argument of a method's policy.
type Arg struct {
	Name     string
	Type     Type
	Required bool
}

// Handler serves one call of a method. It runs on a goroutine of its own
// with a context that is canceled when the Conn closes; Close waits for
// running handlers, so they must return once it is canceled.
//
// It may send any number of DATA answers with req.Reply. When it returns,
// the call is completed with the returned error's status (nil for OK; see
// [StatusOf]) unless it called req.Defer, in which case it must call
// req.Complete later, from any goroutine.
type Handler func(ctx context.Context, req *Request) error

// Request is one incoming method call.
type Request struct {
	Object *Object
	Method string
	Args   Table
	User   string // the caller's user name, as ubusd reports it
	Group  string // the caller's group name

	conn    *Conn
	sess    *session
	seq     uint16
	peer    uint32
	objID   uint32
	noReply bool

	mu       sync.Mutex
	deferred bool
	done     bool
	// held is the last DATA frame, not written yet: it goes out with the
	// next one or with the STATUS, in one write.
	held *[]byte
}

// Reply sends one DATA answer with data encoded by [AppendTable]; data may
// be [Encoded] (a reply encoded once and sent many times). It may be
// called several times before the call completes. The last answer is
// written together with the call's STATUS (callers see nothing before the
// STATUS anyway), so that a call costs one write; an error writing it is
// then reported by Complete.
func (r *Request) Reply(data any) error {
	bp := framePool.Get().(*[]byte)
	f := blob.AppendFrame((*bp)[:0], uint8(MsgData), r.seq, r.peer)
	f = blob.AppendU32(f, uint8(AttrObjID), r.objID)
	f, off := blob.Begin(f)
	f, err := AppendTable(f, data)
	*bp = f
	if err == nil && len(f)-off > blob.MaxLen {
		err = fmt.Errorf("%w (%d bytes)", ErrTooLarge, len(f)-off)
	}
	if err == nil {
		*bp = blob.Finish(blob.End(f, off, uint8(AttrData), false))
		// ubusd would disconnect us for an answer over the limit.
		err = checkSize(*bp)
	}
	if err != nil {
		putFrame(bp)
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		putFrame(bp)
		return errors.New("ubus: reply to a completed request")
	}
	prev := r.held
	r.held = bp
	if prev == nil {
		return nil
	}
	defer putFrame(prev)
	return r.write(*prev) // written before it returns: the buffer is free again
}

// framePool holds the buffers replies are built in.
var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// maxPooledFrame bounds the buffers kept for reuse.
const maxPooledFrame = 64 << 10

func putFrame(bp *[]byte) {
	if cap(*bp) <= maxPooledFrame {
		*bp = (*bp)[:0]
		framePool.Put(bp)
	}
}

// Defer marks the request as answered later: the handler's return value is
// then ignored and Complete must be called.
func (r *Request) Defer() {
	r.mu.Lock()
	r.deferred = true
	r.mu.Unlock()
}

// Complete ends the call with the status of err (nil: OK). Only the first
// call has an effect.
func (r *Request) Complete(err error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return nil
	}
	r.done = true
	held := r.held
	r.held = nil
	if held == nil {
		if r.noReply {
			return nil
		}
		return r.write(statusFrame(r.seq, r.peer, r.objID, StatusOf(err)))
	}
	defer putFrame(held)
	if !r.noReply {
		*held = appendStatus(*held, r.seq, r.peer, r.objID, StatusOf(err))
	}
	return r.write(*held)
}

func (r *Request) write(f []byte) error {
	select {
	case <-r.sess.done:
		return &StatusError{Op: "reply", Status: StatusConnectionFailed, Err: r.sess.err}
	default:
	}
	return r.sess.write(f, time.Time{})
}

// AddObject publishes obj on the bus, with a signature built from its
// methods' policies. Its id is obj.ID(); after a reconnection the object is
// published again with a new id.
//
// When ubusd refuses the object (StatusInvalidArgument: its path is taken,
// for instance by a previous provider) or the Conn is disconnected,
// AddObject returns the error but keeps the object: it stays added to the
// Conn with ID 0 and is published as soon as its path is free again
// (ubusd's ubus.object.remove event) and after every reconnection, until
// RemoveObject. Only an invalid object, one added already, or a ctx that
// ends before the attempt leaves it out.
func (c *Conn) AddObject(ctx context.Context, obj *Object) error {
	seen := map[string]bool{}
	for _, m := range obj.Methods {
		if m.Name == "" || seen[m.Name] || m.Handler == nil || len(m.Name) > math.MaxUint16 {
			return fmt.Errorf("ubus: object %q: method %.100q: empty, too long or duplicate name, or no handler", obj.Name, m.Name)
		}
		for _, a := range m.Policy {
			if len(a.Name) > math.MaxUint16 {
				return fmt.Errorf("ubus: object %q: method %q: argument name too long", obj.Name, m.Name)
			}
		}
		seen[m.Name] = true
	}
	if err := c.lockReg(ctx); err != nil {
		return err
	}
	defer c.unlockReg()
	if !obj.conn.CompareAndSwap(nil, c) {
		return fmt.Errorf("ubus: object %q is already added", obj.Name)
	}
	c.mu.Lock()
	c.objects = append(c.objects, obj)
	c.mu.Unlock()
	err := c.addObject(ctx, obj)
	if err != nil && obj.Name != "" && c.awaitPath(ctx, obj) {
		return nil
	}
	return err
}

// awaitPath makes sure a named object that could not be registered is
// registered once its path is free: it watches ubus.object.remove, then
// tries once more in case the path was freed before the watch started;
// true when that try registered it. Called with the registration lock
// held.
func (c *Conn) awaitPath(ctx context.Context, obj *Object) bool {
	if err := c.ensureWatcher(ctx); err != nil {
		c.opt.log.Debug("ubus: cannot watch for object removals", "err", err)
		return false
	}
	return c.addObject(ctx, obj) == nil
}

// retryObjects registers the added objects with this path that have no
// id yet. Called with the registration lock held.
func (c *Conn) retryObjects(ctx context.Context, path string) {
	c.mu.Lock()
	var todo []*Object
	for _, o := range c.objects {
		if o.id.Load() == 0 && o.Name == path {
			todo = append(todo, o)
		}
	}
	c.mu.Unlock()
	for _, o := range todo {
		if err := c.addObject(ctx, o); err != nil {
			c.opt.log.Debug("ubus: object still not registered", "object", o.Name, "err", err)
			continue
		}
		c.opt.log.Info("ubus: object registered", "object", o.Name)
	}
}

// pendingObject reports whether an added object with this path has no id.
func (c *Conn) pendingObject(path string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, o := range c.objects {
		if o.Name == path && o.id.Load() == 0 {
			return true
		}
	}
	return false
}

// addObject sends ADD_OBJECT for obj and records its id.
func (c *Conn) addObject(ctx context.Context, obj *Object) error {
	_, err := c.register(ctx, "add object "+strconv.Quote(obj.Name), obj, func(f []byte) []byte {
		if obj.Name == "" {
			return f
		}
		f = blob.AppendString(f, uint8(AttrObjPath), obj.Name)
		f, off := blob.Begin(f)
		for _, m := range obj.Methods {
			var moff int
			f, moff = blob.BeginMsg(f, m.Name)
			for _, a := range m.Policy {
				f = blob.AppendMsg(f, uint8(TypeInt32), a.Name, []byte{0, 0, 0, byte(a.Type)})
			}
			f = blob.End(f, moff, uint8(TypeTable), true)
		}
		return blob.End(f, off, uint8(AttrSignature), false)
	})
	return err
}

// register sends an ADD_OBJECT and makes target (an *Object, *Listener or
// *Subscriber) reachable under the new id as soon as ubusd tells it: an
// invocation or subscription can follow the answer immediately.
func (c *Conn) register(ctx context.Context, op string, target any, body func([]byte) []byte) (uint32, error) {
	var id uint32
	onData := func(m *Message) { // c.mu held
		v, ok := m.GetU32(AttrObjID)
		if !ok || id != 0 {
			return
		}
		id = v
		c.byID[id] = target
		switch t := target.(type) {
		case *Object:
			t.id.Store(id)
			t.active.Store(false)
		case *Listener:
			t.id = id
		case *Subscriber:
			t.id = id
		}
	}
	_, err := c.do(ctx, op, MsgAddObject, 0, body, reqOpts{onData: onData})
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil && id == 0 {
		err = &StatusError{Op: op, Status: StatusNoData}
	}
	if err != nil && id != 0 {
		if c.byID[id] == target {
			delete(c.byID, id)
		}
		id = 0
	}
	return id, err
}

// unregister sends REMOVE_OBJECT for an object id.
func (c *Conn) unregister(ctx context.Context, op string, id uint32) error {
	_, err := c.do(ctx, op, MsgRemoveObject, 0, func(f []byte) []byte {
		return blob.AppendU32(f, uint8(AttrObjID), id)
	}, reqOpts{})
	return err
}

// forget clears *id (guarded by c.mu), drops it from the id index and
// unregisters it from ubusd; an id of 0 means nothing is registered.
func (c *Conn) forget(ctx context.Context, op string, id *uint32) error {
	c.mu.Lock()
	v := *id
	*id = 0
	delete(c.byID, v)
	c.mu.Unlock()
	if v == 0 {
		return nil
	}
	return c.unregister(ctx, op, v)
}

// RemoveObject withdraws obj from the bus.
func (c *Conn) RemoveObject(ctx context.Context, obj *Object) error {
	if err := c.lockReg(ctx); err != nil {
		return err
	}
	defer c.unlockReg()
	if obj.conn.Load() != c {
		return fmt.Errorf("ubus: object %q is not added", obj.Name)
	}
	id := obj.id.Load()
	var err error
	if id != 0 {
		err = c.unregister(ctx, "remove object "+strconv.Quote(obj.Name), id)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.byID, id)
	obj.id.Store(0)
	obj.active.Store(false)
	obj.conn.Store(nil)
	for i, o := range c.objects {
		if o == obj {
			c.objects = append(c.objects[:i], c.objects[i+1:]...)
			break
		}
	}
	return err
}

// ID returns the object's id on the bus, 0 while it is not registered.
func (o *Object) ID() uint32 { return o.id.Load() }

// HasSubscribers reports whether anyone subscribes to the object, as ubusd
// last told us.
func (o *Object) HasSubscribers() bool { return o.active.Load() }

// Notify sends a notification of the given type to the object's
// subscribers. With wait, it returns once every subscriber has answered
// (an error carries the first failing status), or ctx ends; without, the
// notification is fire-and-forget (NO_REPLY), as netifd sends its
// interface updates.
func (o *Object) Notify(ctx context.Context, typ string, data any, wait bool) error {
	c := o.conn.Load()
	if c == nil {
		return fmt.Errorf("ubus: notify %q: object %q is not added", typ, o.Name)
	}
	id := o.ID()
	op := fmt.Sprintf("notify %q %q", o.Name, typ)
	if id == 0 {
		return &StatusError{Op: op, Status: StatusConnectionFailed, Err: errors.New("ubus: object not registered")}
	}
	d, err := AppendTable(nil, data)
	if err != nil {
		return &StatusError{Op: op, Status: StatusInvalidArgument, Err: err}
	}
	body := func(f []byte) []byte {
		f = blob.AppendU32(f, uint8(AttrObjID), id)
		f = blob.AppendString(f, uint8(AttrMethod), typ)
		f = blob.AppendAttr(f, uint8(AttrData), d)
		if !wait {
			f = blob.AppendU8(f, uint8(AttrNoReply), 1)
		}
		return f
	}
	if !wait {
		return c.send(ctx, op, MsgNotify, id, body)
	}
	_, err = c.do(ctx, op, MsgNotify, id, body, reqOpts{notify: true})
	return err
}

// call serves an INVOKE of one of our objects, like libubus's
// ubus_process_invoke.
func (c *Conn) call(s *session, obj *Object, id uint32, m *Message) {
	fail := func(st Status) { s.post(statusFrame(m.Seq, m.Peer, id, st)) }
	name, ok := m.GetString(AttrMethod)
	data, hasData := m.Get(AttrData)
	if !ok || !hasData {
		fail(StatusInvalidArgument)
		return
	}
	var meth *Method
	for i := range obj.Methods {
		if obj.Methods[i].Name == name {
			meth = &obj.Methods[i]
		}
	}
	if meth == nil {
		fail(StatusMethodNotFound)
		return
	}
	args, err := DecodeTable(data)
	if err != nil {
		fail(StatusInvalidArgument)
		return
	}
	handler := meth.Handler
	if aerr := meth.check(args); aerr != nil {
		if obj.BadArgs == nil {
			fail(StatusInvalidArgument)
			return
		}
		handler = func(_ context.Context, req *Request) error {
			if err := obj.BadArgs(req, aerr); err != nil {
				return err
			}
			return StatusInvalidArgument
		}
	}
	nr, _ := m.GetU8(AttrNoReply)
	req := &Request{Object: obj, Method: name, Args: args, conn: c, sess: s, seq: m.Seq, peer: m.Peer, objID: id, noReply: nr != 0}
	req.User, _ = m.GetString(AttrUser)
	req.Group, _ = m.GetString(AttrGroup)
	select {
	case c.hsem <- struct{}{}:
	default:
		c.opt.log.Warn("ubus: too many method calls running, refusing one", "object", obj.Name, "method", name)
		fail(StatusNoMemory)
		return
	}
	c.wg.Go(func() {
		defer func() { <-c.hsem }()
		err := handler(c.ctx, req)
		req.mu.Lock()
		deferred := req.deferred
		req.mu.Unlock()
		if !deferred {
			if err := req.Complete(err); err != nil {
				c.opt.log.Debug("ubus: cannot answer call", "object", obj.Name, "method", name, "err", err)
			}
		}
	})
}

// check checks args against the method's policy: nil when they fit, else
// the first argument that does not. Of several arguments with the same
// name one that fits is enough.
func (m *Method) check(args Table) *ArgError {
	for _, a := range m.Policy {
		var bad *ArgError
		found := false
		for _, f := range args {
			if f.Name != a.Name {
				continue
			}
			if compatible(a.Type, f.Value) {
				found = true
				break
			}
			if bad == nil {
				bad = &ArgError{Method: m.Name, Arg: a.Name, Want: a.Type, Got: valueType(f.Value)}
			}
		}
		switch {
		case found:
		case bad != nil:
			return bad
		case a.Required:
			return &ArgError{Method: m.Name, Arg: a.Name, Want: a.Type, Missing: true}
		}
	}
	return nil
}

func compatible(t Type, v any) bool {
	switch t {
	case TypeUnspec:
		return true
	case TypeString:
		_, ok := v.(string)
		return ok
	case TypeTable:
		_, ok := v.(Table)
		return ok
	case TypeArray:
		_, ok := v.([]any)
		return ok
	case TypeDouble:
		_, ok := toFloat64(v)
		return ok
	}
	_, ok := toInt64(v)
	return ok
}

// subscribersChanged handles NOTIFY{ACTIVE} for one of our objects.
func (c *Conn) subscribersChanged(m *Message) {
	id, ok1 := m.GetU32(AttrObjID)
	active, ok2 := m.GetU8(AttrActive)
	if !ok1 || !ok2 {
		return
	}
	c.mu.Lock()
	obj, _ := c.byID[id].(*Object)
	if obj != nil {
		obj.active.Store(active != 0)
	}
	c.mu.Unlock()
	if obj != nil && obj.SubscribersChanged != nil {
		f := obj.SubscribersChanged
		c.notes.post("subscribers of "+obj.Name, func() { f(active != 0) })
	}
}
