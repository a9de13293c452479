package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func addSeeds(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.conf")
	more, _ := filepath.Glob("testdata/*/*.conf")
	for _, name := range append(files, more...) {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	for _, c := range badConfigs {
		f.Add([]byte(c.in))
	}
	for _, s := range []string{"", "config", "'", "\"\\", "config a\\\n b", "c a;o b c;l d e", "config a x\noption v '\x00'", "\r\n\r\n"} {
		f.Add([]byte(s))
	}
}

// FuzzParse: the UCI parser never panics, every message has a line inside
// the file, and a file without errors survives export and re-parse.
func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		file, diags := ParseUCI("f", data)
		lines := strings.Count(string(data), "\n") + 1
		for _, d := range diags {
			if d.Line < 1 || d.Line > lines {
				t.Fatalf("message at line %d of a %d-line file: %s", d.Line, lines, d.Error())
			}
		}
		if diags.HasErrors() {
			return
		}
		again, diags2 := ParseUCI("f", []byte(file.Export()))
		if diags2.HasErrors() {
			t.Fatalf("export does not parse: %v\n%s", diags2, file.Export())
		}
		if flat(again) != flat(file) {
			t.Fatalf("round trip changed the file:\n%s\n%s", flat(file), flat(again))
		}
	})
}

// FuzzLoad: the model builder never panics and keeps its invariants for
// any file.
func FuzzLoad(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, diags := Load("f", data)
		for _, d := range diags {
			if d.Line < 1 {
				t.Fatalf("message without a line: %s", d.Error())
			}
		}
		for i, iface := range cfg.Interfaces {
			if iface.ID != i+1 {
				t.Fatalf("interface %s has id %d at position %d", iface.Name, iface.ID, i)
			}
			if iface.Enabled && iface.ID > cfg.Globals.IfaceMax() {
				t.Fatalf("enabled interface %s beyond iface_max", iface.Name)
			}
		}
		for _, m := range cfg.Members {
			if cfg.Interface(m.Interface) == nil || m.Metric > 256 || m.Weight < 1 {
				t.Fatalf("unusable member kept: %+v", m)
			}
		}
		for _, p := range cfg.Policies {
			for _, m := range p.Members {
				if cfg.Member(m) == nil {
					t.Fatalf("policy %s lists unusable member %s", p.Name, m)
				}
			}
		}
		for _, r := range cfg.Rules {
			if len(r.Variants()) == 0 || len(r.Name) > MaxNameLen {
				t.Fatalf("rule %s kept but unusable", r.Name)
			}
			switch r.UsePolicy {
			case PolicyDefault, PolicyUnreachable, PolicyBlackhole:
			default:
				if cfg.Policy(r.UsePolicy) == nil {
					t.Fatalf("rule %s uses missing policy %s", r.Name, r.UsePolicy)
				}
			}
		}
	})
}
