package track

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Tracking is the tracking status of an interface (spec §5.9, ubus
// `tracking`).
type Tracking string

// Tracking statuses.
const (
	TrackingActive   Tracking = "active"   // tracker running, STARTED=1
	TrackingPaused   Tracking = "paused"   // tracker running, STARTED=0 (interface down)
	TrackingDown     Tracking = "down"     // no tracker running
	TrackingDisabled Tracking = "disabled" // the interface has no track_ip (decided by the daemon)
)

// Event is a tracker event for the daemon: the hotplug ACTION with the
// environment legacy passed to `hotplug-call iface` (spec §5.7).
// `connected` (unless FirstConnect) and `disconnected` are the verdicts
// that move the interface in or out of the policies (spec §6.3).
type Event struct {
	Interface    string
	Action       Action
	Device       string
	FirstConnect bool
	Time         time.Time // when the tracker decided
}

// Snapshot is the state of one tracker at the end of its last step.
type Snapshot struct {
	Interface string
	Tracking  Tracking
	Status    Status
	Device    string
	Source    netip.Addr
	Carrier   bool
	Score     int
	Lost      int
	Turn      int
	Online    int64 // uptime (s) it went online, 0 when not online (ONLINE file)
	Offline   int64 // uptime (s) it went offline, 0 when online (OFFLINE file)
	Time      int64 // uptime (s) at the end of the last round (TIME file)
	Targets   []TargetSnapshot
}

// TargetSnapshot is the last verdict and rolling quality of one target.
type TargetSnapshot struct {
	Target    string
	State     TargetState // last round; "" before the first
	Latency   int         // ms, last check_quality value (-1 when none)
	Loss      int         // percent, last check_quality value (-1 when none)
	LastError string      // why the last probe failed, if it did
	Quality   Quality
}

type cmdKind uint8

const (
	cmdIfUp cmdKind = iota
	cmdIfDown
	cmdIfUpdate
	cmdCarrier
	cmdReconfigure
)

type command struct {
	kind    cmdKind
	bind    Binding
	carrier bool
	params  Params // normalized
}

// roundRun is the round in flight.
type roundRun struct {
	prober Prober
	cancel context.CancelFunc
	done   chan struct{}
	params Params
	outs   []outcome
}

// tracker is the goroutine of one interface.
type tracker struct {
	name    string
	log     *slog.Logger
	mgr     *Manager
	files   *fileStore
	params  Params
	bind    Binding
	up      bool // netifd says the interface is up
	carrier bool
	prober  Prober
	m       *machine

	targets     []TargetSnapshot
	rings       []*qualityRing
	lastFileErr string

	mu    sync.Mutex // guards queue
	queue []command
	nudge chan struct{}
	stop  chan struct{}
	done  chan struct{}

	snap  atomic.Pointer[Snapshot]
	timer *time.Timer
	armed bool
	cur   *roundRun
	wg    sync.WaitGroup
	pool  *probePool // probe goroutines, created with the first round
}

// send queues a command; it never blocks.
func (t *tracker) send(c command) {
	t.mu.Lock()
	t.queue = append(t.queue, c)
	t.mu.Unlock()
	select {
	case t.nudge <- struct{}{}:
	default:
	}
}

func (t *tracker) take() []command {
	t.mu.Lock()
	defer t.mu.Unlock()
	q := t.queue
	t.queue = nil
	return q
}

func (t *tracker) now() int64 {
	return int64(t.mgr.uptime() / time.Second)
}

// file implements sink.
func (t *tracker) file(name, value string) {
	if err := t.files.write(name, value); err != nil {
		t.fileError(err)
	}
}

// event implements sink: the event goes to the daemon; only the tracker's
// stop abandons it.
func (t *tracker) event(a Action, first bool) {
	ev := Event{Interface: t.name, Action: a, Device: t.m.device, FirstConnect: first, Time: time.Now()}
	t.publish() // a Status call prompted by the event sees its state
	select {
	case t.mgr.events <- ev:
	case <-t.stop:
	}
}

func (t *tracker) run() {
	defer close(t.done)
	t.timer = time.NewTimer(time.Hour)
	t.timer.Stop()
	t.file(filePID, strconv.Itoa(os.Getpid()))
	t.m = newMachine(t.name, &t.params, t.log, t)
	t.applyParams()
	t.setBinding(t.bind)
	t.m.firstConnect(t.now(), t.bind.Device, t.up, t.carrier)
	t.publish()
	t.startRound()

	for {
		var timerC <-chan time.Time
		if t.armed {
			timerC = t.timer.C
		}
		var roundDone <-chan struct{}
		if t.cur != nil {
			roundDone = t.cur.done
		}
		select {
		case <-t.stop:
			t.abortRound(false)
			t.timer.Stop()
			t.log.Info("Stopping mwan3track for interface \"" + t.name + "\". Status was \"" + string(t.m.status) + "\"")
			t.wg.Wait()
			t.closePool()
			closeProber(t.prober)
			if err := t.files.removeAll(); err != nil {
				t.log.Warn("stop tracker", "err", err)
			}
			return
		case <-t.nudge:
			for _, c := range t.take() {
				t.handle(c)
			}
		case <-timerC:
			t.armed = false
			t.startRound()
		case <-roundDone:
			t.finishRound(true)
		}
	}
}

func (t *tracker) handle(c command) {
	switch c.kind {
	case cmdIfDown:
		t.log.Info("Detect ifdown event on interface " + t.name + " (" + t.m.device + ")")
		t.abortRound(true)
		t.disarm()
		t.up = false
		t.m.ifDown(t.now())
	case cmdIfUp:
		t.log.Info("Detect ifup event on interface " + t.name + " (" + t.m.device + ")")
		t.m.ifUpSignal()
		t.abortRound(true)
		t.disarm()
		t.up = true
		t.carrier = c.carrier
		t.setBinding(c.bind)
		t.m.firstConnect(t.now(), c.bind.Device, true, t.carrier)
		t.startRound()
	case cmdIfUpdate:
		t.carrier = c.carrier
		if c.bind != t.bind {
			t.log.Debug("interface updated", "device", c.bind.Device, "source", c.bind.Source)
			t.setBinding(c.bind)
			if t.up {
				t.m.device = c.bind.Device
			}
		}
		t.carrierChanged()
	case cmdCarrier:
		if c.carrier == t.carrier {
			return
		}
		t.carrier = c.carrier
		t.carrierChanged()
	case cmdReconfigure:
		t.abortRound(false)
		t.disarm()
		t.params = c.params
		t.m.reconfigure(&t.params)
		t.applyParams()
		t.setBinding(t.bind)
		t.startRound()
	}
	t.publish()
}

// carrierChanged reacts to the carrier state: offline at once when it is
// lost while tracking, a round at once when it comes back.
func (t *tracker) carrierChanged() {
	if !t.m.started {
		return
	}
	if !t.carrier {
		if t.cur == nil && !t.armed {
			return // already waiting for the carrier
		}
		t.log.Info("Interface " + t.name + " (" + t.m.device + ") lost its carrier")
		t.abortRound(false)
		t.disarm()
		t.m.carrierLost(t.now())
		return
	}
	if t.cur == nil && !t.armed {
		t.log.Info("Interface " + t.name + " (" + t.m.device + ") has its carrier back")
		t.startRound()
	}
}

// setBinding switches probes to a new device/source/mark (a new prober;
// the old one is closed, after the round in flight if it uses it).
func (t *tracker) setBinding(b Binding) {
	t.bind = b
	old := t.prober
	if b.Device == "" {
		t.prober = errProber{errors.New("interface has no device")}
	} else if pr, err := t.mgr.probers.NewProber(t.params, b); err != nil {
		t.log.Warn("cannot probe interface "+t.name, "device", b.Device, "err", err)
		t.prober = errProber{err}
	} else {
		t.prober = pr
	}
	if t.cur == nil || t.cur.prober != old {
		closeProber(old)
	}
}

// closeProber releases a prober's sockets.
func closeProber(p Prober) {
	if c, ok := p.(io.Closer); ok {
		_ = c.Close()
	}
}

// roundOver closes the round's prober if it was replaced meanwhile.
func (t *tracker) roundOver(r *roundRun) {
	if r.prober != t.prober {
		closeProber(r.prober)
	}
}

// applyParams resizes the per-target state for the current targets and
// removes the files of targets that left the configuration.
func (t *tracker) applyParams() {
	keep := make(map[string]int, len(t.targets))
	for i, ts := range t.targets {
		keep[ts.Target] = i
	}
	n := qualitySlots(&t.params)
	targets := make([]TargetSnapshot, len(t.params.Targets))
	rings := make([]*qualityRing, len(t.params.Targets))
	for i, name := range t.params.Targets {
		if j, ok := keep[name]; ok && len(t.rings[j].slots) == n {
			targets[i], rings[i] = t.targets[j], t.rings[j]
			delete(keep, name)
			continue
		}
		targets[i] = TargetSnapshot{Target: name, Latency: -1, Loss: -1}
		rings[i] = newQualityRing(n)
		delete(keep, name)
	}
	for name := range keep {
		for _, prefix := range []string{prefixTrack, prefixLatency, prefixLoss} {
			if err := t.files.remove(prefix + name); err != nil {
				t.fileError(err)
			}
		}
	}
	t.targets, t.rings = targets, rings
}

func (t *tracker) disarm() {
	t.timer.Stop()
	t.armed = false
}

func (t *tracker) arm(d time.Duration) {
	t.timer.Reset(d)
	t.armed = true
}

// startRound starts a round now if the tracker is active and has a
// carrier.
func (t *tracker) startRound() {
	if t.cur != nil || !t.m.started || !t.carrier || len(t.params.Targets) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &roundRun{cancel: cancel, done: make(chan struct{}), params: t.params}
	r.outs = make([]outcome, len(r.params.Targets))
	for i, name := range r.params.Targets {
		r.outs[i].target = name
	}
	pr := t.prober
	r.prober = pr
	t.cur = r
	if t.pool == nil {
		t.pool = newProbePool()
	}
	pool := t.pool
	t.wg.Go(func() {
		defer close(r.done)
		defer cancel()
		runRound(ctx, &r.params, pr, r.outs, pool)
	})
}

// closePool stops the probe goroutines; no round may be running.
func (t *tracker) closePool() {
	if t.pool != nil {
		t.pool.close()
		t.pool = nil
	}
}

// abortRound interrupts the round in flight. With evaluate (ifup/ifdown)
// its probes that were still running count as failed and the round is
// evaluated as legacy did; otherwise (carrier loss, reconfiguration, stop)
// it is dropped.
func (t *tracker) abortRound(evaluate bool) {
	if t.cur == nil {
		return
	}
	t.cur.cancel()
	<-t.cur.done
	if evaluate {
		t.finishRound(false)
		return
	}
	t.roundOver(t.cur)
	t.cur = nil
}

// finishRound evaluates the finished round; with schedule it arms the
// pause before the next one.
func (t *tracker) finishRound(schedule bool) {
	r := t.cur
	t.cur = nil
	t.roundOver(r)
	now := time.Now()
	for i := range r.outs {
		o := &r.outs[i]
		ts := &t.targets[i]
		ts.State = o.state
		if o.quality {
			ts.Latency, ts.Loss = o.latency, o.loss
		}
		if !o.ready || o.aborted || errors.Is(o.result.Err, context.Canceled) {
			continue
		}
		t.rings[i].add(now, o.result)
		ts.LastError = ""
		if o.result.Err != nil {
			ts.LastError = o.result.Err.Error()
			t.log.Debug("probe failed", "target", o.target, "err", o.result.Err)
		}
	}
	t.writeTrackOutput(r)
	pause := t.m.round(t.now(), r.outs)
	if schedule {
		// The pause counts from the end of the round, as legacy's sleep
		// after the round (spec §5.5 "Next pause", CONTRACT). Counting it
		// from the start would take 16 s off the defaults' detection
		// (4 × the 4 s of a failed round) but change that contract.
		t.arm(pause)
	}
	t.publish()
}

// writeTrackOutput writes TRACK_OUTPUT for the methods whose tool output
// legacy kept (ping/httping with check_quality, nping, nslookup): a
// summary of the last probed target in the tool's format, with our
// numbers.
func (t *tracker) writeTrackOutput(r *roundRun) {
	p := &r.params
	m := p.method()
	quality := p.CheckQuality && (m == MethodPing || m == MethodHTTPing)
	nping := strings.HasPrefix(string(m), "nping-")
	if !quality && !nping && m != MethodNslookup {
		return
	}
	var last *outcome
	for i := range r.outs {
		if r.outs[i].probed {
			last = &r.outs[i]
		}
	}
	if last == nil {
		return
	}
	res := last.result
	var text string
	switch {
	case m == MethodNslookup:
		text = "Server:\t\t" + last.target + "\nAddress:\t" + last.target + ":53"
	case nping:
		size := probeBytes(p)
		lost := res.Sent - min(res.Received, res.Sent)
		pct := 0.0
		if res.Sent > 0 {
			pct = 100 * float64(lost) / float64(res.Sent)
		}
		text = fmt.Sprintf("Raw packets sent: %d (%dB) | Rcvd: %d (%dB) | Lost: %d (%.2f%%)",
			res.Sent, res.Sent*size, res.Received, res.Received*size, lost, pct)
	default:
		text = fmt.Sprintf("--- %s ping statistics ---\n%d packets transmitted, %d received, %d%% packet loss",
			last.target, res.Sent, res.Received, res.LossPercent())
		if res.Received > 0 {
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
			mean := ms(res.Latency())
			mdev := math.Sqrt(max(res.rttSq/float64(res.Received)-mean*mean, 0))
			text += fmt.Sprintf("\nrtt min/avg/max/mdev = %.3f/%.3f/%.3f/%.3f ms", ms(res.rttMin), mean, ms(res.rttMax), mdev)
		}
	}
	t.file(fileTrackOutput, text)
}

// probeBytes is the size of one probe packet as nping counts it (IP
// header included; ARP without the Ethernet header).
func probeBytes(p *Params) int {
	ip := 20
	if p.Family == IPv6 {
		ip = 40
	}
	switch p.method() {
	case MethodNpingTCP:
		return ip + 20
	case MethodNpingUDP, MethodNpingICMP:
		return ip + 8
	default: // nping-arp
		return 28
	}
}

func (t *tracker) publish() {
	m := t.m
	s := &Snapshot{
		Interface: t.name,
		Tracking:  m.tracking(),
		Status:    m.fileStatus,
		Device:    t.bind.Device,
		Source:    t.bind.Source,
		Carrier:   t.carrier,
		Score:     m.score,
		Lost:      m.lost,
		Turn:      m.turn,
		Online:    m.onlineAt,
		Offline:   m.offlineAt,
		Time:      m.roundAt,
		Targets:   make([]TargetSnapshot, len(t.targets)),
	}
	now := time.Now()
	for i := range t.targets {
		s.Targets[i] = t.targets[i]
		s.Targets[i].Quality = t.rings[i].stats(now, t.params.QualityWindow)
	}
	t.snap.Store(s)
}

// errProber fails every probe with the reason the interface cannot be
// probed (as legacy's shim aborted the probe program).
type errProber struct{ err error }

func (e errProber) Probe(context.Context, string) Result {
	return Result{Err: e.err}
}
