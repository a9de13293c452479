package ubus_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/ubus"
	"github.com/mwan3d/mwan3d/ubus/ubustest"
)

// fakeBus accepts connections, greets each with a HELLO and hands it to
// serve. It returns the socket path and a counter of accepted connections.
func fakeBus(t *testing.T, serve func(net.Conn)) (string, *atomic.Int32) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ubus.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Write([]byte{0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78, 0, 0, 0, 4})
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return path, &n
}

// readRequest reads one frame and returns its header bytes.
func readRequest(c net.Conn) ([]byte, error) {
	hdr := make([]byte, 12)
	if _, err := io.ReadFull(c, hdr); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[8:])-4)
	_, err := io.ReadFull(c, body)
	return hdr, err
}

// TestGarbageFromBus: a bus that answers with broken frames ends the
// session; the pending call fails at once, and the Conn reconnects.
func TestGarbageFromBus(t *testing.T) {
	for name, answer := range map[string][]byte{
		"body-length-below-4": {0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2},
		"body-over-1MiB":      {0, 1, 0, 1, 0, 0, 0, 0, 0, 0x10, 0, 0x08},
		"version-1":           {1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 12, 1, 0, 0, 8, 0, 0, 0, 0},
		"truncated":           {0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 12, 1, 0},
	} {
		t.Run(name, func(t *testing.T) {
			path, accepted := fakeBus(t, func(c net.Conn) {
				if _, err := readRequest(c); err != nil {
					return
				}
				c.Write(answer)
				if name == "truncated" {
					return // close with half a frame sent
				}
				io.Copy(io.Discard, c)
			})
			c, err := ubus.Dial(t.Context(), path, ubus.WithBackoff(time.Millisecond, 10*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = c.Lookup(timeout(t), "x")
			if !errors.Is(err, ubus.StatusConnectionFailed) {
				t.Errorf("lookup: %v", err)
			}
			for accepted.Load() < 2 {
				time.Sleep(time.Millisecond)
			}
		})
	}
}

// TestStalledBus: a bus that stops reading cannot make a caller hang.
func TestStalledBus(t *testing.T) {
	stop := make(chan struct{})
	path, _ := fakeBus(t, func(net.Conn) { <-stop })
	defer close(stop)
	c, err := ubus.Dial(t.Context(), path, ubus.WithoutReconnect())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	big := ubus.Table{{"s", strings.Repeat("x", 900<<10)}}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	for {
		_, err := c.Invoke(ctx, 0x1234, "m", big)
		if err == nil {
			t.Fatal("call answered by a bus that does not read")
		}
		if errors.Is(err, ubus.StatusTimeout) || errors.Is(err, ubus.StatusConnectionFailed) {
			break
		}
		t.Fatal(err)
	}
}

func TestOversizedMessages(t *testing.T) {
	b := ubustest.New(t)
	srv := dial(t, b)
	cli := dial(t, b)
	ctx := timeout(t)
	huge := strings.Repeat("x", 1<<20)
	obj := &ubus.Object{Name: "big", Methods: []ubus.Method{
		{Name: "reply", Handler: func(_ context.Context, r *ubus.Request) error {
			if err := r.Reply(ubus.Table{{"s", huge}}); !errors.Is(err, ubus.ErrTooLarge) {
				t.Errorf("oversized reply: %v", err)
			}
			return r.Reply(ubus.Table{{"ok", true}})
		}},
	}}
	if err := srv.AddObject(ctx, obj); err != nil {
		t.Fatal(err)
	}
	_, err := cli.Call(ctx, "big", "reply", ubus.Table{{"s", huge}})
	if !errors.Is(err, ubus.StatusInvalidArgument) || !errors.Is(err, ubus.ErrTooLarge) {
		t.Errorf("oversized request: %v", err)
	}
	if got, err := cli.Call(ctx, "big", "reply", nil); err != nil || got.String() != `{"ok":true}` {
		t.Errorf("after oversized messages: %v %v", got, err)
	}
	// A request just under the limit, as in the raw-malformed recording.
	if _, err := cli.Call(ctx, "big", "reply", ubus.Table{{"s", strings.Repeat("x", 1<<20-100)}}); err != nil {
		t.Errorf("request near the limit: %v", err)
	}
}

// TestServerDiesMidCall: ubusd never answers for a dead object owner; the
// caller's deadline ends the call.
func TestServerDiesMidCall(t *testing.T) {
	b := ubustest.New(t)
	srv := dial(t, b, ubus.WithoutReconnect())
	cli := dial(t, b)
	ctx := timeout(t)
	called := make(chan struct{})
	release := make(chan struct{})
	obj := &ubus.Object{Name: "dying", Methods: []ubus.Method{{Name: "m", Handler: func(context.Context, *ubus.Request) error {
		close(called)
		<-release // the process "dies" before answering
		return nil
	}}}}
	if err := srv.AddObject(ctx, obj); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		<-called
		srv.Close() // closes the socket, then waits for the handler
	}()
	defer func() {
		close(release)
		<-closed
	}()
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err := cli.Call(short, "dying", "m", nil)
	if !errors.Is(err, ubus.StatusTimeout) {
		t.Errorf("call to a dead server: %v", err)
	}
}

// TestSlowHandlersDoNotBlockReader: a blocked event handler and blocked
// method handlers do not stop the Conn from reading answers.
func TestSlowHandlersDoNotBlockReader(t *testing.T) {
	b := ubustest.New(t)
	a := dial(t, b)
	c := dial(t, b)
	ctx := timeout(t)
	release := make(chan struct{})
	defer close(release)
	if _, err := c.Listen(ctx, "*", func(string, ubus.Table) { <-release }); err != nil {
		t.Fatal(err)
	}
	refsrv(t, a, "refsrv")
	for range 3000 { // more than the listener's queue holds
		if err := a.Send(ctx, "flood", ubus.Table{{"x", 1}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Call(ctx, "refsrv", "echo", nil); err != nil {
		t.Errorf("call while a handler is blocked: %v", err)
	}
}
