package ubus_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/ubus"
	"github.com/mwan3d/mwan3d/ubus/ubustest"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func dial(t *testing.T, b *ubustest.Broker, opts ...ubus.Option) *ubus.Conn {
	t.Helper()
	opts = append([]ubus.Option{ubus.WithLogger(testLogger(t)), ubus.WithBackoff(5*time.Millisecond, 50*time.Millisecond)}, opts...)
	c, err := ubus.Dial(t.Context(), b.Path(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func timeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// refsrv publishes an object like the recordings' reference server.
func refsrv(t *testing.T, c *ubus.Conn, name string) *ubus.Object {
	t.Helper()
	obj := &ubus.Object{Name: name, Methods: []ubus.Method{
		{Name: "echo", Handler: func(_ context.Context, r *ubus.Request) error { return r.Reply(r.Args) }},
		{Name: "fail", Policy: []ubus.Arg{{Name: "code", Type: ubus.TypeInt32, Required: true}},
			Handler: func(_ context.Context, r *ubus.Request) error {
				code, _ := r.Args.GetInt("code")
				return ubus.Status(code)
			}},
		{Name: "multi", Handler: func(_ context.Context, r *ubus.Request) error {
			if err := r.Reply(ubus.Table{{"part", 1}}); err != nil {
				return err
			}
			return r.Reply(ubus.Table{{"part", 2}})
		}},
		{Name: "empty", Handler: func(_ context.Context, r *ubus.Request) error { return r.Reply(nil) }},
		{Name: "nodata", Handler: func(context.Context, *ubus.Request) error { return nil }},
		{Name: "deferred", Policy: []ubus.Arg{{Name: "delay_ms", Type: ubus.TypeInt32}},
			Handler: func(_ context.Context, r *ubus.Request) error {
				ms, _ := r.Args.GetInt("delay_ms")
				r.Defer()
				time.AfterFunc(time.Duration(ms)*time.Millisecond, func() {
					r.Reply(ubus.Table{{"deferred", true}})
					r.Complete(nil)
				})
				return errors.New("ignored: deferred")
			}},
		{Name: "hang", Handler: func(ctx context.Context, r *ubus.Request) error {
			r.Defer()
			return nil
		}},
		{Name: "whoami", Handler: func(_ context.Context, r *ubus.Request) error {
			return r.Reply(ubus.Table{{"user", r.User}, {"group", r.Group}})
		}},
	}}
	if err := c.AddObject(timeout(t), obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

func TestCalls(t *testing.T) {
	b := ubustest.New(t)
	srv := dial(t, b)
	cli := dial(t, b)
	obj := refsrv(t, srv, "refsrv")
	refsrv(t, srv, "refsrv.b")
	ctx := timeout(t)

	objs, err := cli.Lookup(ctx, "")
	if err != nil || len(objs) != 2 || objs[0].Path != "refsrv" || objs[0].ID != obj.ID() {
		t.Fatalf("Lookup all: %+v %v", objs, err)
	}
	if fail, _ := objs[0].Signature.GetTable("fail"); fail.String() != `{"code":5}` {
		t.Errorf("signature of fail: %v", fail)
	}
	if objs, err := cli.Lookup(ctx, "refsrv.*"); err != nil || len(objs) != 1 {
		t.Errorf("Lookup refsrv.*: %+v %v", objs, err)
	}
	if _, err := cli.Lookup(ctx, "nope"); !errors.Is(err, ubus.StatusNotFound) {
		t.Errorf("Lookup nope: %v", err)
	}

	args := ubus.Table{{"s", "x"}, {"n", int64(3000000000)}, {"b", true}, {"d", 1.5}, {"a", []any{1, nil}}}
	got, err := cli.Call(ctx, "refsrv", "echo", args)
	if err != nil || got.String() != `{"s":"x","n":3000000000,"b":true,"d":1.500000,"a":[1,null]}` {
		t.Errorf("echo: %v %v", got, err)
	}
	tables, err := cli.Invoke(ctx, obj.ID(), "multi", nil)
	if err != nil || len(tables) != 2 || tables[1].String() != `{"part":2}` {
		t.Errorf("multi: %v %v", tables, err)
	}
	if merged, err := cli.Call(ctx, "refsrv", "multi", nil); err != nil || merged.String() != `{"part":1,"part":2}` {
		t.Errorf("multi merged: %v %v", merged, err)
	}
	if tables, err := cli.Invoke(ctx, obj.ID(), "empty", nil); err != nil || len(tables) != 1 || len(tables[0]) != 0 {
		t.Errorf("empty: %v %v", tables, err)
	}
	if tables, err := cli.Invoke(ctx, obj.ID(), "nodata", nil); err != nil || len(tables) != 0 {
		t.Errorf("nodata: %v %v", tables, err)
	}
	if got, err := cli.Call(ctx, "refsrv", "deferred", ubus.Table{{"delay_ms", 20}}); err != nil || got.String() != `{"deferred":true}` {
		t.Errorf("deferred: %v %v", got, err)
	}
	if got, err := cli.Call(ctx, "refsrv", "whoami", nil); err != nil || got.String() == `{"user":"","group":""}` {
		t.Errorf("whoami: %v %v", got, err)
	}

	for _, tc := range []struct {
		method string
		args   any
		want   ubus.Status
	}{
		{"fail", ubus.Table{{"code", 8}}, ubus.StatusNotSupported},
		{"fail", ubus.Table{{"code", 99}}, ubus.Status(99)},
		{"fail", ubus.Table{{"code", "2"}}, ubus.StatusInvalidArgument}, // policy type mismatch
		{"fail", nil, ubus.StatusInvalidArgument},                       // required argument missing
		{"fail", ubus.Table{{"code", int8(4)}}, ubus.StatusNotFound},    // any integer width
		{"nosuch", nil, ubus.StatusMethodNotFound},
	} {
		_, err := cli.Call(ctx, "refsrv", tc.method, tc.args)
		var se *ubus.StatusError
		if !errors.As(err, &se) || se.Status != tc.want || !errors.Is(err, tc.want) {
			t.Errorf("%s %v: %v, want %v", tc.method, tc.args, err, tc.want)
		}
	}
	if _, err := cli.Invoke(ctx, 0x0badc0de, "echo", nil); !errors.Is(err, ubus.StatusNotFound) {
		t.Errorf("unknown object: %v", err)
	}
	if _, err := cli.Call(ctx, "no.such.object", "echo", nil); !errors.Is(err, ubus.StatusNotFound) {
		t.Errorf("unknown path: %v", err)
	}

	// No answer: the caller's own deadline ends the call; a later answer
	// is ignored.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = cli.Call(short, "refsrv", "hang", nil)
	if !errors.Is(err, ubus.StatusTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hang: %v", err)
	}
	if _, err := cli.Call(ctx, "refsrv", "echo", nil); err != nil {
		t.Errorf("call after a timeout: %v", err)
	}

	// A client may call its own objects.
	if got, err := srv.Call(ctx, "refsrv", "echo", ubus.Table{{"self", true}}); err != nil || got.String() != `{"self":true}` {
		t.Errorf("self call: %v %v", got, err)
	}
	if err := cli.Ping(ctx); err != nil {
		t.Errorf("ping: %v", err)
	}
}

func TestConcurrentCalls(t *testing.T) {
	b := ubustest.New(t)
	srv := dial(t, b)
	cli := dial(t, b)
	refsrv(t, srv, "refsrv")
	ctx := timeout(t)
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			for j := range 20 {
				args := ubus.Table{{"i", i}, {"j", j}}
				method := "echo"
				if j%5 == 0 {
					method = "deferred" // answered out of order
					args = ubus.Table{{"delay_ms", (i + j) % 7}}
				}
				got, err := cli.Call(ctx, "refsrv", method, args)
				if err != nil {
					t.Errorf("call %d/%d: %v", i, j, err)
					return
				}
				if method == "echo" && got.String() != args.String() {
					t.Errorf("call %d/%d answered %v", i, j, got)
				}
			}
		})
	}
	wg.Wait()
}

func TestEvents(t *testing.T) {
	b := ubustest.New(t)
	a := dial(t, b)
	l := dial(t, b)
	ctx := timeout(t)
	type ev struct{ name, data string }
	got := make(chan ev, 32)
	h := func(name string, data ubus.Table) { got <- ev{name, data.String()} }
	lst, err := l.Listen(ctx, "network.interface", h)
	if err != nil {
		t.Fatal(err)
	}
	if err := lst.Add(ctx, "network.*"); err != nil { // overlapping: delivered once
		t.Fatal(err)
	}
	all, err := l.Listen(ctx, "*", func(name string, data ubus.Table) {
		if !strings.HasPrefix(name, "ubus.") {
			got <- ev{"*" + name, data.String()}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	// The sender's own listener never hears its events.
	if _, err := a.Listen(ctx, "*", func(name string, _ ubus.Table) {
		if !strings.HasPrefix(name, "ubus.") {
			t.Errorf("loop-back of %s", name)
		}
	}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"network.interface", "network", "network.", "hotplug.iface"} {
		if err := a.Send(ctx, name, ubus.Table{{"n", 1}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Send(ctx, "ubus.fake", nil); !errors.Is(err, ubus.StatusPermissionDenied) {
		t.Errorf("reserved event: %v", err)
	}
	// lst hears network.interface (once, though both patterns match) and
	// network.; all hears everything.
	var names []string
	for range 6 {
		e := <-got
		if e.data != `{"n":1}` {
			t.Errorf("%s data %s", e.name, e.data)
		}
		names = append(names, e.name)
	}
	slices.Sort(names)
	want := []string{"*hotplug.iface", "*network", "*network.", "*network.interface", "network.", "network.interface"}
	if !slices.Equal(names, want) {
		t.Errorf("events %v, want %v", names, want)
	}
	select {
	case e := <-got:
		// Sends are answered after delivery, so anything else would be here.
		t.Errorf("extra event %v", e)
	default:
	}
	if err := all.Close(); err != nil {
		t.Fatal(err)
	}
	if err := lst.Close(); err != nil {
		t.Fatal(err)
	}
}
