package rtsync

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/mwan3d/mwan3d/rtsync/nlsock"
)

// String renders r like a line of `ip rule` (iproute2 6.x).
func (r Rule) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d:\tfrom all", r.Priority)
	switch {
	case r.Mask == 0xffffffff:
		fmt.Fprintf(&b, " fwmark %#x", r.Mark)
	case r.Mask != 0:
		fmt.Fprintf(&b, " fwmark %#x/%#x", r.Mark, r.Mask)
	}
	if r.IIF != "" {
		b.WriteString(" iif " + r.IIF)
	}
	switch r.Action {
	case ActionLookup:
		b.WriteString(" lookup " + tableName(r.Table))
	case ActionBlackhole:
		b.WriteString(" blackhole")
	case ActionUnreachable:
		b.WriteString(" unreachable")
	default:
		b.WriteString(" (other action)")
	}
	if r.Unmanaged {
		b.WriteString(" (unmanaged)")
	}
	return b.String()
}

func tableName(t uint32) string {
	switch t {
	case 253:
		return "default"
	case tableMain:
		return "main"
	case tableLocal:
		return "local"
	}
	return strconv.FormatUint(uint64(t), 10)
}

var routeTypes = [...]string{"unspec", "unicast", "local", "broadcast", "anycast", "multicast", "blackhole", "unreachable", "prohibit", "throw", "nat", "xresolve"}

var routeProtocols = map[uint8]string{
	0: "unspec", 1: "redirect", 2: "kernel", 3: "boot", 4: "static", 8: "gated", 9: "ra", 10: "mrt",
	11: "zebra", 12: "bird", 13: "dnrouted", 14: "xorp", 15: "ntk", 16: "dhcp", 17: "mrouted",
	18: "keepalived", 42: "babel", 99: "openr", 186: "bgp", 187: "isis", 188: "ospf", 189: "rip", 192: "eigrp",
}

var routeScopes = map[uint8]string{0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere"}

// metricNames are the RTAX_* names iproute2 prints (index = RTAX value).
var metricNames = [...]string{2: "mtu", 3: "window", 4: "rtt", 5: "rttvar", 6: "ssthresh", 7: "cwnd", 8: "advmss",
	9: "reordering", 10: "hoplimit", 11: "initcwnd", 12: "features", 13: "rto_min", 14: "initrwnd", 15: "quickack",
	16: "congctl", 17: "fastopen_no_cookie"}

const (
	rtaxLock   = 1
	rtaxCCAlgo = 16
)

func nameOr(names map[uint8]string, v uint8) string {
	if n, ok := names[v]; ok {
		return n
	}
	return strconv.Itoa(int(v))
}

func devName(names map[int]string, idx int) string {
	if n, ok := names[idx]; ok {
		return n
	}
	return "if" + strconv.Itoa(idx)
}

// hostOrPrefix prints a prefix like iproute2: host routes without length.
func hostOrPrefix(p netip.Prefix) string {
	if p.Bits() == p.Addr().BitLen() {
		return p.Addr().String()
	}
	return p.String()
}

func (r Route) gatewayWords(gw netip.Addr) string {
	if familyOfAddr(gw) == r.Family {
		return "via " + gw.String()
	}
	return "via " + map[Family]string{IPv4: "inet", IPv6: "inet6"}[familyOfAddr(gw)] + " " + gw.String()
}

// format renders r like a line of `ip route show table N` (iproute2 6.x),
// with device names from names.
func (r Route) format(names map[int]string) string {
	var w []string
	if r.Type != rtnUnicast {
		if int(r.Type) < len(routeTypes) {
			w = append(w, routeTypes[r.Type])
		} else {
			w = append(w, strconv.Itoa(int(r.Type)))
		}
	}
	if r.IsDefault() {
		w = append(w, "default")
	} else {
		w = append(w, hostOrPrefix(r.Dst))
	}
	if r.Src.IsValid() && r.Src.Bits() > 0 {
		w = append(w, "from", hostOrPrefix(r.Src))
	}
	if r.NHID != 0 {
		w = append(w, "nhid", strconv.FormatUint(uint64(r.NHID), 10))
	}
	if r.Tos != 0 {
		w = append(w, "tos", fmt.Sprintf("%#x", r.Tos))
	}
	if r.Gateway.IsValid() {
		w = append(w, r.gatewayWords(r.Gateway))
	}
	if r.OIF != 0 {
		w = append(w, "dev", devName(names, r.OIF))
	}
	if r.Protocol != 3 { // boot
		w = append(w, "proto", nameOr(routeProtocols, r.Protocol))
	}
	if r.Scope != 0 {
		w = append(w, "scope", nameOr(routeScopes, r.Scope))
	}
	if r.PrefSrc.IsValid() {
		w = append(w, "src", r.PrefSrc.String())
	}
	if r.Priority != 0 {
		w = append(w, "metric", strconv.FormatUint(uint64(r.Priority), 10))
	}
	w = append(w, flagWords(r.Flags)...)
	if r.Realm != 0 {
		w = append(w, "realm", strconv.FormatUint(uint64(r.Realm), 10))
	}
	w = append(w, metricWords(r.Metrics)...)
	if r.HasPref {
		w = append(w, "pref", map[uint8]string{0: "medium", 1: "high", 3: "low"}[r.Pref])
		if w[len(w)-1] == "" {
			w[len(w)-1] = strconv.Itoa(int(r.Pref))
		}
	}
	line := strings.Join(w, " ")
	for nh := range nexthops(r.Family, r.MultiPath) {
		nw := []string{"\n\tnexthop"}
		if nh.gateway.IsValid() {
			nw = append(nw, r.gatewayWords(nh.gateway))
		}
		nw = append(nw, "dev", devName(names, nh.ifindex), "weight", strconv.Itoa(int(nh.hops)+1))
		nw = append(nw, flagWords(uint32(nh.flags))...)
		line += strings.Join(nw, " ")
	}
	return line
}

func flagWords(flags uint32) []string {
	var w []string
	for _, f := range []struct {
		bit  uint32
		name string
	}{{1, "dead"}, {rtnhFOnlink, "onlink"}, {2, "pervasive"}, {8, "offload"}, {16, "linkdown"}} {
		if flags&f.bit != 0 {
			w = append(w, f.name)
		}
	}
	return w
}

func metricWords(raw string) []string {
	var lock uint32
	var w []string
	_ = nlsock.ForAttrs([]byte(raw), func(typ uint16, d []byte) error {
		if typ == rtaxLock && len(d) >= 4 {
			lock = ne.Uint32(d)
		}
		return nil
	})
	_ = nlsock.ForAttrs([]byte(raw), func(typ uint16, d []byte) error {
		if typ == rtaxLock {
			return nil
		}
		if int(typ) < len(metricNames) && metricNames[typ] != "" {
			w = append(w, metricNames[typ])
		} else {
			w = append(w, "metric"+strconv.Itoa(int(typ)))
		}
		if typ < 32 && lock&(1<<typ) != 0 {
			w = append(w, "lock")
		}
		switch {
		case typ == rtaxCCAlgo:
			w = append(w, nlsock.CString(d))
		case len(d) >= 4:
			w = append(w, strconv.FormatUint(uint64(ne.Uint32(d)), 10))
		}
		return nil
	})
	return w
}

// String renders s as `ip rule` and `ip route show table N` listings plus
// the bypass network lists; the golden files of the tests use it.
func (s *State) String() string {
	var b strings.Builder
	for _, f := range []Family{IPv4, IPv6} {
		header := true
		for _, r := range s.Rules {
			if r.Family != f {
				continue
			}
			if header {
				fmt.Fprintf(&b, "# ip -%c rule\n", f.String()[3])
				header = false
			}
			b.WriteString(r.String() + "\n")
		}
		for _, t := range s.Tables {
			if t.Family != f {
				continue
			}
			fmt.Fprintf(&b, "# ip -%c route show table %d (%s)\n", f.String()[3], t.ID, t.Interface)
			for _, r := range t.Routes {
				b.WriteString(r.format(s.names) + "\n")
			}
		}
		connected, custom := s.Connected4, s.Custom4
		if f == IPv6 {
			connected, custom = s.Connected6, s.Custom6
		}
		writePrefixes(&b, "connected "+f.String(), connected)
		writePrefixes(&b, "custom "+f.String(), custom)
	}
	return b.String()
}

func writePrefixes(b *strings.Builder, title string, ps []netip.Prefix) {
	if len(ps) == 0 {
		return
	}
	b.WriteString("# " + title + "\n")
	for _, p := range ps {
		b.WriteString(p.String() + "\n")
	}
}
