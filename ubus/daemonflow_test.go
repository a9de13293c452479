package ubus

import (
	"context"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/ubus/internal/vectors"
)

// TestDaemonFlowScript runs an mwan3-like daemon written with this package
// against the ubusd side of the recorded "daemon" connection of
// daemon-flow (spec §23): every frame the Conn sends must be the recorded
// one, byte for byte: registration with signature, event listener,
// subscription, calls, answers to calls (DATA + STATUS, METHOD_NOT_FOUND),
// the event acknowledgement, no answer to a NO_REPLY notification, an
// event sent while handling a call, a notification waiting for its
// subscriber, and the removal with its interleaved NOTIFY.
func TestDaemonFlowScript(t *testing.T) {
	v, err := vectors.Load("daemon-flow")
	if err != nil {
		t.Fatal(err)
	}
	script := vectors.NewScript(t, v, 3)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	c, err := Dial(ctx, script.Path(), WithoutReconnect())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	events := make(chan string, 4)
	notes := make(chan string, 4)
	active := make(chan bool, 4)
	mwan3 := &Object{Name: "mwan3", SubscribersChanged: func(a bool) { active <- a }}
	mwan3.Methods = []Method{
		{Name: "status", Policy: []Arg{{Name: "section", Type: TypeString}, {Name: "interface", Type: TypeString}},
			Handler: func(ctx context.Context, req *Request) error {
				if s, _ := req.Args.GetString("section"); s != "interfaces" || req.User != "root" {
					t.Errorf("status called with %v by %s", req.Args, req.User)
				}
				return req.Reply(Table{{"interfaces", Table{{"wan", Table{{"status", "online"}, {"running", true}}}}}})
			}},
		{Name: "announce", Handler: func(ctx context.Context, req *Request) error {
			return c.Send(ctx, "mwan3.connected", Table{{"interface", "wan"}})
		}},
		{Name: "notify", Handler: func(ctx context.Context, req *Request) error {
			return mwan3.Notify(ctx, "mwan3.update", Table{{"interface", "wan"}, {"status", "offline"}}, true)
		}},
	}
	if err := c.AddObject(ctx, mwan3); err != nil {
		t.Fatal(err)
	}
	if mwan3.ID() != 0xc74f32af {
		t.Errorf("object id %08x", mwan3.ID())
	}
	if _, err := c.Listen(ctx, "network.interface", func(ev string, data Table) {
		a, _ := data.GetString("action")
		events <- ev + " " + a
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(ctx, "network.interface", func(typ string, data Table) error {
		up, _ := data.GetBool("up")
		if up {
			t.Errorf("notification says up")
		}
		notes <- typ
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	st, err := c.Call(ctx, "network.interface.wan", "status", nil)
	if err != nil {
		t.Fatal(err)
	}
	if up, _ := st.GetBool("up"); !up {
		t.Errorf("wan status: %v", st)
	}
	var wan struct {
		Up     bool   `ubus:"up"`
		Uptime int    `ubus:"uptime"`
		Device string `ubus:"l3_device"`
		Addrs  []struct {
			Address string `ubus:"address"`
			Mask    int    `ubus:"mask"`
		} `ubus:"ipv4-address"`
	}
	if err := st.Decode(&wan); err != nil || !wan.Up || wan.Uptime != 1234 || wan.Device != "eth1" ||
		len(wan.Addrs) != 1 || wan.Addrs[0].Mask != 24 {
		t.Errorf("decoded %+v (%v)", wan, err)
	}
	dump, err := c.Call(ctx, "network.interface", "dump", nil)
	if err != nil {
		t.Fatal(err)
	}
	if ifaces, _ := dump.GetArray("interface"); len(ifaces) != 2 {
		t.Errorf("dump: %v", dump)
	}
	if a := <-active; !a {
		t.Error("SubscribersChanged(false) first")
	}
	if ev := <-events; ev != "network.interface ifdown" {
		t.Errorf("event %q", ev)
	}
	if n := <-notes; n != "interface.down" {
		t.Errorf("notification %q", n)
	}
	script.Wait(118) // our answer to the "notify" call
	if err := c.RemoveObject(ctx, mwan3); err != nil {
		t.Fatal(err)
	}
	if a := <-active; a {
		t.Error("SubscribersChanged(true) on removal")
	}
	if !script.Done() {
		t.Error("conversation incomplete")
	}
}
