package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/rtsync"
	"github.com/mwan3d/mwan3d/track"
	"github.com/mwan3d/mwan3d/ubus"
)

const (
	hookIfupWan = "mwan3.user ACTION=ifup DEVICE=eth1 INTERFACE=wan"
)

// TestBootDaemonFirst is the boot order on a router: the daemon starts
// before netifd brings the interfaces up.
func TestBootDaemonFirst(t *testing.T) {
	h := newHarness(t, testConfig)
	h.addNetifd(false, netifdWAN("wan", 1), netifdWAN("wanb", 2), netifdWAN("wanc", 3))
	h.start()
	if p := h.nft.Current(); p == nil {
		t.Fatal("no ruleset applied at start")
	}
	if got := h.active("balanced"); got != "unreachable" {
		t.Errorf("balanced before any ifup = %q", got)
	}
	h.waitCalls("start wan paused=true", "start wanb paused=true")
	if _, err := os.Stat(filepath.Join(h.dir, "run", "mwan3")); err != nil {
		t.Errorf("state directory: %v", err)
	}

	// netifd brings wan up: policies, rules, tracker and hooks follow.
	if err := h.netifd.Up(t.Context(), "wan"); err != nil {
		t.Fatal(err)
	}
	h.waitActive("balanced", "wan")
	h.waitCalls("ifup wan eth1 10.0.1.2 0x100")
	if got := h.routes.upDevices(); got != "wan=eth1" {
		t.Errorf("routes input: %s", got)
	}
	if got := h.hooks(1); got[0] != hookIfupWan {
		t.Errorf("hooks: %q", got)
	}
	if got := h.ubusEvents(1); got[0] != "ifup wan eth1 disabled online=true" {
		t.Errorf("ubus events: %q", got)
	}

	// The tracker's first connect reaches the hooks but changes nothing.
	h.trackers.emit("wan", track.ActionConnected, "eth1", true)
	hooks := h.hooks(3)
	want := []string{hookIfupWan,
		"hotplug-call ACTION=connected DEVICE=eth1 FIRSTCONNECT=1 INTERFACE=wan",
		"mwan3.user ACTION=connected DEVICE=eth1 INTERFACE=wan"}
	if !slices.Equal(hooks, want) {
		t.Errorf("hooks:\n%s\nwant:\n%s", strings.Join(hooks, "\n"), strings.Join(want, "\n"))
	}

	// wanb comes up; its tracker declares it offline, then online.
	if err := h.netifd.Up(t.Context(), "wanb"); err != nil {
		t.Fatal(err)
	}
	h.waitActive("balanced", "wan wanb")
	h.waitCalls("ifup wanb eth2 10.0.2.2 0x200")
	h.trackers.emit("wanb", track.ActionDisconnecting, "eth2", false)
	h.trackers.emit("wanb", track.ActionDisconnected, "eth2", false)
	h.waitActive("balanced", "wan")
	h.eventually("conntrack flush on disconnected", func() bool { return slices.Equal(h.flushed(), []string{"0x200/0x3f00"}) })
	h.trackers.emit("wanb", track.ActionConnected, "eth2", false)
	h.waitActive("balanced", "wan wanb")

	// wanc (untracked, initial_state offline) never joins its policy.
	if err := h.netifd.Up(t.Context(), "wanc"); err != nil {
		t.Fatal(err)
	}
	h.eventually("wanc ifup", func() bool { return strings.Contains(h.routes.upDevices(), "wanc=eth3") })
	if got := h.active("wanc_only"); got != "blackhole" {
		t.Errorf("wanc_only = %q", got)
	}

	// netifd takes wan down.
	if err := h.netifd.Down(t.Context(), "wan"); err != nil {
		t.Fatal(err)
	}
	h.waitActive("balanced", "wanb")
	h.waitCalls("ifdown wan")
	// Per interface, the hooks run in event order.
	hooks = h.hooks(12)
	var wan []string
	for _, l := range hooks {
		if strings.HasSuffix(l, "INTERFACE=wan") {
			wan = append(wan, l)
		}
	}
	want = append(want, "mwan3.user ACTION=ifdown DEVICE= INTERFACE=wan")
	if !slices.Equal(wan, want) {
		t.Errorf("wan's hooks:\n%s\nwant:\n%s", strings.Join(wan, "\n"), strings.Join(want, "\n"))
	}
}

// TestBootInterfacesFirst is a daemon (re)started while the interfaces are
// up: no ifup hooks (legacy's init ran the ifup handling silently), the
// trackers start and get their ifup once the routes are there.
func TestBootInterfacesFirst(t *testing.T) {
	h := newHarness(t, testConfig)
	h.addNetifd(true, netifdWAN("wan", 1), netifdWAN("wanb", 2))
	h.start()
	// The very first ruleset already has the interfaces online (later
	// applies, e.g. after a route result under load, may follow).
	if got := activeIn(h.nft.First(), "balanced"); got != "wan wanb" {
		t.Errorf("balanced in the first ruleset = %q", got)
	}
	h.waitCalls("start wan paused=true", "start wanb paused=true", "ifup wan eth1 10.0.1.2 0x100", "ifup wanb eth2 10.0.2.2 0x200")
	if got := h.ubusEvents(2); got[0] != "ifup wan eth1 disabled online=true" {
		t.Errorf("events %q", got)
	}
	if data, _ := os.ReadFile(h.hookLog); len(data) != 0 {
		t.Errorf("hooks ran at start: %s", data)
	}
	if data, err := os.ReadFile(filepath.Join(h.dir, "run", "mwan3", "iface_state", "wan")); err != nil || string(data) != "online\n" {
		t.Errorf("iface_state/wan = %q, %v", data, err)
	}
}

// TestNetifdAbsentAtStart: netifd registers after the daemon (its object
// appears later), the daemon follows it then.
func TestNetifdAbsentAtStart(t *testing.T) {
	h := newHarness(t, testConfig)
	h.netifd.Close()
	h.start()
	if got := h.active("balanced"); got != "unreachable" {
		t.Errorf("balanced = %q", got)
	}
	n := netifdStart(t, h)
	if err := n.Add(t.Context(), netifdWAN("wan", 1), false); err != nil {
		t.Fatal(err)
	}
	if err := n.Up(t.Context(), "wan"); err != nil {
		t.Fatal(err)
	}
	h.waitActive("balanced", "wan")
	if err := n.Down(t.Context(), "wan"); err != nil {
		t.Fatal(err)
	}
	h.waitActive("balanced", "unreachable")
}

// TestNetifdRestart: netifd goes away and comes back; the daemon reads
// everything again and follows its events.
func TestNetifdRestart(t *testing.T) {
	h := newHarness(t, testConfig)
	h.addNetifd(true, netifdWAN("wan", 1))
	h.addNetifd(false, netifdWAN("wanb", 2))
	h.start()
	h.waitActive("balanced", "wan")
	if err := h.netifd.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	h.waitActive("balanced", "wan")
	if err := h.netifd.Up(t.Context(), "wanb"); err != nil {
		t.Fatal(err)
	}
	h.waitActive("balanced", "wan wanb")
	if err := h.netifd.Down(t.Context(), "wan"); err != nil {
		t.Fatal(err)
	}
	h.waitActive("balanced", "wanb")
}

// TestIfupdateAndChild: an address change refreshes the tracker's binding
// and reaches the user script as ifupdate; a _4 child carries the probe
// source (cellular protocols).
func TestIfupdateAndChild(t *testing.T) {
	h := newHarness(t, testConfig)
	h.addNetifd(true, netifdWAN("wan", 1))
	h.start()
	h.waitCalls("ifup wan eth1 10.0.1.2 0x100")
	if err := h.netifd.Update(t.Context(), "wan", func(i *netifdInterface) {
		i.IPv4[0] = mustPrefix("10.0.1.7/24")
	}); err != nil {
		t.Fatal(err)
	}
	h.waitCalls("ifupdate wan eth1 10.0.1.7 0x100")
	h.hooks(1)
	child := netifdWAN("wan_4", 1)
	child.Device, child.L3Device, child.Dynamic = "wwan0", "wwan0", true
	child.IPv4[0] = mustPrefix("100.64.0.9/30")
	h.addNetifd(false, child)
	if err := h.netifd.Up(t.Context(), "wan_4"); err != nil {
		t.Fatal(err)
	}
	h.waitCalls("ifupdate wan wwan0 100.64.0.9 0x100")
	if got := h.hooks(2); got[1] != "mwan3.user ACTION=ifupdate DEVICE=eth1 INTERFACE=wan" {
		t.Errorf("hooks %q", got)
	}
}

// TestManualIfupIfdown is `mwan3 ifdown` and `mwan3 ifup` over ubus.
func TestManualIfupIfdown(t *testing.T) {
	h := newHarness(t, testConfig)
	h.addNetifd(true, netifdWAN("wan", 1), netifdWAN("wanb", 2))
	h.addNetifd(false, netifdWAN("wanc", 3))
	h.start()
	h.waitCalls("ifup wan eth1 10.0.1.2 0x100", "ifup wanb eth2 10.0.2.2 0x200")
	h.mustCall("ifdown", ubus.Table{{Name: "interface", Value: "wanb"}})
	if got := h.active("balanced"); got != "wan" {
		t.Errorf("balanced after ifdown = %q", got)
	}
	h.waitCalls("ifdown wanb")
	h.eventually("flush on ifdown", func() bool { return slices.Contains(h.flushed(), "0x200/0x3f00") })
	// An update from netifd does not undo a manual ifdown.
	if err := h.netifd.Update(t.Context(), "wanb", func(i *netifdInterface) { i.Metric = 25 }); err != nil {
		t.Fatal(err)
	}
	h.mustCall("status", nil) // a round trip through the loop's view
	if got := h.active("balanced"); got != "wan" {
		t.Errorf("balanced after an update = %q", got)
	}
	h.mustCall("ifup", ubus.Table{{Name: "interface", Value: "wanb"}})
	if got := h.active("balanced"); got != "wan wanb" {
		t.Errorf("balanced after ifup = %q", got)
	}
	h.waitCalls("ifup wanb eth2 10.0.2.2 0x200")
	// The CLI's own ifup/ifdown do not reach the user script.
	if data, _ := os.ReadFile(h.hookLog); len(data) != 0 {
		t.Errorf("hooks ran: %s", data)
	}
	tests := []struct {
		method, iface string
		status        ubus.Status
	}{
		{"ifup", "wanc", ubus.StatusNoData},      // not up in netifd
		{"ifup", "wand", ubus.StatusNotFound},    // disabled
		{"ifdown", "lan", ubus.StatusNotFound},   // not an mwan3 interface
		{"ifup", "", ubus.StatusInvalidArgument}, // no name
	}
	for _, tt := range tests {
		_, err := h.call(tt.method, ubus.Table{{Name: "interface", Value: tt.iface}})
		if ubus.StatusOf(err) != tt.status {
			t.Errorf("%s %q: %v, want %v", tt.method, tt.iface, err, tt.status)
		}
	}
	if _, err := h.call("ifup", ubus.Table{{Name: "interface", Value: 7}}); ubus.StatusOf(err) != ubus.StatusInvalidArgument {
		t.Errorf("ifup with a number: %v", err)
	}
}

// TestUbusdRestart: after ubusd restarts, the daemon registers its object
// again, reads netifd's state again and follows it.
func TestUbusdRestart(t *testing.T) {
	h := newHarness(t, testConfig)
	h.addNetifd(true, netifdWAN("wan", 1))
	h.addNetifd(false, netifdWAN("wanb", 2))
	h.start()
	h.waitActive("balanced", "wan")
	if err := h.broker.Restart(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for _, p := range []string{ObjectName, "network.interface.wanb"} {
		if err := h.broker.WaitObject(ctx, p); err != nil {
			t.Fatalf("%s not back after the restart: %v", p, err)
		}
	}
	// The daemon's subscription and listener are back once an event
	// reaches it; bring wanb up until it does.
	h.eventually("wanb followed after the restart", func() bool {
		h.netifd.Down(ctx, "wanb")
		h.netifd.Up(ctx, "wanb")
		time.Sleep(20 * time.Millisecond)
		return h.active("balanced") == "wan wanb"
	})
	if _, err := h.call("status", nil); err != nil {
		t.Errorf("status after the restart: %v", err)
	}
}

// TestApplyFailureRetried: a failed nft apply is retried; the ubus answer
// of the request that caused it still comes.
func TestApplyFailureRetried(t *testing.T) {
	h := newHarness(t, testConfig)
	h.addNetifd(true, netifdWAN("wan", 1), netifdWAN("wanb", 2))
	h.start()
	h.waitActive("balanced", "wan wanb")
	applies := h.nft.Applies()
	h.nft.FailNextApply(errors.New("injected failure"))
	h.mustCall("ifdown", ubus.Table{{Name: "interface", Value: "wanb"}})
	h.waitActive("balanced", "wan")
	// The new state is in force, so the failed apply was retried.
	if h.nft.Applies() < applies+1 {
		t.Errorf("%d applies, want one after the failed one", h.nft.Applies()-applies)
	}
}

// TestCarrierForwarded: link changes from rtnetlink reach the trackers at
// once.
func TestCarrierForwarded(t *testing.T) {
	h := newHarness(t, testConfig)
	h.addNetifd(true, netifdWAN("wan", 1))
	h.start()
	h.routes.links <- rtsync.LinkChange{Link: rtsync.Link{Index: 3, Name: "eth1", Up: true, Carrier: false}}
	h.routes.links <- rtsync.LinkChange{Link: rtsync.Link{Index: 3, Name: "eth1", Up: true, Carrier: true}}
	h.routes.links <- rtsync.LinkChange{Link: rtsync.Link{Index: 3, Name: "eth1", Up: true, Carrier: true}, Deleted: true}
	h.waitCalls("carrier eth1 false", "carrier eth1 true", "carrier eth1 false")
}
