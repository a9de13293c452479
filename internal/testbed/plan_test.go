package testbed

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		name    string
		spec    Spec
		wantErr bool
		family  Family
	}{
		{"one WAN, default family", Spec{WANs: 1}, false, IPv4},
		{"eight WANs dual", Spec{WANs: MaxWANs, Family: Dual}, false, Dual},
		{"IPv6 only", Spec{WANs: 2, Family: IPv6}, false, IPv6},
		{"no WAN", Spec{WANs: 0}, true, 0},
		{"too many WANs", Spec{WANs: MaxWANs + 1}, true, 0},
		{"unknown family", Spec{WANs: 1, Family: 8}, true, 0},
		{"negative timeout", Spec{WANs: 1, FlowTimeout: -1}, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.spec.validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("validate() error = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && (got.Family != tt.family || got.FlowTimeout != defaultFlowTimeout) {
				t.Errorf("validate() = %+v, want family %v and the default timeout", got, tt.family)
			}
		})
	}
}

func TestPlanWANIsUniqueAndInRange(t *testing.T) {
	seen := map[string]int{}
	mark := func(i int, kind, v string) {
		t.Helper()
		if j, dup := seen[kind+v]; dup {
			t.Errorf("WAN %d reuses %s %s of WAN %d", i, kind, v, j)
		}
		seen[kind+v] = i
	}
	fixed := append(append([]netip.Addr{echo4, echo6, http4, http6, routerLAN4, routerLAN6, lanAddr4, lanAddr6}, targets4...), targets6...)
	for _, a := range fixed {
		mark(-1, "addr", a.String())
	}
	for i := range MaxWANs {
		p, err := planWAN(i)
		if err != nil {
			t.Fatal(err)
		}
		mark(i, "name", p.name)
		mark(i, "name", p.name6)
		mark(i, "dev", p.dev)
		mark(i, "inetdev", p.inetDev)
		mark(i, "metric", string(rune(p.metric)))
		for _, pf := range []netip.Prefix{p.router4, p.router6, p.public4, p.public6, p.inet4, p.inet6} {
			mark(i, "addr", pf.Addr().String())
			if publicNet4.Contains(pf.Addr()) || publicNet6.Contains(pf.Addr()) || lanPrefix4.Contains(pf.Addr()) || lanPrefix6.Contains(pf.Addr()) {
				t.Errorf("WAN %d address %s overlaps the internet host or the LAN", i, pf)
			}
		}
		for _, gw := range []struct {
			gw  netip.Addr
			net netip.Prefix
		}{{p.gateway4, p.router4}, {p.gateway6, p.router6}, {p.inet4.Addr(), p.public4}, {p.inet6.Addr(), p.public6}} {
			if !gw.net.Masked().Contains(gw.gw) || gw.gw == gw.net.Addr() {
				t.Errorf("WAN %d: peer %s not a distinct address of %s", i, gw.gw, gw.net)
			}
		}
		if len(p.dev) > 15 || len(p.inetDev) > 15 {
			t.Errorf("WAN %d: device name too long", i)
		}
	}
	for _, i := range []int{-1, MaxWANs} {
		if _, err := planWAN(i); err == nil {
			t.Errorf("planWAN(%d) accepted", i)
		}
	}
	p, _ := planWAN(2)
	if p.name != "wanc" || p.name6 != "wanc6" || p.dev != "eth3" || p.metric != 30 ||
		p.router4.String() != "10.0.3.2/24" || p.public4.String() != "203.0.113.26/29" ||
		p.router6.String() != "fd00:3::2/64" || p.public6.String() != "2001:db8:3::2/64" {
		t.Errorf("planWAN(2) = %+v", p)
	}
}

func TestFamily(t *testing.T) {
	if !Dual.Has(IPv4) || !Dual.Has(IPv6) || IPv4.Has(IPv6) || IPv6.Has(Dual) {
		t.Error("Family.Has is wrong")
	}
	for f, want := range map[Family]string{IPv4: "IPv4", IPv6: "IPv6", Dual: "Dual", 8: "Family(8)"} {
		if f.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(f), f.String(), want)
		}
	}
}

func TestCheckInternetAddrs(t *testing.T) {
	a := netip.MustParseAddr
	tests := []struct {
		name    string
		family  Family
		have    []netip.Addr
		add     []netip.Addr
		want    []netip.Addr
		wantErr string
	}{
		{"real-world targets", Dual, targets4, []netip.Addr{a("1.1.1.1"), a("2606:4700:4700::1111"), a("::ffff:8.8.8.8")},
			[]netip.Addr{a("1.1.1.1"), a("2606:4700:4700::1111"), a("8.8.8.8")}, ""},
		{"nothing", IPv4, nil, nil, []netip.Addr{}, ""},
		{"spare public address", IPv4, targets4, []netip.Addr{a("198.51.100.99")}, []netip.Addr{a("198.51.100.99")}, ""},
		{"wrong family", IPv4, nil, []netip.Addr{a("2606:4700:4700::1111")}, nil, "the testbed is IPv4"},
		{"duplicate of a target", IPv4, targets4, []netip.Addr{a("198.51.100.1")}, nil, "already present"},
		{"duplicate in the call", IPv4, nil, []netip.Addr{a("1.1.1.1"), a("1.1.1.1")}, nil, "already present"},
		{"unspecified", IPv4, nil, []netip.Addr{a("0.0.0.0")}, nil, "not a routable unicast"},
		{"invalid", IPv4, nil, []netip.Addr{{}}, nil, "not a routable unicast"},
		{"multicast", IPv6, nil, []netip.Addr{a("ff02::1")}, nil, "not a routable unicast"},
		{"link-local", IPv6, nil, []netip.Addr{a("fe80::1")}, nil, "not a routable unicast"},
		{"loopback", IPv4, nil, []netip.Addr{a("127.0.0.2")}, nil, "not a routable unicast"},
		{"LAN", IPv4, nil, []netip.Addr{a("192.168.1.7")}, nil, "inside the testbed's network 192.168.1.0/24"},
		{"WAN link of an unbuilt WAN", IPv6, nil, []netip.Addr{a("fd00:8::9")}, nil, "inside the testbed's network fd00:8::/64"},
		{"ISP uplink", IPv4, nil, []netip.Addr{a("203.0.113.9")}, nil, "inside the testbed's network 203.0.113.8/29"},
		{"too many", IPv4, make([]netip.Addr, MaxInternetAddrs), []netip.Addr{a("1.1.1.1")}, nil, "exceed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := checkInternetAddrs(tt.family, tt.have, tt.add)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
