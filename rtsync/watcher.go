package rtsync

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// errSubscriptionLost is returned by a source whose kernel subscription
// ended on its own (typically ENOBUFS: notifications were dropped).
var errSubscriptionLost = errors.New("subscription lost")

// sink receives what a source observes. All calls come from the goroutine
// running source.watch and must not block for long.
type sink interface {
	// subscribed is called once the subscriptions are live.
	subscribed()
	// changed reports that something (route, address, link) changed.
	changed()
	// link reports a link update.
	link(LinkChange)
	// subscriptionError reports an error of a live subscription.
	subscriptionError(error)
}

// source is where kernel notifications come from: rtnetlink for
// [NetlinkKernel], a fake in tests.
type source interface {
	// watch subscribes and forwards notifications to s until done is closed
	// (returns nil) or the subscription is lost (returns an error). Every
	// goroutine it started has exited when it returns.
	watch(done <-chan struct{}, s sink) error
}

// WatcherConfig configures a [Watcher]. Zero values select the defaults.
type WatcherConfig struct {
	// Debounce is how long the watcher waits after the first notification
	// of a burst before it re-lists the kernel and reconciles; notifications
	// in between are coalesced. The delay is counted from the first
	// notification, so a continuous storm cannot postpone a reconcile
	// forever. Default 100ms. Input changes ([Watcher.SetInput]) are applied
	// without this delay.
	Debounce time.Duration
	// Retry is the delay before a failed reconcile or a failed subscription
	// is retried. Default 2s.
	Retry time.Duration
	// Logger receives the watcher's messages; nil discards them.
	Logger *slog.Logger
}

const (
	defaultDebounce = 100 * time.Millisecond
	defaultRetry    = 2 * time.Second
	linkChangesLen  = 64
)

// Watcher keeps the kernel's policy routing in sync with the latest input:
// it reconciles when the input changes and, debounced, whenever rtnetlink
// reports a route, address or link change. Reconciles always re-list the
// kernel; the notifications' contents are never used to patch state. When
// a subscription is lost (ENOBUFS under a storm) the watcher subscribes
// again and does a full resync.
//
// Carrier changes are reported on [Watcher.LinkChanges] as soon as they are
// seen, and the result of every reconcile on [Watcher.Results].
type Watcher struct {
	k      Kernel
	src    source
	syncer *Syncer
	cfg    WatcherConfig
	log    *slog.Logger

	mu      sync.Mutex
	input   *Input
	urgent  bool
	running bool
	cancel  context.CancelFunc
	stopped chan struct{}

	kick    chan struct{}   // size 1: "something may have changed"
	results chan Result     // size 1: the latest result
	links   chan LinkChange // carrier changes for the daemon
	queue   linkQueue
}

func newWatcher(k Kernel, src source, cfg WatcherConfig) *Watcher {
	if cfg.Debounce <= 0 {
		cfg.Debounce = defaultDebounce
	}
	if cfg.Retry <= 0 {
		cfg.Retry = defaultRetry
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "rtsync")
	return &Watcher{
		k:       k,
		src:     src,
		syncer:  NewSyncer(k, log),
		cfg:     cfg,
		log:     log,
		kick:    make(chan struct{}, 1),
		results: make(chan Result, 1),
		links:   make(chan LinkChange, linkChangesLen),
		queue:   linkQueue{pending: make(map[int]LinkChange), wake: make(chan struct{}, 1)},
	}
}

// SetInput hands the watcher a new input; it is reconciled right away (no
// debounce). The watcher keeps its own copy. Nothing is reconciled before
// the first SetInput.
func (w *Watcher) SetInput(in Input) {
	in.TableLookup = slices.Clone(in.TableLookup)
	in.Interfaces = slices.Clone(in.Interfaces)
	w.mu.Lock()
	w.input = &in
	w.urgent = true
	w.mu.Unlock()
	w.nudge()
}

// Results delivers the result of every reconcile. Only the latest
// undelivered result is kept, so a slow reader never blocks the watcher.
func (w *Watcher) Results() <-chan Result { return w.results }

// LinkChanges delivers link state changes (carrier, administrative state,
// new and deleted devices) as soon as rtnetlink reports them; at start and
// after every resubscription the current state of every changed link is
// sent. Changes of one link that the reader has not yet received are
// coalesced into its latest state, so a slow reader never blocks the
// watcher.
func (w *Watcher) LinkChanges() <-chan LinkChange { return w.links }

// Run subscribes and reconciles until ctx is cancelled or Close is called.
// Every goroutine it started has exited when it returns.
func (w *Watcher) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.running {
		w.mu.Unlock()
		return errors.New("rtsync: watcher already running")
	}
	ctx, cancel := context.WithCancel(ctx)
	w.running, w.cancel, w.stopped = true, cancel, make(chan struct{})
	stopped := w.stopped
	w.mu.Unlock()
	defer func() {
		cancel()
		w.mu.Lock()
		w.running = false
		w.mu.Unlock()
		close(stopped)
	}()

	var wg sync.WaitGroup
	wg.Go(func() { w.pump(ctx) })
	wg.Go(func() { w.queue.deliver(ctx, w.links) })
	w.loop(ctx)
	wg.Wait()
	return nil
}

// Close stops a running Run and waits until it has returned.
func (w *Watcher) Close() error {
	w.mu.Lock()
	cancel, stopped := w.cancel, w.stopped
	w.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	<-stopped
	return nil
}

// Cleanup removes every rule and table entry of ours (see
// [Syncer.Cleanup]) using the last input. Call it after Run has returned.
func (w *Watcher) Cleanup() error {
	w.mu.Lock()
	running, in := w.running, w.input
	w.mu.Unlock()
	if running {
		return errors.New("rtsync: cleanup while the watcher runs")
	}
	if in == nil {
		return errors.New("rtsync: cleanup without input")
	}
	return w.syncer.Cleanup(*in)
}

func (w *Watcher) nudge() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// loop is the reconcile loop: a nudge arms the debounce timer (or fires it
// at once for input changes); the timer runs one reconcile.
func (w *Watcher) loop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	armed := false
	lastErr := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
			w.mu.Lock()
			urgent := w.urgent
			w.urgent = false
			w.mu.Unlock()
			switch {
			case urgent:
				timer.Reset(0)
				armed = true
			case !armed:
				timer.Reset(w.cfg.Debounce)
				armed = true
			}
		case <-timer.C:
			armed = false
			w.mu.Lock()
			in := w.input
			w.mu.Unlock()
			if in == nil {
				continue
			}
			res, err := w.syncer.Reconcile(*in)
			w.publish(res)
			switch {
			case err != nil:
				if err.Error() != lastErr {
					w.log.Warn("route sync failed; will retry", "err", err, "retry", w.cfg.Retry)
				}
				lastErr = err.Error()
				timer.Reset(w.cfg.Retry)
				armed = true
			case lastErr != "":
				w.log.Info("route sync recovered")
				lastErr = ""
			}
			if res.Changes > 0 {
				w.log.Debug("route sync applied", "changes", res.Changes)
			}
		}
	}
}

// publish offers res on the results channel, replacing an unread one.
func (w *Watcher) publish(res Result) {
	select {
	case w.results <- res:
		return
	default:
	}
	select {
	case <-w.results:
	default:
	}
	select {
	case w.results <- res:
	default:
	}
}

// pump keeps a subscription alive: when one is lost it subscribes again;
// the new subscription's start triggers the full resync.
func (w *Watcher) pump(ctx context.Context) {
	p := &pumpSink{w: w, known: make(map[int]Link)}
	for {
		p.live = false
		err := w.src.watch(ctx.Done(), p)
		if ctx.Err() != nil {
			return
		}
		delay := time.Duration(0)
		if !p.live {
			delay = w.cfg.Retry // subscribing itself failed
		}
		w.log.Warn("rtnetlink subscription ended; resubscribing and resyncing", "err", err, "delay", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// pumpSink is the sink of the pump goroutine; it owns the known link states.
type pumpSink struct {
	w     *Watcher
	known map[int]Link
	live  bool
}

func (p *pumpSink) subscribed() {
	p.live = true
	links, err := p.w.k.Links()
	if err != nil {
		p.w.log.Warn("list links after subscribing", "err", err)
	} else {
		seen := make(map[int]bool, len(links))
		for _, l := range links {
			seen[l.Index] = true
			p.link(LinkChange{Link: l})
		}
		for idx, l := range p.known {
			if !seen[idx] {
				p.link(LinkChange{Link: l, Deleted: true})
			}
		}
	}
	p.w.nudge()
}

func (p *pumpSink) changed() { p.w.nudge() }

func (p *pumpSink) link(c LinkChange) {
	old, ok := p.known[c.Index]
	switch {
	case c.Deleted && !ok:
		return
	case c.Deleted:
		delete(p.known, c.Index)
		c.Link = old
		c.Up, c.Carrier = false, false
	case ok && old == c.Link:
		return
	default:
		p.known[c.Index] = c.Link
	}
	p.w.queue.push(c)
}

func (p *pumpSink) subscriptionError(err error) {
	p.w.log.Debug("rtnetlink subscription error", "err", err)
}

// linkQueue holds the link changes not yet delivered, one per link.
type linkQueue struct {
	mu      sync.Mutex
	pending map[int]LinkChange
	order   []int
	wake    chan struct{}
}

func (q *linkQueue) push(c LinkChange) {
	q.mu.Lock()
	if _, queued := q.pending[c.Index]; !queued {
		q.order = append(q.order, c.Index)
	}
	q.pending[c.Index] = c
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *linkQueue) pop() (LinkChange, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.order) == 0 {
		return LinkChange{}, false
	}
	idx := q.order[0]
	q.order = q.order[1:]
	c := q.pending[idx]
	delete(q.pending, idx)
	return c, true
}

// deliver sends queued changes to out until ctx is done.
func (q *linkQueue) deliver(ctx context.Context, out chan<- LinkChange) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		}
		for c, ok := q.pop(); ok; c, ok = q.pop() {
			select {
			case out <- c:
			case <-ctx.Done():
				return
			}
		}
	}
}
