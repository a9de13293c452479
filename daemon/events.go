package daemon

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/mwan3d/mwan3d/ubus"
)

// InterfaceEvent is the name of the ubus event sent for every interface
// transition.
const InterfaceEvent = "mwan3.interface"

// ubusEvent is one event to send on the bus.
type ubusEvent struct {
	name string
	data ubus.Table
}

// ifaceEvent is the mwan3.interface event of a transition: the
// interface, its device, the action, its status as `mwan3 status` reports
// it, and whether it takes part in the policies now.
func ifaceEvent(ev HookEvent, status string, online bool) ubusEvent {
	return ubusEvent{name: InterfaceEvent, data: ubus.Table{
		{Name: "interface", Value: ev.Interface},
		{Name: "device", Value: ev.Device},
		{Name: "action", Value: ev.Action},
		{Name: "status", Value: status},
		{Name: "online", Value: online},
	}}
}

// maxQueuedEvents bounds the ubus events waiting to be sent.
const maxQueuedEvents = 1024

// publisher sends ubus events in order from a goroutine of its own, so
// that a slow ubusd never blocks the loop.
type publisher struct {
	conn *ubus.Conn
	log  *slog.Logger
	ch   chan ubusEvent
	done chan struct{}

	mu     sync.Mutex
	closed bool
}

func newPublisher(conn *ubus.Conn, log *slog.Logger) *publisher {
	p := &publisher{conn: conn, log: log, ch: make(chan ubusEvent, maxQueuedEvents), done: make(chan struct{})}
	go p.run()
	return p
}

func (p *publisher) run() {
	defer close(p.done)
	for e := range p.ch {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := p.conn.Send(ctx, e.name, e.data); err != nil {
			p.log.Debug("cannot send ubus event", "event", e.name, "err", err)
		}
		cancel()
	}
}

// send queues e; when the queue is full the event is dropped and logged.
func (p *publisher) send(e ubusEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	select {
	case p.ch <- e:
	default:
		p.log.Warn("ubus event queue full, dropping an event", "event", e.name)
	}
}

// close stops accepting events and waits up to timeout for the queued ones.
func (p *publisher) close(timeout time.Duration) {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.ch)
	}
	p.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		p.log.Warn("ubus events still queued at stop")
	}
}
