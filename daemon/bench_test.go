package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/internal/netifdtest"
	"github.com/mwan3d/mwan3d/ubus"
)

// quietHarness is a harness whose daemon logs warnings only.
func quietHarness(b testing.TB, cfg string) *harness {
	h := newHarness(b, cfg)
	h.logger = slog.New(slog.NewTextHandler(b.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	return h
}

// percentile returns the p-th percentile (0..100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

// BenchmarkStatus measures `ubus call mwan3 status` for spec §7.6's
// configuration (four interfaces, four targets each):
//
//   - handler: the daemon's own work per call (snapshot of the published
//     view and the trackers, compared with the cached one; the reply is
//     encoded once per change, so most calls reuse it);
//   - handler-uncached: the same when every call misses the cache (the
//     reply table and its blobmsg encoding every time);
//   - 1-caller: one call after another through the ubustest broker;
//   - 100-callers: rounds of 100 calls at once, each caller on its own
//     connection like 100 `ubus call` processes; p50 and p99 are per call.
//
// The broker and the callers run in the benchmark's process, so on a
// two-core machine the 100-caller figures include their CPU time too.
func BenchmarkStatus(b *testing.B) {
	data, err := os.ReadFile("../config/testdata/default.conf")
	if err != nil {
		b.Fatal(err)
	}
	cfgText := strings.ReplaceAll(string(data), "option enabled '0'", "option enabled '1'")
	handler := func(b *testing.B, cached bool) {
		d, _ := statusDaemon(b, cfgText)
		b.ReportAllocs()
		for b.Loop() {
			if !cached {
				d.status.Store(nil)
			}
			if _, err := d.statusReply("", "", false); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("handler", func(b *testing.B) { handler(b, true) })
	b.Run("handler-uncached", func(b *testing.B) { handler(b, false) })
	h := quietHarness(b, cfgText)
	exampleNetifd(h)
	h.start()
	h.waitCalls("ifup wan eth1 10.0.1.2 0x100", "ifup wan6 eth1 2001:db8:1::2 0x200", "ifup wanb eth2 10.0.2.2 0x300", "ifup wanb6 eth2 2001:db8:2::2 0x400")
	for _, callers := range []int{1, 100} {
		b.Run(fmt.Sprintf("%d-callers", callers), func(b *testing.B) {
			conns := make([]*ubus.Conn, callers)
			for i := range conns {
				c, err := ubus.Dial(b.Context(), h.broker.Path())
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				conns[i] = c
			}
			lat := make([][]time.Duration, callers)
			b.ReportAllocs()
			for b.Loop() {
				var wg sync.WaitGroup
				for i, c := range conns {
					wg.Go(func() {
						t0 := time.Now()
						if _, err := c.Call(context.Background(), ObjectName, "status", nil); err != nil {
							b.Error(err)
						}
						lat[i] = append(lat[i], time.Since(t0))
					})
				}
				wg.Wait()
			}
			all := slices.Concat(lat...)
			slices.Sort(all)
			b.ReportMetric(float64(percentile(all, 50).Microseconds()), "p50-µs")
			b.ReportMetric(float64(percentile(all, 99).Microseconds()), "p99-µs")
		})
	}
}

// bigConfig has n interfaces (no tracking), one member each, policies of
// three members, and rules rules on distinct ports over all policies;
// every tenth rule is sticky. Changing first changes the first rule's port.
func bigConfig(n, rules int, first int) string {
	var s strings.Builder
	s.WriteString("config globals 'globals'\n\toption mmx_mask '0x3F00'\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&s, "\nconfig interface 'wan%d'\n\toption enabled '1'\n\toption family 'ipv4'\n", i)
	}
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&s, "\nconfig member 'm%d'\n\toption interface 'wan%d'\n\toption metric '%d'\n\toption weight '%d'\n", i, i, 1+i%2, 1+i%3)
	}
	policies := max(n/3, 1)
	for p := range policies {
		fmt.Fprintf(&s, "\nconfig policy 'p%d'\n", p)
		for k := range 3 {
			fmt.Fprintf(&s, "\tlist use_member 'm%d'\n", (3*p+k)%n+1)
		}
	}
	for r := range rules {
		port := 1000 + r
		if r == 0 {
			port = first
		}
		fmt.Fprintf(&s, "\nconfig rule 'r%d'\n\toption proto 'tcp'\n\toption dest_port '%d'\n\toption use_policy 'p%d'\n", r, port, r%policies)
		if r%10 == 0 {
			s.WriteString("\toption sticky '1'\n")
		}
	}
	return s.String()
}

// reloadConfigs are the two configurations a reload benchmark alternates
// between, with the netifd interfaces they need up.
func reloadConfigs(b *testing.B, size string) ([2]string, []netifdtest.Interface) {
	switch size {
	case "default":
		data, err := os.ReadFile("../config/testdata/default.conf")
		if err != nil {
			b.Fatal(err)
		}
		c := string(data)
		return [2]string{c, strings.Replace(c, "option dest_port '443'", "option dest_port '8443'", 1)}, []netifdtest.Interface{netifdWAN("wan", 1)}
	default:
		var ifs []netifdtest.Interface
		for i := 1; i <= 60; i++ {
			ifs = append(ifs, netifdWAN(fmt.Sprintf("wan%d", i), i))
		}
		return [2]string{bigConfig(60, 1000, 60000), bigConfig(60, 1000, 60001)}, ifs
	}
}

// benchReload measures `ubus call mwan3 reload` from the request to the
// answer, which comes once the new ruleset is applied.
func benchReload(b *testing.B, h *harness, cfgs [2]string, ifs []netifdtest.Interface) {
	h.addNetifd(true, ifs...)
	h.start()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		h.writeConfig(cfgs[i%2])
		rep, err := h.call("reload", nil)
		if err != nil || !isTrue(rep, "applied") {
			b.Fatalf("reload: %v %v", rep, err)
		}
	}
}

// BenchmarkReload is reload-to-applied with the fake nft applier: parse,
// validate, diff, render and the loop, without the kernel.
func BenchmarkReload(b *testing.B) {
	for _, size := range []string{"default", "60x1000"} {
		b.Run(size, func(b *testing.B) {
			cfgs, ifs := reloadConfigs(b, size)
			benchReload(b, quietHarness(b, cfgs[0]), cfgs, ifs)
		})
	}
}
