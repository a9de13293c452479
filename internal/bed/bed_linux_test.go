//go:build linux

package bed

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/internal/testbed"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// fastConfig tracks two WANs with one-second rounds and balances over both.
const fastConfig = `
config globals 'globals'
	option mmx_mask '0x3F00'

config interface 'wan'
	option enabled '1'
	list track_ip '198.51.100.1'
	option interval '1'
	option timeout '1'
	option down '2'
	option up '2'

config interface 'wanb'
	option enabled '1'
	list track_ip '198.51.100.2'
	option interval '1'
	option timeout '1'
	option down '2'
	option up '2'

config member 'wan_m1'
	option interface 'wan'

config member 'wanb_m1'
	option interface 'wanb'

config policy 'balanced'
	list use_member 'wan_m1'
	list use_member 'wanb_m1'

config rule 'default_rule'
	option dest_ip '0.0.0.0/0'
	option use_policy 'balanced'
`

// TestBedRunsDaemon starts the daemon, sees both WANs online and traffic
// over both, stops it and finds nothing of it left.
func TestBedRunsDaemon(t *testing.T) {
	b := New(t, Options{Config: fastConfig})
	ctx := t.Context()
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if !b.Running() || b.Pid() == 0 {
		t.Fatal("daemon not running after Start")
	}
	if _, err := b.WaitStatus(ctx, "online", "wan", "wanb"); err != nil {
		t.Fatal(err)
	}
	wans, err := b.TB.TCPFlows(b.TB.LAN, 40, testbed.IPv4, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]int{}
	for _, w := range wans {
		seen[w]++
	}
	if seen[0] == 0 || seen[1] == 0 {
		t.Errorf("40 flows over the WANs: %v, want both used", seen)
	}
	if err := b.WaitHooks(ctx, "mwan3.user ACTION=connected DEVICE=eth1 INTERFACE=wan"); err != nil {
		t.Error(err)
	}
	if err := b.Stop(syscall.SIGTERM); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if left := b.Leftovers(ctx); len(left) > 0 {
		t.Errorf("left behind: %q", left)
	}
	if !strings.Contains(b.Logs(), "--- start 1") {
		t.Errorf("logs lack the first start: %q", b.Logs())
	}
}

// TestOpenClose builds a bed outside the test machinery and removes it.
func TestOpenClose(t *testing.T) {
	testbed.RequireRoot(t)
	b, err := Open(Options{WANs: 1, Family: testbed.IPv4 | testbed.IPv6, Config: fastConfig})
	if err != nil {
		t.Fatal(err)
	}
	names := []string{b.TB.Router.Path(), b.TB.WANs[0].ISP.Path(), b.Dir}
	ifs := Interfaces(b.TB)
	var got []string
	for _, i := range ifs {
		got = append(got, i.Name+"@"+i.Device)
	}
	if want := "wan@eth1 wan6@eth1 lan@lan0"; strings.Join(got, " ") != want {
		t.Errorf("netifd interfaces %q, want %q", strings.Join(got, " "), want)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := b.Client.Call(ctx, "network.interface.wan6", "status", nil); err != nil {
		t.Errorf("ubus call network.interface.wan6 status: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range names {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still exists after Close (%v)", p, err)
		}
	}
}

// TestStartRefusedConfig sees Start return at once, with the reason, when
// the daemon refuses its configuration and exits.
func TestStartRefusedConfig(t *testing.T) {
	b := New(t, Options{Config: "config interface 'wan\n"}) // an unterminated quote
	err := b.Start(t.Context())
	if err == nil {
		t.Fatal("Start succeeded with a refused config")
	}
	if !strings.Contains(err.Error(), "exited before registering") {
		t.Errorf("Start: %v, want the exit reported", err)
	}
	if b.Running() {
		t.Error("daemon reported running after it exited")
	}
}
