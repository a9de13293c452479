package ubus_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/ubus"
	"github.com/mwan3d/mwan3d/ubus/ubustest"
)

// TestStressRestart runs many concurrent calls, events and notifications
// through the broker and restarts it in the middle. Every operation must
// either succeed or fail with a status that a restart explains; nothing may
// hang; everything works again afterwards; no goroutine outlives Close.
func TestStressRestart(t *testing.T) {
	before := runtime.NumGoroutine()
	b := ubustest.New(t)
	ctx := timeout(t)
	opts := []ubus.Option{ubus.WithBackoff(2*time.Millisecond, 20*time.Millisecond)}
	srv, err := ubus.Dial(ctx, b.Path(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	const clients = 4
	var conns []*ubus.Conn
	for range clients {
		c, err := ubus.Dial(ctx, b.Path(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	obj := &ubus.Object{Name: "stress", Methods: []ubus.Method{
		{Name: "echo", Handler: func(_ context.Context, r *ubus.Request) error { return r.Reply(r.Args) }},
		{Name: "later", Handler: func(_ context.Context, r *ubus.Request) error {
			r.Defer()
			go func() {
				r.Reply(r.Args)
				r.Complete(nil)
			}()
			return nil
		}},
	}}
	if err := srv.AddObject(ctx, obj); err != nil {
		t.Fatal(err)
	}
	var events, notes atomic.Int64
	for _, c := range conns {
		if _, err := c.Listen(ctx, "stress.*", func(string, ubus.Table) { events.Add(1) }); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Subscribe(ctx, "stress", func(string, ubus.Table) error { notes.Add(1); return nil }); err != nil {
			t.Fatal(err)
		}
	}

	// expected reports whether err is explained by the restart.
	expected := func(err error) bool {
		return errors.Is(err, ubus.StatusConnectionFailed) || errors.Is(err, ubus.StatusNotFound) ||
			errors.Is(err, ubus.StatusTimeout)
	}
	var restarted atomic.Bool
	var okAfter atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range conns {
		for g := range 8 {
			wg.Go(func() {
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
					method := "echo"
					if n%3 == 0 {
						method = "later"
					}
					args := ubus.Table{{"c", i}, {"g", g}, {"n", n}}
					got, err := c.Call(cctx, "stress", method, args)
					cancel()
					switch {
					case err == nil:
						if got.String() != args.String() {
							t.Errorf("answer %v to %v", got, args)
						}
						if restarted.Load() {
							okAfter.Add(1)
						}
					case !expected(err):
						t.Errorf("call: %v", err)
						return
					default:
						time.Sleep(time.Millisecond)
					}
				}
			})
		}
	}
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := srv.Send(ctx, "stress.tick", ubus.Table{{"t", 1}}); err != nil && !expected(err) {
				t.Errorf("send: %v", err)
			}
			if err := obj.Notify(ctx, "tick", nil, false); err != nil && !expected(err) {
				t.Errorf("notify: %v", err)
			}
			time.Sleep(time.Millisecond)
		}
	})

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for start := time.Now(); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Since(start) > 15*time.Second {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	waitFor("traffic", func() bool { return events.Load() > 50 && notes.Load() > 50 })
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	restarted.Store(true)
	e0, n0 := events.Load(), notes.Load()
	waitFor("calls after the restart", func() bool { return okAfter.Load() > 200 })
	waitFor("events after the restart", func() bool { return events.Load() > e0+50 })
	waitFor("notifications after the restart", func() bool { return notes.Load() > n0+50 })
	close(stop)
	wg.Wait()
	t.Logf("%d calls answered after the restart, %d events, %d notifications", okAfter.Load(), events.Load(), notes.Load())

	for _, c := range conns {
		c.Close()
	}
	srv.Close()
	b.Close()
	waitFor("goroutines to end", func() bool { return runtime.NumGoroutine() <= before+2 })
}
