package daemon

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// HookEvent is one interface transition delivered to legacy consumers.
type HookEvent struct {
	Action    string // ifup, ifdown, ifupdate, ifup-failed, connected, disconnected, connecting, disconnecting
	Interface string // the mwan3 interface name
	Device    string // the L3 device; empty for ifdown and shutdown events
	// FirstConnect marks the tracker's first "connected" after start or
	// ifup (FIRSTCONNECT=1 for hotplug scripts).
	FirstConnect bool
	// Shutdown marks the "disconnected" events sent while the service
	// stops (MWAN3_SHUTDOWN=1 in legacy).
	Shutdown bool
}

// trackerAction reports whether the action originates from a tracker; only
// those go through hotplug-call (netifd already ran the hotplug scripts for
// its own ifup/ifdown).
func trackerAction(a string) bool {
	switch a {
	case "connected", "disconnected", "connecting", "disconnecting":
		return true
	}
	return false
}

// DefaultHookTimeout bounds one hook run; a hook still running then is
// killed with its process group.
const DefaultHookTimeout = 30 * time.Second

// maxQueuedHooks bounds the events waiting per interface when hooks are
// slower than the interface flaps; the oldest are dropped beyond it.
const maxQueuedHooks = 256

// Hooks delivers interface events to /etc/mwan3.user and `hotplug-call
// iface`, off the daemon's loop: Deliver never blocks. Events of one
// interface run one after another in the order delivered; different
// interfaces run concurrently. A hook that fails or hangs is logged (and
// killed after Timeout); it never affects routing or later events.
//
// The user script runs for every event, the way legacy's
// /etc/hotplug.d/iface/16-mwan3-user ran it, but only after the daemon has
// applied the new state; hotplug-call runs for the tracker actions so that
// third-party hotplug scripts see them as before. Both get a clean
// environment: ACTION, INTERFACE, DEVICE (and FIRSTCONNECT for
// hotplug-call's "connected"), no PATH.
type Hooks struct {
	UserScript  string        // path of mwan3.user; skipped when missing
	HotplugCall string        // path of hotplug-call; skipped when empty or missing
	Timeout     time.Duration // per hook run; DefaultHookTimeout when 0
	Log         *slog.Logger

	mu     sync.Mutex
	queues map[string]*hookQueue
	busy   int        // queues with a drainer running
	idle   *sync.Cond // signalled when busy drops to 0
	closed bool
}

type hookQueue struct {
	pending []HookEvent
	running bool
}

// Deliver queues ev for its interface and returns at once.
func (h *Hooks) Deliver(ev HookEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	if h.queues == nil {
		h.queues = map[string]*hookQueue{}
	}
	q := h.queues[ev.Interface]
	if q == nil {
		q = &hookQueue{}
		h.queues[ev.Interface] = q
	}
	if len(q.pending) >= maxQueuedHooks {
		h.logger().Warn("hook queue full, dropping the oldest event", "interface", ev.Interface, "action", q.pending[0].Action)
		q.pending = q.pending[1:]
	}
	q.pending = append(q.pending, ev)
	if !q.running {
		q.running = true
		h.busy++
		go h.drain(q)
	}
}

func (h *Hooks) drain(q *hookQueue) {
	for {
		h.mu.Lock()
		if len(q.pending) == 0 {
			q.running = false
			h.busy--
			if h.busy == 0 && h.idle != nil {
				h.idle.Broadcast()
			}
			h.mu.Unlock()
			return
		}
		ev := q.pending[0]
		q.pending = q.pending[1:]
		h.mu.Unlock()
		h.run(ev)
	}
}

// Close stops accepting events and waits until the queued ones have run or
// ctx ends (their processes are then left to their own timeouts).
func (h *Hooks) Close(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	return h.Flush(ctx)
}

// Flush waits until every event delivered so far has run, or ctx ends.
func (h *Hooks) Flush(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		h.mu.Lock()
		if h.idle == nil {
			h.idle = sync.NewCond(&h.mu)
		}
		for h.busy > 0 {
			h.idle.Wait()
		}
		h.mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (h *Hooks) logger() *slog.Logger {
	if h.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Log
}

func (h *Hooks) run(ev HookEvent) {
	env := []string{"ACTION=" + ev.Action, "INTERFACE=" + ev.Interface, "DEVICE=" + ev.Device}
	if h.HotplugCall != "" && trackerAction(ev.Action) && exists(h.HotplugCall) {
		henv := env
		if ev.Action == "connected" {
			first := ""
			if ev.FirstConnect {
				first = "1"
			}
			henv = append(henv[:len(henv):len(henv)], "FIRSTCONNECT="+first)
		}
		if ev.Shutdown {
			henv = append(henv[:len(henv):len(henv)], "MWAN3_SHUTDOWN=1")
		}
		h.exec(ev, henv, h.HotplugCall, "iface")
	}
	if h.UserScript != "" && exists(h.UserScript) {
		h.exec(ev, env, "/bin/sh", h.UserScript)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// exec runs one hook in its own process group with a clean environment,
// killing the whole group when it outlives the timeout.
func (h *Hooks) exec(ev HookEvent, env []string, name string, args ...string) {
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultHookTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	log := h.logger().With("hook", name, "interface", ev.Interface, "action", ev.Action)
	start := time.Now()
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		log.Warn("hook timed out and was killed", "timeout", timeout)
	case errors.As(err, &exitErr):
		log.Warn("hook failed", "status", exitErr.ExitCode())
	case err != nil:
		log.Warn("hook could not run", "err", err)
	default:
		log.Debug("hook ran", "took", time.Since(start))
	}
}
