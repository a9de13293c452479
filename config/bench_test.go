package config

import (
	"fmt"
	"strings"
	"testing"
)

// bigConfig writes a configuration with n interfaces (4 members each, one
// policy per interface) and rules rules, like a large real deployment.
func bigConfig(n, rules int) []byte {
	var b strings.Builder
	b.WriteString("config globals 'globals'\n\toption mmx_mask '0x3F00'\n\n")
	for i := 1; i <= n; i++ {
		fam := "ipv4"
		if i%2 == 0 {
			fam = "ipv6"
		}
		fmt.Fprintf(&b, "config interface 'wan%d'\n\toption enabled '1'\n\toption family '%s'\n\tlist track_ip '198.51.100.%d'\n\tlist track_ip '203.0.113.%d'\n\toption reliability '1'\n\toption interval '5'\n\n", i, fam, i, i)
	}
	for i := 1; i <= n; i++ {
		for m := 1; m <= 4; m++ {
			fmt.Fprintf(&b, "config member 'wan%d_m%d'\n\toption interface 'wan%d'\n\toption metric '%d'\n\toption weight '%d'\n\n", i, m, i, m, m+1)
		}
	}
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "config policy 'pol%d'\n\tlist use_member 'wan%d_m1'\n\tlist use_member 'wan%d_m2'\n\toption last_resort 'default'\n\n", i, i, (i%n)+1)
	}
	for r := 0; r < rules; r++ {
		fmt.Fprintf(&b, "config rule 'rule%d'\n\toption proto 'tcp'\n\toption src_ip '10.%d.%d.0/24'\n\toption dest_port '%d,8000:8100'\n\toption sticky '%d'\n\toption use_policy 'pol%d'\n\n", r, r/256, r%256, 1+r%60000, r%2, 1+r%n)
	}
	return []byte(b.String())
}

func TestBigConfig(t *testing.T) {
	cfg, diags := Load("big", bigConfig(60, 1000))
	if len(diags) != 0 {
		t.Fatalf("%d diags, first: %v", len(diags), diags[0])
	}
	if len(cfg.Interfaces) != 60 || len(cfg.Members) != 240 || len(cfg.Policies) != 60 || len(cfg.Rules) != 1000 {
		t.Fatalf("loaded %s", cfg.Summary())
	}
}

// BenchmarkLoad parses and validates 60 interfaces, 240 members, 60
// policies and 1000 rules.
func BenchmarkLoad(b *testing.B) {
	data := bigConfig(60, 1000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, diags := Load("big", data); len(diags) != 0 {
			b.Fatal(diags[0])
		}
	}
}

// TestHugeInputs: a 10 MB file and 10 000 sections load in bounded time and
// memory, and an oversized file is refused with a message.
func TestHugeInputs(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 10000; i++ {
		fmt.Fprintf(&b, "config rule 'r%d'\n\toption use_policy 'default'\n", i)
	}
	cfg, diags := Load("many", []byte(b.String()))
	if diags.HasErrors() || len(cfg.Rules) != 10000 {
		t.Fatalf("10000 sections: %d rules, %v", len(cfg.Rules), diags.Errors())
	}
	big := []byte("config globals 'globals'\n\toption x '" + strings.Repeat("a", 10<<20) + "'\n")
	if _, diags := Load("big", big); diags.HasErrors() {
		t.Fatalf("10 MB value: %v", diags.Errors())
	}
	_, diags = Load("huge", make([]byte, MaxFileSize+1))
	if len(diags) != 1 || !strings.Contains(diags[0].Error(), "huge:1: file is") {
		t.Fatalf("oversized file: %v", diags)
	}
}
