package rtsync

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// lab is the device set of the desired-state tests.
var lab = topo{"lo": 1, "br-lan": 2, "eth1": 3, "eth2": 4, "pppoe-wan": 5, "wwan0": 6, "tun0": 7, "eth3": 8}

// defaultInterfaces is the shipped config (spec §2.6): wan, wan6, wanb,
// wanb6, of which only wan is enabled.
func defaultInterfaces() []Interface {
	return []Interface{
		{Name: "wan", ID: 1, Family: IPv4, Enabled: true, Up: true, Device: "eth1"},
		{Name: "wan6", ID: 2, Family: IPv6, Enabled: false, Up: true, Device: "eth1"},
		{Name: "wanb", ID: 3, Family: IPv4, Enabled: false, Up: true, Device: "eth2"},
		{Name: "wanb6", ID: 4, Family: IPv6, Enabled: false, Up: true, Device: "eth2"},
	}
}

// lanMain4 is a typical OpenWrt IPv4 main table with wan on eth1 and wanb
// on eth2, and the matching local-table entries.
const lanMain4 = `
default via 203.0.113.1 dev eth1 proto static src 203.0.113.10 metric 10
default via 198.51.100.1 dev eth2 proto static src 198.51.100.20 metric 20
192.168.1.0/24 dev br-lan proto kernel scope link src 192.168.1.1
203.0.113.0/24 dev eth1 proto kernel scope link src 203.0.113.10
198.51.100.0/24 dev eth2 proto kernel scope link src 198.51.100.20
255: local 127.0.0.0/8 dev lo proto kernel scope host src 127.0.0.1
255: local 127.0.0.1 dev lo proto kernel scope host src 127.0.0.1
255: broadcast 127.255.255.255 dev lo proto kernel scope link src 127.0.0.1
255: local 192.168.1.1 dev br-lan proto kernel scope host src 192.168.1.1
255: broadcast 192.168.1.255 dev br-lan proto kernel scope link src 192.168.1.1
255: local 203.0.113.10 dev eth1 proto kernel scope host src 203.0.113.10
255: broadcast 203.0.113.255 dev eth1 proto kernel scope link src 203.0.113.10
255: local 198.51.100.20 dev eth2 proto kernel scope host src 198.51.100.20
255: broadcast 198.51.100.255 dev eth2 proto kernel scope link src 198.51.100.20
`

// lanMain6 is an IPv6 main table with a PPPoE wan6 and a delegated /56
// (spec §4R.3).
const lanMain6 = `
default from 2001:db8:100::/56 via fe80::1 dev pppoe-wan proto static metric 512 pref medium
default from 2001:db8:ffff::42 via fe80::1 dev pppoe-wan proto static metric 512 pref medium
2001:db8:100::/64 dev br-lan proto static metric 1024 pref medium
unreachable 2001:db8:100::/56 dev lo proto static metric 2147483647 pref medium
fe80::/64 dev br-lan proto kernel metric 256 pref medium
fe80::/64 dev pppoe-wan proto kernel metric 256 pref medium
fd00:1::/64 dev br-lan proto kernel metric 256 pref medium
255: local ::1 dev lo proto kernel metric 0 pref medium
255: multicast ff00::/8 dev br-lan proto kernel metric 256 pref medium
`

func snapshot(t *testing.T, tp topo, v4, v6 string) Snapshot {
	t.Helper()
	return Snapshot{Links: tp.links(), Routes: append(tp.routes(t, IPv4, v4), tp.routes(t, IPv6, v6)...)}
}

func TestDesiredGolden(t *testing.T) {
	twoWANs := []Interface{
		{Name: "wan", ID: 1, Family: IPv4, Enabled: true, Up: true, Device: "eth1"},
		{Name: "wan6", ID: 2, Family: IPv6, Enabled: true, Up: true, Device: "pppoe-wan"},
		{Name: "wanb", ID: 3, Family: IPv4, Enabled: true, Up: true, Device: "eth2"},
	}
	tests := []struct {
		name   string
		in     Input
		v4, v6 string
	}{
		{
			name: "default-config",
			in:   Input{Mask: 0x3f00, Interfaces: defaultInterfaces()},
			v4:   lanMain4,
			v6:   lanMain6,
		},
		{
			name: "two-wans-dual-stack",
			in:   Input{Mask: 0x3f00, Interfaces: twoWANs},
			v4:   lanMain4,
			v6:   lanMain6,
		},
		{
			name: "source-routing",
			in:   Input{Mask: 0x3f00, SourceRouting: true, Interfaces: twoWANs},
			v4:   lanMain4,
			v6:   lanMain6,
		},
		{
			// Spec §10.1: a point-to-point WAN has `default dev X` and a
			// peer /32; an LTE modem without gateway the same.
			name: "no-gateway-point-to-point",
			in: Input{Mask: 0x3f00, Interfaces: []Interface{
				{Name: "wan", ID: 1, Family: IPv4, Enabled: true, Up: true, Device: "pppoe-wan"},
				{Name: "lte", ID: 2, Family: IPv4, Enabled: true, Up: true, Device: "wwan0"},
			}},
			v4: `
default dev pppoe-wan proto static scope link metric 10
default dev wwan0 proto static scope link metric 20
10.64.64.64 dev pppoe-wan proto kernel scope link src 100.64.1.2
10.170.0.0/30 dev wwan0 proto kernel scope link src 10.170.0.2
192.168.1.0/24 dev br-lan proto kernel scope link src 192.168.1.1
`,
		},
		{
			// Spec §10.2: IPv4 wan and IPv6 wan6 share pppoe-wan; the
			// per-family device maps keep them apart.
			name: "pppoe-shared-device",
			in: Input{Mask: 0x3f00, Interfaces: []Interface{
				{Name: "wan", ID: 1, Family: IPv4, Enabled: true, Up: true, Device: "pppoe-wan"},
				{Name: "wan6", ID: 2, Family: IPv6, Enabled: true, Up: true, Device: "pppoe-wan"},
				{Name: "wanb", ID: 3, Family: IPv4, Enabled: true, Up: true, Device: "eth2"},
			}},
			v4: `
default dev pppoe-wan proto static scope link metric 10
default via 198.51.100.1 dev eth2 proto static src 198.51.100.20 metric 20
10.64.64.64 dev pppoe-wan proto kernel scope link src 100.64.1.2
198.51.100.0/24 dev eth2 proto kernel scope link src 198.51.100.20
192.168.1.0/24 dev br-lan proto kernel scope link src 192.168.1.1
`,
			v6: lanMain6,
		},
		{
			name: "no-ipv6",
			in:   Input{Mask: 0x3f00, NoIPv6: true, Interfaces: twoWANs},
			v4:   lanMain4,
		},
		{
			// rt_table_lookup 220 (e.g. strongSwan's table): its routes are
			// copied into every table and fill the custom set.
			name: "rt-table-lookup",
			in:   Input{Mask: 0x3f00, TableLookup: []uint32{220, 3}, Interfaces: twoWANs},
			v4: lanMain4 + `
220: 10.10.0.0/16 via 192.168.1.254 dev br-lan proto static src 192.168.1.1
220: 10.20.0.0/16 dev tun0 proto static scope link
220: default via 192.168.1.253 dev br-lan proto static
220: throw 10.30.0.0/16 proto static
`,
			v6: lanMain6 + `
220: fd20::/48 via fe80::2 dev br-lan proto static metric 1024 pref medium
`,
		},
		{
			// Spec §10.15: two interfaces on one device and family; both get
			// iif rules, the first in config order owns the routes.
			name: "two-interfaces-one-device",
			in: Input{Mask: 0x3f00, Interfaces: []Interface{
				{Name: "wan", ID: 1, Family: IPv4, Enabled: true, Up: true, Device: "eth1"},
				{Name: "wan_alias", ID: 2, Family: IPv4, Enabled: true, Up: true, Device: "eth1"},
			}},
			v4: lanMain4,
		},
		{
			// Spec §10.16: a disabled interface that is up is foreign: its
			// non-default routes are copied everywhere.
			name: "disabled-interface-is-foreign",
			in: Input{Mask: 0x3f00, Interfaces: []Interface{
				{Name: "wan", ID: 1, Family: IPv4, Enabled: true, Up: true, Device: "eth1"},
				{Name: "wanb", ID: 2, Family: IPv4, Enabled: false, Up: true, Device: "eth2"},
			}},
			v4: lanMain4,
		},
		{
			// An interface that is down gets no rules and no table; a
			// multipath route over two WANs is copied nowhere, one over a
			// single WAN device goes to that WAN only.
			name: "down-interface-and-multipath",
			in: Input{Mask: 0x3f00, Interfaces: []Interface{
				{Name: "wan", ID: 1, Family: IPv4, Enabled: true, Up: true, Device: "eth1"},
				{Name: "wanb", ID: 2, Family: IPv4, Enabled: true, Up: false},
				{Name: "wanc", ID: 3, Family: IPv4, Enabled: true, Up: true, Device: "eth3"},
			}},
			v4: `
default via 203.0.113.1 dev eth1 proto static metric 10
203.0.113.0/24 dev eth1 proto kernel scope link src 203.0.113.10
172.16.0.0/12 proto static nexthop via 203.0.113.1 dev eth1 weight 1 nexthop via 203.0.113.2 dev eth1 weight 2
10.0.0.0/8 proto static nexthop via 203.0.113.1 dev eth1 weight 1 nexthop via 192.0.2.1 dev eth3 weight 1
192.0.2.0/24 dev eth3 proto kernel scope link src 192.0.2.10 linkdown
`,
		},
		{
			// A non-contiguous 3-bit mask: iface_max 4, specials 5 and 6.
			name: "small-mask",
			in: Input{Mask: 0x700000, NoIPv6: true, Interfaces: []Interface{
				{Name: "wan", ID: 1, Family: IPv4, Enabled: true, Up: true, Device: "eth1"},
				{Name: "wanb", ID: 4, Family: IPv4, Enabled: true, Up: true, Device: "eth2"},
			}},
			v4: lanMain4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := Desired(tt.in, snapshot(t, lab, tt.v4, tt.v6))
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, "desired/"+tt.name+".golden", st.String())
		})
	}
}

// TestDesiredSpecExamples checks the literal examples of spec §3.4 and
// §4R.3 line by line.
func TestDesiredSpecExamples(t *testing.T) {
	in := Input{Mask: 0x3f00, Interfaces: []Interface{
		{Name: "wan", ID: 1, Family: IPv4, Enabled: true, Up: true, Device: "eth1"},
		{Name: "wan6", ID: 2, Family: IPv6, Enabled: true, Up: true, Device: "pppoe-wan"},
		{Name: "wanb", ID: 3, Family: IPv4, Enabled: true, Up: true, Device: "eth2"},
	}}
	st, err := Desired(in, snapshot(t, lab, lanMain4, lanMain6))
	if err != nil {
		t.Fatal(err)
	}
	var rules4 []string
	for _, r := range st.Rules {
		if r.Family == IPv4 {
			rules4 = append(rules4, r.String())
		}
	}
	wantRules := []string{
		"1001:\tfrom all iif eth1 lookup 1",
		"1003:\tfrom all iif eth2 lookup 3",
		"2001:\tfrom all fwmark 0x100/0x3f00 lookup 1",
		"2003:\tfrom all fwmark 0x300/0x3f00 lookup 3",
		"2061:\tfrom all fwmark 0x3d00/0x3f00 blackhole",
		"2062:\tfrom all fwmark 0x3e00/0x3f00 unreachable",
		"3001:\tfrom all fwmark 0x100/0x3f00 unreachable",
		"3003:\tfrom all fwmark 0x300/0x3f00 unreachable",
	}
	if !slices.Equal(rules4, wantRules) {
		t.Errorf("ip -4 rule:\n%s\nwant:\n%s", strings.Join(rules4, "\n"), strings.Join(wantRules, "\n"))
	}
	table := func(f Family, id uint32) []string {
		for _, tb := range st.Tables {
			if tb.Family == f && tb.ID == id {
				var lines []string
				for _, r := range tb.Routes {
					lines = append(lines, r.format(st.names))
				}
				slices.Sort(lines)
				return lines
			}
		}
		t.Fatalf("no %v table %d", f, id)
		return nil
	}
	want1 := []string{
		"192.168.1.0/24 dev br-lan proto kernel scope link src 192.168.1.1",
		"203.0.113.0/24 dev eth1 proto kernel scope link src 203.0.113.10",
		"default via 203.0.113.1 dev eth1 proto static src 203.0.113.10 metric 10",
	}
	if got := table(IPv4, 1); !slices.Equal(got, want1) {
		t.Errorf("ip -4 route show table 1:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want1, "\n"))
	}
	want2 := []string{
		"2001:db8:100::/64 dev br-lan proto static metric 1024 pref medium",
		"default via fe80::1 dev pppoe-wan proto static metric 512 pref medium",
		"fd00:1::/64 dev br-lan proto kernel metric 256 pref medium",
		"fe80::/64 dev pppoe-wan proto kernel metric 256 pref medium",
		"unreachable 2001:db8:100::/56 dev lo proto static metric 2147483647 pref medium",
	}
	if got := table(IPv6, 2); !slices.Equal(got, want2) {
		t.Errorf("ip -6 route show table 2:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want2, "\n"))
	}
	if !slices.Contains(st.Connected4, netip.MustParsePrefix("224.0.0.0/3")) {
		t.Errorf("connected ipv4 lacks 224.0.0.0/3: %v", st.Connected4)
	}
}

func TestDesiredIsDeterministic(t *testing.T) {
	in := Input{Mask: 0x3f00, TableLookup: []uint32{220}, Interfaces: defaultInterfaces()}
	in.Interfaces[2].Enabled = true
	snap := snapshot(t, lab, lanMain4, lanMain6)
	first, err := Desired(in, snap)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		shuffled := slices.Clone(snap.Routes)
		for j := range shuffled {
			k := (j*7 + i*13) % len(shuffled)
			shuffled[j], shuffled[k] = shuffled[k], shuffled[j]
		}
		st, err := Desired(in, Snapshot{Links: snap.Links, Routes: shuffled})
		if err != nil {
			t.Fatal(err)
		}
		if st.String() != first.String() {
			t.Fatalf("route order changed the result:\n%s", lineDiff(first.String(), st.String()))
		}
	}
}

func TestDesiredRejectsBadInput(t *testing.T) {
	_, err := Desired(Input{Mask: 0x3f00, Interfaces: []Interface{{Name: "x", ID: 99, Family: IPv4}}}, Snapshot{})
	if err == nil || !strings.Contains(err.Error(), "id 99") {
		t.Fatalf("err = %v, want an id error", err)
	}
}

// BenchmarkDesired measures the pure part of a reconcile (desired state of 4
// WANs from a main table of n LAN routes, and the diff against tables that
// already match).
func BenchmarkDesired(b *testing.B) {
	tp := topo{"lo": 1, "lan0": 2, "eth1": 3, "eth2": 4, "eth3": 5, "eth4": 6}
	in := Input{Mask: 0x3f00, NoIPv6: true}
	for i := 1; i <= 4; i++ {
		in.Interfaces = append(in.Interfaces, Interface{Name: "wan" + strconv.Itoa(i), ID: i, Family: IPv4, Enabled: true, Up: true, Device: "eth" + strconv.Itoa(i)})
	}
	for _, n := range []int{1000, 100000} {
		b.Run("main="+strconv.Itoa(n), func(b *testing.B) {
			var routes []Route
			for i := range n {
				dst := netip.AddrFrom4([4]byte{10, byte(100 + i/16384), byte(i / 64 % 256), byte(i % 64 * 4)})
				routes = append(routes, Route{Family: IPv4, Table: tableMain, Type: rtnUnicast, Protocol: 4, Scope: 253,
					Dst: netip.PrefixFrom(dst, 30), OIF: 2})
			}
			snap := Snapshot{Links: tp.links(), Routes: routes}
			st, err := Desired(in, snap)
			if err != nil {
				b.Fatal(err)
			}
			for _, t := range st.Tables {
				snap.Routes = append(snap.Routes, t.Routes...)
			}
			b.ReportAllocs()
			for b.Loop() {
				st, err := Desired(in, snap)
				if err != nil {
					b.Fatal(err)
				}
				var p plan
				for _, t := range st.Tables {
					planTable(&p, t.Routes, slices.Clone(t.Routes))
				}
				if len(p.addRoutes)+len(p.delRoutes) != 0 {
					b.Fatal("tables that match need changes")
				}
			}
		})
	}
}
