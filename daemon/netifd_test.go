package daemon

import (
	"net/netip"
	"os"
	"testing"

	"github.com/mwan3d/mwan3d/config"
	"github.com/mwan3d/mwan3d/ubus"
)

func parseJSONFile(t *testing.T, path string) ubus.Table {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := ubus.ParseJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// TestNetifdRecorded decodes the recorded replies of netifd's field layout
// (ubus-vectors call-netifd-dump and call-netifd-status).
func TestNetifdRecorded(t *testing.T) {
	dump, err := ParseNetifdDump(parseJSONFile(t, "testdata/netifd-dump.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dump) != 2 || dump[0].Interface != "wan" || dump[1].Interface != "wanb" {
		t.Fatalf("dump = %+v", dump)
	}
	wan, wanb := dump[0], dump[1]
	if !wan.Up || wan.Uptime != 1234 || wan.L3Device != "eth1" || wan.Proto != "dhcp" || wan.Metric != 10 {
		t.Errorf("wan = %+v", wan)
	}
	if gw := wan.Gateway(config.IPv4); gw != netip.MustParseAddr("192.0.2.1") {
		t.Errorf("gateway %v", gw)
	}
	if gw := wan.Gateway(config.IPv6); gw.IsValid() {
		t.Errorf("ipv6 gateway %v", gw)
	}
	if src := wan.Source(config.IPv4); src != netip.MustParseAddr("192.0.2.10") {
		t.Errorf("source %v", src)
	}
	if p := wan.Prefixes(config.IPv4); len(p) != 1 || p[0] != netip.MustParsePrefix("192.0.2.0/24") {
		t.Errorf("prefixes %v", p)
	}
	if wanb.Up || wanb.L3Device != "" || wanb.Uptime != 0 || wanb.Device != "eth2" {
		t.Errorf("wanb = %+v", wanb)
	}
	st, err := ParseNetifdStatus(parseJSONFile(t, "testdata/netifd-status-wan.json"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Interface != "" || st.L3Device != wan.L3Device || st.Uptime != wan.Uptime {
		t.Errorf("status = %+v", st)
	}
}

func TestNetifdIPv6Source(t *testing.T) {
	n := NetifdInterface{
		IPv6Assign: []NetifdAssignment{{Address: "2001:db8:1::", Mask: 64, LocalAddress: NetifdAddress{Address: "2001:db8:1::1", Mask: 64}}},
		Routes:     []NetifdRoute{{Target: "::", Mask: 0, Nexthop: "fe80::1"}, {Target: "::", Mask: 0, Nexthop: "fe80::2", Table: int32(100)}},
	}
	if s := n.Source(config.IPv6); s != netip.MustParseAddr("2001:db8:1::1") {
		t.Errorf("source %v", s)
	}
	if g := n.Gateway(config.IPv6); g != netip.MustParseAddr("fe80::1") {
		t.Errorf("gateway %v", g)
	}
	n.IPv6 = []NetifdAddress{{Address: "2001:db8:2::5", Mask: 64}}
	if s := n.Source(config.IPv6); s != netip.MustParseAddr("2001:db8:2::5") {
		t.Errorf("source %v", s)
	}
	if s := (NetifdInterface{}).Source(config.IPv4); s.IsValid() {
		t.Errorf("empty source %v", s)
	}
}
