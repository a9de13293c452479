package daemon

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	ibed "github.com/mwan3d/mwan3d/internal/bed"
	"github.com/mwan3d/mwan3d/internal/testbed"
)

// nsTools writes wrapper scripts that run iptables, ip6tables and ipset
// inside ns, and returns them as LegacyTools.
func nsTools(t *testing.T, ns *testbed.NS) LegacyTools {
	t.Helper()
	dir := t.TempDir()
	var paths [3]string
	for i, prog := range []string{"iptables", "ip6tables", "ipset"} {
		real, err := exec.LookPath(prog)
		if err != nil {
			t.Skipf("%s is not installed", prog)
		}
		paths[i] = filepath.Join(dir, prog)
		script := fmt.Sprintf("#!/bin/sh\nexec ip netns exec %s %s \"$@\"\n", ns.Name, real)
		if err := os.WriteFile(paths[i], []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return LegacyTools{Iptables: paths[0], Ip6tables: paths[1], Ipset: paths[2]}
}

// nsRun runs commands in ns, failing the test on error.
func nsRun(t *testing.T, ns *testbed.NS, cmds ...string) {
	t.Helper()
	for _, c := range cmds {
		f := strings.Fields(c)
		if _, err := ns.Run(t.Context(), f[0], f[1:]...); err != nil {
			t.Fatal(err)
		}
	}
}

// nsOut runs one command in ns and returns its output.
func nsOut(t *testing.T, ns *testbed.NS, c string) string {
	t.Helper()
	f := strings.Fields(c)
	out, err := ns.Run(t.Context(), f[0], f[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sweepIn runs the legacy sweep in ns and returns what it logged.
func sweepIn(t *testing.T, ns *testbed.NS) string {
	t.Helper()
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	sweepLegacy(t.Context(), NewLegacyState(nsTools(t, ns), ns.Handle()), 0x3f00, log)
	t.Logf("sweep logged:\n%s", buf.String())
	return buf.String()
}

// TestLegacySweepKernel plants legacy mwan3's state with the real
// iptables, ip6tables and ipset in a namespace of its own, next to
// foreign chains, sets and rules, and checks that the sweep removes
// exactly legacy's part; a second sweep, and one in a clean namespace,
// do nothing and log nothing.
func TestLegacySweepKernel(t *testing.T) {
	ns := testbed.NewNS(t, "legacy")
	nsTools(t, ns) // skips without the programs
	nsRun(t, ns,
		"ipset create mwan3_connected_v4 hash:net",
		"ipset create mwan3_connected_v6 hash:net family inet6",
		"ipset create mwan3_connected list:set",
		"ipset add mwan3_connected mwan3_connected_v4",
		"ipset add mwan3_connected mwan3_connected_v6",
		"ipset create mwan3_sticky_v4_https hash:ip timeout 600",
		"ipset create foreign hash:ip",
		"ipset add mwan3_connected_v4 192.168.1.0/24",
	)
	for _, prog := range []string{"iptables", "ip6tables"} {
		set := "mwan3_connected_v4"
		if prog == "ip6tables" {
			set = "mwan3_connected_v6"
		}
		nsRun(t, ns,
			prog+" -w -t mangle -N foreign",
			prog+" -w -t mangle -A foreign -j MARK --set-xmark 0x1/0x1",
			prog+" -w -t mangle -A PREROUTING -j foreign",
			prog+" -w -t mangle -N mwan3_hook",
			prog+" -w -t mangle -N mwan3_ifaces_in",
			prog+" -w -t mangle -N mwan3_iface_in_wan",
			prog+" -w -t mangle -N mwan3_rules",
			prog+" -w -t mangle -A PREROUTING -j mwan3_hook",
			prog+" -w -t mangle -A OUTPUT -j mwan3_hook",
			prog+" -w -t mangle -A OUTPUT -j foreign",
			prog+" -w -t mangle -A mwan3_hook -j mwan3_ifaces_in",
			prog+" -w -t mangle -A mwan3_hook -j mwan3_rules",
			prog+" -w -t mangle -A mwan3_ifaces_in -j mwan3_iface_in_wan",
			prog+" -w -t mangle -A mwan3_iface_in_wan -i lo -m set --match-set "+set+" src -m comment --comment default -j MARK --set-xmark 0x3f00/0x3f00",
			prog+" -w -t mangle -A mwan3_rules -p tcp --dport 443 -m set ! --match-set "+set+" dst -j MARK --set-xmark 0x100/0x3f00",
		)
	}
	for _, fam := range []string{"-4", "-6"} {
		nsRun(t, ns,
			"ip "+fam+" rule add pref 500 lookup 100",
			"ip "+fam+" rule add pref 4000 lookup 100",
			"ip "+fam+" rule add pref 1500 lookup 100",                     // legacy's range, not a slot of ours
			"ip "+fam+" rule add pref 3999 lookup 100",                     // legacy's range, not a slot of ours
			"ip "+fam+" rule add pref 1001 iif lo lookup 1",                // a slot of ours: rtsync's
			"ip "+fam+" rule add pref 2061 fwmark 0x3d00/0x3f00 blackhole", // idem
		)
	}

	logged := sweepIn(t, ns)
	for _, want := range []string{
		`msg="removed legacy mwan3 iptables mangle chains" chains=4 jumps=2`,
		`msg="removed legacy mwan3 ip6tables mangle chains" chains=4 jumps=2`,
		`msg="removed legacy mwan3 ipsets" sets=4`,
		`msg="removed legacy mwan3 ip rules (priorities 1000-3999 outside mwan3d's own)" rules=4`,
	} {
		if !strings.Contains(logged, want) {
			t.Errorf("log lacks %s", want)
		}
	}
	if strings.Contains(logged, "level=WARN") {
		t.Errorf("the sweep warned")
	}
	for _, prog := range []string{"iptables", "ip6tables"} {
		out := nsOut(t, ns, prog+" -w -t mangle -S")
		if strings.Contains(out, "mwan3") {
			t.Errorf("%s still has legacy state:\n%s", prog, out)
		}
		for _, want := range []string{"-N foreign", "-A PREROUTING -j foreign", "-A OUTPUT -j foreign", "-A foreign -j MARK --set-xmark 0x1/0x1"} {
			if !strings.Contains(out, want+"\n") {
				t.Errorf("%s lost %q:\n%s", prog, want, out)
			}
		}
	}
	if sets := strings.Fields(nsOut(t, ns, "ipset list -n")); len(sets) != 1 || sets[0] != "foreign" {
		t.Errorf("sets left: %q", sets)
	}
	for _, fam := range []string{"-4", "-6"} {
		out := nsOut(t, ns, "ip "+fam+" rule show")
		for _, want := range []string{"500:", "4000:", "1001:", "2061:"} {
			if !strings.Contains(out, want) {
				t.Errorf("ip %s rule lost %s:\n%s", fam, want, out)
			}
		}
		for _, gone := range []string{"1500:", "3999:"} {
			if strings.Contains(out, gone) {
				t.Errorf("ip %s rule kept %s:\n%s", fam, gone, out)
			}
		}
	}

	// Nothing legacy left: a second sweep does nothing (the rules in our
	// slots stay), and neither does one in a clean namespace.
	if logged := sweepIn(t, ns); logged != "" {
		t.Errorf("second sweep logged:\n%s", logged)
	}
	if out := nsOut(t, ns, "ip -4 rule show"); !strings.Contains(out, "1001:") {
		t.Errorf("second sweep removed a rule of ours:\n%s", out)
	}
	clean := testbed.NewNS(t, "legacyclean")
	nsRun(t, clean, "ip -4 rule add pref 1500 lookup 100")
	if logged := sweepIn(t, clean); logged != "" {
		t.Errorf("sweep of a clean namespace logged:\n%s", logged)
	}
	if out := nsOut(t, clean, "ip -4 rule show"); !strings.Contains(out, "1500:") {
		t.Errorf("sweep without legacy state removed a rule:\n%s", out)
	}
}

// TestBedLegacySweep starts `mwan3d run` on a router that still has legacy
// mwan3's iptables chains, ipsets and ip rules: they are gone, logged,
// before the daemon's first apply (the bed runs it with -v, which logs the
// applies).
func TestBedLegacySweep(t *testing.T) {
	cfg := "config interface 'wan'\n\toption enabled '1'\n\nconfig member 'wan_m'\n\toption interface 'wan'\n\n" +
		"config policy 'wan_only'\n\tlist use_member 'wan_m'\n\nconfig rule 'all'\n\toption dest_ip '0.0.0.0/0'\n\toption use_policy 'wan_only'\n"
	bd := ibed.New(t, ibed.Options{WANs: 1, Config: cfg})
	r := bd.TB.Router
	nsTools(t, r) // skips without the programs
	nsRun(t, r,
		"ipset create mwan3_connected_v4 hash:net",
		"iptables -w -t mangle -N mwan3_hook",
		"iptables -w -t mangle -A mwan3_hook -m set --match-set mwan3_connected_v4 dst -j RETURN",
		"iptables -w -t mangle -A PREROUTING -j mwan3_hook",
		"ip -4 rule add pref 1999 lookup 100",
	)
	if err := bd.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	logs := bd.Logs()
	sweep := strings.Index(logs, `msg="removed legacy mwan3 iptables mangle chains" component=mwan3-init chains=1 jumps=1`)
	applied := strings.Index(logs, `msg="nft plan applied"`)
	if sweep < 0 || applied < 0 || sweep > applied {
		t.Errorf("sweep at %d, first apply at %d:\n%s", sweep, applied, logs)
	}
	for _, want := range []string{`msg="removed legacy mwan3 ipsets" component=mwan3-init sets=1`, `rules=1`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
	if out := nsOut(t, r, "iptables -w -t mangle -S"); strings.Contains(out, "mwan3") {
		t.Errorf("legacy chains left:\n%s", out)
	}
	if out := nsOut(t, r, "ipset list -n"); strings.Contains(out, "mwan3") {
		t.Errorf("legacy sets left:\n%s", out)
	}
	if out := nsOut(t, r, "ip -4 rule show"); strings.Contains(out, "1999:") || !strings.Contains(out, "2001:") {
		t.Errorf("rules:\n%s", out)
	}
}
