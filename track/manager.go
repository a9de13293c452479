package track

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
)

// ErrUnknownInterface is returned for an interface without a tracker.
var ErrUnknownInterface = errors.New("no tracker for interface")

// ErrClosed is returned after Close.
var ErrClosed = errors.New("track manager closed")

// Config configures a Manager.
type Config struct {
	// Logger receives the tracker messages (legacy's texts); nil discards.
	Logger *slog.Logger
	// Dir is the base directory of the tracker files, normally
	// /var/run/mwan3track; each interface gets Dir/<iface>/. Empty writes
	// no files.
	Dir string
	// Probers makes the probers; nil means the native probers (Native{}).
	Probers ProberFactory
	// Uptime returns the system uptime recorded in the tracker files; nil
	// means CLOCK_BOOTTIME (what /proc/uptime shows).
	Uptime func() time.Duration
	// EventBuffer is the capacity of the event channel (default 64).
	EventBuffer int
}

// Manager runs one tracker goroutine per tracked interface. Its methods
// are safe for concurrent use and never wait for a tracker to finish a
// probe (commands are queued), except Stop and Close, which wait for the
// tracker goroutines and their sockets to be gone.
//
// The daemon must keep reading Events: a tracker waits until its event is
// taken (events are never dropped), and commands queue up meanwhile.
type Manager struct {
	log     *slog.Logger
	dir     string
	probers ProberFactory
	uptime  func() time.Duration
	events  chan Event

	mu       sync.Mutex
	trackers map[string]*tracker
	params   map[string]Params // normalized params of each tracker
	devices  map[string]string // device each tracker was last bound to
	carrier  map[string]bool   // last carrier state per device (absent: up)
	closed   bool
	wg       sync.WaitGroup
	once     sync.Once
}

// NewManager returns a Manager with no trackers.
func NewManager(cfg Config) *Manager {
	m := &Manager{
		log:      cfg.Logger,
		dir:      cfg.Dir,
		probers:  cfg.Probers,
		uptime:   cfg.Uptime,
		trackers: map[string]*tracker{},
		params:   map[string]Params{},
		devices:  map[string]string{},
		carrier:  map[string]bool{},
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.probers == nil {
		m.probers = defaultProbers()
	}
	if m.uptime == nil {
		m.uptime = systemUptime
	}
	n := cfg.EventBuffer
	if n <= 0 {
		n = 64
	}
	m.events = make(chan Event, n)
	return m
}

// Events returns the channel of tracker events, in order per interface.
// It is closed by Close after every tracker has stopped.
func (m *Manager) Events() <-chan Event { return m.events }

func validIfaceName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("invalid interface name %q", name)
	}
	return nil
}

// Start starts tracking interface name (legacy's tracker start, spec §5.2):
// first connect runs at once with b; up tells whether netifd reports the
// interface up (if not, or without a device, the tracker waits for IfUp
// with tracking status paused). p is normalized (Params.Normalize) and its
// warnings logged.
func (m *Manager) Start(name string, p Params, b Binding, up bool) error {
	if err := validIfaceName(name); err != nil {
		return fmt.Errorf("start tracker: %w", err)
	}
	if len(p.Targets) == 0 {
		return fmt.Errorf("start tracker %s: no track_ip targets (such interfaces have no tracker)", name)
	}
	np, warn := p.Normalize(name)
	log := m.log.With("component", "track", "iface", name)
	for _, w := range warn {
		log.Warn(w)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("start tracker %s: %w", name, ErrClosed)
	}
	if _, ok := m.trackers[name]; ok {
		return fmt.Errorf("start tracker %s: already running", name)
	}
	t := &tracker{
		name:    name,
		log:     log,
		mgr:     m,
		files:   newFileStore(m.dir, name),
		params:  np,
		bind:    b,
		up:      up,
		carrier: m.carrierOf(b.Device),
		nudge:   make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	m.trackers[name] = t
	m.params[name] = np
	m.devices[name] = b.Device
	m.wg.Go(t.run)
	return nil
}

func (m *Manager) carrierOf(dev string) bool {
	up, known := m.carrier[dev]
	return !known || up
}

// lookup returns the running tracker of name; m.mu must be held.
func (m *Manager) lookup(name string) (*tracker, error) {
	if m.closed {
		return nil, ErrClosed
	}
	t, ok := m.trackers[name]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownInterface, name)
	}
	return t, nil
}

// Stop stops the tracker of name (legacy's SIGTERM: no event) and removes
// its tracker files; it returns after the goroutine and its sockets are
// gone.
func (m *Manager) Stop(name string) error {
	m.mu.Lock()
	t, err := m.lookup(name)
	if err == nil {
		delete(m.trackers, name)
		delete(m.params, name)
		delete(m.devices, name)
	}
	m.mu.Unlock()
	if err != nil {
		return fmt.Errorf("stop tracker: %w", err)
	}
	close(t.stop)
	<-t.done
	return nil
}

// Reconfigure applies new options to a running tracker. Unchanged options
// are a no-op. Otherwise the round in flight is dropped, the status is
// kept (the score is rescaled into the new down/up range), and a round
// starts at once. (Legacy restarted the tracker instead: a daemon wanting
// that behaviour calls Stop and Start.)
func (m *Manager) Reconfigure(name string, p Params) error {
	if len(p.Targets) == 0 {
		return fmt.Errorf("reconfigure tracker %s: no track_ip targets: stop the tracker instead", name)
	}
	np, warn := p.Normalize(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	t, err := m.lookup(name)
	if err != nil {
		return fmt.Errorf("reconfigure tracker: %w", err)
	}
	if equalParams(m.params[name], np) {
		return nil
	}
	for _, w := range warn {
		t.log.Warn(w)
	}
	m.params[name] = np
	t.send(command{kind: cmdReconfigure, params: np})
	return nil
}

func equalParams(a, b Params) bool {
	if !slices.Equal(a.Targets, b.Targets) {
		return false
	}
	a.Targets, b.Targets = nil, nil
	return reflect.DeepEqual(a, b)
}

// IfUp forwards netifd's ifup (legacy's SIGUSR2) with the interface's
// current binding: the round in flight is aborted and evaluated, then
// first connect runs at once (spec §5.6 REC) and a round starts.
func (m *Manager) IfUp(name string, b Binding) error {
	return m.sendBinding("ifup", name, cmdIfUp, b)
}

// IfUpdate forwards netifd's interface update (address or device change
// without down/up): probes use the new binding from the next one on (spec
// §5.3.3 REC). Nothing else changes.
func (m *Manager) IfUpdate(name string, b Binding) error {
	return m.sendBinding("ifupdate", name, cmdIfUpdate, b)
}

func (m *Manager) sendBinding(op, name string, kind cmdKind, b Binding) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, err := m.lookup(name)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	m.devices[name] = b.Device
	t.send(command{kind: kind, bind: b, carrier: m.carrierOf(b.Device)})
	return nil
}

// IfDown forwards netifd's ifdown (legacy's SIGUSR1): the round in flight
// is aborted and evaluated (its interrupted probes count as failed, as in
// legacy), then disconnected and disabled; the tracker idles until IfUp.
func (m *Manager) IfDown(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, err := m.lookup(name)
	if err != nil {
		return fmt.Errorf("ifdown: %w", err)
	}
	t.send(command{kind: cmdIfDown})
	return nil
}

// Carrier reports a link change of a device: up false for loss of carrier
// or a device that disappeared. Every tracker bound to the device reacts
// at once: losing the carrier takes an active interface offline (a
// `disconnected` event if it was online or disconnecting) and stops
// probing; getting it back starts a round at once, and `up` successful
// rounds bring the interface back as usual. The state is remembered for
// trackers bound to the device later.
func (m *Manager) Carrier(device string, up bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || device == "" {
		return
	}
	m.carrier[device] = up
	for name, dev := range m.devices {
		if dev == device {
			m.trackers[name].send(command{kind: cmdCarrier, carrier: up})
		}
	}
}

// Status returns the last snapshot of the tracker of name. The snapshot is
// immutable: callers must not modify its Targets. Without a tracker it
// returns false and tracking status down (the daemon reports `disabled`
// for interfaces without track_ip, spec §5.9).
func (m *Manager) Status(name string) (Snapshot, bool) {
	m.mu.Lock()
	t, ok := m.trackers[name]
	m.mu.Unlock()
	if !ok {
		return Snapshot{Interface: name, Tracking: TrackingDown}, false
	}
	s := t.snap.Load()
	if s == nil {
		return Snapshot{Interface: name, Tracking: TrackingPaused}, true
	}
	return *s, true
}

// Names returns the interfaces with a running tracker, sorted.
func (m *Manager) Names() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	names := make([]string, 0, len(m.trackers))
	for n := range m.trackers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Close stops every tracker, waits until all their goroutines and sockets
// are gone, removes their files and closes the event channel. It is
// idempotent.
func (m *Manager) Close() error {
	m.once.Do(func() {
		m.mu.Lock()
		m.closed = true
		for _, t := range m.trackers {
			close(t.stop)
		}
		clear(m.trackers)
		m.mu.Unlock()
		m.wg.Wait()
		close(m.events)
	})
	return nil
}

// fileError logs a tracker-file error once per distinct message.
func (t *tracker) fileError(err error) {
	msg := err.Error()
	if msg == t.lastFileErr {
		return
	}
	t.lastFileErr = msg
	t.log.Warn("tracker file", "err", err)
}
