package daemon

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/mwan3d/mwan3d/config"
)

// allEnabled is the shipped default with every interface enabled, as in
// spec §7.6.
func allEnabled(t *testing.T) *config.Config {
	t.Helper()
	data, err := os.ReadFile("../config/testdata/default.conf")
	if err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.Load("mwan3", []byte(strings.ReplaceAll(string(data), "option enabled '0'", "option enabled '1'")))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return cfg
}

func sharesString(s []Share) string {
	var parts []string
	for _, x := range s {
		parts = append(parts, fmt.Sprintf("%s(%d%%)", x.Interface, x.Percent))
	}
	return strings.Join(parts, " ")
}

func TestActiveShares(t *testing.T) {
	cfg := allEnabled(t)
	tests := []struct {
		online []string
		fam    config.Family
		want   map[string]string
	}{
		{[]string{"wan", "wanb", "wan6"}, config.IPv4, map[string]string{
			"balanced": "wanb(50%) wan(50%)", "wan_only": "wan(100%)", "wan_wanb": "wan(100%)",
			"wanb_only": "wanb(100%)", "wanb_wan": "wanb(100%)"}},
		{[]string{"wan", "wanb", "wan6"}, config.IPv6, map[string]string{
			"balanced": "wan6(100%)", "wan_only": "wan6(100%)", "wan_wanb": "wan6(100%)",
			"wanb_only": "", "wanb_wan": "wan6(100%)"}},
		{[]string{"wanb"}, config.IPv4, map[string]string{ // tier 2 takes over
			"balanced": "wanb(100%)", "wan_only": "", "wan_wanb": "wanb(100%)", "wanb_wan": "wanb(100%)"}},
		{nil, config.IPv4, map[string]string{"balanced": "", "wan_wanb": ""}},
	}
	for _, tt := range tests {
		on := map[string]bool{}
		for _, o := range tt.online {
			on[o] = true
		}
		for pol, want := range tt.want {
			got := sharesString(ActiveShares(cfg, cfg.Policy(pol), tt.fam, func(i string) bool { return on[i] }))
			if got != want {
				t.Errorf("online %v %s %s = %q, want %q", tt.online, tt.fam, pol, got, want)
			}
		}
	}
}

// TestSharesWeights: 3:2 gives 60/40; integer division may not add to 100.
func TestSharesWeights(t *testing.T) {
	cfg, diags := config.Load("t", []byte(`
config interface 'a'
	option enabled '1'
config interface 'b'
	option enabled '1'
config interface 'c'
	option enabled '1'
config member 'a3'
	option interface 'a'
	option weight '3'
config member 'b2'
	option interface 'b'
	option weight '2'
config member 'c1'
	option interface 'c'
config member 'c_low'
	option interface 'c'
	option metric '0'
config policy 'p'
	list use_member 'a3'
	list use_member 'b2'
config policy 'q'
	list use_member 'a3'
	list use_member 'b2'
	list use_member 'c1'
config policy 'r'
	list use_member 'a3'
	list use_member 'c_low'
`))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	all := func(string) bool { return true }
	for pol, want := range map[string]string{"p": "b(40%) a(60%)", "q": "c(16%) b(33%) a(50%)", "r": "c(100%)"} {
		if got := sharesString(ActiveShares(cfg, cfg.Policy(pol), config.IPv4, all)); got != want {
			t.Errorf("%s = %q, want %q", pol, got, want)
		}
	}
}
