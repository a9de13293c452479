package daemon

import (
	"strings"
	"testing"

	"github.com/mwan3d/mwan3d/internal/testbed"
	"github.com/mwan3d/mwan3d/nft"
)

// TestKernelInspector reads rules, routes and the table of a namespace.
func TestKernelInspector(t *testing.T) {
	n := testbed.NewNS(t, "inspect")
	ctx := t.Context()
	for _, args := range [][]string{
		{"ip", "link", "add", "eth1", "type", "veth", "peer", "name", "isp1"},
		{"ip", "link", "set", "eth1", "up"},
		{"ip", "addr", "add", "10.0.1.2/24", "dev", "eth1"},
		{"ip", "route", "add", "default", "via", "10.0.1.1", "table", "1"},
		{"ip", "route", "add", "10.0.0.0/8", "via", "10.0.1.1", "table", "2"},
		{"ip", "rule", "add", "pref", "1001", "iif", "eth1", "lookup", "1"},
		{"ip", "rule", "add", "pref", "3001", "fwmark", "0x100/0x3f00", "unreachable"},
		{"ip", "-6", "rule", "add", "pref", "2002", "fwmark", "0x200/0x3f00", "lookup", "2"},
		{"nft", "add table inet mwan3; add chain inet mwan3 iface_in_wan; add table inet other; add chain inet other iface_in_wanb"},
	} {
		if out, err := n.Run(ctx, args[0], args[1:]...); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	k := kernelInspector{}
	if err := n.Do(func() error {
		p4, err := k.RulePriorities(nft.IPv4)
		if err != nil {
			return err
		}
		p6, err := k.RulePriorities(nft.IPv6)
		if err != nil {
			return err
		}
		if !p4[1001] || !p4[3001] || p4[2002] || !p6[2002] || p6[1001] {
			t.Errorf("priorities ipv4 %v, ipv6 %v", p4, p6)
		}
		for _, c := range []struct {
			table int
			dev   string
			want  bool
		}{{1, "eth1", true}, {2, "eth1", false}, {3, "eth1", false}, {1, "nosuch", false}, {1, "lo", false}} {
			got, err := k.DefaultRoute(nft.IPv4, c.table, c.dev)
			if err != nil || got != c.want {
				t.Errorf("DefaultRoute(table %d, %s) = %v, %v; want %v", c.table, c.dev, got, err, c.want)
			}
		}
		chains, err := k.Chains()
		if err != nil {
			return err
		}
		if !chains["iface_in_wan"] || chains["iface_in_wanb"] || len(chains) != 1 {
			t.Errorf("chains %v", chains)
		}
		text, err := k.Ruleset(ctx)
		if err != nil {
			return err
		}
		if !strings.Contains(text, "table inet mwan3 {") || !strings.Contains(text, "chain iface_in_wan {") {
			t.Errorf("ruleset:\n%s", text)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Run(ctx, "nft", "delete", "table", "inet", "mwan3"); err != nil {
		t.Fatal(err)
	}
	if err := n.Do(func() error {
		chains, err := k.Chains()
		if err != nil || len(chains) != 0 {
			t.Errorf("chains without the table: %v, %v", chains, err)
		}
		text, err := k.Ruleset(ctx)
		if err != nil || text != "" {
			t.Errorf("ruleset without the table: %q, %v", text, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
