package config

import (
	"github.com/mwan3d/mwan3d/internal/golden"

	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// goldenDump is what a golden file holds: the model and every message.
type goldenDump struct {
	Config *Config  `json:"config"`
	Diags  []string `json:"diags"`
	Errors int      `json:"errors"`
}

func dump(t *testing.T, name string, data []byte) []byte {
	t.Helper()
	cfg, diags := Load(name, data)
	d := goldenDump{Config: cfg, Diags: []string{}, Errors: len(diags.Errors())}
	for _, x := range diags.Sorted() {
		d.Diags = append(d.Diags, x.Error())
	}
	out, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

// TestGolden loads the shipped default config, every configuration example
// of the OpenWrt wiki page and every real user's config, and compares the
// model and messages with testdata/**/*.golden.
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.conf")
	more, _ := filepath.Glob("testdata/*/*.conf")
	files = append(files, more...)
	if len(files) < 40 {
		t.Fatalf("only %d test configs found", len(files))
	}
	for _, f := range files {
		t.Run(strings.TrimPrefix(f, "testdata/"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got := dump(t, filepath.Base(f), data)
			golden.Check(t, strings.TrimSuffix(f, ".conf")+".golden", string(got))
		})
	}
}

// TestRealConfigsLoad: every real user's config loads without errors, as
// it does with legacy mwan3 (warnings allowed).
func TestRealConfigsLoad(t *testing.T) {
	files, _ := filepath.Glob("testdata/real/*.conf")
	if len(files) < 30 {
		t.Fatalf("only %d real configs found", len(files))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cfg, diags := Load(f, data)
		if diags.HasErrors() {
			t.Errorf("%s: %v", f, diags.Errors())
		}
		if len(cfg.Interfaces) == 0 && !strings.Contains(f, "no-iface") && !strings.Contains(f, "without-ifaces") {
			t.Errorf("%s: no interfaces loaded", f)
		}
	}
}

// TestDefaultConfig checks the shipped default (spec §2.6) field by field
// where it matters most: ids, families, defaults derived from other options,
// policies and rules.
func TestDefaultConfig(t *testing.T) {
	data, err := os.ReadFile("testdata/default.conf")
	if err != nil {
		t.Fatal(err)
	}
	cfg, diags := Load("mwan3", data)
	if len(diags) != 0 {
		t.Fatalf("diags: %v", diags)
	}
	if cfg.Globals.MMXMask != 0x3F00 || cfg.Globals.IfaceMax() != 60 {
		t.Errorf("mask %#x max %d", cfg.Globals.MMXMask, cfg.Globals.IfaceMax())
	}
	wantIfaces := []struct {
		name    string
		id      int
		enabled bool
		family  Family
		rel     int
	}{{"wan", 1, true, IPv4, 2}, {"wan6", 2, false, IPv6, 2}, {"wanb", 3, false, IPv4, 1}, {"wanb6", 4, false, IPv6, 1}}
	if len(cfg.Interfaces) != len(wantIfaces) {
		t.Fatalf("%d interfaces", len(cfg.Interfaces))
	}
	for i, w := range wantIfaces {
		g := cfg.Interfaces[i]
		if g.Name != w.name || g.ID != w.id || g.Enabled != w.enabled || g.Family != w.family || g.Reliability != w.rel {
			t.Errorf("interface %d = %+v, want %+v", i, g, w)
		}
		if g.Interval != 10 || g.FailureInterval != 10 || g.RecoveryInterval != 10 || g.Timeout != 4 ||
			g.Down != 5 || g.Up != 5 || g.Count != 1 || g.TrackMethod != "ping" || len(g.TrackIP) != 4 {
			t.Errorf("interface %s defaults: %+v", g.Name, g)
		}
	}
	if p := cfg.Policy("balanced"); p == nil || strings.Join(p.Members, " ") != "wan_m1_w3 wanb_m1_w3 wan6_m1_w3 wanb6_m1_w3" || p.LastResort != "unreachable" {
		t.Errorf("balanced = %+v", p)
	}
	r := cfg.Rules[0]
	if r.Name != "https" || !r.Sticky || r.Timeout != 600 || r.Proto != "tcp" || r.ProtoNum != 6 ||
		len(r.DestPort) != 1 || r.DestPort[0] != (PortRange{443, 443}) || r.Family != Any || len(r.Variants()) != 2 {
		t.Errorf("https = %+v", r)
	}
	if v := cfg.Rules[1].Variants(); len(v) != 1 || v[0] != IPv4 {
		t.Errorf("default_rule_v4 variants %v", v)
	}
	if v := cfg.Rules[2].Variants(); len(v) != 1 || v[0] != IPv6 {
		t.Errorf("default_rule_v6 variants %v", v)
	}
}
