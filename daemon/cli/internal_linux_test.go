package cli

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/mwan3d/mwan3d/internal/golden"
	"github.com/mwan3d/mwan3d/internal/testbed"
)

// ipNormalise removes from `ip` output what gatherNet cannot report (see
// iproute.go) and what iproute2 versions print differently: the qdisc,
// IPv6 route preferences, "group default" (iproute2 6.1 leaves it out for
// -6) and trailing spaces.
var ipNormalise = []*regexp.Regexp{
	regexp.MustCompile(` qdisc \S+`), regexp.MustCompile(` pref \S+`), regexp.MustCompile(` group default`),
	regexp.MustCompile(`(?m) +$`),
}

func normaliseIP(s string) string {
	for _, re := range ipNormalise {
		s = re.ReplaceAllString(s, "")
	}
	return strings.TrimRight(s, "\n") + "\n"
}

// TestGatherNetMatchesIP compares what internal prints with the ip tool,
// in a namespace with mwan3-like rules, tables and routes of every kind.
func TestGatherNetMatchesIP(t *testing.T) {
	n := testbed.NewNS(t, "cli-ip")
	ctx := t.Context()
	setup := [][]string{
		{"link", "add", "eth1", "type", "veth", "peer", "name", "isp1"},
		{"link", "add", "eth2", "type", "veth", "peer", "name", "isp2"},
		{"link", "set", "eth1", "up"}, {"link", "set", "isp1", "up"}, {"link", "set", "eth2", "up"},
		{"addr", "add", "10.0.1.2/24", "brd", "+", "dev", "eth1"},
		{"addr", "add", "10.0.1.3/24", "dev", "eth1", "label", "eth1:1"},
		{"addr", "add", "10.0.2.2/24", "dev", "eth2", "valid_lft", "3600", "preferred_lft", "1800"},
		{"-6", "addr", "add", "2001:db8:1::2/64", "dev", "eth1", "nodad"},
		{"-6", "addr", "add", "2001:db8:2::2/64", "dev", "eth2", "nodad", "noprefixroute"},
		{"route", "add", "default", "via", "10.0.1.1", "metric", "10"},
		{"route", "add", "default", "via", "10.0.2.1", "dev", "eth2", "metric", "20", "proto", "static", "onlink"},
		{"route", "add", "unreachable", "10.9.0.0/16"},
		{"route", "add", "198.51.100.0/24", "proto", "dhcp", "nexthop", "via", "10.0.1.1", "weight", "1", "nexthop", "via", "10.0.2.1", "weight", "3"},
		{"route", "add", "default", "via", "10.0.1.1", "table", "1", "proto", "static"},
		{"route", "add", "10.0.1.0/24", "dev", "eth1", "table", "1", "scope", "link", "src", "10.0.1.2"},
		{"route", "add", "blackhole", "default", "table", "3"},
		{"-6", "route", "add", "default", "via", "2001:db8:1::1", "dev", "eth1", "metric", "1024"},
		{"-6", "route", "add", "default", "via", "2001:db8:2::1", "dev", "eth2", "table", "2", "onlink"},
		{"rule", "add", "pref", "1001", "iif", "eth1", "lookup", "1"},
		{"rule", "add", "pref", "2001", "fwmark", "0x100/0x3f00", "lookup", "1"},
		{"rule", "add", "pref", "2061", "fwmark", "0x3d00/0x3f00", "blackhole"},
		{"rule", "add", "pref", "2062", "fwmark", "0x3e00/0x3f00", "unreachable"},
		{"rule", "add", "pref", "3001", "fwmark", "0x100/0x3f00", "unreachable"},
		{"rule", "add", "pref", "4000", "not", "from", "192.168.1.0/24", "to", "10.1.2.3", "oif", "eth2", "prohibit"},
		{"rule", "add", "pref", "4001", "fwmark", "7", "goto", "32766"},
		{"rule", "add", "pref", "4002", "lookup", "main", "suppress_prefixlength", "0"},
		{"-6", "rule", "add", "pref", "2002", "fwmark", "0x200/0x3f00", "lookup", "2"},
		{"-6", "rule", "add", "pref", "1002", "from", "2001:db8:2::/48", "iif", "eth2", "lookup", "2"},
	}
	for _, args := range setup {
		if out, err := n.Run(ctx, "ip", args...); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	for _, v6 := range []bool{false, true} {
		fam := "-4"
		if v6 {
			fam = "-6"
		}
		var st *netState
		if err := n.Do(func() error {
			var err error
			st, err = gatherNet(v6)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		ip := func(args ...string) string {
			out, err := n.Run(context.Background(), "ip", append([]string{fam}, args...)...)
			if err != nil && !strings.Contains(out, "FIB table does not exist") {
				t.Fatal(err)
			}
			if err != nil {
				return "\n"
			}
			return normaliseIP(out)
		}
		for _, c := range []struct {
			what      string
			got, want string
		}{
			{"a show", formatAddrs(st.Links, v6), ip("a", "show")},
			{"route show", formatRoutes(st.Main), ip("route", "show")},
			{"rule show", formatRules(st.Rules), ip("rule", "show")},
			{"route list table 1", formatRoutes(st.Tables[1]), ip("route", "list", "table", "1")},
			{"route list table 2", formatRoutes(st.Tables[2]), ip("route", "list", "table", "2")},
			{"route list table 3", formatRoutes(st.Tables[3]), ip("route", "list", "table", "3")},
		} {
			if normaliseIP(c.got) != c.want && !(c.got == "" && c.want == "\n") {
				t.Errorf("ip %s %s:\n%s\nwant:\n%s\n%s", fam, c.what, c.got, c.want, golden.Diff(c.want, normaliseIP(c.got)))
			}
		}
		for tb := range st.Tables {
			if tb < 1 || tb > maxUserTable {
				t.Errorf("table %d listed", tb)
			}
		}
	}
}
