package ubus

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/mwan3d/mwan3d/ubus/internal/blob"
)

// NotifyHandler receives the notifications of the objects a [Subscriber]
// follows. Its error is the status answered to a notifier that waits for
// replies (nil: OK). Calls are made in arrival order, on a goroutine of the
// subscriber's own.
type NotifyHandler func(typ string, data Table) error

// Subscriber is an anonymous object subscribed to other objects (by path),
// receiving their notifications. It follows its targets (unless the Conn
// has WithoutResubscribe): when a target object goes away (its owner exits
// or restarts, as netifd does), the Subscriber watches ubus.object.add and
// subscribes again as soon as an object with that path is back; after a
// reconnection to ubusd it looks its targets up and subscribes again.
type Subscriber struct {
	c       *Conn
	h       NotifyHandler
	w       *worker
	watch   bool              // made by Watch: follows its targets always
	onSub   func(path string) // Watch's subscribed callback
	id      uint32            // guarded by c.mu
	targets []*target         // guarded by c.mu
}

type target struct {
	path string
	id   uint32 // 0 while the object is gone
}

// Subscribe creates a Subscriber and subscribes it to the object at path,
// which must exist (StatusNotFound otherwise, as with ubusd; see Watch for
// objects that may come later). Use Subscriber.Add for more objects. A
// Conn cannot subscribe to its own objects.
func (c *Conn) Subscribe(ctx context.Context, path string, h NotifyHandler) (*Subscriber, error) {
	if err := c.lockReg(ctx); err != nil {
		return nil, err
	}
	defer c.unlockReg()
	s := &Subscriber{c: c, h: h, w: newWorker(c, queueLen)}
	if err := s.create(ctx); err != nil {
		s.w.stop()
		return nil, err
	}
	t := &target{path: path}
	if err := s.subscribe(ctx, t); err != nil {
		s.w.stop()
		s.drop(ctx)
		return nil, err
	}
	c.mu.Lock()
	s.targets = append(s.targets, t)
	c.subscribers = append(c.subscribers, s)
	c.mu.Unlock()
	return s, nil
}

// Watch subscribes to the object at path like Subscribe, but the object
// need not exist yet: the Subscriber then subscribes as soon as ubusd
// announces it (ubus.object.add), and it follows the object through
// restarts and reconnections even on a Conn with WithoutResubscribe.
// Real ubusd only subscribes to existing objects; this is libubus's "auto
// subscribe" done by the Conn.
//
// subscribed, if not nil, is called every time the subscription to path
// is made (at once when the object exists, when it appears or comes back,
// after a reconnection to ubusd), on the subscriber's goroutine, in order
// with the notifications. A client that reads the object's state there
// (netifd's dump) misses no change: notifications of later changes are
// delivered after it. Watch fails only when the subscriber cannot be
// created, or the object exists and refuses the subscription (it is one of
// this Conn's own objects).
func (c *Conn) Watch(ctx context.Context, path string, h NotifyHandler, subscribed func(path string)) (*Subscriber, error) {
	if err := c.lockReg(ctx); err != nil {
		return nil, err
	}
	defer c.unlockReg()
	s := &Subscriber{c: c, h: h, w: newWorker(c, queueLen), watch: true, onSub: subscribed}
	if err := s.create(ctx); err != nil {
		s.w.stop()
		return nil, err
	}
	c.mu.Lock()
	s.targets = append(s.targets, &target{path: path})
	c.subscribers = append(c.subscribers, s)
	c.mu.Unlock()
	if err := c.followTargets(ctx); err != nil {
		s.w.stop()
		c.mu.Lock()
		c.subscribers = slices.DeleteFunc(c.subscribers, func(x *Subscriber) bool { return x == s })
		c.mu.Unlock()
		s.drop(ctx)
		return nil, err
	}
	return s, nil
}

// create registers the subscriber's anonymous object.
func (s *Subscriber) create(ctx context.Context) error {
	c := s.c
	_, err := c.register(ctx, "subscriber", s, func(f []byte) []byte { return f })
	return err
}

// subscribe looks t up and subscribes to it, recording its id.
func (s *Subscriber) subscribe(ctx context.Context, t *target) error {
	c := s.c
	tid, err := c.LookupID(ctx, t.path)
	if err != nil {
		return err
	}
	c.mu.Lock()
	id := s.id
	c.mu.Unlock()
	_, err = c.do(ctx, "subscribe "+strconv.Quote(t.path), MsgSubscribe, 0, func(f []byte) []byte {
		f = blob.AppendU32(f, uint8(AttrObjID), id)
		return blob.AppendU32(f, uint8(AttrTarget), tid)
	}, reqOpts{})
	if err != nil {
		return err
	}
	c.mu.Lock()
	t.id = tid
	c.mu.Unlock()
	if s.onSub != nil {
		path := t.path
		s.w.post("subscribed "+path, func() { s.onSub(path) })
	}
	return nil
}

// Add subscribes to one more object.
func (s *Subscriber) Add(ctx context.Context, path string) error {
	c := s.c
	if err := c.lockReg(ctx); err != nil {
		return err
	}
	defer c.unlockReg()
	t := &target{path: path}
	if err := s.subscribe(ctx, t); err != nil {
		return err
	}
	c.mu.Lock()
	s.targets = append(s.targets, t)
	c.mu.Unlock()
	return nil
}

// Close removes the subscriber (and so its subscriptions).
func (s *Subscriber) Close() error {
	c := s.c
	ctx, cancel := context.WithTimeout(c.ctx, c.opt.timeout)
	defer cancel()
	if err := c.lockReg(ctx); err != nil {
		return err
	}
	defer c.unlockReg()
	s.w.stop()
	c.mu.Lock()
	c.subscribers = slices.DeleteFunc(c.subscribers, func(x *Subscriber) bool { return x == s })
	c.mu.Unlock()
	return s.drop(ctx)
}

func (s *Subscriber) drop(ctx context.Context) error {
	return s.c.forget(ctx, "remove subscriber", &s.id)
}

// register re-creates the subscriber on a new session (registration lock
// held).
func (s *Subscriber) register(ctx context.Context) error {
	c := s.c
	c.mu.Lock()
	for _, t := range s.targets {
		t.id = 0
	}
	c.mu.Unlock()
	if err := s.create(ctx); err != nil {
		return err
	}
	return c.followTargets(ctx)
}

// deliver queues a notification for the handler, which answers it unless
// it was sent without expecting replies.
func (s *Subscriber) deliver(sess *session, id uint32, m *Message) {
	name, _ := m.GetString(AttrMethod)
	nr, _ := m.GetU8(AttrNoReply)
	data, _, err := m.GetTable(AttrData)
	if err != nil {
		s.c.opt.log.Warn("ubus: malformed notification dropped", "type", name, "err", err)
		if nr == 0 {
			sess.post(statusFrame(m.Seq, m.Peer, id, StatusInvalidArgument))
		}
		return
	}
	ok := s.w.post("notification "+name, func() {
		err := s.h(name, data)
		if nr == 0 {
			sess.write(statusFrame(m.Seq, m.Peer, id, StatusOf(err)), time.Time{})
		}
	})
	if !ok {
		if nr == 0 {
			sess.post(statusFrame(m.Seq, m.Peer, id, StatusNoMemory))
		}
	}
}

// targetGone handles ubusd's UNSUBSCRIBE: a target of one of our
// subscribers disappeared. The subscriber waits for it to come back.
func (c *Conn) targetGone(m *Message) {
	sid, ok := m.GetU32(AttrObjID)
	d, ok2 := m.Get(AttrTarget)
	if !ok || !ok2 || len(d) < 4 {
		return
	}
	tid := be32(d)
	c.mu.Lock()
	lost := false
	if s, ok := c.byID[sid].(*Subscriber); ok {
		follow := s.watch || !c.opt.noFollow
		for _, t := range s.targets {
			if t.id == tid {
				t.id, lost = 0, follow
			}
		}
		if !follow {
			// The subscription ended, as in libubus.
			s.targets = slices.DeleteFunc(s.targets, func(t *target) bool { return t.id == 0 })
		}
	}
	c.mu.Unlock()
	if lost {
		c.maint.post("follow subscription targets", func() {
			ctx, cancel := context.WithTimeout(c.ctx, c.opt.timeout)
			defer cancel()
			if err := c.lockReg(ctx); err != nil {
				return
			}
			defer c.unlockReg()
			if err := c.followTargets(ctx); err != nil {
				c.opt.log.Warn("ubus: cannot follow subscription targets", "err", err)
			}
		})
	}
}

// followTargets makes sure that ubus.object.add is watched while some
// subscription target is missing, and subscribes again to those that
// exist. Called with the registration lock held.
func (c *Conn) followTargets(ctx context.Context) error {
	type missing struct {
		s *Subscriber
		t *target
	}
	var todo []missing
	c.mu.Lock()
	for _, s := range c.subscribers {
		for _, t := range s.targets {
			if t.id == 0 {
				todo = append(todo, missing{s, t})
			}
		}
	}
	c.mu.Unlock()
	if len(todo) == 0 {
		return nil
	}
	// Watch before looking up, so that an object added in between is not
	// missed.
	if err := c.ensureWatcher(ctx); err != nil {
		return err
	}
	var firstErr error
	for _, m := range todo {
		if err := m.s.subscribe(ctx, m.t); err != nil && StatusOf(err) != StatusNotFound && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// ensureWatcher starts the Conn's watch of ubusd's ubus.object.add and
// ubus.object.remove events, once: objects that appear are subscribed to
// by the subscribers waiting for them, objects that go away free their
// path for our objects that could not be registered. Called with the
// registration lock held.
func (c *Conn) ensureWatcher(ctx context.Context) error {
	c.mu.Lock()
	watching := c.watcher != nil
	c.mu.Unlock()
	if watching {
		return nil
	}
	w, err := c.listen(ctx, c.objectEvent, "ubus.object.add", "ubus.object.remove")
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.watcher = w
	c.mu.Unlock()
	return nil
}

// objectEvent handles ubusd's ubus.object.add and ubus.object.remove.
func (c *Conn) objectEvent(event string, data Table) {
	path, ok := data.GetString("path")
	if !ok {
		return
	}
	var work func(context.Context)
	switch {
	case event == "ubus.object.add" && c.waitingFor(path):
		work = func(ctx context.Context) {
			if err := c.followTargets(ctx); err != nil {
				c.opt.log.Warn("ubus: cannot follow subscription targets", "err", err)
			}
		}
	case event == "ubus.object.remove" && c.pendingObject(path):
		work = func(ctx context.Context) { c.retryObjects(ctx, path) }
	default:
		return
	}
	c.maint.post(event+" "+path, func() {
		ctx, cancel := context.WithTimeout(c.ctx, c.opt.timeout)
		defer cancel()
		if c.lockReg(ctx) == nil {
			work(ctx)
			c.unlockReg()
		}
	})
}

// waitingFor reports whether a subscription target with this path is
// missing.
func (c *Conn) waitingFor(path string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.subscribers {
		for _, t := range s.targets {
			if t.id == 0 && t.path == path {
				return true
			}
		}
	}
	return false
}
