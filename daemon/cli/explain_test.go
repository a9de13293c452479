package cli

import (
	"strings"
	"testing"

	"github.com/mwan3d/mwan3d/ubus"
)

func TestParseExplain(t *testing.T) {
	tests := []struct {
		args []string
		want string // the method's arguments, or the error
	}{
		{[]string{"198.51.100.7"}, `{"dst":"198.51.100.7"}`},
		{[]string{"198.51.100.7", "tcp", "443"}, `{"dst":"198.51.100.7","proto":"tcp","dport":443}`},
		{[]string{"--src", "192.168.1.100", "198.51.100.7", "udp", "--sport=5000", "53"},
			`{"dst":"198.51.100.7","src":"192.168.1.100","proto":"udp","sport":5000,"dport":53}`},
		{[]string{"-src=10.0.0.1", "10.0.0.2", "6"}, `{"dst":"10.0.0.2","src":"10.0.0.1","proto":"6"}`},
		{[]string{"2001:db8::1", "--src-iface", "guest"}, `{"dst":"2001:db8::1","src_iface":"guest"}`},
		{[]string{"::ffff:1.2.3.4"}, `{"dst":"1.2.3.4"}`},
		{nil, "expecting a destination address"},
		{[]string{"1.2.3.4", "tcp", "80", "extra"}, "too many arguments"},
		{[]string{"example.org"}, `destination "example.org" is not an IP address`},
		{[]string{"fe80::1%eth0"}, `destination "fe80::1%eth0" is not an IP address`},
		{[]string{"1.2.3.4", "tcp", "0"}, `destination port "0" is not a port number (1-65535)`},
		{[]string{"1.2.3.4", "tcp", "65536"}, `destination port "65536" is not a port number (1-65535)`},
		{[]string{"1.2.3.4", "--sport"}, "option --sport needs a value"},
		{[]string{"1.2.3.4", "--sport", "x"}, `--sport "x" is not a port number (1-65535)`},
		{[]string{"1.2.3.4", "--dport", "80"}, "unknown option --dport"},
		{[]string{"1.2.3.4", "--src", "::1"}, "--src and the destination are of different families"},
		{[]string{"1.2.3.4", "--src", "nowhere"}, `--src "nowhere" is not an IP address`},
		{[]string{"1.2.3.4", "--src-iface="}, "--src-iface needs an interface name"},
		{[]string{"1.2.3.4", " "}, "empty protocol"},
	}
	for _, tt := range tests {
		q, err := parseExplain(tt.args)
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			got = ubus.FormatJSON(q.args(), -1)
		}
		if got != tt.want {
			t.Errorf("parseExplain(%q) = %s, want %s", tt.args, got, tt.want)
		}
	}
}

// TestExplainOutput prints replies of every stage and action.
func TestExplainOutput(t *testing.T) {
	q := func(args ...string) explainQuery {
		t.Helper()
		q, err := parseExplain(args)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	parse := func(s string) ubus.Table {
		t.Helper()
		rep, err := ubus.ParseJSON([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	cases := []struct {
		q   explainQuery
		rep string
	}{
		{q("198.51.100.7", "tcp", "443", "--src", "192.168.1.100", "--sport", "40000"),
			`{"family":"ipv4","stage":"rule","rule":"https","policy":"balanced","sticky":true,"action":"balance",
			"interfaces":[{"interface":"wan","device":"eth1","probability":0.666667,"percent":66},
			{"interface":"wanb","device":"eth2","probability":0.333333,"percent":33}],"notes":[]}`},
		{q("198.51.100.7", "udp"),
			`{"family":"ipv4","stage":"rule","rule":"vpn","policy":"wanb_only","sticky":false,"action":"unreachable",
			"interfaces":[],"notes":["rule vpn_set: matches only if the destination is in set vpn (not checked)"]}`},
		{q("198.51.100.7", "--src-iface", "guest"),
			`{"family":"ipv4","stage":"rule","rule":"from_guest","policy":"wanc_only","sticky":false,"action":"blackhole","interfaces":[],"notes":[]}`},
		{q("192.168.1.20"), `{"family":"ipv4","stage":"bypass","sticky":false,"action":"main","interfaces":[],"notes":[]}`},
		{q("2001:db8::1", "icmpv6"), `{"family":"ipv6","stage":"none","sticky":false,"action":"main","interfaces":[],"notes":[]}`},
		{q("198.51.100.7", "--src", "203.0.113.5", "--src-iface", "wan"),
			`{"family":"ipv4","stage":"iface_in","sticky":false,"action":"balance","interfaces":[{"interface":"wan","device":"eth1","probability":1.0,"percent":100}],"notes":[]}`},
		{q("198.51.100.7"), `{"family":"ipv4","stage":"rule","rule":"r","policy":"p","sticky":false,"action":"something new"}`},
	}
	var b strings.Builder
	for _, c := range cases {
		writeExplain(&b, c.q, parse(c.rep))
		b.WriteString("--\n")
	}
	checkGolden(t, "explain", b.String())
}

func FuzzParseExplain(f *testing.F) {
	f.Add("198.51.100.7 tcp 443 --src 192.168.1.100 --sport 5000")
	f.Add("2001:db8::1 --src-iface=guest udp")
	f.Add("--src= -- - 1.2.3.4 --sport")
	f.Add("::ffff:10.0.0.1 6 65535")
	f.Fuzz(func(t *testing.T, line string) {
		q, err := parseExplain(strings.Fields(line))
		if err != nil {
			return
		}
		if !q.dst.IsValid() || q.dport < 0 || q.dport > 65535 || q.sport < 0 || q.sport > 65535 {
			t.Fatalf("accepted %q as %+v", line, q)
		}
		// The arguments encode, and the description prints.
		if _, err := ubus.AppendTable(nil, q.args()); err != nil {
			t.Fatalf("args of %q: %v", line, err)
		}
		_ = q.String()
	})
}
