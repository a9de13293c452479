package ubus

import (
	"context"
	"slices"
	"strconv"
)

// EventHandler receives the events a [Listener] matches. Calls are made in
// the order the events arrived, on a goroutine of the listener's own.
type EventHandler func(event string, data Table)

// Listener receives events sent on the bus (by [Conn.Send], `ubus send`,
// netifd, or ubusd's own ubus.object.add and ubus.object.remove). It is an
// anonymous object of its own: an event that matches several of its
// patterns is delivered to it once.
type Listener struct {
	c        *Conn
	h        EventHandler
	w        *worker
	patterns []string // guarded by c.mu
	id       uint32   // guarded by c.mu
}

// Listen registers h for the events matching pattern: an exact event name,
// or a prefix followed by '*' ("network.*" matches "network.interface" but
// not "network"); "*" matches every event. Use Listener.Add for more
// patterns. A Conn never receives the events it sends itself.
func (c *Conn) Listen(ctx context.Context, pattern string, h EventHandler) (*Listener, error) {
	if err := c.lockReg(ctx); err != nil {
		return nil, err
	}
	defer c.unlockReg()
	return c.listen(ctx, h, pattern)
}

// listen creates a listener; called with the registration lock held.
func (c *Conn) listen(ctx context.Context, h EventHandler, patterns ...string) (*Listener, error) {
	l := &Listener{c: c, h: h, patterns: patterns, w: newWorker(c, queueLen)}
	if err := l.register(ctx); err != nil {
		l.w.stop()
		l.drop(ctx)
		return nil, err
	}
	c.mu.Lock()
	c.listeners = append(c.listeners, l)
	c.mu.Unlock()
	return l, nil
}

// register creates the listener's object and registers its patterns, on
// the current session.
func (l *Listener) register(ctx context.Context) error {
	c := l.c
	id, err := c.register(ctx, "listen "+quotePatterns(l.patterns), l, func(f []byte) []byte { return f })
	if err != nil {
		return err
	}
	c.mu.Lock()
	patterns := slices.Clone(l.patterns)
	c.mu.Unlock()
	for _, p := range patterns {
		if err := c.registerPattern(ctx, id, p); err != nil {
			return err
		}
	}
	return nil
}

func (c *Conn) registerPattern(ctx context.Context, id uint32, pattern string) error {
	_, err := c.Invoke(ctx, 1, "register", Table{{"object", id}, {"pattern", pattern}})
	if se, ok := err.(*StatusError); ok {
		se.Op = "listen " + strconv.Quote(pattern)
	}
	return err
}

// Add registers one more pattern.
func (l *Listener) Add(ctx context.Context, pattern string) error {
	c := l.c
	if err := c.lockReg(ctx); err != nil {
		return err
	}
	defer c.unlockReg()
	c.mu.Lock()
	id := l.id
	c.mu.Unlock()
	if err := c.registerPattern(ctx, id, pattern); err != nil {
		return err
	}
	c.mu.Lock()
	l.patterns = append(l.patterns, pattern)
	c.mu.Unlock()
	return nil
}

// Close unregisters the listener. Events already queued are dropped.
func (l *Listener) Close() error {
	c := l.c
	ctx, cancel := context.WithTimeout(c.ctx, c.opt.timeout)
	defer cancel()
	if err := c.lockReg(ctx); err != nil {
		return err
	}
	defer c.unlockReg()
	l.w.stop()
	c.mu.Lock()
	c.listeners = slices.DeleteFunc(c.listeners, func(x *Listener) bool { return x == l })
	c.mu.Unlock()
	return l.drop(ctx)
}

// drop removes the listener's object, if it has one.
func (l *Listener) drop(ctx context.Context) error {
	return l.c.forget(ctx, "remove listener", &l.id)
}

// deliver queues an event for the handler and acknowledges it as libubus
// does (ubusd drops that answer: events come from peer 0).
func (l *Listener) deliver(s *session, id uint32, m *Message) {
	name, _ := m.GetString(AttrMethod)
	data, _, err := m.GetTable(AttrData)
	if err != nil {
		l.c.opt.log.Warn("ubus: malformed event dropped", "event", name, "err", err)
		return
	}
	s.post(statusFrame(m.Seq, m.Peer, id, StatusOK))
	l.w.post("event "+name, func() { l.h(name, data) })
}
