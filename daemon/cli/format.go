package cli

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/mwan3d/mwan3d/ubus"
)

// This file prints the daemon's replies as legacy mwan3 printed the same
// state (spec §8). Every function takes the replies as they arrive, so the
// tests feed them recorded or constructed replies.

// helpEntries are the commands of `mwan3 help`, legacy's first.
var helpEntries = [][2]string{
	{"start", "Load iptables rules, ip rules and ip routes"},
	{"stop", "Unload iptables rules, ip rules and ip routes"},
	{"restart", "Reload iptables rules, ip rules and ip routes"},
	{"ifup <iface>", "Load rules and routes for specific interface"},
	{"ifdown <iface>", "Unload rules and routes for specific interface"},
	{"interfaces", "Show interfaces status"},
	{"policies", "Show currently active policy"},
	{"connected", "Show directly connected networks"},
	{"rules", "Show active rules"},
	{"status", "Show all status"},
	{"internal <ipv4|ipv6>", "Show internal configuration <default: ipv4>"},
	{"use <iface> <cmd>", "Run a command bound to <iface> and avoid mwan3 rules"},
	{"explain <dst> [args]", "Show how a new connection to <dst> is routed now"},
}

// writeHelp prints legacy's help (spec §8.1), the command column padded
// to 25 characters, plus mwan3d's additions.
func writeHelp(w io.Writer) {
	fmt.Fprint(w, "Syntax: mwan3 [command]\n\nAvailable commands:\n")
	for _, e := range helpEntries {
		fmt.Fprintf(w, "%-25s%s\n", e[0], e[1])
	}
	fmt.Fprint(w, "\nexplain <dst> [proto [dport]] [--src IP] [--sport PORT] [--src-iface IFACE]\n")
	fmt.Fprint(w, "Commands that show state print the daemon's ubus replies as JSON with --json.\n")
}

// hms formats seconds as legacy's HHh:MMm:SSs (hours may exceed two
// digits).
func hms(s int64) string {
	s = max(s, 0)
	return fmt.Sprintf("%02dh:%02dm:%02ds", s/3600, s%3600/60, s%60)
}

// fieldInt reads an integer member of a table, 0 when absent.
func fieldInt(t ubus.Table, name string) int64 {
	n, _ := t.GetInt(name)
	return n
}

// fieldString reads a string member of a table, def when absent.
func fieldString(t ubus.Table, name, def string) string {
	if s, ok := t.GetString(name); ok {
		return s
	}
	return def
}

// tables returns the members of a table that are tables, in order.
func tables(t ubus.Table) []ubus.Field {
	var out []ubus.Field
	for _, f := range t {
		if _, ok := f.Value.(ubus.Table); ok {
			out = append(out, f)
		}
	}
	return out
}

// arrayTables returns the elements of an array that are tables.
func arrayTables(a []any) []ubus.Table {
	var out []ubus.Table
	for _, v := range a {
		if t, ok := v.(ubus.Table); ok {
			out = append(out, t)
		}
	}
	return out
}

// arrayStrings returns the elements of an array that are strings.
func arrayStrings(a []any) []string {
	var out []string
	for _, v := range a {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// writeInterfaces prints `mwan3 interfaces` (spec §8.2) from the reply of
// status {section: interfaces} and of diag (nil when unavailable: no
// detail codes then).
func writeInterfaces(w io.Writer, status, diag ubus.Table) {
	fmt.Fprintln(w, "Interface status:")
	ifs, _ := status.GetTable("interfaces")
	dif, _ := diag.GetTable("interfaces")
	for _, f := range tables(ifs) {
		i := f.Value.(ubus.Table)
		st := fieldString(i, "status", "unknown")
		line := fmt.Sprintf(" interface %s is %s and tracking is %s", f.Name, st, fieldString(i, "tracking", "down"))
		d, haveDiag := dif.GetTable(f.Name)
		switch {
		case st == "online":
			line += fmt.Sprintf(" (%s %s, uptime %s)", fieldString(d, "hotplug", "online"),
				hms(fieldInt(i, "online")), hms(fieldInt(i, "uptime")))
		case haveDiag && fieldInt(d, "detail") != 0:
			line += fmt.Sprintf(" (%d)", fieldInt(d, "detail"))
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintln(w)
}

// families are the address families in the order legacy prints them.
var families = []string{"ipv4", "ipv6"}

// writePolicies prints `mwan3 policies` (spec §8.3) from the reply of
// status {section: policies} and of diag (for the last-resort words).
func writePolicies(w io.Writer, status, diag ubus.Table, ipv6 bool) {
	pols, _ := status.GetTable("policies")
	lastResort, _ := diag.GetTable("policies")
	for _, fam := range familiesOf(ipv6) {
		fmt.Fprintf(w, "Current %s policies:\n", fam)
		byName, _ := pols.GetTable(fam)
		names := make([]string, 0, len(byName))
		for _, f := range byName {
			names = append(names, f.Name)
		}
		slices.Sort(names)
		for _, name := range names {
			fmt.Fprintf(w, "%s:\n", name)
			members, _ := byName.GetArray(name)
			ms := arrayTables(members)
			if len(ms) == 0 {
				lr, _ := lastResort.GetTable(name)
				fmt.Fprintf(w, " %s\n", fieldString(lr, "last_resort", "unreachable"))
			}
			for _, m := range ms {
				fmt.Fprintf(w, " %s (%d%%)\n", fieldString(m, "interface", "?"), fieldInt(m, "percent"))
			}
		}
		fmt.Fprintln(w)
	}
}

func familiesOf(ipv6 bool) []string {
	if ipv6 {
		return families
	}
	return families[:1]
}

// writeConnected prints `mwan3 connected` (spec §8.4) from the reply of
// status {section: connected}.
func writeConnected(w io.Writer, status ubus.Table, ipv6 bool) {
	conn, _ := status.GetTable("connected")
	for _, fam := range familiesOf(ipv6) {
		fmt.Fprintf(w, "Directly connected %s networks:\n", fam)
		list, _ := conn.GetArray(fam)
		for _, n := range arrayStrings(list) {
			fmt.Fprintln(w, n)
		}
		fmt.Fprintln(w)
	}
}

// writeRules prints `mwan3 rules` (spec §8.5) from the userrules reply:
// each rule as `iptables -L mwan3_rules -n -v` listed legacy's, cut before
// the mark match, with legacy's rewriting of the targets.
func writeRules(w io.Writer, rules ubus.Table, ipv6 bool) {
	for _, fam := range familiesOf(ipv6) {
		fmt.Fprintf(w, "Active %s user rules:\n", fam)
		list, _ := rules.GetArray(fam)
		for _, r := range arrayTables(list) {
			if logging, _ := r.GetBool("logging"); logging {
				fmt.Fprintln(w, ruleLine(r, fam == "ipv6", "LOG"))
			}
			fmt.Fprintln(w, ruleLine(r, fam == "ipv6", ""))
		}
		fmt.Fprintln(w)
	}
}

// ruleLine is one rule as legacy printed it; target overrides the rule's
// own (LOG for the logging line).
func ruleLine(r ubus.Table, v6 bool, target string) string {
	if target == "" {
		policy := fieldString(r, "policy", "")
		sticky, _ := r.GetBool("sticky")
		switch {
		case policy == "default" || policy == "unreachable" || policy == "blackhole":
			target = "MARK"
		case sticky:
			target = "mwan3_rule_" + fieldString(r, "rule", "")
		default:
			target = "mwan3_policy_" + policy
		}
	}
	// iptables pads the chain name before legacy's sed shortened it.
	target = fmt.Sprintf("%-9s ", target)
	target = strings.Replace(target, "mwan3_rule_", "S ", 1)
	target = strings.Replace(target, "mwan3_policy_", "- ", 1)
	opt := "-- "
	anyAddr := "0.0.0.0/0"
	if v6 {
		opt, anyAddr = "   ", "::/0"
	}
	in := fieldString(r, "src_device", "")
	if in == "" {
		in = "*"
	}
	var b strings.Builder
	b.WriteString(iptNum(fieldInt(r, "packets")))
	b.WriteString(iptNum(fieldInt(r, "bytes")))
	b.WriteString(target)
	fmt.Fprintf(&b, " %-5s%s %-6s %-6s  %-19s  %-19s ", iptProto(fieldString(r, "proto", "all")), opt, in, "*",
		iptAddrs(r, "src_ip", anyAddr), iptAddrs(r, "dest_ip", anyAddr))
	if set := fieldString(r, "ipset", ""); set != "" {
		fmt.Fprintf(&b, " match-set %s dst", set)
	}
	for _, p := range [][2]string{{"src_port", "sports"}, {"dest_port", "dports"}} {
		ports, _ := r.GetArray(p[0])
		if ps := arrayStrings(ports); len(ps) > 0 {
			fmt.Fprintf(&b, " multiport %s %s", p[1], strings.ReplaceAll(strings.Join(ps, ","), "-", ":"))
		}
	}
	b.WriteByte(' ')
	return b.String()
}

// iptNum prints a counter as iptables -v does (xtables_print_num): up to
// 99999 as is, then in K, M, G or T, rounded, in five columns.
func iptNum(n int64) string {
	v := uint64(max(n, 0))
	if v <= 99999 {
		return fmt.Sprintf("%5d ", v)
	}
	for _, unit := range "KMG" {
		v = (v + 500) / 1000
		if v <= 9999 {
			return fmt.Sprintf("%4d%c ", v, unit)
		}
	}
	return fmt.Sprintf("%4dT ", (v+500)/1000)
}

// iptProtos are the protocol names iptables prints with -n.
var iptProtos = map[int]string{1: "icmp", 6: "tcp", 17: "udp", 33: "dccp", 47: "gre", 50: "esp", 51: "ah",
	58: "ipv6-icmp", 132: "sctp", 136: "udplite"}

// iptProto spells a rule's protocol as iptables lists it.
func iptProto(p string) string {
	p = strings.ToLower(strings.TrimSpace(p))
	if p == "" || p == "all" || p == "0" {
		return "all"
	}
	if n, err := strconv.Atoi(p); err == nil {
		if name, ok := iptProtos[n]; ok {
			return name
		}
	}
	if p == "icmpv6" {
		return "ipv6-icmp"
	}
	return p
}

// iptAddrs prints a rule's addresses as iptables -n does: a single host
// without its prefix length, several joined with commas, none as any.
func iptAddrs(r ubus.Table, name, anyAddr string) string {
	list, _ := r.GetArray(name)
	ps := arrayStrings(list)
	if len(ps) == 0 {
		return anyAddr
	}
	for i, s := range ps {
		if p, err := netip.ParsePrefix(s); err == nil && p.IsSingleIP() {
			ps[i] = p.Addr().String()
		}
	}
	return strings.Join(ps, ",")
}
