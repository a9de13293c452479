package ubus_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/ubus"
	"github.com/mwan3d/mwan3d/ubus/ubustest"
)

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("nothing received")
		panic("unreachable")
	}
}

func TestSubscribeNotify(t *testing.T) {
	b := ubustest.New(t)
	owner := dial(t, b)
	sub := dial(t, b)
	ctx := timeout(t)
	active := make(chan bool, 8)
	obj := &ubus.Object{Name: "refsrv", SubscribersChanged: func(a bool) { active <- a },
		Methods: []ubus.Method{{Name: "noop", Handler: func(context.Context, *ubus.Request) error { return nil }}}}
	if err := owner.AddObject(ctx, obj); err != nil {
		t.Fatal(err)
	}
	if obj.HasSubscribers() {
		t.Error("subscribers before any")
	}
	// Notifying nobody, with or without replies, works.
	if err := obj.Notify(ctx, "nobody", nil, true); err != nil {
		t.Errorf("notify without subscribers: %v", err)
	}
	if err := obj.Notify(ctx, "nobody", nil, false); err != nil {
		t.Errorf("no-reply notify without subscribers: %v", err)
	}

	type note struct{ typ, data string }
	notes := make(chan note, 8)
	s, err := sub.Subscribe(ctx, "refsrv", func(typ string, data ubus.Table) error {
		notes <- note{typ, data.String()}
		if typ == "failing" {
			return ubus.StatusNotSupported
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !recv(t, active) || !obj.HasSubscribers() {
		t.Error("no SubscribersChanged(true)")
	}
	if err := obj.Notify(ctx, "ping", ubus.Table{{"counter", 1}}, true); err != nil {
		t.Errorf("notify: %v", err)
	}
	if n := recv(t, notes); n.typ != "ping" || n.data != `{"counter":1}` {
		t.Errorf("notification %+v", n)
	}
	if err := obj.Notify(ctx, "quiet", ubus.Table{{"x", true}}, false); err != nil {
		t.Errorf("no-reply notify: %v", err)
	}
	if n := recv(t, notes); n.typ != "quiet" || n.data != `{"x":true}` {
		t.Errorf("notification %+v", n)
	}
	if err := obj.Notify(ctx, "failing", nil, true); !errors.Is(err, ubus.StatusNotSupported) {
		t.Errorf("failing subscriber: %v", err)
	}
	recv(t, notes)

	// A Conn cannot subscribe to its own objects.
	if _, err := owner.Subscribe(ctx, "refsrv", func(string, ubus.Table) error { return nil }); !errors.Is(err, ubus.StatusInvalidArgument) {
		t.Errorf("self subscription: %v", err)
	}
	if _, err := sub.Subscribe(ctx, "no.such", func(string, ubus.Table) error { return nil }); !errors.Is(err, ubus.StatusNotFound) {
		t.Errorf("missing target: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if recv(t, active) || obj.HasSubscribers() {
		t.Error("no SubscribersChanged(false)")
	}
}

// TestSubscriptionFollowsTarget checks that a subscription survives its
// target's owner leaving and coming back (netifd restarting).
func TestSubscriptionFollowsTarget(t *testing.T) {
	b := ubustest.New(t)
	sub := dial(t, b)
	ctx := timeout(t)
	notes := make(chan string, 8)

	start := func() (*ubus.Conn, *ubus.Object, chan bool) {
		c, err := ubus.Dial(ctx, b.Path(), ubus.WithoutReconnect())
		if err != nil {
			t.Fatal(err)
		}
		active := make(chan bool, 4)
		obj := &ubus.Object{Name: "network.interface", SubscribersChanged: func(a bool) { active <- a }}
		if err := c.AddObject(ctx, obj); err != nil {
			t.Fatal(err)
		}
		return c, obj, active
	}
	netifd, obj, active := start()
	if _, err := sub.Subscribe(ctx, "network.interface", func(typ string, _ ubus.Table) error {
		notes <- typ
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	recv(t, active)
	obj.Notify(ctx, "interface.update", nil, false)
	if n := recv(t, notes); n != "interface.update" {
		t.Errorf("notification %q", n)
	}
	netifd.Close()
	for slices.Contains(b.Paths(), "network.interface") {
		time.Sleep(time.Millisecond)
	}

	netifd, obj, active = start()
	defer netifd.Close()
	if !recv(t, active) {
		t.Fatal("not subscribed again")
	}
	obj.Notify(ctx, "interface.down", nil, false)
	if n := recv(t, notes); n != "interface.down" {
		t.Errorf("notification %q", n)
	}
}

// TestReconnect restarts the broker under a serving Conn and a client
// Conn: calls in flight fail, objects, listeners and subscriptions come
// back with new ids, and calls work again.
func TestReconnect(t *testing.T) {
	b := ubustest.New(t)
	reconnected := make(chan struct{}, 4)
	srv := dial(t, b, ubus.WithOnConnect(func() { reconnected <- struct{}{} }))
	cli := dial(t, b)
	ctx := timeout(t)
	obj := refsrv(t, srv, "refsrv")
	active := make(chan bool, 8)
	target := &ubus.Object{Name: "target", SubscribersChanged: func(a bool) { active <- a }}
	if err := srv.AddObject(ctx, target); err != nil {
		t.Fatal(err)
	}
	events := make(chan string, 8)
	if _, err := cli.Listen(ctx, "test.*", func(name string, _ ubus.Table) { events <- name }); err != nil {
		t.Fatal(err)
	}
	notes := make(chan string, 8)
	if _, err := cli.Subscribe(ctx, "target", func(typ string, _ ubus.Table) error {
		notes <- typ
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	recv(t, active)
	oldID := obj.ID()
	if _, err := cli.Call(ctx, "refsrv", "echo", nil); err != nil {
		t.Fatal(err)
	}

	inFlight := make(chan error, 1)
	go func() {
		_, err := cli.Call(ctx, "refsrv", "hang", nil)
		inFlight <- err
	}()
	time.Sleep(20 * time.Millisecond) // let the call reach the server
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, inFlight); !errors.Is(err, ubus.StatusConnectionFailed) {
		t.Errorf("call in flight: %v", err)
	}
	recv(t, reconnected)
	if err := b.WaitObject(ctx, "refsrv"); err != nil {
		t.Fatal(err)
	}
	if obj.ID() == 0 || obj.ID() == oldID {
		t.Errorf("object id %08x after reconnect (was %08x)", obj.ID(), oldID)
	}
	// The client reconnects on its own; its cached id is stale and is
	// looked up again.
	var err error
	for range 200 {
		if _, err = cli.Call(ctx, "refsrv", "echo", nil); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("call after restart: %v", err)
	}
	if !recv(t, active) {
		t.Error("subscription not restored")
	}
	if err := target.Notify(ctx, "after", nil, true); err != nil {
		t.Errorf("notify after restart: %v", err)
	}
	if n := recv(t, notes); n != "after" {
		t.Errorf("notification %q", n)
	}
	if err := srv.Send(ctx, "test.restart", nil); err != nil {
		t.Fatal(err)
	}
	if e := recv(t, events); e != "test.restart" {
		t.Errorf("event %q", e)
	}
}
