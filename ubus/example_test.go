package ubus_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mwan3d/mwan3d/ubus"
	"github.com/mwan3d/mwan3d/ubus/ubustest"
)

// A daemon publishes an object with a method; a client calls it, decodes
// the answer into a struct, and follows the daemon's events.
func Example() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	bus, err := ubustest.Start(filepath.Join(dir, "ubus.sock"))
	if err != nil {
		panic(err)
	}
	defer bus.Close()
	ctx := context.Background()

	daemon, err := ubus.Dial(ctx, bus.Path())
	if err != nil {
		panic(err)
	}
	defer daemon.Close()
	type iface struct {
		Status  string `ubus:"status"`
		Running bool   `ubus:"running"`
		Uptime  int    `ubus:"uptime,omitempty"`
	}
	err = daemon.AddObject(ctx, &ubus.Object{
		Name: "mwan3",
		Methods: []ubus.Method{{
			Name:   "status",
			Policy: []ubus.Arg{{Name: "section", Type: ubus.TypeString}},
			Handler: func(ctx context.Context, req *ubus.Request) error {
				return req.Reply(ubus.Table{{"interfaces", map[string]iface{"wan": {Status: "online", Running: true}}}})
			},
		}},
	})
	if err != nil {
		panic(err)
	}

	client, err := ubus.Dial(ctx, bus.Path())
	if err != nil {
		panic(err)
	}
	defer client.Close()
	events := make(chan string, 1)
	if _, err := client.Listen(ctx, "mwan3.*", func(name string, data ubus.Table) {
		events <- name + " " + data.String()
	}); err != nil {
		panic(err)
	}

	reply, err := client.Call(ctx, "mwan3", "status", ubus.Table{{"section", "interfaces"}})
	if err != nil {
		panic(err)
	}
	fmt.Println(reply)
	var st struct {
		Interfaces map[string]iface `ubus:"interfaces"`
	}
	if err := reply.Decode(&st); err != nil {
		panic(err)
	}
	fmt.Println(st.Interfaces["wan"].Running)

	_, err = client.Call(ctx, "mwan3", "status", ubus.Table{{"section", 1}})
	fmt.Println(err)

	if err := daemon.Send(ctx, "mwan3.connected", ubus.Table{{"interface", "wan"}}); err != nil {
		panic(err)
	}
	fmt.Println(<-events)
	// Output:
	// {"interfaces":{"wan":{"status":"online","running":true}}}
	// true
	// ubus call "mwan3" "status": Invalid argument
	// mwan3.connected {"interface":"wan"}
}
