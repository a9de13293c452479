package rtsync

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeSource is a source driven by the test. Each subscription gets a new
// channel; closing it simulates a subscription lost to ENOBUFS.
type fakeSource struct {
	mu   sync.Mutex
	subs int
	cur  chan *LinkChange // nil element: a route change
	fail int              // subscriptions to refuse
}

func (s *fakeSource) watch(done <-chan struct{}, sk sink) error {
	s.mu.Lock()
	if s.fail > 0 {
		s.fail--
		s.mu.Unlock()
		return errors.New("subscribe: permission denied")
	}
	ch := make(chan *LinkChange)
	s.cur = ch
	s.subs++
	s.mu.Unlock()
	sk.subscribed()
	for {
		select {
		case <-done:
			return nil
		case c, ok := <-ch:
			if !ok {
				return errSubscriptionLost
			}
			if c != nil {
				sk.link(*c)
			}
			sk.changed()
		}
	}
}

func (s *fakeSource) send(c *LinkChange) {
	s.mu.Lock()
	ch := s.cur
	s.mu.Unlock()
	ch <- c
}

func (s *fakeSource) lose() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.cur)
}

func (s *fakeSource) subscriptions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subs
}

// countingKernel counts reconciles (one IPv4 rule dump each).
type countingKernel struct {
	*fakeKernel
	mu         sync.Mutex
	reconciles int
}

func (k *countingKernel) Rules(f Family) ([]Rule, error) {
	if f == IPv4 {
		k.mu.Lock()
		k.reconciles++
		k.mu.Unlock()
	}
	return k.fakeKernel.Rules(f)
}

func (k *countingKernel) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.reconciles
}

type watcherRig struct {
	k   *countingKernel
	src *fakeSource
	w   *Watcher
	in  Input
}

func newRig(t *testing.T) *watcherRig {
	s := kernelStates()[1]
	k := &countingKernel{fakeKernel: newFake(t, s)}
	src := &fakeSource{}
	w := newWatcher(k, src, WatcherConfig{
		Debounce: 100 * time.Millisecond,
		Retry:    time.Second,
		Logger:   slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	return &watcherRig{k: k, src: src, w: w, in: s.in}
}

// start runs the watcher in the bubble; the returned func stops it and
// checks Run's result.
func (r *watcherRig) start(t *testing.T) func() {
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- r.w.Run(ctx) }()
	return func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

// drainLinks returns the link changes delivered so far.
func (r *watcherRig) drainLinks() []LinkChange {
	var out []LinkChange
	for {
		select {
		case c := <-r.w.LinkChanges():
			out = append(out, c)
		default:
			return out
		}
	}
}

func TestWatcherDebouncesAndRelists(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		r.w.SetInput(r.in)
		stop := r.start(t)
		defer stop()
		synctest.Wait()
		// The input is applied at once; the subscription's resync follows
		// after the debounce.
		if n := r.k.count(); n != 1 {
			t.Fatalf("%d reconciles right after SetInput, want 1", n)
		}
		time.Sleep(150 * time.Millisecond)
		synctest.Wait()
		base := r.k.count()
		if !strings.Contains(r.k.dump(), "ipv4 table 1: default via 203.0.113.1") {
			t.Fatalf("table 1 not filled:\n%s", r.k.dump())
		}

		// A burst of route changes: the kernel gains a LAN route, then 50
		// notifications arrive 1ms apart. One reconcile, 100ms after the
		// first notification, re-lists and copies the route.
		r.k.fakeKernel.mu.Lock()
		r.k.routes = append(r.k.routes, lab.route(t, IPv4, tableMain, "10.42.0.0/16 dev br-lan proto static scope link"))
		r.k.fakeKernel.mu.Unlock()
		start := time.Now()
		for range 50 {
			r.src.send(nil)
			time.Sleep(time.Millisecond)
		}
		synctest.Wait()
		if n := r.k.count(); n != base {
			t.Fatalf("reconciled during the burst (%d → %d)", base, n)
		}
		time.Sleep(100*time.Millisecond - time.Since(start))
		synctest.Wait()
		if n := r.k.count(); n != base+1 {
			t.Fatalf("%d reconciles after the burst, want 1", n-base)
		}
		if !strings.Contains(r.k.dump(), "ipv4 table 3: 10.42.0.0/16 dev br-lan") {
			t.Errorf("new main route not copied:\n%s", r.k.dump())
		}
		res := <-r.w.Results()
		if res.Err != nil || !strings.Contains(res.State.String(), "10.42.0.0/16") {
			t.Errorf("latest result: err %v\n%s", res.Err, res.State)
		}
		// Quiet afterwards.
		time.Sleep(time.Second)
		synctest.Wait()
		if n := r.k.count(); n != base+1 {
			t.Errorf("%d reconciles without notifications", n-base-1)
		}
	})
}

func TestWatcherWaitsForInput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		stop := r.start(t)
		defer stop()
		synctest.Wait()
		r.src.send(nil)
		time.Sleep(time.Second)
		synctest.Wait()
		if n := r.k.count(); n != 0 {
			t.Errorf("%d reconciles without input", n)
		}
		r.w.SetInput(r.in)
		synctest.Wait()
		if n := r.k.count(); n != 1 {
			t.Errorf("%d reconciles after SetInput, want 1", n)
		}
	})
}

func TestWatcherResubscribesAndResyncs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		r.w.SetInput(r.in)
		stop := r.start(t)
		defer stop()
		time.Sleep(time.Second)
		synctest.Wait()
		base := r.k.count()
		// Someone deletes a route of ours while notifications are lost.
		r.k.fakeKernel.mu.Lock()
		for i, rt := range r.k.routes {
			if rt.Table == 1 && rt.IsDefault() {
				r.k.routes = append(r.k.routes[:i], r.k.routes[i+1:]...)
				break
			}
		}
		r.k.fakeKernel.mu.Unlock()
		r.src.lose()
		time.Sleep(time.Second)
		synctest.Wait()
		if n := r.src.subscriptions(); n != 2 {
			t.Fatalf("%d subscriptions, want 2", n)
		}
		if n := r.k.count(); n != base+1 {
			t.Errorf("%d reconciles after resubscribing, want 1", n-base)
		}
		if !strings.Contains(r.k.dump(), "ipv4 table 1: default via 203.0.113.1") {
			t.Errorf("full resync did not restore the default route:\n%s", r.k.dump())
		}
	})
}

func TestWatcherRetriesFailedSubscription(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		r.src.fail = 2
		r.w.SetInput(r.in)
		stop := r.start(t)
		defer stop()
		synctest.Wait()
		if n := r.src.subscriptions(); n != 0 {
			t.Fatalf("%d subscriptions before the retry delay", n)
		}
		time.Sleep(2500 * time.Millisecond)
		synctest.Wait()
		if n := r.src.subscriptions(); n != 1 {
			t.Fatalf("%d subscriptions after two failures and their delays, want 1", n)
		}
	})
}

func TestWatcherRetriesFailedReconcile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		var mu sync.Mutex
		failing := true
		r.k.fail = func(op string, v any) error {
			mu.Lock()
			defer mu.Unlock()
			if failing && op == "AddRule" {
				return errors.New("EPERM")
			}
			return nil
		}
		r.w.SetInput(r.in)
		stop := r.start(t)
		defer stop()
		synctest.Wait()
		res := <-r.w.Results()
		if res.Err == nil || !strings.Contains(res.Err.Error(), "EPERM") {
			t.Fatalf("result error %v, want EPERM", res.Err)
		}
		mu.Lock()
		failing = false
		mu.Unlock()
		time.Sleep(1100 * time.Millisecond)
		synctest.Wait()
		res = <-r.w.Results()
		if res.Err != nil {
			t.Fatalf("after the retry: %v", res.Err)
		}
		if !strings.Contains(r.k.dump(), "2001:\tfrom all fwmark 0x100/0x3f00 lookup 1") {
			t.Errorf("rules missing after the retry:\n%s", r.k.dump())
		}
	})
}

func TestWatcherLinkChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		r.w.SetInput(r.in)
		stop := r.start(t)
		defer stop()
		synctest.Wait()
		initial := r.drainLinks()
		if len(initial) != len(lab) {
			t.Fatalf("%d initial link states, want %d", len(initial), len(lab))
		}
		// A carrier loss is delivered at once (no time passes).
		down := LinkChange{Link: Link{Index: 3, Name: "eth1", Up: true, Carrier: false}}
		r.src.send(&down)
		synctest.Wait()
		if got := r.drainLinks(); len(got) != 1 || got[0] != down {
			t.Fatalf("link changes %+v, want [%+v]", got, down)
		}
		// Updates that change nothing we report are not repeated.
		r.src.send(&down)
		synctest.Wait()
		if got := r.drainLinks(); len(got) != 0 {
			t.Errorf("repeated state delivered: %+v", got)
		}
		// A reader that does not keep up gets the latest state per link.
		for _, carrier := range []bool{true, false, true} {
			c := LinkChange{Link: Link{Index: 4, Name: "eth2", Up: true, Carrier: carrier}}
			r.src.send(&c)
		}
		synctest.Wait()
		got := r.drainLinks()
		if len(got) == 0 || !got[len(got)-1].Carrier || got[len(got)-1].Index != 4 {
			t.Errorf("coalesced changes %+v, want eth2 with carrier last", got)
		}
		// A device that vanished while the subscription was lost is
		// reported deleted after the resubscription.
		r.k.fakeKernel.mu.Lock()
		r.k.links = r.k.links[:len(r.k.links)-1] // eth3
		r.k.fakeKernel.mu.Unlock()
		r.src.lose()
		synctest.Wait()
		got = r.drainLinks()
		var deleted []LinkChange
		for _, c := range got {
			if c.Deleted {
				deleted = append(deleted, c)
			}
		}
		if len(deleted) != 1 || deleted[0].Name != "eth3" || deleted[0].Carrier {
			t.Errorf("changes after resubscribing %+v, want eth3 deleted", got)
		}
	})
}

func TestWatcherCloseAndCleanup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		if err := r.w.Close(); err != nil {
			t.Fatalf("Close before Run: %v", err)
		}
		if err := r.w.Cleanup(); err == nil {
			t.Error("Cleanup without input succeeded")
		}
		r.w.SetInput(r.in)
		errc := make(chan error, 1)
		go func() { errc <- r.w.Run(context.Background()) }()
		synctest.Wait()
		if err := r.w.Run(context.Background()); err == nil {
			t.Error("second concurrent Run succeeded")
		}
		if err := r.w.Cleanup(); err == nil {
			t.Error("Cleanup while running succeeded")
		}
		if err := r.w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if err := r.w.Cleanup(); err != nil {
			t.Fatal(err)
		}
		pristine := newFake(t, kernelStates()[1])
		if got, want := r.k.dump(), pristine.dump(); got != want {
			t.Errorf("cleanup left state behind:\n%s", lineDiff(want, got))
		}
		// synctest.Test fails if any goroutine of the bubble is left.
	})
}
