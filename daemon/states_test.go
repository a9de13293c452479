package daemon

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/mwan3d/mwan3d/track"
)

// wanState is what the outside world says about one WAN: netifd's up and
// the tracker's verdict.
type wanState struct{ up, online bool }

// TestStateVisits visits every combination of the two WANs' netifd and
// tracker states, five times each in random order, and checks after each
// visit that the applied ruleset and routes are exactly what that
// combination asks for, whatever the previous one was (tailscale's
// TestRouterStates for the daemon).
func TestStateVisits(t *testing.T) {
	h := newHarness(t, testConfig)
	h.addNetifd(false, netifdWAN("wan", 1), netifdWAN("wanb", 2))
	h.start()
	h.waitCalls("start wan paused=true", "start wanb paused=true")
	names := []string{"wan", "wanb"}
	var states [][2]wanState
	for _, a := range []wanState{{}, {true, false}, {true, true}} {
		for _, b := range []wanState{{}, {true, false}, {true, true}} {
			states = append(states, [2]wanState{a, b})
		}
	}
	var visits [][2]wanState
	for range 5 {
		visits = append(visits, states...)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	rnd.Shuffle(len(visits), func(i, j int) { visits[i], visits[j] = visits[j], visits[i] })
	cur := [2]wanState{}
	for n, want := range visits {
		for i, name := range names {
			from, to := cur[i], want[i]
			dev := fmt.Sprintf("eth%d", i+1)
			switch {
			case !from.up && to.up:
				if err := h.netifd.Up(t.Context(), name); err != nil {
					t.Fatal(err)
				}
				// ifup puts an interface with initial_state online in
				// the policies at once; the tracker then has its say.
				h.waitCalls("ifup " + name + " " + dev + fmt.Sprintf(" 10.0.%d.2 %#x", i+1, (i+1)<<8))
				if !to.online {
					h.trackers.emit(name, track.ActionDisconnected, dev, false)
				}
			case from.up && !to.up:
				if err := h.netifd.Down(t.Context(), name); err != nil {
					t.Fatal(err)
				}
				h.waitCalls("ifdown " + name)
			case to.up && from.online != to.online:
				a := track.ActionConnected
				if !to.online {
					a = track.ActionDisconnected
				}
				h.trackers.emit(name, a, dev, false)
			}
		}
		cur = want
		var online, up []string
		for i, name := range names {
			if want[i].up {
				up = append(up, fmt.Sprintf("%s=eth%d", name, i+1))
			}
			if want[i].up && want[i].online {
				online = append(online, name)
			}
		}
		wantBalanced := strings.Join(online, " ")
		if wantBalanced == "" {
			wantBalanced = "unreachable"
		}
		h.eventually(fmt.Sprintf("visit %d %+v: balanced %q (have %q), routes %q (have %q)", n, want,
			wantBalanced, h.active("balanced"), up, h.routes.upDevices()), func() bool {
			return h.active("balanced") == wantBalanced && h.routes.upDevices() == strings.Join(up, " ")
		})
	}
}
