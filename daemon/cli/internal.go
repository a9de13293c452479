package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// dashes underline the titles of `mwan3 internal`.
const dashes = "-------------------------------------------------"

// maxUserTable is the last routing table `mwan3 internal` lists.
const maxUserTable = 250

// netState is what `mwan3 internal` shows of the kernel for one family.
type netState struct {
	Links  []ipLink // with their addresses of the family
	Main   []ipRoute
	Tables map[int][]ipRoute // tables 1..maxUserTable that have routes
	Rules  []ipRule
}

// section prints a title, the dashes, the body or "No data found", and a
// blank line.
func section(w io.Writer, title, body string) {
	fmt.Fprintf(w, "%s\n%s\n", title, dashes)
	body = strings.TrimRight(body, "\n")
	if strings.TrimSpace(body) == "" {
		body = "No data found"
	}
	fmt.Fprintf(w, "%s\n\n", body)
}

// releaseVersion reads DISTRIB_RELEASE from /etc/openwrt_release (shell
// assignments); "unknown" when missing.
func releaseVersion(data string) string {
	for line := range strings.SplitSeq(data, "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "DISTRIB_RELEASE=")
		if !ok {
			continue
		}
		if len(v) >= 2 && (v[0] == '\'' || v[0] == '"') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return "unknown"
}

// writeInternal prints `mwan3 internal <fam>` (spec §8.7): the software
// version, addresses, main routes, rules, routing tables 1-250, and the
// nft table in place of legacy's iptables listing. A failure to read the
// kernel is printed in the sections it empties.
func writeInternal(w io.Writer, v6 bool, release string, st *netState, stErr error, ruleset string) {
	ip := "ip -4"
	if v6 {
		ip = "ip -6"
	}
	section(w, "Software-Version", "OpenWrt - "+release)
	var addrs, routes, rules string
	if stErr != nil {
		st = &netState{}
		addrs = "Error: " + stErr.Error()
		routes, rules = addrs, addrs
	} else {
		addrs, routes, rules = formatAddrs(st.Links, v6), formatRoutes(st.Main), formatRules(st.Rules)
	}
	section(w, fmt.Sprintf("Output of \"%s a show\"", ip), addrs)
	section(w, fmt.Sprintf("Output of \"%s route show\"", ip), routes)
	section(w, fmt.Sprintf("Output of \"%s rule show\"", ip), rules)
	fmt.Fprintf(w, "Output of \"%s route list table 1-%d\"\n%s\n", ip, maxUserTable, dashes)
	dumped := false
	for t := 1; t <= maxUserTable; t++ {
		if routes := st.Tables[t]; len(routes) > 0 {
			dumped = true
			fmt.Fprintf(w, "Routing table %s:\n%s\n", strconv.Itoa(t), formatRoutes(routes))
		}
	}
	if !dumped {
		fmt.Fprint(w, "No data found\n\n")
	}
	section(w, "Output of \"nft list table inet mwan3\"", ruleset)
}
