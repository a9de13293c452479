package daemon

import (
	"testing"

	"github.com/mwan3d/mwan3d/track"
)

// TestStaleDisconnectedAfterIfup: netifd takes wan down and up again so
// fast that the loop reads the ifup before the disconnected its tracker
// fired while handling the ifdown. That stale event takes wan out of the
// policies; the tracker's first connect, which follows it, puts wan back.
// (Found by the end-to-end flapping storm, internal/e2e.)
func TestStaleDisconnectedAfterIfup(t *testing.T) {
	h := newHarness(t, testConfig)
	h.addNetifd(true, netifdWAN("wan", 1), netifdWAN("wanb", 2))
	h.start()
	h.waitCalls("ifup wan eth1 10.0.1.2 0x100", "ifup wanb eth2 10.0.2.2 0x200")
	h.waitActive("balanced", "wan wanb")

	if err := h.netifd.Down(t.Context(), "wan"); err != nil {
		t.Fatal(err)
	}
	h.waitCalls("ifdown wan")
	h.waitActive("balanced", "wanb")
	if err := h.netifd.Up(t.Context(), "wan"); err != nil {
		t.Fatal(err)
	}
	h.waitCalls("ifup wan eth1 10.0.1.2 0x100")
	h.waitActive("balanced", "wan wanb")

	// The tracker's events of the ifdown, read after the ifup.
	h.trackers.emit("wan", track.ActionDisconnecting, "eth1", false)
	h.trackers.emit("wan", track.ActionDisconnected, "eth1", false)
	h.waitActive("balanced", "wanb")
	// Its first connect for the ifup.
	h.trackers.emit("wan", track.ActionConnected, "eth1", true)
	h.waitActive("balanced", "wan wanb")

	// A first connect while netifd has the interface down changes nothing.
	if err := h.netifd.Down(t.Context(), "wan"); err != nil {
		t.Fatal(err)
	}
	h.waitActive("balanced", "wanb")
	const firstConnect = "hotplug-call ACTION=connected DEVICE=eth1 FIRSTCONNECT=1 INTERFACE=wan"
	before := countLines(h.hooks(0), firstConnect)
	h.trackers.emit("wan", track.ActionConnected, "eth1", true)
	// Its hook runs once the loop has reconciled after it.
	h.eventually("the first connect's hook", func() bool { return countLines(h.hooks(0), firstConnect) == before+1 })
	if got := h.active("balanced"); got != "wanb" {
		t.Errorf("balanced = %q after a first connect of an interface that is down", got)
	}
}

func countLines(lines []string, want string) int {
	n := 0
	for _, l := range lines {
		if l == want {
			n++
		}
	}
	return n
}
