package rtsync

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// kernelState is one situation of the state-transition tests: an input and
// the routes of the tables rtsync reads but never writes.
type kernelState struct {
	name   string
	in     Input
	v4, v6 string
}

func kernelStates() []kernelState {
	two := []Interface{
		{Name: "wan", ID: 1, Family: IPv4, Enabled: true, Up: true, Device: "eth1"},
		{Name: "wan6", ID: 2, Family: IPv6, Enabled: true, Up: true, Device: "pppoe-wan"},
		{Name: "wanb", ID: 3, Family: IPv4, Enabled: true, Up: true, Device: "eth2"},
	}
	wanbDown := slices.Clone(two)
	wanbDown[2].Up, wanbDown[2].Device = false, ""
	return []kernelState{
		{name: "default-config", in: Input{Mask: 0x3f00, Interfaces: defaultInterfaces()}, v4: lanMain4, v6: lanMain6},
		{name: "two-wans", in: Input{Mask: 0x3f00, Interfaces: two}, v4: lanMain4, v6: lanMain6},
		{name: "wanb-down", in: Input{Mask: 0x3f00, Interfaces: wanbDown}, v4: lanMain4, v6: lanMain6},
		{name: "source-routing", in: Input{Mask: 0x3f00, SourceRouting: true, Interfaces: two}, v4: lanMain4, v6: lanMain6},
		{
			name: "lookup-table-and-new-lan", in: Input{Mask: 0x3f00, TableLookup: []uint32{220}, Interfaces: two},
			v4: lanMain4 + `
10.99.0.0/16 dev br-lan proto static scope link metric 5
220: 10.10.0.0/16 via 192.168.1.254 dev br-lan proto static src 192.168.1.1
`,
			v6: lanMain6,
		},
		{
			name: "wan-gateway-changed", in: Input{Mask: 0x3f00, Interfaces: two},
			v4: strings.Replace(lanMain4, "via 203.0.113.1 dev eth1", "via 203.0.113.254 dev eth1", 1),
			v6: strings.Replace(lanMain6, "fe80::1 dev pppoe-wan", "fe80::99 dev pppoe-wan", -1),
		},
		{name: "wide-mask", in: Input{Mask: 0xff00, Interfaces: two}, v4: lanMain4, v6: lanMain6},
		{name: "no-ipv6", in: Input{Mask: 0x3f00, NoIPv6: true, Interfaces: two}, v4: lanMain4},
		{name: "nothing-enabled", in: Input{Mask: 0x3f00, Interfaces: wanbDown[:0]}, v4: lanMain4, v6: lanMain6},
	}
}

// environment returns whether a route belongs to a table rtsync only reads.
func environment(r Route) bool {
	return r.Table == tableMain || r.Table == tableLocal || r.Table == 220
}

// foreign is kernel state of other software that rtsync must never touch:
// tailscale's rules at 1300 and 5210 (its table 52), a pbr-like rule at
// 2500, rules in our slots but with selectors or shapes we never create,
// and a table with an id no interface has.
var foreignRules = []Rule{
	{Family: IPv4, Priority: 1300, Mark: 0x80000, Mask: 0xff0000, Action: ActionLookup, Table: tableMain},
	{Family: IPv4, Priority: 1310, Action: ActionLookup, Table: 52},
	{Family: IPv4, Priority: 2500, Mark: 0x10000, Mask: 0xff0000, Action: ActionLookup, Table: 256},
	{Family: IPv4, Priority: 5210, Mark: 0x80000, Mask: 0xff0000, Action: ActionLookup, Table: tableMain},
	{Family: IPv4, Priority: 2001, Mark: 0x100, Mask: 0x3f00, Action: ActionLookup, Table: 9, Unmanaged: true},
	{Family: IPv4, Priority: 1002, Action: ActionLookup, Table: tableMain},
	{Family: IPv6, Priority: 1300, Mark: 0x80000, Mask: 0xff0000, Action: ActionLookup, Table: tableMain},
	{Family: IPv6, Priority: 2500, Action: ActionOther, Unmanaged: true},
}

const foreignRoutes4 = `
52: 100.64.0.0/10 dev tun0 proto static scope link
5: 10.5.0.0/16 dev br-lan proto static scope link
`

func newFake(t *testing.T, s kernelState) *fakeKernel {
	k := &fakeKernel{links: lab.links(), rules: slices.Clone(foreignRules)}
	k.routes = append(lab.routes(t, IPv4, s.v4+foreignRoutes4), lab.routes(t, IPv6, s.v6)...)
	return k
}

// enter replaces the read-only tables of k with those of s.
func (s kernelState) enter(t *testing.T, k *fakeKernel) {
	k.mu.Lock()
	kept := slices.DeleteFunc(slices.Clone(k.routes), environment)
	k.mu.Unlock()
	env := slices.DeleteFunc(append(lab.routes(t, IPv4, s.v4), lab.routes(t, IPv6, s.v6)...), func(r Route) bool { return !environment(r) })
	k.setRoutes(append(kept, env...))
}

func TestReconcileGoldenAndIdempotent(t *testing.T) {
	for _, s := range kernelStates() {
		t.Run(s.name, func(t *testing.T) {
			k := newFake(t, s)
			sy := NewSyncer(k, nil)
			res, err := sy.Reconcile(s.in)
			if err != nil {
				t.Fatal(err)
			}
			if res.Changes == 0 {
				t.Error("first reconcile reported no changes")
			}
			checkGolden(t, "reconcile/"+s.name+".golden", k.dump())
			before := k.opCount()
			res, err = sy.Reconcile(s.in)
			if err != nil {
				t.Fatal(err)
			}
			if res.Changes != 0 || k.opCount() != before {
				t.Errorf("second reconcile changed %d things (%d kernel ops)", res.Changes, k.opCount()-before)
			}
		})
	}
}

// TestReconcileTransitions visits the states in random orders on one kernel
// (tailscale's TestRouterStates): every state must be reachable from every
// other and end exactly like a fresh reconcile.
func TestReconcileTransitions(t *testing.T) {
	states := kernelStates()
	fresh := make(map[string]string)
	for _, s := range states {
		k := newFake(t, s)
		if _, err := NewSyncer(k, nil).Reconcile(s.in); err != nil {
			t.Fatal(err)
		}
		fresh[s.name] = k.dump()
	}
	rng := rand.New(rand.NewPCG(1, 2))
	k := newFake(t, states[0])
	sy := NewSyncer(k, nil)
	prev := "(empty)"
	for range 5 * len(states) {
		s := states[rng.IntN(len(states))]
		s.enter(t, k)
		if _, err := sy.Reconcile(s.in); err != nil {
			t.Fatalf("%s → %s: %v", prev, s.name, err)
		}
		if got := k.dump(); got != fresh[s.name] {
			t.Fatalf("%s → %s differs from a fresh reconcile:\n%s", prev, s.name, lineDiff(fresh[s.name], got))
		}
		prev = s.name
	}
}

func TestReconcileForeignStateUntouched(t *testing.T) {
	s := kernelStates()[1]
	k := newFake(t, s)
	sy := NewSyncer(k, nil)
	if _, err := sy.Reconcile(s.in); err != nil {
		t.Fatal(err)
	}
	if err := sy.Cleanup(s.in); err != nil {
		t.Fatal(err)
	}
	pristine := newFake(t, s)
	if got, want := k.dump(), pristine.dump(); got != want {
		t.Errorf("after reconcile and cleanup the kernel differs from before:\n%s", lineDiff(want, got))
	}
	for _, r := range foreignRules {
		if !slices.Contains(k.rules, r) {
			t.Errorf("foreign rule %v %s was removed", r.Family, r)
		}
	}
}

func TestReconcileReplacesInPlace(t *testing.T) {
	s := kernelStates()[1]
	k := newFake(t, s)
	sy := NewSyncer(k, nil)
	if _, err := sy.Reconcile(s.in); err != nil {
		t.Fatal(err)
	}
	var ops []string
	k.fail = func(op string, v any) error {
		ops = append(ops, op)
		return nil
	}
	kernelStates()[5].enter(t, k) // both gateways change
	if _, err := sy.Reconcile(s.in); err != nil {
		t.Fatal(err)
	}
	if want := []string{"ReplaceRoute", "ReplaceRoute"}; !slices.Equal(ops, want) {
		t.Errorf("operations %v, want %v (a changed route is replaced, never deleted and re-added)", ops, want)
	}
}

func TestReconcileRemovesStaleState(t *testing.T) {
	s := kernelStates()[1]
	k := newFake(t, s)
	stale := []Rule{
		{Family: IPv4, Priority: 1001, IIF: "eth9", Action: ActionLookup, Table: 1},                  // old device
		{Family: IPv4, Priority: 2005, Mark: 0x500, Mask: 0x3f00, Action: ActionLookup, Table: 5},    // removed interface
		{Family: IPv6, Priority: 3004, Mark: 0x400, Mask: 0x3f00, Action: ActionUnreachable},         // legacy leftover
		{Family: IPv4, Priority: 2062, Mark: 0x3e00, Mask: 0x3f00, Action: ActionUnreachable},        // wanted, but twice
		{Family: IPv4, Priority: 2062, Mark: 0x3e00, Mask: 0x3f00, Action: ActionUnreachable},        //
		{Family: IPv4, Priority: 2061, Mark: 0x3d00, Mask: 0x3f00, Action: ActionUnreachable},        // wrong action
		{Family: IPv4, Priority: 3001, Mark: 0x100, Mask: 0xff00, Action: ActionUnreachable},         // old mask
		{Family: IPv4, Priority: 1003, IIF: "eth2", Action: ActionLookup, Table: 3},                  // wanted
		{Family: IPv4, Priority: 1001, IIF: "eth1", Action: ActionLookup, Table: 1, Unmanaged: true}, // not ours
	}
	k.rules = append(k.rules, stale...)
	k.routes = append(k.routes, lab.routes(t, IPv4, `
1: 10.66.0.0/16 dev eth2 proto static scope link
1: default via 203.0.113.1 dev eth1 proto static src 203.0.113.10 metric 10
1: default via 203.0.113.1 dev eth1 proto static src 203.0.113.10 metric 10
3: default via 198.51.100.1 dev eth2 proto static src 198.51.100.20 metric 20 linkdown
`)...)
	sy := NewSyncer(k, nil)
	if _, err := sy.Reconcile(s.in); err != nil {
		t.Fatal(err)
	}
	// The linkdown flag is the kernel's report of the link state: a route
	// equal but for it is kept as it is.
	if !strings.Contains(k.dump(), "metric 20 linkdown") {
		t.Error("the linkdown route of table 3 was rewritten")
	}
	for i := range k.routes {
		k.routes[i] = normalize(k.routes[i])
	}
	fresh := newFake(t, s)
	fresh.rules = append(fresh.rules, stale[len(stale)-1])
	if _, err := NewSyncer(fresh, nil).Reconcile(s.in); err != nil {
		t.Fatal(err)
	}
	if got, want := k.dump(), fresh.dump(); got != want {
		t.Errorf("stale state left behind:\n%s", lineDiff(want, got))
	}
}

func TestReconcileCollectsErrors(t *testing.T) {
	s := kernelStates()[1]
	k := newFake(t, s)
	boom := errors.New("boom")
	k.fail = func(op string, v any) error {
		if r, ok := v.(Route); ok && op == "AddRoute" && r.Table == 1 && r.IsDefault() {
			return boom
		}
		if r, ok := v.(Rule); ok && r.Priority == 3003 {
			return boom
		}
		return nil
	}
	sy := NewSyncer(k, nil)
	res, err := sy.Reconcile(s.in)
	if !errors.Is(err, boom) || res.Err != err {
		t.Fatalf("err = %v, res.Err = %v; want boom in both", err, res.Err)
	}
	for _, want := range []string{`add ipv4 rule "3003:`, `table 1: add route "default via 203.0.113.1`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if res.State == nil || len(res.State.Tables) != 3 {
		t.Fatalf("result state missing despite partial failure: %+v", res.State)
	}
	// Everything else was applied: table 3 and the other rules exist.
	dump := k.dump()
	for _, want := range []string{"ipv4 table 3: default via 198.51.100.1", "ipv4 2003:\tfrom all fwmark 0x300/0x3f00 lookup 3"} {
		if !strings.Contains(dump, want) {
			t.Errorf("kernel lacks %q after a partial failure:\n%s", want, dump)
		}
	}
	k.fail = nil
	if _, err := sy.Reconcile(s.in); err != nil {
		t.Fatalf("retry: %v", err)
	}
	fresh := newFake(t, s)
	if _, err := NewSyncer(fresh, nil).Reconcile(s.in); err != nil {
		t.Fatal(err)
	}
	if got, want := k.dump(), fresh.dump(); got != want {
		t.Errorf("retry did not converge:\n%s", lineDiff(want, got))
	}
}

func TestReconcileInvalidInputTouchesNothing(t *testing.T) {
	s := kernelStates()[1]
	k := newFake(t, s)
	_, err := NewSyncer(k, nil).Reconcile(Input{Mask: 0x1})
	if !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("err = %v", err)
	}
	if k.opCount() != 0 {
		t.Errorf("%d kernel operations for invalid input", k.opCount())
	}
}

// TestReconcileDifferential checks random main tables against a simple
// reference of spec §4R.1: after a reconcile, each interface table holds
// exactly the main routes of its own device plus the non-default routes of
// devices no enabled interface uses.
func TestReconcileDifferential(t *testing.T) {
	in := Input{Mask: 0x3f00, NoIPv6: true, Interfaces: []Interface{
		{Name: "wan", ID: 1, Family: IPv4, Enabled: true, Up: true, Device: "eth1"},
		{Name: "wanb", ID: 2, Family: IPv4, Enabled: true, Up: true, Device: "eth2"},
		{Name: "wanc", ID: 3, Family: IPv4, Enabled: false, Up: true, Device: "eth3"},
	}}
	devs := []string{"eth1", "eth2", "eth3", "br-lan", "tun0"}
	names := make(map[int]string)
	for name, idx := range lab {
		names[idx] = name
	}
	rng := rand.New(rand.NewPCG(7, 9))
	k := &fakeKernel{links: lab.links()}
	sy := NewSyncer(k, nil)
	for round := range 30 {
		var main []Route
		for i := range 40 {
			dev := devs[rng.IntN(len(devs))]
			line := "default dev " + dev + " proto static scope link metric " + strconv.Itoa(rng.IntN(50))
			if i%5 != 0 {
				line = "10." + strconv.Itoa(rng.IntN(8)) + "." + strconv.Itoa(rng.IntN(4)) + ".0/24 dev " + dev + " proto static scope link metric " + strconv.Itoa(rng.IntN(3))
			}
			main = append(main, lab.route(t, IPv4, tableMain, line))
		}
		kept := slices.DeleteFunc(slices.Clone(k.routes), environment)
		k.setRoutes(append(kept, main...))
		if _, err := sy.Reconcile(in); err != nil {
			t.Fatal(err)
		}
		for _, ifc := range in.Interfaces[:2] {
			want := make(map[Route]bool)
			for _, r := range main {
				dev := names[r.OIF]
				own := dev == ifc.Device
				other := dev == "eth1" || dev == "eth2"
				if own || !other && !r.IsDefault() {
					r.Table = uint32(ifc.ID)
					want[r] = true
				}
			}
			got := make(map[Route]bool)
			routes, _ := k.Routes(IPv4)
			for _, r := range routes {
				if r.Table == uint32(ifc.ID) {
					got[r] = true
				}
			}
			if len(got) != len(want) {
				t.Fatalf("round %d table %d: %d routes, reference has %d", round, ifc.ID, len(got), len(want))
			}
			for r := range want {
				if !got[r] {
					t.Fatalf("round %d table %d lacks %s", round, ifc.ID, r.format(nil))
				}
			}
		}
	}
}

// TestReconcileOrder checks "add before delete": an interface coming up gets
// its table filled before its rules point at it, and one going down loses
// its rules before its table is emptied.
func TestReconcileOrder(t *testing.T) {
	states := kernelStates()
	up, down := states[1], states[2] // two-wans, wanb-down
	k := newFake(t, down)
	sy := NewSyncer(k, nil)
	if _, err := sy.Reconcile(down.in); err != nil {
		t.Fatal(err)
	}
	var ops []string
	k.fail = func(op string, v any) error {
		if len(ops) == 0 || ops[len(ops)-1] != op {
			ops = append(ops, op)
		}
		return nil
	}
	if _, err := sy.Reconcile(up.in); err != nil {
		t.Fatal(err)
	}
	// wanb's table is filled, its rules added, and eth2's network, foreign
	// while wanb was down, leaves table 1.
	if want := []string{"AddRoute", "AddRule", "DelRoute"}; !slices.Equal(ops, want) {
		t.Errorf("interface up: operations %v, want %v", ops, want)
	}
	ops = nil
	if _, err := sy.Reconcile(down.in); err != nil {
		t.Fatal(err)
	}
	if want := []string{"AddRoute", "DelRule", "DelRoute"}; !slices.Equal(ops, want) {
		t.Errorf("interface down: operations %v, want %v", ops, want)
	}
}
