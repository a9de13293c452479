package daemon

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
)

// legacyMangle is `iptables -t mangle -S` with legacy mwan3 running (spec
// §4.8) next to a foreign chain with a rule of its own.
const legacyMangle = `-P PREROUTING ACCEPT
-P INPUT ACCEPT
-P FORWARD ACCEPT
-P OUTPUT ACCEPT
-P POSTROUTING ACCEPT
-N foreign
-N mwan3_connected_ipv4
-N mwan3_hook
-N mwan3_ifaces_in
-N mwan3_iface_in_wan
-N mwan3_policy_balanced
-N mwan3_rules
-A PREROUTING -m comment --comment "not -j mwan3_hook" -j foreign
-A PREROUTING -j mwan3_hook
-A OUTPUT -p tcp -j foreign
-A OUTPUT -j mwan3_hook
-A foreign -j MARK --set-xmark 0x1/0x1
-A foreign -g mwan3_rules
-A mwan3_hook -j CONNMARK --restore-mark --nfmask 0x3f00 --ctmask 0x3f00
-A mwan3_hook -m mark --mark 0x0/0x3f00 -j mwan3_ifaces_in
-A mwan3_hook -m mark --mark 0x0/0x3f00 -j mwan3_rules
-A mwan3_ifaces_in -m mark --mark 0x0/0x3f00 -j mwan3_iface_in_wan
-A mwan3_iface_in_wan -i eth1 -m set --match-set mwan3_connected_ipv4 src -m mark --mark 0x0/0x3f00 -m comment --comment "default" -j MARK --set-xmark 0x3f00/0x3f00
-A mwan3_rules -p tcp -m multiport --dports 443 -m comment --comment "https" -j mwan3_policy_balanced
`

func TestParseMangle(t *testing.T) {
	m := parseMangle(legacyMangle)
	wantChains := []string{"mwan3_connected_ipv4", "mwan3_hook", "mwan3_ifaces_in", "mwan3_iface_in_wan", "mwan3_policy_balanced", "mwan3_rules"}
	if !slices.Equal(m.chains, wantChains) {
		t.Errorf("chains %q, want %q", m.chains, wantChains)
	}
	if !slices.Equal(m.order, []string{"PREROUTING", "OUTPUT", "foreign"}) {
		t.Errorf("chains with jumps %q", m.order)
	}
	for chain, want := range map[string][]int{"PREROUTING": {2}, "OUTPUT": {2}, "foreign": {2}} {
		if got := m.jumps[chain]; !slices.Equal(got, want) {
			t.Errorf("jumps of %s: %v, want %v", chain, got, want)
		}
	}
	if m := parseMangle("-P PREROUTING ACCEPT\n-N foreign\n-A PREROUTING -j foreign\n"); m.found() {
		t.Errorf("clean table: %+v", m)
	}
	// Several jumps in one chain are deleted from the last.
	m = parseMangle("-A OUTPUT -j mwan3_hook\n-A OUTPUT -j ACCEPT\n-A OUTPUT --jump mwan3_x\n")
	if got := m.jumps["OUTPUT"]; !slices.Equal(got, []int{3, 1}) {
		t.Errorf("jumps %v, want [3 1]", got)
	}
}

func TestSplitArgs(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"-A X -j Y\n", []string{"-A", "X", "-j", "Y"}},
		{`-A X -m comment --comment "a b" -j Y`, []string{"-A", "X", "-m", "comment", "--comment", "a b", "-j", "Y"}},
		{`--comment "say \"hi\" \\ ok"`, []string{"--comment", `say "hi" \ ok`}},
		{`--comment ""`, []string{"--comment", ""}},
		{"  \t ", nil},
	}
	for _, tt := range tests {
		if got := splitArgs(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("splitArgs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLegacySets(t *testing.T) {
	got := legacySets("mwan3_connected\nmwan3_connected_v4\nforeign\nmy_mwan3_set\n mwan3_sticky_v4_https \n")
	want := []string{"mwan3_connected", "mwan3_connected_v4", "mwan3_sticky_v4_https"}
	if !slices.Equal(got, want) {
		t.Errorf("sets %q, want %q", got, want)
	}
}

func TestLegacyRule(t *testing.T) {
	tests := []struct {
		mask  uint32
		prio  int
		swept bool
	}{
		{0x3f00, 500, false},
		{0x3f00, 999, false},
		{0x3f00, 1000, true}, // legacy's range starts here, our slots after
		{0x3f00, 1001, false},
		{0x3f00, 1060, false},
		{0x3f00, 1061, true},
		{0x3f00, 2060, false},
		{0x3f00, 2061, false}, // blackhole
		{0x3f00, 2062, false}, // unreachable
		{0x3f00, 2063, true},
		{0x3f00, 3001, false},
		{0x3f00, 3061, true},
		{0x3f00, 3999, true},
		{0x3f00, 4000, false},
		{0xff00, 1252, false}, // 8 bits: ids up to 252
		{0xff00, 2253, false},
		{0xff00, 2254, false},
		{0xff00, 2255, true},
		{0x0700, 1004, false}, // 3 bits: ids up to 4
		{0x0700, 1005, true},
		{0x0700, 2005, false},
		{0x0700, 2006, false},
		{0x0700, 2007, true},
	}
	for _, tt := range tests {
		if got := legacyRule(tt.mask, tt.prio); got != tt.swept {
			t.Errorf("legacyRule(%#x, %d) = %v, want %v", tt.mask, tt.prio, got, tt.swept)
		}
	}
}

// fakeLegacy answers the listings and records every command.
type fakeLegacy struct {
	mangle  [2]string // IPv4, IPv6; "-" : not installed
	sets    string    // "-" : not installed
	rules   []int
	deleted []int
	calls   []string
}

func (f *fakeLegacy) Iptables(_ context.Context, ipv6 bool, args ...string) (string, error) {
	i, prog := 0, "iptables"
	if ipv6 {
		i, prog = 1, "ip6tables"
	}
	if f.mangle[i] == "-" {
		return "", ErrNoTool
	}
	f.calls = append(f.calls, prog+" "+strings.Join(args, " "))
	if slices.Contains(args, "-S") {
		return f.mangle[i], nil
	}
	return "", nil
}

func (f *fakeLegacy) Ipset(_ context.Context, args ...string) (string, error) {
	if f.sets == "-" {
		return "", ErrNoTool
	}
	f.calls = append(f.calls, "ipset "+strings.Join(args, " "))
	if args[0] == "list" {
		return f.sets, nil
	}
	if args[0] == "destroy" && args[1] == "mwan3_busy" {
		return "", fmt.Errorf("ipset destroy mwan3_busy: in use")
	}
	return "", nil
}

func (f *fakeLegacy) DeleteRules(del func(int) bool) (int, error) {
	f.calls = append(f.calls, "rules")
	n := 0
	f.rules = slices.DeleteFunc(f.rules, func(p int) bool {
		if del(p) {
			f.deleted = append(f.deleted, p)
			n++
			return true
		}
		return false
	})
	return n, nil
}

func TestSweepLegacy(t *testing.T) {
	listings := []string{"iptables -w -t mangle -S", "ip6tables -w -t mangle -S", "ipset list -n"}
	tests := []struct {
		name    string
		k       fakeLegacy
		calls   []string // after the listings
		deleted []int
		logs    []string
	}{{
		name: "clean",
		k:    fakeLegacy{mangle: [2]string{"-P PREROUTING ACCEPT\n", ""}, sets: "foreign\n", rules: []int{1001, 1500, 2061}},
	}, {
		name: "no tools",
		k:    fakeLegacy{mangle: [2]string{"-", "-"}, sets: "-", rules: []int{1500}},
	}, {
		name: "legacy",
		k: fakeLegacy{mangle: [2]string{legacyMangle, "-N mwan3_hook\n-A OUTPUT -j mwan3_hook\n"},
			sets: "mwan3_connected\nmwan3_connected_v4\nforeign\n", rules: []int{500, 1000, 1001, 1500, 2001, 2061, 3001, 3999, 4000}},
		calls: []string{
			"iptables -w -t mangle -D PREROUTING 2", "iptables -w -t mangle -D OUTPUT 2", "iptables -w -t mangle -D foreign 2",
			"iptables -w -t mangle -F mwan3_connected_ipv4", "iptables -w -t mangle -F mwan3_hook", "iptables -w -t mangle -F mwan3_ifaces_in",
			"iptables -w -t mangle -F mwan3_iface_in_wan", "iptables -w -t mangle -F mwan3_policy_balanced", "iptables -w -t mangle -F mwan3_rules",
			"iptables -w -t mangle -X mwan3_connected_ipv4", "iptables -w -t mangle -X mwan3_hook", "iptables -w -t mangle -X mwan3_ifaces_in",
			"iptables -w -t mangle -X mwan3_iface_in_wan", "iptables -w -t mangle -X mwan3_policy_balanced", "iptables -w -t mangle -X mwan3_rules",
			"ip6tables -w -t mangle -D OUTPUT 1", "ip6tables -w -t mangle -F mwan3_hook", "ip6tables -w -t mangle -X mwan3_hook",
			"ipset flush mwan3_connected", "ipset flush mwan3_connected_v4", "ipset destroy mwan3_connected", "ipset destroy mwan3_connected_v4",
			"rules",
		},
		deleted: []int{1000, 1500, 3999},
		logs: []string{
			`msg="removed legacy mwan3 iptables mangle chains" chains=6 jumps=3`,
			`msg="removed legacy mwan3 ip6tables mangle chains" chains=1 jumps=1`,
			`msg="removed legacy mwan3 ipsets" sets=2`,
			`msg="removed legacy mwan3 ip rules (priorities 1000-3999 outside mwan3d's own)" rules=3`,
		},
	}, {
		name:    "only a set, one in use",
		k:       fakeLegacy{mangle: [2]string{"", "-"}, sets: "mwan3_busy\nmwan3_free\n", rules: []int{1500, 2001}},
		calls:   []string{"ipset flush mwan3_busy", "ipset flush mwan3_free", "ipset destroy mwan3_busy", "ipset destroy mwan3_free", "rules"},
		deleted: []int{1500},
		logs: []string{
			`msg="removing legacy mwan3 ipsets" err="destroy mwan3_busy: ipset destroy mwan3_busy: in use"`,
			`msg="removed legacy mwan3 ipsets" sets=1`,
			`msg="removed legacy mwan3 ip rules (priorities 1000-3999 outside mwan3d's own)" rules=1`,
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey || a.Key == slog.LevelKey {
					return slog.Attr{}
				}
				return a
			}}))
			sweepLegacy(t.Context(), &tt.k, 0x3f00, log)
			var want []string
			for _, l := range listings {
				prog, _, _ := strings.Cut(l, " ")
				if (prog == "iptables" && tt.k.mangle[0] != "-") || (prog == "ip6tables" && tt.k.mangle[1] != "-") || (prog == "ipset" && tt.k.sets != "-") {
					want = append(want, l)
				}
			}
			want = append(want, tt.calls...)
			if !slices.Equal(tt.k.calls, want) {
				t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(tt.k.calls, "\n"), strings.Join(want, "\n"))
			}
			if !slices.Equal(tt.k.deleted, tt.deleted) {
				t.Errorf("deleted rules %v, want %v", tt.k.deleted, tt.deleted)
			}
			var logs []string
			for l := range strings.Lines(buf.String()) {
				logs = append(logs, strings.TrimSuffix(l, "\n"))
			}
			if !slices.Equal(logs, tt.logs) {
				t.Errorf("logs:\n%s\nwant:\n%s", strings.Join(logs, "\n"), strings.Join(tt.logs, "\n"))
			}
		})
	}
}

func FuzzParseMangle(f *testing.F) {
	f.Add(legacyMangle)
	f.Add("-A X -m comment --comment \"a \\\" -j mwan3_y\" -j mwan3_z\n")
	f.Add("-N\n-A\n-A mwan3_a -j mwan3_b\n")
	f.Fuzz(func(t *testing.T, s string) {
		m := parseMangle(s)
		for _, c := range m.chains {
			if !strings.HasPrefix(c, legacyPrefix) {
				t.Fatalf("chain %q", c)
			}
		}
		for _, c := range m.order {
			if strings.HasPrefix(c, legacyPrefix) || len(m.jumps[c]) == 0 || !slices.IsSortedFunc(m.jumps[c], func(a, b int) int { return b - a }) {
				t.Fatalf("jumps of %q: %v", c, m.jumps[c])
			}
		}
	})
}
