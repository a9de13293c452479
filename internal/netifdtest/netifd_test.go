package netifdtest

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/ubus"
	"github.com/mwan3d/mwan3d/ubus/ubustest"
)

// recorded is the interface of the recordings: wan up on eth1 by DHCP.
var recorded = Interface{
	Name:   "wan",
	Proto:  "dhcp",
	Device: "eth1",
	Metric: 10,
	IPv4:   []netip.Prefix{netip.MustParsePrefix("192.0.2.10/24")},
	Routes: []Route{{Target: netip.MustParsePrefix("0.0.0.0/0"), Nexthop: netip.MustParseAddr("192.0.2.1"), Source: netip.MustParsePrefix("192.0.2.10/32")}},
	DNS:    []netip.Addr{netip.MustParseAddr("192.0.2.53")},
}

func setup(t *testing.T) (*Netifd, *ubus.Conn) {
	t.Helper()
	b := ubustest.New(t)
	n := Start(t, b.Path())
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c, err := ubus.Dial(ctx, b.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return n, c
}

// setUptime pins an up interface's uptime for golden comparisons.
func (n *Netifd) setUptime(name string, d time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ifaces[name].upSince = time.Now().Add(-d)
}

// TestRecordedLayout compares the fake's answers, as the ubus CLI prints
// them, with the recordings of the netifd-shaped objects.
func TestRecordedLayout(t *testing.T) {
	n, c := setup(t)
	ctx := t.Context()
	if err := n.Add(ctx, recorded, true); err != nil {
		t.Fatal(err)
	}
	if err := n.Add(ctx, Interface{Name: "wanb", Device: "eth2"}, false); err != nil {
		t.Fatal(err)
	}
	n.setUptime("wan", 1234*time.Second)
	tests := []struct {
		path, method, golden string
		args                 any
	}{
		{"network.interface", "dump", "netifd-dump.json", nil},
		{"network.interface.wan", "status", "netifd-status-wan.json", nil},
		{"network.interface", "status", "netifd-status-wan.json", ubus.Table{{Name: "interface", Value: "wan"}}},
	}
	for _, tt := range tests {
		got, err := c.Call(ctx, tt.path, tt.method, tt.args)
		if err != nil {
			t.Fatalf("%s %s: %v", tt.path, tt.method, err)
		}
		want, err := os.ReadFile("../../daemon/testdata/" + tt.golden)
		if err != nil {
			t.Fatal(err)
		}
		if out := ubus.FormatJSON(got, 0); strings.TrimSpace(out) != strings.TrimSpace(string(want)) {
			t.Errorf("%s %s:\n%s\nwant:\n%s", tt.path, tt.method, out, want)
		}
	}
	if _, err := c.Call(ctx, "network.interface", "status", ubus.Table{{Name: "interface", Value: "lan"}}); !errorsIs(err, ubus.StatusNotFound) {
		t.Errorf("status of an unknown interface: %v", err)
	}
}

func errorsIs(err error, st ubus.Status) bool { return ubus.StatusOf(err) == st }

type received struct {
	kind, name string
	data       ubus.Table
}

// TestAnnouncements checks what netifd puts on the bus when an interface
// goes down, comes up and changes: the notifications on network.interface
// and network.interface.<name>, and the event (for down and up).
func TestAnnouncements(t *testing.T) {
	n, c := setup(t)
	ctx := t.Context()
	if err := n.Add(ctx, recorded, true); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []received
	add := func(r received) {
		mu.Lock()
		got = append(got, r)
		mu.Unlock()
	}
	if _, err := c.Listen(ctx, "network.interface", func(ev string, data ubus.Table) {
		add(received{"event", ev, data})
	}); err != nil {
		t.Fatal(err)
	}
	sub, err := c.Subscribe(ctx, "network.interface", func(typ string, data ubus.Table) error {
		add(received{"main", typ, data})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Add(ctx, "network.interface.wan"); err != nil {
		t.Fatal(err)
	}
	wait := func(count int) []received {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			if len(got) >= count {
				out := got
				got = nil
				mu.Unlock()
				return out
			}
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("saw %d announcements, want %d", len(got), count)
		return nil
	}
	steps := []struct {
		do     func() error
		typ    string
		action string
		up     bool
	}{
		{func() error { return n.Down(ctx, "wan") }, "interface.down", "ifdown", false},
		{func() error { return n.Up(ctx, "wan") }, "interface.update", "ifup", true},
		{func() error {
			return n.Update(ctx, "wan", func(i *Interface) { i.IPv4 = []netip.Prefix{netip.MustParsePrefix("192.0.2.11/24")} })
		}, "interface.update", "", true},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatal(err)
		}
		want := 2
		if st.action != "" {
			want = 3
		}
		rs := wait(want)
		// The notifications and the event reach the subscriber and the
		// listener on goroutines of their own: their order is not kept.
		notes := 0
		for _, r := range rs {
			switch r.kind {
			case "main":
				notes++
				if r.name != st.typ {
					t.Errorf("notification %q, want %q", r.name, st.typ)
				}
				if name, _ := r.data.GetString("interface"); name != "wan" {
					t.Errorf("notification names %q", name)
				}
				if up, _ := r.data.GetBool("up"); up != st.up {
					t.Errorf("notification up=%v, want %v", up, st.up)
				}
			case "event":
				if a, _ := r.data.GetString("action"); a != st.action {
					t.Errorf("event action %q, want %q", a, st.action)
				}
			}
		}
		if notes != 2 {
			t.Errorf("%d notifications, want 2 (main object and interface object)", notes)
		}
	}
	st, _ := n.Status("wan")
	if a, _ := st.GetArray("ipv4-address"); len(a) != 1 || a[0].(ubus.Table)[0].Value != "192.0.2.11" {
		t.Errorf("updated address: %v", a)
	}
}

// TestRestart checks that a restart takes every object away and brings
// them back with the up interfaces announced again.
func TestRestart(t *testing.T) {
	n, c := setup(t)
	ctx := t.Context()
	if err := n.Add(ctx, recorded, true); err != nil {
		t.Fatal(err)
	}
	if err := n.Add(ctx, Interface{Name: "wanb", Device: "eth2"}, false); err != nil {
		t.Fatal(err)
	}
	events := make(chan string, 16)
	if _, err := c.Listen(ctx, "*", func(ev string, data ubus.Table) {
		p, _ := data.GetString("path")
		a, _ := data.GetString("action")
		events <- ev + " " + p + a
	}); err != nil {
		t.Fatal(err)
	}
	if err := n.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"ubus.object.remove network.interface", "ubus.object.remove network.interface.wan", "ubus.object.remove network.interface.wanb",
		"ubus.object.add network.interface", "ubus.object.add network.interface.wan", "ubus.object.add network.interface.wanb",
		"network.interface ifup",
	}
	for _, w := range want {
		select {
		case got := <-events:
			if got != w {
				t.Errorf("event %q, want %q", got, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no event, want %q", w)
		}
	}
	if st, ok := n.Status("wan"); !ok || st[0].Value != true {
		t.Errorf("wan after restart: %v", st)
	}
}
