package cli

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/mwan3d/mwan3d/ubus"
)

// explainUsage is printed with explain's argument errors.
const explainUsage = "Usage: mwan3 explain <dst> [proto [dport]] [--src IP] [--sport PORT] [--src-iface IFACE]"

// explainQuery is a parsed `mwan3 explain` command line.
type explainQuery struct {
	dst, src     netip.Addr
	proto        string // as given; "" for any protocol
	dport, sport int    // 0 when not given
	srcIface     string // netifd interface the connection arrives on
}

// parseExplain reads `<dst> [proto [dport]] [--src IP] [--sport PORT]
// [--src-iface IFACE]`; options may come anywhere, as --opt VALUE or
// --opt=VALUE (one dash works too).
func parseExplain(args []string) (explainQuery, error) {
	var q explainQuery
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name != "src" && name != "sport" && name != "src-iface" {
			return q, fmt.Errorf("unknown option %s", a)
		}
		if !hasVal {
			if i+1 >= len(args) {
				return q, fmt.Errorf("option %s needs a value", a)
			}
			i++
			val = args[i]
		}
		var err error
		switch name {
		case "src":
			if q.src, err = parseIP("--src", val); err != nil {
				return q, err
			}
		case "sport":
			if q.sport, err = parsePort("--sport", val); err != nil {
				return q, err
			}
		case "src-iface":
			if val == "" {
				return q, errors.New("--src-iface needs an interface name")
			}
			q.srcIface = val
		}
	}
	if len(pos) == 0 {
		return q, errors.New("expecting a destination address")
	}
	if len(pos) > 3 {
		return q, errors.New("too many arguments")
	}
	var err error
	if q.dst, err = parseIP("destination", pos[0]); err != nil {
		return q, err
	}
	if q.src.IsValid() && q.src.Is4() != q.dst.Is4() {
		return q, errors.New("--src and the destination are of different families")
	}
	if len(pos) > 1 {
		if q.proto = strings.TrimSpace(pos[1]); q.proto == "" {
			return q, errors.New("empty protocol")
		}
	}
	if len(pos) > 2 {
		if q.dport, err = parsePort("destination port", pos[2]); err != nil {
			return q, err
		}
	}
	return q, nil
}

func parseIP(what, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%s %q is not an IP address", what, s)
	}
	return a.Unmap(), nil
}

func parsePort(what, s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%s %q is not a port number (1-65535)", what, s)
	}
	return n, nil
}

// args are the explain method's arguments.
func (q explainQuery) args() ubus.Table {
	t := ubus.Table{{Name: "dst", Value: q.dst.String()}}
	if q.src.IsValid() {
		t = append(t, ubus.Field{Name: "src", Value: q.src.String()})
	}
	if q.proto != "" {
		t = append(t, ubus.Field{Name: "proto", Value: q.proto})
	}
	if q.sport != 0 {
		t = append(t, ubus.Field{Name: "sport", Value: int32(q.sport)})
	}
	if q.dport != 0 {
		t = append(t, ubus.Field{Name: "dport", Value: int32(q.dport)})
	}
	if q.srcIface != "" {
		t = append(t, ubus.Field{Name: "src_iface", Value: q.srcIface})
	}
	return t
}

// String describes the connection: "ipv4 tcp 192.168.1.100 port 5000 ->
// 198.51.100.7 port 443".
func (q explainQuery) String() string {
	fam := "ipv4"
	if q.dst.Is6() {
		fam = "ipv6"
	}
	end := func(a netip.Addr, port int) string {
		s := "any"
		if a.IsValid() {
			s = a.String()
		}
		if port != 0 {
			s += " port " + strconv.Itoa(port)
		}
		return s
	}
	proto := q.proto
	if proto == "" {
		proto = "any protocol"
	}
	s := fmt.Sprintf("%s %s %s -> %s", fam, proto, end(q.src, q.sport), end(q.dst, q.dport))
	if q.srcIface != "" {
		s += " arriving on " + q.srcIface
	}
	return s
}

// writeExplain prints the explain reply for q.
func writeExplain(w io.Writer, q explainQuery, rep ubus.Table) {
	fmt.Fprintf(w, "Connection: %s\n", q)
	rule := fieldString(rep, "rule", "")
	switch fieldString(rep, "stage", "") {
	case "iface_in":
		fmt.Fprintf(w, "Rule: none (it arrives on a WAN interface, and its replies leave the same way)\n")
	case "bypass":
		fmt.Fprintf(w, "Rule: none (the destination is a connected or custom network)\n")
	case "rule":
		sticky := ""
		if s, _ := rep.GetBool("sticky"); s {
			sticky = " (sticky)"
		}
		fmt.Fprintf(w, "Rule: %s%s\nPolicy: %s\n", rule, sticky, fieldString(rep, "policy", "?"))
	default:
		fmt.Fprintf(w, "Rule: none matches\n")
	}
	switch action := fieldString(rep, "action", ""); action {
	case "balance":
		fmt.Fprintln(w, "Interfaces:")
		ifs, _ := rep.GetArray("interfaces")
		for _, c := range arrayTables(ifs) {
			p, _ := c.GetFloat("probability")
			pct := strings.TrimSuffix(strconv.FormatFloat(p*100, 'f', 1, 64), ".0")
			fmt.Fprintf(w, " %s (%s) %s%%\n", fieldString(c, "interface", "?"), fieldString(c, "device", "no device"), pct)
		}
	case "main":
		fmt.Fprintln(w, "Route: the main routing table")
	case "unreachable":
		fmt.Fprintln(w, "Route: unreachable (the connection is refused)")
	case "blackhole":
		fmt.Fprintln(w, "Route: blackhole (the connection is dropped)")
	default:
		fmt.Fprintf(w, "Route: %s\n", action)
	}
	notes, _ := rep.GetArray("notes")
	for _, n := range arrayStrings(notes) {
		fmt.Fprintf(w, "Note: %s\n", n)
	}
}
