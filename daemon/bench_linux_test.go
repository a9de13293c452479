package daemon

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/internal/testbed"
	"github.com/mwan3d/mwan3d/nft"
)

// BenchmarkReloadKernel is reload-to-applied with the real nft applier
// working in a network namespace of its own (root only).
func BenchmarkReloadKernel(b *testing.B) {
	for _, size := range []string{"default", "60x1000"} {
		b.Run(size, func(b *testing.B) {
			ns := testbed.NewNS(b, "bench")
			cfgs, ifs := reloadConfigs(b, size)
			h := quietHarness(b, cfgs[0])
			h.nft = nil
			h.kernelNFT = nft.NewApplier(nft.WithNetNS(ns.NetNSFd()))
			benchReload(b, h, cfgs, ifs)
		})
	}
}

// bedRSSConfig tracks four WANs with the shipped wan's options (four
// targets, reliability 2, interval 10 s).
func bedRSSConfig() string {
	var s strings.Builder
	s.WriteString("config globals 'globals'\n\toption mmx_mask '0x3F00'\n")
	for _, n := range []string{"wan", "wanb", "wanc", "wand"} {
		fmt.Fprintf(&s, "\nconfig interface '%s'\n\toption enabled '1'\n\toption family 'ipv4'\n\toption reliability '2'\n", n)
		for i := 1; i <= 4; i++ {
			fmt.Fprintf(&s, "\tlist track_ip '198.51.100.%d'\n", i)
		}
		fmt.Fprintf(&s, "\nconfig member '%s_m1'\n\toption interface '%s'\n", n, n)
	}
	s.WriteString("\nconfig policy 'balanced'\n")
	for _, n := range []string{"wan", "wanb", "wanc", "wand"} {
		fmt.Fprintf(&s, "\tlist use_member '%s_m1'\n", n)
	}
	s.WriteString("\nconfig rule 'default_rule_v4'\n\toption dest_ip '0.0.0.0/0'\n\toption family 'ipv4'\n\toption use_policy 'balanced'\n")
	return s.String()
}

// procStatus reads a "VmRSS"-style field (kB) of /proc/<pid>/status.
func procStatus(pid int, field string) (int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for l := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// BenchmarkBedRSS runs `mwan3d run` on a four-WAN testbed with four
// tracked WANs and reports its resident memory at the end. One iteration
// is one second of running plus a status call, so -benchtime=600x gives
// the ten minutes of the issue.
func BenchmarkBedRSS(b *testing.B) {
	bd := newBedN(b, 4, bedRSSConfig())
	for _, w := range bd.tb.WANs {
		if err := bd.netifd.Up(b.Context(), w.Name); err != nil {
			b.Fatal(err)
		}
	}
	bd.start()
	bd.waitStatus("online", "wan", "wanb", "wanc", "wand")
	pid := bd.b.Pid()
	if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err != nil || strings.TrimSpace(string(comm)) != "mwan3d" {
		b.Fatalf("pid %d is %q, not mwan3d: %v", pid, comm, err)
	}
	start := time.Now()
	for b.Loop() {
		time.Sleep(time.Second)
		bd.mustCall("status", nil)
	}
	vals := map[string]int{}
	for _, f := range []string{"VmRSS", "VmHWM", "RssAnon", "RssFile"} {
		v, err := procStatus(pid, f)
		if err != nil {
			b.Fatal(err)
		}
		vals[f] = v
		b.ReportMetric(float64(v), f+"-kB")
	}
	b.Logf("mwan3d with 4 tracked WANs after %v: VmRSS %d kB (anonymous %d kB, file %d kB), VmHWM %d kB",
		time.Since(start).Round(time.Second), vals["VmRSS"], vals["RssAnon"], vals["RssFile"], vals["VmHWM"])
}
