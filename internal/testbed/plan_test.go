package testbed

import (
	"net/netip"
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
