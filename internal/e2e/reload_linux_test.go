package e2e

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/internal/bed"
	"github.com/mwan3d/mwan3d/internal/testbed"
)

// reloadFlows is the size of the run that reloads happen in the middle of.
const reloadFlows = 10000

// reloadUnderLoad: 10 000 new connections while the configuration changes
// back and forth (balanced 1:1 ↔ 3:2), reloaded alternately through ubus
// and SIGHUP. Not one connection may fail.
func reloadUnderLoad(t *testing.T, b *bed.Bed) {
	tb := b.TB
	base := readConfig(t, "two_wan.conf")
	changed := strings.Replace(base, "config policy 'balanced'\n\tlist use_member 'wan_m1_w1'\n\tlist use_member 'wanb_m1_w1'",
		"config policy 'balanced'\n\tlist use_member 'wan_m1_w3'\n\tlist use_member 'wanb_m1_w2'", 1)
	if changed == base {
		t.Fatal("two_wan.conf has no policy balanced of wan_m1_w1 and wanb_m1_w1")
	}
	t.Cleanup(func() {
		if err := b.WriteConfig(base); err != nil {
			t.Error(err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if rep, err := b.Call(ctx, "reload", nil); err != nil {
			t.Errorf("reload the original configuration: %v", err)
		} else if ok, _ := rep.GetBool("applied"); !ok {
			t.Errorf("reload the original configuration: %s", rep)
		}
	})

	type result struct {
		wans []int
		err  error
	}
	done := make(chan result, 1)
	reloadedBefore := strings.Count(b.Logs(), "msg=reloaded")
	start := time.Now()
	go func() {
		wans, err := tb.TCPFlows(tb.LAN, reloadFlows, testbed.IPv4, 0)
		done <- result{wans, err}
	}()
	var res result
	ubusReloads, sighups := 0, 0
	for i := 0; ; i++ {
		select {
		case res = <-done:
		default:
		}
		if res.wans != nil || res.err != nil {
			break
		}
		cfg := base
		if i%2 == 0 {
			cfg = changed
		}
		if err := b.WriteConfig(cfg); err != nil {
			t.Fatal(err)
		}
		if i%4 < 2 {
			rep := call(t, b, "reload", nil)
			if ok, _ := rep.GetBool("applied"); !ok {
				t.Fatalf("reload: %s", rep)
			}
			ubusReloads++
		} else {
			if err := syscall.Kill(b.Pid(), syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			sighups++
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(start)
	if res.err != nil {
		t.Fatal(res.err)
	}
	c := count(res.wans, 2)
	t.Logf("%d connections in %v with %d ubus reloads and %d SIGHUPs: %s", reloadFlows, took.Round(time.Millisecond), ubusReloads, sighups, c)
	if c.Failed != 0 {
		t.Errorf("%d of %d connections failed across the reloads", c.Failed, reloadFlows)
	}
	if ubusReloads == 0 || sighups == 0 {
		t.Errorf("the run ended before both kinds of reload happened (%d ubus, %d SIGHUP): nothing was tested", ubusReloads, sighups)
	}
	// SIGHUPs in quick succession may be handled as one; at least one was.
	if reloaded := strings.Count(b.Logs(), "msg=reloaded") - reloadedBefore; reloaded <= ubusReloads {
		t.Errorf("the daemon logged %d reloads for %d ubus reloads and %d SIGHUPs", reloaded, ubusReloads, sighups)
	}
}
