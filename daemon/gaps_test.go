package daemon

import (
	"context"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/config"
	"github.com/mwan3d/mwan3d/rtsync"
	"github.com/mwan3d/mwan3d/track"
	"github.com/mwan3d/mwan3d/ubus"
)

// TestIfupFailed: netifd's ifup-failed (an interface.update notification
// of an interface that is not up) reaches the user script of an enabled
// mwan3 interface with an empty DEVICE (spec §6.1, §6.4), and changes
// nothing else; other interfaces' failures reach nobody.
func TestIfupFailed(t *testing.T) {
	h := newHarness(t, testConfig)
	h.addNetifd(true, netifdWAN("wan", 1))
	h.addNetifd(false, netifdWAN("wanb", 2), netifdWAN("wand", 4), netifdWAN("lan", 5))
	h.start()
	h.waitActive("balanced", "wan")
	for _, name := range []string{"lan", "wand", "wanb"} { // wanb last
		if err := h.netifd.Update(t.Context(), name, func(*netifdInterface) {}); err != nil {
			t.Fatal(err)
		}
	}
	if got := h.hooks(1); len(got) != 1 || got[0] != "mwan3.user ACTION=ifup-failed DEVICE= INTERFACE=wanb" {
		t.Errorf("hooks %q", got)
	}
	if got := h.ubusEvents(2); !slices.Contains(got, "ifup-failed wanb  disabled online=false") {
		t.Errorf("events %q", got)
	}
	if got := h.active("balanced"); got != "wan" {
		t.Errorf("balanced = %q after a failed ifup", got)
	}
	// It still comes up later as usual.
	if err := h.netifd.Up(t.Context(), "wanb"); err != nil {
		t.Fatal(err)
	}
	h.waitActive("balanced", "wan wanb")
	time.Sleep(50 * time.Millisecond)
	if got := h.hooks(2); len(got) != 2 || got[1] != "mwan3.user ACTION=ifup DEVICE=eth2 INTERFACE=wanb" {
		t.Errorf("hooks %q", got)
	}
}

// TestObjectArgTypes: the policies carry real types (`ubus -v list`) and
// a call with a wrong type is answered INVALID_ARGUMENT with a message
// naming the argument.
func TestObjectArgTypes(t *testing.T) {
	h := newHarness(t, testConfig)
	h.addNetifd(true, netifdWAN("wan", 1))
	h.start()
	objs, err := h.client.Lookup(t.Context(), ObjectName)
	if err != nil || len(objs) != 1 {
		t.Fatalf("lookup: %v %v", objs, err)
	}
	for method, want := range map[string]string{
		"status":  `{"section":3,"interface":3}`,
		"ifup":    `{"interface":3}`,
		"ifdown":  `{"interface":3}`,
		"explain": `{"src":3,"dst":3,"family":3,"src_iface":3,"proto":0,"sport":0,"dport":0}`,
	} {
		if sig, _ := objs[0].Signature.GetTable(method); sig.String() != want {
			t.Errorf("signature of %s: %v, want %s", method, sig, want)
		}
	}
	tests := []struct {
		method string
		args   ubus.Table
		msg    string
	}{
		{"status", ubus.Table{{Name: "section", Value: 1}}, `argument "section" must be a string, not int32`},
		{"status", ubus.Table{{Name: "interface", Value: true}}, `argument "interface" must be a string, not int8`},
		{"ifup", ubus.Table{{Name: "interface", Value: ubus.Table{}}}, `argument "interface" must be a string, not table`},
		{"ifdown", ubus.Table{{Name: "interface", Value: 3}}, `argument "interface" must be a string, not int32`},
		{"ifup", nil, "Expecting interface. Usage: mwan3 ifup <interface>"},
		{"explain", ubus.Table{{Name: "dst", Value: true}}, `argument "dst" must be a string, not int8`},
		{"explain", ubus.Table{{Name: "dst", Value: "10.0.0.1"}, {Name: "dport", Value: 70000}}, "dport must be a port number 1..65535"},
	}
	for _, tt := range tests {
		rep, err := h.call(tt.method, tt.args)
		if ubus.StatusOf(err) != ubus.StatusInvalidArgument {
			t.Errorf("%s %v: %v, want INVALID_ARGUMENT", tt.method, tt.args, err)
		}
		if msg, _ := rep.GetString("error"); msg != tt.msg {
			t.Errorf("%s %v: message %q, want %q", tt.method, tt.args, msg, tt.msg)
		}
	}
}

// TestObjectWaitsForName: while another client holds the name mwan3
// (legacy's rpcd plugin), the daemon runs without it and registers it as
// soon as it is free.
func TestObjectWaitsForName(t *testing.T) {
	h := newHarness(t, testConfig)
	h.addNetifd(true, netifdWAN("wan", 1))
	other := &ubus.Object{Name: ObjectName, Methods: []ubus.Method{{Name: "status", Handler: func(_ context.Context, r *ubus.Request) error {
		return r.Reply(ubus.Table{{Name: "legacy", Value: true}})
	}}}}
	if err := h.client.AddObject(t.Context(), other); err != nil {
		t.Fatal(err)
	}
	release := time.AfterFunc(300*time.Millisecond, func() { h.client.RemoveObject(context.Background(), other) })
	defer release.Stop()
	h.start() // waits for the object
	h.eventually("the daemon's object", func() bool {
		// A call that reaches the old object as it goes is never
		// answered (as with ubusd): short calls, again and again.
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		rep, err := h.client.Call(ctx, ObjectName, "status", ubus.Table{{Name: "section", Value: "interfaces"}})
		return err == nil && strings.HasPrefix(rep.String(), `{"interfaces":{"wan":`)
	})
}

// statusDaemon is a daemon with only what status needs: a published
// view of cfgText with every interface up and online, and fake trackers
// whose interfaces are online.
func statusDaemon(t testing.TB, cfgText string) (*daemon, *fakeTrackers) {
	t.Helper()
	cfg, diags := config.Load("mwan3", []byte(cfgText))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	tr := newFakeTrackers()
	v := &view{running: true, cfg: cfg, ifaces: map[string]ifaceView{}, conn: connectedOf(&rtsync.State{
		Connected4: []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24"), netip.MustParsePrefix("192.168.1.1/32")}})}
	for _, i := range cfg.Interfaces {
		v.ifaces[i.Name] = ifaceView{netifdUp: true, up: true, online: true, uptime: 100, readAt: time.Now()}
		tr.Start(i.Name, trackParams(i), track.Binding{}, true)
		tr.set(i.Name, func(s *track.Snapshot) {
			s.Status, s.Tracking, s.Time, s.Online = track.StatusOnline, track.TrackingActive, 990, 500
		})
	}
	v.derive()
	d := &daemon{k: &Kernel{Trackers: tr, Uptime: func() time.Duration { return 1000 * time.Second }}}
	d.view.Store(v)
	return d, tr
}

// TestStatusCache: answers come from the cache while nothing changes and
// reflect every change at once: tracker counters, the clock, a new view.
// Calls for names that are not interfaces are answered but not kept.
func TestStatusCache(t *testing.T) {
	d, tr := statusDaemon(t, testConfig)
	call := func(section, iface string, filter bool) string {
		t.Helper()
		b, err := d.statusReply(section, iface, filter)
		if err != nil {
			t.Fatal(err)
		}
		tab, err := ubus.DecodeTable(b)
		if err != nil {
			t.Fatal(err)
		}
		return tab.String()
	}
	first := call("interfaces", "", false)
	c := d.status.Load()
	if again := call("interfaces", "", false); again != first || d.status.Load() != c {
		t.Errorf("unchanged state: new cache or answer:\n%s\n%s", first, again)
	}
	if got, want := call("bogus", "", false), call("", "", false); got != want {
		t.Errorf("an unknown section is not the whole reply:\n%s\n%s", got, want)
	}
	tr.set("wan", func(s *track.Snapshot) { s.Score, s.Turn = 7, 3 })
	if got := call("interfaces", "wan", true); !strings.Contains(got, `"score":7`) || !strings.Contains(got, `"turn":3`) {
		t.Errorf("tracker change not shown: %s", got)
	}
	if d.status.Load() == c {
		t.Error("the cache survived a change")
	}
	tr.set("wan", func(s *track.Snapshot) { s.Online = 990 })
	if got := call("interfaces", "wan", true); !strings.Contains(got, `"online":10`) {
		t.Errorf("online seconds: %s", got)
	}
	if got := call("interfaces", "nosuch", true); got != `{"interfaces":{}}` {
		t.Errorf("unknown interface: %s", got)
	}
	c = d.status.Load()
	c.mu.Lock()
	for k := range c.replies {
		if k.filter && k.iface != "wan" {
			t.Errorf("cached %+v", k)
		}
	}
	c.mu.Unlock()
	// A new view (a reload, a transition) is a new cache.
	v := *d.view.Load()
	v.running = false
	d.view.Store(&v)
	if got := call("connected", "", false); got != `{"connected":{"ipv4":[],"ipv6":[]}}` {
		t.Errorf("stopped: %s", got)
	}
}

// TestSameIfaceCoversEveryField: sameIface compares every field of
// IfaceSnapshot, so that no change of the reply is missed by the cache.
func TestSameIfaceCoversEveryField(t *testing.T) {
	base := IfaceSnapshot{Targets: []TargetSnapshot{{IP: "192.0.2.1"}}}
	rt := reflect.TypeFor[IfaceSnapshot]()
	for i := range rt.NumField() {
		changed := base
		changed.Targets = []TargetSnapshot{{IP: "192.0.2.1"}}
		f := reflect.ValueOf(&changed).Elem().Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString("x")
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Int, reflect.Int64:
			f.SetInt(1)
		case reflect.Slice:
			changed.Targets[0].Status = "up"
		default:
			t.Fatalf("field %s of kind %s: extend this test", rt.Field(i).Name, f.Kind())
		}
		if sameIface(base, changed) {
			t.Errorf("sameIface misses a change of %s", rt.Field(i).Name)
		}
	}
	if !sameIface(base, IfaceSnapshot{Targets: []TargetSnapshot{{IP: "192.0.2.1"}}}) {
		t.Error("equal snapshots differ")
	}
}
