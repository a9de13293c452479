package ubus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/ubus"
	"github.com/mwan3d/mwan3d/ubus/ubustest"
)

// waitFor polls cond (10 s at most).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestBadArgs covers typed policies: the signature shows the types, a
// call whose arguments do not fit is answered INVALID_ARGUMENT, with the
// object's explanation when it has a BadArgs hook and none otherwise.
func TestBadArgs(t *testing.T) {
	b := ubustest.New(t)
	srv := dial(t, b)
	cli := dial(t, b)
	ctx := timeout(t)
	handler := func(_ context.Context, r *ubus.Request) error { return r.Reply(ubus.Table{{"ok", true}}) }
	methods := func() []ubus.Method {
		return []ubus.Method{{Name: "m", Handler: handler, Policy: []ubus.Arg{
			{Name: "name", Type: ubus.TypeString, Required: true},
			{Name: "n", Type: ubus.TypeInt32},
			{Name: "on", Type: ubus.TypeBool},
			{Name: "opts", Type: ubus.TypeTable},
			{Name: "any", Type: ubus.TypeUnspec},
		}}}
	}
	var seen *ubus.ArgError
	explained := &ubus.Object{Name: "explained", Methods: methods(), BadArgs: func(r *ubus.Request, err *ubus.ArgError) error {
		seen = err
		return r.Reply(ubus.Table{{"error", err.Error()}})
	}}
	custom := &ubus.Object{Name: "custom", Methods: methods(), BadArgs: func(r *ubus.Request, err *ubus.ArgError) error {
		return ubus.StatusNotSupported
	}}
	plain := &ubus.Object{Name: "plain", Methods: methods()}
	for _, o := range []*ubus.Object{explained, custom, plain} {
		if err := srv.AddObject(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	objs, err := cli.Lookup(ctx, "explained")
	if err != nil || len(objs) != 1 {
		t.Fatalf("lookup: %v %v", objs, err)
	}
	if sig, _ := objs[0].Signature.GetTable("m"); sig.String() != `{"name":3,"n":5,"on":7,"opts":2,"any":0}` {
		t.Errorf("signature %v", sig)
	}

	tests := []struct {
		args ubus.Table
		msg  string // "" : accepted
	}{
		{ubus.Table{{"name", "x"}}, ""},
		{ubus.Table{{"name", "x"}, {"n", int64(7)}, {"on", true}, {"opts", ubus.Table{}}, {"any", []any{}}}, ""},
		{ubus.Table{{"name", "x"}, {"name", 1}}, ""}, // one that fits is enough
		{nil, `argument "name" is required`},
		{ubus.Table{{"name", 1}}, `argument "name" must be a string, not int32`},
		{ubus.Table{{"name", "x"}, {"n", "7"}}, `argument "n" must be an integer, not string`},
		{ubus.Table{{"name", "x"}, {"on", 1.5}}, `argument "on" must be a boolean or an integer, not double`},
		{ubus.Table{{"name", "x"}, {"opts", []any{1}}}, `argument "opts" must be a table, not array`},
	}
	for _, tt := range tests {
		seen = nil
		got, err := cli.Call(ctx, "explained", "m", tt.args)
		if tt.msg == "" {
			if err != nil || got.String() != `{"ok":true}` {
				t.Errorf("%v: %v %v", tt.args, got, err)
			}
			continue
		}
		if !errors.Is(err, ubus.StatusInvalidArgument) {
			t.Errorf("%v: error %v, want INVALID_ARGUMENT", tt.args, err)
		}
		if msg, _ := got.GetString("error"); msg != tt.msg {
			t.Errorf("%v: message %q, want %q", tt.args, msg, tt.msg)
		}
		if seen == nil || seen.Method != "m" || seen.Error() != tt.msg {
			t.Errorf("%v: hook saw %+v", tt.args, seen)
		}
		if got, err := cli.Call(ctx, "plain", "m", tt.args); !errors.Is(err, ubus.StatusInvalidArgument) || got != nil {
			t.Errorf("%v without hook: %v %v", tt.args, got, err)
		}
		if _, err := cli.Call(ctx, "custom", "m", tt.args); !errors.Is(err, ubus.StatusNotSupported) {
			t.Errorf("%v with a hook choosing the status: %v", tt.args, err)
		}
	}
}

// TestCallErrorData: Call returns the DATA an object sent before its error
// status together with the *StatusError, and a nil table without DATA.
func TestCallErrorData(t *testing.T) {
	b := ubustest.New(t)
	srv := dial(t, b)
	cli := dial(t, b)
	ctx := timeout(t)
	obj := &ubus.Object{Name: "refuser", Methods: []ubus.Method{
		{Name: "explain", Handler: func(_ context.Context, r *ubus.Request) error {
			if err := r.Reply(ubus.Table{{"error", "interface wan is not up"}}); err != nil {
				return err
			}
			return ubus.StatusNoData
		}},
		{Name: "two", Handler: func(_ context.Context, r *ubus.Request) error {
			r.Reply(ubus.Table{{"a", 1}})
			r.Reply(ubus.Table{{"b", 2}})
			return ubus.StatusUnknownError
		}},
		{Name: "bare", Handler: func(context.Context, *ubus.Request) error { return ubus.StatusNotFound }},
	}}
	if err := srv.AddObject(ctx, obj); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, data string
		status       ubus.Status
	}{
		{"explain", `{"error":"interface wan is not up"}`, ubus.StatusNoData},
		{"two", `{"a":1,"b":2}`, ubus.StatusUnknownError},
		{"bare", "", ubus.StatusNotFound},
	}
	for _, tt := range tests {
		got, err := cli.Call(ctx, "refuser", tt.method, nil)
		var se *ubus.StatusError
		if !errors.As(err, &se) || se.Status != tt.status {
			t.Errorf("%s: error %v, want status %v", tt.method, err, tt.status)
		}
		if tt.data == "" {
			if got != nil {
				t.Errorf("%s: data %v, want nil", tt.method, got)
			}
		} else if got.String() != tt.data {
			t.Errorf("%s: data %v, want %s", tt.method, got, tt.data)
		}
	}
}

// TestEncodedReply: an Encoded table is sent as is, alone or nested.
func TestEncodedReply(t *testing.T) {
	b := ubustest.New(t)
	srv := dial(t, b)
	cli := dial(t, b)
	ctx := timeout(t)
	part, err := ubus.AppendTable(nil, ubus.Table{{"x", int32(1)}, {"y", []any{"a", true}}})
	if err != nil {
		t.Fatal(err)
	}
	obj := &ubus.Object{Name: "cached", Methods: []ubus.Method{
		{Name: "whole", Handler: func(_ context.Context, r *ubus.Request) error { return r.Reply(ubus.Encoded(part)) }},
		{Name: "nested", Handler: func(_ context.Context, r *ubus.Request) error {
			return r.Reply(ubus.Table{{"p", ubus.Encoded(part)}, {"q", []any{ubus.Encoded(part)}}, {"s", struct {
				E ubus.Encoded `ubus:"e"`
			}{part}}})
		}},
	}}
	if err := srv.AddObject(ctx, obj); err != nil {
		t.Fatal(err)
	}
	for method, want := range map[string]string{
		"whole":  `{"x":1,"y":["a",true]}`,
		"nested": `{"p":{"x":1,"y":["a",true]},"q":[{"x":1,"y":["a",true]}],"s":{"e":{"x":1,"y":["a",true]}}}`,
	} {
		for range 3 { // pooled reply buffers are reused
			if got, err := cli.Call(ctx, "cached", method, nil); err != nil || got.String() != want {
				t.Errorf("%s: %v %v, want %s", method, got, err, want)
			}
		}
	}
}

// TestWatch subscribes to an object before it exists, and follows it when
// it goes away and comes back, with a subscribed callback each time.
func TestWatch(t *testing.T) {
	b := ubustest.New(t)
	owner := dial(t, b)
	// WithoutResubscribe ends plain subscriptions, not watches.
	sub := dial(t, b, ubus.WithoutResubscribe())
	ctx := timeout(t)
	subscribed := make(chan string, 8)
	notes := make(chan string, 8)
	w, err := sub.Watch(ctx, "later", func(typ string, _ ubus.Table) error {
		notes <- typ
		return nil
	}, func(path string) { subscribed <- path })
	if err != nil {
		t.Fatalf("watch a missing object: %v", err)
	}
	defer w.Close()
	select {
	case p := <-subscribed:
		t.Fatalf("subscribed to %q before it exists", p)
	case <-time.After(20 * time.Millisecond):
	}
	for round := range 2 {
		active := make(chan bool, 4)
		obj := &ubus.Object{Name: "later", SubscribersChanged: func(a bool) { active <- a }}
		if err := owner.AddObject(ctx, obj); err != nil {
			t.Fatal(err)
		}
		if p := recv(t, subscribed); p != "later" {
			t.Errorf("round %d: subscribed to %q", round, p)
		}
		if !recv(t, active) {
			t.Fatalf("round %d: owner not told of its subscriber", round)
		}
		if err := obj.Notify(ctx, "hello", ubus.Table{{"round", round}}, true); err != nil {
			t.Errorf("round %d: notify: %v", round, err)
		}
		if n := recv(t, notes); n != "hello" {
			t.Errorf("round %d: notification %q", round, n)
		}
		if err := owner.RemoveObject(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}

	// A plain Subscribe on that Conn still ends with its target.
	obj := &ubus.Object{Name: "plain"}
	if err := owner.AddObject(ctx, obj); err != nil {
		t.Fatal(err)
	}
	plain := make(chan string, 4)
	if _, err := sub.Subscribe(ctx, "plain", func(typ string, _ ubus.Table) error { plain <- typ; return nil }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "subscriber", obj.HasSubscribers)
	if err := owner.RemoveObject(ctx, obj); err != nil {
		t.Fatal(err)
	}
	obj2 := &ubus.Object{Name: "plain"}
	if err := owner.AddObject(ctx, obj2); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if obj2.HasSubscribers() {
		t.Error("plain subscription followed its target on a WithoutResubscribe Conn")
	}

	// Watching one of the Conn's own objects is refused, as subscribing is.
	if _, err := owner.Watch(ctx, "plain", func(string, ubus.Table) error { return nil }, nil); !errors.Is(err, ubus.StatusInvalidArgument) {
		t.Errorf("watch own object: %v", err)
	}
}

// TestAddObjectPending: an object whose path is taken is kept and
// registered once the path is free; one added while disconnected is
// registered after the reconnection.
func TestAddObjectPending(t *testing.T) {
	b := ubustest.New(t)
	first := dial(t, b)
	second := dial(t, b)
	cli := dial(t, b)
	ctx := timeout(t)
	echo := func(who string) []ubus.Method {
		return []ubus.Method{{Name: "who", Handler: func(_ context.Context, r *ubus.Request) error {
			return r.Reply(ubus.Table{{"who", who}})
		}}}
	}
	old := &ubus.Object{Name: "mwan3", Methods: echo("old")}
	if err := first.AddObject(ctx, old); err != nil {
		t.Fatal(err)
	}
	obj := &ubus.Object{Name: "mwan3", Methods: echo("new")}
	if err := second.AddObject(ctx, obj); !errors.Is(err, ubus.StatusInvalidArgument) {
		t.Fatalf("path taken: %v", err)
	}
	if obj.ID() != 0 {
		t.Fatalf("refused object has id %08x", obj.ID())
	}
	if err := second.AddObject(ctx, obj); err == nil {
		t.Error("a kept object was added twice")
	}
	if err := first.RemoveObject(ctx, old); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "registration once the path is free", func() bool { return obj.ID() != 0 })
	if got, err := cli.Call(ctx, "mwan3", "who", nil); err != nil || got.String() != `{"who":"new"}` {
		t.Errorf("call: %v %v", got, err)
	}

	// RemoveObject withdraws a kept object for good.
	blocked := &ubus.Object{Name: "mwan3", Methods: echo("blocked")}
	if err := first.AddObject(ctx, blocked); err == nil {
		t.Fatal("path taken twice")
	}
	if err := first.RemoveObject(ctx, blocked); err != nil {
		t.Errorf("remove a kept object: %v", err)
	}
	if err := second.RemoveObject(ctx, obj); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if blocked.ID() != 0 {
		t.Error("a removed object was registered")
	}

	// Added while ubusd is away: registered after the reconnection.
	path := b.Path()
	b.Close()
	waitFor(t, "disconnection", func() bool { return second.ClientID() == 0 })
	late := &ubus.Object{Name: "late", Methods: echo("late")}
	if err := second.AddObject(ctx, late); !errors.Is(err, ubus.StatusConnectionFailed) {
		t.Fatalf("add while disconnected: %v", err)
	}
	b2, err := ubustest.Start(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if err := b2.WaitObject(ctx, "late"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "id after reconnection", func() bool { return late.ID() != 0 })
}
