package main

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mwan3d/mwan3d/internal/golden"
)

// TestEmbeddedConfigIsThePackagedDefault keeps the embedded copy equal to
// the configuration the package installs.
func TestEmbeddedConfigIsThePackagedDefault(t *testing.T) {
	pkg, err := os.ReadFile(filepath.Join("..", "..", "packaging", "openwrt", "mwan3d", "files", "etc", "config", "mwan3"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pkg, defaultConfig) {
		t.Error("internal/demo/mwan3.conf differs from packaging/openwrt/mwan3d/files/etc/config/mwan3: copy it over")
	}
}

func TestBuildConfig(t *testing.T) {
	tests := []struct {
		name     string
		interval int
		golden   string
	}{
		{"default timings", 0, "config.golden"},
		{"interval 2", 2, "config-interval2.golden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := buildConfig(defaultConfig, tt.interval)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", tt.golden), d.Text)
			if want := []string{"wan6", "wanb", "wanb6"}; !slices.Equal(d.Enabled, want) {
				t.Errorf("enabled %v, want %v", d.Enabled, want)
			}
			var names []string
			for _, i := range d.Config.Interfaces {
				names = append(names, i.Name)
				want := 10
				if tt.interval > 0 {
					want = tt.interval
				}
				if !i.Enabled || !i.Tracked() || i.Interval != want || i.RecoveryInterval != want || i.FailureInterval != want {
					t.Errorf("interface %s: enabled %v tracked %v interval %d/%d/%d, want enabled, tracked, %d",
						i.Name, i.Enabled, i.Tracked(), i.Interval, i.FailureInterval, i.RecoveryInterval, want)
				}
			}
			if want := []string{"wan", "wan6", "wanb", "wanb6"}; !slices.Equal(names, want) {
				t.Errorf("interfaces %v, want %v", names, want)
			}
			if got, want := d.balance(), "balanced (wan metric 1 weight 3, wanb metric 1 weight 3)"; got != want {
				t.Errorf("balance() = %q, want %q", got, want)
			}
		})
	}
}

func TestBuildConfigErrors(t *testing.T) {
	tests := []struct {
		name     string
		src      string
		interval int
		want     string
	}{
		{"negative interval", "config interface 'wan'\n", -1, "interval -1"},
		{"syntax error", "config interface 'wan\n", 0, "default configuration"},
		{"no interfaces", "config globals 'globals'\n\toption mmx_mask '0x3F00'\n", 0, "no interfaces"},
		{"invalid after the change", "config globals 'globals'\n\toption mmx_mask '0x3'\nconfig interface 'wan'\n", 0, "demo configuration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := buildConfig([]byte(tt.src), tt.interval)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestBuildConfigAddsMissingOptions(t *testing.T) {
	d, err := buildConfig([]byte("config interface 'wan'\n\tlist track_ip 'example.org'\n\tlist track_ip '::ffff:1.1.1.1'\n"+
		"\tlist track_ip '1.1.1.1'\n\tlist track_ip 'example.org'\n"), 3)
	if err != nil {
		t.Fatal(err)
	}
	want := "\nconfig interface 'wan'\n\tlist track_ip 'example.org'\n\tlist track_ip '::ffff:1.1.1.1'\n" +
		"\tlist track_ip '1.1.1.1'\n\tlist track_ip 'example.org'\n\toption enabled '1'\n\toption interval '3'\n\n"
	if d.Text != want {
		t.Errorf("text:\n%s\nwant:\n%s", d.Text, want)
	}
	addrs, skipped := d.targets()
	if !slices.Equal(addrs, []netip.Addr{netip.MustParseAddr("1.1.1.1")}) || !slices.Equal(skipped, []string{"example.org"}) {
		t.Errorf("targets() = %v, %v", addrs, skipped)
	}
	if _, err := d.iface("wanb"); err == nil {
		t.Error("iface(wanb) found a missing interface")
	}
}

func TestTargets(t *testing.T) {
	d, err := buildConfig(defaultConfig, 0)
	if err != nil {
		t.Fatal(err)
	}
	addrs, skipped := d.targets()
	var got []string
	for _, a := range addrs {
		got = append(got, a.String())
	}
	want := "1.0.0.1 1.1.1.1 208.67.222.222 208.67.220.220 2606:4700:4700::1001 2606:4700:4700::1111 2620:0:ccd::2 2620:0:ccc::2"
	if strings.Join(got, " ") != want || len(skipped) != 0 {
		t.Errorf("targets() = %v, %v; want %s", got, skipped, want)
	}
}

func FuzzBuildConfig(f *testing.F) {
	f.Add(defaultConfig, 0)
	f.Add([]byte("config interface 'wan'\n\toption enabled '0'\n\toption interval '5'\n"), 7)
	f.Add([]byte("config interface\n\toption enabled\n"), 1)
	f.Add([]byte("config interface 'a'\n\tlist enabled '0'\n\tlist enabled '1'\n"), 0)
	f.Fuzz(func(t *testing.T, src []byte, interval int) {
		d, err := buildConfig(src, interval)
		if err != nil {
			return
		}
		if interval < 0 {
			t.Fatalf("negative interval %d accepted", interval)
		}
		// The result loads again to the same text.
		again, err := buildConfig([]byte(d.Text), interval)
		if err != nil {
			t.Fatalf("the demo's own configuration fails: %v\n%s", err, d.Text)
		}
		if again.Text != d.Text {
			t.Fatalf("not stable:\n%s\n---\n%s", d.Text, again.Text)
		}
	})
}
